//! The score-based sampler engine shared by DNS, SRNS and the gain sampler.
//!
//! One engine, several criteria: a per-user [`Memory`] tracked across
//! refreshes, fresh candidates from a [`Proposal`], and a per-draw choice
//! among `memory_candidates` memory slots plus `fresh_candidates` fresh
//! items by a [`Criterion`]. DNS is the engine with no memory and the raw
//! score; SRNS adds a memory retained ∝ softmax(score/τ) and its variance
//! term; the gain sampler tracks `H` and `G` in memory and adds the gain.
//!
//! Scores come either from a snapshot of a dot-product model's vectors
//! ([`Embeddings`], the fast path) or from the caller: `propose` lists the
//! candidates, the caller scores them with its model, `select` chooses.

use rayon::prelude::*;
use std::sync::Arc;

use crate::error::{check_finite_f32, Error, Result};
use crate::interactions::Interactions;
use crate::kernels::{
    expectation_for_user, expectation_prepared, prepare_positives, sigmoid, simd, Embeddings,
};
use crate::kernels::{perturb, topk_row};
use crate::memory::{observe, retain, Candidate, Memory, Retain};
use crate::proposal::Proposal;
use crate::rng::{purpose, Rng, StreamKey, BLOCK};
use crate::sampling::{check_batch, check_pairs, Stream};

/// How one negative is chosen among its candidates; `s_j` is a candidate's
/// score, `s_i` the anchor positive's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Criterion {
    /// `s_j` (DNS).
    Score,
    /// `σ(s_j − s_i)`.
    Hardness,
    /// `σ(s_j − s_i)·max(0, 1 + beta·(G_j − g0))`: hardness scaled up for
    /// negatives whose `H` keeps falling (true negatives) and down for those
    /// whose `H` holds or rises (likely false negatives); `G_j = g0` without
    /// gain evidence. Multiplying keeps easy negatives easy: the gain is
    /// relative to `H`, so an additive bonus would favour them.
    Gain { beta: f32 },
    /// `σ(s_j − s_i) + beta·(G_j − g0)` (an ablation).
    GainAdditive { beta: f32 },
    /// `G_j` alone (an ablation: picks easy negatives).
    GainOnly,
    /// `σ(s_j − s_i) + alpha·min(1, epoch/warmup)·std_j` (SRNS).
    Srns { alpha: f32, warmup: f32 },
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DrawConfig {
    pub memory_candidates: usize,
    pub fresh_candidates: usize,
    pub criterion: Criterion,
    /// 0 = argmax; otherwise sample ∝ softmax(criterion / temperature).
    pub temperature: f32,
    /// Positives per user for the draw-time gain of candidates outside
    /// memory (0 = only memory slots carry a gain).
    pub gain_positives: usize,
    /// Before each vector-scored draw, update the memory of the batch's
    /// users: top up with `fresh` candidates, retain `slots` (SRNS's step).
    pub memory_step: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RefreshConfig {
    pub slots: usize,
    pub fresh: usize,
    pub history: usize,
    pub retain: Retain,
    pub alpha: f32,
    pub eps: f32,
    pub g0: f32,
    pub max_positives: Option<usize>,
}

impl DrawConfig {
    pub fn width(&self) -> usize {
        self.memory_candidates + self.fresh_candidates
    }
    fn validate(&self) -> Result<()> {
        if self.width() == 0 {
            return Err(Error::value(
                "a draw needs at least one candidate (memory or fresh)",
            ));
        }
        if !(self.temperature.is_finite() && self.temperature >= 0.0) {
            return Err(Error::value(format!(
                "draw temperature must be finite and >= 0, got {}",
                self.temperature
            )));
        }
        match self.criterion {
            Criterion::Gain { beta } | Criterion::GainAdditive { beta } if !beta.is_finite() => {
                Err(Error::value(format!("beta must be finite, got {beta}")))
            }
            Criterion::Srns { alpha, warmup }
                if !(alpha.is_finite() && warmup.is_finite() && warmup >= 0.0) =>
            {
                Err(Error::value(format!(
                    "SRNS needs finite alpha and warmup >= 0, got alpha={alpha}, warmup={warmup}"
                )))
            }
            _ => Ok(()),
        }
    }
}

impl RefreshConfig {
    fn validate(&self) -> Result<()> {
        crate::kernels::check_gain_params(self.alpha, self.eps)?;
        self.retain.validate()?;
        if !self.g0.is_finite() {
            return Err(Error::value(format!("g0 must be finite, got {}", self.g0)));
        }
        if self.max_positives == Some(0) {
            return Err(Error::value("max_positives must be at least 1"));
        }
        Ok(())
    }
}

pub struct DynamicSampler {
    pub train: Arc<Interactions>,
    pub proposal: Proposal,
    pub memory: Memory,
    pub refresh_cfg: RefreshConfig,
    pub draw_cfg: DrawConfig,
    pub stream: Stream,
    pub emb: Option<Embeddings>,
    /// The snapshot before `emb`, for the draw-time gain.
    pub prev_emb: Option<Embeddings>,
    /// Prepared positive scores under `prev_emb` and `emb` (same subset).
    pub gain_cache: Option<GainCache>,
    /// Refreshes applied so far (the gain needs two).
    pub refreshes: u64,
    /// Snapshots taken so far; keys the positives subset of `gain_cache`.
    pub snapshots: u64,
}

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
    fn expectation(&self, u: usize, which: usize, c: f32, recip: simd::RecipFn) -> f32 {
        let n = self.len[u] as usize;
        let base = u * 4 * self.cap + which * 2 * self.cap;
        let raw = &self.data[base..base + n];
        let exp = &self.data[base + self.cap..base + self.cap + n];
        let (shift, fast) = self.prepared[u][which];
        expectation_prepared(raw, exp, shift, fast, c, recip)
    }
}

/// Candidates and anchors of a batch of draws: `rows × k × width` items
/// and one anchor positive per row (`-1` when the user has none).
pub struct Proposed {
    pub items: Vec<i64>,
    pub anchors: Vec<i64>,
}

impl DynamicSampler {
    pub fn new(
        train: Arc<Interactions>,
        proposal: Proposal,
        refresh_cfg: RefreshConfig,
        draw_cfg: DrawConfig,
        seed: u64,
    ) -> Result<Self> {
        refresh_cfg.validate()?;
        draw_cfg.validate()?;
        let memory = Memory::new(
            train.n_users(),
            refresh_cfg.slots,
            refresh_cfg.history,
            train.nnz(),
            refresh_cfg.g0,
        );
        Ok(Self {
            train,
            proposal,
            memory,
            refresh_cfg,
            draw_cfg,
            stream: Stream::new(seed),
            emb: None,
            prev_emb: None,
            gain_cache: None,
            refreshes: 0,
            snapshots: 0,
        })
    }

    pub fn set_embeddings(&mut self, emb: Embeddings) -> Result<()> {
        self.check_embeddings(&emb)?;
        self.prev_emb = self.emb.take();
        self.emb = Some(emb);
        self.snapshots += 1;
        self.gain_cache = self.build_gain_cache();
        Ok(())
    }

    /// Restores both snapshots and the snapshot counter (from a state dict).
    pub fn restore_embeddings(
        &mut self,
        prev: Option<Embeddings>,
        now: Option<Embeddings>,
        snapshots: u64,
    ) -> Result<()> {
        for e in prev.iter().chain(now.iter()) {
            self.check_embeddings(e)?;
        }
        self.prev_emb = prev;
        self.emb = now;
        self.snapshots = snapshots;
        self.gain_cache = self.build_gain_cache();
        Ok(())
    }

    fn check_embeddings(&self, emb: &Embeddings) -> Result<()> {
        let n_users = emb.users.len() / emb.dim;
        let n_items = emb.items.len() / emb.dim;
        if n_users != self.train.n_users() || n_items != self.train.n_items() {
            return Err(Error::shape(format!(
                "vectors cover {n_users} users × {n_items} items, the training data {} × {}",
                self.train.n_users(),
                self.train.n_items()
            )));
        }
        Ok(())
    }

    fn build_gain_cache(&self) -> Option<GainCache> {
        let cap = self.draw_cfg.gain_positives;
        let uses_gain = matches!(
            self.draw_cfg.criterion,
            Criterion::Gain { .. } | Criterion::GainAdditive { .. } | Criterion::GainOnly
        );
        let (prev, now) = (self.prev_emb.as_ref()?, self.emb.as_ref()?);
        if cap == 0 || !uses_gain {
            return None;
        }
        let train = &*self.train;
        let key = StreamKey::new(self.stream.seed, self.snapshots, u64::MAX);
        let n_users = train.n_users();
        let mut len = vec![0u32; n_users];
        let mut prepared = vec![[(0f32, false); 2]; n_users];
        let mut data = vec![0f32; n_users * 4 * cap];
        crate::pool::install(|| {
            data.par_chunks_mut(4 * cap)
                .zip(len.par_iter_mut())
                .zip(prepared.par_iter_mut())
                .enumerate()
                .for_each(|(u, ((record, len), prepared))| {
                    let row = train.row(u);
                    let mut pick: Vec<u32> = row.to_vec();
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
                        for (r, &i) in raw.iter_mut().zip(&pick) {
                            *r = e.score(uv, i as usize);
                        }
                        let n = pick.len();
                        prepared[which] = prepare_positives(&raw[..n], &mut exp[..n]);
                    }
                })
        });
        Some(GainCache {
            cap,
            len,
            prepared,
            data,
        })
    }

    /// Width of a refresh's candidate rows: memory slots plus fresh items.
    pub fn refresh_width(&self) -> usize {
        self.refresh_cfg.slots + self.refresh_cfg.fresh
    }

    /// Phase one of a refresh: each user's memory items followed by
    /// `fresh` new candidates (distinct, not in memory), `-1`-padded,
    /// row-major `n_users × refresh_width()`.
    pub fn refresh_candidates(&mut self) -> Result<Vec<i64>> {
        let key = self.stream.next_key();
        let width = self.refresh_width();
        let train = &*self.train;
        let (mem, proposal, fresh) = (&self.memory, &self.proposal, self.refresh_cfg.fresh);
        let mut out = vec![-1i64; train.n_users() * width];
        if width == 0 {
            return Ok(out);
        }
        crate::pool::install(|| {
            out.par_chunks_mut(width * BLOCK)
                .enumerate()
                .for_each(|(b, block)| {
                    let mut rng = key.rng(purpose::FRESH, b as u64);
                    for (r, row) in block.chunks_mut(width).enumerate() {
                        let u = b * BLOCK + r;
                        let mut n = 0;
                        for s in mem.range(u) {
                            if mem.items[s] >= 0 {
                                row[n] = mem.items[s] as i64;
                                n += 1;
                            }
                        }
                        let negatives = train.n_negatives(u);
                        let target = (n + fresh).min(n + negatives.saturating_sub(n));
                        let mut tries = 0;
                        while n < target && tries < 4 * (fresh + 1) {
                            tries += 1;
                            let j = proposal.draw(train, u, &mut rng) as i64;
                            if !row[..n].contains(&j) {
                                row[n] = j;
                                n += 1;
                            }
                        }
                    }
                })
        });
        Ok(out)
    }

    /// Phase two: `H` of every candidate against the user's positives,
    /// the gain where a previous `H` exists, the score history, and the
    /// retention of `slots` candidates. `cand_scores` is aligned with
    /// `cands`; `pos_scores` holds one score per training positive (CSR order).
    pub fn refresh_apply(
        &mut self,
        cands: &[i64],
        cand_scores: &[f32],
        pos_scores: &[f32],
    ) -> Result<()> {
        let key = self.stream.next_key();
        let train = &*self.train;
        let (n_users, n_items) = (train.n_users(), train.n_items());
        let width = self.refresh_width();
        if cands.len() != n_users * width || cand_scores.len() != cands.len() {
            return Err(Error::shape(format!(
                "refresh candidates and their scores must be n_users × width = {n_users} × {width}, got {} and {}",
                cands.len(),
                cand_scores.len()
            )));
        }
        if pos_scores.len() != train.nnz() {
            return Err(Error::shape(format!(
                "positive scores must have one entry per training interaction ({}), got {}",
                train.nnz(),
                pos_scores.len()
            )));
        }
        if let Some(p) = cands.iter().position(|&i| i < -1 || i >= n_items as i64) {
            return Err(Error::id_out_of_range(
                "item",
                cands[p],
                "n_items",
                n_items,
                "candidates",
                p,
            ));
        }
        check_finite_f32("pos_scores", pos_scores)?;
        if let Some(p) = cands
            .iter()
            .zip(cand_scores)
            .position(|(&i, s)| i >= 0 && !s.is_finite())
        {
            return Err(Error::non_finite(
                "candidate scores",
                cand_scores[p] as f64,
                p,
            ));
        }
        let cfg = self.refresh_cfg;
        let w = cfg.history;
        // Positive score history: shift left, append this refresh.
        if w > 0 {
            let hist = &mut self.memory.pos_hist;
            crate::pool::install(|| {
                hist.par_chunks_mut(w)
                    .zip(pos_scores.par_iter())
                    .for_each(|(h, &s)| {
                        h.rotate_left(1);
                        h[w - 1] = s;
                    })
            });
            self.memory.pos_filled = (self.memory.pos_filled + 1).min(w);
        }
        let indptr = train.indptr();
        let mut rows = self.memory.rows_mut();
        crate::pool::install(|| {
            rows.par_chunks_mut(BLOCK)
                .enumerate()
                .for_each(|(b, block)| {
                    let mut rng = key.rng(purpose::RETAIN, b as u64);
                    let mut pool: Vec<Candidate> = Vec::new();
                    let mut h_now: Vec<f32> = Vec::new();
                    let mut scores: Vec<f32> = Vec::new();
                    for (r, row) in block.iter_mut().enumerate() {
                        let u = b * BLOCK + r;
                        row.candidates(&mut pool);
                        let items = &cands[u * width..(u + 1) * width];
                        let sc = &cand_scores[u * width..(u + 1) * width];
                        // Every listed candidate joins the pool once, with its
                        // score (the first listing wins); memory items are
                        // matched against the memory only, new ones against
                        // the new ones, so a row costs O(width × slots).
                        let n_mem = pool.len();
                        for (&i, &score) in items.iter().zip(sc).filter(|(&i, _)| i >= 0) {
                            let item = i as i32;
                            if let Some(c) = pool[..n_mem].iter_mut().find(|c| c.item == item) {
                                if c.score.is_nan() {
                                    c.score = score;
                                }
                            } else if !pool[n_mem..].iter().any(|c| c.item == item) {
                                pool.push(Candidate {
                                    item,
                                    h: f32::NAN,
                                    g: cfg.g0,
                                    obs: 0,
                                    score,
                                    hist: Vec::new(),
                                });
                            }
                        }
                        scores.clear();
                        scores.extend(pool.iter().map(|c| c.score));
                        // Memory items the caller did not list keep their state.
                        let pos = &pos_scores[indptr[u] as usize..indptr[u + 1] as usize];
                        h_now.clear();
                        h_now.resize(pool.len(), f32::NAN);
                        let listed: Vec<usize> =
                            (0..pool.len()).filter(|&k| scores[k].is_finite()).collect();
                        let listed_scores: Vec<f32> = listed.iter().map(|&k| scores[k]).collect();
                        let mut listed_h = vec![0f32; listed.len()];
                        expectation_for_user(
                            pos,
                            &listed_scores,
                            &mut listed_h,
                            cfg.max_positives,
                            key,
                            u,
                        );
                        for (t, &k) in listed.iter().enumerate() {
                            observe(
                                &mut pool[k],
                                listed_h[t],
                                listed_scores[t],
                                cfg.alpha,
                                cfg.eps,
                                w,
                            );
                        }
                        retain(&mut pool, cfg.slots, cfg.retain, &mut rng);
                        row.store(&pool);
                    }
                })
        });
        self.refreshes += 1;
        Ok(())
    }

    /// A full refresh from the stored vectors (the fast path).
    pub fn refresh_from_vectors(&mut self) -> Result<()> {
        let cands = self.refresh_candidates()?;
        let emb = self
            .emb
            .as_ref()
            .ok_or_else(|| Error::value("no model vectors: call set_embeddings first"))?;
        let width = self.refresh_width();
        let train = &*self.train;
        let mut cand_scores = vec![f32::NAN; cands.len()];
        let mut pos_scores = vec![0f32; train.nnz()];
        crate::pool::install(|| {
            if width > 0 {
                cand_scores
                    .par_chunks_mut(width)
                    .enumerate()
                    .for_each(|(u, s)| {
                        let uv = emb.user(u);
                        for (o, &i) in s.iter_mut().zip(&cands[u * width..(u + 1) * width]) {
                            if i >= 0 {
                                *o = emb.score(uv, i as usize);
                            }
                        }
                    });
            }
            let indptr = train.indptr();
            let indices = train.indices();
            let mut rest: &mut [f32] = &mut pos_scores;
            let mut parts = Vec::with_capacity(train.n_users());
            for u in 0..train.n_users() {
                let (a, b) = rest.split_at_mut((indptr[u + 1] - indptr[u]) as usize);
                parts.push((u, a));
                rest = b;
            }
            parts.into_par_iter().for_each(|(u, out)| {
                let uv = emb.user(u);
                for (o, &i) in out
                    .iter_mut()
                    .zip(&indices[indptr[u] as usize..indptr[u + 1] as usize])
                {
                    *o = emb.score(uv, i as usize);
                }
            });
        });
        self.refresh_apply(&cands, &cand_scores, &pos_scores)
    }

    /// SRNS's per-step memory update for the distinct users of a batch,
    /// scored from the stored vectors: each row is topped up with `fresh`
    /// new candidates and `slots` are retained by the retention rule. The
    /// score history is not touched: it records refresh snapshots only.
    pub fn step_memory(&mut self, users: &[i64]) -> Result<()> {
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
        let step = |scratch: &mut StepScratch,
                    (row, &u): (&mut crate::memory::MemoryRow<'_>, &usize)| {
            // A stream per user: the same update whatever the batch around it.
            let mut rng = key.rng(purpose::FRESH, u as u64);
            let StepScratch {
                items,
                values,
                kept,
                saved,
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
                let pos: Vec<f32> = train
                    .row(u)
                    .iter()
                    .map(|&i| emb.score(uv, i as usize))
                    .collect();
                let scores = values.clone();
                expectation_for_user(&pos, &scores, values, cfg.max_positives, key, u);
            }
            let keep = cfg.slots.min(items.len());
            kept.clear();
            kept.resize(keep, 0);
            if keep > 0 {
                match cfg.retain {
                    Retain::TopH => topk_row(values, keep, kept),
                    Retain::SoftmaxH { temperature } | Retain::SoftmaxScore { temperature } => {
                        let raw = values.clone();
                        perturb(&raw, temperature, &mut rng, values);
                        topk_row(values, keep, kept);
                    }
                    Retain::Random => {
                        for v in values.iter_mut() {
                            *v = rng.uniform() as f32;
                        }
                        topk_row(values, keep, kept);
                    }
                }
            }
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
        if distinct.len() * (cfg.slots + cfg.fresh) < crate::pool::PARALLEL_MIN_WORK {
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
        let mut items = vec![0i64; users.len() * k * width];
        let mut anchors = vec![-1i64; users.len()];
        if k == 0 {
            return Ok(Proposed { items, anchors });
        }
        crate::pool::install(|| {
            items
                .par_chunks_mut(k * width * BLOCK)
                .zip(anchors.par_chunks_mut(BLOCK))
                .enumerate()
                .for_each(|(b, (block, anchor_block))| {
                    let mut rng = key.rng(purpose::DRAW, b as u64);
                    let mut proposer = Proposer::new(train, mem, proposal, cm, width);
                    for (r, (row, anchor)) in block
                        .chunks_mut(k * width)
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
        if proposed.items.len() != n * k * width || cand_scores.len() != proposed.items.len() {
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
        let key = self.stream.next_key();
        let mut out = vec![0i64; n * k];
        let ctx = self.context();
        let work = out.len() * width;
        crate::pool::for_each_chunk_mut(&mut out, k * BLOCK, work, |b, block| {
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
        if self.draw_cfg.memory_step {
            self.step_memory(users)?;
        }
        let train = &*self.train;
        let propose_key = self.stream.next_key();
        let select_key = self.stream.next_key();
        let width = self.draw_cfg.width();
        let mut out = vec![0i64; users.len() * k];
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
        let work_on_block = |b: usize, block: &mut [i64]| {
            let mut prng = propose_key.rng(purpose::DRAW, b as u64);
            let mut srng = select_key.rng(purpose::GUMBEL, b as u64);
            let mut proposer = Proposer::new(train, mem, proposal, cm, width);
            let mut items = vec![0i64; k * width];
            let mut scores = vec![0f32; k * width];
            for (r, o) in block.chunks_mut(k).enumerate() {
                let idx = b * BLOCK + r;
                let u = users[idx] as usize;
                let anchor = proposer.row(u, positives.map(|p| p[idx]), &mut prng, &mut items);
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
        let work = out.len() * width;
        crate::pool::for_each_chunk_mut(&mut out, k * BLOCK, work, work_on_block);
        Ok(out)
    }

    fn context(&self) -> DrawContext<'_> {
        DrawContext {
            train: &self.train,
            memory: &self.memory,
            cfg: self.draw_cfg,
            refresh: self.refresh_cfg,
            epoch: self.stream.epoch,
            prev_emb: self.prev_emb.as_ref(),
            cache: self.gain_cache.as_ref(),
            recip: simd::mean_recip_fn(),
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
        self.filled
            .extend(mem.range(u).map(|s| mem.items[s]).filter(|&i| i >= 0));
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

/// Reused buffers of [`DynamicSampler::step_memory`].
#[derive(Default)]
struct StepScratch {
    items: Vec<i32>,
    values: Vec<f32>,
    kept: Vec<i64>,
    saved: Vec<usize>,
}

/// Validates a batch of draws: users in range and not saturated, positives
/// (when given) aligned with them and in range.
fn check_draw(train: &Interactions, users: &[i64], positives: Option<&[i64]>) -> Result<()> {
    check_batch(train, users, "users")?;
    match positives {
        Some(p) => check_pairs(train, users, p),
        None => Ok(()),
    }
}

/// Draws with at most this many candidates take the pruned gain argmax
/// (its buffer lives on the stack); wider ones scan every candidate.
const PRUNE_MAX: usize = 32;

/// Read-only view used while choosing, shared across threads.
struct DrawContext<'a> {
    train: &'a Interactions,
    memory: &'a Memory,
    cfg: DrawConfig,
    refresh: RefreshConfig,
    epoch: u64,
    prev_emb: Option<&'a Embeddings>,
    cache: Option<&'a GainCache>,
    recip: simd::RecipFn,
}

impl DrawContext<'_> {
    fn choose(
        &self,
        u: usize,
        anchor: i64,
        s_i: f32,
        items: &[i64],
        scores: &[f32],
        rng: &mut Rng,
    ) -> i64 {
        if let Criterion::Gain { beta } = self.cfg.criterion {
            if self.cfg.temperature == 0.0 && items.len() <= PRUNE_MAX {
                return self.choose_gain_argmax(u, anchor, s_i, items, scores, beta);
            }
        }
        let mut best = 0usize;
        let mut best_v = f32::NEG_INFINITY;
        for (c, (&j, &s_j)) in items.iter().zip(scores).enumerate() {
            let mut v = self.criterion(u, anchor, s_i, j, s_j);
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
    /// for candidates that cannot win: `G ≤ 1` bounds the factor, so after
    /// visiting candidates in decreasing hardness the rest are pruned once
    /// `hard·bound` falls below the best value. Same answer as the full
    /// scan (ties to the earlier candidate), a fraction of the gain work.
    fn choose_gain_argmax(
        &self,
        u: usize,
        anchor: i64,
        s_i: f32,
        items: &[i64],
        scores: &[f32],
        beta: f32,
    ) -> i64 {
        let g0 = self.refresh.g0;
        let bound = (1.0 + beta * (1.0 - g0))
            .max(1.0 + beta * (0.0 - g0))
            .max(0.0);
        // Candidates in decreasing hardness, picked by repeated maximum:
        // a draw has a handful of candidates, so this beats a sort and
        // needs no allocation.
        let mut hard = [f32::NEG_INFINITY; PRUNE_MAX];
        for (h, &s_j) in hard.iter_mut().zip(scores) {
            *h = if anchor >= 0 {
                sigmoid(s_j - s_i)
            } else {
                sigmoid(s_j)
            };
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
            let v = h * (1.0 + beta * (self.gain(u, items[c], scores[c]) - g0)).max(0.0);
            if v > best_v || (v == best_v && c < best) {
                best_v = v;
                best = c;
            }
        }
        items[best]
    }

    fn criterion(&self, u: usize, anchor: i64, s_i: f32, j: i64, s_j: f32) -> f32 {
        let hard = || {
            if anchor >= 0 {
                sigmoid(s_j - s_i)
            } else {
                sigmoid(s_j)
            }
        };
        match self.cfg.criterion {
            Criterion::Score => s_j,
            Criterion::Hardness => hard(),
            Criterion::Gain { beta } => {
                hard() * (1.0 + beta * (self.gain(u, j, s_j) - self.refresh.g0)).max(0.0)
            }
            Criterion::GainAdditive { beta } => {
                hard() + beta * (self.gain(u, j, s_j) - self.refresh.g0)
            }
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
    /// two observations; otherwise, with two snapshots, the one-step gain
    /// `α·g0 + (1 − α)·σ((H_prev − H_now)/(H_now + ε))` from the cached
    /// positives; otherwise `g0` (no evidence yet: the warm-up).
    fn gain(&self, u: usize, j: i64, s_j: f32) -> f32 {
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
                crate::kernels::gain_step(h_prev, h_now, g0, self.refresh.alpha, self.refresh.eps)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> Arc<Interactions> {
        let mut users = vec![];
        let mut items = vec![];
        for u in 0..40i64 {
            for t in 0..(3 + u % 5) {
                users.push(u);
                items.push((u * 7 + t * 3) % 50);
            }
        }
        Arc::new(Interactions::from_pairs(&users, &items, None, Some(50)).unwrap())
    }

    fn emb(train: &Interactions, seed: u64) -> Embeddings {
        let mut r = Rng::new(seed);
        let d = 4;
        let u = (0..train.n_users() * d)
            .map(|_| r.uniform() as f32 - 0.5)
            .collect();
        let i = (0..train.n_items() * d)
            .map(|_| r.uniform() as f32 - 0.5)
            .collect();
        Embeddings::new(u, i, d, train.n_users(), train.n_items()).unwrap()
    }

    fn gain_sampler(train: Arc<Interactions>) -> DynamicSampler {
        DynamicSampler::new(
            train,
            Proposal::Uniform,
            RefreshConfig {
                slots: 8,
                fresh: 8,
                history: 3,
                retain: Retain::TopH,
                alpha: 0.2,
                eps: 1e-6,
                g0: 0.5,
                max_positives: None,
            },
            DrawConfig {
                memory_candidates: 3,
                fresh_candidates: 2,
                criterion: Criterion::Gain { beta: 1.0 },
                temperature: 0.0,
                gain_positives: 16,
                memory_step: false,
            },
            7,
        )
        .unwrap()
    }

    #[test]
    fn refresh_fills_memory_with_hardest_negatives_and_gain_needs_two() {
        let train = data();
        let mut s = gain_sampler(train.clone());
        s.set_embeddings(emb(&train, 1)).unwrap();
        s.refresh_from_vectors().unwrap();
        for u in 0..train.n_users() {
            let r = s.memory.range(u);
            let items = &s.memory.items[r.clone()];
            assert!(items
                .iter()
                .all(|&i| i >= 0 && !train.contains(u, i as u32)));
            // Sorted by H, highest first.
            let h = &s.memory.h[r.clone()];
            assert!(h.windows(2).all(|w| w[0] >= w[1]));
            assert!(s.memory.g[r].iter().all(|&g| g == 0.5));
        }
        s.set_embeddings(emb(&train, 2)).unwrap();
        s.refresh_from_vectors().unwrap();
        let moved = (0..s.memory.g.len())
            .filter(|&k| s.memory.obs[k] >= 2 && s.memory.g[k] != 0.5)
            .count();
        assert!(moved > 0);
    }

    #[test]
    fn draws_are_negatives_and_deterministic() {
        let train = data();
        // Enough draws to take the parallel path.
        let users: Vec<i64> = (0..4000).map(|r| r % 40).collect();
        let run = || {
            let mut s = gain_sampler(train.clone());
            s.set_embeddings(emb(&train, 1)).unwrap();
            s.refresh_from_vectors().unwrap();
            s.draw_from_vectors(&users, None, 3).unwrap()
        };
        let a = run();
        for (r, row) in a.chunks(3).enumerate() {
            for &j in row {
                assert!(!train.contains(users[r] as usize, j as u32));
            }
        }
        crate::pool::set_num_threads(1).unwrap();
        assert_eq!(a, run());
        crate::pool::set_num_threads(3).unwrap();
        assert_eq!(a, run());
    }

    #[test]
    fn dns_picks_the_highest_scored_candidate() {
        let train = data();
        let mut s = DynamicSampler::new(
            train.clone(),
            Proposal::Uniform,
            RefreshConfig {
                slots: 0,
                fresh: 0,
                history: 0,
                retain: Retain::TopH,
                alpha: 0.2,
                eps: 1e-6,
                g0: 0.5,
                max_positives: None,
            },
            DrawConfig {
                memory_candidates: 0,
                fresh_candidates: 5,
                criterion: Criterion::Score,
                temperature: 0.0,
                gain_positives: 0,
                memory_step: false,
            },
            1,
        )
        .unwrap();
        let users: Vec<i64> = (0..40).collect();
        let p = s.propose(&users, None, 2).unwrap();
        let scores: Vec<f32> = p.items.iter().map(|&i| (i * 37 % 11) as f32).collect();
        let out = s.select(&users, &p, 2, &scores, &[0.0; 40]).unwrap();
        for (d, &chosen) in out.iter().enumerate() {
            let c = &p.items[d * 5..(d + 1) * 5];
            let best = c
                .iter()
                .map(|&i| (i * 37 % 11) as f32)
                .fold(f32::MIN, f32::max);
            assert_eq!((chosen * 37 % 11) as f32, best);
        }
    }
}
