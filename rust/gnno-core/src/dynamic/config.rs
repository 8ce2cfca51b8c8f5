//! What a draw and a refresh are configured with, and their checks.

use crate::error::{Error, Result};
use crate::memory::Retain;

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
    /// `σ(s_j − s_i)·max(0, 1 + beta·z_j)` with `z_j = (G_j − μ_u)/σ_u`, the
    /// gain standardised by the mean and spread of the user's memory gains
    /// (slots observed at least twice), so that `beta` means the same for
    /// every user; `z_j = 0` while the user has fewer than two such slots.
    GainNormalized { beta: f32 },
    /// The gain as a veto: the hardest candidate (by `σ(s_j − s_i)`) whose
    /// `G_j ≥ threshold`, i.e. whose `H` is not marked as holding or
    /// rising like a false negative's; the hardest of all when every
    /// candidate is vetoed. Deterministic (no draw temperature).
    GainVeto { threshold: f32 },
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
    /// Epochs over which the gain weight `beta` of `Gain` / `GainAdditive`
    /// ramps up linearly from 0 (as SRNS's warm-up does); 0 = no ramp.
    pub gain_warmup: f32,
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
    /// Refreshes over which the gain measures the fall of `H`: 1 = one step
    /// (`(H_prev − H_now)/(H_now + ε)`); `W ≥ 2` = the per-refresh fall
    /// over the last `W` refreshes, `(H_{t−W} − H_t)/(W·(H_t + ε))`, with
    /// `H_{t−W}` recomputed from the score histories (so `history ≥ W + 1`).
    pub gain_window: usize,
}

impl DrawConfig {
    pub fn width(&self) -> usize {
        self.memory_candidates + self.fresh_candidates
    }
    pub(super) fn validate(&self) -> Result<()> {
        if self
            .memory_candidates
            .checked_add(self.fresh_candidates)
            .is_none()
        {
            return Err(Error::value(format!(
                "memory_candidates={} plus fresh_candidates={} is too large",
                self.memory_candidates, self.fresh_candidates
            )));
        }
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
        if !(self.gain_warmup.is_finite() && self.gain_warmup >= 0.0) {
            return Err(Error::value(format!(
                "gain_warmup must be finite and >= 0, got {}",
                self.gain_warmup
            )));
        }
        match self.criterion {
            Criterion::Gain { beta }
            | Criterion::GainAdditive { beta }
            | Criterion::GainNormalized { beta }
                if !beta.is_finite() =>
            {
                Err(Error::value(format!("beta must be finite, got {beta}")))
            }
            Criterion::GainVeto { threshold } if !threshold.is_finite() => Err(Error::value(
                format!("veto threshold must be finite, got {threshold}"),
            )),
            Criterion::GainVeto { .. } if self.temperature != 0.0 => Err(Error::value(format!(
                "the gain veto is deterministic: draw temperature must be 0, got {}",
                self.temperature
            ))),
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
    /// Width of a refresh's candidate rows: memory slots plus fresh items.
    pub fn width(&self) -> usize {
        self.slots + self.fresh
    }

    pub(super) fn validate(&self) -> Result<()> {
        if self.slots.checked_add(self.fresh).is_none() {
            return Err(Error::value(format!(
                "memory slots={} plus fresh={} is too large",
                self.slots, self.fresh
            )));
        }
        crate::kernels::check_gain_params(self.alpha, self.eps)?;
        self.retain.validate()?;
        if !self.g0.is_finite() {
            return Err(Error::value(format!("g0 must be finite, got {}", self.g0)));
        }
        if self.max_positives == Some(0) {
            return Err(Error::value("max_positives must be at least 1"));
        }
        if self.gain_window == 0 {
            return Err(Error::value("gain_window must be at least 1"));
        }
        if self.gain_window >= 2 && self.history <= self.gain_window {
            return Err(Error::value(format!(
                "gain_window={} needs a score history of at least {} refreshes, got history={}",
                self.gain_window,
                self.gain_window + 1,
                self.history
            )));
        }
        Ok(())
    }
}
