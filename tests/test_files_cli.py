"""`fgraph train --data`, `fgraph predict`, `fgraph evaluate` (and `--data`) and `fgraph explain` on a user's
own CSV and Parquet files, end to end through `fgraph.cli.main` (one check runs the console script)."""
import contextlib
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import fgraph
import fgraph.api as fg
from fgraph.cli import main
from fgraph.data.space import UNKNOWN
from fgraph.data.files import load_schema
from fgraph.errors import ColumnNotFoundError, ConfigError
from fgraph.train.metrics import binary_metrics

ROWS = 900


def make_table(n: int, seed: int = 0) -> pd.DataFrame:
    """Rows with an identifier, a text categorical, an integer categorical, a numeric column, a multi-valued
    column and a yes/no label that depends on them."""
    rng = np.random.default_rng(seed)
    city = rng.choice(["paris", "rome", "oslo", "lima"], n)
    device = rng.integers(0, 4, n)
    age = rng.normal(40, 12, n).round(1)
    tags = np.array(["sport", "news", "food", "music", "travel"])
    genres = ["|".join(rng.choice(tags, rng.integers(2, 4), replace=False)) for _ in range(n)]
    logit = (1.2 * (city == "rome") - 1.0 * (device == 2) + 0.04 * (age - 40)
             + 0.8 * np.array(["food" in g for g in genres]))
    click = np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), "yes", "no")
    return pd.DataFrame({"row_id": [f"id{seed}-{i:05d}" for i in range(n)], "city": city, "device": device,
                         "age": age, "genres": genres, "click": click})


def run_cli(argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("fgraph: error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One file run: train.csv (80/10/10 split, seed 0), two epochs; and rows to predict (no label)."""
    root = tmp_path_factory.mktemp("files")
    table = make_table(ROWS)
    table.to_csv(root / "train.csv", index=False)
    new = make_table(60, seed=1).drop(columns=["click"]).sample(frac=1.0, random_state=3).reset_index(drop=True)
    new.loc[0, "city"] = "atlantis"           # never seen in training
    new.loc[1, "genres"] = "opera|ballet"     # tokens never seen in training
    new.to_csv(root / "new.csv", index=False)
    run = root / "run"
    code, out, err = run_cli(["train", "--data", root / "train.csv", "--label", "click", "--epochs", 2,
                              "--batch-size", 128, "--out", run, "--no-progress"])
    assert code == 0, err
    return {"root": root, "run": run, "out": out, "table": table, "new": new}


def test_train_on_a_file_prints_the_schema_and_the_split_and_saves_them(trained):
    run, out, root = trained["run"], trained["out"], trained["root"]
    # The inferred schema, one line per field, then how the label was read and how the file was split.
    assert "city    categorical" in out
    assert "device  categorical" in out
    assert "age     numeric" in out
    assert "genres  multi-valued (split on '|'" in out
    assert "row_id: not used" in out
    assert "'yes' -> 1 (positive)" in out
    assert "split train.csv 80/10/10 (train/valid/test) with seed 0" in out
    assert "test auc" in out
    for name in ("config.json", "encoder.json", "checkpoint.pt", "history.json", "log.txt", "metrics.json",
                 "schema.yaml"):
        assert (run / name).is_file(), name
    saved = json.loads((run / "config.json").read_text())
    assert saved["dataset"] is None and saved["zoo"] is None
    source = saved["data"]
    assert source["train"] == str((root / "train.csv").resolve()) and Path(source["train"]).is_absolute()
    assert source["valid"] is None and source["test"] is None
    assert source["label"] == "click" and source["seed"] == 0 and source["schema"] == "schema.yaml"
    assert source["label_mapping"] == {"no": 0, "yes": 1}
    assert source["split"]["fractions"] == [0.8, 0.1, 0.1] and source["split"]["cut"] == ["valid", "test"]
    # schema.yaml is the schema the run's encoder uses, and reads back as a schema file.
    spec = load_schema(run / "schema.yaml")
    encoder = fgraph.load(run).encoder
    assert spec.to_schema() == encoder.schema


def test_evaluate_reads_the_same_files_and_split_again(trained):
    run = trained["run"]
    metrics = json.loads((run / "metrics.json").read_text())
    code, out, _ = run_cli(["evaluate", run])
    assert code == 0 and f"test auc {metrics['test']['auc']:.4f}" in out
    assert fg.evaluate(run, "valid") == pytest.approx(metrics["valid"])


def test_evaluate_data_scores_a_labelled_file(trained):
    run, root, table = trained["run"], trained["root"], trained["table"]
    labelled = root / "labelled.csv"
    table.iloc[:300].to_csv(labelled, index=False)
    code, out, _ = run_cli(["evaluate", run, "--data", labelled])
    assert code == 0
    p = fgraph.load(run).predict(table.iloc[:300])
    y = (table["click"].iloc[:300] == "yes").to_numpy(dtype=float)
    expected = binary_metrics(y, p)
    assert f"auc {expected['auc']:.4f}" in out
    assert fg.evaluate(run, data=labelled)["auc"] == pytest.approx(expected["auc"])
    # A label value the training file did not have is named with its row.
    bad = table.iloc[:20].copy()
    bad.loc[5, "click"] = "maybe"
    bad.to_csv(root / "bad_label.csv", index=False)
    code, _, err = run_cli(["evaluate", run, "--data", root / "bad_label.csv"])
    assert code == 2 and "'maybe'" in error_line(err) and "data row 6" in err
    code, _, err = run_cli(["evaluate", run, "--data", labelled, "--split", "valid"])
    assert code == 2 and "not both" in error_line(err)


def test_predict_writes_one_row_per_input_row_in_order_with_the_kept_columns(trained):
    run, root, new = trained["run"], trained["root"], trained["new"]
    out_file = root / "predictions.csv"
    code, out, err = run_cli(["predict", run, root / "new.csv", "--out", out_file, "--keep", "row_id,city"])
    assert code == 0, err
    assert f"wrote {len(new)} predictions (probability)" in out
    written = pd.read_csv(out_file, dtype={"row_id": str, "city": str})
    assert list(written.columns) == ["row_id", "city", "probability"]
    assert len(written) == len(new)
    assert written["row_id"].tolist() == new["row_id"].tolist()     # input order, not sorted
    assert written["city"].tolist() == new["city"].tolist()
    assert written["probability"].between(0, 1).all()
    # The same numbers as the Python API on the same rows (the label column absent).
    expected = fgraph.load(run).predict(new)
    np.testing.assert_allclose(written["probability"].to_numpy(), expected, rtol=1e-6)


def test_unseen_values_get_the_unknown_id_as_in_training(trained):
    predictor = fgraph.load(trained["run"])
    rows = trained["new"].iloc[:2].copy()
    other = rows.copy()
    other.loc[0, "city"] = "el dorado"        # another value never seen: the same unknown id
    other.loc[1, "genres"] = "jazz|ballet"
    a, b = predictor.predict(rows), predictor.predict(other)
    np.testing.assert_allclose(a, b)
    assert np.isfinite(a).all()
    encoded = predictor.encoder.transform(rows[predictor.fields])
    city = predictor.fields.index("city")
    assert int(encoded.ids[0, city]) == UNKNOWN


def test_predict_refuses_a_missing_field_column_naming_it_and_the_file(trained):
    run, root, new = trained["run"], trained["root"], trained["new"]
    no_age = root / "no_age.csv"
    new.drop(columns=["age"]).to_csv(no_age, index=False)
    code, _, err = run_cli(["predict", run, no_age, "--out", root / "x.csv"])
    line = error_line(err)
    assert code == 2 and "['age']" in line and str(no_age) in line
    assert not (root / "x.csv").exists()
    code, _, err = run_cli(["predict", run, root / "new.csv", "--out", root / "x.csv", "--keep", "row_id,nope"])
    assert code == 2 and "--keep column(s) ['nope']" in error_line(err)
    code, _, err = run_cli(["predict", run, root / "new.csv", "--out", root / "x.csv", "--keep", "probability"])
    assert code == 2 and "'probability'" in error_line(err)
    code, _, err = run_cli(["predict", run, root / "new.csv", "--out", root / "x.json"])
    assert code == 2 and "unknown output format '.json'" in error_line(err)
    assert not (root / "x.csv").exists() and not (root / "x.json").exists()


def test_predict_never_overwrites_a_file_unless_asked(trained):
    run, root = trained["run"], trained["root"]
    target = root / "keep_me.csv"
    target.write_text("precious\n")
    code, _, err = run_cli(["predict", run, root / "new.csv", "--out", target])
    assert code == 2 and "already exists" in error_line(err) and "--overwrite" in err
    assert target.read_text() == "precious\n"
    code, _, err = run_cli(["predict", run, root / "new.csv", "--out", target, "--overwrite"])
    assert code == 0, err
    assert len(pd.read_csv(target)) == len(trained["new"])
    # Not even --overwrite writes over the input.
    copy = root / "input_copy.csv"
    shutil.copy(root / "new.csv", copy)
    before = copy.read_bytes()
    code, _, err = run_cli(["predict", run, copy, "--out", copy, "--overwrite"])
    assert code == 2 and "input file itself" in error_line(err)
    assert copy.read_bytes() == before


def test_parquet_files_in_and_out_with_given_valid_and_test_files(tmp_path):
    table = make_table(600, seed=4)
    table.iloc[:400].to_parquet(tmp_path / "train.parquet", index=False)
    table.iloc[400:500].to_parquet(tmp_path / "valid.parquet", index=False)
    table.iloc[500:].to_parquet(tmp_path / "test.parquet", index=False)
    run = tmp_path / "run"
    code, out, err = run_cli(["train", "--data", tmp_path / "train.parquet", "--valid", tmp_path / "valid.parquet",
                              "--test", tmp_path / "test.parquet", "--label", "click", "--model", "lr",
                              "--epochs", 1, "--out", run, "--no-progress"])
    assert code == 0, err
    assert "rows: train 400, valid 100, test 100" in out and "split train.parquet" not in out
    saved = json.loads((run / "config.json").read_text())["data"]
    assert saved["valid"] == str((tmp_path / "valid.parquet").resolve()) and saved["split"] is None
    rows = table.iloc[500:].drop(columns=["click"]).iloc[::-1].reset_index(drop=True)
    rows.to_parquet(tmp_path / "rows.parquet", index=False)
    code, _, err = run_cli(["predict", run, tmp_path / "rows.parquet", "--out", tmp_path / "p.parquet",
                            "--keep", "row_id"])
    assert code == 0, err
    written = pd.read_parquet(tmp_path / "p.parquet")
    assert written["row_id"].tolist() == rows["row_id"].tolist()
    np.testing.assert_allclose(written["probability"], fgraph.load(run).predict(rows), rtol=1e-6)
    code, out, _ = run_cli(["evaluate", run, "--split", "test"])
    metrics = json.loads((run / "metrics.json").read_text())
    assert code == 0 and f"test auc {metrics['test']['auc']:.4f}" in out


def test_a_file_run_resumes_on_its_own_files_only(trained, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained["run"], run)
    train_csv = trained["root"] / "train.csv"
    code, _, err = run_cli(["train", "--epochs", 3, "--out", run, "--resume", "--no-progress"])
    assert code == 2 and "give the same --data" in error_line(err)
    code, _, err = run_cli(["train", "--data", trained["root"] / "new.csv", "--epochs", 3, "--out", run, "--resume"])
    assert code == 2 and "its train file was" in error_line(err)
    code, out, err = run_cli(["train", "--data", train_csv, "--epochs", 3, "--batch-size", 128, "--out", run,
                              "--resume", "--no-progress"])
    assert code == 0, err
    assert len(json.loads((run / "history.json").read_text())) == 3


@pytest.mark.parametrize("argv, message", [
    (["train", "--data", "{root}/train.csv", "--dataset", "frappe"], "give one: --dataset trains on a built-in"),
    (["train", "--label", "click"], "label= (--label) describes a training file, but no data= (--data FILE)"),
    (["train", "--data", "{root}/nothing.csv", "--label", "click"], "data file {root}/nothing.csv does not exist"),
    (["train", "--data", "{root}/train.csv", "--label", "nope"], "nope"),
    (["train", "--data", "{root}/train.csv", "--label", "click", "--data-dir", "."], "does not read it"),
    (["train", "--data", "{root}/train.csv", "--label", "click", "--fractions", "0.8,0.2"], "three numbers"),
    (["train", "--data", "{root}/train.csv", "--label", "click", "--dataset-option", "n_samples=5"],
     "a run on your own files"),
])
def test_file_options_errors_are_one_clear_line(trained, argv, message, tmp_path):
    root = trained["root"]
    argv = [a.format(root=root) for a in argv] + ["--out", tmp_path / "never"]
    code, _, err = run_cli(argv)
    assert code == 2
    assert message.format(root=root) in error_line(err)
    assert not (tmp_path / "never").exists()


def test_python_train_on_a_file_and_its_errors(trained, tmp_path):
    root = trained["root"]
    with pytest.raises(ConfigError, match="give one"):
        fg.train("fm", "synthetic", data=root / "train.csv", label="click")
    with pytest.raises(ConfigError, match=r"valid= \(--valid\)"):
        fg.train("fm", valid=root / "train.csv")
    run = fg.train("lr", data=root / "train.csv", label="click", epochs=1, progress=False, seed=3,
                   fractions=[0.7, 0.2, 0.1], out=tmp_path / "run")
    assert run.source["seed"] == 3 and run.source["split"]["fractions"] == [0.7, 0.2, 0.1]
    assert len(run.data["valid"]) == round(0.2 * ROWS)
    assert fg.evaluate(run.run_dir, "test") == pytest.approx(run.metrics["test"])


def test_help_says_the_zoo_is_not_for_files(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--data FILE" in text and "do not apply to files" in text
    with pytest.raises(SystemExit):
        main(["predict", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "'probability'" in text and "'prediction'" in text and "--keep" in text


def test_the_console_script_predicts(trained, tmp_path):
    exe = shutil.which("fgraph")
    command = [exe] if exe else [sys.executable, "-m", "fgraph.cli"]
    out_file = tmp_path / "p.csv"
    done = subprocess.run([*command, "predict", str(trained["run"]), str(trained["root"] / "new.csv"), "--out",
                           str(out_file)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert len(pd.read_csv(out_file)) == len(trained["new"])


def test_explain_is_wired_to_explain_run(trained, tmp_path, monkeypatch):
    report = pytest.importorskip("fgraph.explain.report", reason="explain_run not available")
    seen = {}

    def fake_explain_run(run_dir, out, *, rows=None, data=None, level=None, **options):
        seen.update(run_dir=run_dir, out=out, rows=rows, data=data, level=level)
        return {"written": str(out)}

    monkeypatch.setattr(report, "explain_run", fake_explain_run)
    code, out, err = run_cli(["explain", trained["run"], "--rows", "0,5", "--level", "instance", "--out",
                              tmp_path / "x"])
    assert code == 0, err
    assert seen["rows"] == [0, 5] and seen["level"] == "instance"
    # Without --data: the run's validation split, cut from its file again.
    assert len(seen["data"]) == round(0.1 * ROWS)
    code, _, err = run_cli(["explain", trained["run"], "--data", trained["root"] / "new.csv", "--level", "dataset",
                            "--out", tmp_path / "y"])
    assert code == 0, err
    assert isinstance(seen["data"], pd.DataFrame) and len(seen["data"]) == len(trained["new"])
    code, _, err = run_cli(["explain", trained["run"], "--rows", "a,b", "--out", tmp_path / "z"])
    assert code == 2 and "rows must be row positions" in error_line(err)


def test_explain_end_to_end_on_a_graph_model_file_run(trained, tmp_path):
    pytest.importorskip("fgraph.explain.report", reason="explain_run not available")
    run = tmp_path / "fignn"
    code, _, err = run_cli(["train", "--data", trained["root"] / "train.csv", "--label", "click", "--model", "fignn",
                            "--embed-dim", 4, "--epochs", 1, "--out", run, "--no-progress"])
    assert code == 0, err
    # Data-set level without --data: averaged over the run's validation split.
    code, out, err = run_cli(["explain", run, "--level", "dataset", "--out", tmp_path / "x", "--no-heatmaps",
                              "--formats", "json"])
    assert code == 0, err
    index = json.loads((tmp_path / "x" / "explain.json").read_text())
    assert "dataset" in json.dumps(index) and list((tmp_path / "x" / "graphs").glob("dataset_layer*.json"))
    code, _, err = run_cli(["explain", run, "--rows", "0,5", "--data", trained["root"] / "new.csv", "--out",
                            tmp_path / "y", "--no-heatmaps", "--formats", "json"])
    assert code == 0, err
    assert len(list((tmp_path / "y" / "graphs").glob("instance_row*_layer0.json"))) == 2
    # A second explanation into the same folder is refused unless --overwrite.
    code, _, err = run_cli(["explain", run, "--level", "dataset", "--out", tmp_path / "x", "--no-heatmaps"])
    assert code == 2 and "--overwrite" in error_line(err)


def test_missing_column_from_python_names_the_column(trained):
    predictor = fgraph.load(trained["run"])
    with pytest.raises(ColumnNotFoundError, match=r"no column\(s\) \['city'\]"):
        predictor.predict(trained["new"].drop(columns=["city"]))
