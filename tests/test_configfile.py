"""`fgraph train --config FILE`: the file takes the flags' names and means what the flags mean."""
import argparse
import json

import pytest
import yaml

import fgraph.api as fg
from fgraph import cli
from fgraph.configfile import read_config_file
from fgraph.errors import ConfigError


class _Captured(Exception):
    """Raised by the stand-in for fgraph.api.train, carrying the options the command line handed it."""


def _train_actions() -> list[argparse.Action]:
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return [a for a in sub.choices["train"]._actions if a.option_strings]


def _capture(monkeypatch, argv) -> dict:
    """The keyword arguments `fgraph train ARGV` passes to fgraph.api.train (nothing is trained)."""
    def fake_train(**options):
        raise _Captured(options)

    monkeypatch.setattr(fg, "train", fake_train)
    with pytest.raises(_Captured) as info:
        cli.main(["train", *argv])
    return info.value.args[0]


def _write(tmp_path, options: dict, suffix: str = ".yaml", name: str = "run"):
    path = tmp_path / f"{name}{suffix}"
    path.write_text(json.dumps(options) if suffix == ".json" else yaml.safe_dump(options), encoding="utf-8")
    return path


#: A value for each kind of `fgraph train` option: (command-line words, config-file value).
def _sample(action: argparse.Action):
    if isinstance(action, argparse._StoreTrueAction):
        return [], True
    if isinstance(action, argparse._AppendAction):
        return ["heads=2"], ["heads=2"]
    if isinstance(action, argparse._StoreAction):
        if action.type is int:
            return ["3"], 3
        if action.type is float:
            return ["0.25"], 0.25
        if action.type in (None, str):
            return ["abc"], "abc"
    raise AssertionError(f"{action.option_strings}: {type(action).__name__} with type {action.type}: add a sample "
                         f"value for this kind of flag to the test")


NOT_IN_A_FILE = {"--help": "argparse's own", "--config": "a config file does not name another (tested below)"}
ACTIONS = [a for a in _train_actions() if a.option_strings[-1] not in NOT_IN_A_FILE]


@pytest.mark.parametrize("action", ACTIONS, ids=[a.option_strings[-1] for a in ACTIONS])
@pytest.mark.parametrize("spelling", ["dashes", "underscores"])
@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_every_train_flag_means_the_same_in_a_config_file(action, spelling, suffix, tmp_path, monkeypatch, capsys):
    flag = action.option_strings[-1]
    words, value = _sample(action)
    key = flag[2:] if spelling == "dashes" else flag[2:].replace("-", "_")
    # --resume needs a run directory; both ways get the same one from the command line.
    extra = ["--out", str(tmp_path / "run")] if flag == "--resume" else []
    config = _write(tmp_path, {key: value}, suffix)
    if flag == "--list-models":   # lists the models instead of training: compare what is printed
        assert cli.main(["train", flag]) == 0
        by_flag = capsys.readouterr().out
        assert cli.main(["train", "--config", str(config)]) == 0
        assert capsys.readouterr().out == by_flag and "fignn" in by_flag
        return
    by_flag = _capture(monkeypatch, [flag, *words, *extra])
    by_file = _capture(monkeypatch, ["--config", str(config), *extra])
    assert by_file == by_flag
    # ... and the option did reach fgraph.api.train: the two differ from a run without it.
    assert by_flag != _capture(monkeypatch, extra), f"{flag} changed nothing"


def test_the_flags_that_name_no_option_map_to_the_option(tmp_path, monkeypatch):
    cases = [({"no-zoo": True}, {"zoo": False}), ({"zoo": False}, {"zoo": False}), ({"zoo": "no"}, {"zoo": False}),
             ({"no_progress": True}, {"progress": False}), ({"progress": False}, {"progress": False}),
             ({"model-option": "heads=2"}, {"model_options": {"heads": 2}}),
             ({"model-option": ["heads=2", "neighbours=[4, 2]"]}, {"model_options": {"heads": 2, "neighbours": [4, 2]}}),
             ({"model_option": {"heads": 2}}, {"model_options": {"heads": 2}}),
             ({"model_options": {"heads": 2}, "model-option": ["dropout=0.1"]},
              {"model_options": {"heads": 2, "dropout": 0.1}}),
             ({"dataset-option": ["n_samples=2000"]}, {"dataset_options": {"n_samples": 2000}}),
             ({"no-zoo": False}, {})]
    for i, (given, expected) in enumerate(cases):
        options = read_config_file(_write(tmp_path, given, name=f"c{i}"))
        assert options == expected, given


def test_zoo_false_in_a_config_file_drops_the_shipped_configuration(tmp_path, monkeypatch, capsys):
    base = ["--model", "fm", "--dataset", "frappe"]
    with_zoo = _capture(monkeypatch, base)
    assert "zoo" not in with_zoo and "shipped configuration" in capsys.readouterr().out
    for options in ({"zoo": False}, {"no-zoo": True}):
        assert _capture(monkeypatch, [*base, "--config", str(_write(tmp_path, options))])["zoo"] is False
        assert "shipped configuration" not in capsys.readouterr().out


def test_flags_win_over_the_file_key_by_key(tmp_path, monkeypatch):
    config = _write(tmp_path, {"epochs": 5, "batch-size": 64, "model-option": ["heads=2", "dropout=0.1"],
                               "dataset_options": {"n_samples": 900}})
    options = _capture(monkeypatch, ["--config", str(config), "--epochs", "2", "--model-option", "heads=4"])
    assert options["epochs"] == 2 and options["batch_size"] == 64
    assert options["model_options"] == {"heads": 4, "dropout": 0.1}
    assert options["dataset_options"] == {"n_samples": 900}


@pytest.mark.parametrize("options, message", [
    ({"epoch": 2}, "unknown option(s) ['epoch']: 'epoch' (did you mean 'epochs'?)"),
    ({"embed-dimm": 4}, "'embed-dimm' (did you mean 'embed-dim'?)"),
    ({"batchsize": 4}, "did you mean 'batch_size'"),
    ({"completely_unrelated": 1}, "'completely_unrelated'. A config file takes the flags"),
    ({"embed-dim": 10, "embed_dim": 12}, "gives option 'embed_dim' twice, as 'embed-dim' and 'embed_dim'"),
    ({"model_options": {"heads": 2}, "model-option": "heads=3"}, "gives 'heads' twice: 2 (model_options) and 3"),
    ({"model-option": ["heads=2", "heads=3"]}, "--model-option gives 'heads' twice"),
    ({"model-option": ["heads"]}, "--model-option takes KEY=VALUE"),
    ({"model-option": 5}, "--model-option takes KEY=VALUE (e.g. --model-option heads=2), got 5"),
    ({"no-zoo": True, "zoo": True}, "no-zoo: true and zoo: true, which contradict each other"),
    ({"no-zoo": "maybe"}, "option 'no-zoo' must be"),
    ({"config": "other.yaml"}, "option 'config' cannot be given in a config file"),
    ({"list-models": "perhaps"}, "option 'list-models' must be"),
    ({"zoo": "perhaps"}, "option 'zoo' must be"),
])
def test_bad_keys_are_named_with_the_file(options, message, tmp_path, capsys):
    config = _write(tmp_path, options)
    assert cli.main(["train", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fgraph: error: ") and message in err and str(config) in err, err
    assert len(err.strip().splitlines()) == 1


def test_a_resume_from_the_file_needs_out(tmp_path, capsys):
    assert cli.main(["train", "--config", str(_write(tmp_path, {"resume": True}))]) == 2
    assert "needs --out RUN_DIR" in capsys.readouterr().err


def test_a_run_from_a_file_of_flag_names_equals_the_run_from_the_flags(tmp_path):
    """End to end: the same run directory contents (config.json) either way."""
    flags = ["--model", "fm", "--embed-dim", "4", "--epochs", "1", "--batch-size", "512", "--lr", "0.01",
             "--dataset-option", "n_samples=1500", "--model-option", "field_dims={}", "--no-progress"]
    assert cli.main(["train", *flags, "--out", str(tmp_path / "by-flags")]) == 0
    config = _write(tmp_path, {"model": "fm", "embed-dim": 4, "epochs": 1, "batch-size": 512, "lr": "1e-2",
                               "dataset-option": ["n_samples=1500"], "model_options": {"field_dims": {}},
                               "no-progress": True})
    assert cli.main(["train", "--config", str(config), "--out", str(tmp_path / "by-file")]) == 0
    saved = [json.loads((tmp_path / d / "config.json").read_text()) for d in ("by-flags", "by-file")]
    assert saved[0] == saved[1]
    assert saved[0]["train"]["lr"] == 0.01 and saved[0]["model_options"]["embed_dim"] == 4
