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
