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

use std::collections::VecDeque;
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

/// What a snapshot change needs to be undone (see `refresh_embeddings`).
struct Undo {
    /// Whether the previous current snapshot was pushed onto `past`.
    pushed: bool,
    /// Snapshots dropped from `past`'s front, in the order dropped.
    dropped: Vec<Embeddings>,
    cache: Option<GainCache>,
    snapshots: u64,
}

pub struct DynamicSampler {
    train: Arc<Interactions>,
    proposal: Proposal,
    memory: Memory,
    refresh_cfg: RefreshConfig,
    draw_cfg: DrawConfig,
    stream: Stream,
    emb: Option<Embeddings>,
    /// The snapshots before `emb`, oldest first, at most `gain_window` of
    /// them: the draw-time gain compares `emb` with the oldest.
    past: VecDeque<Embeddings>,
    /// Prepared positive scores under `past.front()` and `emb` (same subset).
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
            past: VecDeque::new(),
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
    /// The current model-vector snapshot and the ones before it that the
    /// draw-time gain keeps (oldest first, at most `gain_window`).
    pub fn embeddings(&self) -> (Option<&Embeddings>, &VecDeque<Embeddings>) {
        (self.emb.as_ref(), &self.past)
    }
    /// How many snapshots `gain_window` keeps before the current one.
    fn past_cap(&self) -> usize {
        self.refresh_cfg.gain_window.max(1)
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
        self.set_embeddings_undoable(emb).map(|_| ())
    }

    /// [`Self::set_embeddings`], returning what [`Self::undo_embeddings`]
    /// needs to put the snapshots back as they were.
    fn set_embeddings_undoable(&mut self, emb: Embeddings) -> Result<Undo> {
        self.check_embeddings(&emb)?;
        let snapshots = self.snapshots.wrapping_add(1);
        // Once `emb` is current, `past` keeps the last `cap` of
        // `past + [current]`; the gain compares `emb` with the oldest of them.
        let cap = self.past_cap();
        let listed = self.past.len() + usize::from(self.emb.is_some());
        let first = listed - listed.min(cap);
        let oldest = if first < self.past.len() {
            self.past.get(first)
        } else {
            self.emb.as_ref()
        };
        let cache = self.build_gain_cache(oldest, Some(&emb), snapshots)?;
        let mut undo = Undo {
            pushed: false,
            dropped: Vec::new(),
            cache: self.gain_cache.take(),
            snapshots: self.snapshots,
        };
        if let Some(now) = self.emb.replace(emb) {
            self.past.push_back(now);
            undo.pushed = true;
        }
        while self.past.len() > cap {
            undo.dropped.extend(self.past.pop_front());
        }
        self.snapshots = snapshots;
        self.gain_cache = cache;
        Ok(undo)
    }

    /// Puts the snapshots back as they were before the set that returned `undo`.
    fn undo_embeddings(&mut self, undo: Undo) {
        for e in undo.dropped.into_iter().rev() {
            self.past.push_front(e);
        }
        self.emb = if undo.pushed {
            self.past.pop_back()
        } else {
            None
        };
        self.gain_cache = undo.cache;
        self.snapshots = undo.snapshots;
    }

    /// A new snapshot and a full refresh from it, as one step: if any part
    /// fails (vectors whose scores overflow, say), the sampler is left as
    /// it was, snapshots, memory and stream included.
    pub fn refresh_embeddings(&mut self, emb: Embeddings) -> Result<()> {
        let undo = self.set_embeddings_undoable(emb)?;
        let result = self.refresh_from_vectors();
        if result.is_err() {
            self.undo_embeddings(undo);
        }
        result
    }

    /// Restores the snapshots and the snapshot counter (from a state dict):
    /// `past` oldest first (at most `gain_window` of them), then `now`.
    pub fn restore_embeddings(
        &mut self,
        past: Vec<Embeddings>,
        now: Option<Embeddings>,
        snapshots: u64,
    ) -> Result<()> {
        if past.len() > self.past_cap() {
            return Err(Error::value(format!(
                "state holds {} past snapshots, gain_window={} keeps at most {}",
                past.len(),
                self.refresh_cfg.gain_window,
                self.past_cap()
            )));
        }
        if now.is_none() && !past.is_empty() {
            return Err(Error::value(
                "state holds past snapshots but no current one",
            ));
        }
        for e in past.iter().chain(now.iter()) {
            self.check_embeddings(e)?;
        }
        self.gain_cache = self.build_gain_cache(past.first(), now.as_ref(), snapshots)?;
        self.past = past.into();
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
