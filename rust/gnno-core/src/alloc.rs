//! Allocations whose size comes from user input.
//!
//! A length is the checked product of its factors, and the buffer is
//! reserved fallibly, so a huge `k`, `slots` or id never aborts the
//! process: it becomes an [`Error`] that names the request.

use crate::error::{Error, Result};

/// The product of `factors`, or an error naming `what` when it overflows.
pub fn len(what: &str, factors: &[usize]) -> Result<usize> {
    factors
        .iter()
        .try_fold(1usize, |acc, &f| acc.checked_mul(f))
        .ok_or_else(|| {
            let shown: Vec<String> = factors.iter().map(|f| f.to_string()).collect();
            Error::value(format!(
                "{what} would need {} entries, more than this machine can address",
                shown.join(" × ")
            ))
        })
}

/// A vector of `len` copies of `value`, or an error naming `what` when the
/// memory cannot be reserved.
pub fn filled<T: Clone>(what: &str, len: usize, value: T) -> Result<Vec<T>> {
    let mut v: Vec<T> = Vec::new();
    if v.try_reserve_exact(len).is_err() {
        let bytes = (len as u128) * (std::mem::size_of::<T>() as u128);
        return Err(Error::value(format!(
            "{what} needs {len} entries ({bytes} bytes), which cannot be allocated"
        )));
    }
    v.resize(len, value);
    Ok(v)
}

/// [`filled`] with the length given as factors (see [`len`]).
pub fn filled_product<T: Clone>(what: &str, factors: &[usize], value: T) -> Result<Vec<T>> {
    filled(what, len(what, factors)?, value)
}

/// An empty vector with room for `cap` entries, reserved fallibly.
pub fn with_capacity<T>(what: &str, cap: usize) -> Result<Vec<T>> {
    let mut v: Vec<T> = Vec::new();
    v.try_reserve_exact(cap).map_err(|_| {
        Error::value(format!(
            "{what} needs room for {cap} entries, which cannot be allocated"
        ))
    })?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overflow_and_huge_requests_are_errors() {
        let e = len("negatives for k=4611686018427387904", &[4, 1 << 62]).unwrap_err();
        assert!(e.message.contains("4611686018427387904"), "{e}");
        let e = filled::<u64>("memory slots=4611686018427387904", 1 << 62, 0).unwrap_err();
        assert!(e.message.contains("slots=4611686018427387904"), "{e}");
        assert_eq!(filled_product("x", &[2, 3], 7u8).unwrap(), vec![7; 6]);
    }
}
