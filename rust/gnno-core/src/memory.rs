//! Per-user candidate memory: `M` slots of (item, last `H`, gain `G`,
//! observation count, score history), O(n_users × M × (1 + history)).
//!
//! A refresh merges the memory with fresh candidates, measures `H` for all
//! of them, advances `G` where a previous `H` exists, records the scores in
//! the history ring, and keeps `M` slots by the retention rule.

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
    pub n_users: usize,
    pub slots: usize,
    pub history: usize,
    /// `n_users × slots`, `-1` = empty.
    pub items: Vec<i32>,
    pub h: Vec<f32>,
    pub g: Vec<f32>,
    pub obs: Vec<u32>,
    /// `n_users × slots × history` scores, oldest first within a slot.
    pub hist: Vec<f32>,
    /// `nnz × history` scores of each training positive, oldest first.
    pub pos_hist: Vec<f32>,
    /// Number of refreshes recorded in `pos_hist` (capped at `history`).
    pub pos_filled: usize,
}

impl Memory {
    pub fn new(n_users: usize, slots: usize, history: usize, nnz: usize, g0: f32) -> Self {
        Self {
            n_users,
            slots,
            history,
            items: vec![-1; n_users * slots],
            h: vec![f32::NAN; n_users * slots],
            g: vec![g0; n_users * slots],
            obs: vec![0; n_users * slots],
            hist: vec![f32::NAN; n_users * slots * history],
            pos_hist: vec![f32::NAN; nnz * history],
            pos_filled: 0,
        }
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
        self.items[r.clone()]
            .iter()
            .position(|&i| i == item)
            .map(|p| r.start + p)
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

/// Chooses which `slots` candidates stay, reordering `cands` so the kept
/// ones come first (best first for `TopH`).
pub fn retain(cands: &mut Vec<Candidate>, slots: usize, rule: Retain, rng: &mut Rng) {
    if cands.len() <= slots && rule == Retain::TopH {
        order_by(cands, |c| c.h);
        return;
    }
    let keep = slots.min(cands.len());
    if keep == 0 {
        cands.clear();
        return;
    }
    let values: Vec<f32> = match rule {
        Retain::TopH => cands.iter().map(|c| c.h).collect(),
        Retain::SoftmaxH { temperature } => {
            let v: Vec<f32> = cands.iter().map(|c| c.h).collect();
            let mut buf = vec![0f32; v.len()];
            perturb(&v, temperature, rng, &mut buf);
            buf
        }
        Retain::SoftmaxScore { temperature } => {
            let v: Vec<f32> = cands.iter().map(|c| c.score).collect();
            let mut buf = vec![0f32; v.len()];
            perturb(&v, temperature, rng, &mut buf);
            buf
        }
        Retain::Random => cands.iter().map(|_| rng.uniform() as f32).collect(),
    };
    let mut idx = vec![0i64; keep];
    topk_row(&values, keep, &mut idx);
    let kept: Vec<Candidate> = idx.iter().map(|&i| cands[i as usize].clone()).collect();
    *cands = kept;
}

fn order_by(cands: &mut [Candidate], key: impl Fn(&Candidate) -> f32) {
    // Highest first, NaN last, stable for ties.
    cands.sort_by(|a, b| {
        let (x, y) = (key(a), key(b));
        match (x.is_nan(), y.is_nan()) {
            (true, true) => std::cmp::Ordering::Equal,
            (true, false) => std::cmp::Ordering::Greater,
            (false, true) => std::cmp::Ordering::Less,
            _ => y.partial_cmp(&x).unwrap_or(std::cmp::Ordering::Equal),
        }
    });
}
