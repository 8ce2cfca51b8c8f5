//! How one negative is chosen among its scored candidates.

use super::config::{Criterion, DrawConfig, RefreshConfig};
use super::gain_cache::GainCache;
use crate::interactions::Interactions;
use crate::kernels::{sigmoid, simd, Embeddings};
use crate::memory::Memory;
use crate::rng::Rng;

/// Draws with at most this many candidates take the pruned gain argmax
/// (its buffer lives on the stack); wider ones scan every candidate.
pub(super) const PRUNE_MAX: usize = 32;

/// Where a gain can lie: each `G` is a running mean of sigmoids (in
/// `[0, 1]`) started at `g0`, so within `[min(0, g0), max(1, g0)]`; the
/// ends are widened by a margin for `f32` rounding of the running mean.
pub fn gain_range(g0: f32) -> (f32, f32) {
    let (lo, hi) = (g0.min(0.0), g0.max(1.0));
    let margin = 1e-3 * lo.abs().max(hi.abs()).max(1.0);
    (lo - margin, hi + margin)
}

/// `σ(s_j − s_i)` against the anchor positive, or `σ(s_j)` without one.
fn hardness(anchor: i64, s_i: f32, s_j: f32) -> f32 {
    if anchor >= 0 {
        sigmoid(s_j - s_i)
    } else {
        sigmoid(s_j)
    }
}

/// Read-only view used while choosing, shared across threads.
pub(super) struct DrawContext<'a> {
    pub(super) train: &'a Interactions,
    pub(super) memory: &'a Memory,
    pub(super) cfg: DrawConfig,
    pub(super) refresh: RefreshConfig,
    pub(super) epoch: u64,
    /// The oldest snapshot kept (`gain_window` refreshes back, or fewer
    /// while they accumulate), and how many refreshes back it is.
    pub(super) prev_emb: Option<&'a Embeddings>,
    pub(super) lag: f32,
    pub(super) cache: Option<&'a GainCache>,
    pub(super) recip: simd::RecipFn,
}

impl DrawContext<'_> {
    pub(super) fn choose(
        &self,
        u: usize,
        anchor: i64,
        s_i: f32,
        items: &[i64],
        scores: &[f32],
        rng: &mut Rng,
    ) -> i64 {
        match self.cfg.criterion {
            Criterion::Gain { beta } if self.cfg.temperature == 0.0 && items.len() <= PRUNE_MAX => {
                let beta = self.ramped(beta);
                return self.choose_gain_argmax(u, anchor, s_i, items, scores, beta);
            }
            Criterion::GainVeto { threshold } => {
                return self.choose_veto(u, anchor, s_i, items, scores, threshold);
            }
            Criterion::GainNormalized { beta } => {
                let (mu, sd) = self.user_gain_stats(u);
                let beta = self.ramped(beta);
                return self.scan(items, scores, rng, |j, s_j| {
                    let z = if sd > 0.0 {
                        (self.gain(u, j, s_j) - mu) / sd
                    } else {
                        0.0
                    };
                    hardness(anchor, s_i, s_j) * (1.0 + beta * z).max(0.0)
                });
            }
            _ => {}
        }
        self.choose_scan(u, anchor, s_i, items, scores, rng)
    }

    /// Mean and (population) standard deviation of the gains of `u`'s
    /// memory slots observed at least twice; `(0, 0)` with fewer than two.
    pub(super) fn user_gain_stats(&self, u: usize) -> (f32, f32) {
        let m = self.memory;
        let (mut n, mut sum, mut sq) = (0usize, 0f64, 0f64);
        for s in m.range(u) {
            if m.items[s] >= 0 && m.obs[s] >= 2 {
                let g = f64::from(m.g[s]);
                n += 1;
                sum += g;
                sq += g * g;
            }
        }
        if n < 2 {
            return (0.0, 0.0);
        }
        let mean = sum / n as f64;
        let var = (sq / n as f64 - mean * mean).max(0.0);
        (mean as f32, var.sqrt() as f32)
    }

    /// `beta` scaled by the gain warm-up: `min(1, epoch / gain_warmup)`.
    pub(super) fn ramped(&self, beta: f32) -> f32 {
        let w = self.cfg.gain_warmup;
        if w > 0.0 {
            beta * (self.epoch as f32 / w).min(1.0)
        } else {
            beta
        }
    }

    /// The hardest candidate whose gain is at least `threshold` (ties to
    /// the earlier candidate); the hardest overall when all are vetoed.
    /// Candidates are visited in decreasing hardness, so the gain is
    /// computed only until the first one passes.
    pub(super) fn choose_veto(
        &self,
        u: usize,
        anchor: i64,
        s_i: f32,
        items: &[i64],
        scores: &[f32],
        threshold: f32,
    ) -> i64 {
        let mut order: Vec<(f32, usize)> = scores
            .iter()
            .enumerate()
            .map(|(c, &s)| (hardness(anchor, s_i, s), c))
            .collect();
        // Decreasing hardness, ties to the lower index; NaN-free (scores are
        // checked finite before any draw).
        order.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        for &(_, c) in &order {
            if self.gain(u, items[c], scores[c]) >= threshold {
                return items[c];
            }
        }
        items[order[0].1]
    }

    /// Every candidate's criterion, the best kept (ties to the earlier
    /// one); with a temperature, perturbed by Gumbel noise first.
    pub(super) fn choose_scan(
        &self,
        u: usize,
        anchor: i64,
        s_i: f32,
        items: &[i64],
        scores: &[f32],
        rng: &mut Rng,
    ) -> i64 {
        self.scan(items, scores, rng, |j, s_j| {
            self.criterion(u, anchor, s_i, j, s_j)
        })
    }

    /// The candidate with the highest `value(j, s_j)` (ties to the earlier
    /// one); with a temperature, each value divided by it and perturbed by
    /// Gumbel noise first (sampling ∝ softmax(value / temperature)).
    fn scan(
        &self,
        items: &[i64],
        scores: &[f32],
        rng: &mut Rng,
        value: impl Fn(i64, f32) -> f32,
    ) -> i64 {
        let mut best = 0usize;
        let mut best_v = f32::NEG_INFINITY;
        for (c, (&j, &s_j)) in items.iter().zip(scores).enumerate() {
            let mut v = value(j, s_j);
            if self.cfg.temperature > 0.0 {
                v = v / self.cfg.temperature + rng.gumbel() as f32;
            }
            if v > best_v || c == 0 {
                best_v = v;
                best = c;
            }
        }
        items[best]
    }

    /// The argmax of `hard·max(0, 1 + β(G − g0))` without computing `G`
    /// for candidates that cannot win: `G` lies in [`gain_range`], which
    /// bounds the factor, so after visiting candidates in decreasing
    /// hardness the rest are pruned once `hard·bound` falls below the best
    /// value. The bound is the factor's own expression at an end of the
    /// range, and rounded `f32` arithmetic is monotone, so no computed
    /// value can exceed it: the same answer as the full scan (ties to the
    /// earlier candidate) for any `g0` and `β`, a fraction of the gain work.
    pub(super) fn choose_gain_argmax(
        &self,
        u: usize,
        anchor: i64,
        s_i: f32,
        items: &[i64],
        scores: &[f32],
        beta: f32,
    ) -> i64 {
        let g0 = self.refresh.g0;
        let factor = |g: f32| (1.0 + beta * (g - g0)).max(0.0);
        let (lo, hi) = gain_range(g0);
        let bound = factor(lo).max(factor(hi));
        // Candidates in decreasing hardness, picked by repeated maximum:
        // a draw has a handful of candidates, so this beats a sort and
        // needs no allocation.
        let mut hard = [f32::NEG_INFINITY; PRUNE_MAX];
        for (h, &s_j) in hard.iter_mut().zip(scores) {
            *h = hardness(anchor, s_i, s_j);
        }
        let mut best = 0usize;
        let mut best_v = f32::NEG_INFINITY;
        for _ in 0..items.len() {
            // The hardest candidate not visited yet (ties: lower index).
            let mut c = 0usize;
            for k in 1..items.len() {
                if hard[k] > hard[c] {
                    c = k;
                }
            }
            let h = hard[c];
            if h * bound < best_v || h == f32::NEG_INFINITY {
                break;
            }
            hard[c] = f32::NEG_INFINITY;
            let v = h * factor(self.gain(u, items[c], scores[c]));
            if v > best_v || (v == best_v && c < best) {
                best_v = v;
                best = c;
            }
        }
        items[best]
    }

    fn criterion(&self, u: usize, anchor: i64, s_i: f32, j: i64, s_j: f32) -> f32 {
        let hard = || hardness(anchor, s_i, s_j);
        match self.cfg.criterion {
            Criterion::Score => s_j,
            Criterion::Hardness => hard(),
            Criterion::Gain { beta } => {
                let beta = self.ramped(beta);
                hard() * (1.0 + beta * (self.gain(u, j, s_j) - self.refresh.g0)).max(0.0)
            }
            Criterion::GainAdditive { beta } => {
                hard() + self.ramped(beta) * (self.gain(u, j, s_j) - self.refresh.g0)
            }
            // Chosen in `choose` (they need the whole row); as a score, the
            // hardness.
            Criterion::GainVeto { .. } | Criterion::GainNormalized { .. } => hard(),
            Criterion::GainOnly => self.gain(u, j, s_j),
            Criterion::Srns { alpha, warmup } => {
                let ramp = if warmup <= 0.0 {
                    1.0
                } else {
                    (self.epoch as f32 / warmup).min(1.0)
                };
                hard() + alpha * ramp * self.srns_std(u, anchor, j)
            }
        }
    }

    /// `G` of candidate `j`: the memory's running gain once its slot has
    /// two observations; otherwise, with two snapshots, the gain of one
    /// step `α·g0 + (1 − α)·σ((H_then − H_now)/(lag·(H_now + ε)))` from the
    /// cached positives, `H_then` under the oldest snapshot kept, `lag`
    /// refreshes back (1 unless `gain_window > 1`); otherwise `g0` (no
    /// evidence yet: the warm-up).
    pub(super) fn gain(&self, u: usize, j: i64, s_j: f32) -> f32 {
        let g0 = self.refresh.g0;
        if let Some(s) = self.memory.find(u, j as i32) {
            if self.memory.obs[s] >= 2 {
                return self.memory.g[s];
            }
        }
        match (self.cache, self.prev_emb) {
            (Some(cache), Some(prev)) => {
                let h_now = cache.expectation(u, 1, s_j, self.recip);
                let s_prev = prev.score(prev.user(u), j as usize);
                let h_prev = cache.expectation(u, 0, s_prev, self.recip);
                let (alpha, eps) = (self.refresh.alpha, self.refresh.eps);
                crate::kernels::gain_step_over(h_prev, h_now, g0, alpha, eps, self.lag)
            }
            _ => g0,
        }
    }

    /// Population std of `σ(r_uj − r_ui)` over the stored snapshots.
    fn srns_std(&self, u: usize, anchor: i64, j: i64) -> f32 {
        let mem = self.memory;
        let w = mem.history;
        if w == 0 || anchor < 0 {
            return 0.0;
        }
        let Some(s) = mem.find(u, j as i32) else {
            return 0.0;
        };
        let row = self.train.row(u);
        let Ok(p) = row.binary_search(&(anchor as u32)) else {
            return 0.0;
        };
        let p = self.train.indptr()[u] as usize + p;
        let n = (mem.obs[s] as usize).min(mem.pos_filled).min(w);
        if n == 0 {
            return 0.0;
        }
        let hj = &mem.hist[s * w + w - n..(s + 1) * w];
        let hi = &mem.pos_hist[p * w + w - n..(p + 1) * w];
        let xs: Vec<f32> = hj.iter().zip(hi).map(|(&a, &b)| sigmoid(a - b)).collect();
        let mean = xs.iter().sum::<f32>() / n as f32;
        (xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f32>() / n as f32).sqrt()
    }
}
