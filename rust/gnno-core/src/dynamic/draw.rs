//! Draws: `propose` lists each draw's candidates, the caller scores them,
//! `select` chooses; `draw_from_vectors` does all three from the stored
//! vectors with the same random streams.

use rayon::prelude::*;

use super::criteria::DrawContext;
use super::DynamicSampler;
use crate::alloc;
use crate::error::{check_finite_f32, Error, Result};
use crate::interactions::Interactions;
use crate::kernels::simd;
use crate::memory::Memory;
use crate::proposal::Proposal;
use crate::rng::{purpose, Rng, BLOCK};
use crate::sampling::{check_batch, check_pairs};

/// Candidates and anchors of a batch of draws: `rows × k × width` items
/// and one anchor positive per row (`-1` when the user has none).
pub struct Proposed {
    pub items: Vec<i64>,
    pub anchors: Vec<i64>,
}

impl DynamicSampler {
    /// Lists each draw's candidates: `memory_candidates` distinct filled
    /// slots of the user (fewer if fewer are filled) topped up with fresh
    /// proposals to `width`. With `positives = None` every row gets a
    /// random training positive of its user as anchor.
    pub fn propose(
        &mut self,
        users: &[i64],
        positives: Option<&[i64]>,
        k: usize,
    ) -> Result<Proposed> {
        let train = &*self.train;
        check_draw(train, users, positives)?;
        let key = self.stream.next_key();
        let width = self.draw_cfg.width();
        let (train, mem, proposal, cm) = (
            &*self.train,
            &self.memory,
            &self.proposal,
            self.draw_cfg.memory_candidates,
        );
        let what = format!("candidates (k={k} × width={width} per row)");
        let row_len = alloc::len(&what, &[k, width])?;
        let mut items = alloc::filled_product(&what, &[users.len(), row_len], 0i64)?;
        let mut anchors = alloc::filled("anchors", users.len(), -1i64)?;
        if k == 0 {
            return Ok(Proposed { items, anchors });
        }
        crate::pool::install(|| {
            items
                .par_chunks_mut(row_len.saturating_mul(BLOCK))
                .zip(anchors.par_chunks_mut(BLOCK))
                .enumerate()
                .for_each(|(b, (block, anchor_block))| {
                    let mut rng = key.rng(purpose::DRAW, b as u64);
                    let mut proposer = Proposer::new(train, mem, proposal, cm, width);
                    for (r, (row, anchor)) in block
                        .chunks_mut(row_len)
                        .zip(anchor_block.iter_mut())
                        .enumerate()
                    {
                        let idx = b * BLOCK + r;
                        let positive = positives.map(|p| p[idx]);
                        *anchor = proposer.row(users[idx] as usize, positive, &mut rng, row);
                    }
                })
        });
        Ok(Proposed { items, anchors })
    }

    /// Chooses one negative per `(row, draw)` among `width` scored
    /// candidates: returns `rows × k` items.
    pub fn select(
        &mut self,
        users: &[i64],
        proposed: &Proposed,
        k: usize,
        cand_scores: &[f32],
        anchor_scores: &[f32],
    ) -> Result<Vec<i64>> {
        let width = self.draw_cfg.width();
        let n = users.len();
        let expected = alloc::len("candidates", &[n, k, width]).ok();
        if expected != Some(proposed.items.len()) || cand_scores.len() != proposed.items.len() {
            return Err(Error::shape(format!(
                "candidates and scores must be rows × k × width = {n} × {k} × {width}, got {} and {}",
                proposed.items.len(),
                cand_scores.len()
            )));
        }
        if proposed.anchors.len() != n || anchor_scores.len() != n {
            return Err(Error::shape(format!(
                "anchors and their scores need one entry per row ({n}), got {} and {}",
                proposed.anchors.len(),
                anchor_scores.len()
            )));
        }
        self.train.check_users(users, "users")?;
        let n_items = self.train.n_items();
        if let Some(p) = proposed
            .items
            .iter()
            .position(|&i| i < 0 || i >= n_items as i64)
        {
            return Err(Error::id_out_of_range(
                "item",
                proposed.items[p],
                "n_items",
                n_items,
                "candidates",
                p,
            ));
        }
        check_finite_f32("candidate scores", cand_scores)?;
        check_finite_f32("anchor scores", anchor_scores)?;
        let mut out = alloc::filled_product(&format!("negatives (k={k} per row)"), &[n, k], 0i64)?;
        let key = self.stream.next_key();
        let ctx = self.context();
        let work = out.len().saturating_mul(width);
        crate::pool::for_each_chunk_mut(&mut out, k.saturating_mul(BLOCK), work, |b, block| {
            let mut rng = key.rng(purpose::GUMBEL, b as u64);
            for (r, o) in block.chunks_mut(k).enumerate() {
                let idx = b * BLOCK + r;
                let u = users[idx] as usize;
                let anchor = proposed.anchors[idx];
                for (d, slot) in o.iter_mut().enumerate() {
                    let base = (idx * k + d) * width;
                    *slot = ctx.choose(
                        u,
                        anchor,
                        anchor_scores[idx],
                        &proposed.items[base..base + width],
                        &cand_scores[base..base + width],
                        &mut rng,
                    );
                }
            }
        });
        Ok(out)
    }

    /// Propose, score from the stored vectors and select in one pass over
    /// the batch: the same streams as `propose` then `select`, so the same
    /// negatives, without the intermediate arrays.
    pub fn draw_from_vectors(
        &mut self,
        users: &[i64],
        positives: Option<&[i64]>,
        k: usize,
    ) -> Result<Vec<i64>> {
        if self.emb.is_none() {
            return Err(Error::value(
                "this sampler has no model vectors yet: call refresh(model) (or refresh_embeddings) first",
            ));
        }
        check_draw(&self.train, users, positives)?;
        let width = self.draw_cfg.width();
        let what = format!("negatives (k={k} per row)");
        let mut out = alloc::filled_product(&what, &[users.len(), k], 0i64)?;
        let row_len = alloc::len(&format!("candidates (k={k} × width={width})"), &[k, width])?;
        if self.draw_cfg.memory_step {
            self.step_memory(users)?;
        }
        let train = &*self.train;
        let propose_key = self.stream.next_key();
        let select_key = self.stream.next_key();
        if k == 0 {
            return Ok(out);
        }
        let emb = self.emb.as_ref().expect("checked above");
        let ctx = self.context();
        let (mem, proposal, cm) = (
            &self.memory,
            &self.proposal,
            self.draw_cfg.memory_candidates,
        );
        // Loads a row's data into cache ahead of its scoring (hints only):
        // the user's vector, the anchor's and every candidate's item row and, where the gain
        // is read, the previous snapshot's rows, the gain-cache record and
        // the memory row.
        let warm = |u: usize, anchor: i64, items: &[i64]| {
            crate::kernels::prefetch(emb.user(u));
            if anchor >= 0 {
                emb.prefetch_item(anchor as usize);
            }
            for &i in items {
                emb.prefetch_item(i as usize);
            }
            if let (Some(cache), Some(prev)) = (ctx.cache, ctx.prev_emb) {
                cache.prefetch(u);
                mem.prefetch_items(u);
                for &i in items {
                    prev.prefetch_item(i as usize);
                }
            }
        };
        let work_on_block = |b: usize, block: &mut [i64]| {
            let mut prng = propose_key.rng(purpose::DRAW, b as u64);
            let mut srng = select_key.rng(purpose::GUMBEL, b as u64);
            let mut proposer = Proposer::new(train, mem, proposal, cm, width);
            let mut items = vec![0i64; row_len];
            let mut ahead = vec![0i64; row_len];
            let mut scores = vec![0f32; row_len];
            let rows = block.len() / k;
            let positive = |idx: usize| positives.map(|p| p[idx]);
            // Rows are proposed one ahead of scoring, so that a row's loads
            // are in flight while the row before it is scored. Proposals and
            // choices draw from separate streams, each in row order: the
            // same negatives as proposing each row just before scoring it.
            let first = b * BLOCK;
            let mut next_anchor = proposer.row(
                users[first] as usize,
                positive(first),
                &mut prng,
                &mut ahead,
            );
            warm(users[first] as usize, next_anchor, &ahead);
            for (r, o) in block.chunks_mut(k).enumerate() {
                let idx = first + r;
                let u = users[idx] as usize;
                std::mem::swap(&mut items, &mut ahead);
                let anchor = next_anchor;
                if r + 1 < rows {
                    let v = users[idx + 1] as usize;
                    next_anchor = proposer.row(v, positive(idx + 1), &mut prng, &mut ahead);
                    warm(v, next_anchor, &ahead);
                }
                let uv = emb.user(u);
                for (sc, &i) in scores.iter_mut().zip(&items) {
                    *sc = emb.score(uv, i as usize);
                }
                let s_i = if anchor >= 0 {
                    emb.score(uv, anchor as usize)
                } else {
                    0.0
                };
                for (d, slot) in o.iter_mut().enumerate() {
                    let c = d * width..(d + 1) * width;
                    *slot = ctx.choose(u, anchor, s_i, &items[c.clone()], &scores[c], &mut srng);
                }
            }
        };
        let work = out.len().saturating_mul(width);
        crate::pool::for_each_chunk_mut(&mut out, k.saturating_mul(BLOCK), work, work_on_block);
        Ok(out)
    }

    pub(super) fn context(&self) -> DrawContext<'_> {
        DrawContext {
            train: &self.train,
            memory: &self.memory,
            cfg: self.draw_cfg,
            refresh: self.refresh_cfg,
            epoch: self.stream.epoch,
            prev_emb: self.past.front(),
            lag: self.past.len().max(1) as f32,
            cache: self.gain_cache.as_ref(),
            recip: simd::kernels().mean_recip,
        }
    }
}

/// Lists one row's candidates (see [`DynamicSampler::propose`]), reusing
/// its buffers across rows.
struct Proposer<'a> {
    train: &'a Interactions,
    memory: &'a Memory,
    proposal: &'a Proposal,
    memory_candidates: usize,
    width: usize,
    filled: Vec<i32>,
    who: Vec<usize>,
    at: Vec<usize>,
    draws: Vec<u32>,
}

impl<'a> Proposer<'a> {
    fn new(
        train: &'a Interactions,
        memory: &'a Memory,
        proposal: &'a Proposal,
        memory_candidates: usize,
        width: usize,
    ) -> Self {
        Self {
            train,
            memory,
            proposal,
            memory_candidates,
            width,
            filled: Vec::new(),
            who: Vec::new(),
            at: Vec::new(),
            draws: Vec::new(),
        }
    }

    /// Fills `row` (`k × width`) with user `u`'s candidates; returns the
    /// anchor: `positive`, or a random training positive, or -1.
    fn row(&mut self, u: usize, positive: Option<i64>, rng: &mut Rng, row: &mut [i64]) -> i64 {
        let train = self.train;
        let anchor = match positive {
            Some(p) => p,
            None => {
                let d = train.degree(u);
                if d == 0 {
                    -1
                } else {
                    train.row(u)[rng.below(d as u64) as usize] as i64
                }
            }
        };
        let mem = self.memory;
        self.filled.clear();
        // Only draws that take memory candidates read the user's slots.
        if self.memory_candidates > 0 {
            self.filled
                .extend(mem.range(u).map(|s| mem.items[s]).filter(|&i| i >= 0));
        }
        self.at.clear();
        let width = self.width;
        for (d, draw) in row.chunks_mut(width).enumerate() {
            let take = self.memory_candidates.min(self.filled.len());
            // Partial Fisher–Yates over the filled slots.
            for (t, slot) in draw.iter_mut().enumerate().take(take) {
                let j = t + rng.below((self.filled.len() - t) as u64) as usize;
                self.filled.swap(t, j);
                *slot = self.filled[t] as i64;
            }
            self.at.extend(d * width + take..(d + 1) * width);
        }
        self.who.clear();
        self.who.resize(self.at.len(), u);
        self.draws.clear();
        self.draws.resize(self.at.len(), 0);
        self.proposal
            .draw_many(train, &self.who, rng, &mut self.draws);
        for (&p, &j) in self.at.iter().zip(&self.draws) {
            row[p] = j as i64;
        }
        anchor
    }
}

/// Validates a batch of draws: users in range and not saturated, positives
/// (when given) aligned with them, in range and each a training item of its
/// user. The positive is the anchor the criteria compare candidates with
/// (and SRNS reads its score history by its place in the user's row), so
/// any other item would silently change the draw, not fail it.
pub(super) fn check_draw(
    train: &Interactions,
    users: &[i64],
    positives: Option<&[i64]>,
) -> Result<()> {
    check_batch(train, users, "users")?;
    let Some(positives) = positives else {
        return Ok(());
    };
    check_pairs(train, users, positives)?;
    for (b, (&u, &p)) in users.iter().zip(positives).enumerate() {
        if !train.contains(u as usize, p as u32) {
            return Err(Error::value(format!(
                "positives[{b}] is item {p}, which is not a training item of user {u} \
                 (users[{b}]): a score-based sampler compares its candidates with the \
                 pair's training positive"
            )));
        }
    }
    Ok(())
}
