"""Options from every entry point (Python, config file, command line) are checked once, before any data is
read, and each bad one gets a line naming it."""
import json

import pytest
import torch

import fgraph.api as fg
from fgraph._validate import as_annotated, as_bool, as_float, as_int
from fgraph.cli import main
from fgraph.data.datasets import synthetic
from fgraph.data import FieldEncoder
from fgraph.errors import ConfigError, FgraphError, InputFileError
from fgraph.models import GraphFM, build_model
from fgraph.train import TrainConfig

TINY = {"epochs": 1, "batch_size": 512, "progress": False, "threads": 1}
TINY_DATA = {"n_samples": 1500}


# -- the coercion rules ------------------------------------------------------------------------------------
@pytest.mark.parametrize("value, expected", [(3, 3), ("3", 3), (3.0, 3), (" 7 ", 7), ("4e0", 4)])
def test_integers_accept_exact_integers_only(value, expected):
    assert as_int("epochs", value) == expected


@pytest.mark.parametrize("value", [2.5, 1000.7, "2.5", "abc", True, None, [3], float("inf")])
def test_integers_refuse_everything_that_would_be_truncated_or_guessed(value):
    with pytest.raises(ConfigError, match=r"option 'epochs' must be an integer"):
        as_int("epochs", value)


@pytest.mark.parametrize("value, expected", [("1e-3", 1e-3), (0.5, 0.5), (2, 2.0), (" 3e-4 ", 3e-4)])
def test_floats_parse_numeric_text(value, expected):
    # YAML 1.1 (PyYAML) reads `lr: 1e-3` as the string "1e-3".
    assert as_float("lr", value) == expected


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan"), "inf", "nan", "fast", True])
def test_floats_refuse_non_finite_and_text(value):
    with pytest.raises(ConfigError, match="option 'lr' must be a finite number"):
        as_float("lr", value)


@pytest.mark.parametrize("value, expected", [("no", False), ("No", False), ("off", False), ("0", False),
                                             (0, False), ("yes", True), ("true", True), (1, True), (True, True)])
def test_booleans_read_yes_and_no(value, expected):
    assert as_bool("progress", value) is expected


@pytest.mark.parametrize("value", ["maybe", 2, 0.5, None, ""])
def test_booleans_refuse_anything_else(value):
    with pytest.raises(ConfigError, match="option 'progress' must be true or false"):
        as_bool("progress", value)


def test_annotated_lists_refuse_a_scalar_and_check_every_entry():
    assert as_annotated("neighbours", [3, "2"], "Sequence[int] | None") == [3, 2]
    with pytest.raises(ConfigError, match=r"'neighbours' must be a list"):
        as_annotated("neighbours", 3, "Sequence[int] | None")
    with pytest.raises(ConfigError, match=r"'neighbours\[1\]' must be an integer >= 1, got 'abc'"):
        as_annotated("neighbours", [3, "abc"], "Sequence[int] | None")


# -- TrainConfig ------------------------------------------------------------------------------------------
def test_train_config_coerces_text_values_exactly():
    cfg = TrainConfig(lr="1e-3", epochs="3", progress="no", batch_size=1024.0, grad_clip="10")
    assert cfg.lr == 1e-3 and cfg.epochs == 3 and cfg.progress is False and cfg.batch_size == 1024
    assert isinstance(cfg.batch_size, int) and cfg.grad_clip == 10.0


@pytest.mark.parametrize("option, value, message", [
    ("epochs", 2.5, "'epochs' must be an integer >= 1, got 2.5"),
    ("batch_size", 1000.7, "'batch_size' must be an integer >= 1, got 1000.7"),
    ("progress", "maybe", "'progress' must be true or false"),
    ("lr", float("inf"), "'lr' must be a finite number > 0.0, got inf"),
    ("lr", 0, "'lr' must be a finite number > 0.0"),
    ("weight_decay", -1e-4, "'weight_decay' must be a finite number >= 0.0, got -0.0001"),
    ("embedding_weight_decay", -1, "'embedding_weight_decay' must be a finite number >= 0.0"),
    ("grad_clip", -1.0, "'grad_clip' must be a finite number >= 0.0, got -1.0"),
    ("threads", -2, "'threads' must be an integer >= 1, got -2"),
    ("threads", 0, "'threads' must be an integer >= 1, got 0"),
    ("patience", -1, "'patience' must be an integer >= 0"),
    ("optimizer", "adamm", "unknown optimizer 'adamm'"),
    ("optimizer_options", {"momentum": 0.9}, "Adam does not take"),
    ("optimizer_options", [1, 2], "'optimizer_options' must be a mapping"),
    ("monitor", "rmse", "'monitor' is 'rmse', which does not fit task 'binary'"),
    ("task", "ranking", "'task' must be one of"),
    ("device", "gpu0", "'device' is 'gpu0', which torch does not know"),
])
def test_train_config_refuses_bad_values_naming_the_option(option, value, message):
    with pytest.raises(ConfigError) as info:
        TrainConfig(**{option: value})
    assert message in str(info.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this torch can use CUDA")
def test_cuda_on_a_cpu_build_says_so():
    with pytest.raises(ConfigError, match="'device' is 'cuda'.*cannot use CUDA; use --device cpu"):
        TrainConfig(device="cuda")


def test_every_bad_option_is_reported_at_once():
    with pytest.raises(ConfigError) as info:
        TrainConfig(epochs=2.5, lr="fast", grad_clip=-1)
    lines = str(info.value).splitlines()
    assert len(lines) == 3
    assert any("'epochs'" in x for x in lines) and any("'lr'" in x for x in lines)
    assert any("'grad_clip'" in x for x in lines)


def test_negative_weight_decay_never_reaches_the_optimiser():
    # torch checks weight_decay >= 0 only for the optimiser's default, not per parameter group.
    with pytest.raises(ConfigError, match="embedding_weight_decay"):
        TrainConfig(embedding_weight_decay=-0.1)


# -- model options ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def space():
    data = synthetic(n_samples=500, n_fields=4, cardinality=5, pairs=((0, 1),), triple=None)
    return FieldEncoder(data.schema).fit(data.train).space_


@pytest.mark.parametrize("model, options, message", [
    ("graphfm", {"heads": 0}, "model 'graphfm' option 'heads' must be an integer >= 1, got 0"),
    ("graphfm", {"neighbours": 3}, "model 'graphfm' option 'neighbours' must be a list"),
    ("graphfm", {"neighbours": "abc"}, "model 'graphfm' option 'neighbours' must be a list"),
    ("graphfm", {"neighbours": [2, "abc"]}, "'neighbours[1]' must be an integer >= 1, got 'abc'"),
    ("fm", {"embed_dim": "abc"}, "model 'fm' option 'embed_dim' must be an integer >= 1, got 'abc'"),
    ("fm", {"embed_dim": 2.5}, "option 'embed_dim' must be an integer >= 1, got 2.5"),
    ("afm", {"dropout": 1.0}, "option 'dropout' must be below 1.0"),
    ("fives", {"orders": 1}, "model 'fives'"),
    ("fignn", {"embed_dim": 5, "attention_heads": 2, "self_attention": True}, "model 'fignn'"),
    ("graphfm", {"topk_mode": "weird"}, "model 'graphfm'"),
    ("graphfm", {"residual": "perhaps"}, "option 'residual' must be true or false"),
    ("fm", {"heads": 2}, "model 'fm' does not take option(s) ['heads']"),
])
def test_model_options_are_checked_naming_the_model_and_option(space, model, options, message):
    with pytest.raises(ConfigError) as info:
        build_model(model, space, **options)
    assert message in str(info.value)


def test_model_options_given_as_text_are_coerced_and_recorded(space):
    model = build_model("graphfm", space, embed_dim="8", heads="1", residual="yes", neighbours=["3", 2])
    assert model.hparams["embed_dim"] == 8 and model.hparams["heads"] == 1
    assert model.hparams["residual"] is True and model.hparams["neighbours"] == [3, 2]


def test_direct_construction_is_checked_too(space):
    # A researcher building the class by hand gets the same message, not a ZeroDivisionError.
    with pytest.raises(ConfigError, match="option 'heads' must be an integer >= 1, got 0"):
        GraphFM(space, heads=0)


# -- the API: checked before any data is read --------------------------------------------------------------
def test_options_are_checked_before_the_data_is_read(tmp_path):
    # The data directory does not exist: a data error would name it. The option error must come first.
    with pytest.raises(ConfigError) as info:
        fg.train("fm", "frappe", data_dir=tmp_path / "nowhere", out=tmp_path / "r", lr=float("inf"),
                 model_options={"embed_dim": "abc"})
    msg = str(info.value)
    assert "'lr'" in msg and "'embed_dim'" in msg and "nowhere" not in msg
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("kwargs, message", [
    ({"model_options": [["heads", 2]]}, "'model_options' must be a mapping"),
    ({"dataset_options": "n_samples=10"}, "'dataset_options' must be a mapping"),
    ({"dataset_options": {"n_samples": "many"}}, "data set 'synthetic' option 'n_samples' must be an integer"),
    ({"dataset_options": {"rows": 10}}, "data set 'synthetic' does not take option(s) ['rows']"),
    ({"min_count": 1.5}, "option 'min_count' must be an integer >= 1, got 1.5"),
    ({"epochs": 2.5}, "'epochs' must be an integer >= 1, got 2.5"),
    ({"learning_rate": 0.1}, "unknown training option(s) ['learning_rate']"),
])
def test_api_train_refuses_bad_options(tmp_path, kwargs, message):
    with pytest.raises(ConfigError) as info:
        fg.train("fm", "synthetic", out=tmp_path / "r", **kwargs)
    assert message in str(info.value)


def test_yaml_text_values_train_as_numbers(tmp_path):
    cfg = tmp_path / "run.yaml"
    # PyYAML reads 1e-3 (no dot) as a string; "no" as False; the README writes lr this way.
    cfg.write_text("model: lr\nlr: 1e-3\nepochs: 1\nbatch_size: 512\nprogress: no\nthreads: 1\n"
                   "dataset_options:\n  n_samples: 1500\n")
    out = tmp_path / "run"
    assert main(["train", "--config", str(cfg), "--out", str(out)]) == 0
    saved = json.loads((out / "config.json").read_text())
    assert saved["train"]["lr"] == 1e-3 and saved["train"]["progress"] is False


# -- the command line -------------------------------------------------------------------------------------
def _cli_error(argv, capsys):
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert lines and all(line.startswith("fgraph: error: ") for line in lines), err
    return err


@pytest.mark.parametrize("text, suffix, message", [
    ("model: [fm\nepochs: 2\n", ".yaml", "is not valid YAML at line"),
    ("epochs: 1\n  lr: 2\n", ".yaml", "is not valid YAML at line 2"),
    ('{"epochs": 1,}', ".json", "is not valid JSON at line 1"),
    ("- epochs\n- 1\n", ".yaml", "must hold a mapping of option names to values, not a list"),
    ("model_options: [heads, 2]\n", ".yaml", "'model_options' must be a mapping"),
    ("epochs: 2.5\n", ".yaml", "'epochs' must be an integer >= 1, got 2.5"),
    ("epoch: 2\n", ".yaml", "unknown option(s) ['epoch']"),
    ("epochs = 2\n", ".toml", "unknown format '.toml'"),
])
def test_bad_config_files_get_one_clear_line(tmp_path, capsys, text, suffix, message):
    cfg = tmp_path / f"run{suffix}"
    cfg.write_text(text)
    err = _cli_error(["train", "--config", str(cfg), "--out", str(tmp_path / "r")], capsys)
    assert message in err and (str(cfg) in err or "option" in message or "'epochs'" in message)


def test_a_non_utf8_config_is_named(tmp_path, capsys):
    cfg = tmp_path / "run.yaml"
    cfg.write_bytes("model: fm\nlr: 0.001 # réglé\n".encode("latin-1"))
    err = _cli_error(["train", "--config", str(cfg)], capsys)
    assert str(cfg) in err and "not UTF-8" in err and "line 2" in err


def test_a_missing_config_is_named(tmp_path, capsys):
    err = _cli_error(["train", "--config", str(tmp_path / "none.yaml")], capsys)
    assert "none.yaml does not exist" in err


@pytest.mark.parametrize("argv, message", [
    (["--threads", "-2"], "'threads' must be an integer >= 1, got -2"),
    (["--lr", "inf"], "'lr' must be a finite number > 0.0, got inf"),
    (["--lr", "nan"], "'lr' must be a finite number"),
    (["--weight-decay", "-1"], "'weight_decay' must be a finite number >= 0.0"),
    (["--model", "graphfm", "--model-option", "heads=0"], "option 'heads' must be an integer >= 1"),
    (["--model", "graphfm", "--model-option", "neighbours=3"], "option 'neighbours' must be a list"),
    (["--model", "graphfm", "--model-option", "neighbours=abc"], "option 'neighbours' must be a list"),
    (["--model-option", "embed_dim=abc"], "option 'embed_dim' must be an integer >= 1, got 'abc'"),
    (["--model-option", "=3"], "--model-option takes KEY=VALUE"),
    (["--resume"], "--resume needs --out RUN_DIR"),
])
def test_bad_flags_get_one_clear_line(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    err = _cli_error(["train", "--no-progress"] + argv, capsys)
    assert message in err
    assert not (tmp_path / "runs").exists()  # nothing was written


@pytest.mark.skipif(torch.cuda.is_available(), reason="this torch can use CUDA")
def test_cli_device_cuda_on_cpu_torch(tmp_path, capsys):
    err = _cli_error(["train", "--device", "cuda", "--out", str(tmp_path / "r")], capsys)
    assert "cannot use CUDA" in err


def test_several_bad_flags_give_one_line_each(tmp_path, capsys):
    err = _cli_error(["train", "--threads", "-2", "--lr", "inf", "--out", str(tmp_path / "r")], capsys)
    assert len(err.strip().splitlines()) == 2


def test_a_bug_inside_fgraph_keeps_its_traceback(monkeypatch):
    # Only FgraphError is the user's fault; anything else must surface for a bug report.
    def broken(**_):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(fg, "train", broken)
    with pytest.raises(ZeroDivisionError):
        main(["train", "--no-progress"])


def test_every_user_error_is_an_fgraph_error_and_a_builtin():
    assert issubclass(ConfigError, FgraphError) and issubclass(ConfigError, ValueError)
    assert issubclass(InputFileError, FgraphError)
