//! `Interactions`: the CSR matrix, held behind an `Arc` so samplers can
//! share it without copying.

use std::sync::Arc;

use gnno_core::Interactions;
use numpy::{PyArray1, PyReadonlyArray1};
use pyo3::prelude::*;

use crate::arrays::{slice1, vec1};
use crate::errors::{count, released, ShapeError};

#[pyclass(module = "gnno._gnno", name = "Interactions", frozen)]
pub struct PyInteractions {
    pub inner: Arc<Interactions>,
}

#[pymethods]
impl PyInteractions {
    #[staticmethod]
    #[pyo3(signature = (users, items, n_users=None, n_items=None))]
    fn from_pairs(
        py: Python<'_>,
        users: PyReadonlyArray1<'_, i64>,
        items: PyReadonlyArray1<'_, i64>,
        n_users: Option<i64>,
        n_items: Option<i64>,
    ) -> PyResult<Self> {
        let u = slice1(&users, "users")?;
        let i = slice1(&items, "items")?;
        let n_users = n_users.map(|n| count(n, "n_users")).transpose()?;
        let n_items = n_items.map(|n| count(n, "n_items")).transpose()?;
        let inner = released(py, || Interactions::from_pairs(u, i, n_users, n_items))?;
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    #[staticmethod]
    fn from_csr(
        py: Python<'_>,
        indptr: PyReadonlyArray1<'_, i64>,
        indices: PyReadonlyArray1<'_, i64>,
        n_users: i64,
        n_items: i64,
    ) -> PyResult<Self> {
        let p = slice1(&indptr, "indptr")?;
        let i = slice1(&indices, "indices")?;
        let (n_users, n_items) = (count(n_users, "n_users")?, count(n_items, "n_items")?);
        let inner = released(py, || Interactions::from_csr(p, i, n_users, n_items))?;
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    #[getter]
    fn n_users(&self) -> usize {
        self.inner.n_users()
    }
    #[getter]
    fn n_items(&self) -> usize {
        self.inner.n_items()
    }
    #[getter]
    fn nnz(&self) -> usize {
        self.inner.nnz()
    }

    fn indptr<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<i64>> {
        vec1(py, self.inner.indptr().to_vec())
    }

    fn indices<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<i32>> {
        vec1(py, self.inner.indices().iter().map(|&i| i as i32).collect())
    }

    fn item_counts<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<i64>> {
        vec1(py, self.inner.item_counts().to_vec())
    }

    /// `out[k]` is whether `items[k]` is a training positive of `users[k]`.
    fn contains<'py>(
        &self,
        py: Python<'py>,
        users: PyReadonlyArray1<'_, i64>,
        items: PyReadonlyArray1<'_, i64>,
    ) -> PyResult<Bound<'py, PyArray1<bool>>> {
        let u = slice1(&users, "users")?;
        let i = slice1(&items, "items")?;
        if u.len() != i.len() {
            return Err(ShapeError::new_err(format!(
                "users and items must have the same length, got {} and {}",
                u.len(),
                i.len()
            )));
        }
        let m = &self.inner;
        let out = released(py, || {
            m.check_users(u, "users")?;
            m.check_items(i, "items")?;
            Ok(u.iter()
                .zip(i)
                .map(|(&u, &i)| m.contains(u as usize, i as u32))
                .collect::<Vec<bool>>())
        })?;
        Ok(vec1(py, out))
    }
}
