//! The user–item interaction matrix in CSR form.
//!
//! Rows are users, sorted and duplicate-free item ids are the columns. Every
//! sampler reads it to know a user's positives and to draw negatives from
//! the complement of a row without rejection loops.

use rayon::prelude::*;

use crate::alloc;
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

/// The largest user or item id: ids are stored and returned as `i32`
/// (memory slots, `indices()`), so every boundary rejects larger ones.
pub const MAX_ID: i64 = i32::MAX as i64;

/// The largest `n_users` / `n_items`: every id `< MAX_ID + 1`.
pub const MAX_ITEMS: usize = MAX_ID as usize + 1;

impl Interactions {
    /// Builds the matrix from `(users[k], items[k])` pairs. Duplicates are
    /// dropped and rows sorted. `n_users` / `n_items` default to the largest
    /// id + 1; when given, every id must be below them. Ids above
    /// [`MAX_ID`] are rejected.
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
        // Counting sort by user, then sort and deduplicate each row.
        let mut counts = alloc::filled("the CSR row pointer (n_users + 1)", n_users + 1, 0i64)?;
        for &u in users {
            counts[u as usize + 1] += 1;
        }
        for u in 0..n_users {
            counts[u + 1] += counts[u];
        }
        let mut fill = alloc::filled("the CSR row pointer (n_users + 1)", n_users + 1, 0i64)?;
        fill.copy_from_slice(&counts);
        let mut raw = alloc::filled("the CSR indices", users.len(), 0u32)?;
        for (&u, &i) in users.iter().zip(items) {
            let slot = &mut fill[u as usize];
            raw[*slot as usize] = i as u32;
            *slot += 1;
        }
        drop(fill);
        let row_lens: Vec<usize> = {
            let mut rows: Vec<&mut [u32]> = alloc::with_capacity("the CSR rows", n_users)?;
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
        let mut indptr = alloc::with_capacity("the CSR row pointer (n_users + 1)", n_users + 1)?;
        indptr.push(0i64);
        let nnz: usize = row_lens.iter().sum();
        let mut indices = alloc::with_capacity("the CSR indices", nnz)?;
        for (u, &len) in row_lens.iter().enumerate() {
            let start = counts[u] as usize;
            indices.extend_from_slice(&raw[start..start + len]);
            indptr.push(indices.len() as i64);
        }
        Self::from_sorted_parts(n_users, n_items, indptr, indices)
    }

    /// Builds from CSR arrays, validating them fully (sorted rows, ids in
    /// range, monotone `indptr`) before reading through them. Used when
    /// restoring saved matrices.
    pub fn from_csr(
        indptr: &[i64],
        indices: &[i64],
        n_users: usize,
        n_items: usize,
    ) -> Result<Self> {
        check_bound("n_users", n_users)?;
        check_bound("n_items", n_items)?;
        if indptr.len() != n_users + 1 {
            return Err(Error::shape(format!(
                "indptr must have n_users + 1 = {} entries, got {}",
                n_users + 1,
                indptr.len()
            )));
        }
        if indptr[0] != 0 || indptr[n_users] as u64 != indices.len() as u64 {
            return Err(Error::value(format!(
                "indptr must start at 0 and end at len(indices)={}, got {}..{}",
                indices.len(),
                indptr[0],
                indptr[n_users]
            )));
        }
        // Monotone from 0 to len(indices): every row range is in bounds.
        if let Some(u) = (0..n_users).find(|&u| indptr[u + 1] < indptr[u]) {
            return Err(Error::value(format!(
                "indptr must be non-decreasing, but indptr[{}]={} > indptr[{}]={}",
                u,
                indptr[u],
                u + 1,
                indptr[u + 1]
            )));
        }
        let mut out = alloc::with_capacity("the CSR indices", indices.len())?;
        for u in 0..n_users {
            let (a, b) = (indptr[u] as usize, indptr[u + 1] as usize);
            for p in a..b {
                let i = indices[p];
                if i < 0 || i as u64 >= n_items as u64 {
                    return Err(Error::id_out_of_range(
                        "item", i, "n_items", n_items, "indices", p,
                    ));
                }
                if p > a && indices[p - 1] >= i {
                    return Err(Error::value(format!(
                        "row {u} of the CSR matrix is not strictly increasing at indices[{p}]={i}"
                    )));
                }
                out.push(i as u32);
            }
        }
        let mut ptr = alloc::with_capacity("the CSR row pointer (n_users + 1)", indptr.len())?;
        ptr.extend_from_slice(indptr);
        Self::from_sorted_parts(n_users, n_items, ptr, out)
    }

    fn from_sorted_parts(
        n_users: usize,
        n_items: usize,
        indptr: Vec<i64>,
        indices: Vec<u32>,
    ) -> Result<Self> {
        let mut item_counts = alloc::filled("item counts (n_items)", n_items, 0i64)?;
        for &i in &indices {
            item_counts[i as usize] += 1;
        }
        let mut gaps = alloc::with_capacity("the CSR gaps", indices.len())?;
        for u in 0..n_users {
            let (a, b) = (indptr[u] as usize, indptr[u + 1] as usize);
            gaps.extend(indices[a..b].iter().enumerate().map(|(p, &i)| i - p as u32));
        }
        Ok(Self {
            n_users,
            n_items,
            indptr,
            indices,
            gaps,
            item_counts,
        })
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
            (crate::simd::kernels().count_le)(gaps, k)
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

/// Checks a given `n_users` / `n_items` against [`MAX_ITEMS`].
fn check_bound(bound_name: &str, bound: usize) -> Result<()> {
    if bound > MAX_ITEMS {
        return Err(Error::value(format!(
            "{bound_name}={bound} exceeds the supported maximum {MAX_ITEMS} (ids are 32-bit: at most {MAX_ID})"
        )));
    }
    Ok(())
}

fn resolve_bound(
    what: &str,
    where_: &str,
    bound_name: &str,
    ids: &[i64],
    given: Option<usize>,
) -> Result<usize> {
    if let Some(p) = ids.iter().position(|&v| !(0..=MAX_ID).contains(&v)) {
        let v = ids[p];
        let why = if v < 0 {
            "is negative".to_string()
        } else {
            format!("exceeds the largest supported id {MAX_ID}")
        };
        return Err(Error::new(
            crate::error::ErrorKind::IdOutOfRange,
            format!("{what} id {v} {why} ({where_}[{p}])"),
        ));
    }
    match given {
        Some(bound) => {
            check_bound(bound_name, bound)?;
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

    #[test]
    fn hostile_shapes_and_ids_are_errors_not_panics() {
        // indptr runs past indices inside the matrix.
        let e = Interactions::from_csr(&[0, 5, 3], &[0, 1, 2], 2, 10).unwrap_err();
        assert!(e.message.contains("non-decreasing"), "{e}");
        assert!(Interactions::from_csr(&[0, -1, 3], &[0, 1, 2], 2, 10).is_err());
        assert!(Interactions::from_csr(&[0, 1], &[0], 1, usize::MAX).is_err());
        assert!(Interactions::from_csr(&[0], &[], usize::MAX, 1).is_err());
        let e = Interactions::from_pairs(&[i64::MAX], &[0], None, None).unwrap_err();
        assert_eq!(e.kind, crate::error::ErrorKind::IdOutOfRange);
        assert!(e.message.contains(&i64::MAX.to_string()), "{e}");
        let e = Interactions::from_pairs(&[0], &[4_000_000_000], None, None).unwrap_err();
        assert!(
            e.message.contains("4000000000") && e.message.contains("items[0]"),
            "{e}"
        );
        let e = Interactions::from_pairs(&[0], &[0], None, Some(MAX_ITEMS + 1)).unwrap_err();
        assert!(e.message.contains("n_items"), "{e}");
    }

    mod prop {
        use super::super::*;
        use proptest::prelude::*;

        fn brute_force(users: &[i64], items: &[i64], n_users: usize) -> Vec<Vec<u32>> {
            let mut rows = vec![Vec::new(); n_users];
            for (&u, &i) in users.iter().zip(items) {
                rows[u as usize].push(i as u32);
            }
            for r in &mut rows {
                r.sort_unstable();
                r.dedup();
            }
            rows
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(64))]

            #[test]
            fn from_pairs_never_panics_and_builds_sorted_unique_rows(
                pairs in proptest::collection::vec((-3i64..40, -3i64..60), 0..80),
                n_users in proptest::option::of(0usize..50),
                n_items in proptest::option::of(0usize..70),
                huge in proptest::option::of(prop_oneof![
                    Just(i64::MAX), Just(4_000_000_000i64), Just(MAX_ID + 1), Just(i64::MIN)
                ]),
            ) {
                let (mut users, mut items): (Vec<i64>, Vec<i64>) = pairs.into_iter().unzip();
                if let Some(h) = huge {
                    users.push(0);
                    items.push(h);
                }
                match Interactions::from_pairs(&users, &items, n_users, n_items) {
                    Ok(m) => {
                        let nu = n_users.unwrap_or(users.iter().max().map_or(0, |&x| x as usize + 1));
                        prop_assert!(users.iter().all(|&u| u >= 0 && (u as usize) < nu));
                        prop_assert!(items.iter().all(|&i| i >= 0 && (i as usize) < m.n_items()));
                        let want = brute_force(&users, &items, nu);
                        prop_assert_eq!(m.n_users(), nu);
                        for (u, row) in want.iter().enumerate() {
                            prop_assert_eq!(m.row(u), &row[..]);
                        }
                        let again = Interactions::from_csr(
                            m.indptr(),
                            &m.indices().iter().map(|&i| i as i64).collect::<Vec<_>>(),
                            m.n_users(),
                            m.n_items(),
                        ).unwrap();
                        prop_assert_eq!(again, m);
                    }
                    Err(_) => {
                        let bad_id = users.iter().chain(&items).any(|&v| !(0..=MAX_ID).contains(&v));
                        let bad_user = n_users.is_some_and(|n| users.iter().any(|&u| u as u64 >= n as u64));
                        let bad_item = n_items.is_some_and(|n| items.iter().any(|&i| i as u64 >= n as u64));
                        prop_assert!(bad_id || bad_user || bad_item);
                    }
                }
            }

            #[test]
            fn from_csr_never_panics(
                indptr in proptest::collection::vec(-2i64..12, 0..8),
                indices in proptest::collection::vec(-2i64..12, 0..12),
                n_users in 0usize..8,
                n_items in 0usize..12,
            ) {
                if let Ok(m) = Interactions::from_csr(&indptr, &indices, n_users, n_items) {
                    for u in 0..m.n_users() {
                        prop_assert!(m.row(u).windows(2).all(|w| w[0] < w[1]));
                        prop_assert!(m.row(u).iter().all(|&i| (i as usize) < n_items));
                    }
                }
            }
        }
    }
}
