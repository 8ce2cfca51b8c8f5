//! Score-free negative sampling (uniform and popularity), and the pieces
//! every sampler shares: the stream position and the per-user job layout.

use crate::error::{Error, Result};
use crate::interactions::Interactions;
use crate::proposal::Proposal;
use crate::rng::{purpose, StreamKey, BLOCK};

/// A sampler's place in its random sequence: `(seed, epoch, call)`.
/// `set_epoch` restarts the call counter, like torch's `DistributedSampler`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stream {
    pub seed: u64,
    pub epoch: u64,
    pub calls: u64,
}

impl Stream {
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            epoch: 0,
            calls: 0,
        }
    }
    pub fn set_epoch(&mut self, epoch: u64) {
        self.epoch = epoch;
        self.calls = 0;
    }
    /// The key for the next call, advancing the counter.
    pub fn next_key(&mut self) -> StreamKey {
        let key = StreamKey::new(self.seed, self.epoch, self.calls);
        self.calls += 1;
        key
    }
}

/// Validates a batch of user ids for negative sampling.
pub fn check_batch(train: &Interactions, users: &[i64], where_: &str) -> Result<()> {
    train.check_users(users, where_)?;
    train.check_not_saturated(users)
}

/// Checks a per-pair positive array against its users.
pub fn check_pairs(train: &Interactions, users: &[i64], positives: &[i64]) -> Result<()> {
    if users.len() != positives.len() {
        return Err(Error::shape(format!(
            "users and positives must have the same length, got {} and {}",
            users.len(),
            positives.len()
        )));
    }
    train.check_items(positives, "positives")
}

/// `k` negatives for each entry of `users` (row-major `len(users) × k`),
/// drawn from `proposal`, never a training positive of that user.
pub fn sample_negatives(
    train: &Interactions,
    proposal: &Proposal,
    users: &[i64],
    k: usize,
    key: StreamKey,
) -> Result<Vec<i64>> {
    check_batch(train, users, "users")?;
    let what = format!("negatives (k={k} per user)");
    let mut out = crate::alloc::filled_product(&what, &[users.len(), k], 0i64)?;
    if k == 0 {
        return Ok(out);
    }
    let work = out.len();
    crate::pool::for_each_chunk_mut(&mut out, k.saturating_mul(BLOCK), work, |block, out| {
        let mut rng = key.rng(purpose::UNIFORM, block as u64);
        let users = &users[block * BLOCK..(block * BLOCK + out.len() / k)];
        for (row, &u) in out.chunks_mut(k).zip(users) {
            for slot in row {
                *slot = proposal.draw(train, u as usize, &mut rng) as i64;
            }
        }
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy() -> Interactions {
        let users: Vec<i64> = (0..300).flat_map(|u| [u, u, u]).collect();
        let items: Vec<i64> = (0..300).flat_map(|u| [u % 7, (u * 3) % 11, 12]).collect();
        Interactions::from_pairs(&users, &items, None, Some(20)).unwrap()
    }

    #[test]
    fn never_returns_a_positive_and_is_thread_count_independent() {
        let m = toy();
        // Enough draws to take the parallel path.
        let users: Vec<i64> = (0..12_000).map(|r| r % 300).collect();
        let key = StreamKey::new(3, 1, 0);
        let a = sample_negatives(&m, &Proposal::Uniform, &users, 4, key).unwrap();
        for (r, row) in a.chunks(4).enumerate() {
            for &j in row {
                assert!(!m.contains(users[r] as usize, j as u32));
            }
        }
        crate::pool::set_num_threads(1).unwrap();
        let b = sample_negatives(&m, &Proposal::Uniform, &users, 4, key).unwrap();
        crate::pool::set_num_threads(3).unwrap();
        let c = sample_negatives(&m, &Proposal::Uniform, &users, 4, key).unwrap();
        assert_eq!(a, b);
        assert_eq!(a, c);
    }

    #[test]
    fn huge_k_is_an_error_naming_it() {
        let m = toy();
        let e = sample_negatives(&m, &Proposal::Uniform, &[0], 1 << 62, StreamKey::default())
            .unwrap_err();
        assert!(e.message.contains("k=4611686018427387904"), "{e}");
        let out = sample_negatives(&m, &Proposal::Uniform, &[], 1 << 62, StreamKey::default());
        assert!(out.unwrap().is_empty());
    }

    #[test]
    fn saturated_user_is_an_error() {
        let m = Interactions::from_pairs(&[0, 0, 1], &[0, 1, 0], None, None).unwrap();
        let e =
            sample_negatives(&m, &Proposal::Uniform, &[1, 0], 1, StreamKey::default()).unwrap_err();
        assert!(e.message.contains("user 0"), "{e}");
    }
}
