//! Sampler classes. Each holds its core state and a `Stream`; the Python
//! layer owns the user-facing API (devices, torch tensors, state dicts).
//!
//! The classes are frozen and keep their state in a [`Shared`], so one
//! sampler can be used from several Python threads: calls run one at a
//! time, each with the GIL released.

use gnno_core::dynamic::{Criterion, DrawConfig, DynamicSampler, Proposed, RefreshConfig};
use gnno_core::kernels::Embeddings;
use gnno_core::memory::{MemoryState, Retain};
use gnno_core::proposal::Proposal;
use gnno_core::sampling::{sample_negatives, Stream};
use numpy::{PyArray1, PyArray2, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::prelude::*;
use std::sync::Arc;

use crate::arrays::{opt_slice1, slice1, slice2, vec1, vec2, ArrayPair};
use crate::errors::{GnnoError, IntoPyResult, ShapeError, Shared};
use crate::interactions::PyInteractions;

/// Uniform or popularity negatives: no scores needed.
#[pyclass(module = "gnno._gnno", name = "ProposalSampler", frozen)]
pub struct PyProposalSampler {
    train: Arc<gnno_core::Interactions>,
    proposal: Proposal,
    stream: Shared<Stream>,
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
            stream: Shared::new(Stream::new(seed)),
        })
    }

    fn sample<'py>(
        &self,
        py: Python<'py>,
        users: PyReadonlyArray1<'_, i64>,
        k: usize,
    ) -> PyResult<Bound<'py, PyArray2<i64>>> {
        let u = slice1(&users, "users")?;
        let (train, proposal) = (&self.train, &self.proposal);
        let out = self.stream.with(py, |stream| {
            // The key is taken only for a call that can succeed, so a
            // rejected call leaves the stream where it was.
            gnno_core::sampling::check_batch(train, u, "users")?;
            sample_negatives(train, proposal, u, k, stream.next_key())
        })?;
        vec2(py, out, u.len(), k)
    }

    #[getter]
    fn seed(&self, py: Python<'_>) -> u64 {
        self.stream.read(py, |s| s.seed)
    }
    #[getter]
    fn epoch(&self, py: Python<'_>) -> u64 {
        self.stream.read(py, |s| s.epoch)
    }
    #[getter]
    fn calls(&self, py: Python<'_>) -> u64 {
        self.stream.read(py, |s| s.calls)
    }
    fn set_epoch(&self, py: Python<'_>, epoch: u64) -> PyResult<()> {
        self.stream.with(py, |s| {
            s.set_epoch(epoch);
            Ok(())
        })
    }
    fn set_stream(&self, py: Python<'_>, seed: u64, epoch: u64, calls: u64) -> PyResult<()> {
        self.stream.with(py, |s| {
            *s = Stream { seed, epoch, calls };
            Ok(())
        })
    }
}

/// DNS, SRNS and the gain sampler: one engine, configured by name.
#[pyclass(module = "gnno._gnno", name = "DynamicSampler", frozen)]
pub struct PyDynamicSampler {
    inner: Shared<DynamicSampler>,
    /// Fixed at construction: readable without the lock.
    train: Arc<gnno_core::Interactions>,
    width: usize,
    refresh_width: usize,
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

fn parse_criterion(
    name: &str,
    beta: f32,
    srns_alpha: f32,
    warmup: f32,
    veto_threshold: f32,
) -> PyResult<Criterion> {
    Ok(match name {
        "score" => Criterion::Score,
        "hardness" => Criterion::Hardness,
        "gain" => Criterion::Gain { beta },
        "gain_additive" => Criterion::GainAdditive { beta },
        "gain_only" => Criterion::GainOnly,
        "gain_normalized" => Criterion::GainNormalized { beta },
        "gain_veto" => Criterion::GainVeto {
            threshold: veto_threshold,
        },
        "srns" => Criterion::Srns {
            alpha: srns_alpha,
            warmup,
        },
        other => {
            return Err(GnnoError::new_err(format!(
            "criterion must be 'score', 'hardness', 'gain', 'gain_additive', 'gain_only', 'gain_normalized', 'gain_veto' or 'srns', got {other:?}"
        )))
        }
    })
}

/// Model vectors copied out of numpy, checked in the core (GIL released).
struct RawEmbeddings(Vec<f32>, Vec<f32>, usize, usize, usize);

impl RawEmbeddings {
    fn build(self) -> gnno_core::Result<Embeddings> {
        let RawEmbeddings(uv, iv, d, n_users, n_items) = self;
        Embeddings::new(uv, iv, d, n_users, n_items)
    }
}

/// Two model-vector arrays checked against each other, as one snapshot.
fn embeddings(
    user_vectors: &PyReadonlyArray2<'_, f32>,
    item_vectors: &PyReadonlyArray2<'_, f32>,
) -> PyResult<RawEmbeddings> {
    let (uv, n_users, d) = slice2(user_vectors, "user_vectors")?;
    let (iv, n_items, d2) = slice2(item_vectors, "item_vectors")?;
    if d != d2 {
        return Err(ShapeError::new_err(format!(
            "user_vectors and item_vectors must have the same width, got {d} and {d2}"
        )));
    }
    Ok(RawEmbeddings(uv.to_vec(), iv.to_vec(), d, n_users, n_items))
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

type SnapshotArrays<'py> = Option<ArrayPair<'py, PyArray2<f32>>>;

#[pymethods]
impl PyDynamicSampler {
    #[new]
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (
        train, seed, *, popularity_beta=None, slots=0, fresh=0, history=0, retain="top",
        retain_temperature=1.0, alpha=0.2, eps=1e-6, g0=0.5, max_positives=None,
        memory_candidates=0, fresh_candidates=1, criterion="score", beta=0.0,
        srns_alpha=0.0, warmup=0.0, temperature=0.0, gain_positives=0, memory_step=false,
        veto_threshold=0.5, gain_warmup=0.0, gain_window=1
    ))]
    fn new(
        py: Python<'_>,
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
        veto_threshold: f32,
        gain_warmup: f32,
        gain_window: usize,
    ) -> PyResult<Self> {
        let refresh = RefreshConfig {
            slots,
            fresh,
            history,
            retain: parse_retain(retain, retain_temperature)?,
            alpha,
            eps,
            g0,
            max_positives,
            gain_window,
        };
        let draw = DrawConfig {
            memory_candidates,
            fresh_candidates,
            criterion: parse_criterion(criterion, beta, srns_alpha, warmup, veto_threshold)?,
            temperature,
            gain_positives,
            memory_step,
            gain_warmup,
        };
        let t = train.inner.clone();
        let inner = crate::errors::released(py, move || {
            let proposal = match popularity_beta {
                None => Proposal::Uniform,
                Some(b) => Proposal::popularity(&t, b)?,
            };
            DynamicSampler::new(t, proposal, refresh, draw, seed)
        })?;
        Ok(Self {
            train: train.inner.clone(),
            width: inner.draw_config().width(),
            refresh_width: inner.refresh_width(),
            inner: Shared::new(inner),
        })
    }

    #[getter]
    fn width(&self) -> usize {
        self.width
    }

    #[getter]
    fn refresh_width(&self) -> usize {
        self.refresh_width
    }

    #[getter]
    fn has_embeddings(&self, py: Python<'_>) -> bool {
        self.inner.read(py, |s| s.has_embeddings())
    }

    #[getter]
    fn refreshes(&self, py: Python<'_>) -> u64 {
        self.inner.read(py, |s| s.refreshes())
    }

    /// Takes a snapshot of the model's vectors without refreshing.
    fn set_embeddings(
        &self,
        py: Python<'_>,
        user_vectors: PyReadonlyArray2<'_, f32>,
        item_vectors: PyReadonlyArray2<'_, f32>,
    ) -> PyResult<()> {
        let raw = embeddings(&user_vectors, &item_vectors)?;
        self.inner.with(py, |s| s.set_embeddings(raw.build()?))
    }

    /// A snapshot and a full refresh from it, as one step: on any error
    /// the sampler is left exactly as it was.
    fn refresh_embeddings(
        &self,
        py: Python<'_>,
        user_vectors: PyReadonlyArray2<'_, f32>,
        item_vectors: PyReadonlyArray2<'_, f32>,
    ) -> PyResult<()> {
        let raw = embeddings(&user_vectors, &item_vectors)?;
        self.inner.with(py, |s| s.refresh_embeddings(raw.build()?))
    }

    fn refresh_from_vectors(&self, py: Python<'_>) -> PyResult<()> {
        self.inner.with(py, |s| s.refresh_from_vectors())
    }

    fn refresh_candidates<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<i64>>> {
        let out = self.inner.with(py, |s| s.refresh_candidates())?;
        vec2(py, out, self.train.n_users(), self.refresh_width)
    }

    fn refresh_apply(
        &self,
        py: Python<'_>,
        cands: PyReadonlyArray1<'_, i64>,
        cand_scores: PyReadonlyArray1<'_, f32>,
        pos_scores: PyReadonlyArray1<'_, f32>,
    ) -> PyResult<()> {
        let (c, sc, p) = (
            slice1(&cands, "cands")?,
            slice1(&cand_scores, "cand_scores")?,
            slice1(&pos_scores, "pos_scores")?,
        );
        self.inner.with(py, |s| s.refresh_apply(c, sc, p))
    }

    #[pyo3(signature = (users, positives, k))]
    fn propose<'py>(
        &self,
        py: Python<'py>,
        users: PyReadonlyArray1<'_, i64>,
        positives: Option<PyReadonlyArray1<'_, i64>>,
        k: usize,
    ) -> PyResult<ArrayPair<'py, PyArray1<i64>>> {
        let u = slice1(&users, "users")?;
        let p = opt_slice1(&positives, "positives")?;
        let out = self.inner.with(py, |s| s.propose(u, p, k))?;
        Ok((vec1(py, out.items), vec1(py, out.anchors)))
    }

    #[allow(clippy::too_many_arguments)]
    fn select<'py>(
        &self,
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
        let (sc, a) = (
            slice1(&cand_scores, "cand_scores")?,
            slice1(&anchor_scores, "anchor_scores")?,
        );
        let out = self.inner.with(py, |s| s.select(u, &proposed, k, sc, a))?;
        vec2(py, out, u.len(), k)
    }

    #[pyo3(signature = (users, positives, k))]
    fn draw_from_vectors<'py>(
        &self,
        py: Python<'py>,
        users: PyReadonlyArray1<'_, i64>,
        positives: Option<PyReadonlyArray1<'_, i64>>,
        k: usize,
    ) -> PyResult<Bound<'py, PyArray2<i64>>> {
        let u = slice1(&users, "users")?;
        let p = opt_slice1(&positives, "positives")?;
        let out = self.inner.with(py, |s| s.draw_from_vectors(u, p, k))?;
        vec2(py, out, u.len(), k)
    }

    /// Memory state: `(items, h, g, obs, hist, pos_hist, pos_filled, refreshes)`.
    fn get_state<'py>(&self, py: Python<'py>) -> StateTuple<'py> {
        let (m, refreshes) = self.inner.read(py, |s| (s.memory().state(), s.refreshes()));
        (
            vec1(py, m.items),
            vec1(py, m.h),
            vec1(py, m.g),
            vec1(py, m.obs),
            vec1(py, m.hist),
            vec1(py, m.pos_hist),
            m.pos_filled,
            refreshes,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn set_state(
        &self,
        py: Python<'_>,
        items: PyReadonlyArray1<'_, i32>,
        h: PyReadonlyArray1<'_, f32>,
        g: PyReadonlyArray1<'_, f32>,
        obs: PyReadonlyArray1<'_, u32>,
        hist: PyReadonlyArray1<'_, f32>,
        pos_hist: PyReadonlyArray1<'_, f32>,
        pos_filled: usize,
        refreshes: u64,
    ) -> PyResult<()> {
        let state = MemoryState {
            items: slice1(&items, "items")?.to_vec(),
            h: slice1(&h, "h")?.to_vec(),
            g: slice1(&g, "g")?.to_vec(),
            obs: slice1(&obs, "obs")?.to_vec(),
            hist: slice1(&hist, "hist")?.to_vec(),
            pos_hist: slice1(&pos_hist, "pos_hist")?.to_vec(),
            pos_filled,
        };
        self.inner.with(py, |s| s.restore_memory(state, refreshes))
    }

    /// The model-vector snapshots: `(past, current, count)`, `past` the
    /// snapshots the draw-time gain keeps before the current one (oldest
    /// first), each snapshot `(user_vectors, item_vectors)`, `current`
    /// `None` before the first.
    #[allow(clippy::type_complexity)]
    fn get_embeddings<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<(Vec<ArrayPair<'py, PyArray2<f32>>>, SnapshotArrays<'py>, u64)> {
        let copy = |e: &Embeddings| -> (Vec<f32>, Vec<f32>, usize) {
            (e.users.clone(), e.items.clone(), e.dim)
        };
        let (past, now, snapshots) = self.inner.read(py, |s| {
            let (now, past) = s.embeddings();
            (
                past.iter().map(copy).collect::<Vec<_>>(),
                now.map(copy),
                s.snapshots(),
            )
        });
        let export = |(users, items, dim): (Vec<f32>, Vec<f32>, usize)| {
            let (nu, ni) = (users.len() / dim, items.len() / dim);
            Ok::<_, PyErr>((vec2(py, users, nu, dim)?, vec2(py, items, ni, dim)?))
        };
        let past = past.into_iter().map(export).collect::<PyResult<Vec<_>>>()?;
        Ok((past, now.map(export).transpose()?, snapshots))
    }

    #[pyo3(signature = (past, now, snapshots))]
    #[allow(clippy::type_complexity)]
    fn restore_embeddings(
        &self,
        py: Python<'_>,
        past: Vec<(PyReadonlyArray2<'_, f32>, PyReadonlyArray2<'_, f32>)>,
        now: Option<(PyReadonlyArray2<'_, f32>, PyReadonlyArray2<'_, f32>)>,
        snapshots: u64,
    ) -> PyResult<()> {
        let past = past
            .iter()
            .map(|(u, i)| embeddings(u, i))
            .collect::<PyResult<Vec<_>>>()?;
        let now = now.as_ref().map(|(u, i)| embeddings(u, i)).transpose()?;
        self.inner.with(py, |s| {
            let past = past
                .into_iter()
                .map(RawEmbeddings::build)
                .collect::<gnno_core::Result<Vec<_>>>()?;
            s.restore_embeddings(past, now.map(RawEmbeddings::build).transpose()?, snapshots)
        })
    }

    #[getter]
    fn seed(&self, py: Python<'_>) -> u64 {
        self.inner.read(py, |s| s.stream().seed)
    }
    #[getter]
    fn epoch(&self, py: Python<'_>) -> u64 {
        self.inner.read(py, |s| s.stream().epoch)
    }
    #[getter]
    fn calls(&self, py: Python<'_>) -> u64 {
        self.inner.read(py, |s| s.stream().calls)
    }
    fn set_epoch(&self, py: Python<'_>, epoch: u64) -> PyResult<()> {
        self.inner.with(py, |s| {
            s.set_epoch(epoch);
            Ok(())
        })
    }
    fn set_stream(&self, py: Python<'_>, seed: u64, epoch: u64, calls: u64) -> PyResult<()> {
        self.inner.with(py, |s| {
            s.set_stream(Stream { seed, epoch, calls });
            Ok(())
        })
    }
}
