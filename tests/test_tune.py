"""`fgraph tune`: the search on the synthetic set, its files, the round trip through `fgraph train --config`."""
import csv
import json
import sys

import pytest

optuna = pytest.importorskip("optuna", reason="fgraph tune needs optuna (pip install 'fgraph[tune]'; the test "
                                              "extra installs it)")

from fgraph import cli, tune as tune_module                      # noqa: E402
from fgraph.configfile import read_config_file                   # noqa: E402
from fgraph.errors import ConfigError, FgraphError               # noqa: E402
from fgraph.models import MODELS                                 # noqa: E402
from fgraph.train.trainer import Trainer                         # noqa: E402
from fgraph.tune import check_space, search_space, shared_train_space, tune   # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")

#: a tiny synthetic study: 2 000 rows, 2 epochs, small embeddings
SMALL = dict(dataset="synthetic", epochs=2, threads=1, dataset_options={"n_samples": 2000}, echo=None)
SENTINEL = -123.0   # what the test split "scores" while the study runs


def _rows(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _history(run_dir):
    return json.loads((run_dir / "history.json").read_text())


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A 4-trial FM study, with the test split's scores replaced by a sentinel (and every call recorded)."""
    out = tmp_path_factory.mktemp("tune") / "fm"
    calls = []
    original = Trainer.evaluate

    def evaluate(self, data, *args, name=None, **kwargs):
        calls.append(name)
        if name == "the test split":
            return {"auc": SENTINEL, "logloss": SENTINEL}
        return original(self, data, *args, name=name, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Trainer, "evaluate", evaluate)
        result = tune("fm", trials=4, out=out, seed=0,
                      space={"model.embed_dim": ("categorical", [4, 8]), "train.lr": ("log_float", 1e-3, 1e-2)},
                      **SMALL)
    return result, calls


def test_tune_writes_best_yaml_and_trials_csv(study):
    result, _ = study
    assert result.best_config == result.out_dir / "best.yaml" and result.best_config.is_file()
    rows = _rows(result.trials_table)
    assert [r["number"] for r in rows] == ["0", "1", "2", "3"]          # --trials 4
    assert all(r["state"] == "COMPLETE" for r in rows)
    assert set(rows[0]) >= {"value", "best_epoch", "epochs_run", "model.embed_dim", "train.lr", "run_dir"}
    options = read_config_file(result.best_config)
    assert options["model"] == "fm" and options["dataset"] == "synthetic"
    assert options["embed_dim"] in (4, 8) and 1e-3 <= options["lr"] <= 1e-2
    assert options["epochs"] == 2 and options["seed"] == 0 and options["dataset_options"] == {"n_samples": 2000}
    assert "threads" not in options and "progress" not in options   # how this machine ran, not what was found
    source = options["source"]
    assert source["made_by"] == "fgraph tune"
    assert source["command"].startswith("fgraph tune --model fm --dataset synthetic --trials 4")
    assert "--pruner median --prune-warmup 2" in source["command"]
    assert source["trials"] == {"run": 4, "complete": 4, "pruned": 0, "failed": 0}
    assert source["value"] == pytest.approx(result.best_value)
    assert source["versions"]["optuna"] == optuna.__version__
    assert source["search_space"] == {"model.embed_dim": ["categorical", [4, 8]],
                                      "train.lr": ["log_float", 1e-3, 1e-2]}
    assert "test split is not read" in source["objective"]


def test_objective_is_the_best_validation_value_not_the_test_split(study):
    result, calls = study
    assert "the test split" in calls          # api.train scored it (into each trial's metrics.json) ...
    values = {}
    for row in _rows(result.trials_table):
        history = _history(result.out_dir / f"trial-{int(row['number']):03d}")
        best = max(h["valid_auc"] for h in history)
        assert float(row["value"]) == pytest.approx(best, abs=1e-12)
        assert int(row["best_epoch"]) == max(history, key=lambda h: h["valid_auc"])["epoch"]
        values[int(row["number"])] = best
    assert result.best_trial == max(values, key=values.get) and result.best_value == pytest.approx(max(values.values()))
    for path in (result.best_config, result.trials_table):   # ... but nothing the search wrote holds it
        assert str(SENTINEL) not in path.read_text() and "test_auc" not in path.read_text()


def test_best_yaml_round_trips_through_fgraph_train(study, tmp_path, capsys):
    result, _ = study
    out = tmp_path / "again"
    assert cli.main(["train", "--config", str(result.best_config), "--out", str(out), "--no-progress",
                     "--threads", "1"]) == 0
    config = json.loads((out / "config.json").read_text())
    tuned = result.best_options
    assert config["model_options"]["embed_dim"] == tuned["embed_dim"]
    assert config["train"]["lr"] == tuned["lr"] and config["train"]["epochs"] == 2
    assert config["dataset_options"] == {"n_samples": 2000}
    # the same run as the best trial: the same validation value
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["valid"]["auc"] == pytest.approx(result.best_value, abs=1e-9)


class PruneTrialOne(optuna.pruners.BasePruner):
    """Prunes trial 1 at its first report, never another."""

    def prune(self, study, trial):
        return trial.number == 1


def test_a_pruned_trial_is_recorded_as_pruned(tmp_path):
    result = tune("lr", trials=3, out=tmp_path / "t", pruner=PruneTrialOne(), **SMALL)
    rows = _rows(result.trials_table)
    assert [r["state"] for r in rows] == ["COMPLETE", "PRUNED", "COMPLETE"]
    assert rows[1]["value"] == "" and rows[1]["epochs_run"] == "1" and "pruned at epoch 1" in rows[1]["note"]
    assert len(_history(tmp_path / "t" / "trial-001")) == 1                # stopped after its first epoch
    assert result.counts == {"run": 3, "complete": 2, "pruned": 1, "failed": 0}
    assert read_config_file(result.best_config)["source"]["trials"]["pruned"] == 1
    assert result.best_trial in (0, 2)


def test_a_diverged_trial_fails_and_the_search_goes_on(tmp_path, monkeypatch):
    from fgraph.errors import TrainingDivergedError

    train = tune_module.api.train

    def diverging(*args, out=None, **kwargs):
        if str(out).endswith("trial-001"):
            raise TrainingDivergedError("the training loss became nan at epoch 1")
        return train(*args, out=out, **kwargs)

    monkeypatch.setattr(tune_module.api, "train", diverging)
    result = tune("lr", trials=3, out=tmp_path / "t", **SMALL)
    rows = _rows(result.trials_table)
    assert [r["state"] for r in rows] == ["COMPLETE", "FAIL", "COMPLETE"]
    assert rows[1]["note"] == "TrainingDivergedError: the training loss became nan at epoch 1"
    assert result.counts["failed"] == 1 and result.best_trial != 1


def test_timeout_stops_the_running_trial(tmp_path):
    with pytest.raises(FgraphError, match="no trial completed .*allow more time"):
        tune("lr", trials=50, timeout=1e-3, out=tmp_path / "t", **SMALL)
    rows = _rows(tmp_path / "t" / "trials.csv")
    assert len(rows) == 1 and rows[0]["state"] == "PRUNED" and "time budget" in rows[0]["note"]
    assert not (tmp_path / "t" / "best.yaml").exists()


def test_a_stored_study_continues(tmp_path):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    out = tmp_path / "t"
    tune("lr", trials=2, out=out, storage=storage, study_name="lr", **SMALL)
    result = tune("lr", trials=1, out=out, storage=storage, study_name="lr", **SMALL)
    assert [r["number"] for r in _rows(result.trials_table)] == ["0", "1", "2"]
    assert (out / "trial-002" / "config.json").is_file()
    assert read_config_file(result.best_config)["source"]["study"] == {"name": "lr", "storage": storage}


def test_cli_prints_a_line_per_trial_and_the_best_yaml(tmp_path, capsys):
    out = tmp_path / "t"
    assert cli.main(["tune", "--model", "lr", "--trials", "2", "--out", str(out), "--epochs", "2", "--threads", "1",
                     "--dataset-option", "n_samples=2000", "--train-option", "batch_size=512"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in lines[:2]] == [["trial", "0"], ["trial", "1"]]
    assert lines[-1].startswith(f"best configuration: {out / 'best.yaml'}")
    assert not any(line.startswith("epoch") for line in lines)         # the epoch lines are in each log.txt
    options = read_config_file(out / "best.yaml")
    assert options["batch_size"] == 512 and "--batch-size 512" in options["source"]["command"]


# -- search spaces ------------------------------------------------------------------------------------------------

def test_every_declared_space_is_valid():
    for name in MODELS:
        check_space(name, search_space(name))


def test_a_model_without_a_space_gets_the_training_space_and_embed_dim(monkeypatch):
    monkeypatch.setattr(MODELS["fm"], "search_space", None)
    assert search_space("fm") == {**shared_train_space(), "model.embed_dim": tune_module.FALLBACK_EMBED_DIM}
    assert search_space("lr") == shared_train_space()                    # declares {}: nothing of its own
    assert "train.lr" not in search_space("fm", fixed={"train.lr"})       # a given option is not searched
    monkeypatch.setattr(MODELS["fm"], "search_space", {"train.lr": None})
    assert "train.lr" not in search_space("fm")                          # a declared None drops a shared entry


def test_list_choices_travel_as_json():
    trial = optuna.trial.FixedTrial({"model.mlp_dims": json.dumps([64, 64]), "model.dropout": 0.25})
    assert tune_module._suggest(trial, "model.mlp_dims", ("categorical", [[64], [64, 64]])) == [64, 64]
    assert tune_module._suggest(trial, "model.dropout", ("float", 0.0, 0.5)) == 0.25


def test_bad_search_spaces_are_refused_a_line_each():
    with pytest.raises(ConfigError) as info:
        check_space("fm", {"model.foo": ("int", 1, 2), "train.lr": ("log_float", 0, 1), "x": ("int", 1, 2),
                           "model.embed_dim": ("categorical", []), "train.epochs": ("int", 0, 3),
                           "train.patience": ("float", 1, 2)})
    lines = str(info.value).splitlines()
    assert len(lines) == 6
    assert "takes no option 'foo'" in lines[0] and "above 0" in lines[1] and "'model.<option>'" in lines[2]
    assert "categorical" in lines[3] and "'epochs'" in lines[4] and "1.5" in lines[5]


# -- bad options ----------------------------------------------------------------------------------------------

def test_bad_options_are_refused_before_any_trial(tmp_path, capsys):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    with pytest.raises(ConfigError) as info:
        tune("fm", trials=0, timeout=-1, out=tmp_path / "full", pruner="foo", bogus=1, echo=None)
    text = str(info.value)
    for part in ("'trials' must be an integer >= 1", "'timeout' must be", "unknown training option(s) ['bogus']",
                 "pruner must be one of", "is not empty"):
        assert part in text
    assert not any((tmp_path / "full").glob("trial-*"))
    with pytest.raises(ConfigError, match="are both given and searched"):
        tune("fm", out=tmp_path / "a", space={"train.lr": ("log_float", 1e-3, 1e-2)}, lr=1e-3, echo=None)
    with pytest.raises(ConfigError, match="nothing to search"):
        tune("lr", out=tmp_path / "b", lr=1e-3, embedding_regularizer=0.0, echo=None)
    with pytest.raises(ConfigError, match="give a budget"):
        tune("fm", trials=None, out=tmp_path / "c", echo=None)
    assert cli.main(["tune", "--model", "nope", "--out", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fgraph: error: unknown model 'nope'") and "Traceback" not in err


def test_without_optuna_a_one_line_message(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "optuna", None)       # import optuna now raises ImportError
    with pytest.raises(ConfigError, match=r"fgraph tune needs optuna: pip install 'fgraph\[tune\]'"):
        tune("fm", out=tmp_path / "t")
    assert cli.main(["tune", "--out", str(tmp_path / "t")]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [f"fgraph: error: {tune_module.OPTUNA_MISSING}"]


def test_a_shipped_configuration_is_pinned_in_best_yaml(tmp_path, monkeypatch):
    """Trials run without fgraph's shipped configuration; best.yaml writes out what it sets, so that
    ``fgraph train --config best.yaml`` (which layers the shipped file under it) trains the same run."""
    import fgraph.zoo

    zoo = tmp_path / "zoo"
    zoo.mkdir()
    (zoo / "lr-synthetic.yaml").write_text("model: lr\ndataset: synthetic\nbatch_size: 256\npatience: 7\n")
    monkeypatch.setattr(fgraph.zoo, "ZOO_DIR", zoo)
    result = tune("lr", trials=1, out=tmp_path / "t", **SMALL)
    options = read_config_file(result.best_config)
    assert options["batch_size"] == 1024 and options["patience"] == 2      # the trial's (synthetic's defaults)
    assert "lr-synthetic.yaml" in options["source"]["pinned"]
    trial = json.loads((tmp_path / "t" / "trial-000" / "config.json").read_text())
    assert trial["zoo"] is None and trial["train"]["batch_size"] == 1024
