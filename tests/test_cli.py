"""The `fgraph` command and the Python API behind it."""
import json
import subprocess
import sys

import pytest

import fgraph.api as fg
from fgraph.cli import main
from fgraph.data.datasets import resolve_data_dir


def test_train_with_no_arguments_trains_fm_on_synthetic(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "test auc" in out
    runs = list((tmp_path / "runs").glob("fm-synthetic-*"))
    assert len(runs) == 1
    run = runs[0]
    for name in ("config.json", "encoder.json", "checkpoint.pt", "metrics.json", "history.json", "log.txt"):
        assert (run / name).is_file(), name
    metrics = json.loads((run / "metrics.json").read_text())
    # FM recovers the planted pairwise structure of the synthetic set well above chance.
    assert metrics["test"]["auc"] > 0.7
    # `fgraph evaluate` scores the saved best weights identically.
    capsys.readouterr()
    assert main(["evaluate", str(run), "--split", "test"]) == 0
    line = capsys.readouterr().out
    assert f"auc {metrics['test']['auc']:.4f}" in line


def test_api_train_evaluate_and_resume(tmp_path):
    run = fg.train("fm", "synthetic", out=tmp_path / "r", epochs=2, batch_size=2048, embed_dim=4, progress=False,
                   patience=5, dataset_options={"n_samples": 5000})
    assert run.trainer.epoch == 2
    assert fg.evaluate(run.run_dir, "valid") == pytest.approx(run.metrics["valid"])
    resumed = fg.train("fm", "synthetic", out=tmp_path / "r", epochs=4, batch_size=2048, embed_dim=4,
                       progress=False, patience=5, dataset_options={"n_samples": 5000}, resume=True)
    assert resumed.trainer.epoch == 4 and len(resumed.trainer.history) == 4
    with pytest.raises(ValueError, match="cannot resume"):
        fg.train("lr", "synthetic", out=tmp_path / "r", epochs=5, resume=True, progress=False,
                 dataset_options={"n_samples": 5000})


def test_config_file_and_flags(tmp_path, capsys):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("model: lr\nepochs: 1\nbatch_size: 1024\ndataset_options:\n  n_samples: 3000\n")
    out = tmp_path / "run"
    assert main(["train", "--config", str(cfg), "--out", str(out), "--no-progress", "--lr", "0.01"]) == 0
    saved = json.loads((out / "config.json").read_text())
    assert saved["model"] == "lr" and saved["train"]["epochs"] == 1 and saved["train"]["lr"] == 0.01
    assert saved["dataset_options"] == {"n_samples": 3000}


@pytest.mark.parametrize("argv, message", [
    (["train", "--model", "nope"], "unknown model 'nope'"),
    (["train", "--dataset", "nope"], "unknown data set 'nope'"),
    (["train", "--model", "lr", "--embed-dim", "4"], "does not take option(s) ['embed_dim']"),
    (["train", "--min-count", "0", "--epochs", "1"], "min_count"),
    (["train", "--epochs", "0"], "'epochs' must be an integer >= 1"),
    (["evaluate", "/no/such/run"], "not an fgraph run directory"),
])
def test_bad_input_gives_one_clear_line(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv + (["--no-progress"] if argv[0] == "train" else [])) == 2
    err = capsys.readouterr().err
    assert err.startswith("fgraph: error:") and message in err
    assert "Traceback" not in err


def test_missing_data_directory_names_the_expected_files(tmp_path, capsys):
    assert main(["train", "--dataset", "frappe", "--data-dir", str(tmp_path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "frappe" in err and "frappe.validation.libfm.gz" in err and str(tmp_path) in err


def test_datasets_command_lists_every_builder(capsys):
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    for name in ("frappe", "movielens100k", "criteo", "avazu", "synthetic"):
        assert name in out
    if (resolve_data_dir() / "frappe").is_dir():
        assert any(line.startswith("frappe") and "found" in line for line in out.splitlines())


def test_the_console_script_is_installed():
    result = subprocess.run([sys.executable, "-m", "fgraph.cli", "train", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "--embed-dim" in result.stdout and "--resume" in result.stdout


@pytest.mark.parametrize("model", sorted(__import__("fgraph.models", fromlist=["MODELS"]).MODELS))
def test_every_registered_model_trains_from_the_command_line(model, tmp_path, capsys):
    code = main(["train", "--model", model, "--epochs", "1", "--batch-size", "512", "--no-progress",
                 "--dataset-option", "n_samples=2000", "--out", str(tmp_path / model)])
    assert code == 0
    metrics = json.loads((tmp_path / model / "metrics.json").read_text())
    assert 0.0 <= metrics["test"]["auc"] <= 1.0
    assert "test auc" in capsys.readouterr().out


# -- `fgraph train --help` states the defaults a run uses ------------------------------------------------------

def _help_entries(capsys) -> dict[str, str]:
    """``{"--epochs": "maximum epochs (default: ...)"}``, read from the printed `fgraph train --help`."""
    import re

    with pytest.raises(SystemExit) as info:
        main(["train", "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out.split("\noptions:\n", 1)[1].split("\n\n", 1)[0]
    entries = {}
    for chunk in re.split(r"\n(?=  -)", "\n" + text):
        words = " ".join(chunk.split())
        if words:
            flag = words.split()[0].rstrip(",")
            entries[flag] = words
    return entries


def _stated_default(help_text: str) -> dict:
    """The layers of a help's ``(default: A, else B [bars: 100], else 20)``: ``{"bars": "100", ...,
    "final": "20"}``."""
    import re

    match = re.search(r"\(default: (.*)\)$", help_text)
    assert match, f"no '(default: ...)' at the end of: {help_text}"
    layers = match.group(1).split(", else ")
    stated = {"final": re.sub(r"\s*\[[^\]]*\]", "", layers[-1])}
    for layer in layers:
        for inner in re.findall(r"\[([^\]]*)\]", layer):
            for item in inner.split("; "):
                key, _, value = item.partition(": ")
                stated[key] = value
    return stated


def _as_value(text: str):
    """A stated default as the value it means."""
    if text in ("none", "the model's own", "torch's own") or text.startswith("none ("):
        return None
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


class _Stop(Exception):
    pass


def _what_a_run_uses(argv, tmp_path, monkeypatch) -> tuple[dict, object, object]:
    """The config.json and the model of `fgraph train ARGV`, stopped when the Trainer would start."""
    seen = {}

    def no_training(model, config, **kwargs):
        seen["model"] = model
        raise _Stop

    tmp_path.mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(fg, "Trainer", no_training)
    with pytest.raises(_Stop):
        main(["train", *argv])
    runs = [p for p in (tmp_path / "runs").iterdir()]
    assert len(runs) == 1
    return json.loads((runs[0] / "config.json").read_text()), seen["model"], runs[0]


def test_the_help_states_the_defaults_a_run_uses(tmp_path, monkeypatch, capsys):
    from fgraph.cli import TRAIN_FLAGS

    entries = _help_entries(capsys)
    runs = {"plain": _what_a_run_uses([], tmp_path / "plain", monkeypatch),
            "bars": _what_a_run_uses(["--protocol", "bars"], tmp_path / "bars", monkeypatch),
            "regression": _what_a_run_uses(["--task", "regression"], tmp_path / "regression", monkeypatch)}
    saved, model, run_dir = runs["plain"]
    assert saved["model"] == _as_value(_stated_default(entries["--model"])["final"]) == "fm"
    assert saved["dataset"] == _as_value(_stated_default(entries["--dataset"])["final"]) == "synthetic"
    assert saved["zoo"] is None    # no shipped fm-synthetic configuration: the layers below it decide
    assert saved["min_count"] == _as_value(_stated_default(entries["--min-count"])["final"])
    assert run_dir.parent.name == "runs" and run_dir.name.startswith("fm-synthetic-")
    assert _stated_default(entries["--out"])["final"] == "runs/<model>-<dataset>-<time>"
    assert model.embedding.dim == _as_value(
        next(k for k, v in _stated_default(entries["--embed-dim"]).items() if "fm" in v.split(", ")))
    checked = 0
    for name in TRAIN_FLAGS:
        if name not in saved["train"]:
            continue
        stated = _stated_default(entries["--" + name.replace("_", "-")])
        plain = stated.get("synthetic", stated["final"])
        if name == "monitor":
            assert plain == "auc for --task binary, rmse for regression"
            assert runs["plain"][0]["train"]["monitor"] == "auc"
            assert runs["regression"][0]["train"]["monitor"] == "rmse"
            assert "bars" not in stated                         # the protocol leaves the monitor to the task
            assert runs["bars"][0]["train"]["monitor"] == "auc"
        else:
            assert runs["plain"][0]["train"][name] == pytest.approx(_as_value(plain)), name
            assert runs["bars"][0]["train"][name] == pytest.approx(_as_value(stated.get("bars", plain))), name
        checked += 1
    assert checked >= 20


def test_the_help_states_every_models_own_embed_dim(capsys):
    import inspect

    from fgraph.data import FieldEncoder
    from fgraph.data.datasets import synthetic
    from fgraph.models import MODELS, build_model

    stated = _stated_default(_help_entries(capsys)["--embed-dim"])
    by_model = {m: int(v) for v, models in ((k, v) for k, v in stated.items() if k != "final")
                for m in models.split(", ")}
    data = synthetic(n_samples=200, n_fields=4, cardinality=3, pairs=((0, 1),), triple=None)
    space = FieldEncoder(data.schema).fit(data.train).space_
    takes_one = {m for m, cls in MODELS.items() if "embed_dim" in inspect.signature(cls.__init__).parameters}
    assert set(by_model) == takes_one
    for name in sorted(takes_one):
        assert build_model(name, space).embedding.dim == by_model[name], name
