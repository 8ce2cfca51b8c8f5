//! `gnno.kernels`: the core's numeric kernels on numpy arrays.

use gnno_core::kernels::{self, Embeddings};
use gnno_core::rng::StreamKey;
use numpy::{PyArray1, PyArray2, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::prelude::*;

use crate::arrays::{slice1, slice2, vec1, vec2, ArrayPair};
use crate::errors::released;

#[pyfunction]
#[pyo3(signature = (indptr, pos_scores, cand_scores, max_positives=None, seed=0))]
fn sigmoid_expectation<'py>(
    py: Python<'py>,
    indptr: PyReadonlyArray1<'_, i64>,
    pos_scores: PyReadonlyArray1<'_, f32>,
    cand_scores: PyReadonlyArray2<'_, f32>,
    max_positives: Option<usize>,
    seed: u64,
) -> PyResult<Bound<'py, PyArray2<f32>>> {
    let ip = slice1(&indptr, "indptr")?;
    let pos = slice1(&pos_scores, "pos_scores")?;
    let (cand, rows, m) = slice2(&cand_scores, "cand_scores")?;
    let key = StreamKey::new(seed, 0, 0);
    let out = released(py, || {
        kernels::sigmoid_expectation(ip, pos, cand, m, max_positives, key)
    })?;
    vec2(py, out, rows, m)
}

#[pyfunction]
fn gain_update<'py>(
    py: Python<'py>,
    h_prev: PyReadonlyArray1<'_, f32>,
    h_now: PyReadonlyArray1<'_, f32>,
    g_prev: PyReadonlyArray1<'_, f32>,
    alpha: f32,
    eps: f32,
) -> PyResult<Bound<'py, PyArray1<f32>>> {
    let (a, b, c) = (
        slice1(&h_prev, "h_prev")?,
        slice1(&h_now, "h_now")?,
        slice1(&g_prev, "g_prev")?,
    );
    let out = released(py, || kernels::gain_update(a, b, c, alpha, eps))?;
    Ok(vec1(py, out))
}

#[pyfunction]
fn topk<'py>(
    py: Python<'py>,
    values: PyReadonlyArray2<'_, f32>,
    k: usize,
) -> PyResult<Bound<'py, PyArray2<i64>>> {
    let (v, rows, m) = slice2(&values, "values")?;
    let out = released(py, || kernels::topk(v, m, k))?;
    vec2(py, out, rows, k)
}

#[pyfunction]
#[pyo3(signature = (values, k, temperature=1.0, seed=0))]
fn gumbel_topk<'py>(
    py: Python<'py>,
    values: PyReadonlyArray2<'_, f32>,
    k: usize,
    temperature: f32,
    seed: u64,
) -> PyResult<Bound<'py, PyArray2<i64>>> {
    let (v, rows, m) = slice2(&values, "values")?;
    let key = StreamKey::new(seed, 0, 0);
    let out = released(py, || kernels::gumbel_topk(v, m, k, temperature, key))?;
    vec2(py, out, rows, k)
}

#[allow(clippy::too_many_arguments)]
#[pyfunction]
#[pyo3(signature = (indptr, indices, user_vectors, item_vectors, cand_items, max_positives=None, seed=0))]
fn expectation_from_vectors<'py>(
    py: Python<'py>,
    indptr: PyReadonlyArray1<'_, i64>,
    indices: PyReadonlyArray1<'_, i64>,
    user_vectors: PyReadonlyArray2<'_, f32>,
    item_vectors: PyReadonlyArray2<'_, f32>,
    cand_items: PyReadonlyArray2<'_, i64>,
    max_positives: Option<usize>,
    seed: u64,
) -> PyResult<ArrayPair<'py, PyArray2<f32>>> {
    let ip = slice1(&indptr, "indptr")?;
    let idx = slice1(&indices, "indices")?;
    let (uv, n_users, d) = slice2(&user_vectors, "user_vectors")?;
    let (iv, n_items, d2) = slice2(&item_vectors, "item_vectors")?;
    let (cand, rows, m) = slice2(&cand_items, "cand_items")?;
    if d != d2 {
        return Err(crate::errors::ShapeError::new_err(format!(
            "user_vectors and item_vectors must have the same width, got {d} and {d2}"
        )));
    }
    let key = StreamKey::new(seed, 0, 0);
    let (h, s) = released(py, || {
        if let Some(p) = idx.iter().position(|&i| i < 0 || i as usize >= n_items) {
            return Err(gnno_core::Error::id_out_of_range(
                "item", idx[p], "n_items", n_items, "indices", p,
            ));
        }
        let idx32: Vec<u32> = idx.iter().map(|&i| i as u32).collect();
        let emb = Embeddings::new(uv.to_vec(), iv.to_vec(), d, n_users, n_items)?;
        kernels::expectation_from_vectors(ip, &idx32, &emb, cand, m, max_positives, key)
    })?;
    Ok((vec2(py, h, rows, m)?, vec2(py, s, rows, m)?))
}

/// The SIMD path every kernel of this process uses: `"generic"`,
/// `"avx2"` or `"avx512"` (chosen once; `GNNO_SIMD` forces one).
#[pyfunction]
fn simd_path() -> &'static str {
    gnno_core::simd::path().name()
}

/// The SIMD paths this CPU supports, narrowest first.
#[pyfunction]
fn simd_paths() -> Vec<&'static str> {
    gnno_core::simd::supported()
        .into_iter()
        .map(|p| p.name())
        .collect()
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(simd_path, m)?)?;
    m.add_function(wrap_pyfunction!(simd_paths, m)?)?;
    m.add_function(wrap_pyfunction!(sigmoid_expectation, m)?)?;
    m.add_function(wrap_pyfunction!(gain_update, m)?)?;
    m.add_function(wrap_pyfunction!(topk, m)?)?;
    m.add_function(wrap_pyfunction!(gumbel_topk, m)?)?;
    m.add_function(wrap_pyfunction!(expectation_from_vectors, m)?)?;
    Ok(())
}
