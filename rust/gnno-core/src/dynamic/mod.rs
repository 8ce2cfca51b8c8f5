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
//!
//! One file per concern:
//! * `config`: [`Criterion`], [`DrawConfig`], [`RefreshConfig`];
//! * `gain_cache`: the per-user positives scored under two snapshots;
//! * `refresh`: the memory refresh (candidates, `H`, `G`, retention);
//! * `step`: SRNS's per-draw memory update;
//! * `draw`: propose, select, and the fused vector-scored draw;
//! * `criteria`: how one negative is chosen among its candidates.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::interactions::Interactions;
use crate::kernels::Embeddings;
use crate::memory::{Memory, MemoryState};
use crate::proposal::Proposal;
use crate::sampling::Stream;

mod config;
mod criteria;
mod draw;
mod gain_cache;
mod refresh;
mod step;
#[cfg(test)]
mod tests;

pub use config::{Criterion, DrawConfig, RefreshConfig};
pub use draw::Proposed;
use gain_cache::GainCache;

pub struct DynamicSampler {
    train: Arc<Interactions>,
    proposal: Proposal,
    memory: Memory,
    refresh_cfg: RefreshConfig,
    draw_cfg: DrawConfig,
    stream: Stream,
    emb: Option<Embeddings>,
    /// The snapshot before `emb`, for the draw-time gain.
    prev_emb: Option<Embeddings>,
    /// Prepared positive scores under `prev_emb` and `emb` (same subset).
    gain_cache: Option<GainCache>,
    /// Refreshes applied so far (the gain needs two).
    refreshes: u64,
    /// Snapshots taken so far; keys the positives subset of `gain_cache`.
    snapshots: u64,
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
        )?;
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

    pub fn train(&self) -> &Arc<Interactions> {
        &self.train
    }
    pub fn memory(&self) -> &Memory {
        &self.memory
    }
    pub fn draw_config(&self) -> &DrawConfig {
        &self.draw_cfg
    }
    pub fn refresh_config(&self) -> &RefreshConfig {
        &self.refresh_cfg
    }
    pub fn stream(&self) -> Stream {
        self.stream
    }
    pub fn set_stream(&mut self, stream: Stream) {
        self.stream = stream;
    }
    pub fn set_epoch(&mut self, epoch: u64) {
        self.stream.set_epoch(epoch);
    }
    /// The current and previous model-vector snapshots.
    pub fn embeddings(&self) -> (Option<&Embeddings>, Option<&Embeddings>) {
        (self.emb.as_ref(), self.prev_emb.as_ref())
    }
    pub fn has_embeddings(&self) -> bool {
        self.emb.is_some()
    }
    pub fn refreshes(&self) -> u64 {
        self.refreshes
    }
    pub fn snapshots(&self) -> u64 {
        self.snapshots
    }

    /// Restores the memory and the refresh count from a saved state; the
    /// state is validated in full first, so a bad one changes nothing.
    pub fn restore_memory(&mut self, state: MemoryState, refreshes: u64) -> Result<()> {
        // Gains outside their range would break the pruned argmax's bound.
        let (lo, hi) = criteria::gain_range(self.refresh_cfg.g0);
        if let Some(p) = (0..state.g.len().min(state.items.len()))
            .find(|&p| state.items[p] >= 0 && !(lo..=hi).contains(&state.g[p]))
        {
            return Err(Error::value(format!(
                "state g[{p}]={} is not a gain reachable from g0={} (it must lie in [{lo}, {hi}])",
                state.g[p], self.refresh_cfg.g0
            )));
        }
        self.memory.restore(state, self.train.n_items())?;
        self.refreshes = refreshes;
        Ok(())
    }

    /// Takes a new snapshot of the model's vectors without refreshing the
    /// memory (see [`Self::refresh_embeddings`] for the two together).
    pub fn set_embeddings(&mut self, emb: Embeddings) -> Result<()> {
        self.check_embeddings(&emb)?;
        let snapshots = self.snapshots.wrapping_add(1);
        let cache = self.build_gain_cache(self.emb.as_ref(), Some(&emb), snapshots)?;
        self.prev_emb = self.emb.replace(emb);
        self.snapshots = snapshots;
        self.gain_cache = cache;
        Ok(())
    }

    /// A new snapshot and a full refresh from it, as one step: if any part
    /// fails (vectors whose scores overflow, say), the sampler is left as
    /// it was, snapshots, memory and stream included.
    pub fn refresh_embeddings(&mut self, emb: Embeddings) -> Result<()> {
        self.check_embeddings(&emb)?;
        let old_prev = self.prev_emb.take();
        let old_cache = self.gain_cache.take();
        let old_snapshots = self.snapshots;
        let result = self
            .set_embeddings(emb)
            .and_then(|_| self.refresh_from_vectors());
        if result.is_err() {
            // `prev_emb` holds the old current snapshot again.
            self.emb = self.prev_emb.take();
            self.prev_emb = old_prev;
            self.gain_cache = old_cache;
            self.snapshots = old_snapshots;
        }
        result
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
        self.gain_cache = self.build_gain_cache(prev.as_ref(), now.as_ref(), snapshots)?;
        self.prev_emb = prev;
        self.emb = now;
        self.snapshots = snapshots;
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
}
