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

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal, get_args

import numpy as np

from gnno import _gnno
from gnno._arrays import MAX_MEMORY_ENTRIES, as_floats, finite_float, per_user
from gnno.exceptions import GnnoError
from gnno.interactions import Interactions
from gnno.samplers.base import Sampler, _rebuild
from gnno.scoring import model_vectors, require_model, score_pairs

#: How a refresh keeps ``memory`` of the user's candidates: the top by
#: hardness, ∝ softmax(hardness / retain_temperature), ∝ softmax(score /
#: retain_temperature) (SRNS), or uniformly at random.
Retain = Literal["top", "softmax", "softmax_score", "random"]
#: What a draw maximises among its candidates (see ``GainSampler``).
Criterion = Literal[
    "score",
    "hardness",
    "gain",
    "gain_additive",
    "gain_only",
    "gain_normalized",
    "gain_veto",
    "srns",
]

_RETAIN: tuple[str, ...] = get_args(Retain)
_CRITERIA: tuple[str, ...] = get_args(Criterion)


def _alias(value: Any, alias: Any, name: str, alias_name: str, default: Any) -> Any:
    """``value``, or ``alias`` (a documented alias of option ``name``) when
    given; both given with different values is an error."""
    if alias is None:
        return value
    if value != default and value != alias:
        raise GnnoError(
            f"{alias_name}={alias!r} is an alias of {name}, which is also given ({name}={value!r})"
        )
    return alias


#: Engine settings newer than the state format → the value states saved
#: before them had.
_ADDED_SETTINGS: dict[str, Any] = {"gain_window": 1}


def _same_config(saved: dict, mine: dict[str, Any]) -> bool:
    """Whether a state's config equals this sampler's, compared key by key
    as plain values (a garbled state may hold arrays or other objects)."""
    if set(saved) != set(mine):
        return False
    for key, value in mine.items():
        other = saved[key]
        if type(other) is not type(value) and not (
            isinstance(other, (int, float)) and isinstance(value, (int, float))
        ):
            return False
        if isinstance(other, bool) != isinstance(value, bool) or other != value:
            return False
    return True


def _rebuild_scored(
    cls: type, train: Interactions, options: dict[str, Any], state: dict, model: Any
) -> Any:
    sampler = _rebuild(cls, train, options, state)
    if model is not None:
        sampler._model = model
        sampler._dot = False
    return sampler


class ScoreSampler(Sampler):
    """Base of the samplers that need model scores (see module docs)."""

    needs_scores = True

    def __init__(
        self,
        train: Interactions,
        *,
        seed: int,
        popularity_beta: float | None,
        options: dict[str, Any],
        **config: Any,
    ) -> None:
        super().__init__(train, seed=seed)
        self._options = dict(options)
        self._config = dict(config)
        self._popularity_beta = popularity_beta
        self._model: Any = None
        self._dot = False
        entries = self.train.n_users * (config.get("slots", 0) + config.get("fresh", 0))
        entries *= 1 + config.get("history", 0)
        if entries > MAX_MEMORY_ENTRIES:
            raise GnnoError(
                f"the candidate memory would hold {entries} entries (n_users * (memory + fresh) "
                f"* (history + 1)), more than the cap of {MAX_MEMORY_ENTRIES}"
            )
        self._core = _gnno.DynamicSampler(
            self.train._core, self.seed, popularity_beta=popularity_beta, **config
        )

    # -- refresh -------------------------------------------------------------
    def refresh(self, model: Any = None) -> None:
        """Binds ``model`` for scoring and updates the candidate memory from
        it (scores of memory items, fresh candidates and positives, then ``H``,
        ``G`` and retention). Call once per epoch, or more often."""
        model = require_model(model)
        vectors = model_vectors(model)
        if vectors is not None:
            self.refresh_embeddings(*vectors)
        else:
            with self._unchanged_on_error():
                cands = self._core.refresh_candidates()
                n_users, width = cands.shape
                scores = np.full(cands.shape, np.nan, dtype=np.float32)
                if width:
                    filled = cands >= 0
                    users = np.broadcast_to(
                        np.arange(n_users, dtype=np.int64)[:, None], cands.shape
                    )
                    scores[filled] = score_pairs(model, users[filled], cands[filled])
                pos_users, pos_items = self.train.to_pairs()
                pos_scores = (
                    score_pairs(model, pos_users, pos_items)
                    if self.train.nnz
                    else np.zeros(0, np.float32)
                )
                self._core.refresh_apply(cands.ravel(), scores.ravel(), pos_scores)
            self._dot = False
        # Bound only once the refresh succeeded: a failed one leaves the
        # sampler as it was, model included.
        self._model = model

    @contextmanager
    def _unchanged_on_error(self) -> Iterator[None]:
        """Puts the stream back where it was if the body fails: the Python
        model is called between two core steps that each advance it, and a
        failed refresh or draw must not shift the draws that follow."""
        stream = (self._core.seed, self._core.epoch, self._core.calls)
        try:
            yield
        except BaseException:
            self._core.set_stream(*stream)
            raise

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
        with self._unchanged_on_error():
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
        past, now, snapshots = self._core.get_embeddings()
        return {
            "config": dict(self._config, proposal_beta=self._popularity_beta),
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
            "embeddings": {"past": list(past), "current": now, "snapshots": int(snapshots)},
        }

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        config = state.get("config")
        mine = dict(self._config, proposal_beta=self._popularity_beta)
        if isinstance(config, dict):
            # Settings added since the state format began, at the value
            # every earlier state was made with.
            added = {k: v for k, v in _ADDED_SETTINGS.items() if k in mine}
            config = {**added, **config}
        if not isinstance(config, dict) or not _same_config(config, mine):
            raise GnnoError(f"state was saved with config {config}, this sampler has {mine}")
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

        # States saved before the gain window held one previous snapshot.
        past = emb["past"] if "past" in emb else [p for p in [emb["previous"]] if p is not None]
        if not isinstance(past, (list, tuple)):
            raise GnnoError(f"state embeddings['past'] must be a list, got {type(past).__name__}")
        self._core.restore_embeddings(
            [pair(p, f"past[{k}]") for k, p in enumerate(past)],
            pair(emb["current"], "current"),
            int(emb["snapshots"]),
        )
        self._dot = emb["current"] is not None

    # -- pickling --------------------------------------------------------------
    def __reduce__(self) -> tuple:
        """Pickles the options, data and full state (memory and the vectors of
        the last refresh); a bound model that is not a dot-product model is
        pickled with it, since its draws call it."""
        model = None if self._dot else self._model
        return (
            _rebuild_scored,
            (type(self), self.train, dict(self._options), self.state_dict(), model),
        )


class DNSSampler(ScoreSampler):
    """Dynamic negative sampling (Zhang et al., SIGIR 2013): per positive,
    ``fresh_candidates`` uniform negatives scored by the current model, the
    highest-scored kept. ``candidates`` is an alias of ``fresh_candidates``.
    """

    def __init__(
        self,
        train: Interactions,
        *,
        fresh_candidates: int = 5,
        seed: int = 0,
        candidates: int | None = None,
    ) -> None:
        n = _alias(fresh_candidates, candidates, "fresh_candidates", "candidates", 5)
        self.fresh_candidates = per_user(n, "fresh_candidates")
        super().__init__(
            train,
            seed=seed,
            popularity_beta=None,
            options={"fresh_candidates": self.fresh_candidates},
            fresh_candidates=self.fresh_candidates,
            memory_candidates=0,
            criterion="score",
        )


class SRNSSampler(ScoreSampler):
    """SRNS (Ding et al., NeurIPS 2020): a per-user memory of ``memory``
    candidates (the paper's ``s1``), topped up with ``fresh`` uniform ones
    (``s2``) and retained ∝ softmax(score / retain_temperature) at every step
    (each draw, for the batch's users; with ``step_memory=False`` only at
    each ``refresh``); the last ``history`` refresh snapshots of memory and
    positive scores; per positive the pick among the memory is
    ``argmax σ(r_uj − r_ui) + variance_weight·min(1, epoch/warmup)·std_j``
    (the paper's ``α``), ``std_j`` the population standard deviation of
    ``σ(r_uj − r_ui)`` over the snapshots in which both were scored.

    ``s1`` and ``s2`` are accepted as aliases of ``memory`` and ``fresh``.

    ``warmup`` defaults to 10 epochs: runs at ``gnno.recipes``' settings
    converge in 20 to 60 epochs, so a longer ramp would leave the variance
    term below full weight for most of training (the study's SRNS runs).

    Unlike the official code, memory and its score history survive across
    epochs. State is O(n_users × memory × history + nnz × history). The
    per-step update scores from the model vectors of the last refresh, so it
    needs a dot-product model; other models update memory at refreshes.
    """

    def __init__(
        self,
        train: Interactions,
        *,
        memory: int = 8,
        fresh: int = 64,
        variance_weight: float = 5.0,
        warmup: float = 10,
        retain_temperature: float = 10.0,
        history: int = 5,
        step_memory: bool = True,
        seed: int = 0,
        s1: int | None = None,
        s2: int | None = None,
    ) -> None:
        self.memory = per_user(_alias(memory, s1, "memory", "s1", 8), "memory")
        fresh = per_user(_alias(fresh, s2, "fresh", "s2", 64), "fresh")
        options = {
            "memory": self.memory,
            "fresh": fresh,
            "variance_weight": finite_float(variance_weight, "variance_weight"),
            "warmup": finite_float(warmup, "warmup", low=0.0),
            "retain_temperature": finite_float(retain_temperature, "retain_temperature"),
            "history": per_user(history, "history"),
            "step_memory": bool(step_memory),
        }
        super().__init__(
            train,
            seed=seed,
            popularity_beta=None,
            options=options,
            slots=self.memory,
            fresh=fresh,
            history=options["history"],
            retain="softmax_score",
            retain_temperature=options["retain_temperature"],
            memory_candidates=self.memory,
            fresh_candidates=0,
            criterion="srns",
            srns_alpha=options["variance_weight"],
            warmup=options["warmup"],
            memory_step=options["step_memory"],
        )


class GainSampler(ScoreSampler):
    """The gain-tuning dynamic negative sampler (GDNS, Zhu et al., WWW 2022).

    Each user keeps ``memory`` candidate slots across epochs. A refresh adds
    ``fresh`` new candidates from the user's negatives (uniform, or
    ∝ ``count ** popularity_beta`` when given), measures for all of them the
    expectation ``H = mean_i σ(r_uj − r_ui)`` over the user's positives (or
    ``max_positives`` of them), updates the gain
    ``G = α·G_prev + (1 − α)·σ((H_prev − H)/(H + ε))`` (``α`` is
    ``gain_alpha``, ``ε`` is ``eps``) where a previous ``H`` exists (new slots
    start at ``g0``), and keeps ``memory`` slots by hardness
    (``retain="top"`` or ``"softmax"`` with ``retain_temperature``).

    Each draw looks at ``memory_candidates`` memory slots plus
    ``fresh_candidates`` fresh negatives, scored by the model, and picks by
    ``criterion`` (``β`` is ``gain_beta``):

    * ``"gain"``: ``σ(r_uj − r_ui)·max(0, 1 + β·(G_j − g0))``, hardness
      scaled up for negatives whose ``H`` keeps falling (true negatives) and
      down for those whose ``H`` holds or rises (likely false negatives);
    * ``"gain_additive"``: ``σ(r_uj − r_ui) + β·(G_j − g0)``;
    * ``"gain_normalized"``: ``σ(r_uj − r_ui)·max(0, 1 + β·z_j)`` with
      ``z_j = (G_j − μ_u)/σ_u``, the gain standardised by the mean and spread
      of the user's memory gains, so that ``β`` means the same for every
      user (``z_j = 0`` until the user has two slots observed twice);
    * ``"gain_veto"``: the hardest candidate whose ``G_j ≥ veto_threshold``
      (the gain vetoes likely false negatives among the hardest), the
      hardest of all when every candidate is vetoed; deterministic;
    * ``"hardness"``: ``σ(r_uj − r_ui)``; ``"score"``: ``r_uj`` (DNS);
      ``"gain_only"``: ``G_j``.

    ``gain_warmup > 0`` ramps ``β`` linearly from 0 over that many epochs
    (``β·min(1, epoch / gain_warmup)``, as SRNS ramps its variance term).

    ``gain_window = W ≥ 2`` measures the fall of ``H`` over the last ``W``
    refreshes instead of one: a slot observed over ``lag ≤ W`` refreshes
    updates ``G = α·G_prev + (1 − α)·σ((H_{t−lag} − H_t)/(lag·(H_t + ε)))``,
    with ``H_{t−lag}`` recomputed from the score histories the memory keeps
    (``W + 1`` scores per slot and per positive); the draw-time gain of any
    other candidate compares ``H`` under the current snapshot of the model's
    vectors with ``H`` under the one ``W`` refreshes back (the sampler keeps
    ``W`` snapshots, each a copy of both tables). ``W = 1`` is the one-step
    gain above.

    ``G_j`` is the memory's running gain for a slot observed at least twice;
    for any other candidate it is the one-step gain
    ``α·g0 + (1 − α)·σ((H_prev − H_now)/(H_now + ε))`` computed at draw time
    from the last two model snapshots over ``gain_positives`` positives of
    the user (``gain_positives=0``: ``g0``). Only the dot-product path keeps
    the previous snapshot: with any other model a candidate outside the
    memory gets ``g0``. Before two snapshots exist every
    ``G`` is ``g0`` and the gain criteria reduce to hardness: the warm-up.
    ``draw_temperature > 0`` samples ∝ softmax(criterion / draw_temperature)
    instead of taking the argmax.

    The defaults are the best variant of the first (20-epoch) study: every
    draw picks among 5 fresh uniform candidates, and the memory (top ``H``)
    tracks ``H`` and ``G``. Drawing from the
    memory (``memory_candidates > 0``) or amplifying the gain (``gain_beta``
    ≥ 10) lowered accuracy on MovieLens-1M.
    """

    def __init__(
        self,
        train: Interactions,
        *,
        memory: int = 32,
        fresh: int = 64,
        gain_alpha: float = 0.2,
        eps: float = 1e-6,
        g0: float = 0.5,
        retain: Retain = "top",
        retain_temperature: float = 0.1,
        max_positives: int | None = None,
        memory_candidates: int = 0,
        fresh_candidates: int = 5,
        criterion: Criterion = "gain",
        gain_beta: float = 1.0,
        draw_temperature: float = 0.0,
        gain_positives: int = 32,
        popularity_beta: float | None = None,
        veto_threshold: float = 0.5,
        gain_warmup: float = 0.0,
        gain_window: int = 1,
        seed: int = 0,
    ) -> None:
        if retain not in _RETAIN:
            raise GnnoError(f"retain must be one of {_RETAIN}, got {retain!r}")
        if criterion not in _CRITERIA:
            raise GnnoError(f"criterion must be one of {_CRITERIA}, got {criterion!r}")
        options: dict[str, Any] = {
            "memory": per_user(memory, "memory", minimum=0),
            "fresh": per_user(fresh, "fresh", minimum=0),
            "gain_alpha": finite_float(gain_alpha, "gain_alpha", low=0.0, high=1.0),
            "eps": finite_float(eps, "eps"),
            "g0": finite_float(g0, "g0"),
            "retain": retain,
            "retain_temperature": finite_float(retain_temperature, "retain_temperature"),
            "max_positives": None
            if max_positives is None
            else per_user(max_positives, "max_positives"),
            "memory_candidates": per_user(memory_candidates, "memory_candidates", minimum=0),
            "fresh_candidates": per_user(fresh_candidates, "fresh_candidates", minimum=0),
            "criterion": criterion,
            "gain_beta": finite_float(gain_beta, "gain_beta"),
            "draw_temperature": finite_float(draw_temperature, "draw_temperature", low=0.0),
            "gain_positives": per_user(gain_positives, "gain_positives", minimum=0),
            "popularity_beta": None
            if popularity_beta is None
            else finite_float(popularity_beta, "popularity_beta", low=0.0),
            "veto_threshold": finite_float(veto_threshold, "veto_threshold"),
            "gain_warmup": finite_float(gain_warmup, "gain_warmup", low=0.0),
            "gain_window": per_user(gain_window, "gain_window"),
        }
        if criterion == "gain_veto" and options["draw_temperature"] != 0.0:
            raise GnnoError(
                "criterion='gain_veto' is deterministic: draw_temperature must be 0, "
                f"got {draw_temperature!r}"
            )
        super().__init__(
            train,
            seed=seed,
            popularity_beta=options["popularity_beta"],
            options=options,
            slots=options["memory"],
            fresh=options["fresh"],
            history=0 if options["gain_window"] == 1 else options["gain_window"] + 1,
            retain=retain,
            retain_temperature=options["retain_temperature"],
            alpha=options["gain_alpha"],
            eps=options["eps"],
            g0=options["g0"],
            max_positives=options["max_positives"],
            memory_candidates=options["memory_candidates"],
            fresh_candidates=options["fresh_candidates"],
            criterion=criterion,
            beta=options["gain_beta"],
            temperature=options["draw_temperature"],
            gain_positives=options["gain_positives"],
            veto_threshold=options["veto_threshold"],
            gain_warmup=options["gain_warmup"],
            gain_window=options["gain_window"],
        )
