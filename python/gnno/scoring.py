"""Getting scores out of the caller's model, on the model's device.

Two routes, chosen per model:

* dot-product models (any object with ``user_vectors()`` and
  ``item_vectors()`` returning ``(n, d)`` tensors, such as ``gnno.GMF``)
  hand their vectors over once per refresh; Rust scores from them;
* anything else is called as ``model(users, items) -> scores`` on chunks of
  id tensors on its device, under ``torch.no_grad()`` and in eval mode.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from gnno._arrays import check_finite
from gnno.exceptions import GnnoError, NonFiniteError, ShapeError

#: Pairs scored per model call.
CHUNK = 1 << 18


def unwrap_parallel(model: Any) -> Any:
    """The module inside torch's ``DistributedDataParallel`` /
    ``DataParallel`` wrappers (their forward adds nothing to scoring, and
    they hide ``user_vectors()``); any other model as it is."""
    import torch

    wrappers = (torch.nn.parallel.DistributedDataParallel, torch.nn.DataParallel)
    while isinstance(model, wrappers):
        model = model.module
    return model


def model_vectors(model: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """``(user_vectors, item_vectors)`` as float32 numpy, or None when the
    model is not a dot-product model."""
    model = unwrap_parallel(model)
    uv = getattr(model, "user_vectors", None)
    iv = getattr(model, "item_vectors", None)
    if not (callable(uv) and callable(iv)):
        return None
    import torch

    with torch.no_grad():
        u, i = uv(), iv()
    out = []
    for name, t in (("user_vectors()", u), ("item_vectors()", i)):
        arr = (
            t.detach().to("cpu", torch.float32).numpy()
            if hasattr(t, "detach")
            else np.asarray(t, np.float32)
        )
        if arr.ndim != 2:
            raise ShapeError(f"model.{name} must be 2-dimensional, got shape {arr.shape}")
        arr = np.ascontiguousarray(arr, dtype=np.float32)
        check_finite(arr, f"model.{name}")
        out.append(arr)
    return out[0], out[1]


def score_pairs(model: Callable[..., Any], users: np.ndarray, items: np.ndarray) -> np.ndarray:
    """Scores of ``(users[k], items[k])`` as float32 numpy, computed on the
    model's device in chunks of ``CHUNK`` pairs."""
    import torch

    from gnno._torch import eval_mode, module_device

    if users.shape != items.shape:
        raise ShapeError(
            f"users and items must have the same shape, got {users.shape} and {items.shape}"
        )
    device = module_device(model)
    out = np.empty(users.shape, dtype=np.float32)
    flat_u, flat_i, flat_o = users.reshape(-1), items.reshape(-1), out.reshape(-1)
    with eval_mode(model):
        for a in range(0, flat_u.size, CHUNK):
            u = torch.from_numpy(flat_u[a : a + CHUNK]).to(device)
            i = torch.from_numpy(flat_i[a : a + CHUNK]).to(device)
            s = model(u, i)
            if not hasattr(s, "shape") or tuple(s.shape) != tuple(u.shape):
                raise ShapeError(
                    f"model(users, items) must return one score per pair, shape {tuple(u.shape)}, "
                    f"got {getattr(s, 'shape', type(s).__name__)}"
                )
            flat_o[a : a + CHUNK] = s.detach().to("cpu", torch.float32).numpy()
    bad = ~np.isfinite(flat_o)
    if bad.any():
        k = int(np.argmax(bad))
        raise NonFiniteError(
            f"model(users, items) must return finite scores, got {flat_o[k]} "
            f"for user {int(flat_u[k])} and item {int(flat_i[k])}"
        )
    return out


def require_model(model: Any) -> Any:
    """``model`` (looked through DDP / DataParallel), or an error when there
    is none."""
    if model is None or not callable(model):
        raise GnnoError(
            "refresh needs the model: a torch module with forward(users, items) or a callable"
        )
    return unwrap_parallel(model)
