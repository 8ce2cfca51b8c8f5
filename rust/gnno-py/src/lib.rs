//! `gnno._gnno`: the thin PyO3 layer between `gnno-core` and the Python
//! package. It converts arrays, releases the GIL around core calls and maps
//! core errors to `gnno.exceptions`; it holds no algorithm of its own.

use pyo3::prelude::*;

mod arrays;
mod errors;
mod interactions;
mod kernels;
mod samplers;

/// Sets the size of gnno's thread pool: an integer in
/// `1..=gnno_core::pool::MAX_THREADS`; anything else is a `GnnoError`.
#[pyfunction]
fn set_num_threads(n: &Bound<'_, PyAny>) -> PyResult<()> {
    use errors::IntoPyResult;
    let bad = || {
        errors::GnnoError::new_err(format!(
            "num_threads must be an integer between 1 and {}, got {}",
            gnno_core::pool::MAX_THREADS,
            n.repr().map(|r| r.to_string()).unwrap_or_default()
        ))
    };
    if n.is_instance_of::<pyo3::types::PyBool>() || !n.is_instance_of::<pyo3::types::PyInt>() {
        return Err(bad());
    }
    let value: i128 = n.extract().map_err(|_| bad())?;
    let checked = gnno_core::pool::check_num_threads(value, "num_threads").py()?;
    gnno_core::pool::set_num_threads(checked).py()
}

/// Warns (a `RuntimeWarning`, once, on import) about settings read from
/// the environment that could not be honoured.
fn warn_about_environment(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let mut messages = Vec::new();
    if let Err(e) = gnno_core::pool::env_num_threads() {
        messages.push(format!(
            "{}; gnno uses {} threads instead",
            e.message,
            gnno_core::pool::num_threads()
        ));
    }
    if let Some(w) = gnno_core::simd::selection_warning() {
        messages.push(w.to_string());
    }
    let category = py.get_type::<pyo3::exceptions::PyRuntimeWarning>();
    for msg in messages {
        let c = std::ffi::CString::new(msg).unwrap_or_default();
        PyErr::warn(py, &category, &c, 1)?;
    }
    Ok(())
}

#[pyfunction]
fn get_num_threads() -> usize {
    gnno_core::pool::num_threads()
}

#[pymodule]
fn _gnno(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    errors::register(m)?;
    m.add_class::<interactions::PyInteractions>()?;
    m.add_class::<samplers::PyProposalSampler>()?;
    m.add_class::<samplers::PyDynamicSampler>()?;
    kernels::register(m)?;
    m.add_function(wrap_pyfunction!(set_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(get_num_threads, m)?)?;
    warn_about_environment(m)?;
    Ok(())
}
