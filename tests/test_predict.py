"""`fgraph.load(RUN_DIR)` and its Predictor, and run directories written from Python: the README's
`Trainer(..., run_dir="runs/mine")` walkthrough, run as written, then evaluated, predicted and explained."""
import contextlib
import io
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import fgraph
import fgraph.api as fg
from fgraph.cli import main
from fgraph.errors import CheckpointError, ColumnNotFoundError, ConfigError
from fgraph.train.metrics import binary_metrics

README = Path(__file__).resolve().parents[1] / "README.md"


def run_cli(argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def toy_table():
    """The README's columns (user, genres, age, click), as tests/test_docs.py builds them for the README."""
    rng = np.random.default_rng(0)
    n = 3000
    user = rng.integers(0, 60, n)
    genres = np.array(["action", "comedy", "drama", "horror", "romance"])
    picks = [("|".join(sorted(set(rng.choice(genres, rng.integers(1, 4)))))) for _ in range(n)]
    age = rng.integers(18, 70, n)
    logit = 0.8 * (user % 3 == 0) - 0.6 * np.array(["horror" in g for g in picks]) + 0.02 * (age - 40)
    click = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    frame = pd.DataFrame({"user": user.astype(str), "genres": picks, "age": age, "click": click})
    return (frame.iloc[:2000].reset_index(drop=True), frame.iloc[2000:2500].reset_index(drop=True),
            frame.iloc[2500:].reset_index(drop=True))


def readme_walkthrough() -> str:
    """The README's Python block that trains into ``runs/mine``, as written there."""
    blocks = re.findall(r"```python[^\n]*\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
    found = [b for b in blocks if 'run_dir="runs/mine"' in b]
    assert len(found) == 1, "README.md should hold one walkthrough that trains into runs/mine"
    return found[0]


@pytest.fixture(scope="module")
def walkthrough(tmp_path_factory):
    """The README walkthrough, run in a fresh directory; its namespace afterwards."""
    import os

    root = tmp_path_factory.mktemp("readme")
    train_df, valid_df, test_df = toy_table()
    namespace = {"train_df": train_df, "valid_df": valid_df, "test_df": test_df}
    here = os.getcwd()
    os.chdir(root)
    try:
        with contextlib.redirect_stdout(io.StringIO()) as printed, contextlib.redirect_stderr(io.StringIO()):
            exec(compile(readme_walkthrough(), str(README), "exec"), namespace)
    finally:
        os.chdir(here)
    test_df.to_csv(root / "test.csv", index=False)
    test_df.drop(columns=["click"]).to_csv(root / "rows.csv", index=False)
    namespace.update(root=root, run=root / "runs" / "mine", printed=printed.getvalue())
    return namespace


def test_the_readme_walkthrough_writes_a_complete_run(walkthrough):
    run = walkthrough["run"]
    for name in ("config.json", "encoder.json", "schema.yaml", "checkpoint.pt", "history.json", "log.txt"):
        assert (run / name).is_file(), name
    saved = json.loads((run / "config.json").read_text())
    assert saved["model"] == "fm" and saved["model_options"]["embed_dim"] == 16
    assert saved["min_count"] == 2 and saved["dataset"] is None and saved["data"] is None
    assert saved["train"]["epochs"] == 20 and saved["train"]["patience"] == 2
    model, encoder, config = fg.load_run(run)
    assert encoder.fingerprint() == walkthrough["encoder"].fingerprint()


def test_evaluate_on_a_python_run_needs_data_and_scores_a_labelled_file(walkthrough):
    run, root = walkthrough["run"], walkthrough["root"]
    code, _, err = run_cli(["evaluate", run])
    assert code == 2 and "Traceback" not in err
    assert "trained from Python" in err and "--data FILE" in err
    with pytest.raises(ConfigError, match="--data FILE"):
        fg.evaluate(run)
    code, out, err = run_cli(["evaluate", run, "--data", root / "test.csv"])
    assert code == 0, err
    # The same scores as the walkthrough's own trainer.evaluate(encoder.transform(test_df)).
    expected = walkthrough["trainer"].evaluate(walkthrough["encoder"].transform(walkthrough["test_df"]))
    assert f"auc {expected['auc']:.4f}  logloss {expected['logloss']:.4f}" in out
    assert fg.evaluate(run, data=walkthrough["test_df"]) == pytest.approx(expected)


def test_predict_and_load_on_a_python_run(walkthrough):
    run, root = walkthrough["run"], walkthrough["root"]
    expected = walkthrough["trainer"].predict(walkthrough["encoder"].transform(walkthrough["test_df"]))
    code, _, err = run_cli(["predict", run, root / "rows.csv", "--out", root / "p.csv"])
    assert code == 0, err
    written = pd.read_csv(root / "p.csv")
    assert list(written.columns) == ["probability"] and len(written) == len(walkthrough["test_df"])
    np.testing.assert_allclose(written["probability"], expected, rtol=1e-6)
    predictor = fgraph.load(run)
    np.testing.assert_allclose(predictor.predict(walkthrough["test_df"]), expected, rtol=1e-6)


def test_explain_on_python_runs(walkthrough, tmp_path):
    pytest.importorskip("fgraph.explain.report", reason="explain_run not available")
    from fgraph.models import FiGNN
    from fgraph.train import TrainConfig, Trainer

    root = walkthrough["root"]
    # The walkthrough's FM learns no interaction structure: explain says so, in one line.
    code, _, err = run_cli(["explain", walkthrough["run"], "--rows", "0,3", "--data", root / "rows.csv", "--out",
                            tmp_path / "fm", "--no-heatmaps"])
    assert code == 2 and "learns no interaction structure" in err and "Traceback" not in err
    # The same walkthrough with a graph model: explained from the run directory alone, plus the rows to explain.
    encoder = walkthrough["encoder"]
    run = tmp_path / "graph"
    Trainer(FiGNN(encoder.space_, embed_dim=4), TrainConfig(epochs=1, progress=False), encoder=encoder,
            run_dir=run).fit(encoder.transform(walkthrough["train_df"]), encoder.transform(walkthrough["valid_df"]))
    code, _, err = run_cli(["explain", run, "--rows", "0,3", "--data", root / "rows.csv", "--out", tmp_path / "x",
                            "--no-heatmaps", "--formats", "json"])
    assert code == 0, err
    assert len(list((tmp_path / "x" / "graphs").glob("instance_row*_layer0.json"))) == 2
    # Without --data, a Python run has no rows of its own to explain.
    code, _, err = run_cli(["explain", run, "--rows", "0", "--out", tmp_path / "y", "--no-heatmaps"])
    assert code == 2 and "--data FILE" in err


# -- the Predictor ----------------------------------------------------------------------------------------------

def test_predictor_keeps_the_input_order_and_ignores_the_label(walkthrough):
    predictor = fgraph.load(walkthrough["run"])
    frame = walkthrough["test_df"]
    p = predictor.predict(frame)
    assert p.shape == (len(frame),) and p.dtype == np.float64
    reversed_ = frame.iloc[::-1]
    np.testing.assert_allclose(predictor.predict(reversed_), p[::-1], rtol=1e-6)
    # The label may be absent, or hold anything: it is not read.
    np.testing.assert_allclose(predictor.predict(frame.drop(columns=["click"])), p, rtol=1e-6)
    np.testing.assert_allclose(predictor.predict(frame.assign(click="?")), p, rtol=1e-6)
    proba = predictor.predict_proba(frame)
    assert proba.shape == (len(frame), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_allclose(proba[:, 1], p)
    # An EncodedData goes straight to the model.
    np.testing.assert_allclose(predictor.predict(predictor.encoder.transform(frame)), p, rtol=1e-6)
    assert predictor.output_name == "probability" and predictor.fields == ["user", "genres", "age"]
    assert not predictor.model.training
    with pytest.raises(ColumnNotFoundError, match=r"no column\(s\) \['genres'\].*its fields"):
        predictor.predict(frame.drop(columns=["genres"]))
    with pytest.raises(ConfigError, match="DataFrame"):
        predictor.predict(frame.to_numpy())


def test_load_on_a_built_in_data_set_run(tmp_path):
    run = fg.train("fm", "synthetic", out=tmp_path / "r", epochs=1, batch_size=1024, embed_dim=4, progress=False,
                   dataset_options={"n_samples": 3000})
    assert (run.run_dir / "schema.yaml").is_file()
    predictor = fgraph.load(run.run_dir)
    splits = fg.load_dataset("synthetic", n_samples=3000)
    p = predictor.predict(splits.test)
    metrics = binary_metrics(splits.test[splits.schema.label].to_numpy(dtype=float), p)
    assert metrics["auc"] == pytest.approx(run.metrics["test"]["auc"], abs=1e-6)
    code, out, _ = run_cli(["evaluate", run.run_dir])
    assert code == 0 and f"auc {run.metrics['test']['auc']:.4f}" in out


def test_a_regression_run_predicts_clipped_values(tmp_path):
    run = fg.train("fm", "synthetic", out=tmp_path / "r", epochs=1, batch_size=1024, embed_dim=4, progress=False,
                   task="regression", dataset_options={"n_samples": 3000})
    predictor = fgraph.load(run.run_dir)
    assert predictor.task == "regression" and predictor.output_name == "prediction"
    splits = fg.load_dataset("synthetic", n_samples=3000)
    p = predictor.predict(splits.test)
    lo, hi = predictor.clip_range
    label = splits.train[splits.schema.label]
    assert (lo, hi) == (label.min(), label.max())
    assert p.min() >= lo and p.max() <= hi
    raw = run.trainer.predict(run.encoder.transform(splits.test))
    np.testing.assert_allclose(p, np.clip(raw, lo, hi), rtol=1e-6)
    with pytest.raises(ConfigError, match="predict_proba is for a binary run"):
        predictor.predict_proba(splits.test)


def test_a_python_run_resumed_by_a_trainer_stays_loadable(walkthrough, tmp_path):
    from fgraph.models import FM
    from fgraph.train import TrainConfig, Trainer

    encoder, train_df, valid_df = walkthrough["encoder"], walkthrough["train_df"], walkthrough["valid_df"]
    train, valid = encoder.transform(train_df), encoder.transform(valid_df)
    out = tmp_path / "mine"
    Trainer(FM(encoder.space_, embed_dim=4), TrainConfig(epochs=1, progress=False, patience=9), encoder=encoder,
            run_dir=out).fit(train, valid)
    config_before = (out / "config.json").read_bytes()
    Trainer(FM(encoder.space_, embed_dim=4), TrainConfig(epochs=2, progress=False, patience=9), encoder=encoder,
            run_dir=out).fit(train, valid, resume=True)
    assert (out / "config.json").read_bytes() == config_before     # a resume keeps how the run was started
    assert fgraph.load(out).checkpoint["epoch"] == 2


def test_a_trainer_without_an_encoder_writes_config_but_cannot_be_loaded(walkthrough, tmp_path):
    from fgraph.models import FM
    from fgraph.train import TrainConfig, Trainer

    encoder = walkthrough["encoder"]
    out = tmp_path / "no_encoder"
    Trainer(FM(encoder.space_, embed_dim=4), TrainConfig(epochs=1, progress=False), run_dir=out).fit(
        encoder.transform(walkthrough["train_df"]))
    assert (out / "config.json").is_file() and not (out / "encoder.json").exists()
    with pytest.raises(CheckpointError, match="without encoder="):
        fgraph.load(out)


def test_load_is_exported_and_refuses_a_directory_that_is_no_run(tmp_path):
    assert "load" in fgraph.__all__
    with pytest.raises(FileNotFoundError, match="not an fgraph run directory"):
        fgraph.load(tmp_path)
