"""The shipped configurations (fgraph.zoo): `fgraph train --model M --dataset D` uses M-D.yaml, says so, and
every option given on the command line wins over it."""
import json

import pytest

import fgraph.api as fg
import fgraph.zoo as zoo
from fgraph.cli import main
from fgraph.configfile import read_config_file
from fgraph.data.datasets import DATASETS
from fgraph.models import MODELS

TINY = ["--no-progress", "--threads", "1", "--dataset-option", "n_samples=1500"]


@pytest.fixture
def shipped(tmp_path, monkeypatch):
    """A zoo folder of our own with one configuration, fm on synthetic."""
    folder = tmp_path / "zoo"
    folder.mkdir()
    (folder / "fm-synthetic.yaml").write_text(
        "# made for the test\n"
        "source: {method: by hand, note: test fixture}\n"
        "model: fm\ndataset: synthetic\n"
        "embed_dim: 6\nlr: 2e-3\nbatch_size: 512\nepochs: 2\npatience: 5\nembedding_weight_decay: 1e-5\n"
        "model_options: {}\n")
    monkeypatch.setattr(zoo, "ZOO_DIR", folder)
    return folder / "fm-synthetic.yaml"


def _config(run_dir):
    return json.loads((run_dir / "config.json").read_text())


def test_train_uses_the_shipped_configuration_and_says_so(shipped, tmp_path, capsys):
    assert main(["train", "--model", "fm", "--out", str(tmp_path / "r")] + TINY) == 0
    out = capsys.readouterr().out
    assert f"configuration: {shipped}" in out
    saved = _config(tmp_path / "r")
    assert saved["zoo"] == "fm-synthetic.yaml"
    assert saved["model_options"]["embed_dim"] == 6
    assert saved["train"]["lr"] == 2e-3 and saved["train"]["batch_size"] == 512 and saved["train"]["epochs"] == 2
    assert saved["train"]["embedding_weight_decay"] == 1e-5


def test_flags_win_over_the_shipped_configuration(shipped, tmp_path, capsys):
    assert main(["train", "--model", "fm", "--out", str(tmp_path / "r"), "--lr", "0.01", "--embed-dim", "3",
                 "--epochs", "1"] + TINY) == 0
    saved = _config(tmp_path / "r")
    assert saved["train"]["lr"] == 0.01 and saved["model_options"]["embed_dim"] == 3
    assert saved["train"]["epochs"] == 1 and saved["train"]["batch_size"] == 512   # the rest still from the file


def test_a_config_file_wins_over_the_shipped_configuration(shipped, tmp_path):
    mine = tmp_path / "mine.yaml"
    mine.write_text("model: fm\nbatch_size: 256\nepochs: 1\n")
    assert main(["train", "--config", str(mine), "--out", str(tmp_path / "r")] + TINY) == 0
    saved = _config(tmp_path / "r")
    assert saved["train"]["batch_size"] == 256 and saved["train"]["lr"] == 2e-3


def test_no_zoo_drops_it(shipped, tmp_path, capsys):
    assert main(["train", "--model", "fm", "--no-zoo", "--epochs", "1", "--out", str(tmp_path / "r")] + TINY) == 0
    assert "configuration:" not in capsys.readouterr().out
    saved = _config(tmp_path / "r")
    assert saved["zoo"] is None and saved["train"]["batch_size"] == 1024   # the synthetic set's own default


def test_a_pair_without_a_configuration_gets_the_defaults(shipped, tmp_path, capsys):
    assert main(["train", "--model", "lr", "--epochs", "1", "--out", str(tmp_path / "r")] + TINY) == 0
    assert "configuration:" not in capsys.readouterr().out
    assert _config(tmp_path / "r")["zoo"] is None


def test_api_reports_the_configuration_it_used(shipped, tmp_path):
    run = fg.train("fm", "synthetic", out=tmp_path / "r", epochs=1, progress=False, threads=1,
                   dataset_options={"n_samples": 1500})
    assert run.zoo_config == shipped
    assert run.model.hparams["embed_dim"] == 6


def test_a_resume_uses_the_same_configuration(shipped, tmp_path):
    fg.train("fm", "synthetic", out=tmp_path / "r", epochs=1, progress=False, threads=1,
             dataset_options={"n_samples": 1500})
    again = fg.train("fm", "synthetic", out=tmp_path / "r", epochs=2, resume=True, progress=False, threads=1,
                     dataset_options={"n_samples": 1500})
    assert again.trainer.epoch == 2 and again.model.hparams["embed_dim"] == 6


def test_a_protocol_fills_only_what_is_not_given(tmp_path, monkeypatch):
    protocols = pytest.importorskip("fgraph.train.protocols")
    folder = tmp_path / "zoo"
    folder.mkdir()
    (folder / "fm-synthetic.yaml").write_text("model: fm\ndataset: synthetic\nprotocol: bars\nlr: 2e-3\n")
    monkeypatch.setattr(zoo, "ZOO_DIR", folder)
    seen = {}
    monkeypatch.setattr(fg, "check_train_options", lambda *a, **kw: seen.update(kw) or (_ for _ in ()).throw(
        RuntimeError("stop")))
    with pytest.raises(RuntimeError, match="stop"):
        fg.train("fm", "synthetic", out=tmp_path / "r", epochs=3)
    bars = protocols.PROTOCOLS["bars"]
    assert float(seen["lr"]) == 2e-3   # the shipped file over the protocol (YAML reads 2e-3 as text)
    assert seen["epochs"] == 3         # the caller over both
    for key, value in bars.items():
        if key not in ("lr", "epochs"):
            assert seen[key] == value, key


# -- the shipped files themselves ---------------------------------------------------------------------------
SHIPPED = sorted(zoo.ZOO_DIR.glob("*.yaml")) if zoo.ZOO_DIR.is_dir() else []


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_every_shipped_configuration_is_valid_and_says_how_it_was_found(path, monkeypatch):
    options = read_config_file(path)
    model, _, dataset = path.stem.rpartition("-")
    assert model in MODELS and dataset in DATASETS
    assert options.get("model", model) == model and options.get("dataset", dataset) == dataset
    source = options.get("source")
    assert isinstance(source, dict) and (source.get("method") or source.get("made_by")), \
        f"{path.name} must record how it was found"
    layered = fg._layer_options(model, dataset, True, None, None, None, None, None, {})
    embed_dim, min_count, model_options, dataset_options, protocol, train_options, used = layered
    assert used == path
    # Every option the file sets is one train() accepts, with a valid value.
    fg.check_train_options(model, dataset, embed_dim=embed_dim, min_count=min_count or 1,
                           model_options=model_options, dataset_options=dataset_options, **train_options)


# -- variants: settings for one value of a model option ---------------------------------------------------------
def _captured_train_options(monkeypatch, call):
    seen = {}
    monkeypatch.setattr(fg, "check_train_options", lambda *a, **kw: seen.update(kw) or (_ for _ in ()).throw(
        RuntimeError("stop")))
    with pytest.raises(RuntimeError, match="stop"):
        call()
    return seen


def test_the_shipped_aim_file_has_a_variant_for_base_deepfm():
    """`fgraph train --model aim --base deepfm --dataset frappe` gets the settings reported for AIM(DeepFM);
    another base, or none, gets the file's top level; the caller's options still win."""
    def layered(model_options, **train):
        return fg._layer_options("aim", "frappe", True, None, None, model_options, None, None, train)[5]

    deep = layered({"base": "deepfm"})
    assert (deep["embedding_regularizer"], deep["lr_patience"], deep["patience"]) == (0.05, 1, 4)
    for other in ({"base": "fm"}, {"base": "ipnn"}, {}):
        plain = layered(other)
        assert plain["embedding_regularizer"] == 1e-3 and plain["patience"] == 2, other
    assert layered({"base": "deepfm"}, patience=7)["patience"] == 7


def test_a_config_file_variant_follows_the_flag(tmp_path, monkeypatch):
    mine = tmp_path / "mine.yaml"
    mine.write_text("model: aim\nlr: 2e-3\nmodel_options: {max_order: 2}\n"
                    "variants:\n  base:\n    deepfm: {lr: 5e-3, model_options: {max_order: 3}}\n"
                    "  max_order:\n    3: {batch_size: 256}\n")

    def run(*flags):
        return _captured_train_options(monkeypatch, lambda: main(
            ["train", "--config", str(mine), "--no-zoo", "--out", str(tmp_path / "r")] + list(flags) + TINY))

    deep = run("--base", "deepfm")
    assert float(deep["lr"]) == 5e-3 and deep["model_options"]["max_order"] == 3
    assert "batch_size" not in deep          # variants are matched on what was given, not on each other
    plain = run("--base", "fm")
    assert float(plain["lr"]) == 2e-3 and plain["model_options"]["max_order"] == 2
    flagged = run("--max-order", "3")        # a flag chooses a variant too (YAML's 3 and the flag's 3 agree)
    assert flagged["batch_size"] == 256
    assert float(run("--base", "deepfm", "--lr", "0.01")["lr"]) == 0.01   # a flag wins over the variant


@pytest.mark.parametrize("text, message", [
    ("variants: [base]\n", "variants must map a model option"),
    ("variants: {base: deepfm}\n", "variants: base must map values"),
    ("variants: {base: {deepfm: 3}}\n", "a variant must be a mapping"),
    ("variants: {base: {deepfm: {model: fm}}}\n", r"a variant cannot set \['model'\]"),
    ("variants: {base: {deepfm: {lerning_rate: 1}}}\n", r"variants: base: deepfm\).*unknown option"),
])
def test_bad_variants_are_refused_with_the_file_and_the_entry(tmp_path, text, message):
    from fgraph.errors import ConfigError

    path = tmp_path / "bad.yaml"
    path.write_text("model: aim\n" + text)
    with pytest.raises(ConfigError, match=message) as info:
        read_config_file(path)
    assert str(path) in str(info.value)
