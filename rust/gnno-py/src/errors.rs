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
