"""Type stubs of the compiled core. Arrays are numpy; ids int64, scores float32."""

from typing import TypeAlias, final

import numpy as np
import numpy.typing as npt

__all__ = [
    "__version__",
    "GnnoError",
    "IdOutOfRangeError",
    "ShapeError",
    "NonFiniteError",
    "EmptyInputError",
    "SaturatedUserError",
    "DataFormatError",
    "Interactions",
    "ProposalSampler",
    "DynamicSampler",
    "sigmoid_expectation",
    "gain_update",
    "topk",
    "gumbel_topk",
    "expectation_from_vectors",
    "set_num_threads",
    "get_num_threads",
    "simd_path",
    "simd_paths",
]

__version__: str

class GnnoError(ValueError): ...
class IdOutOfRangeError(GnnoError): ...
class ShapeError(GnnoError): ...
class NonFiniteError(GnnoError): ...
class EmptyInputError(GnnoError): ...
class SaturatedUserError(GnnoError): ...
class DataFormatError(GnnoError): ...

_I64: TypeAlias = npt.NDArray[np.int64]
_F32: TypeAlias = npt.NDArray[np.float32]

def set_num_threads(n: int) -> None: ...
def get_num_threads() -> int: ...
def simd_path() -> str: ...
def simd_paths() -> list[str]: ...

@final
class Interactions:
    @staticmethod
    def from_pairs(
        users: _I64, items: _I64, n_users: int | None = None, n_items: int | None = None
    ) -> Interactions: ...
    @staticmethod
    def from_csr(indptr: _I64, indices: _I64, n_users: int, n_items: int) -> Interactions: ...
    @property
    def n_users(self) -> int: ...
    @property
    def n_items(self) -> int: ...
    @property
    def nnz(self) -> int: ...
    def indptr(self) -> _I64: ...
    def indices(self) -> npt.NDArray[np.int32]: ...
    def item_counts(self) -> _I64: ...
    def contains(self, users: _I64, items: _I64) -> npt.NDArray[np.bool_]: ...

@final
class ProposalSampler:
    def __new__(
        cls, train: Interactions, seed: int, beta: float | None = None
    ) -> ProposalSampler: ...
    def sample(self, users: _I64, k: int) -> _I64: ...
    @property
    def seed(self) -> int: ...
    @property
    def epoch(self) -> int: ...
    @property
    def calls(self) -> int: ...
    def set_epoch(self, epoch: int) -> None: ...
    def set_stream(self, seed: int, epoch: int, calls: int) -> None: ...

@final
class DynamicSampler:
    def __new__(
        cls,
        train: Interactions,
        seed: int,
        *,
        popularity_beta: float | None = None,
        slots: int = 0,
        fresh: int = 0,
        history: int = 0,
        retain: str = "top",
        retain_temperature: float = 1.0,
        alpha: float = 0.2,
        eps: float = 1e-6,
        g0: float = 0.5,
        max_positives: int | None = None,
        memory_candidates: int = 0,
        fresh_candidates: int = 1,
        criterion: str = "score",
        beta: float = 0.0,
        srns_alpha: float = 0.0,
        warmup: float = 0.0,
        temperature: float = 0.0,
        gain_positives: int = 0,
        memory_step: bool = False,
        veto_threshold: float = 0.5,
        gain_warmup: float = 0.0,
        gain_window: int = 1,
    ) -> DynamicSampler: ...
    @property
    def width(self) -> int: ...
    @property
    def refresh_width(self) -> int: ...
    @property
    def has_embeddings(self) -> bool: ...
    @property
    def refreshes(self) -> int: ...
    def set_embeddings(self, user_vectors: _F32, item_vectors: _F32) -> None: ...
    def refresh_embeddings(self, user_vectors: _F32, item_vectors: _F32) -> None: ...
    def refresh_from_vectors(self) -> None: ...
    def refresh_candidates(self) -> _I64: ...
    def refresh_apply(self, cands: _I64, cand_scores: _F32, pos_scores: _F32) -> None: ...
    def propose(self, users: _I64, positives: _I64 | None, k: int) -> tuple[_I64, _I64]: ...
    def select(
        self,
        users: _I64,
        items: _I64,
        anchors: _I64,
        k: int,
        cand_scores: _F32,
        anchor_scores: _F32,
    ) -> _I64: ...
    def draw_from_vectors(self, users: _I64, positives: _I64 | None, k: int) -> _I64: ...
    def get_state(
        self,
    ) -> tuple[npt.NDArray[np.int32], _F32, _F32, npt.NDArray[np.uint32], _F32, _F32, int, int]: ...
    def set_state(
        self,
        items: npt.NDArray[np.int32],
        h: _F32,
        g: _F32,
        obs: npt.NDArray[np.uint32],
        hist: _F32,
        pos_hist: _F32,
        pos_filled: int,
        refreshes: int,
    ) -> None: ...
    def get_embeddings(
        self,
    ) -> tuple[list[tuple[_F32, _F32]], tuple[_F32, _F32] | None, int]: ...
    def restore_embeddings(
        self,
        past: list[tuple[_F32, _F32]],
        now: tuple[_F32, _F32] | None,
        snapshots: int,
    ) -> None: ...
    @property
    def seed(self) -> int: ...
    @property
    def epoch(self) -> int: ...
    @property
    def calls(self) -> int: ...
    def set_epoch(self, epoch: int) -> None: ...
    def set_stream(self, seed: int, epoch: int, calls: int) -> None: ...

def sigmoid_expectation(
    indptr: _I64,
    pos_scores: _F32,
    cand_scores: _F32,
    max_positives: int | None = None,
    seed: int = 0,
) -> _F32: ...
def gain_update(h_prev: _F32, h_now: _F32, g_prev: _F32, alpha: float, eps: float) -> _F32: ...
def topk(values: _F32, k: int) -> _I64: ...
def gumbel_topk(values: _F32, k: int, temperature: float = 1.0, seed: int = 0) -> _I64: ...
def expectation_from_vectors(
    indptr: _I64,
    indices: _I64,
    user_vectors: _F32,
    item_vectors: _F32,
    cand_items: _I64,
    max_positives: int | None = None,
    seed: int = 0,
) -> tuple[_F32, _F32]: ...
