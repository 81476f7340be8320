"""benchmarks/reproduce.py: the accuracy table is written from run records, not by hand."""
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import reproduce  # noqa: E402


def test_a_run_is_recorded_and_tabled_with_mean_and_std(tmp_path):
    results, table = tmp_path / "results", tmp_path / "results.md"
    argv = ["--models", "fm", "--datasets", "synthetic", "--seeds", "0", "1", "--results", str(results),
            "--table", str(table)]
    assert reproduce.main(argv) == 0
    records = sorted(results.glob("*.json"))
    assert [p.name for p in records] == ["fm-synthetic-seed0.json", "fm-synthetic-seed1.json"]
    recs = [json.loads(p.read_text()) for p in records]
    assert all(r["command"].endswith(" ".join(argv)) for r in recs)
    aucs = [r["test"]["auc"] for r in recs]
    text = table.read_text()
    row = next(line for line in text.splitlines() if line.startswith("| synthetic | fm |"))
    mean = sum(aucs) / 2
    assert f"{mean:.4f} ±" in row and "| 0, 1 |" in row
    # A second call skips what is recorded, and the table is rebuilt from the records alone.
    before = [p.stat().st_mtime_ns for p in records]
    assert reproduce.main(argv) == 0
    assert [p.stat().st_mtime_ns for p in records] == before
    table.unlink()
    assert reproduce.main(["--table-only", "--results", str(results), "--table", str(table)]) == 0
    assert row in table.read_text()


def test_published_figures_name_their_source():
    for (dataset, model), (value, metric, source) in reproduce.PUBLISHED.items():
        assert source, (dataset, model)
        assert metric in ("auc", "rmse")


def test_a_labelled_variant_is_compared_with_its_models_published_figure(tmp_path):
    # A regression-protocol run of AFM is recorded under its own label (so it never replaces the binary run's
    # record) and its row carries the AFM paper's RMSE, looked up through the model name the record keeps.
    results, table = tmp_path / "results", tmp_path / "results.md"
    argv = ["--models", "fm", "--datasets", "synthetic", "--seeds", "0", "--results", str(results),
            "--table", str(table), "--train-option", "task=regression", "epochs=2", "--label", "fm regression"]
    assert reproduce.main(argv) == 0
    rec = json.loads((results / "fm_regression-synthetic-seed0.json").read_text())
    assert rec["name"] == "fm" and rec["model"] == "fm regression" and "rmse" in rec["test"]
    reproduce.PUBLISHED[("synthetic-regression", "fm")] = (0.5, "rmse", "a test source")
    try:
        reproduce.main(["--table-only", "--results", str(results), "--table", str(table)])
    finally:
        del reproduce.PUBLISHED[("synthetic-regression", "fm")]
    row = next(line for line in table.read_text().splitlines() if line.startswith("| synthetic | fm regression |"))
    assert f"{rec['test']['rmse']:.4f}" in row and "| 0.5 | a test source |" in row


def test_repeated_flags_add_up_instead_of_replacing_each_other(tmp_path):
    # `--train-option a=1 --train-option b=2` once kept only b=2 (argparse's default "store"), so a variant
    # silently ran without a; now every repeat counts, as in `fgraph train`, and seeds add up the same way.
    results, table = tmp_path / "results", tmp_path / "results.md"
    argv = ["--models", "fm", "--datasets", "synthetic", "--seeds", "0", "--seeds", "1", "--results", str(results),
            "--table", str(table), "--train-option", "epochs=1", "--train-option", "lr=0.02",
            "--model-option", "dropout=0.1", "--label", "fm repeated"]
    assert reproduce.main(argv) == 0
    names = sorted(p.name for p in results.glob("*.json"))
    assert names == ["fm_repeated-synthetic-seed0.json", "fm_repeated-synthetic-seed1.json"]
    rec = json.loads((results / names[0]).read_text())
    assert rec["train"]["epochs"] == 1 and rec["train"]["lr"] == 0.02 and rec["epochs_run"] == 1
    assert rec["model_options"]["dropout"] == 0.1
    with pytest.raises(Exception, match="twice"):
        reproduce.main(argv[:-2] + ["--train-option", "epochs=2", "--label", "fm repeated"])
