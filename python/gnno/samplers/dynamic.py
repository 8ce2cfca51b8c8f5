"""Score-based samplers on one Rust engine: DNS, SRNS and the gain sampler.

They differ only in configuration of ``gnno._gnno.DynamicSampler``: how
many memory slots each user keeps and how they are retained, how many fresh
candidates each draw sees, and the criterion that picks among them.

Scores come from the model bound by ``refresh(model)``:

* dot-product models (``user_vectors()``/``item_vectors()``, e.g. GMF):
  the vectors are copied to Rust once per refresh and every draw is scored
  there from that snapshot (no per-batch device round trip). Draws between
  two refreshes see the model as it was at the last refresh; call
  ``refresh`` more often (the Trainer's ``refresh_every``) for fresher scores;
* any other model: candidates are proposed in Rust, scored by calling the
  model on its device, and chosen in Rust.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gnno import _gnno
from gnno._arrays import as_floats, finite_float, positive_int
from gnno.exceptions import GnnoError
from gnno.interactions import Interactions
from gnno.samplers.base import Sampler
from gnno.scoring import model_vectors, require_model, score_pairs

_RETAIN = ("top", "softmax", "softmax_score", "random")
_CRITERIA = ("score", "hardness", "gain", "gain_additive", "gain_only", "srns")


class ScoreSampler(Sampler):
    """Base of the samplers that need model scores (see module docs)."""

    needs_scores = True

    def __init__(
        self, train: Interactions, seed: int, proposal_beta: float | None, **config: Any
    ) -> None:
        super().__init__(train, seed)
        self._config = dict(config)
        self._proposal_beta = proposal_beta
        self._model: Any = None
        self._dot = False
        self._core = _gnno.DynamicSampler(
            self.train._core, self.seed, popularity_beta=proposal_beta, **config
        )

    # -- refresh -------------------------------------------------------------
    def refresh(self, model: Any = None) -> None:
        """Binds ``model`` for scoring and updates the candidate memory from
        it (scores of memory items, fresh candidates and positives, then ``H``,
        ``G`` and retention). Call once per epoch, or more often."""
        model = require_model(model)
        self._model = model
        vectors = model_vectors(model)
        if vectors is not None:
            self._dot = True
            self.refresh_embeddings(*vectors)
            return
        self._dot = False
        cands = self._core.refresh_candidates()
        n_users, width = cands.shape
        scores = np.full(cands.shape, np.nan, dtype=np.float32)
        if width:
            filled = cands >= 0
            users = np.broadcast_to(np.arange(n_users, dtype=np.int64)[:, None], cands.shape)
            scores[filled] = score_pairs(model, users[filled], cands[filled])
        pos_users, pos_items = self.train.to_pairs()
        pos_scores = (
            score_pairs(model, pos_users, pos_items) if self.train.nnz else np.zeros(0, np.float32)
        )
        self._core.refresh_apply(cands.ravel(), scores.ravel(), pos_scores)

    def refresh_embeddings(self, user_vectors: Any, item_vectors: Any) -> None:
        """The fast path for dot-product models: ``score(u, i) =
        ⟨user_vectors[u], item_vectors[i]⟩``, float ``(n_users, d)`` and
        ``(n_items, d)`` (numpy or tensors on any device)."""
        uv = as_floats(user_vectors, "user_vectors", 2)
        iv = as_floats(item_vectors, "item_vectors", 2)
        # One step: a failed refresh leaves the sampler as it was.
        self._core.refresh_embeddings(uv, iv)
        self._dot = True

    @property
    def draws_from_snapshot(self) -> bool:
        """True after a refresh with a dot-product model (draws are scored
        from the copied vectors); False while bound to any other model,
        whose draws call the live model."""
        return self._dot or self._model is None

    # -- draws ---------------------------------------------------------------
    def _draw(self, users: np.ndarray, positives: np.ndarray | None, k: int) -> np.ndarray:
        if self._dot or self._model is None:
            if not self._core.has_embeddings:
                raise GnnoError(
                    f"{type(self).__name__} scores its candidates with the model: "
                    "call refresh(model) before sampling"
                )
            return self._core.draw_from_vectors(users, positives, k)
        items, anchors = self._core.propose(users, positives, k)
        width = self._core.width
        rep = np.repeat(users, k * width)
        cand_scores = score_pairs(self._model, rep, items)
        anchor_scores = np.zeros(len(users), np.float32)
        has = anchors >= 0
        if has.any():
            anchor_scores[has] = score_pairs(self._model, users[has], anchors[has])
        return self._core.select(users, items, anchors, k, cand_scores, anchor_scores)

    def _sample(self, users: np.ndarray, k: int) -> np.ndarray:
        return self._draw(users, None, k)

    def _sample_for_pairs(self, users: np.ndarray, positives: np.ndarray, k: int) -> np.ndarray:
        return self._draw(users, positives, k)

    # -- state -----------------------------------------------------------------
    def diagnostics(self) -> dict[str, np.ndarray]:
        """The candidate memory: ``items`` (int32, ``-1`` empty), ``h`` (last
        ``H``), ``g`` (gain) and ``observations``, each ``(n_users, slots)``."""
        items, h, g, obs, *_ = self._core.get_state()
        shape = (self.train.n_users, -1)
        return {
            "items": items.reshape(shape),
            "h": h.reshape(shape),
            "g": g.reshape(shape),
            "observations": obs.reshape(shape),
        }

    def _extra_state(self) -> dict[str, Any]:
        items, h, g, obs, hist, pos_hist, pos_filled, refreshes = self._core.get_state()
        prev, now, snapshots = self._core.get_embeddings()
        return {
            "config": dict(self._config, proposal_beta=self._proposal_beta),
            "memory": {
                "items": items,
                "h": h,
                "g": g,
                "observations": obs,
                "history": hist,
                "positive_history": pos_hist,
                "positive_history_filled": int(pos_filled),
                "refreshes": int(refreshes),
            },
            "embeddings": {"previous": prev, "current": now, "snapshots": int(snapshots)},
        }

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        config = state.get("config")
        if config != dict(self._config, proposal_beta=self._proposal_beta):
            raise GnnoError(
                f"state was saved with config {config}, this sampler has a different one"
            )
        mem = state["memory"]
        self._core.set_state(
            np.ascontiguousarray(mem["items"], np.int32),
            np.ascontiguousarray(mem["h"], np.float32),
            np.ascontiguousarray(mem["g"], np.float32),
            np.ascontiguousarray(mem["observations"], np.uint32),
            np.ascontiguousarray(mem["history"], np.float32),
            np.ascontiguousarray(mem["positive_history"], np.float32),
            int(mem["positive_history_filled"]),
            int(mem["refreshes"]),
        )
        emb = state["embeddings"]

        def pair(p: Any, name: str) -> Any:
            if p is None:
                return None
            return as_floats(p[0], f"{name} user vectors", 2), as_floats(
                p[1], f"{name} item vectors", 2
            )

        self._core.restore_embeddings(
            pair(emb["previous"], "previous"),
            pair(emb["current"], "current"),
            int(emb["snapshots"]),
        )
        self._dot = emb["current"] is not None


class DNSSampler(ScoreSampler):
    """Dynamic negative sampling (Zhang et al., SIGIR 2013): per positive,
    ``candidates`` uniform negatives scored by the current model, the
    highest-scored kept.
    """

    def __init__(self, train: Interactions, candidates: int = 5, seed: int = 0) -> None:
        self.candidates = positive_int(candidates, "candidates")
        super().__init__(
            train,
            seed,
            None,
            fresh_candidates=self.candidates,
            memory_candidates=0,
            criterion="score",
        )


class SRNSSampler(ScoreSampler):
    """SRNS (Ding et al., NeurIPS 2020): a per-user memory of ``s1``
    candidates, topped up with ``s2`` uniform ones and retained ∝
    softmax(score / temperature) at every step (each draw, for the batch's
    users; with ``step_memory=False`` only at each ``refresh``); the last
    ``history`` refresh snapshots of memory and positive scores; per positive
    the pick among the memory is
    ``argmax σ(r_uj − r_ui) + alpha·min(1, epoch/warmup)·std_j``, ``std_j``
    the population standard deviation of ``σ(r_uj − r_ui)`` over the
    snapshots in which both were scored.

    Unlike the official code, memory and its score history survive across
    epochs. State is O(n_users × s1 × history + nnz × history). The
    per-step update scores from the model vectors of the last refresh, so it
    needs a dot-product model; other models update memory at refreshes.
    """

    def __init__(
        self,
        train: Interactions,
        s1: int = 8,
        s2: int = 64,
        alpha: float = 5.0,
        warmup: int = 50,
        temperature: float = 10.0,
        history: int = 5,
        step_memory: bool = True,
        seed: int = 0,
    ) -> None:
        self.s1 = positive_int(s1, "s1")
        super().__init__(
            train,
            seed,
            None,
            slots=self.s1,
            fresh=positive_int(s2, "s2"),
            history=positive_int(history, "history"),
            retain="softmax_score",
            retain_temperature=finite_float(temperature, "temperature"),
            memory_candidates=self.s1,
            fresh_candidates=0,
            criterion="srns",
            srns_alpha=finite_float(alpha, "alpha"),
            warmup=finite_float(warmup, "warmup", low=0.0),
            memory_step=bool(step_memory),
        )


class GainSampler(ScoreSampler):
    """The gain-tuning dynamic negative sampler (GDNS, Zhu et al., WWW 2022).

    Each user keeps ``memory`` candidate slots across epochs. A refresh adds
    ``fresh`` new candidates from the user's negatives (uniform, or by
    popularity with ``proposal_beta``), measures for all of them the
    expectation ``H = mean_i σ(r_uj − r_ui)`` over the user's positives (or
    ``max_positives`` of them), updates the gain
    ``G = α·G_prev + (1 − α)·σ((H_prev − H)/(H + ε))`` where a previous ``H``
    exists (new slots start at ``g0``), and keeps ``memory`` slots by
    hardness (``retain="top"`` or ``"softmax"`` with ``retain_temperature``).

    Each draw looks at ``memory_candidates`` memory slots plus
    ``fresh_candidates`` fresh negatives, scored by the model, and picks by
    ``criterion``:

    * ``"gain"``: ``σ(r_uj − r_ui)·max(0, 1 + beta·(G_j − g0))``, hardness
      scaled up for negatives whose ``H`` keeps falling (true negatives) and
      down for those whose ``H`` holds or rises (likely false negatives);
    * ``"gain_additive"``: ``σ(r_uj − r_ui) + beta·(G_j − g0)``;
    * ``"hardness"``: ``σ(r_uj − r_ui)``; ``"score"``: ``r_uj`` (DNS);
      ``"gain_only"``: ``G_j``.

    ``G_j`` is the memory's running gain for a slot observed at least twice;
    for any other candidate it is the one-step gain
    ``α·g0 + (1 − α)·σ((H_prev − H_now)/(H_now + ε))`` computed at draw time
    from the last two model snapshots over ``gain_positives`` positives of
    the user (``gain_positives=0``: ``g0``). Before two snapshots exist every
    ``G`` is ``g0`` and the gain criteria reduce to hardness: the warm-up.
    ``temperature > 0`` samples ∝ softmax(criterion / temperature) instead
    of taking the argmax.

    The defaults are the best variant of ``benches/study.py`` (see
    ``docs/RESULTS.md``): every draw picks among 5 fresh uniform candidates,
    and the memory (top ``H``) tracks ``H`` and ``G``. Drawing from the
    memory (``memory_candidates > 0``) or amplifying the gain (``beta`` ≥ 10)
    lowered accuracy on MovieLens-1M.
    """

    def __init__(
        self,
        train: Interactions,
        *,
        memory: int = 32,
        fresh: int = 64,
        alpha: float = 0.2,
        eps: float = 1e-6,
        g0: float = 0.5,
        retain: str = "top",
        retain_temperature: float = 0.1,
        max_positives: int | None = None,
        memory_candidates: int = 0,
        fresh_candidates: int = 5,
        criterion: str = "gain",
        beta: float = 1.0,
        temperature: float = 0.0,
        gain_positives: int = 32,
        proposal_beta: float | None = None,
        seed: int = 0,
    ) -> None:
        if retain not in _RETAIN:
            raise GnnoError(f"retain must be one of {_RETAIN}, got {retain!r}")
        if criterion not in _CRITERIA:
            raise GnnoError(f"criterion must be one of {_CRITERIA}, got {criterion!r}")
        super().__init__(
            train,
            seed,
            None
            if proposal_beta is None
            else finite_float(proposal_beta, "proposal_beta", low=0.0),
            slots=positive_int(memory, "memory", minimum=0),
            fresh=positive_int(fresh, "fresh", minimum=0),
            history=0,
            retain=retain,
            retain_temperature=finite_float(retain_temperature, "retain_temperature"),
            alpha=finite_float(alpha, "alpha", low=0.0, high=1.0),
            eps=finite_float(eps, "eps"),
            g0=finite_float(g0, "g0"),
            max_positives=None
            if max_positives is None
            else positive_int(max_positives, "max_positives"),
            memory_candidates=positive_int(memory_candidates, "memory_candidates", minimum=0),
            fresh_candidates=positive_int(fresh_candidates, "fresh_candidates", minimum=0),
            criterion=criterion,
            beta=finite_float(beta, "beta"),
            temperature=finite_float(temperature, "temperature", low=0.0),
            gain_positives=positive_int(gain_positives, "gain_positives", minimum=0),
        )
