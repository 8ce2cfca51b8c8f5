//! SRNS's per-step memory update, scored from the stored vectors.

use rayon::prelude::*;

use super::DynamicSampler;
use crate::error::{Error, Result};
use crate::kernels::{expectation_for_user, Scratch};
use crate::memory::{retention_order, MemoryRow, Retain};
use crate::rng::purpose;

/// Reused buffers of [`DynamicSampler::step_memory`].
#[derive(Default)]
struct StepScratch {
    items: Vec<i32>,
    values: Vec<f32>,
    scores: Vec<f32>,
    pos: Vec<f32>,
    buf: Vec<f32>,
    kept: Vec<i64>,
    saved: Vec<usize>,
    kernel: Scratch,
}

impl DynamicSampler {
    /// SRNS's per-step memory update for the distinct users of a batch,
    /// scored from the stored vectors: each row is topped up with `fresh`
    /// new candidates and `slots` are retained by the retention rule. The
    /// score history is not touched: it records refresh snapshots only.
    pub fn step_memory(&mut self, users: &[i64]) -> Result<()> {
        self.train.check_users(users, "users")?;
        let emb = self
            .emb
            .as_ref()
            .ok_or_else(|| Error::value("no model vectors: call set_embeddings first"))?;
        let key = self.stream.next_key();
        let mut distinct: Vec<usize> = users.iter().map(|&u| u as usize).collect();
        distinct.sort_unstable();
        distinct.dedup();
        let cfg = self.refresh_cfg;
        let (train, proposal) = (&*self.train, &self.proposal);
        let needs_h = matches!(cfg.retain, Retain::TopH | Retain::SoftmaxH { .. });
        let mut rows = self.memory.rows_for(&distinct);
        let step = |scratch: &mut StepScratch, (row, &u): (&mut MemoryRow<'_>, &usize)| {
            // A stream per user: the same update whatever the batch around it.
            let mut rng = key.rng(purpose::FRESH, u as u64);
            let StepScratch {
                items,
                values,
                scores,
                pos,
                buf,
                kept,
                saved,
                kernel,
            } = scratch;
            items.clear();
            items.extend(row.items.iter().copied().filter(|&i| i >= 0));
            let n_mem = items.len();
            // Up to `fresh` new candidates: draw, then drop repeats and
            // memory items (sort + dedup, not a quadratic scan).
            let start = items.len();
            for _ in 0..cfg.fresh.min(train.n_negatives(u)) {
                items.push(proposal.draw(train, u, &mut rng) as i32);
            }
            items[start..].sort_unstable();
            let mut w = start;
            for r in start..items.len() {
                let j = items[r];
                if (w == start || items[w - 1] != j) && !items[..n_mem].contains(&j) {
                    items[w] = j;
                    w += 1;
                }
            }
            items.truncate(w);
            let uv = emb.user(u);
            values.clear();
            values.extend(items.iter().map(|&i| emb.score(uv, i as usize)));
            if needs_h {
                pos.clear();
                pos.extend(train.row(u).iter().map(|&i| emb.score(uv, i as usize)));
                scores.clear();
                scores.extend_from_slice(values);
                expectation_for_user(pos, scores, values, cfg.max_positives, key, u, kernel);
            }
            retention_order(values, cfg.slots, cfg.retain, &mut rng, buf, kept);
            // Rebuild the row: kept memory slots carry their state over,
            // new items start empty.
            saved.clear();
            saved.extend(
                row.items
                    .iter()
                    .enumerate()
                    .filter(|(_, &i)| i >= 0)
                    .map(|(s, _)| s),
            );
            let old = row.snapshot();
            row.clear();
            for (slot, &k) in kept.iter().enumerate() {
                let k = k as usize;
                if k < n_mem {
                    row.copy_slot_from(&old, saved[k], slot);
                } else {
                    row.set_new(slot, items[k], cfg.g0);
                }
            }
        };
        if distinct.len().saturating_mul(cfg.width()) < crate::pool::PARALLEL_MIN_WORK {
            let mut scratch = StepScratch::default();
            rows.iter_mut()
                .zip(&distinct)
                .for_each(|x| step(&mut scratch, x));
        } else {
            crate::pool::install(|| {
                rows.par_iter_mut()
                    .zip(distinct.par_iter())
                    .for_each_init(StepScratch::default, step)
            });
        }
        Ok(())
    }
}
