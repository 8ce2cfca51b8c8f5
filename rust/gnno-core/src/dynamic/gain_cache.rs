//! The draw-time gain's cache: per user, a fixed subset of positives
//! scored under the previous and the current snapshot.

use rayon::prelude::*;

use super::{Criterion, DynamicSampler};
use crate::alloc;
use crate::error::Result;
use crate::kernels::{expectation_prepared, prepare_positives, simd, Embeddings};
use crate::rng::{purpose, StreamKey};

/// Per user, a fixed subset of positives scored under the previous and the
/// current snapshot, so that `H` of any candidate under both, and so its
/// one-step gain, costs two short vector passes.
///
/// Flat, one contiguous record per user, so a draw touches a few adjacent
/// cache lines: `[raw_prev | exp_prev | raw_now | exp_now]`, `cap` each.
pub struct GainCache {
    cap: usize,
    len: Vec<u32>,
    /// Per user: `(shift, fast)` under the previous and current snapshot.
    prepared: Vec<[(f32, bool); 2]>,
    data: Vec<f32>,
}

impl GainCache {
    /// `H` of a candidate scored `c` under snapshot `which` (0 = previous, 1 = current).
    #[inline]
    pub(super) fn expectation(&self, u: usize, which: usize, c: f32, recip: simd::RecipFn) -> f32 {
        let n = self.len[u] as usize;
        let base = u * 4 * self.cap + which * 2 * self.cap;
        let raw = &self.data[base..base + n];
        let exp = &self.data[base + self.cap..base + self.cap + n];
        let (shift, fast) = self.prepared[u][which];
        expectation_prepared(raw, exp, shift, fast, c, recip)
    }

    /// Starts loading user `u`'s record (see [`crate::kernels::prefetch`]).
    #[inline]
    pub(super) fn prefetch(&self, u: usize) {
        let base = u * 4 * self.cap;
        crate::kernels::prefetch(&self.data[base..base + 4 * self.cap]);
    }
}

impl DynamicSampler {
    /// The cache for snapshots `prev` and `now` (the `snapshots`-th), or
    /// `None` where the criterion does not use it or a snapshot is missing.
    pub(super) fn build_gain_cache(
        &self,
        prev: Option<&Embeddings>,
        now: Option<&Embeddings>,
        snapshots: u64,
    ) -> Result<Option<GainCache>> {
        let cap = self.draw_cfg.gain_positives;
        let uses_gain = matches!(
            self.draw_cfg.criterion,
            Criterion::Gain { .. }
                | Criterion::GainAdditive { .. }
                | Criterion::GainOnly
                | Criterion::GainVeto { .. }
                | Criterion::GainNormalized { .. }
        );
        let (Some(prev), Some(now)) = (prev, now) else {
            return Ok(None);
        };
        if cap == 0 || !uses_gain {
            return Ok(None);
        }
        let train = &*self.train;
        // No row is longer than the longest one: a larger `gain_positives`
        // selects the same positives, so the cache stops there.
        let longest = (0..train.n_users()).map(|u| train.degree(u)).max();
        let cap = cap.min(longest.unwrap_or(0)).max(1);
        let key = StreamKey::new(self.stream.seed, snapshots, u64::MAX);
        let n_users = train.n_users();
        let what = format!("the gain cache (n_users × 4 × gain_positives={cap})");
        let mut len = alloc::filled(&what, n_users, 0u32)?;
        let mut prepared = alloc::filled(&what, n_users, [(0f32, false); 2])?;
        let mut data = alloc::filled_product(&what, &[n_users, 4, cap], 0f32)?;
        crate::pool::install(|| {
            data.par_chunks_mut(4 * cap)
                .zip(len.par_iter_mut())
                .zip(prepared.par_iter_mut())
                .enumerate()
                .for_each_init(Vec::new, |pick, (u, ((record, len), prepared))| {
                    let row = train.row(u);
                    pick.clear();
                    pick.extend_from_slice(row);
                    if pick.len() > cap {
                        let mut rng = key.rng(purpose::POSITIVES, u as u64);
                        for t in 0..cap {
                            let j = t + rng.below((pick.len() - t) as u64) as usize;
                            pick.swap(t, j);
                        }
                        pick.truncate(cap);
                    }
                    *len = pick.len() as u32;
                    for (which, e) in [prev, now].into_iter().enumerate() {
                        let (raw, exp) =
                            record[which * 2 * cap..(which + 1) * 2 * cap].split_at_mut(cap);
                        let uv = e.user(u);
                        for (r, &i) in raw.iter_mut().zip(pick.iter()) {
                            *r = e.score(uv, i as usize);
                        }
                        let n = pick.len();
                        prepared[which] = prepare_positives(&raw[..n], &mut exp[..n]);
                    }
                })
        });
        Ok(Some(GainCache {
            cap,
            len,
            prepared,
            data,
        }))
    }
}
