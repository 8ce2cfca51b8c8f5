//! One Python exception class per core error kind, all `ValueError`s.

use gnno_core::{Error, ErrorKind};
use pyo3::create_exception;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

create_exception!(
    gnno,
    GnnoError,
    PyValueError,
    "Base class of every error gnno raises for bad input."
);
create_exception!(
    gnno,
    IdOutOfRangeError,
    GnnoError,
    "A user or item id is negative or not below its bound."
);
create_exception!(
    gnno,
    ShapeError,
    GnnoError,
    "Lengths, shapes or dtypes that must agree do not."
);
create_exception!(
    gnno,
    NonFiniteError,
    GnnoError,
    "NaN or infinity where a finite number is required."
);
create_exception!(
    gnno,
    EmptyInputError,
    GnnoError,
    "Empty input where data is required."
);
create_exception!(
    gnno,
    SaturatedUserError,
    GnnoError,
    "A user has interacted with every item, so has no negative."
);
create_exception!(
    gnno,
    DataFormatError,
    GnnoError,
    "A data file is malformed, truncated or unreadable."
);

/// Converts a core error into the matching Python exception.
pub fn to_py(err: Error) -> PyErr {
    let msg = err.message;
    match err.kind {
        ErrorKind::IdOutOfRange => IdOutOfRangeError::new_err(msg),
        ErrorKind::Shape => ShapeError::new_err(msg),
        ErrorKind::NonFinite => NonFiniteError::new_err(msg),
        ErrorKind::Empty => EmptyInputError::new_err(msg),
        ErrorKind::SaturatedUser => SaturatedUserError::new_err(msg),
        ErrorKind::Value => GnnoError::new_err(msg),
    }
}

/// Runs a core call with the GIL released, then checks for Ctrl-C (a
/// `KeyboardInterrupt` raised while the call ran surfaces here) and
/// converts the core's error. Every core call of the binding goes through
/// it (or through [`Shared::with`]).
pub fn released<T, F>(py: Python<'_>, f: F) -> PyResult<T>
where
    F: Send + FnOnce() -> gnno_core::Result<T>,
    T: Send,
{
    let out = py.detach(f);
    py.check_signals()?;
    out.map_err(to_py)
}

/// State shared between Python threads: a frozen class holds its core
/// state in one of these, so concurrent calls run one at a time instead of
/// failing with "Already borrowed". The lock is taken only after the GIL
/// is released, so a thread waiting for it never blocks one that needs the
/// GIL to finish.
pub struct Shared<T>(std::sync::Mutex<T>);

impl<T: Send> Shared<T> {
    pub fn new(value: T) -> Self {
        Self(std::sync::Mutex::new(value))
    }

    /// `f` on the state, with the GIL released (see [`released`]).
    pub fn with<R, F>(&self, py: Python<'_>, f: F) -> PyResult<R>
    where
        F: Send + FnOnce(&mut T) -> gnno_core::Result<R>,
        R: Send,
    {
        released(py, || {
            // A panic cannot happen inside the core; if one ever did, the
            // state it left is still the best there is.
            let mut guard = self.0.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut guard)
        })
    }

    /// A quick read of the state (a getter), also with the GIL released.
    pub fn read<R, F>(&self, py: Python<'_>, f: F) -> R
    where
        F: Send + FnOnce(&T) -> R,
        R: Send,
    {
        py.detach(|| {
            let guard = self.0.lock().unwrap_or_else(|p| p.into_inner());
            f(&guard)
        })
    }
}

/// A count argument from Python (`n_users`, `n_items`): any integer is
/// accepted by the signature, a negative one is a gnno error naming it.
pub fn count(value: i64, name: &str) -> PyResult<usize> {
    usize::try_from(value)
        .map_err(|_| GnnoError::new_err(format!("{name} must be >= 0, got {value}")))
}

/// `?`-friendly conversion for core results.
pub trait IntoPyResult<T> {
    fn py(self) -> PyResult<T>;
}

impl<T> IntoPyResult<T> for gnno_core::Result<T> {
    fn py(self) -> PyResult<T> {
        self.map_err(to_py)
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("GnnoError", py.get_type::<GnnoError>())?;
    m.add("IdOutOfRangeError", py.get_type::<IdOutOfRangeError>())?;
    m.add("ShapeError", py.get_type::<ShapeError>())?;
    m.add("NonFiniteError", py.get_type::<NonFiniteError>())?;
    m.add("EmptyInputError", py.get_type::<EmptyInputError>())?;
    m.add("SaturatedUserError", py.get_type::<SaturatedUserError>())?;
    m.add("DataFormatError", py.get_type::<DataFormatError>())?;
    Ok(())
}
