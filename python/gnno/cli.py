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

Under ``torchrun`` (``WORLD_SIZE`` > 1) ``gnno train`` trains one model on
every process with DistributedDataParallel (``gnno.training.distributed``):
each rank holds a ``ShardedSampler`` shard, rank 0 evaluates, prints and
writes the run's files, and ``config.json`` records ``world_size``.

Errors in arguments or files print one line, ``gnno: error: ...``, and exit
with status 2.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pickle
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gnno import protocols, recipes
from gnno.exceptions import GnnoError
from gnno.protocols import FORMATS, Splits

LOSSES = ("bpr", "softmax", "group", "group_softmax")
DEFAULT_SAMPLER = recipes.DEFAULT_SAMPLER

# What a resumed run may change; everything else must match the saved run.
_RESUME_FREE = {
    "epochs",
    "device",
    "threads",
    "progress",
    "patience",
    "prefetch",
    "sampler_threads",
}
# Options stored in config.json (and so fixed for a resume, but for _RESUME_FREE).
_CONFIG_KEYS = (
    "data",
    "format",
    "sampler",
    "sampler_options",
    "loss",
    "dim",
    "lr",
    "weight_decay",
    "l2",
    "temperature",
    "batch_size",
    "epochs",
    "patience",
    "negatives",
    "positives_per_group",
    "negatives_per_user",
    "margin",
    "seed",
    "false_negatives",
    "validation_users",
    "refresh_every",
    "dense",
    "item_bias",
    "user_col",
    "item_col",
    "sep",
)
#: Options that may be missing from an older run's config.json, with the
#: value that run used.
_CONFIG_FALLBACK: dict[str, Any] = {
    "user_col": None,
    "item_col": None,
    "sep": None,
    "l2": 0.0,
    "temperature": 1.0,
    "refresh_every": None,
    "dense": True,
    "item_bias": False,
    "false_negatives": 0.0,
    "validation_users": None,
}
#: The type each config.json value must have (a hand-edited file is checked).
_CONFIG_TYPES: dict[str, tuple[type, ...]] = {
    "data": (str, type(None)),
    "format": (str, type(None)),
    "sampler": (str,),
    "sampler_options": (dict,),
    "loss": (str,),
    "dim": (int,),
    "lr": (int, float),
    "weight_decay": (int, float),
    "l2": (int, float),
    "temperature": (int, float),
    "batch_size": (int,),
    "epochs": (int,),
    "patience": (int,),
    "negatives": (int,),
    "positives_per_group": (int,),
    "negatives_per_user": (int,),
    "margin": (int, float),
    "seed": (int,),
    "false_negatives": (int, float),
    "validation_users": (int, type(None)),
    "refresh_every": (int, type(None)),
    "dense": (bool,),
    "item_bias": (bool,),
    "user_col": (str, int, type(None)),
    "item_col": (str, int, type(None)),
    "sep": (str, type(None)),
}


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
        "split held out from the training data, then the test is evaluated once. "
        "Options may also come from --config FILE (TOML or JSON, keys named like the "
        "options: 'batch-size' or 'batch_size'); flags on the command line take precedence.",
    )
    t.add_argument("--config", metavar="FILE", help="TOML or JSON file holding any option")
    t.add_argument(
        "--list-samplers", action="store_true", help="list the samplers, their options and defaults"
    )
    t.add_argument("--data", metavar="PATH", help="data set (default: built-in synthetic data)")
    t.add_argument("--format", choices=FORMATS, help="format of --data (default: guessed)")
    t.add_argument(
        "--sampler", metavar="NAME", help=f"negative sampler (default: {DEFAULT_SAMPLER})"
    )
    t.add_argument(
        "--sampler-option",
        "-S",
        action="append",
        metavar="KEY=VALUE",
        dest="sampler_options",
        help="keyword for the sampler's constructor (repeatable; see --list-samplers)",
    )
    t.add_argument("--loss", choices=LOSSES, help="bpr, softmax, group (hinge) or group_softmax")
    t.add_argument("--epochs", type=int, help="most epochs (early stopping may end sooner)")
    t.add_argument("--dim", type=int, help="embedding size")
    t.add_argument("--lr", type=float, help="learning rate (lazy Adam on sparse rows / Adam)")
    t.add_argument("--l2", type=float, help="L2 penalty on the batch's embedding rows")
    t.add_argument(
        "--weight-decay", type=float, help="Adam's weight decay on every row (needs --dense)"
    )
    t.add_argument("--dense", action="store_true", default=None, help="dense embedding updates")
    t.add_argument(
        "--item-bias", action="store_true", default=None, help="GMF with a learned bias per item"
    )
    t.add_argument("--temperature", type=float, help="softmax loss: temperature")
    t.add_argument("--batch-size", type=int, help="pairs (bpr, softmax) or user groups per step")
    t.add_argument("--negatives", type=int, help="negatives per pair for bpr and softmax")
    t.add_argument("--positives-per-group", type=int, help="group loss: positives per group")
    t.add_argument("--negatives-per-user", type=int, help="group loss: negatives per group")
    t.add_argument("--margin", type=float, help="group loss: hinge margin")
    t.add_argument("--patience", type=int, help="early-stopping patience in epochs")
    t.add_argument(
        "--refresh-every",
        type=int,
        metavar="STEPS",
        help="refresh score-based samplers every STEPS steps (besides each epoch's start)",
    )
    t.add_argument("--seed", type=int, help="random seed (default 0)")
    t.add_argument(
        "--false-negatives",
        type=float,
        metavar="FRACTION",
        help="plant this fraction of each user's training positives as known false negatives "
        "(removed from training; the log reports the drawn false-negative rate against them)",
    )
    t.add_argument(
        "--validation-users",
        type=int,
        metavar="N",
        help="evaluate validation on a seeded subset of N users (default: every user); "
        "the study's Gowalla runs use 6000",
    )
    t.add_argument(
        "--prefetch",
        type=int,
        metavar="N",
        help="batches whose negatives a background thread draws ahead (0: none; default 2)",
    )
    t.add_argument(
        "--sampler-threads", type=int, metavar="N", help="threads of gnno's sampling pool"
    )
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


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parses ``argv``; a ``train --config FILE`` is read first and its
    options parsed as if given before the command line's own."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "train" and args.config:
        from_file = _config_argv(Path(args.config), parser)
        args = parser.parse_args(["train", *from_file, *argv[1:]])
    return args


def _config_argv(path: Path, parser: argparse.ArgumentParser) -> list[str]:
    """The options in a TOML or JSON file as command-line arguments."""
    if not path.is_file():
        raise UsageError(f"--config {path}: no such file")
    text = path.read_text()
    if path.suffix.lower() == ".json":
        try:
            values = json.loads(text)
        except json.JSONDecodeError as err:
            raise UsageError(f"--config {path} is not valid JSON: {err}") from None
    else:
        try:
            import tomllib
        except ImportError:  # Python 3.10
            raise UsageError("TOML config files need Python 3.11 or newer; use JSON") from None
        try:
            values = tomllib.loads(text)
        except tomllib.TOMLDecodeError as err:
            raise UsageError(f"--config {path} is not valid TOML: {err}") from None
    if not isinstance(values, dict):
        raise UsageError(f"--config {path} must hold a table of options")
    train = next(
        a.choices["train"] for a in parser._actions if isinstance(a, argparse._SubParsersAction)
    )
    flags = {
        opt[2:].replace("-", "_"): action
        for action in train._actions
        for opt in action.option_strings
        if opt.startswith("--")
    }
    out: list[str] = []
    for key, value in values.items():
        name = str(key).replace("-", "_")
        if name == "sampler_options" and isinstance(value, dict):
            out += [x for k, v in value.items() for x in ("-S", f"{k}={_toml_scalar(v)}")]
            continue
        action = flags.get(name)
        if action is None or name in ("config", "list_samplers", "resume", "out"):
            raise UsageError(f"--config {path}: unknown or disallowed option {key!r}")
        flag = next(o for o in action.option_strings if o.startswith("--"))
        if action.nargs == 0:  # a switch
            if not isinstance(value, bool):
                raise UsageError(f"--config {path}: {key} must be true or false, got {value!r}")
            out += [flag] if value else []
        elif isinstance(value, (dict, list)):
            raise UsageError(f"--config {path}: {key} must be a single value, got {value!r}")
        else:
            out += [flag, _toml_scalar(value)]
    return out


def _toml_scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def list_samplers() -> str:
    """Each registered sampler with its options and their defaults."""
    import inspect

    from gnno.samplers import SAMPLERS

    lines = []
    for name, cls in SAMPLERS.items():
        doc = (inspect.getdoc(cls) or "").split("\n\n")[0].replace("\n", " ")
        lines.append(f"{name}  ({cls.__name__}): {doc}")
        params = inspect.signature(cls.__init__).parameters.values()
        for p in params:
            if p.name in ("self", "train") or p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
                continue
            default = "" if p.default is inspect.Parameter.empty else f" = {p.default!r}"
            lines.append(f"    -S {p.name}{default}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``gnno`` console script; returns the exit status."""
    try:
        args = parse_args(argv)
        if args.command == "train":
            if args.list_samplers:
                print(list_samplers())
                return 0
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
    from gnno.training import distributed

    ctx, rank_device = distributed.init_from_env(args.device)
    try:
        return _train_run(args, ctx, rank_device)
    finally:
        distributed.shutdown()


def _train_run(args: argparse.Namespace, ctx: Any, rank_device: Any) -> int:
    """``gnno train``, in one process (``ctx`` None) or as one rank of a
    torchrun launch (rank 0 alone prints and writes the run's files)."""
    main_rank = ctx is None or ctx.is_main
    world = 1 if ctx is None else ctx.world_size
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
                    f"{config.get(key)!r}; only --epochs, --patience, --device, --threads, "
                    "--prefetch and --sampler-threads may change on --resume"
                )
        config.update({k: v for k, v in given.items() if k in _RESUME_FREE})
        _check_world_size(config, world)
    else:
        config = _complete_config(given)
        config["world_size"] = world
    _check_config(config)

    torch = _setup_torch(args)
    device = _device(torch, args.device) if rank_device is None else rank_device
    prefetch = 2 if args.prefetch is None else args.prefetch
    if prefetch < 0:
        raise UsageError(f"--prefetch must be at least 0, got {prefetch}")
    if args.sampler_threads is not None:
        import gnno

        gnno.set_num_threads(args.sampler_threads)
    data = load_splits(config)

    from gnno.samplers import build_sampler
    from gnno.training import Trainer

    torch.manual_seed(config["seed"])
    model = recipes.build_model(config, data.n_users, data.n_items)
    try:
        if ctx is None:
            sampler = build_sampler(
                config["sampler"], data.fit, seed=config["seed"], **config["sampler_options"]
            )
        else:
            from gnno.samplers import ShardedSampler

            sampler = ShardedSampler(
                config["sampler"], data.fit, seed=config["seed"], **config["sampler_options"]
            )
    except TypeError as err:  # an option the sampler's constructor does not take
        raise UsageError(f"sampler {config['sampler']!r}: {err}") from None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        if not args.resume and main_rank:
            _write_json(out / "config.json", config)
    trainer = Trainer(
        model,
        data.fit,
        sampler,
        loss=config["loss"],
        device=device,
        seed=config["seed"],
        evaluator=data.validate,
        metric=data.metric,
        log_path=None if out is None else out / "log.jsonl",
        checkpoint_dir=out,
        progress=not args.no_progress,
        ground_truth=data.ground_truth,
        prefetch=prefetch,
        **recipes.trainer_options(config),
    )
    started = time.perf_counter()
    result = trainer.fit(resume=bool(args.resume))
    if not main_rank:
        return 0
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
        "world_size": world,
    }
    if out is not None:
        torch.save(model.state_dict(), out / "model.pt")
        _write_json(out / "metrics.json", summary)
    _print_table(config, data, summary)
    return 0


def _check_world_size(config: dict[str, Any], world: int) -> None:
    """A run resumes only on as many processes as it was started with (each
    rank's sampler state holds its shard of the users)."""
    saved = config.get("world_size", 1)
    if saved != world:
        raise UsageError(
            f"--resume: the saved run trained on {saved} process(es) (world_size in "
            f"config.json), this launch has {world}; resume with the same number of processes"
        )


def _complete_config(given: dict[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = dict(given)
    if config.get("format") and not config.get("data"):
        raise UsageError("--format needs --data")
    if config.get("data") and not config.get("format"):
        config["format"] = guess_format(config["data"])
    config.setdefault("data", None)
    config.setdefault("format", None)
    config.setdefault("sampler", default_sampler())
    config.setdefault("loss", recipes.DEFAULT_LOSS)
    config.setdefault("sampler_options", {})
    for key, value in recipes.recipe(config["format"], config["loss"]).items():
        config.setdefault(key, value)
    config.setdefault("seed", 0)
    config.setdefault("false_negatives", 0.0)
    config.setdefault("validation_users", None)
    if config["format"] == "csv":
        config.setdefault("user_col", "user")
        config.setdefault("item_col", "item")
        config.setdefault("sep", ",")
    return config


def _check_config(config: dict[str, Any]) -> None:
    """Checks the types and ranges of a complete config (from the command
    line, or a hand-edited config.json on --resume / evaluate)."""
    from gnno.samplers import SAMPLERS

    for key, types in _CONFIG_TYPES.items():
        value = config.get(key)
        bad_bool = isinstance(value, bool) and bool not in types
        if not isinstance(value, types) or bad_bool:
            want = " or ".join("null" if t is type(None) else t.__name__ for t in types)
            raise UsageError(f"option {key} must be {want}, got {value!r}")
    if config["sampler"] not in SAMPLERS:
        raise UsageError(
            f"unknown sampler {config['sampler']!r}; choose one of {', '.join(SAMPLERS)}"
        )
    if config["loss"] not in LOSSES:
        raise UsageError(f"unknown loss {config['loss']!r}; choose one of {', '.join(LOSSES)}")
    if config["format"] is not None and config["format"] not in FORMATS:
        raise UsageError(f"unknown format {config['format']!r}; choose one of {', '.join(FORMATS)}")
    for key in (
        "epochs",
        "dim",
        "batch_size",
        "negatives",
        "positives_per_group",
        "negatives_per_user",
        "patience",
    ):
        if config[key] < 1:
            raise UsageError(f"--{key.replace('_', '-')} must be at least 1, got {config[key]}")
    if config["refresh_every"] is not None and config["refresh_every"] < 1:
        raise UsageError(f"--refresh-every must be at least 1, got {config['refresh_every']}")
    if not 0 <= config["seed"] < 2**63:
        raise UsageError(f"--seed must be in [0, 2**63), got {config['seed']}")
    for key in ("lr", "temperature"):
        if not config[key] > 0 or not math.isfinite(config[key]):
            raise UsageError(f"--{key} must be positive and finite, got {config[key]}")
    if not 0 <= config["false_negatives"] < 1:
        raise UsageError(f"--false-negatives must be in [0, 1), got {config['false_negatives']}")
    if config["validation_users"] is not None and config["validation_users"] < 1:
        raise UsageError(f"--validation-users must be at least 1, got {config['validation_users']}")
    for key in ("weight_decay", "l2", "margin"):
        if not config[key] >= 0 or not math.isfinite(config[key]):
            raise UsageError(
                f"--{key.replace('_', '-')} must be non-negative and finite, got {config[key]}"
            )
    if config["weight_decay"] and not config["dense"]:
        raise UsageError(
            "--weight-decay decays every embedding row and needs --dense; "
            "the sparse path regularises with --l2"
        )


def load_splits(config: dict[str, Any]) -> Splits:
    """The splits and evaluators of ``config``'s data (``gnno.protocols``)."""
    return protocols.load(
        config["data"],
        config["format"],
        seed=int(config["seed"]),
        user_col=config.get("user_col", "user"),
        item_col=config.get("item_col", "item"),
        sep=config.get("sep", ","),
        false_negative_fraction=float(config["false_negatives"]),
        validation_users=config.get("validation_users"),
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

    model = recipes.build_model(dict(config, dense=True), data.n_users, data.n_items)
    try:
        state = torch.load(model_path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict):
            raise TypeError(f"it holds a {type(state).__name__}, not a state dict")
        model.load_state_dict(state)
    except (RuntimeError, KeyError, TypeError, pickle.UnpicklingError, EOFError) as err:
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
    for key, value in _CONFIG_FALLBACK.items():
        config.setdefault(key, value)
    missing = [k for k in _CONFIG_KEYS if k not in config]
    if missing:
        raise GnnoError(f"{path} lacks {', '.join(missing)}")
    try:
        _check_config(config)
    except UsageError as err:
        raise GnnoError(f"{path}: {err}") from None
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


__all__ = ["main", "build_parser", "load_splits", "guess_format"]
