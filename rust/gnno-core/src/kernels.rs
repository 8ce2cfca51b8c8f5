//! The numeric kernels behind every score-based sampler.
//!
//! * [`sigmoid_expectation`]: `H[u, c] = mean_i σ(cand[u, c] − pos[i])` over a
//!   CSR row of positive scores (GDNS's "expectation").
//! * [`gain_update`]: `G = α·G_prev + (1 − α)·σ((H_prev − H)/(H + ε))`.
//! * [`topk`] / [`gumbel_topk`]: per-row selection, NaN-aware, ties to the
//!   lower column.
//! * [`score_dot`]: `⟨a_u, b_i⟩` for dot-product models, so scores never
//!   leave Rust on the fast path.
//!
//! All of them parallelise over rows in fixed blocks keyed by a
//! [`StreamKey`], so results do not depend on the thread count.

use rayon::prelude::*;

use crate::error::{check_finite_f32, Error, ErrorKind, Result};
use crate::rng::{purpose, Rng, StreamKey, BLOCK};

/// `|x − shift|` below this keeps `exp` products finite in `f32`
/// (`e^(2·40) ≈ 5.5e34 < f32::MAX`).
const FAST_RANGE: f32 = 40.0;

#[inline]
pub fn sigmoid(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

#[inline]
fn sigmoid64(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// Checks a CSR `indptr` over `n` values: starts at 0, non-decreasing, ends at `n`.
pub fn check_indptr(indptr: &[i64], n: usize, what: &str) -> Result<usize> {
    if indptr.is_empty() {
        return Err(Error::shape(
            "indptr must have at least one entry (n_users + 1)",
        ));
    }
    if indptr[0] != 0 {
        return Err(Error::value(format!(
            "indptr[0] must be 0, got {}",
            indptr[0]
        )));
    }
    for u in 0..indptr.len() - 1 {
        if indptr[u + 1] < indptr[u] {
            return Err(Error::value(format!(
                "indptr must be non-decreasing, but indptr[{u}]={} > indptr[{}]={}",
                indptr[u],
                u + 1,
                indptr[u + 1]
            )));
        }
    }
    let last = indptr[indptr.len() - 1];
    if last as u64 != n as u64 {
        return Err(Error::shape(format!(
            "indptr[-1]={last} must equal the number of {what} ({n})"
        )));
    }
    Ok(indptr.len() - 1)
}

/// Reusable buffers for one user's positives; keep one per thread and
/// pass it to [`expectation_for_user`] for every user.
#[derive(Default)]
pub struct Scratch {
    pos: Vec<f32>,
    exp_pos: Vec<f32>,
    pick: Vec<u32>,
}

/// Selects up to `cap` positives of a row (all of them when the row is
/// small), with a per-user stream so the choice is thread-count free.
fn pick_positives<'a>(
    row: &'a [f32],
    cap: Option<usize>,
    key: StreamKey,
    user: usize,
    scratch: &'a mut Scratch,
) -> &'a [f32] {
    match cap {
        Some(c) if row.len() > c => {
            let mut rng = key.rng(purpose::POSITIVES, user as u64);
            scratch.pick.clear();
            scratch.pick.extend(0..row.len() as u32);
            // Partial Fisher–Yates: the first `c` slots become a uniform
            // sample without replacement.
            for t in 0..c {
                let j = t + rng.below((row.len() - t) as u64) as usize;
                scratch.pick.swap(t, j);
            }
            scratch.pos.clear();
            scratch
                .pos
                .extend(scratch.pick[..c].iter().map(|&p| row[p as usize]));
            &scratch.pos
        }
        _ => row,
    }
}

/// `H` for one user: `out[c] = mean_i σ(cand[c] − pos[i])`.
///
/// Fast path: with `a_i = e^(p_i − s)` and `b = e^(s − c)`,
/// `σ(c − p_i) = 1 / (1 + a_i·b)`: one multiply-add and one division per
/// pair instead of an `exp`. Rows whose scores spread too far from the
/// shift `s` for `f32` take the exact path.
fn expectation_row(pos: &[f32], cand: &[f32], out: &mut [f32], exp_pos: &mut Vec<f32>) {
    if pos.is_empty() {
        out.fill(f32::NAN);
        return;
    }
    let n = pos.len() as f64;
    // Any shift works if every |x − shift| stays within FAST_RANGE: the
    // midpoint of the positives' range, from branch-free min/max passes.
    let kern = simd::kernels();
    let min_max = kern.min_max;
    let (lo, hi) = min_max(pos);
    let shift = 0.5 * (lo + hi);
    let (c_lo, c_hi) = min_max(cand);
    let in_range = hi - shift <= FAST_RANGE
        && shift - lo <= FAST_RANGE
        && c_hi - shift <= FAST_RANGE
        && shift - c_lo <= FAST_RANGE;
    if in_range {
        exp_pos.clear();
        exp_pos.resize(pos.len(), 0.0);
        let exp = kern.exp_diff;
        exp(pos, shift, exp_pos);
        exp(cand, shift, out);
        for o in out.iter_mut() {
            *o = 1.0 / *o; // e^(s − c) from e^(c − s)
        }
        // `out` holds each candidate's `b`; the sums replace it in place.
        match kern.sum_recip_many {
            Some(many) => many(exp_pos, out),
            None => {
                let recip = kern.mean_recip;
                for o in out.iter_mut() {
                    *o = recip(exp_pos, *o) as f32;
                }
            }
        }
        for o in out.iter_mut() {
            *o = (*o as f64 / n) as f32;
        }
    } else {
        for (o, &c) in out.iter_mut().zip(cand) {
            let s: f64 = pos.iter().map(|&p| sigmoid64(c as f64 - p as f64)).sum();
            *o = (s / n) as f32;
        }
    }
}

/// `mean_i σ(c − raw[i])` from positives prepared as `exp[i] = e^(raw[i] −
/// shift)` (`fast`: every `|raw[i] − shift| <= FAST_RANGE`); NaN without
/// positives. One candidate at a time: the draw-time gain.
#[inline]
pub fn expectation_prepared(
    raw: &[f32],
    exp: &[f32],
    shift: f32,
    fast: bool,
    c: f32,
    recip: simd::RecipFn,
) -> f32 {
    if raw.is_empty() {
        return f32::NAN;
    }
    let n = raw.len() as f64;
    if fast && (c - shift).abs() <= FAST_RANGE {
        (recip(exp, simd::exp_poly(shift - c)) / n) as f32
    } else {
        (raw.iter()
            .map(|&p| sigmoid64(c as f64 - p as f64))
            .sum::<f64>()
            / n) as f32
    }
}

/// Prepares `raw` for [`expectation_prepared`]: fills `exp`, returns
/// `(shift, fast)`.
pub fn prepare_positives(raw: &[f32], exp: &mut [f32]) -> (f32, bool) {
    if raw.is_empty() {
        return (0.0, false);
    }
    let kern = simd::kernels();
    let (lo, hi) = (kern.min_max)(raw);
    let shift = 0.5 * (lo + hi);
    let fast = hi - shift <= FAST_RANGE && shift - lo <= FAST_RANGE;
    if fast {
        (kern.exp_diff)(raw, shift, exp);
    }
    (shift, fast)
}

pub use crate::simd;

/// `H[u, c] = mean_{i ∈ row u} σ(cand[u·m + c] − pos[i])`, row-major
/// `n_users × m`; a user without positives gets NaN. With `max_positives`,
/// the mean runs over a seeded sample of at most that many positives.
pub fn sigmoid_expectation(
    indptr: &[i64],
    pos_scores: &[f32],
    cand_scores: &[f32],
    m: usize,
    max_positives: Option<usize>,
    key: StreamKey,
) -> Result<Vec<f32>> {
    let n_users = check_indptr(indptr, pos_scores.len(), "positive scores")?;
    if cand_scores.len() != n_users * m {
        return Err(Error::shape(format!(
            "cand_scores must have n_users × m = {n_users} × {m} = {} entries, got {}",
            n_users * m,
            cand_scores.len()
        )));
    }
    if max_positives == Some(0) {
        return Err(Error::value("max_positives must be at least 1"));
    }
    check_finite_f32("pos_scores", pos_scores)?;
    check_finite_f32("cand_scores", cand_scores)?;
    let mut out = vec![0f32; n_users * m];
    if m == 0 {
        return Ok(out);
    }
    crate::pool::install(|| {
        out.par_chunks_mut(m * 16).enumerate().for_each_init(
            Scratch::default,
            |scratch, (chunk, out)| {
                for (r, out_row) in out.chunks_mut(m).enumerate() {
                    let u = chunk * 16 + r;
                    let row = &pos_scores[indptr[u] as usize..indptr[u + 1] as usize];
                    let cand = &cand_scores[u * m..(u + 1) * m];
                    let mut exp_pos = std::mem::take(&mut scratch.exp_pos);
                    let pos = pick_positives(row, max_positives, key, u, scratch);
                    expectation_row(pos, cand, out_row, &mut exp_pos);
                    scratch.exp_pos = exp_pos;
                }
            },
        )
    });
    Ok(out)
}

/// `H` for one user from raw scores, used by the samplers on their own rows.
pub fn expectation_for_user(
    pos: &[f32],
    cand: &[f32],
    out: &mut [f32],
    cap: Option<usize>,
    key: StreamKey,
    user: usize,
    scratch: &mut Scratch,
) {
    let mut exp_pos = std::mem::take(&mut scratch.exp_pos);
    let pos = pick_positives(pos, cap, key, user, scratch);
    expectation_row(pos, cand, out, &mut exp_pos);
    scratch.exp_pos = exp_pos;
}

/// Checks `alpha ∈ [0, 1]` and `eps > 0`.
pub fn check_gain_params(alpha: f32, eps: f32) -> Result<()> {
    if !(0.0..=1.0).contains(&alpha) {
        return Err(Error::value(format!(
            "alpha must be in [0, 1], got {alpha}"
        )));
    }
    if !(eps.is_finite() && eps > 0.0) {
        return Err(Error::value(format!(
            "eps must be finite and > 0, got {eps}"
        )));
    }
    Ok(())
}

/// One gain step for a single slot; NaN in `h_prev` or `h_now` means "no
/// observation" and keeps `g_prev`.
#[inline]
pub fn gain_step(h_prev: f32, h_now: f32, g_prev: f32, alpha: f32, eps: f32) -> f32 {
    gain_step_over(h_prev, h_now, g_prev, alpha, eps, 1.0)
}

/// [`gain_step`] with `h_prev` measured `lag` refreshes before `h_now`: the
/// fall per refresh, `α·g_prev + (1 − α)·σ((h_prev − h_now)/(lag·(h_now + ε)))`
/// (`lag = 1` is `gain_step` bit for bit).
#[inline]
pub fn gain_step_over(h_prev: f32, h_now: f32, g_prev: f32, alpha: f32, eps: f32, lag: f32) -> f32 {
    if h_prev.is_nan() || h_now.is_nan() {
        g_prev
    } else {
        alpha * g_prev + (1.0 - alpha) * sigmoid((h_prev - h_now) / (lag * (h_now + eps)))
    }
}

/// Element-wise [`gain_step`] over equally long arrays.
pub fn gain_update(
    h_prev: &[f32],
    h_now: &[f32],
    g_prev: &[f32],
    alpha: f32,
    eps: f32,
) -> Result<Vec<f32>> {
    check_gain_params(alpha, eps)?;
    if h_prev.len() != h_now.len() || h_now.len() != g_prev.len() {
        return Err(Error::shape(format!(
            "h_prev, h_now and g_prev must have the same shape, got {}, {} and {} entries",
            h_prev.len(),
            h_now.len(),
            g_prev.len()
        )));
    }
    for (name, a) in [("h_prev", h_prev), ("h_now", h_now)] {
        if let Some(p) = a.iter().position(|v| v.is_infinite()) {
            return Err(Error::non_finite(name, a[p] as f64, p));
        }
    }
    check_finite_f32("g_prev", g_prev)?;
    let mut out = vec![0f32; g_prev.len()];
    crate::pool::install(|| {
        out.par_chunks_mut(4096).enumerate().for_each(|(c, o)| {
            let base = c * 4096;
            for (k, slot) in o.iter_mut().enumerate() {
                let i = base + k;
                *slot = gain_step(h_prev[i], h_now[i], g_prev[i], alpha, eps);
            }
        })
    });
    Ok(out)
}

/// `a` ranks above `b`: larger value, NaN last, ties to the lower column.
#[inline]
fn ranks_above(a: (f32, usize), b: (f32, usize)) -> bool {
    match (a.0.is_nan(), b.0.is_nan()) {
        (true, true) => a.1 < b.1,
        (true, false) => false,
        (false, true) => true,
        (false, false) => a.0 > b.0 || (a.0 == b.0 && a.1 < b.1),
    }
}

/// Top `k` columns of one row into `idx` (sorted best first).
pub fn topk_row(values: &[f32], k: usize, idx: &mut [i64]) {
    // Insertion into a small sorted buffer: k is small in every use.
    let mut best: Vec<(f32, usize)> = Vec::with_capacity(k + 1);
    for (c, &v) in values.iter().enumerate() {
        if best.len() == k {
            if !ranks_above((v, c), best[k - 1]) {
                continue;
            }
            best.pop();
        }
        let pos = best.partition_point(|&b| ranks_above(b, (v, c)));
        best.insert(pos, (v, c));
    }
    for (o, b) in idx.iter_mut().zip(&best) {
        *o = b.1 as i64;
    }
}

fn check_rows(values: &[f32], m: usize, k: usize) -> Result<usize> {
    if m == 0 {
        return Err(Error::shape("values must have at least one column"));
    }
    if !values.len().is_multiple_of(m) {
        return Err(Error::shape(format!(
            "values of length {} is not a multiple of m={m}",
            values.len()
        )));
    }
    if k == 0 || k > m {
        return Err(Error::value(format!(
            "k must be in [1, {m}] (the number of columns), got {k}"
        )));
    }
    if let Some(p) = values.iter().position(|v| v.is_infinite()) {
        return Err(Error::non_finite("values", values[p] as f64, p));
    }
    Ok(values.len() / m)
}

/// Per-row top-`k` column indices (`rows × k`), best first; NaN ranks last,
/// ties go to the lower column.
pub fn topk(values: &[f32], m: usize, k: usize) -> Result<Vec<i64>> {
    let rows = check_rows(values, m, k)?;
    let mut out = vec![0i64; rows * k];
    crate::pool::install(|| {
        out.par_chunks_mut(k)
            .zip(values.par_chunks(m))
            .for_each(|(o, v)| topk_row(v, k, o))
    });
    Ok(out)
}

/// Per-row sampling of `k` distinct columns without replacement with
/// probabilities ∝ softmax(values / temperature) (the Gumbel-top-k trick).
/// NaN entries are never picked before finite ones.
pub fn gumbel_topk(
    values: &[f32],
    m: usize,
    k: usize,
    temperature: f32,
    key: StreamKey,
) -> Result<Vec<i64>> {
    let rows = check_rows(values, m, k)?;
    if !(temperature.is_finite() && temperature > 0.0) {
        return Err(Error::value(format!(
            "temperature must be finite and > 0, got {temperature}"
        )));
    }
    let mut out = vec![0i64; rows * k];
    crate::pool::install(|| {
        out.par_chunks_mut(k * BLOCK)
            .zip(values.par_chunks(m * BLOCK))
            .enumerate()
            .for_each(|(b, (o, v))| {
                let mut rng = key.rng(purpose::GUMBEL, b as u64);
                let mut buf = vec![0f32; m];
                for (orow, vrow) in o.chunks_mut(k).zip(v.chunks(m)) {
                    perturb(vrow, temperature, &mut rng, &mut buf);
                    topk_row(&buf, k, orow);
                }
            })
    });
    Ok(out)
}

/// `buf[c] = values[c] / t + Gumbel`, NaN kept as NaN.
#[inline]
pub fn perturb(values: &[f32], temperature: f32, rng: &mut Rng, buf: &mut [f32]) {
    for (b, &v) in buf.iter_mut().zip(values) {
        let g = rng.gumbel() as f32;
        *b = if v.is_nan() {
            f32::NAN
        } else {
            v / temperature + g
        };
    }
}

/// The largest score two vectors may reach: `|⟨u, i⟩| ≤ ‖u‖·‖i‖`
/// (Cauchy–Schwarz bounds every partial sum of the dot product too), kept
/// at half of `f32::MAX` so that rounding cannot reach infinity.
const MAX_SCORE_BOUND: f64 = f32::MAX as f64 / 2.0;

/// Fails when some user's score of some item could overflow `f32`: the
/// largest user norm times the largest item norm exceeds
/// [`MAX_SCORE_BOUND`]. Below it every score is finite, so no draw or
/// refresh meets an infinite or NaN score.
fn check_scores_fit(users: &[f32], items: &[f32], dim: usize) -> Result<()> {
    let largest = |v: &[f32]| {
        v.chunks_exact(dim)
            .map(|r| r.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>())
            .enumerate()
            .fold(
                (0usize, 0f64),
                |best, (r, n)| if n > best.1 { (r, n) } else { best },
            )
    };
    let (u, nu) = largest(users);
    let (i, ni) = largest(items);
    let (nu, ni) = (nu.sqrt(), ni.sqrt());
    if nu * ni > MAX_SCORE_BOUND {
        return Err(Error::new(
            ErrorKind::NonFinite,
            format!(
                "user_vectors and item_vectors are too large to score in float32: user {u}'s \
                 vector has norm {nu:.3e} and item {i}'s {ni:.3e}, so their score could reach \
                 {:.3e} (the limit is {MAX_SCORE_BOUND:.3e}); scale the vectors down",
                nu * ni
            ),
        ));
    }
    Ok(())
}

/// Dense vectors of a dot-product model: `score(u, i) = ⟨users[u], items[i]⟩`.
#[derive(Debug, Clone)]
pub struct Embeddings {
    pub dim: usize,
    pub users: Vec<f32>,
    pub items: Vec<f32>,
}

impl Embeddings {
    pub fn new(
        users: Vec<f32>,
        items: Vec<f32>,
        dim: usize,
        n_users: usize,
        n_items: usize,
    ) -> Result<Self> {
        if dim == 0 {
            return Err(Error::shape("embedding dimension must be at least 1"));
        }
        if users.len() != n_users * dim {
            return Err(Error::shape(format!(
                "user vectors must be n_users × dim = {n_users} × {dim}, got {} values",
                users.len()
            )));
        }
        if items.len() != n_items * dim {
            return Err(Error::shape(format!(
                "item vectors must be n_items × dim = {n_items} × {dim}, got {} values",
                items.len()
            )));
        }
        check_finite_f32("user_vectors", &users)?;
        check_finite_f32("item_vectors", &items)?;
        check_scores_fit(&users, &items, dim)?;
        Ok(Self { dim, users, items })
    }

    #[inline]
    pub fn user(&self, u: usize) -> &[f32] {
        &self.users[u * self.dim..(u + 1) * self.dim]
    }

    #[inline]
    pub fn item(&self, i: usize) -> &[f32] {
        &self.items[i * self.dim..(i + 1) * self.dim]
    }

    #[inline]
    pub fn score(&self, u: &[f32], i: usize) -> f32 {
        dot(u, self.item(i))
    }

    /// Asks the CPU to start loading item `i`'s vector (a hint; no effect
    /// on results), so that several rows' cache misses overlap.
    #[inline]
    pub fn prefetch_item(&self, i: usize) {
        prefetch(self.item(i));
    }
}

/// Hints the CPU to load `data` into cache (x86-64; elsewhere nothing).
#[inline]
pub fn prefetch<T>(data: &[T]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        const LINE: usize = 64;
        let start = data.as_ptr().cast::<i8>();
        let bytes = std::mem::size_of_val(data);
        for offset in (0..bytes).step_by(LINE) {
            // SAFETY: `offset` stays inside the live slice, and a prefetch
            // is a hint that never faults.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(start.add(offset)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = data;
}

#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let mut ca = a.chunks_exact(8);
    let mut cb = b.chunks_exact(8);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
        s += x * y;
    }
    s
}

/// Scores of `(users[k], items[k])` pairs from vectors.
pub fn score_dot(emb: &Embeddings, users: &[i64], items: &[i64]) -> Vec<f32> {
    let mut out = vec![0f32; users.len()];
    crate::pool::install(|| {
        out.par_chunks_mut(4096).enumerate().for_each(|(c, o)| {
            for (k, s) in o.iter_mut().enumerate() {
                let p = c * 4096 + k;
                *s = emb.score(emb.user(users[p] as usize), items[p] as usize);
            }
        })
    });
    out
}

/// Fused path for dot-product models: `H` of `cand_items` (row-major
/// `n_users × m`, `-1` = empty slot → NaN) against each user's CSR
/// positives, plus the candidates' scores, without materialising any
/// `nnz × m` array. Returns `(H, candidate scores)`.
pub fn expectation_from_vectors(
    indptr: &[i64],
    indices: &[u32],
    emb: &Embeddings,
    cand_items: &[i64],
    m: usize,
    max_positives: Option<usize>,
    key: StreamKey,
) -> Result<(Vec<f32>, Vec<f32>)> {
    let n_users = check_indptr(indptr, indices.len(), "positives")?;
    let n_items = emb.items.len() / emb.dim;
    if emb.users.len() / emb.dim != n_users {
        return Err(Error::shape(format!(
            "user vectors have {} rows, the interactions {n_users} users",
            emb.users.len() / emb.dim
        )));
    }
    if cand_items.len() != n_users * m {
        return Err(Error::shape(format!(
            "candidate items must be n_users × m = {n_users} × {m}, got {} entries",
            cand_items.len()
        )));
    }
    if let Some(p) = cand_items
        .iter()
        .position(|&i| i < -1 || i >= n_items as i64)
    {
        return Err(Error::id_out_of_range(
            "item",
            cand_items[p],
            "n_items",
            n_items,
            "candidates",
            p,
        ));
    }
    if let Some(p) = indices.iter().position(|&i| i as usize >= n_items) {
        return Err(Error::id_out_of_range(
            "item",
            indices[p] as i64,
            "n_items",
            n_items,
            "indices",
            p,
        ));
    }
    if max_positives == Some(0) {
        return Err(Error::value("max_positives must be at least 1"));
    }
    let mut h = vec![0f32; n_users * m];
    let mut scores = vec![0f32; n_users * m];
    if m == 0 {
        return Ok((h, scores));
    }
    crate::pool::install(|| {
        h.par_chunks_mut(m)
            .zip(scores.par_chunks_mut(m))
            .enumerate()
            .for_each_init(
                || (Vec::new(), Vec::new(), Scratch::default()),
                |(pos, cand, scratch), (u, (h_row, s_row))| {
                    let uv = emb.user(u);
                    pos.clear();
                    pos.extend(
                        indices[indptr[u] as usize..indptr[u + 1] as usize]
                            .iter()
                            .map(|&i| emb.score(uv, i as usize)),
                    );
                    let items = &cand_items[u * m..(u + 1) * m];
                    for (s, &i) in s_row.iter_mut().zip(items) {
                        *s = if i < 0 {
                            0.0
                        } else {
                            emb.score(uv, i as usize)
                        };
                    }
                    cand.clear();
                    cand.extend_from_slice(s_row);
                    expectation_for_user(pos, cand, h_row, max_positives, key, u, scratch);
                    for (k, &i) in items.iter().enumerate() {
                        if i < 0 {
                            h_row[k] = f32::NAN;
                            s_row[k] = f32::NAN;
                        }
                    }
                },
            )
    });
    Ok((h, scores))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(indptr: &[i64], pos: &[f32], cand: &[f32], m: usize) -> Vec<f64> {
        let n = indptr.len() - 1;
        let mut out = vec![0f64; n * m];
        for u in 0..n {
            let row = &pos[indptr[u] as usize..indptr[u + 1] as usize];
            for c in 0..m {
                out[u * m + c] = if row.is_empty() {
                    f64::NAN
                } else {
                    row.iter()
                        .map(|&p| sigmoid64(cand[u * m + c] as f64 - p as f64))
                        .sum::<f64>()
                        / row.len() as f64
                };
            }
        }
        out
    }

    #[test]
    fn expectation_matches_float64_reference() {
        let mut rng = Rng::new(11);
        let degrees = [0usize, 1, 3, 17, 300, 2500, 0, 40];
        let mut indptr = vec![0i64];
        let mut pos = vec![];
        for (u, &d) in degrees.iter().enumerate() {
            for _ in 0..d {
                let scale = if u == 7 { 80.0 } else { 4.0 };
                pos.push(((rng.uniform() - 0.5) * 2.0 * scale) as f32);
            }
            indptr.push(pos.len() as i64);
        }
        let m = 33;
        let cand: Vec<f32> = (0..degrees.len() * m)
            .map(|_| ((rng.uniform() - 0.5) * 12.0) as f32)
            .collect();
        let h = sigmoid_expectation(&indptr, &pos, &cand, m, None, StreamKey::default()).unwrap();
        let r = reference(&indptr, &pos, &cand, m);
        for (a, b) in h.iter().zip(&r) {
            if b.is_nan() {
                assert!(a.is_nan());
            } else {
                assert!((*a as f64 - b).abs() <= 1e-5, "{a} vs {b}");
            }
        }
    }

    #[test]
    fn polynomial_exp_is_accurate_over_the_fast_range() {
        let xs: Vec<f32> = (-8000..=8000).map(|k| k as f32 * 0.01).collect();
        let mut out = vec![0f32; xs.len()];
        (simd::kernels().exp_diff)(&xs, 0.0, &mut out);
        for (&x, &y) in xs.iter().zip(&out) {
            let exact = (x as f64).exp();
            assert!(
                ((y as f64 - exact) / exact).abs() < 3e-7,
                "exp({x}) = {y}, want {exact}"
            );
        }
    }

    #[test]
    fn expectation_rejects_bad_input() {
        assert!(
            sigmoid_expectation(&[0, 2], &[0.0], &[0.0], 1, None, StreamKey::default()).is_err()
        );
        assert!(
            sigmoid_expectation(&[0, 1], &[f32::NAN], &[0.0], 1, None, StreamKey::default())
                .is_err()
        );
        assert!(
            sigmoid_expectation(&[0, 1], &[0.0], &[0.0, 1.0], 1, None, StreamKey::default())
                .is_err()
        );
        assert!(
            sigmoid_expectation(&[1, 1], &[0.0], &[0.0], 1, None, StreamKey::default()).is_err()
        );
    }

    #[test]
    fn capped_positives_are_a_subset_mean() {
        let indptr = [0i64, 6];
        let pos = [0.0f32, 1.0, 2.0, 3.0, 4.0, 5.0];
        let h = sigmoid_expectation(&indptr, &pos, &[2.5], 1, Some(2), StreamKey::new(1, 0, 0))
            .unwrap();
        // Mean of two of the six sigmoids: within the possible range.
        assert!(h[0] > sigmoid(2.5 - 5.0) && h[0] < sigmoid(2.5));
        let h2 = sigmoid_expectation(&indptr, &pos, &[2.5], 1, Some(2), StreamKey::new(1, 0, 0))
            .unwrap();
        assert_eq!(h, h2);
    }

    #[test]
    fn gain_keeps_g_without_previous_h() {
        let g = gain_update(&[f32::NAN, 0.5], &[0.4, 0.25], &[0.5, 0.5], 0.2, 1e-6).unwrap();
        assert_eq!(g[0], 0.5);
        let expect = 0.2 * 0.5 + 0.8 * sigmoid((0.5 - 0.25) / (0.25 + 1e-6));
        assert!((g[1] - expect).abs() < 1e-6);
        assert!(gain_update(&[0.1], &[0.1], &[0.5], 1.5, 1e-6).is_err());
    }

    #[test]
    fn topk_breaks_ties_low_and_puts_nan_last() {
        let v = [1.0, f32::NAN, 3.0, 3.0, 2.0];
        assert_eq!(topk(&v, 5, 3).unwrap(), vec![2, 3, 4]);
        let v = [f32::NAN, f32::NAN, 0.0];
        assert_eq!(topk(&v, 3, 2).unwrap(), vec![2, 0]);
    }

    #[test]
    fn gumbel_topk_follows_softmax() {
        let m = 3;
        let rows = 30_000;
        let base = [0.0f32, (2.0f32).ln(), (3.0f32).ln()];
        let v: Vec<f32> = (0..rows).flat_map(|_| base).collect();
        let idx = gumbel_topk(&v, m, 1, 1.0, StreamKey::new(9, 0, 0)).unwrap();
        let mut c = [0usize; 3];
        for i in idx {
            c[i as usize] += 1;
        }
        for (j, &cj) in c.iter().enumerate() {
            let p = (j + 1) as f64 / 6.0;
            assert!((cj as f64 / rows as f64 - p).abs() < 0.015, "{c:?}");
        }
    }

    #[test]
    fn embeddings_whose_scores_could_overflow_are_refused() {
        // 1e19 × 1e19 · 2 dims would score 2e38 (finite) or overflow with
        // rounding; the bound refuses it and names the rows.
        let big = 1.0e19f32;
        let err = Embeddings::new(vec![0.0, 0.0, big, big], vec![big, big], 2, 2, 1).unwrap_err();
        assert_eq!(err.kind, ErrorKind::NonFinite);
        assert!(
            err.message.contains("user 1") && err.message.contains("item 0"),
            "{err:?}"
        );
        // Large but safe vectors pass, and every score stays finite.
        let ok =
            Embeddings::new(vec![1.0e9, 0.0], vec![0.0, 1.0e9, 1.0e9, 1.0e9], 2, 1, 2).unwrap();
        assert!(ok.score(ok.user(0), 1).is_finite());
    }

    #[test]
    fn fused_matches_two_step() {
        let (n_users, n_items, dim) = (5usize, 9usize, 4usize);
        let mut rng = Rng::new(2);
        let users: Vec<f32> = (0..n_users * dim)
            .map(|_| rng.uniform() as f32 - 0.5)
            .collect();
        let items: Vec<f32> = (0..n_items * dim)
            .map(|_| rng.uniform() as f32 - 0.5)
            .collect();
        let emb = Embeddings::new(users, items, dim, n_users, n_items).unwrap();
        let indptr = [0i64, 2, 2, 5, 6, 8];
        let indices = [0u32, 3, 1, 2, 8, 4, 5, 6];
        let cand: Vec<i64> = vec![1, 2, -1, 0, 4, 5, 3, 4, 7, 0, 1, 2, 6, 7, 8];
        let (h, s) = expectation_from_vectors(
            &indptr,
            &indices,
            &emb,
            &cand,
            3,
            None,
            StreamKey::default(),
        )
        .unwrap();
        let pos: Vec<f32> = (0..5)
            .flat_map(|u| {
                let emb = &emb;
                indices[indptr[u] as usize..indptr[u + 1] as usize]
                    .iter()
                    .map(move |&i| emb.score(emb.user(u), i as usize))
            })
            .collect();
        let cs: Vec<f32> = (0..15)
            .map(|k| {
                if cand[k] < 0 {
                    0.0
                } else {
                    emb.score(emb.user(k / 3), cand[k] as usize)
                }
            })
            .collect();
        let h2 = sigmoid_expectation(&indptr, &pos, &cs, 3, None, StreamKey::default()).unwrap();
        for k in 0..15 {
            if cand[k] < 0 || indptr[k / 3] == indptr[k / 3 + 1] {
                assert!(h[k].is_nan());
            } else {
                assert!((h[k] - h2[k]).abs() < 1e-6);
                assert!((s[k] - cs[k]).abs() < 1e-6);
            }
        }
    }
}
