//! The vectorised inner loops, and the one place that picks a CPU path.
//!
//! The code is compiled for the baseline x86_64 CPU; the wider paths are
//! functions compiled with `#[target_feature]` and chosen once per process
//! at run time, so one binary runs on any x86_64 and uses AVX2 or AVX-512
//! where the CPU has them. `GNNO_SIMD=generic|avx2|avx512` forces a path
//! (read once, at the first kernel call); an unknown value, or a path this
//! CPU lacks, falls back to the detected path and is reported by
//! [`selection_warning`] (the Python package warns about it on import).
//!
//! Paths agree on every integer result (uniform draws) and on kernel values
//! to float tolerance: AVX-512 replaces divisions with a refined reciprocal.

use std::sync::OnceLock;

/// A set of kernels compiled for one instruction-set level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// Baseline x86_64 (SSE2) or any other architecture.
    Generic,
    /// AVX2 with FMA.
    Avx2,
    /// AVX-512 F/BW/DQ (with AVX2 and FMA).
    Avx512,
}

impl Path {
    pub const ALL: [Path; 3] = [Path::Generic, Path::Avx2, Path::Avx512];

    pub fn name(self) -> &'static str {
        match self {
            Path::Generic => "generic",
            Path::Avx2 => "avx2",
            Path::Avx512 => "avx512",
        }
    }

    pub fn parse(name: &str) -> Option<Path> {
        Path::ALL
            .into_iter()
            .find(|p| p.name() == name.trim().to_ascii_lowercase())
    }

    /// Whether this CPU can run the path.
    pub fn is_supported(self) -> bool {
        match self {
            Path::Generic => true,
            #[cfg(target_arch = "x86_64")]
            Path::Avx2 => {
                std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
            }
            #[cfg(target_arch = "x86_64")]
            Path::Avx512 => {
                Path::Avx2.is_supported()
                    && std::is_x86_feature_detected!("avx512f")
                    && std::is_x86_feature_detected!("avx512bw")
                    && std::is_x86_feature_detected!("avx512dq")
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }
}

/// The widest path this CPU supports.
pub fn detected() -> Path {
    *Path::ALL
        .iter()
        .rev()
        .find(|p| p.is_supported())
        .unwrap_or(&Path::Generic)
}

/// Every path this CPU supports, narrowest first.
pub fn supported() -> Vec<Path> {
    Path::ALL.into_iter().filter(|p| p.is_supported()).collect()
}

struct Selection {
    path: Path,
    warning: Option<String>,
}

/// The path chosen from `GNNO_SIMD` (`requested`) and the CPU.
fn select(requested: Option<&str>) -> Selection {
    let auto = detected();
    let Some(raw) = requested.filter(|r| !r.trim().is_empty()) else {
        return Selection {
            path: auto,
            warning: None,
        };
    };
    match Path::parse(raw) {
        Some(p) if p.is_supported() => Selection {
            path: p,
            warning: None,
        },
        Some(p) => Selection {
            path: auto,
            warning: Some(format!(
                "GNNO_SIMD={raw:?}: this CPU does not support the {} path; using {}",
                p.name(),
                auto.name()
            )),
        },
        None => Selection {
            path: auto,
            warning: Some(format!(
                "GNNO_SIMD={raw:?} is not one of generic, avx2, avx512; using {}",
                auto.name()
            )),
        },
    }
}

fn selection() -> &'static Selection {
    static SELECTION: OnceLock<Selection> = OnceLock::new();
    SELECTION.get_or_init(|| select(std::env::var("GNNO_SIMD").ok().as_deref()))
}

/// The path every kernel of this process uses.
pub fn path() -> Path {
    selection().path
}

/// Why `GNNO_SIMD` was not honoured, if it was set and could not be.
pub fn selection_warning() -> Option<&'static str> {
    selection().warning.as_deref()
}

/// The kernels of one path, as plain function pointers.
#[derive(Clone, Copy)]
pub struct Kernels {
    pub path: Path,
    /// `Σ_i 1 / (1 + a_i·b)`.
    pub mean_recip: RecipFn,
    /// The candidate-major form of `mean_recip` where the path has one.
    pub sum_recip_many: Option<ManyFn>,
    /// `dst[i] = e^(src[i] − shift)` for `|src[i] − shift| <= 88`.
    pub exp_diff: ExpFn,
    /// `(min, max)` of a slice.
    pub min_max: MinMaxFn,
    /// `#{g in gaps : g <= k}`.
    pub count_le: CountFn,
}

impl Kernels {
    /// The kernels of `path`, or `None` where this CPU lacks it.
    pub fn for_path(path: Path) -> Option<Kernels> {
        if !path.is_supported() {
            return None;
        }
        let generic = Kernels {
            path: Path::Generic,
            mean_recip: generic,
            sum_recip_many: None,
            exp_diff: exp_diff_generic,
            min_max: min_max_generic,
            count_le: count_generic,
        };
        Some(match path {
            Path::Generic => generic,
            #[cfg(target_arch = "x86_64")]
            Path::Avx2 => Kernels {
                path,
                mean_recip: avx2,
                exp_diff: exp_diff_avx2,
                count_le: count_avx2,
                ..generic
            },
            #[cfg(target_arch = "x86_64")]
            Path::Avx512 => Kernels {
                path,
                mean_recip: avx512,
                sum_recip_many: Some(sum_recip_many_avx512_safe),
                exp_diff: exp_diff_avx512,
                min_max: min_max_avx512,
                count_le: count_avx512,
            },
            #[cfg(not(target_arch = "x86_64"))]
            _ => generic,
        })
    }
}

/// The kernels of [`path`], chosen once.
#[inline]
pub fn kernels() -> &'static Kernels {
    static KERNELS: OnceLock<Kernels> = OnceLock::new();
    KERNELS.get_or_init(|| Kernels::for_path(path()).expect("the selected path is supported"))
}

pub type CountFn = fn(&[u32], u32) -> usize;

#[inline(always)]
fn count_body(gaps: &[u32], k: u32) -> usize {
    gaps.iter().map(|&g| (g <= k) as u32).sum::<u32>() as usize
}

fn count_generic(gaps: &[u32], k: u32) -> usize {
    count_body(gaps, k)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn count_avx2_impl(gaps: &[u32], k: u32) -> usize {
    count_body(gaps, k)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn count_avx512_impl(gaps: &[u32], k: u32) -> usize {
    count_body(gaps, k)
}

#[cfg(target_arch = "x86_64")]
fn count_avx2(gaps: &[u32], k: u32) -> usize {
    // SAFETY: only reachable through `Kernels::for_path(Avx2 | Avx512)`,
    // which checks the CPU first.
    unsafe { count_avx2_impl(gaps, k) }
}

#[cfg(target_arch = "x86_64")]
fn count_avx512(gaps: &[u32], k: u32) -> usize {
    // SAFETY: only reachable through `Kernels::for_path(Avx512)`.
    unsafe { count_avx512_impl(gaps, k) }
}

pub type RecipFn = fn(&[f32], f32) -> f64;

#[inline(always)]
fn body(a: &[f32], b: f32) -> f64 {
    // Blocks of 256 terms are summed in f32 lanes, blocks in f64:
    // keeps the error near 1e-7 for rows of any length.
    let mut total = 0f64;
    for block in a.chunks(256) {
        let mut acc = [0f32; 16];
        let mut chunks = block.chunks_exact(16);
        for ch in &mut chunks {
            for l in 0..16 {
                acc[l] += 1.0 / (1.0 + ch[l] * b);
            }
        }
        let mut s: f32 = 0.0;
        for &x in chunks.remainder() {
            s += 1.0 / (1.0 + x * b);
        }
        total += acc.iter().map(|&x| x as f64).sum::<f64>() + s as f64;
    }
    total
}

fn generic(a: &[f32], b: f32) -> f64 {
    body(a, b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn avx2_impl(a: &[f32], b: f32) -> f64 {
    body(a, b)
}

/// AVX-512: the reciprocal from `rcp14` refined by one Newton step
/// (relative error about 2^-28, below f32 rounding) instead of a
/// division, fused multiply-adds, two accumulators.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn avx512_impl(a: &[f32], b: f32) -> f64 {
    use std::arch::x86_64::*;
    let vb = _mm512_set1_ps(b);
    let one = _mm512_set1_ps(1.0);
    let two = _mm512_set1_ps(2.0);
    let recip = |x: __m512| {
        let r = _mm512_rcp14_ps(x);
        _mm512_mul_ps(r, _mm512_fnmadd_ps(x, r, two))
    };
    let mut total = 0f64;
    for block in a.chunks(256) {
        let mut acc0 = _mm512_setzero_ps();
        let mut acc1 = _mm512_setzero_ps();
        let mut chunks = block.chunks_exact(32);
        for ch in &mut chunks {
            // SAFETY: `ch` holds 32 floats; unaligned loads.
            let x0 = _mm512_fmadd_ps(_mm512_loadu_ps(ch.as_ptr()), vb, one);
            let x1 = _mm512_fmadd_ps(_mm512_loadu_ps(ch.as_ptr().add(16)), vb, one);
            acc0 = _mm512_add_ps(acc0, recip(x0));
            acc1 = _mm512_add_ps(acc1, recip(x1));
        }
        let mut rest = chunks.remainder();
        while !rest.is_empty() {
            let n = rest.len().min(16);
            let mask: __mmask16 = ((1u32 << n) - 1) as __mmask16;
            // SAFETY: the masked load reads only the first `n` floats.
            let x = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask, rest.as_ptr()), vb, one);
            acc0 = _mm512_mask_add_ps(acc0, mask, acc0, recip(x));
            rest = &rest[n..];
        }
        total += _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1)) as f64;
    }
    total
}

#[cfg(target_arch = "x86_64")]
fn avx2(a: &[f32], b: f32) -> f64 {
    // SAFETY: only reachable through `Kernels::for_path`, which checked AVX2+FMA.
    unsafe { avx2_impl(a, b) }
}

#[cfg(target_arch = "x86_64")]
fn avx512(a: &[f32], b: f32) -> f64 {
    // SAFETY: only reachable through `Kernels::for_path`, which checked AVX-512F.
    unsafe { avx512_impl(a, b) }
}

pub type ManyFn = fn(&[f32], &mut [f32]);
pub type ExpFn = fn(&[f32], f32, &mut [f32]);

/// `e^x` for `|x| <= 88`: `2^n · p(r)` with `x = n·ln 2 + r`,
/// `|r| <= ln2/2`, and `p` the degree-7 Taylor polynomial (relative
/// error below 2e-8 before rounding). Plain arithmetic, so loops of it
/// vectorise; the libm call it replaces does not.
#[inline(always)]
pub fn exp_poly(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // Adding 1.5·2^23 rounds to the nearest integer and leaves it in the
    // low mantissa bits: `n` as float and as integer with no
    // float-to-int conversion (whose saturation checks do not vectorise).
    const MAGIC: f32 = 12_582_912.0;
    let t = x * std::f32::consts::LOG2_E + MAGIC;
    let n = t - MAGIC;
    let ni = t.to_bits() as i32 - 0x4B40_0000;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0
                        + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    let scale = f32::from_bits(((ni + 127) as u32) << 23);
    p * scale
}

#[inline(always)]
fn exp_diff_body(src: &[f32], shift: f32, dst: &mut [f32]) {
    for (d, &x) in dst.iter_mut().zip(src) {
        *d = exp_poly(x - shift);
    }
}

fn exp_diff_generic(src: &[f32], shift: f32, dst: &mut [f32]) {
    exp_diff_body(src, shift, dst)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn exp_diff_avx512_impl(src: &[f32], shift: f32, dst: &mut [f32]) {
    exp_diff_body(src, shift, dst)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn exp_diff_avx2_impl(src: &[f32], shift: f32, dst: &mut [f32]) {
    exp_diff_body(src, shift, dst)
}

#[cfg(target_arch = "x86_64")]
fn exp_diff_avx512(src: &[f32], shift: f32, dst: &mut [f32]) {
    // SAFETY: only reachable through `Kernels::for_path`, which checked AVX-512F.
    unsafe { exp_diff_avx512_impl(src, shift, dst) }
}

#[cfg(target_arch = "x86_64")]
fn exp_diff_avx2(src: &[f32], shift: f32, dst: &mut [f32]) {
    // SAFETY: only reachable through `Kernels::for_path`, which checked AVX2+FMA.
    unsafe { exp_diff_avx2_impl(src, shift, dst) }
}

pub type MinMaxFn = fn(&[f32]) -> (f32, f32);

/// `(min, max)` of a slice (infinities when empty), in 16 lanes.
#[inline(always)]
fn min_max_body(x: &[f32]) -> (f32, f32) {
    let mut lo = [f32::INFINITY; 16];
    let mut hi = [f32::NEG_INFINITY; 16];
    let mut chunks = x.chunks_exact(16);
    for ch in &mut chunks {
        for l in 0..16 {
            lo[l] = lo[l].min(ch[l]);
            hi[l] = hi[l].max(ch[l]);
        }
    }
    let mut l = lo.iter().fold(f32::INFINITY, |a, &b| a.min(b));
    let mut h = hi.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
    for &v in chunks.remainder() {
        l = l.min(v);
        h = h.max(v);
    }
    (l, h)
}

fn min_max_generic(x: &[f32]) -> (f32, f32) {
    min_max_body(x)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn min_max_avx512_impl(x: &[f32]) -> (f32, f32) {
    use std::arch::x86_64::*;
    let mut lo = _mm512_set1_ps(f32::INFINITY);
    let mut hi = _mm512_set1_ps(f32::NEG_INFINITY);
    let mut chunks = x.chunks_exact(16);
    for ch in &mut chunks {
        // SAFETY: `ch` holds 16 floats.
        let v = _mm512_loadu_ps(ch.as_ptr());
        lo = _mm512_min_ps(lo, v);
        hi = _mm512_max_ps(hi, v);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mask: __mmask16 = ((1u32 << rest.len()) - 1) as __mmask16;
        // SAFETY: the masked load reads only the remaining floats.
        let v = _mm512_maskz_loadu_ps(mask, rest.as_ptr());
        lo = _mm512_mask_min_ps(lo, mask, lo, v);
        hi = _mm512_mask_max_ps(hi, mask, hi, v);
    }
    (_mm512_reduce_min_ps(lo), _mm512_reduce_max_ps(hi))
}

#[cfg(target_arch = "x86_64")]
fn min_max_avx512(x: &[f32]) -> (f32, f32) {
    // SAFETY: only reachable through `Kernels::for_path`, which checked AVX-512F.
    unsafe { min_max_avx512_impl(x) }
}

/// Candidate-major AVX-512: lanes run over candidates and the loop over
/// positives broadcasts one `a_i` at a time, so there is no horizontal
/// reduction per candidate and four independent accumulators keep the
/// FMA and reciprocal units busy. `b[c]` is replaced by
/// `Σ_i 1 / (1 + a_i·b[c])`; blocks of 256 positives are summed in f32,
/// blocks in f64.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq")]
unsafe fn sum_recip_many_avx512(a: &[f32], b: &mut [f32]) {
    use std::arch::x86_64::*;
    let n = b.len();
    let mut c = 0;
    while c < n {
        let rest = (n - c).min(16 * MAX_VECTORS);
        let vectors = rest.div_ceil(16);
        let tail = rest - 16 * (vectors - 1);
        let mask: __mmask16 = if tail == 16 {
            0xFFFF
        } else {
            ((1u32 << tail) - 1) as __mmask16
        };
        match vectors {
            1 => group::<1>(a, b, c, mask),
            2 => group::<2>(a, b, c, mask),
            3 => group::<3>(a, b, c, mask),
            4 => group::<4>(a, b, c, mask),
            5 => group::<5>(a, b, c, mask),
            6 => group::<6>(a, b, c, mask),
            7 => group::<7>(a, b, c, mask),
            _ => group::<8>(a, b, c, mask),
        }
        c += rest;
    }
}

/// Candidates handled per pass over the positives, in 16-lane vectors:
/// 8 candidate vectors and 8 accumulators fit the 32 AVX-512 registers.
const MAX_VECTORS: usize = 8;

/// One pass over the positives for `V` vectors of candidates starting at
/// `c` (`last_mask` limits the last vector). `V` is a constant so the
/// vectors and accumulators live in registers.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq")]
unsafe fn group<const V: usize>(
    a: &[f32],
    b: &mut [f32],
    c: usize,
    last_mask: std::arch::x86_64::__mmask16,
) {
    use std::arch::x86_64::*;
    let one = _mm512_set1_ps(1.0);
    let two = _mm512_set1_ps(2.0);
    let mut vb = [_mm512_setzero_ps(); V];
    let mut total = [[_mm512_setzero_pd(); 2]; V];
    for (v, slot) in vb.iter_mut().enumerate() {
        let mask = if v + 1 == V { last_mask } else { 0xFFFF };
        // SAFETY: the mask limits the load to the candidates present.
        *slot = _mm512_maskz_loadu_ps(mask, b.as_ptr().add(c + 16 * v));
    }
    for block in a.chunks(256) {
        let mut acc = [_mm512_setzero_ps(); V];
        for &ai in block {
            let va = _mm512_set1_ps(ai);
            for v in 0..V {
                let x = _mm512_fmadd_ps(va, vb[v], one);
                let r = _mm512_rcp14_ps(x);
                let r = _mm512_mul_ps(r, _mm512_fnmadd_ps(x, r, two));
                acc[v] = _mm512_add_ps(acc[v], r);
            }
        }
        for v in 0..V {
            let lo = _mm512_cvtps_pd(_mm512_castps512_ps256(acc[v]));
            let hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(
                _mm512_castps_pd(acc[v]),
                1,
            )));
            total[v][0] = _mm512_add_pd(total[v][0], lo);
            total[v][1] = _mm512_add_pd(total[v][1], hi);
        }
    }
    for (v, t) in total.iter().enumerate() {
        let mask = if v + 1 == V { last_mask } else { 0xFFFF };
        let both = _mm512_insertf32x8(
            _mm512_castps256_ps512(_mm512_cvtpd_ps(t[0])),
            _mm512_cvtpd_ps(t[1]),
            1,
        );
        // SAFETY: masked store within the candidates present.
        _mm512_mask_storeu_ps(b.as_mut_ptr().add(c + 16 * v), mask, both);
    }
}

#[cfg(target_arch = "x86_64")]
fn sum_recip_many_avx512_safe(a: &[f32], b: &mut [f32]) {
    // SAFETY: only reachable through `Kernels::for_path`, which checked
    // AVX-512F and AVX-512DQ.
    unsafe { sum_recip_many_avx512(a, b) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_honours_supported_paths_and_reports_the_rest() {
        assert_eq!(select(None).path, detected());
        assert_eq!(select(Some("generic")).path, Path::Generic);
        assert!(select(Some(" Generic ")).warning.is_none());
        let bad = select(Some("sse9"));
        assert_eq!(bad.path, detected());
        assert!(bad.warning.unwrap().contains("sse9"));
        for p in Path::ALL {
            let s = select(Some(p.name()));
            if p.is_supported() {
                assert_eq!(s.path, p);
            } else {
                assert!(s.warning.is_some());
            }
        }
    }

    #[test]
    fn every_supported_path_agrees_with_the_generic_one() {
        let mut rng = crate::rng::Rng::new(5);
        let a: Vec<f32> = (0..1000).map(|_| rng.uniform() as f32 * 3.0).collect();
        let gaps: Vec<u32> = {
            let mut g: Vec<u32> = (0..700).map(|_| rng.below(5000) as u32).collect();
            g.sort_unstable();
            g
        };
        let base = Kernels::for_path(Path::Generic).unwrap();
        for p in supported() {
            let k = Kernels::for_path(p).unwrap();
            for n in [0usize, 1, 15, 16, 17, 255, 256, 1000] {
                let x = &a[..n];
                let (r0, r1) = ((base.mean_recip)(x, 0.7), (k.mean_recip)(x, 0.7));
                assert!((r0 - r1).abs() <= 1e-5 * (1.0 + r0.abs()), "{p:?} {n}");
                if n > 0 {
                    assert_eq!((base.min_max)(x), (k.min_max)(x));
                }
                let (mut e0, mut e1) = (vec![0f32; n], vec![0f32; n]);
                (base.exp_diff)(x, 1.0, &mut e0);
                (k.exp_diff)(x, 1.0, &mut e1);
                for (u, v) in e0.iter().zip(&e1) {
                    assert!((u - v).abs() <= 1e-6 * u.abs(), "{p:?}");
                }
                if let Some(many) = k.sum_recip_many {
                    let mut b: Vec<f32> = (0..37).map(|c| 0.05 * c as f32).collect();
                    let want: Vec<f64> = b.iter().map(|&bc| (base.mean_recip)(x, bc)).collect();
                    many(x, &mut b);
                    for (got, w) in b.iter().zip(&want) {
                        assert!((*got as f64 - w).abs() <= 1e-5 * (1.0 + w.abs()), "{p:?}");
                    }
                }
            }
            for kq in [0u32, 1, 100, 2500, 4999, 6000] {
                for n in [0usize, 3, 64, 700] {
                    assert_eq!(
                        (base.count_le)(&gaps[..n], kq),
                        (k.count_le)(&gaps[..n], kq)
                    );
                }
            }
        }
    }
}
