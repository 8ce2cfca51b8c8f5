//! Where fresh negatives come from: uniformly over a user's negatives, or
//! in proportion to `count(i)^beta` (popularity).
//!
//! Both exclude the user's positives exactly: the uniform proposal maps a
//! uniform index onto the row's complement; the popularity proposal redraws
//! a positive, and after [`POPULARITY_TRIES`] misses (a user holding most of
//! the popularity mass) switches to an exact scan of the complement.

use crate::error::{Error, Result};
use crate::interactions::Interactions;
use crate::rng::Rng;

/// Redraws before the popularity proposal scans the complement exactly.
pub const POPULARITY_TRIES: usize = 64;

/// Walker/Vose alias table: O(1) draws from a fixed discrete distribution.
#[derive(Debug, Clone)]
pub struct AliasTable {
    prob: Vec<f64>,
    alias: Vec<u32>,
    weights: Vec<f64>,
    total: f64,
}

impl AliasTable {
    pub fn new(weights: Vec<f64>) -> Result<Self> {
        let n = weights.len();
        if n == 0 {
            return Err(Error::empty("cannot build a distribution over zero items"));
        }
        if let Some(p) = weights.iter().position(|w| !w.is_finite() || *w < 0.0) {
            return Err(Error::value(format!(
                "item weights must be finite and >= 0, found {} at item {p}",
                weights[p]
            )));
        }
        let total: f64 = weights.iter().sum();
        if total <= 0.0 {
            return Err(Error::value("item weights sum to zero"));
        }
        let mut prob: Vec<f64> = weights.iter().map(|w| w * n as f64 / total).collect();
        let mut alias: Vec<u32> = (0..n as u32).collect();
        let mut small: Vec<usize> = Vec::new();
        let mut large: Vec<usize> = Vec::new();
        for (i, &p) in prob.iter().enumerate() {
            if p < 1.0 {
                small.push(i);
            } else {
                large.push(i);
            }
        }
        while let (Some(s), Some(l)) = (small.pop(), large.last().copied()) {
            alias[s] = l as u32;
            prob[l] -= 1.0 - prob[s];
            if prob[l] < 1.0 {
                large.pop();
                small.push(l);
            }
        }
        for i in large.into_iter().chain(small) {
            prob[i] = 1.0;
        }
        Ok(Self {
            prob,
            alias,
            weights,
            total,
        })
    }

    #[inline]
    pub fn draw(&self, rng: &mut Rng) -> u32 {
        let i = rng.below(self.prob.len() as u64) as usize;
        if rng.uniform() < self.prob[i] {
            i as u32
        } else {
            self.alias[i]
        }
    }

    pub fn weights(&self) -> &[f64] {
        &self.weights
    }
}

/// The distribution fresh negatives are drawn from.
#[derive(Debug, Clone)]
pub enum Proposal {
    Uniform,
    Popularity { beta: f64, table: AliasTable },
}

impl Proposal {
    /// `count(i)^beta` over the training counts; items never seen get the
    /// weight of a count of 1 so that every item stays reachable.
    pub fn popularity(train: &Interactions, beta: f64) -> Result<Self> {
        if !beta.is_finite() || beta < 0.0 {
            return Err(Error::value(format!(
                "beta must be finite and >= 0, got {beta}"
            )));
        }
        let weights = train
            .item_counts()
            .iter()
            .map(|&c| (c.max(1) as f64).powf(beta))
            .collect();
        Ok(Proposal::Popularity {
            beta,
            table: AliasTable::new(weights)?,
        })
    }

    /// One negative of user `u`; the caller has checked `u` has one.
    #[inline]
    pub fn draw(&self, train: &Interactions, u: usize, rng: &mut Rng) -> u32 {
        match self {
            Proposal::Uniform => {
                let k = rng.below(train.n_negatives(u) as u64) as u32;
                train.kth_negative(u, k)
            }
            Proposal::Popularity { table, .. } => {
                for _ in 0..POPULARITY_TRIES {
                    let j = table.draw(rng);
                    if !train.contains(u, j) {
                        return j;
                    }
                }
                exact_complement_draw(table, train, u, rng)
            }
        }
    }
}

impl Proposal {
    /// Fills `out` with negatives of the users in `users` (one each).
    pub fn draw_many(&self, train: &Interactions, users: &[usize], rng: &mut Rng, out: &mut [u32]) {
        for (o, &u) in out.iter_mut().zip(users) {
            *o = self.draw(train, u, rng);
        }
    }
}

/// Draws from `weights` restricted to the complement of row `u`, by a scan.
fn exact_complement_draw(table: &AliasTable, train: &Interactions, u: usize, rng: &mut Rng) -> u32 {
    let w = table.weights();
    let row = train.row(u);
    let pos_mass: f64 = row.iter().map(|&i| w[i as usize]).sum();
    let mass = (table.total - pos_mass).max(0.0);
    let mut target = rng.uniform() * mass;
    let mut p = 0usize;
    let mut last = u32::MAX;
    for (i, &wi) in w.iter().enumerate() {
        if p < row.len() && row[p] as usize == i {
            p += 1;
            continue;
        }
        last = i as u32;
        if target < wi {
            return i as u32;
        }
        target -= wi;
    }
    if last == u32::MAX {
        // Unreachable for an unsaturated user; fall back to uniform.
        train.kth_negative(u, 0)
    } else {
        last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alias_table_matches_weights() {
        let t = AliasTable::new(vec![1.0, 2.0, 3.0, 4.0]).unwrap();
        let mut rng = Rng::new(1);
        let mut c = [0usize; 4];
        let n = 200_000;
        for _ in 0..n {
            c[t.draw(&mut rng) as usize] += 1;
        }
        for (i, &ci) in c.iter().enumerate() {
            let expect = (i + 1) as f64 / 10.0;
            assert!((ci as f64 / n as f64 - expect).abs() < 0.01, "{c:?}");
        }
    }

    #[test]
    fn popularity_never_returns_a_positive_even_for_heavy_users() {
        // User 0 holds the most popular items: forces the exact scan.
        let mut users = vec![];
        let mut items = vec![];
        for u in 0..50 {
            for i in 0..5 {
                users.push(u);
                items.push(i);
            }
        }
        users.push(0);
        items.push(9);
        let m = Interactions::from_pairs(&users, &items, None, Some(10)).unwrap();
        let p = Proposal::popularity(&m, 3.0).unwrap();
        let mut rng = Rng::new(5);
        for _ in 0..1000 {
            let j = p.draw(&m, 0, &mut rng);
            assert!(!m.contains(0, j) && j < 10);
        }
    }
}
