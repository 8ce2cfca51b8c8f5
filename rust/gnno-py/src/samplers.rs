//! Sampler classes. Each holds its core state and a `Stream`; the Python
//! layer owns the user-facing API (devices, torch tensors, state dicts).

use gnno_core::proposal::Proposal;
use gnno_core::sampling::{sample_negatives, Stream};
use numpy::{PyArray2, PyReadonlyArray1};
use pyo3::prelude::*;
use std::sync::Arc;

use crate::arrays::{slice1, vec2};
use crate::errors::IntoPyResult;
use crate::interactions::PyInteractions;

/// The stream position every sampler exposes to `state_dict`.
macro_rules! stream_accessors {
    ($ty:ty) => {
        #[pymethods]
        impl $ty {
            #[getter]
            fn seed(&self) -> u64 {
                self.stream.seed
            }
            #[getter]
            fn epoch(&self) -> u64 {
                self.stream.epoch
            }
            #[getter]
            fn calls(&self) -> u64 {
                self.stream.calls
            }
            fn set_epoch(&mut self, epoch: u64) {
                self.stream.set_epoch(epoch);
            }
            fn set_stream(&mut self, seed: u64, epoch: u64, calls: u64) {
                self.stream = Stream { seed, epoch, calls };
            }
        }
    };
}

/// Uniform or popularity negatives: no scores needed.
#[pyclass(module = "gnno._gnno", name = "ProposalSampler")]
pub struct PyProposalSampler {
    train: Arc<gnno_core::Interactions>,
    proposal: Proposal,
    stream: Stream,
}

#[pymethods]
impl PyProposalSampler {
    #[new]
    #[pyo3(signature = (train, seed, beta=None))]
    fn new(train: &PyInteractions, seed: u64, beta: Option<f64>) -> PyResult<Self> {
        let proposal = match beta {
            None => Proposal::Uniform,
            Some(b) => Proposal::popularity(&train.inner, b).py()?,
        };
        Ok(Self {
            train: train.inner.clone(),
            proposal,
            stream: Stream::new(seed),
        })
    }

    fn sample<'py>(
        &mut self,
        py: Python<'py>,
        users: PyReadonlyArray1<'_, i64>,
        k: usize,
    ) -> PyResult<Bound<'py, PyArray2<i64>>> {
        let u = slice1(&users, "users")?;
        let key = self.stream.next_key();
        let (train, proposal) = (&self.train, &self.proposal);
        let out = py.detach(|| sample_negatives(train, proposal, u, k, key)).py()?;
        vec2(py, out, u.len(), k)
    }
}

stream_accessors!(PyProposalSampler);
