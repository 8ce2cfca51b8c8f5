"""The ``gnno`` command line: ``gnno train`` and ``gnno evaluate``.

``gnno train`` trains GMF with a registered sampler and reports the test
metrics of the epoch chosen on a validation split. The protocol follows the
data format:

* ``ncf`` (``--data`` is the prefix of ``.train.rating[.gz]``,
  ``.test.rating``, ``.test.negative``): the NCF test, each target ranked
  against its 99 listed negatives (HR/NDCG @1, 3, 10).
* ``lightgcn`` (a folder with ``train.txt`` and ``test.txt``): full ranking
  (recall/NDCG/precision @20).
* ``movielens`` / ``csv``: the latest interaction of each user is the test
  (``leave_one_out``), then full ranking (HR/NDCG @10, recall/NDCG/precision @20).
* no ``--data``: the built-in synthetic data set, full ranking @20.

Validation for model selection always comes out of the training data (one
interaction per user, ``leave_one_out`` on train) under the test's protocol
(for ``ncf``: 99 uniformly drawn negatives), never from the test set.

Errors in arguments or files print one line, ``gnno: error: ...``, and exit
with status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gnno import protocols
from gnno.exceptions import GnnoError
from gnno.protocols import FORMATS, Splits

LOSSES = ("bpr", "group")
DEFAULT_SAMPLER = "gain"

#: Defaults by (protocol, loss); the first match wins, ``"*"`` matches all.
#: ncf + bpr: from the ML-1M (NCF split) ablations of ``benches/study.py``
#: (``docs/RESULTS.md``): with the gain sampler, lr 3e-3 beat 1e-3 at the
#: same number of epochs and an L2 weight decay of 1e-6 did not help; GMF
#: d=32 with the gain or DNS sampler reaches HR@10 ≈ 0.69 (the NCF paper's
#: GMF: ≈ 0.70).
TRAIN_DEFAULTS: list[tuple[str, str, dict[str, Any]]] = [
    ("ncf", "bpr", {"lr": 3e-3, "weight_decay": 0.0, "batch_size": 1024, "epochs": 40}),
    ("synthetic", "group", {"lr": 3e-3, "weight_decay": 0.0, "batch_size": 256, "epochs": 40}),
    ("*", "bpr", {"lr": 1e-3, "weight_decay": 1e-6, "batch_size": 1024, "epochs": 40}),
    ("*", "group", {"lr": 1e-3, "weight_decay": 1e-6, "batch_size": 256, "epochs": 40}),
]
COMMON_DEFAULTS: dict[str, Any] = {
    "dim": 32,
    "patience": 10,
    "negatives": 1,
    "positives_per_group": 8,
    "negatives_per_user": 8,
    "margin": 1.0,
    "seed": 0,
}
# What a resumed run may change; everything else must match the saved run.
_RESUME_FREE = {"epochs", "device", "threads", "progress", "patience"}
# Options stored in config.json (and so fixed for a resume).
_CONFIG_KEYS = (
    "data",
    "format",
    "sampler",
    "sampler_options",
    "loss",
    "dim",
    "lr",
    "weight_decay",
    "batch_size",
    "epochs",
    "patience",
    "negatives",
    "positives_per_group",
    "negatives_per_user",
    "margin",
    "seed",
    "user_col",
    "item_col",
    "sep",
)


class UsageError(Exception):
    """A bad command line: reported as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # one line, no usage dump
        raise UsageError(message)


def default_sampler() -> str:
    return DEFAULT_SAMPLER


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="gnno", description="Hard-negative sampling for recommender training.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    t = sub.add_parser(
        "train",
        help="train GMF with a negative sampler and report test metrics",
        description="Train GMF with a negative sampler; the epoch is chosen on a validation "
        "split held out from the training data, then the test is evaluated once.",
    )
    t.add_argument("--data", metavar="PATH", help="data set (default: built-in synthetic data)")
    t.add_argument("--format", choices=FORMATS, help="format of --data (default: guessed)")
    t.add_argument(
        "--sampler", metavar="NAME", help="negative sampler (default: gain if available)"
    )
    t.add_argument(
        "--sampler-option",
        "-S",
        action="append",
        metavar="KEY=VALUE",
        dest="sampler_options",
        help="keyword for the sampler's constructor (repeatable)",
    )
    t.add_argument("--loss", choices=LOSSES, help="bpr or group (default: group)")
    t.add_argument("--epochs", type=int, help="number of epochs")
    t.add_argument("--dim", type=int, help="embedding size (default 32)")
    t.add_argument("--lr", type=float, help="Adam learning rate")
    t.add_argument("--weight-decay", type=float, help="Adam L2 weight decay")
    t.add_argument("--batch-size", type=int, help="pairs (bpr) or user groups (group) per step")
    t.add_argument("--negatives", type=int, help="negatives per pair for bpr (default 1)")
    t.add_argument("--positives-per-group", type=int, help="group loss: positives per group")
    t.add_argument("--negatives-per-user", type=int, help="group loss: negatives per group")
    t.add_argument("--margin", type=float, help="group loss: hinge margin (default 1.0)")
    t.add_argument("--patience", type=int, help="early-stopping patience in epochs (default 10)")
    t.add_argument("--seed", type=int, help="random seed (default 0)")
    _add_runtime_options(t)
    t.add_argument("--out", metavar="DIR", help="write log.jsonl, metrics.json, checkpoint here")
    t.add_argument("--resume", action="store_true", help="continue the run saved in --out")
    t.add_argument("--user-col", help="csv: user column (default: user)")
    t.add_argument("--item-col", help="csv: item column (default: item)")
    t.add_argument("--sep", help="csv: field separator (default: ,)")

    e = sub.add_parser(
        "evaluate",
        help="re-evaluate the model of a saved run",
        description="Evaluate the best model saved by 'gnno train --out DIR' on its test data.",
    )
    e.add_argument("--out", metavar="DIR", required=True, help="the folder of a gnno train run")
    _add_runtime_options(e)
    return parser


def _add_runtime_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", help="torch device (default: cuda if available, else cpu)")
    p.add_argument(
        "--threads",
        type=int,
        help="torch CPU threads (default 1: GMF's small steps are fastest single-threaded)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``gnno`` console script; returns the exit status."""
    try:
        args = build_parser().parse_args(argv)
        if args.command == "train":
            return _train(args)
        return _evaluate(args)
    except SystemExit as stop:  # --help
        return int(stop.code or 0)
    except KeyboardInterrupt:
        print("gnno: interrupted", file=sys.stderr)
        return 130
    except (UsageError, GnnoError, OSError, ValueError, EOFError, pickle.UnpicklingError) as err:
        message = " ".join(str(err).split()) or type(err).__name__
        print(f"gnno: error: {message}", file=sys.stderr)
        return 2


# -- gnno train ------------------------------------------------------------------


def _train(args: argparse.Namespace) -> int:
    out = Path(args.out) if args.out else None
    given = {k: getattr(args, k) for k in _CONFIG_KEYS if getattr(args, k, None) is not None}
    if "sampler_options" in given:
        given["sampler_options"] = _parse_options(given["sampler_options"])
    if "data" in given:
        # Absolute, so that 'gnno evaluate --out DIR' works from anywhere.
        given["data"] = os.path.abspath(given["data"])
    if args.resume:
        if out is None:
            raise UsageError("--resume needs --out DIR")
        config = _load_config(out)
        for key, value in given.items():
            if key not in _RESUME_FREE and _normal(value) != _normal(config.get(key)):
                raise UsageError(
                    f"--{key.replace('_', '-')} {value} differs from the saved run's "
                    f"{config.get(key)!r}; only --epochs, --patience, --device, --threads "
                    "may change on --resume"
                )
        config.update({k: v for k, v in given.items() if k in _RESUME_FREE})
    else:
        config = _complete_config(given)
    _check_config(config)

    torch = _setup_torch(args)
    device = _device(torch, args.device)
    data = load_splits(config)

    from gnno.models import GMF
    from gnno.samplers import build_sampler
    from gnno.training import Trainer

    torch.manual_seed(config["seed"])
    model = GMF(data.n_users, data.n_items, config["dim"])
    try:
        sampler = build_sampler(
            config["sampler"], data.fit, seed=config["seed"], **config["sampler_options"]
        )
    except TypeError as err:  # an option the sampler's constructor does not take
        raise UsageError(f"sampler {config['sampler']!r}: {err}") from None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        if not args.resume:
            _write_json(out / "config.json", config)
    trainer = Trainer(
        model,
        data.fit,
        sampler,
        loss=config["loss"],
        lr=config["lr"],
        weight_decay=config["weight_decay"],
        batch_size=config["batch_size"],
        epochs=config["epochs"],
        device=device,
        seed=config["seed"],
        evaluator=data.validate,
        metric=data.metric,
        patience=config["patience"],
        negatives_per_pair=config["negatives"],
        positives_per_group=config["positives_per_group"],
        negatives_per_user=config["negatives_per_user"],
        margin=config["margin"],
        log_path=None if out is None else out / "log.jsonl",
        checkpoint_dir=out,
        progress=not args.no_progress,
        ground_truth=data.ground_truth,
    )
    started = time.perf_counter()
    result = trainer.fit(resume=bool(args.resume))
    test_metrics = data.test(model)

    seconds = {
        key: sum(h["seconds"][key] for h in result.history)
        for key in ("sampling", "training", "evaluation")
    }
    fn_rates = [h["false_negative_rate"] for h in result.history if "false_negative_rate" in h]
    summary = {
        "data": data.name,
        "protocol": data.protocol,
        "sampler": config["sampler"],
        "loss": config["loss"],
        "test": test_metrics,
        "validation": result.best_metrics,
        "metric": result.metric,
        "best_epoch": result.best_epoch,
        "epochs_run": result.epochs_run,
        "stopped_early": result.stopped_early,
        "seconds": seconds,
        "seconds_per_epoch": (
            sum(h["seconds"]["total"] for h in result.history) / max(1, len(result.history))
        ),
        "false_negative_rate": float(np.mean(fn_rates)) if fn_rates else None,
        "wall_seconds": time.perf_counter() - started,
    }
    if out is not None:
        torch.save(model.state_dict(), out / "model.pt")
        _write_json(out / "metrics.json", summary)
    _print_table(config, data, summary)
    return 0


def _complete_config(given: dict[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = dict(given)
    if config.get("format") and not config.get("data"):
        raise UsageError("--format needs --data")
    if config.get("data") and not config.get("format"):
        config["format"] = guess_format(config["data"])
    config.setdefault("data", None)
    config.setdefault("format", None)
    config.setdefault("sampler", default_sampler())
    config.setdefault("loss", "group")
    config.setdefault("sampler_options", {})
    protocol = config["format"] or "synthetic"
    for fmt, loss, values in TRAIN_DEFAULTS:
        if fmt in (protocol, "*") and loss in (config["loss"], "*"):
            for key, value in values.items():
                config.setdefault(key, value)
            break
    for key, value in COMMON_DEFAULTS.items():
        config.setdefault(key, value)
    if config["format"] == "csv":
        config.setdefault("user_col", "user")
        config.setdefault("item_col", "item")
        config.setdefault("sep", ",")
    return config


def _check_config(config: dict[str, Any]) -> None:
    from gnno.samplers import SAMPLERS

    if config["sampler"] not in SAMPLERS:
        raise UsageError(
            f"unknown sampler {config['sampler']!r}; choose one of {', '.join(SAMPLERS)}"
        )
    for key in ("epochs", "dim", "batch_size", "negatives", "positives_per_group"):
        if config[key] < 1:
            raise UsageError(f"--{key.replace('_', '-')} must be at least 1, got {config[key]}")
    if config["negatives_per_user"] < 1:
        raise UsageError(
            f"--negatives-per-user must be at least 1, got {config['negatives_per_user']}"
        )
    if config["patience"] < 1:
        raise UsageError(f"--patience must be at least 1, got {config['patience']}")
    if config["seed"] < 0:
        raise UsageError(f"--seed must be non-negative, got {config['seed']}")
    if not config["lr"] > 0:
        raise UsageError(f"--lr must be positive, got {config['lr']}")
    if config["weight_decay"] < 0:
        raise UsageError(f"--weight-decay must be non-negative, got {config['weight_decay']}")


def load_splits(config: dict[str, Any]) -> Splits:
    """The splits and evaluators of ``config``'s data (``gnno.protocols``)."""
    return protocols.load(
        config["data"],
        config["format"],
        seed=int(config["seed"]),
        user_col=config.get("user_col", "user"),
        item_col=config.get("item_col", "item"),
        sep=config.get("sep", ","),
    )


def guess_format(path: str) -> str:
    """The format of ``path`` from the files there (``--format`` overrides)."""
    p = Path(path)
    if p.is_dir():
        if (p / "train.txt").is_file():
            return "lightgcn"
        if (p / "ratings.dat").is_file() or (p / "u.data").is_file():
            return "movielens"
    elif p.is_file():
        if p.name in ("ratings.dat", "u.data"):
            return "movielens"
        if p.suffix.lower() in (".csv", ".tsv"):
            return "csv"
    elif any(Path(str(p) + s).is_file() for s in (".train.rating", ".train.rating.gz")):
        return "ncf"
    if not p.exists() and not Path(str(p) + ".test.rating").exists():
        raise UsageError(f"--data {path}: no such file or directory")
    raise UsageError(f"cannot tell the format of {path}; pass --format ({', '.join(FORMATS)})")


# -- gnno evaluate -----------------------------------------------------------------


def _evaluate(args: argparse.Namespace) -> int:
    out = Path(args.out)
    config = _load_config(out)
    model_path = out / "model.pt"
    if not model_path.is_file():
        raise GnnoError(f"{out} has no model.pt: the run has not finished")
    torch = _setup_torch(args)
    device = _device(torch, args.device)
    data = load_splits(config)

    from gnno.models import GMF

    model = GMF(data.n_users, data.n_items, config["dim"])
    try:
        state = torch.load(model_path, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    except (RuntimeError, KeyError) as err:
        raise GnnoError(f"cannot load {model_path}: {err}") from None
    model.to(device)
    metrics = data.test(model)
    saved = _read_json(out / "metrics.json") if (out / "metrics.json").is_file() else {}
    summary = {
        "data": data.name,
        "protocol": data.protocol,
        "test": metrics,
        "validation": saved.get("validation", {}),
        "best_epoch": saved.get("best_epoch"),
        "epochs_run": saved.get("epochs_run"),
    }
    _print_table(config, data, summary)
    return 0


# -- helpers ------------------------------------------------------------------------


def _setup_torch(args: argparse.Namespace) -> Any:
    import torch

    threads = 1 if args.threads is None else args.threads
    if threads < 1:
        raise UsageError(f"--threads must be at least 1, got {threads}")
    torch.set_num_threads(threads)
    return torch


def _device(torch: Any, name: str | None) -> Any:
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UsageError(f"--device {name!r} is not a torch device") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device {name}: CUDA is not available")
    return device


def _load_config(out: Path) -> dict[str, Any]:
    path = out / "config.json"
    if not path.is_file():
        raise GnnoError(f"{out} holds no gnno run (no config.json)")
    config = _read_json(path)
    missing = [
        k for k in _CONFIG_KEYS if k not in config and k not in ("user_col", "item_col", "sep")
    ]
    if missing:
        raise GnnoError(f"{path} lacks {', '.join(missing)}")
    return config


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise GnnoError(f"{path} is not valid JSON: {err}") from None
    if not isinstance(value, dict):
        raise GnnoError(f"{path} does not hold a JSON object")
    return value


def _write_json(path: Path, value: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(value, indent=2, sort_keys=False) + "\n")
    os.replace(tmp, path)


def _parse_options(items: list[str]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--sampler-option expects KEY=VALUE, got {item!r}")
        options[key.replace("-", "_")] = _parse_value(value)
    return options


def _parse_value(text: str) -> Any:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "none":
        return None
    return text


def _normal(value: Any) -> Any:
    # Compare CLI values with JSON-loaded ones (tuples become lists there).
    return json.loads(json.dumps(value))


def _print_table(config: dict[str, Any], data: Splits, summary: dict[str, Any]) -> None:
    test = summary["test"]
    valid = summary.get("validation") or {}
    print(
        f"GMF d={config['dim']} · sampler {config['sampler']} · loss {config['loss']} · "
        f"{data.name} · {data.protocol}"
    )
    width = max(len(k) for k in test)
    print(f"{'metric':<{width}}  {'validation':>10}  {'test':>8}")
    for key, value in test.items():
        v = f"{valid[key]:.4f}" if key in valid else "-"
        print(f"{key:<{width}}  {v:>10}  {value:>8.4f}")
    parts = []
    if summary.get("best_epoch") is not None:
        parts.append(f"best epoch {summary['best_epoch'] + 1} of {summary['epochs_run']}")
    if "seconds" in summary:
        s = summary["seconds"]
        parts.append(
            f"sampling {s['sampling']:.1f}s · training {s['training']:.1f}s · "
            f"evaluation {s['evaluation']:.1f}s"
        )
    if summary.get("false_negative_rate") is not None:
        parts.append(f"false negatives {summary['false_negative_rate']:.5f}")
    if parts:
        print(" · ".join(parts))


__all__ = ["main", "build_parser", "load_splits", "guess_format", "TRAIN_DEFAULTS"]
