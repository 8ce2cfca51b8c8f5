//! The user–item interaction matrix in CSR form.
//!
//! Rows are users, sorted and duplicate-free item ids are the columns. Every
//! sampler reads it to know a user's positives and to draw negatives from
//! the complement of a row without rejection loops.

use rayon::prelude::*;

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq)]
pub struct Interactions {
    n_users: usize,
    n_items: usize,
    indptr: Vec<i64>,
    indices: Vec<u32>,
    /// `indices[p] − (p − indptr[u])` per row: the number of negatives
    /// below each positive; non-decreasing within a row.
    gaps: Vec<u32>,
    item_counts: Vec<i64>,
}

/// Largest id count we accept: item ids are stored as `u32`.
pub const MAX_ITEMS: usize = u32::MAX as usize;

impl Interactions {
    /// Builds the matrix from `(users[k], items[k])` pairs. Duplicates are
    /// dropped and rows sorted. `n_users` / `n_items` default to the largest
    /// id + 1; when given, every id must be below them.
    pub fn from_pairs(
        users: &[i64],
        items: &[i64],
        n_users: Option<usize>,
        n_items: Option<usize>,
    ) -> Result<Self> {
        if users.len() != items.len() {
            return Err(Error::shape(format!(
                "users and items must have the same length, got {} and {}",
                users.len(),
                items.len()
            )));
        }
        let n_users = resolve_bound("user", "users", "n_users", users, n_users)?;
        let n_items = resolve_bound("item", "items", "n_items", items, n_items)?;
        if n_items > MAX_ITEMS {
            return Err(Error::value(format!(
                "n_items={n_items} exceeds the supported maximum {MAX_ITEMS}"
            )));
        }
        // Counting sort by user, then sort and deduplicate each row.
        let mut counts = vec![0i64; n_users + 1];
        for &u in users {
            counts[u as usize + 1] += 1;
        }
        for u in 0..n_users {
            counts[u + 1] += counts[u];
        }
        let mut fill = counts.clone();
        let mut raw = vec![0u32; users.len()];
        for (&u, &i) in users.iter().zip(items) {
            let slot = &mut fill[u as usize];
            raw[*slot as usize] = i as u32;
            *slot += 1;
        }
        let row_lens: Vec<usize> = {
            let mut rows: Vec<&mut [u32]> = Vec::with_capacity(n_users);
            let mut rest: &mut [u32] = &mut raw;
            for u in 0..n_users {
                let len = (counts[u + 1] - counts[u]) as usize;
                let (head, tail) = rest.split_at_mut(len);
                rows.push(head);
                rest = tail;
            }
            crate::pool::install(|| {
                rows.into_par_iter()
                    .map(|row| {
                        row.sort_unstable();
                        let mut w = 0;
                        for r in 0..row.len() {
                            if r == 0 || row[r] != row[w - 1] {
                                row[w] = row[r];
                                w += 1;
                            }
                        }
                        w
                    })
                    .collect()
            })
        };
        let mut indptr = Vec::with_capacity(n_users + 1);
        indptr.push(0i64);
        let nnz: usize = row_lens.iter().sum();
        let mut indices = Vec::with_capacity(nnz);
        for (u, &len) in row_lens.iter().enumerate() {
            let start = counts[u] as usize;
            indices.extend_from_slice(&raw[start..start + len]);
            indptr.push(indices.len() as i64);
        }
        Ok(Self::from_sorted_parts(n_users, n_items, indptr, indices))
    }

    /// Builds from CSR arrays, validating them fully (sorted rows, ids in
    /// range, monotone `indptr`). Used when restoring saved matrices.
    pub fn from_csr(
        indptr: &[i64],
        indices: &[i64],
        n_users: usize,
        n_items: usize,
    ) -> Result<Self> {
        if indptr.len() != n_users + 1 {
            return Err(Error::shape(format!(
                "indptr must have n_users + 1 = {} entries, got {}",
                n_users + 1,
                indptr.len()
            )));
        }
        if indptr[0] != 0 || indptr[n_users] as usize != indices.len() {
            return Err(Error::value(format!(
                "indptr must start at 0 and end at len(indices)={}, got {}..{}",
                indices.len(),
                indptr[0],
                indptr[n_users]
            )));
        }
        let mut out = Vec::with_capacity(indices.len());
        for u in 0..n_users {
            let (a, b) = (indptr[u], indptr[u + 1]);
            if b < a {
                return Err(Error::value(format!(
                    "indptr must be non-decreasing, but indptr[{}]={} > indptr[{}]={}",
                    u,
                    a,
                    u + 1,
                    b
                )));
            }
            for p in a as usize..b as usize {
                let i = indices[p];
                if i < 0 || i as usize >= n_items {
                    return Err(Error::id_out_of_range(
                        "item", i, "n_items", n_items, "indices", p,
                    ));
                }
                if p > a as usize && indices[p - 1] >= i {
                    return Err(Error::value(format!(
                        "row {u} of the CSR matrix is not strictly increasing at indices[{p}]={i}"
                    )));
                }
                out.push(i as u32);
            }
        }
        Ok(Self::from_sorted_parts(
            n_users,
            n_items,
            indptr.to_vec(),
            out,
        ))
    }

    fn from_sorted_parts(
        n_users: usize,
        n_items: usize,
        indptr: Vec<i64>,
        indices: Vec<u32>,
    ) -> Self {
        let mut item_counts = vec![0i64; n_items];
        for &i in &indices {
            item_counts[i as usize] += 1;
        }
        let mut gaps = Vec::with_capacity(indices.len());
        for u in 0..n_users {
            let (a, b) = (indptr[u] as usize, indptr[u + 1] as usize);
            gaps.extend(indices[a..b].iter().enumerate().map(|(p, &i)| i - p as u32));
        }
        Self {
            n_users,
            n_items,
            indptr,
            indices,
            gaps,
            item_counts,
        }
    }

    pub fn n_users(&self) -> usize {
        self.n_users
    }
    pub fn n_items(&self) -> usize {
        self.n_items
    }
    pub fn nnz(&self) -> usize {
        self.indices.len()
    }
    pub fn indptr(&self) -> &[i64] {
        &self.indptr
    }
    pub fn indices(&self) -> &[u32] {
        &self.indices
    }
    /// How many users interacted with each item.
    pub fn item_counts(&self) -> &[i64] {
        &self.item_counts
    }

    /// The sorted positives of user `u` (`u` must be in range).
    #[inline]
    pub fn row(&self, u: usize) -> &[u32] {
        &self.indices[self.indptr[u] as usize..self.indptr[u + 1] as usize]
    }

    #[inline]
    pub fn degree(&self, u: usize) -> usize {
        (self.indptr[u + 1] - self.indptr[u]) as usize
    }

    #[inline]
    pub fn contains(&self, u: usize, item: u32) -> bool {
        self.row(u).binary_search(&item).is_ok()
    }

    /// Number of negatives of user `u`.
    #[inline]
    pub fn n_negatives(&self, u: usize) -> usize {
        self.n_items - self.degree(u)
    }

    /// The `k`-th (0-based) item *not* in row `u`, for `k < n_negatives(u)`.
    ///
    /// With the row sorted, `gap[p] = row[p] − p` counts the negatives below
    /// `row[p]` and never decreases, so the answer is `k` plus the number of
    /// positives with `gap[p] <= k`. Rows up to [`SCAN_LIMIT`] long count
    /// them with a vectorised scan (no dependent loads), longer rows binary
    /// search; no rejection loop either way.
    #[inline]
    pub fn kth_negative(&self, u: usize, k: u32) -> u32 {
        let (a, b) = (self.indptr[u] as usize, self.indptr[u + 1] as usize);
        let gaps = &self.gaps[a..b];
        let count = if gaps.len() <= SCAN_LIMIT {
            (count_le())(gaps, k)
        } else {
            // Branchless lower bound: the comparison is a coin flip for
            // random `k`, so a select beats a mispredicted branch.
            let mut lo = 0usize;
            let mut size = gaps.len();
            while size > 1 {
                let half = size / 2;
                let mid = lo + half;
                lo = std::hint::select_unpredictable(gaps[mid] <= k, mid, lo);
                size -= half;
            }
            lo + (gaps[lo] <= k) as usize
        };
        k + count as u32
    }

    /// Checks user ids against `n_users`, naming the first bad one.
    pub fn check_users(&self, users: &[i64], where_: &str) -> Result<()> {
        check_ids("user", where_, "n_users", users, self.n_users)
    }

    /// Checks item ids against `n_items`, naming the first bad one.
    pub fn check_items(&self, items: &[i64], where_: &str) -> Result<()> {
        check_ids("item", where_, "n_items", items, self.n_items)
    }

    /// Checks that every user in `users` has at least one negative.
    pub fn check_not_saturated(&self, users: &[i64]) -> Result<()> {
        for &u in users {
            if self.n_negatives(u as usize) == 0 {
                return Err(Error::saturated(u as usize, self.n_items));
            }
        }
        Ok(())
    }
}

/// Rows at most this long find their k-th negative by a linear count.
pub const SCAN_LIMIT: usize = 512;

type CountFn = fn(&[u32], u32) -> usize;

/// `#{g in gaps : g <= k}`, specialised once for the CPU's vector width.
fn count_le() -> CountFn {
    static CHOSEN: std::sync::OnceLock<CountFn> = std::sync::OnceLock::new();
    *CHOSEN.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512bw")
            {
                return count_avx512;
            }
            if std::is_x86_feature_detected!("avx2") {
                return count_avx2;
            }
        }
        count_generic
    })
}

#[inline(always)]
fn count_body(gaps: &[u32], k: u32) -> usize {
    gaps.iter().map(|&g| (g <= k) as u32).sum::<u32>() as usize
}

fn count_generic(gaps: &[u32], k: u32) -> usize {
    count_body(gaps, k)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn count_avx2_impl(gaps: &[u32], k: u32) -> usize {
    count_body(gaps, k)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn count_avx512_impl(gaps: &[u32], k: u32) -> usize {
    count_body(gaps, k)
}

#[cfg(target_arch = "x86_64")]
fn count_avx2(gaps: &[u32], k: u32) -> usize {
    // SAFETY: chosen by `count_le` only after detecting AVX2.
    unsafe { count_avx2_impl(gaps, k) }
}

#[cfg(target_arch = "x86_64")]
fn count_avx512(gaps: &[u32], k: u32) -> usize {
    // SAFETY: chosen by `count_le` only after detecting AVX-512F/BW.
    unsafe { count_avx512_impl(gaps, k) }
}

/// Validates ids in `[0, bound)`.
pub fn check_ids(
    what: &str,
    where_: &str,
    bound_name: &str,
    ids: &[i64],
    bound: usize,
) -> Result<()> {
    match ids.iter().position(|&v| v < 0 || v as u64 >= bound as u64) {
        Some(p) => Err(Error::id_out_of_range(
            what, ids[p], bound_name, bound, where_, p,
        )),
        None => Ok(()),
    }
}

fn resolve_bound(
    what: &str,
    where_: &str,
    bound_name: &str,
    ids: &[i64],
    given: Option<usize>,
) -> Result<usize> {
    if let Some(p) = ids.iter().position(|&v| v < 0) {
        return Err(Error::new(
            crate::error::ErrorKind::IdOutOfRange,
            format!("{what} id {} is negative ({where_}[{p}])", ids[p]),
        ));
    }
    match given {
        Some(bound) => {
            check_ids(what, where_, bound_name, ids, bound)?;
            Ok(bound)
        }
        None => Ok(ids.iter().max().map(|&m| m as usize + 1).unwrap_or(0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_sorted_deduplicated_rows() {
        let m = Interactions::from_pairs(&[1, 0, 1, 1, 0], &[3, 2, 0, 3, 2], None, None).unwrap();
        assert_eq!(m.n_users(), 2);
        assert_eq!(m.n_items(), 4);
        assert_eq!(m.indptr(), &[0, 1, 3]);
        assert_eq!(m.indices(), &[2, 0, 3]);
        assert_eq!(m.item_counts(), &[1, 0, 1, 1]);
        assert!(m.contains(1, 3) && !m.contains(1, 2));
    }

    #[test]
    fn rejects_out_of_range_and_negative_ids() {
        let e = Interactions::from_pairs(&[0, 5], &[0, 1], Some(3), None).unwrap_err();
        assert!(
            e.message.contains("user id 5") && e.message.contains("users[1]"),
            "{}",
            e
        );
        let e = Interactions::from_pairs(&[0, 1], &[-2, 1], None, None).unwrap_err();
        assert!(
            e.message.contains("-2") && e.message.contains("items[0]"),
            "{}",
            e
        );
        let e = Interactions::from_pairs(&[0], &[0, 1], None, None).unwrap_err();
        assert_eq!(e.kind, crate::error::ErrorKind::Shape);
    }

    #[test]
    fn kth_negative_enumerates_the_complement() {
        let m = Interactions::from_pairs(&[0, 0, 0, 0], &[0, 2, 3, 7], None, Some(10)).unwrap();
        let negs: Vec<u32> = (0..m.n_negatives(0) as u32)
            .map(|k| m.kth_negative(0, k))
            .collect();
        assert_eq!(negs, vec![1, 4, 5, 6, 8, 9]);
    }

    #[test]
    fn kth_negative_matches_brute_force_on_random_rows() {
        let mut rng = crate::rng::Rng::new(4);
        for n_items in [1usize, 2, 7, 64, 300, 3000] {
            for _ in 0..20 {
                let items: Vec<i64> = (0..n_items as i64)
                    .filter(|_| rng.uniform() < 0.4)
                    .collect();
                let users = vec![0i64; items.len()];
                let m = Interactions::from_pairs(&users, &items, Some(1), Some(n_items)).unwrap();
                let negs: Vec<u32> = (0..n_items as u32).filter(|&i| !m.contains(0, i)).collect();
                for (k, &expect) in negs.iter().enumerate() {
                    assert_eq!(m.kth_negative(0, k as u32), expect);
                }
            }
        }
    }

    #[test]
    fn from_csr_validates() {
        assert!(Interactions::from_csr(&[0, 2], &[1, 0], 1, 3).is_err());
        assert!(Interactions::from_csr(&[0, 2], &[0, 3], 1, 3).is_err());
        let m = Interactions::from_csr(&[0, 1, 1], &[2], 2, 3).unwrap();
        assert_eq!(m.degree(1), 0);
    }
}
