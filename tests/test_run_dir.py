"""RunDirectory owns a run's files: their paths, reading and writing them, and loading a trained run in one call.
(The lock and the refusals to write into a run are in tests/test_bad_input_train.py.)"""
import json

import pytest
import torch

import fgraph.api as fg
from fgraph.errors import CheckpointError, InputFileError, InputFileNotFoundError
from fgraph.models import FM
from fgraph.train import LoadedRun, RunDirectory
from fgraph.train.run_dir import OPTIONAL_RUN_FILES, RUN_FILES


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "fm"
    return fg.train("fm", "synthetic", out=out, epochs=2, batch_size=512, embed_dim=4, progress=False,
                    dataset_options={"n_samples": 2000})


def test_the_file_paths_are_the_run_files(tmp_path):
    d = RunDirectory(tmp_path / "r")
    paths = [d.config_path, d.encoder_path, d.checkpoint_path, d.history_path, d.metrics_path, d.log_path,
             d.schema_path, d.search_path]
    assert [p.name for p in paths] == list(RUN_FILES) and all(p.parent == d.path for p in paths)


def test_a_trained_run_is_found_where_run_directory_says(run):
    d = RunDirectory(run.run_dir)
    assert sorted(d.existing()) == sorted(set(RUN_FILES) - set(OPTIONAL_RUN_FILES))
    assert run.trainer.checkpoint_path == d.checkpoint_path
    history = json.loads(d.history_path.read_text())
    assert [h["epoch"] for h in history] == [1, 2] == [h["epoch"] for h in run.trainer.history]
    assert json.loads(d.metrics_path.read_text())["test"] == run.metrics["test"]
    assert len(d.log_path.read_text().splitlines()) == 2
    assert d.read_config()["model"] == "fm" and d.read_config()["train"]["epochs"] == 2
    assert d.read_encoder().fingerprint() == run.encoder.fingerprint()
    assert d.read_checkpoint()["epoch"] == 2


def test_load_gives_the_whole_run_in_one_call(run):
    loaded = RunDirectory(run.run_dir).load()
    assert isinstance(loaded, LoadedRun) and loaded.path == run.run_dir
    assert isinstance(loaded.model, FM) and loaded.encoder.fingerprint() == run.encoder.fingerprint()
    assert loaded.config == RunDirectory(run.run_dir).read_config() and loaded.checkpoint["model_name"] == "fm"
    # The best weights, which the run's model in memory also holds.
    for key, value in run.model.state_dict().items():
        torch.testing.assert_close(loaded.model.state_dict()[key], value.cpu())
    model, encoder, config = fg.load_run(run.run_dir)
    assert type(model) is FM and encoder.fingerprint() == loaded.encoder.fingerprint() and config == loaded.config


def test_writing_and_reading_back_a_configuration(tmp_path):
    d = RunDirectory(tmp_path)
    with pytest.raises(InputFileNotFoundError, match=rf"{tmp_path} is not an fgraph run directory \(no config.json\)"):
        d.read_config()
    config = {"model": "fm", "dataset": "synthetic", "min_count": 1, "model_options": {}, "dataset_options": {},
              "train": {"epochs": 1}}
    d.write_config(config)
    assert d.read_config() == config and not list(tmp_path.glob(".*tmp"))
    d.write_config({"model": "fm"})
    with pytest.raises(InputFileError, match=r"config.json is not an fgraph run configuration: it lacks"):
        d.read_config()
    d.write_config(config)
    assert d.read_encoder() is None
    with pytest.raises(InputFileNotFoundError, match=r"holds no checkpoint.pt"):
        d.read_checkpoint()
    with pytest.raises(InputFileNotFoundError, match=r"holds no checkpoint.pt"):
        d.load()


def test_load_refuses_files_from_different_runs(run, tmp_path):
    """The checks of load_run, now RunDirectory's: a config.json of another run is caught."""
    other = tmp_path / "copy"
    other.mkdir()
    for name in set(RUN_FILES) - set(OPTIONAL_RUN_FILES):
        (other / name).write_bytes((run.run_dir / name).read_bytes())
    d = RunDirectory(other)
    config = d.read_config()
    d.write_config({**config, "min_count": 3})
    with pytest.raises(CheckpointError, match=r"disagrees with .*config.json on 'min_count'"):
        d.load()
    d.write_config({**config, "model": "lr"})
    with pytest.raises(CheckpointError, match=r"holds a 'fm' model, but .*config.json names model 'lr'"):
        d.load()
    d.write_config(config)
    d.encoder_path.write_text("{not json")
    with pytest.raises(InputFileError, match=r"encoder.json is not valid JSON"):
        d.load()
