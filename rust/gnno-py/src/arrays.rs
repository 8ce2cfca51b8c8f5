//! Array conversion helpers. The Python layer hands over C-contiguous arrays
//! of the exact dtype; anything else is a `ShapeError`, never a copy here.

use numpy::{
    PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods,
};
use pyo3::prelude::*;

use crate::errors::ShapeError;

pub fn slice1<'a, T: numpy::Element>(
    a: &'a PyReadonlyArray1<'_, T>,
    name: &str,
) -> PyResult<&'a [T]> {
    a.as_slice()
        .map_err(|_| ShapeError::new_err(format!("{name} must be a C-contiguous 1-d array")))
}

/// [`slice1`] of an optional argument.
pub fn opt_slice1<'a, T: numpy::Element>(
    a: &'a Option<PyReadonlyArray1<'_, T>>,
    name: &str,
) -> PyResult<Option<&'a [T]>> {
    a.as_ref().map(|a| slice1(a, name)).transpose()
}

/// A 2-d C-contiguous array as `(flat slice, rows, cols)`.
pub fn slice2<'a, T: numpy::Element>(
    a: &'a PyReadonlyArray2<'_, T>,
    name: &str,
) -> PyResult<(&'a [T], usize, usize)> {
    let shape = a.shape();
    let (r, c) = (shape[0], shape[1]);
    let s = a
        .as_slice()
        .map_err(|_| ShapeError::new_err(format!("{name} must be a C-contiguous 2-d array")))?;
    Ok((s, r, c))
}

pub fn vec1<T: numpy::Element>(py: Python<'_>, v: Vec<T>) -> Bound<'_, PyArray1<T>> {
    PyArray1::from_vec(py, v)
}

pub fn vec2<T: numpy::Element>(
    py: Python<'_>,
    v: Vec<T>,
    rows: usize,
    cols: usize,
) -> PyResult<Bound<'_, PyArray2<T>>> {
    PyArray1::from_vec(py, v).reshape([rows, cols])
}

/// Two arrays of one type returned together.
pub type ArrayPair<'py, A> = (Bound<'py, A>, Bound<'py, A>);
