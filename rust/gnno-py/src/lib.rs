//! `gnno._gnno`: the thin PyO3 layer between `gnno-core` and the Python
//! package. It converts arrays, releases the GIL around core calls and maps
//! core errors to `gnno.exceptions`; it holds no algorithm of its own.

use pyo3::prelude::*;

mod arrays;
mod errors;
mod interactions;
mod kernels;
mod samplers;

#[pyfunction]
fn set_num_threads(n: usize) -> PyResult<()> {
    use errors::IntoPyResult;
    gnno_core::pool::set_num_threads(n).py()
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
    Ok(())
}
