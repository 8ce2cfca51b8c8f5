//! The one error type of the core. Every fallible entry point returns
//! [`Result`]; the binding layer maps each [`ErrorKind`] to one Python
//! exception class, so no input can make the core panic.

use std::fmt;

/// What went wrong, coarse enough to pick an exception class from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// An id (user or item) is negative or not below its bound.
    IdOutOfRange,
    /// Lengths or shapes that must agree do not.
    Shape,
    /// NaN or infinity where a finite number is required.
    NonFinite,
    /// Input that is empty where data is required.
    Empty,
    /// A user who has interacted with every item has no negative to draw.
    SaturatedUser,
    /// Any other value outside its domain (a parameter, a state blob).
    Value,
}

/// An error with a message that names the bad value and where it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
    pub fn value(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Value, message)
    }
    pub fn shape(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Shape, message)
    }
    pub fn empty(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Empty, message)
    }
    /// `what` id `value` out of range for `bound_name`=`bound` (at `position`).
    pub fn id_out_of_range(
        what: &str,
        value: i64,
        bound_name: &str,
        bound: usize,
        where_: &str,
        position: usize,
    ) -> Self {
        Self::new(
            ErrorKind::IdOutOfRange,
            format!(
                "{what} id {value} out of range for {bound_name}={bound} ({where_}[{position}])"
            ),
        )
    }
    pub fn non_finite(what: &str, value: f64, position: usize) -> Self {
        Self::new(
            ErrorKind::NonFinite,
            format!("{what} must be finite, found {value} at index {position}"),
        )
    }
    pub fn saturated(user: usize, n_items: usize) -> Self {
        Self::new(
            ErrorKind::SaturatedUser,
            format!(
                "user {user} has interacted with all {n_items} items, so it has no negative to sample"
            ),
        )
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// Checks that every value is finite; names the first offender.
pub fn check_finite_f32(what: &str, values: &[f32]) -> Result<()> {
    // A branch-free count first (it vectorises); the search only on failure.
    let bad: u32 = values
        .iter()
        .map(|v| ((v.to_bits() & 0x7F80_0000) == 0x7F80_0000) as u32)
        .sum();
    if bad == 0 {
        return Ok(());
    }
    let p = values.iter().position(|v| !v.is_finite()).unwrap_or(0);
    Err(Error::non_finite(what, values[p] as f64, p))
}
