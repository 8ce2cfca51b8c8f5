//! Sampler classes. Each holds its core state and a `Stream`; the Python
//! layer owns the user-facing API (devices, torch tensors, state dicts).

use gnno_core::dynamic::{Criterion, DrawConfig, DynamicSampler, Proposed, RefreshConfig};
use gnno_core::kernels::Embeddings;
use gnno_core::memory::Retain;
use gnno_core::proposal::Proposal;
use gnno_core::sampling::{sample_negatives, Stream};
use numpy::{PyArray1, PyArray2, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::prelude::*;
use std::sync::Arc;

use crate::arrays::{slice1, slice2, vec1, vec2, ArrayPair};
use crate::errors::{GnnoError, IntoPyResult, ShapeError};
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
        let out = py
            .detach(|| sample_negatives(train, proposal, u, k, key))
            .py()?;
        vec2(py, out, u.len(), k)
    }
}

stream_accessors!(PyProposalSampler);

/// DNS, SRNS and the gain sampler: one engine, configured by name.
#[pyclass(module = "gnno._gnno", name = "DynamicSampler")]
pub struct PyDynamicSampler {
    inner: DynamicSampler,
}

fn parse_retain(name: &str, temperature: f32) -> PyResult<Retain> {
    Ok(match name {
        "top" => Retain::TopH,
        "softmax" => Retain::SoftmaxH { temperature },
        "softmax_score" => Retain::SoftmaxScore { temperature },
        "random" => Retain::Random,
        other => {
            return Err(GnnoError::new_err(format!(
                "retain must be 'top', 'softmax', 'softmax_score' or 'random', got {other:?}"
            )))
        }
    })
}

fn parse_criterion(name: &str, beta: f32, srns_alpha: f32, warmup: f32) -> PyResult<Criterion> {
    Ok(match name {
        "score" => Criterion::Score,
        "hardness" => Criterion::Hardness,
        "gain" => Criterion::Gain { beta },
        "gain_additive" => Criterion::GainAdditive { beta },
        "gain_only" => Criterion::GainOnly,
        "srns" => Criterion::Srns {
            alpha: srns_alpha,
            warmup,
        },
        other => {
            return Err(GnnoError::new_err(format!(
            "criterion must be 'score', 'hardness', 'gain', 'gain_additive', 'gain_only' or 'srns', got {other:?}"
        )))
        }
    })
}

type StateTuple<'py> = (
    Bound<'py, PyArray1<i32>>,
    Bound<'py, PyArray1<f32>>,
    Bound<'py, PyArray1<f32>>,
    Bound<'py, PyArray1<u32>>,
    Bound<'py, PyArray1<f32>>,
    Bound<'py, PyArray1<f32>>,
    usize,
    u64,
);

#[pymethods]
impl PyDynamicSampler {
    #[new]
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (
        train, seed, *, popularity_beta=None, slots=0, fresh=0, history=0, retain="top",
        retain_temperature=1.0, alpha=0.2, eps=1e-6, g0=0.5, max_positives=None,
        memory_candidates=0, fresh_candidates=1, criterion="score", beta=0.0,
        srns_alpha=0.0, warmup=0.0, temperature=0.0, gain_positives=0, memory_step=false
    ))]
    fn new(
        train: &PyInteractions,
        seed: u64,
        popularity_beta: Option<f64>,
        slots: usize,
        fresh: usize,
        history: usize,
        retain: &str,
        retain_temperature: f32,
        alpha: f32,
        eps: f32,
        g0: f32,
        max_positives: Option<usize>,
        memory_candidates: usize,
        fresh_candidates: usize,
        criterion: &str,
        beta: f32,
        srns_alpha: f32,
        warmup: f32,
        temperature: f32,
        gain_positives: usize,
        memory_step: bool,
    ) -> PyResult<Self> {
        let proposal = match popularity_beta {
            None => Proposal::Uniform,
            Some(b) => Proposal::popularity(&train.inner, b).py()?,
        };
        let refresh = RefreshConfig {
            slots,
            fresh,
            history,
            retain: parse_retain(retain, retain_temperature)?,
            alpha,
            eps,
            g0,
            max_positives,
        };
        let draw = DrawConfig {
            memory_candidates,
            fresh_candidates,
            criterion: parse_criterion(criterion, beta, srns_alpha, warmup)?,
            temperature,
            gain_positives,
            memory_step,
        };
        let inner = DynamicSampler::new(train.inner.clone(), proposal, refresh, draw, seed).py()?;
        Ok(Self { inner })
    }

    #[getter]
    fn width(&self) -> usize {
        self.inner.draw_cfg.width()
    }

    #[getter]
    fn refresh_width(&self) -> usize {
        self.inner.refresh_width()
    }

    #[getter]
    fn has_embeddings(&self) -> bool {
        self.inner.emb.is_some()
    }

    #[getter]
    fn refreshes(&self) -> u64 {
        self.inner.refreshes
    }

    fn set_embeddings(
        &mut self,
        py: Python<'_>,
        user_vectors: PyReadonlyArray2<'_, f32>,
        item_vectors: PyReadonlyArray2<'_, f32>,
    ) -> PyResult<()> {
        let (uv, n_users, d) = slice2(&user_vectors, "user_vectors")?;
        let (iv, n_items, d2) = slice2(&item_vectors, "item_vectors")?;
        if d != d2 {
            return Err(ShapeError::new_err(format!(
                "user_vectors and item_vectors must have the same width, got {d} and {d2}"
            )));
        }
        let inner = &mut self.inner;
        py.detach(|| {
            let emb = Embeddings::new(uv.to_vec(), iv.to_vec(), d, n_users, n_items)?;
            inner.set_embeddings(emb)
        })
        .py()
    }

    fn refresh_from_vectors(&mut self, py: Python<'_>) -> PyResult<()> {
        let inner = &mut self.inner;
        py.detach(|| inner.refresh_from_vectors()).py()
    }

    fn refresh_candidates<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<i64>>> {
        let inner = &mut self.inner;
        let out = py.detach(|| inner.refresh_candidates()).py()?;
        let (n, w) = (self.inner.train.n_users(), self.inner.refresh_width());
        vec2(py, out, n, w)
    }

    fn refresh_apply(
        &mut self,
        py: Python<'_>,
        cands: PyReadonlyArray1<'_, i64>,
        cand_scores: PyReadonlyArray1<'_, f32>,
        pos_scores: PyReadonlyArray1<'_, f32>,
    ) -> PyResult<()> {
        let (c, s, p) = (
            slice1(&cands, "cands")?,
            slice1(&cand_scores, "cand_scores")?,
            slice1(&pos_scores, "pos_scores")?,
        );
        let inner = &mut self.inner;
        py.detach(|| inner.refresh_apply(c, s, p)).py()
    }

    #[pyo3(signature = (users, positives, k))]
    fn propose<'py>(
        &mut self,
        py: Python<'py>,
        users: PyReadonlyArray1<'_, i64>,
        positives: Option<PyReadonlyArray1<'_, i64>>,
        k: usize,
    ) -> PyResult<ArrayPair<'py, PyArray1<i64>>> {
        let u = slice1(&users, "users")?;
        let p = match &positives {
            Some(p) => Some(slice1(p, "positives")?),
            None => None,
        };
        let inner = &mut self.inner;
        let out = py.detach(|| inner.propose(u, p, k)).py()?;
        Ok((vec1(py, out.items), vec1(py, out.anchors)))
    }

    #[allow(clippy::too_many_arguments)]
    fn select<'py>(
        &mut self,
        py: Python<'py>,
        users: PyReadonlyArray1<'_, i64>,
        items: PyReadonlyArray1<'_, i64>,
        anchors: PyReadonlyArray1<'_, i64>,
        k: usize,
        cand_scores: PyReadonlyArray1<'_, f32>,
        anchor_scores: PyReadonlyArray1<'_, f32>,
    ) -> PyResult<Bound<'py, PyArray2<i64>>> {
        let u = slice1(&users, "users")?;
        let proposed = Proposed {
            items: slice1(&items, "items")?.to_vec(),
            anchors: slice1(&anchors, "anchors")?.to_vec(),
        };
        let (s, a) = (
            slice1(&cand_scores, "cand_scores")?,
            slice1(&anchor_scores, "anchor_scores")?,
        );
        let inner = &mut self.inner;
        let out = py.detach(|| inner.select(u, &proposed, k, s, a)).py()?;
        vec2(py, out, u.len(), k)
    }

    #[pyo3(signature = (users, positives, k))]
    fn draw_from_vectors<'py>(
        &mut self,
        py: Python<'py>,
        users: PyReadonlyArray1<'_, i64>,
        positives: Option<PyReadonlyArray1<'_, i64>>,
        k: usize,
    ) -> PyResult<Bound<'py, PyArray2<i64>>> {
        let u = slice1(&users, "users")?;
        let p = match &positives {
            Some(p) => Some(slice1(p, "positives")?),
            None => None,
        };
        let inner = &mut self.inner;
        let out = py.detach(|| inner.draw_from_vectors(u, p, k)).py()?;
        vec2(py, out, u.len(), k)
    }

    /// Memory state: `(items, h, g, obs, hist, pos_hist, pos_filled, refreshes)`.
    fn get_state<'py>(&self, py: Python<'py>) -> StateTuple<'py> {
        let m = &self.inner.memory;
        (
            vec1(py, m.items.clone()),
            vec1(py, m.h.clone()),
            vec1(py, m.g.clone()),
            vec1(py, m.obs.clone()),
            vec1(py, m.hist.clone()),
            vec1(py, m.pos_hist.clone()),
            m.pos_filled,
            self.inner.refreshes,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn set_state(
        &mut self,
        items: PyReadonlyArray1<'_, i32>,
        h: PyReadonlyArray1<'_, f32>,
        g: PyReadonlyArray1<'_, f32>,
        obs: PyReadonlyArray1<'_, u32>,
        hist: PyReadonlyArray1<'_, f32>,
        pos_hist: PyReadonlyArray1<'_, f32>,
        pos_filled: usize,
        refreshes: u64,
    ) -> PyResult<()> {
        let m = &self.inner.memory;
        let n_items = self.inner.train.n_items() as i32;
        let checks: [(&str, usize, usize); 6] = [
            ("items", items.len(), m.items.len()),
            ("h", h.len(), m.h.len()),
            ("g", g.len(), m.g.len()),
            ("obs", obs.len(), m.obs.len()),
            ("hist", hist.len(), m.hist.len()),
            ("pos_hist", pos_hist.len(), m.pos_hist.len()),
        ];
        for (name, got, want) in checks {
            if got != want {
                return Err(ShapeError::new_err(format!(
                    "state {name} has {got} entries, this sampler needs {want}"
                )));
            }
        }
        let it = slice1(&items, "items")?;
        if let Some(p) = it.iter().position(|&i| i < -1 || i >= n_items) {
            return Err(crate::errors::IdOutOfRangeError::new_err(format!(
                "state items[{p}]={} out of range for n_items={n_items}",
                it[p]
            )));
        }
        if pos_filled > m.history {
            return Err(GnnoError::new_err(format!(
                "state pos_filled={pos_filled} exceeds history={}",
                m.history
            )));
        }
        let mm = &mut self.inner.memory;
        mm.items = it.to_vec();
        mm.h = slice1(&h, "h")?.to_vec();
        mm.g = slice1(&g, "g")?.to_vec();
        mm.obs = slice1(&obs, "obs")?.to_vec();
        mm.hist = slice1(&hist, "hist")?.to_vec();
        mm.pos_hist = slice1(&pos_hist, "pos_hist")?.to_vec();
        mm.pos_filled = pos_filled;
        self.inner.refreshes = refreshes;
        Ok(())
    }

    /// The model-vector snapshots: `(previous, current, count)`, each
    /// snapshot `None` or `(user_vectors, item_vectors)`.
    #[allow(clippy::type_complexity)]
    fn get_embeddings<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<(
        Option<ArrayPair<'py, PyArray2<f32>>>,
        Option<ArrayPair<'py, PyArray2<f32>>>,
        u64,
    )> {
        let export = |e: &Option<Embeddings>| -> PyResult<Option<ArrayPair<'py, PyArray2<f32>>>> {
            match e {
                None => Ok(None),
                Some(e) => {
                    let (nu, ni) = (e.users.len() / e.dim, e.items.len() / e.dim);
                    Ok(Some((
                        vec2(py, e.users.clone(), nu, e.dim)?,
                        vec2(py, e.items.clone(), ni, e.dim)?,
                    )))
                }
            }
        };
        Ok((
            export(&self.inner.prev_emb)?,
            export(&self.inner.emb)?,
            self.inner.snapshots,
        ))
    }

    #[pyo3(signature = (prev, now, snapshots))]
    #[allow(clippy::type_complexity)]
    fn restore_embeddings(
        &mut self,
        prev: Option<(PyReadonlyArray2<'_, f32>, PyReadonlyArray2<'_, f32>)>,
        now: Option<(PyReadonlyArray2<'_, f32>, PyReadonlyArray2<'_, f32>)>,
        snapshots: u64,
    ) -> PyResult<()> {
        let build = |p: &Option<(PyReadonlyArray2<'_, f32>, PyReadonlyArray2<'_, f32>)>| -> PyResult<Option<Embeddings>> {
            match p {
                None => Ok(None),
                Some((u, i)) => {
                    let (uv, nu, d) = slice2(u, "user_vectors")?;
                    let (iv, ni, d2) = slice2(i, "item_vectors")?;
                    if d != d2 {
                        return Err(ShapeError::new_err(format!(
                            "user and item vectors must have the same width, got {d} and {d2}"
                        )));
                    }
                    Ok(Some(Embeddings::new(uv.to_vec(), iv.to_vec(), d, nu, ni).py()?))
                }
            }
        };
        let (p, n) = (build(&prev)?, build(&now)?);
        self.inner.restore_embeddings(p, n, snapshots).py()
    }

    #[getter]
    fn seed(&self) -> u64 {
        self.inner.stream.seed
    }
    #[getter]
    fn epoch(&self) -> u64 {
        self.inner.stream.epoch
    }
    #[getter]
    fn calls(&self) -> u64 {
        self.inner.stream.calls
    }
    fn set_epoch(&mut self, epoch: u64) {
        self.inner.stream.set_epoch(epoch);
    }
    fn set_stream(&mut self, seed: u64, epoch: u64, calls: u64) {
        self.inner.stream = Stream { seed, epoch, calls };
    }
}
