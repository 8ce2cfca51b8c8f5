"""``gnno train`` / ``gnno evaluate`` run in-process on tiny data files
(and a small instance of the built-in synthetic data set)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import gnno
from gnno import Interactions
from gnno.cli import _complete_config, default_sampler, main

ROOT = Path(__file__).resolve().parents[1]


def _tiny_split(seed=0, n_users=30, n_items=24):
    """Two communities, each liking half of the items; 6 train + 2 test each."""
    rng = np.random.default_rng(seed)
    tu, ti, su, si = [], [], [], []
    for u in range(n_users):
        liked = rng.choice(n_items // 2, 8, replace=False) + (n_items // 2) * (u % 2)
        tu += [u] * 6
        ti += liked[:6].tolist()
        su += [u] * 2
        si += liked[6:].tolist()
    return (
        Interactions.from_pairs(tu, ti, n_users, n_items),
        Interactions.from_pairs(su, si, n_users, n_items),
    )


@pytest.fixture
def small_synthetic(monkeypatch):
    """The built-in synthetic data set at a size that trains in a second."""
    from gnno import datasets

    real = datasets.synthetic

    def small(seed=0, **kwargs):
        return real(n_users=120, n_items=80, mean_activity=12, seed=seed, **kwargs)

    monkeypatch.setattr(datasets, "synthetic", small)
    return small


# -- tiny files ---------------------------------------------------------------------


def write_lightgcn(folder: Path) -> Path:
    train, test = _tiny_split()
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in (("train.txt", train), ("test.txt", test)):
        lines = [" ".join(map(str, [u, *data.row(u).tolist()])) for u in range(data.n_users)]
        (folder / name).write_text("\n".join(lines) + "\n")
    return folder


def write_ncf(folder: Path) -> str:
    train, test = _tiny_split()
    rng = np.random.default_rng(5)
    folder.mkdir(parents=True, exist_ok=True)
    prefix = str(folder / "tiny")
    u, i = train.to_pairs()
    Path(prefix + ".train.rating").write_text(
        "".join(f"{a}\t{b}\t5\t0\n" for a, b in zip(u, i, strict=True))
    )
    targets = [int(test.row(x)[0]) for x in range(test.n_users)]
    Path(prefix + ".test.rating").write_text(
        "".join(f"{x}\t{t}\t5\t0\n" for x, t in enumerate(targets))
    )
    lines = []
    for x, t in enumerate(targets):
        seen = set(train.row(x).tolist()) | {t}
        pool = [j for j in range(train.n_items) if j not in seen]
        negs = rng.choice(pool, 9)
        lines.append(f"({x},{t})\t" + "\t".join(map(str, negs)))
    Path(prefix + ".test.negative").write_text("\n".join(lines) + "\n")
    return prefix


FAST = ["--no-progress", "--sampler", "uniform", "--dim", "8", "--lr", "0.05"]


# -- gnno train -------------------------------------------------------------------------


def test_train_defaults_on_synthetic(small_synthetic, capsys):
    assert main(["train", "--epochs", "2", "--no-progress"]) == 0
    out = capsys.readouterr().out
    from gnno.recipes import DEFAULT_LOSS

    assert f"sampler {default_sampler()}" in out and f"loss {DEFAULT_LOSS}" in out
    assert "synthetic" in out
    assert "recall@20" in out and "ndcg@20" in out and "precision@20" in out


def test_train_lightgcn_writes_outputs_and_evaluates_again(tmp_path, capsys):
    data = write_lightgcn(tmp_path / "lgcn")
    out = tmp_path / "run"
    rc = main(
        ["train", "--data", str(data), "--epochs", "3", "--loss", "bpr", "--out", str(out), *FAST]
    )
    assert rc == 0
    table = capsys.readouterr().out
    log = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [0, 1, 2]
    assert {"sampling", "training", "evaluation"} <= set(log[0]["seconds"])
    assert 0.0 <= log[0]["false_negative_rate"] <= 1.0
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["test"]) == {"recall@20", "ndcg@20", "precision@20", "hr@20"}
    assert metrics["protocol"] == "full ranking" and metrics["metric"] == "recall@20"
    assert (out / "checkpoint.pt").is_file() and (out / "model.pt").is_file()
    assert f"{metrics['test']['recall@20']:.4f}" in table
    # The test set is never used for model selection: validation differs.
    assert metrics["validation"] != metrics["test"]

    assert main(["evaluate", "--out", str(out)]) == 0
    again = capsys.readouterr().out
    for key, value in metrics["test"].items():
        assert f"{key}" in again and f"{value:.4f}" in again


def test_train_ncf_uses_the_sampled_protocol(tmp_path, capsys):
    prefix = write_ncf(tmp_path / "ncf")
    out = tmp_path / "run"
    rc = main(
        [
            "train",
            "--data",
            prefix,
            "--format",
            "ncf",
            "--epochs",
            "2",
            "--loss",
            "bpr",
            "--out",
            str(out),
            *FAST,
        ]
    )
    assert rc == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["test"]) == {
        f"{m}@{k}" for m in ("hr", "ndcg", "recall") for k in (1, 3, 10)
    }
    # Each target against 9 listed negatives: HR@10 is 1 for every user.
    assert metrics["test"]["hr@10"] == 1.0
    assert metrics["metric"] == "ndcg@10"
    assert "hr@3" in capsys.readouterr().out


def test_train_csv_leave_one_out(tmp_path):
    train, test = _tiny_split()
    u, i = np.concatenate([train.to_pairs(), test.to_pairs()], axis=1)
    csv = tmp_path / "log.csv"
    csv.write_text("item,user\n" + "".join(f"{b},{a}\n" for a, b in zip(u, i, strict=True)))
    out = tmp_path / "run"
    assert main(["train", "--data", str(csv), "--epochs", "1", "--out", str(out), *FAST]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["test"]) >= {"hr@10", "ndcg@10", "recall@20"}


def test_resume_matches_a_straight_run(tmp_path):
    data = str(write_lightgcn(tmp_path / "lgcn"))
    common = ["train", "--data", data, "--loss", "group", *FAST]
    assert main([*common, "--epochs", "3", "--out", str(tmp_path / "a")]) == 0
    assert main([*common, "--epochs", "1", "--out", str(tmp_path / "b")]) == 0
    assert (
        main(["train", "--resume", "--out", str(tmp_path / "b"), "--epochs", "3", "--no-progress"])
        == 0
    )
    a = json.loads((tmp_path / "a" / "metrics.json").read_text())
    b = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert a["test"] == b["test"] and a["validation"] == b["validation"]
    log = (tmp_path / "b" / "log.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in log] == [0, 1, 2]


def test_defaults_come_from_the_recipes():
    from gnno import recipes

    ncf = _complete_config({"data": "x", "format": "ncf", "loss": "bpr"})
    want = recipes.recipe("ncf", "bpr")
    assert {k: ncf[k] for k in want} == want
    assert _complete_config({})["loss"] == recipes.DEFAULT_LOSS
    # The command line overrides a recipe value.
    assert _complete_config({"dim": 7})["dim"] == 7


def test_default_sampler_is_registered():
    from gnno import samplers

    assert default_sampler() in samplers.SAMPLERS


# -- errors: one line on stderr, exit status 2 -----------------------------------------------


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["train", "--sampler", "nope"], "unknown sampler 'nope'"),
        (["train", "--format", "ncf"], "--format needs --data"),
        (["train", "--data", "/no/such/place"], "no such file"),
        (["train", "--data", "{tmp}/lgcn", "--format", "ncf"], "{tmp}/lgcn"),
        (["train", "--lr", "-1"], "--lr must be positive"),
        (["train", "--epochs", "zero"], "invalid int value"),
        (["train", "--bogus"], "unrecognized arguments: --bogus"),
        (["train", "--resume"], "--resume needs --out"),
        (["train", "--resume", "--out", "{tmp}/empty"], "no gnno run"),
        (["train", "--device", "nonsense"], "not a torch device"),
        (["train", "--seed", "1e23"], "invalid int value"),
        (["train", "--seed", str(2**64)], "--seed must be in"),
        (["train", "--margin", "-5"], "--margin must be non-negative"),
        (["train", "--loss", "bpr", "--weight-decay", "0.1"], "needs --dense"),
        (["train", "--refresh-every", "0"], "--refresh-every must be at least 1"),
        (["train", "--temperature", "0"], "--temperature must be positive"),
        (["train", "--prefetch", "-1"], "--prefetch must be at least 0"),
        (["train", "--sampler-threads", "0"], "thread"),
        (["train", "--config", "/no/such.toml"], "no such file"),
        (["train", "-S", "beta"], "KEY=VALUE"),
        (["train", "-S", "beta=0.5"], "beta"),  # the uniform sampler takes no beta
        (["evaluate", "--out", "{tmp}/empty"], "no gnno run"),
        (["evaluate"], "--out"),
        ([], "required"),
    ],
)
def test_errors_are_one_line(tmp_path, capsys, argv, needle):
    write_lightgcn(tmp_path / "lgcn")
    (tmp_path / "empty").mkdir()
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    extra = ["--sampler", "uniform"] if argv[:1] == ["train"] and "--sampler" not in argv else []
    assert main([*argv, *extra, "--no-progress"] if argv[:1] == ["train"] else argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("gnno: error: "), err
    assert needle.replace("{tmp}", str(tmp_path)) in err
    assert "Traceback" not in err


def test_resume_refuses_changed_settings(tmp_path, capsys):
    data = str(write_lightgcn(tmp_path / "lgcn"))
    out = str(tmp_path / "run")
    assert main(["train", "--data", data, "--epochs", "1", "--out", out, *FAST]) == 0
    capsys.readouterr()
    assert main(["train", "--resume", "--out", out, "--lr", "0.5", "--no-progress"]) == 2
    assert "--lr 0.5 differs" in capsys.readouterr().err


def test_python_dash_m_gnno():
    # The gnno this test imported (installed or editable), not the source tree,
    # which lacks the compiled module.
    env = {"PYTHONPATH": str(Path(gnno.__file__).resolve().parents[1]), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-m", "gnno", "train", "--help"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "--sampler" in done.stdout and "--resume" in done.stdout


# -- options: config files, samplers, training recipe -------------------------------------


def test_config_file_with_flags_taking_precedence(tmp_path):
    data = write_lightgcn(tmp_path / "lgcn")
    toml = tmp_path / "run.toml"
    toml.write_text(
        f'data = "{data}"\nloss = "softmax"\nnegatives = 3\ntemperature = 0.5\n'
        'dim = 6\nlr = 0.05\nsampler = "dns"\nepochs = 1\n'
        "[sampler_options]\ncandidates = 3\n"
    )
    out = tmp_path / "run"
    rc = main(["train", "--config", str(toml), "--dim", "4", "--out", str(out), "--no-progress"])
    assert rc == 0
    config = json.loads((out / "config.json").read_text())
    assert config["loss"] == "softmax" and config["negatives"] == 3
    assert config["temperature"] == 0.5 and config["sampler"] == "dns"
    assert config["dim"] == 4  # the command line wins
    assert config["sampler_options"] == {"candidates": 3}
    js = tmp_path / "run.json"
    js.write_text(json.dumps({"data": str(data), "epochs": 1, "dense": True, "lr": 0.05}))
    out2 = tmp_path / "run2"
    assert main(["train", "--config", str(js), "--out", str(out2), "--no-progress"]) == 0
    assert json.loads((out2 / "config.json").read_text())["dense"] is True


@pytest.mark.parametrize(
    ("text", "suffix", "needle"),
    [
        ("bogus = 1\n", ".toml", "unknown or disallowed option 'bogus'"),
        ("epochs = [1, 2]\n", ".toml", "single value"),
        ("dense = 3\n", ".toml", "true or false"),
        ("epochs = \n", ".toml", "not valid TOML"),
        ("[1, 2]", ".json", "table of options"),
        ('{"epochs": "many"}', ".json", "invalid int value"),
    ],
)
def test_bad_config_files(tmp_path, capsys, text, suffix, needle):
    path = tmp_path / f"c{suffix}"
    path.write_text(text)
    assert main(["train", "--config", str(path), "--no-progress"]) == 2
    assert needle in capsys.readouterr().err


def test_list_samplers_names_every_sampler_and_its_options(capsys):
    from gnno.samplers import SAMPLERS

    assert main(["train", "--list-samplers"]) == 0
    out = capsys.readouterr().out
    for name in SAMPLERS:
        assert f"{name}  (" in out
    assert "-S seed = 0" in out


def test_runtime_options_and_recipe_options(tmp_path, capsys):
    import gnno

    data = write_lightgcn(tmp_path / "lgcn")
    out = tmp_path / "run"
    before = gnno.get_num_threads()
    try:
        argv = [
            "train",
            "--data",
            str(data),
            "--epochs",
            "2",
            "--loss",
            "bpr",
            "--negatives",
            "4",
            "--l2",
            "1e-4",
            "--refresh-every",
            "2",
            "--prefetch",
            "0",
            "--sampler-threads",
            "1",
            "--sampler",
            "dns",
            "--out",
            str(out),
            "--no-progress",
            "--dim",
            "4",
        ]
        assert main(argv) == 0
        assert gnno.get_num_threads() == 1
    finally:
        gnno.set_num_threads(before)
    config = json.loads((out / "config.json").read_text())
    assert config["refresh_every"] == 2 and config["l2"] == 1e-4 and config["dense"] is False
    # Runtime options may change on resume; recipe options may not.
    assert (
        main(
            [
                "train",
                "--resume",
                "--out",
                str(out),
                "--prefetch",
                "1",
                "--epochs",
                "3",
                "--no-progress",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert (
        main(["train", "--resume", "--out", str(out), "--refresh-every", "3", "--no-progress"]) == 2
    )
    assert "--refresh-every 3 differs" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        ({"dim": "32"}, "option dim must be int"),
        ({"lr": None}, "option lr must be int or float"),
        ({"sampler_options": []}, "option sampler_options must be dict"),
        ({"dense": 1}, "option dense must be bool"),
        ({"loss": "hinge"}, "unknown loss"),
    ],
)
def test_hand_edited_config_json_is_checked(tmp_path, capsys, edit, needle):
    data = write_lightgcn(tmp_path / "lgcn")
    out = tmp_path / "run"
    assert main(["train", "--data", str(data), "--epochs", "1", "--out", str(out), *FAST]) == 0
    path = out / "config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **edit}))
    capsys.readouterr()
    assert main(["evaluate", "--out", str(out)]) == 2
    assert needle in capsys.readouterr().err


def test_model_file_that_is_not_a_state_dict(tmp_path, capsys):
    import torch

    data = write_lightgcn(tmp_path / "lgcn")
    out = tmp_path / "run"
    assert main(["train", "--data", str(data), "--epochs", "1", "--out", str(out), *FAST]) == 0
    torch.save([1, 2, 3], out / "model.pt")
    capsys.readouterr()
    assert main(["evaluate", "--out", str(out)]) == 2
    assert "not a state dict" in capsys.readouterr().err


def test_every_recipe_setting_reaches_the_model_or_the_trainer():
    import inspect

    from gnno import Trainer, recipes

    settings = recipes.recipe("ncf", "softmax")
    assert set(settings) == set(recipes.TRAINER_KEYS) | set(recipes.MODEL_KEYS)
    trainer_args = inspect.signature(Trainer).parameters
    assert set(recipes.trainer_options(settings)) <= set(trainer_args)
    model = recipes.build_model(dict(settings, dim=4, item_bias=True), 3, 5)
    assert model.dim == 4 and model.item_bias is not None and model.user_embedding.sparse


def test_train_plants_false_negatives(tmp_path, capsys):
    """``--false-negatives`` removes that share of the training positives and
    logs the drawn false-negative rate against them; a bad share is refused."""
    data = write_lightgcn(tmp_path / "lgcn")
    runs = {}
    for fraction in ("0", "0.3"):
        out = tmp_path / f"run{fraction}"
        args = ["train", "--data", str(data), "--epochs", "1", "--loss", "bpr", "--out", str(out)]
        assert main([*args, "--false-negatives", fraction, *FAST]) == 0
        runs[fraction] = json.loads((out / "config.json").read_text())
        assert "false_negative_rate" in json.loads((out / "log.jsonl").read_text().splitlines()[0])
    assert runs["0"]["false_negatives"] == 0.0 and runs["0.3"]["false_negatives"] == 0.3
    from gnno import protocols

    fit = {
        f: protocols.load(str(data), "lightgcn", false_negative_fraction=float(f)).fit.nnz
        for f in ("0", "0.3")
    }
    assert fit["0.3"] < fit["0"]
    capsys.readouterr()
    for bad in ("1", "-0.1", "nan"):
        assert main(["train", "--data", str(data), "--false-negatives", bad, *FAST]) == 2
        assert "--false-negatives" in capsys.readouterr().err


def test_train_validates_on_a_subset_of_users(tmp_path, capsys, monkeypatch):
    """``--validation-users N`` reaches the protocol (the study's Gowalla
    runs validate on 6000 users), is recorded for --resume, and a count
    below 1 is refused."""
    from gnno import cli, protocols

    data = write_lightgcn(tmp_path / "lgcn")
    seen = []
    real = protocols.load

    def spy(*args, **kwargs):
        seen.append(kwargs.get("validation_users"))
        return real(*args, **kwargs)

    monkeypatch.setattr(cli.protocols, "load", spy)
    out = tmp_path / "run"
    args = ["train", "--data", str(data), "--epochs", "1", "--out", str(out)]
    assert main([*args, "--validation-users", "3", *FAST]) == 0
    assert seen == [3]
    assert json.loads((out / "config.json").read_text())["validation_users"] == 3
    capsys.readouterr()
    assert main(["train", "--data", str(data), "--validation-users", "0", *FAST]) == 2
    assert "--validation-users must be at least 1, got 0" in capsys.readouterr().err
