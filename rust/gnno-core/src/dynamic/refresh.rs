//! The memory refresh: list each user's memory plus fresh candidates,
//! score them (from the stored vectors or by the caller), measure `H`,
//! advance `G`, record the score history, retain `slots`.

use rayon::prelude::*;

use super::DynamicSampler;
use crate::alloc;
use crate::error::{check_finite_f32, Error, Result};
use crate::kernels::{expectation_for_user, gain_step_over, Scratch};
use crate::memory::{observe, retain, Candidate, RetainScratch};
use crate::rng::{purpose, StreamKey, BLOCK};

use super::RefreshConfig;

impl DynamicSampler {
    /// Width of a refresh's candidate rows: memory slots plus fresh items.
    pub fn refresh_width(&self) -> usize {
        self.refresh_cfg.width()
    }

    /// Phase one of a refresh: each user's memory items followed by
    /// `fresh` new candidates (distinct, not in memory), `-1`-padded,
    /// row-major `n_users × refresh_width()`.
    pub fn refresh_candidates(&mut self) -> Result<Vec<i64>> {
        let width = self.refresh_width();
        let mut out = alloc::filled_product(
            "refresh candidates (n_users × (slots + fresh))",
            &[self.train.n_users(), width],
            -1i64,
        )?;
        let key = self.stream.next_key();
        let train = &*self.train;
        let (mem, proposal, fresh) = (&self.memory, &self.proposal, self.refresh_cfg.fresh);
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
                        while n < target && tries < fresh.saturating_add(1).saturating_mul(4) {
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
        // Validated: from here on nothing can fail, so a refresh either
        // completes or changes nothing.
        let key = self.stream.next_key();
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
        // Read while the rows are borrowed mutably; put back below (nothing
        // in between can fail).
        let pos_hist = std::mem::take(&mut self.memory.pos_hist);
        let pos_filled = self.memory.pos_filled;
        let mut rows = self.memory.rows_mut();
        crate::pool::install(|| {
            rows.par_chunks_mut(BLOCK)
                .enumerate()
                .for_each(|(b, block)| {
                    let mut rng = key.rng(purpose::RETAIN, b as u64);
                    let mut pool: Vec<Candidate> = Vec::new();
                    let mut listed: Vec<usize> = Vec::new();
                    let mut listed_scores: Vec<f32> = Vec::new();
                    let mut listed_h: Vec<f32> = Vec::new();
                    let mut listed_g: Vec<f32> = Vec::new();
                    let mut window = WindowScratch::default();
                    let mut scratch = Scratch::default();
                    let mut keep = RetainScratch::default();
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
                        // Memory items the caller did not list keep their state.
                        let pos = &pos_scores[indptr[u] as usize..indptr[u + 1] as usize];
                        listed.clear();
                        listed.extend((0..pool.len()).filter(|&k| pool[k].score.is_finite()));
                        listed_scores.clear();
                        listed_scores.extend(listed.iter().map(|&k| pool[k].score));
                        listed_h.clear();
                        listed_h.resize(listed.len(), 0.0);
                        expectation_for_user(
                            pos,
                            &listed_scores,
                            &mut listed_h,
                            cfg.max_positives,
                            key,
                            u,
                            &mut scratch,
                        );
                        // The gains before this refresh, for the windowed gain only.
                        listed_g.clear();
                        if cfg.gain_window >= 2 {
                            listed_g.extend(listed.iter().map(|&k| pool[k].g));
                        }
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
                        if cfg.gain_window >= 2 {
                            let ctx = WindowContext {
                                cfg: &cfg,
                                pos_hist: &pos_hist,
                                pos_filled,
                                positives: indptr[u] as usize..indptr[u + 1] as usize,
                                key,
                                user: u,
                            };
                            ctx.apply(
                                &mut pool,
                                &listed,
                                &listed_h,
                                &listed_g,
                                &mut window,
                                &mut scratch,
                            );
                        }
                        retain(&mut pool, cfg.slots, cfg.retain, &mut rng, &mut keep);
                        row.store(&pool);
                    }
                })
        });
        drop(rows);
        self.memory.pos_hist = pos_hist;
        self.refreshes += 1;
        Ok(())
    }

    /// A full refresh from the stored vectors (the fast path).
    /// Fails without changing anything (the stream included) when the
    /// scores are not finite.
    pub fn refresh_from_vectors(&mut self) -> Result<()> {
        if self.emb.is_none() {
            return Err(Error::value("no model vectors: call set_embeddings first"));
        }
        let stream = self.stream;
        let result = self.refresh_from_vectors_inner();
        if result.is_err() {
            self.stream = stream;
        }
        result
    }

    fn refresh_from_vectors_inner(&mut self) -> Result<()> {
        let cands = self.refresh_candidates()?;
        let emb = self
            .emb
            .as_ref()
            .ok_or_else(|| Error::value("no model vectors: call set_embeddings first"))?;
        let width = self.refresh_width();
        let train = &*self.train;
        let mut cand_scores = alloc::filled("refresh candidate scores", cands.len(), f32::NAN)?;
        let mut pos_scores = alloc::filled("positive scores (nnz)", train.nnz(), 0f32)?;
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
}

/// Reused buffers of [`WindowContext::apply`].
#[derive(Default)]
struct WindowScratch {
    chosen: Vec<usize>,
    old_scores: Vec<f32>,
    old_h: Vec<f32>,
    old_pos: Vec<f32>,
}

/// One user's view for the windowed gain (`gain_window ≥ 2`).
struct WindowContext<'a> {
    cfg: &'a RefreshConfig,
    /// `nnz × history` positive scores, oldest first, this refresh's last.
    pos_hist: &'a [f32],
    pos_filled: usize,
    positives: std::ops::Range<usize>,
    key: StreamKey,
    user: usize,
}

impl WindowContext<'_> {
    /// Replaces the one-step gain of every listed candidate observed over
    /// more than one refresh by the windowed one: with `lag` the number of
    /// refreshes its score history and the positives' both cover (at most
    /// `gain_window`), `H` then is recomputed from the scores of `lag`
    /// refreshes ago (the same positives, the same subsample), and
    /// `G = α·G_prev + (1 − α)·σ((H_then − H_now)/(lag·(H_now + ε)))`.
    /// Lag 1 is the one-step gain `observe` already applied.
    fn apply(
        &self,
        pool: &mut [Candidate],
        listed: &[usize],
        listed_h: &[f32],
        listed_g: &[f32],
        buf: &mut WindowScratch,
        scratch: &mut Scratch,
    ) {
        let (cfg, w) = (self.cfg, self.cfg.history);
        let lag_of = |c: &Candidate| {
            c.hist
                .len()
                .min(self.pos_filled)
                .saturating_sub(1)
                .min(cfg.gain_window)
        };
        for lag in 2..=cfg.gain_window {
            buf.chosen.clear();
            buf.old_scores.clear();
            for (t, &k) in listed.iter().enumerate() {
                let c = &pool[k];
                if lag_of(c) == lag {
                    buf.chosen.push(t);
                    buf.old_scores.push(c.hist[c.hist.len() - 1 - lag]);
                }
            }
            if buf.chosen.is_empty() {
                continue;
            }
            buf.old_pos.clear();
            buf.old_pos.extend(
                self.positives
                    .clone()
                    .map(|p| self.pos_hist[p * w + w - 1 - lag]),
            );
            buf.old_h.clear();
            buf.old_h.resize(buf.chosen.len(), 0.0);
            expectation_for_user(
                &buf.old_pos,
                &buf.old_scores,
                &mut buf.old_h,
                cfg.max_positives,
                self.key,
                self.user,
                scratch,
            );
            for (&t, &h_then) in buf.chosen.iter().zip(&buf.old_h) {
                pool[listed[t]].g = gain_step_over(
                    h_then,
                    listed_h[t],
                    listed_g[t],
                    cfg.alpha,
                    cfg.eps,
                    lag as f32,
                );
            }
        }
    }
}
