//! Per-user candidate memory: `M` slots of (item, last `H`, gain `G`,
//! observation count, score history), O(n_users × M × (1 + history)).
//!
//! A refresh merges the memory with fresh candidates, measures `H` for all
//! of them, advances `G` where a previous `H` exists, records the scores in
//! the history ring, and keeps `M` slots by the retention rule.

use crate::alloc;
use crate::error::{Error, Result};
use crate::kernels::{gain_step, perturb, topk_row};
use crate::rng::Rng;

/// How a refresh decides which candidates stay in memory.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Retain {
    /// The `M` highest `H` (hardest) candidates.
    TopH,
    /// `M` drawn without replacement ∝ softmax(H / temperature).
    SoftmaxH { temperature: f32 },
    /// `M` drawn without replacement ∝ softmax(score / temperature) (SRNS).
    SoftmaxScore { temperature: f32 },
    /// `M` drawn uniformly at random (an ablation baseline).
    Random,
}

impl Retain {
    pub fn validate(&self) -> Result<()> {
        match *self {
            Retain::SoftmaxH { temperature } | Retain::SoftmaxScore { temperature }
                if !(temperature.is_finite() && temperature > 0.0) =>
            {
                Err(Error::value(format!(
                    "retention temperature must be finite and > 0, got {temperature}"
                )))
            }
            _ => Ok(()),
        }
    }
}

/// One candidate while a refresh decides; carries a slot's full state.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub item: i32,
    pub h: f32,
    pub g: f32,
    pub obs: u32,
    pub score: f32,
    /// Score history, oldest first, at most `history` entries.
    pub hist: Vec<f32>,
}

#[derive(Debug, Clone)]
pub struct Memory {
    pub(crate) n_users: usize,
    pub(crate) slots: usize,
    pub(crate) history: usize,
    /// `n_users × slots`, `-1` = empty.
    pub(crate) items: Vec<i32>,
    pub(crate) h: Vec<f32>,
    pub(crate) g: Vec<f32>,
    pub(crate) obs: Vec<u32>,
    /// `n_users × slots × history` scores, oldest first within a slot.
    pub(crate) hist: Vec<f32>,
    /// `nnz × history` scores of each training positive, oldest first.
    pub(crate) pos_hist: Vec<f32>,
    /// Number of refreshes recorded in `pos_hist` (capped at `history`).
    pub(crate) pos_filled: usize,
}

/// A memory's full state, as saved and restored (see [`Memory::restore`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MemoryState {
    pub items: Vec<i32>,
    pub h: Vec<f32>,
    pub g: Vec<f32>,
    pub obs: Vec<u32>,
    pub hist: Vec<f32>,
    pub pos_hist: Vec<f32>,
    pub pos_filled: usize,
}

impl Memory {
    /// An empty memory; its size comes from user input, so it is reserved
    /// fallibly and an impossible size is an error naming it.
    pub fn new(n_users: usize, slots: usize, history: usize, nnz: usize, g0: f32) -> Result<Self> {
        let what = format!("the candidate memory (n_users={n_users} × memory slots={slots})");
        let cells = alloc::len(&what, &[n_users, slots])?;
        let hist_what = format!("{what} × history={history}");
        let pos_what = format!("the positives' score history (nnz={nnz} × history={history})");
        Ok(Self {
            n_users,
            slots,
            history,
            items: alloc::filled(&what, cells, -1)?,
            h: alloc::filled(&what, cells, f32::NAN)?,
            g: alloc::filled(&what, cells, g0)?,
            obs: alloc::filled(&what, cells, 0)?,
            hist: alloc::filled_product(&hist_what, &[cells, history], f32::NAN)?,
            pos_hist: alloc::filled_product(&pos_what, &[nnz, history], f32::NAN)?,
            pos_filled: 0,
        })
    }

    pub fn slots(&self) -> usize {
        self.slots
    }
    pub fn history(&self) -> usize {
        self.history
    }
    /// A copy of the full state.
    pub fn state(&self) -> MemoryState {
        MemoryState {
            items: self.items.clone(),
            h: self.h.clone(),
            g: self.g.clone(),
            obs: self.obs.clone(),
            hist: self.hist.clone(),
            pos_hist: self.pos_hist.clone(),
            pos_filled: self.pos_filled,
        }
    }

    /// Replaces the state with `state` after checking all of it (sizes,
    /// item ids below `n_items`, `pos_filled <= history`); an invalid state
    /// changes nothing.
    pub fn restore(&mut self, state: MemoryState, n_items: usize) -> Result<()> {
        let checks: [(&str, usize, usize); 6] = [
            ("items", state.items.len(), self.items.len()),
            ("h", state.h.len(), self.h.len()),
            ("g", state.g.len(), self.g.len()),
            ("obs", state.obs.len(), self.obs.len()),
            ("hist", state.hist.len(), self.hist.len()),
            ("pos_hist", state.pos_hist.len(), self.pos_hist.len()),
        ];
        for (name, got, want) in checks {
            if got != want {
                return Err(Error::shape(format!(
                    "state {name} has {got} entries, this sampler needs {want}"
                )));
            }
        }
        if let Some(p) = state
            .items
            .iter()
            .position(|&i| i < -1 || i as i64 >= n_items as i64)
        {
            return Err(Error::id_out_of_range(
                "item",
                state.items[p] as i64,
                "n_items",
                n_items,
                "state items",
                p,
            ));
        }
        if state.pos_filled > self.history {
            return Err(Error::value(format!(
                "state pos_filled={} exceeds history={}",
                state.pos_filled, self.history
            )));
        }
        self.items = state.items;
        self.h = state.h;
        self.g = state.g;
        self.obs = state.obs;
        self.hist = state.hist;
        self.pos_hist = state.pos_hist;
        self.pos_filled = state.pos_filled;
        Ok(())
    }

    /// The slot index range of user `u`.
    #[inline]
    pub fn range(&self, u: usize) -> std::ops::Range<usize> {
        u * self.slots..(u + 1) * self.slots
    }

    /// The slot of `item` in `u`'s memory, if present.
    #[inline]
    pub fn find(&self, u: usize, item: i32) -> Option<usize> {
        let r = self.range(u);
        // Most lookups miss; chunks compared without early exit compile to
        // vector compares, and only a chunk that matches is searched.
        const CHUNK: usize = 8;
        let row = &self.items[r.clone()];
        for (c, chunk) in row.chunks(CHUNK).enumerate() {
            if chunk.iter().fold(false, |hit, &i| hit | (i == item)) {
                let p = chunk.iter().position(|&i| i == item)?;
                return Some(r.start + c * CHUNK + p);
            }
        }
        None
    }

    /// Starts loading user `u`'s slot items (a hint, see
    /// [`crate::kernels::prefetch`]).
    #[inline]
    pub fn prefetch_items(&self, u: usize) {
        crate::kernels::prefetch(&self.items[self.range(u)]);
    }

    /// The memory split into one mutable row per user (see [`MemoryRow`]).
    pub fn rows_mut(&mut self) -> Vec<MemoryRow<'_>> {
        let all: Vec<usize> = (0..self.n_users).collect();
        self.rows_for(&all)
    }

    /// Mutable rows of the users in `users` (sorted, distinct, in range).
    pub fn rows_for(&mut self, users: &[usize]) -> Vec<MemoryRow<'_>> {
        let (s, w) = (self.slots, self.history);
        let mut rows = Vec::with_capacity(users.len());
        let mut items = self.items.as_mut_slice();
        let mut h = self.h.as_mut_slice();
        let mut g = self.g.as_mut_slice();
        let mut obs = self.obs.as_mut_slice();
        let mut hist = self.hist.as_mut_slice();
        let mut at = 0usize; // the user that `items` etc. now start at
        for &u in users {
            let skip = u - at;
            items = &mut std::mem::take(&mut items)[skip * s..];
            h = &mut std::mem::take(&mut h)[skip * s..];
            g = &mut std::mem::take(&mut g)[skip * s..];
            obs = &mut std::mem::take(&mut obs)[skip * s..];
            hist = &mut std::mem::take(&mut hist)[skip * s * w..];
            let (a, ra) = std::mem::take(&mut items).split_at_mut(s);
            let (b, rb) = std::mem::take(&mut h).split_at_mut(s);
            let (c, rc) = std::mem::take(&mut g).split_at_mut(s);
            let (d, rd) = std::mem::take(&mut obs).split_at_mut(s);
            let (e, re) = std::mem::take(&mut hist).split_at_mut(s * w);
            rows.push(MemoryRow {
                items: a,
                h: b,
                g: c,
                obs: d,
                hist: e,
                history: w,
            });
            items = ra;
            h = rb;
            g = rc;
            obs = rd;
            hist = re;
            at = u + 1;
        }
        rows
    }
}

/// One user's slots, borrowed mutably so users refresh in parallel.
pub struct MemoryRow<'a> {
    pub items: &'a mut [i32],
    pub h: &'a mut [f32],
    pub g: &'a mut [f32],
    pub obs: &'a mut [u32],
    pub hist: &'a mut [f32],
    pub history: usize,
}

impl MemoryRow<'_> {
    pub fn candidates(&self, out: &mut Vec<Candidate>) {
        out.clear();
        let w = self.history;
        for s in 0..self.items.len() {
            if self.items[s] >= 0 {
                let filled = (self.obs[s] as usize).min(w);
                out.push(Candidate {
                    item: self.items[s],
                    h: self.h[s],
                    g: self.g[s],
                    obs: self.obs[s],
                    score: f32::NAN,
                    hist: self.hist[s * w + (w - filled)..(s + 1) * w].to_vec(),
                });
            }
        }
    }

    /// A copy of the row's slots, for rebuilding it in another order.
    pub fn snapshot(&self) -> RowCopy {
        RowCopy {
            items: self.items.to_vec(),
            h: self.h.to_vec(),
            g: self.g.to_vec(),
            obs: self.obs.to_vec(),
            hist: self.hist.to_vec(),
        }
    }

    /// Empties every slot.
    pub fn clear(&mut self) {
        self.items.fill(-1);
        self.h.fill(f32::NAN);
        self.g.fill(f32::NAN);
        self.obs.fill(0);
        self.hist.fill(f32::NAN);
    }

    /// Slot `to` takes the full state of slot `from` of `old`.
    pub fn copy_slot_from(&mut self, old: &RowCopy, from: usize, to: usize) {
        let w = self.history;
        self.items[to] = old.items[from];
        self.h[to] = old.h[from];
        self.g[to] = old.g[from];
        self.obs[to] = old.obs[from];
        self.hist[to * w..(to + 1) * w].copy_from_slice(&old.hist[from * w..(from + 1) * w]);
    }

    /// Slot `to` holds a new item with no observation yet.
    pub fn set_new(&mut self, to: usize, item: i32, g0: f32) {
        let w = self.history;
        self.items[to] = item;
        self.h[to] = f32::NAN;
        self.g[to] = g0;
        self.obs[to] = 0;
        self.hist[to * w..(to + 1) * w].fill(f32::NAN);
    }

    /// Writes the kept candidates into the slots, emptying the rest.
    pub fn store(&mut self, kept: &[Candidate]) {
        let w = self.history;
        for s in 0..self.items.len() {
            let slot_hist = &mut self.hist[s * w..(s + 1) * w];
            slot_hist.fill(f32::NAN);
            match kept.get(s) {
                Some(c) => {
                    self.items[s] = c.item;
                    self.h[s] = c.h;
                    self.g[s] = c.g;
                    self.obs[s] = c.obs;
                    let n = c.hist.len().min(w);
                    slot_hist[w - n..].copy_from_slice(&c.hist[c.hist.len() - n..]);
                }
                None => {
                    self.items[s] = -1;
                    self.h[s] = f32::NAN;
                    self.g[s] = f32::NAN;
                    self.obs[s] = 0;
                }
            }
        }
    }
}

/// A copy of one user's slots (see [`MemoryRow::snapshot`]).
pub struct RowCopy {
    items: Vec<i32>,
    h: Vec<f32>,
    g: Vec<f32>,
    obs: Vec<u32>,
    hist: Vec<f32>,
}

/// Advances one candidate with a new observation of `H` and `score`.
#[inline]
pub fn observe(c: &mut Candidate, h_now: f32, score: f32, alpha: f32, eps: f32, history: usize) {
    c.g = gain_step(c.h, h_now, c.g, alpha, eps);
    c.h = h_now;
    c.score = score;
    c.obs = c.obs.saturating_add(1);
    if history > 0 {
        if c.hist.len() == history {
            c.hist.remove(0);
        }
        c.hist.push(score);
    }
}

/// Reused buffers of [`retain`] and [`retention_order`].
#[derive(Default)]
pub struct RetainScratch {
    keys: Vec<f32>,
    buf: Vec<f32>,
    kept: Vec<i64>,
    chosen: Vec<Candidate>,
}

/// The retention rule, written once: the indices of the `keep` candidates
/// that stay, best first, into `kept`. `keys[c]` is candidate `c`'s value
/// for the rule (`H` for `TopH`/`SoftmaxH`, the score for `SoftmaxScore`,
/// unused for `Random`); ties go to the lower index and NaN ranks last.
pub fn retention_order(
    keys: &[f32],
    keep: usize,
    rule: Retain,
    rng: &mut Rng,
    buf: &mut Vec<f32>,
    kept: &mut Vec<i64>,
) {
    let keep = keep.min(keys.len());
    kept.clear();
    kept.resize(keep, 0);
    if keep == 0 {
        return;
    }
    match rule {
        Retain::TopH => topk_row(keys, keep, kept),
        Retain::SoftmaxH { temperature } | Retain::SoftmaxScore { temperature } => {
            buf.clear();
            buf.resize(keys.len(), 0.0);
            perturb(keys, temperature, rng, buf);
            topk_row(buf, keep, kept);
        }
        Retain::Random => {
            buf.clear();
            buf.extend(keys.iter().map(|_| rng.uniform() as f32));
            topk_row(buf, keep, kept);
        }
    }
}

/// Chooses which `slots` candidates stay, reordering `cands` so the kept
/// ones come first, best first (see [`retention_order`]).
pub fn retain(
    cands: &mut Vec<Candidate>,
    slots: usize,
    rule: Retain,
    rng: &mut Rng,
    scratch: &mut RetainScratch,
) {
    let RetainScratch {
        keys,
        buf,
        kept,
        chosen,
    } = scratch;
    keys.clear();
    keys.extend(cands.iter().map(|c| match rule {
        Retain::SoftmaxScore { .. } => c.score,
        _ => c.h,
    }));
    retention_order(keys, slots, rule, rng, buf, kept);
    chosen.clear();
    chosen.extend(kept.iter().map(|&i| cands[i as usize].clone()));
    std::mem::swap(cands, chosen);
}

#[cfg(test)]
mod tests {
    use super::Memory;

    #[test]
    fn find_sees_every_slot_of_its_user_only() {
        // 13 slots: one full chunk of 8 and a partial one.
        let mut m = Memory::new(3, 13, 0, 0, 0.5).unwrap();
        for (s, item) in m.items.iter_mut().enumerate() {
            *item = s as i32;
        }
        for u in 0..3 {
            for s in m.range(u) {
                assert_eq!(m.find(u, s as i32), Some(s));
            }
            let other = ((u + 1) % 3) * 13;
            assert_eq!(m.find(u, other as i32), None);
            assert_eq!(m.find(u, -1), None);
        }
        // A repeated item: the first slot.
        m.items[13 + 9] = 13 + 2;
        assert_eq!(m.find(1, 13 + 2), Some(13 + 2));
    }
}
