"""Bad input and faults on the training side: run directories, checkpoints, encoders, divergence, NaN.

Each test feeds one bad input (or fault) and checks the error's type and that its message names the input
(the directory, the file, the option, the epoch and step, the rows), or checks the documented behaviour and
that what was on disk is left intact.
"""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pandas as pd
import pytest
import torch

import fgraph.api as fg
from fgraph.data import FieldEncoder, Schema, categorical, numeric
from fgraph.errors import (CheckpointError, ConfigError, DataError, FgraphError, InputFileError,
                           InputFileNotFoundError, RunDirectoryError, TrainingDivergedError)
from fgraph.models import FM, CTRModel, LogisticRegression
from fgraph.nn import FieldLinear
from fgraph.train import Trainer, TrainConfig, load_checkpoint, save_checkpoint, seed_everything
from fgraph.train.metrics import binary_metrics, regression_metrics
from fgraph.train.run_dir import OPTIONAL_RUN_FILES, LOCK_FILE, RUN_FILES, RunDirectory
from fgraph.train.trainer import check_labels

SMALL = dict(epochs=1, batch_size=512, embed_dim=4, progress=False, dataset_options={"n_samples": 2000})


def small_run(out, model="fm", **kw):
    opts = {**SMALL, **kw}
    if model == "lr":
        opts.pop("embed_dim", None)
    return fg.train(model, "synthetic", out=out, **opts)


def snapshot(run_dir):
    """Every file of a run directory and its bytes (hidden ones too)."""
    return {p.name: p.read_bytes() for p in sorted(run_dir.iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def frame():
    rng = np.random.default_rng(0)
    n = 1200
    df = pd.DataFrame({k: rng.integers(0, 5, n) for k in "abc"})
    logit = 2.0 * np.where(df.a % 2 == df.b % 2, 1.0, -1.0)
    df["label"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return df


@pytest.fixture(scope="module")
def encoded(frame):
    enc = FieldEncoder(Schema(tuple(categorical(c) for c in "abc"), label="label")).fit(frame[:900])
    return enc, enc.transform(frame[:900]), enc.transform(frame[900:])


def trainer(enc, run_dir=None, model=None, **cfg):
    seed_everything(0)
    opts = dict(epochs=1, batch_size=128, lr=0.01, progress=False)
    opts.update(cfg)
    return Trainer(model or FM(enc.space_, embed_dim=4), TrainConfig(**opts), encoder=enc, run_dir=run_dir)


def permuted(enc, field="a"):
    """The same encoder with field ``field``'s vocabulary in reverse order: same sizes, ids mean other values."""
    state = enc.state_dict()
    state["vocabularies"][field] = list(reversed(state["vocabularies"][field]))
    return FieldEncoder.from_state_dict(state)


# -- run directories ------------------------------------------------------------------------------------
def test_training_into_a_run_is_refused_and_leaves_it_intact(tmp_path):
    out = tmp_path / "run"
    small_run(out)
    before = snapshot(out)
    with pytest.raises(RunDirectoryError, match=rf"run directory {out} already holds a run \(config.json.*"
                                                r"--resume.*--overwrite.*another --out"):
        small_run(out, model="lr")
    assert snapshot(out) == before


def test_overwrite_replaces_every_file_of_the_old_run_and_keeps_the_users_own(tmp_path):
    out = tmp_path / "run"
    small_run(out, model="lr", epochs=2)
    (out / "notes.txt").write_text("mine")
    run = small_run(out, overwrite=True)
    saved = json.loads((out / "config.json").read_text())
    assert saved["model"] == "fm"
    state = load_checkpoint(out / "checkpoint.pt")
    assert state["model_name"] == "fm" and state["epoch"] == 1
    assert len(json.loads((out / "history.json").read_text())) == 1
    assert len((out / "log.txt").read_text().splitlines()) == 1
    assert json.loads((out / "metrics.json").read_text())["epochs_run"] == 1 == run.trainer.epoch
    assert (out / "notes.txt").read_text() == "mine"
    assert not (out / LOCK_FILE).exists()


def test_overwrite_keeps_the_old_run_when_the_new_one_fails_before_writing(tmp_path):
    out = tmp_path / "run"
    small_run(out)
    before = snapshot(out)
    with pytest.raises(FgraphError):   # frappe's files are not in tmp_path: fails while reading the data
        fg.train("fm", "frappe", data_dir=tmp_path / "nothing", out=out, overwrite=True, progress=False)
    assert snapshot(out) == before


def test_resume_and_overwrite_together_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="resume and overwrite exclude each other"):
        small_run(tmp_path / "run", resume=True, overwrite=True)


def test_an_empty_existing_directory_is_fine(tmp_path):
    out = tmp_path / "empty"
    out.mkdir()
    small_run(out)
    assert set(RUN_FILES) - set(OPTIONAL_RUN_FILES) <= {p.name for p in out.iterdir()}


def test_out_naming_an_existing_file_is_refused(tmp_path):
    target = tmp_path / "results.csv"
    target.write_text("a,b\n1,2\n")
    with pytest.raises(RunDirectoryError, match=rf"run directory {target} is a file"):
        small_run(target)
    assert target.read_text() == "a,b\n1,2\n"
    with pytest.raises(RunDirectoryError, match="a part of the path is a file"):
        small_run(target / "run")


def test_a_locked_directory_is_refused_in_the_same_process(tmp_path):
    out = tmp_path / "run"
    with RunDirectory(out):
        with pytest.raises(RunDirectoryError, match=rf"{out} is in use by another training in this process "
                                                    rf"\(pid {os.getpid()}\)"):
            small_run(out)
        with pytest.raises(RunDirectoryError, match="in use"):
            Trainer(LogisticRegression(fg.encode_dataset("synthetic", n_samples=500)[0].space_),
                    TrainConfig(progress=False), run_dir=out).fit(
                fg.encode_dataset("synthetic", n_samples=500)[1]["train"])
    assert not (out / LOCK_FILE).exists()
    small_run(out)   # free again once released


# Another process holding the lock the way fgraph takes it (flock on <run>/.lock, its pid inside), without
# importing torch, so that the test stays quick.
LOCK_HOLDER = textwrap.dedent("""
    import fcntl, os, sys, time
    os.makedirs(sys.argv[1], exist_ok=True)
    fd = os.open(os.path.join(sys.argv[1], ".lock"), os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.write(fd, f"{os.getpid()}\\n".encode())
    print("locked", flush=True)
    time.sleep(120)
""")


def test_a_directory_locked_by_another_process_is_refused_until_that_process_dies(tmp_path):
    out = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunDirectoryError, match=rf"{out} is in use by another training \(pid {holder.pid}\)"):
            small_run(out)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # The kernel released the lock with the process: its stale lock file does not block anyone.
    assert (out / LOCK_FILE).read_text().strip() == str(holder.pid)
    small_run(out)
    assert not (out / LOCK_FILE).exists()


def test_a_lock_file_planted_as_a_symlink_is_not_followed(tmp_path):
    victim = tmp_path / "precious.txt"
    victim.write_text("keep me")
    out = tmp_path / "run"
    out.mkdir()
    (out / LOCK_FILE).symlink_to(victim)
    with pytest.raises(RunDirectoryError, match=rf"cannot write in run directory {out}"):
        small_run(out)
    assert victim.read_text() == "keep me"


def test_a_full_disk_keeps_the_previous_checkpoint(encoded, tmp_path, monkeypatch):
    import errno

    import fgraph.train.checkpoint as ckpt

    enc, train, valid = encoded
    out = tmp_path / "run"
    real_save, calls = ckpt.torch.save, []

    def save(obj, fh):
        calls.append(1)
        if len(calls) == 2:   # the checkpoint of epoch 2: the disk is full half-way through
            fh.write(b"half")
            raise OSError(errno.ENOSPC, "No space left on device")
        real_save(obj, fh)
    monkeypatch.setattr(ckpt.torch, "save", save)
    with pytest.raises(RunDirectoryError, match=rf"cannot write checkpoint {out / 'checkpoint.pt'}: No space left "
                                                r"on device; the previous checkpoint \(if any\) is left as it was"):
        trainer(enc, out, epochs=3).fit(train, valid)
    monkeypatch.setattr(ckpt.torch, "save", real_save)
    assert load_checkpoint(out / "checkpoint.pt")["epoch"] == 1
    # The run files a Trainer writes at its start (config.json, encoder.json, schema.yaml), then epoch 1's.
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt", "config.json", "encoder.json", "history.json",
                                                     "log.txt", "schema.yaml"]


class Interrupting(CTRModel):
    """Raises KeyboardInterrupt (a user's Ctrl-C) in its second epoch."""

    def __init__(self, space):
        super().__init__(space)
        self.linear = FieldLinear(space)
        self.epoch = 0

    def on_epoch_start(self, epoch):
        self.epoch = epoch

    def forward(self, batch):
        if self.epoch == 2:
            raise KeyboardInterrupt
        return self.linear(batch)


def test_ctrl_c_releases_the_lock_and_keeps_the_last_checkpoint(encoded, tmp_path):
    enc, train, valid = encoded
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        trainer(enc, out, Interrupting(enc.space_), epochs=3).fit(train, valid)
    assert not (out / LOCK_FILE).exists()
    assert load_checkpoint(out / "checkpoint.pt")["epoch"] == 1
    with RunDirectory(out):   # the lock can be taken again
        pass


def test_resume_keeps_config_json_and_logs_each_epoch_once(tmp_path):
    out = tmp_path / "run"
    small_run(out, batch_size=256, lr=0.01)
    config_before = (out / "config.json").read_bytes()
    # As if the process had died while logging an epoch the checkpoint never got: a line and a half line.
    with open(out / "log.txt", "a") as fh:
        fh.write("epoch   2 | loss 0.12345 | interrupted\nepoch   3 | lo")
    resumed = fg.train("fm", "synthetic", out=out, resume=True, epochs=3, embed_dim=4, progress=False,
                       dataset_options={"n_samples": 2000})
    assert (out / "config.json").read_bytes() == config_before
    # Options not given on resume are the run's own, not the defaults.
    assert resumed.trainer.config.batch_size == 256 and resumed.trainer.config.lr == 0.01
    lines = (out / "log.txt").read_text().splitlines()
    assert [line.split("|")[0].split() for line in lines] == [["epoch", "1"], ["epoch", "2"], ["epoch", "3"]]
    assert "interrupted" not in "".join(lines)
    assert [h["epoch"] for h in json.loads((out / "history.json").read_text())] == [1, 2, 3]
    assert json.loads((out / "metrics.json").read_text())["epochs_run"] == 3


def test_resume_with_another_learning_rate_is_refused(tmp_path):
    out = tmp_path / "run"
    small_run(out, lr=0.01)
    before = snapshot(out)
    with pytest.raises(ConfigError, match=rf"cannot resume {out}: it was run with lr=0.01, not 0.5"):
        small_run(out, resume=True, epochs=2, lr=0.5)
    assert snapshot(out) == before


def test_resume_without_a_run_says_there_is_nothing_to_continue(tmp_path):
    with pytest.raises(InputFileNotFoundError, match=rf"cannot resume: no checkpoint in {tmp_path / 'none'}"):
        small_run(tmp_path / "none", resume=True)
    assert not (tmp_path / "none").exists()   # nothing was left behind
    # A run that died in its first epoch has a config.json but no checkpoint.
    out = tmp_path / "half"
    out.mkdir()
    (out / "config.json").write_text("{}")
    with pytest.raises(InputFileNotFoundError, match=rf"cannot resume {out}: there is no checkpoint.*--overwrite"):
        small_run(out, resume=True)


def test_a_bare_trainer_refuses_a_run_directory_unless_resuming_or_overwriting(encoded, tmp_path):
    enc, train, valid = encoded
    out = tmp_path / "run"
    trainer(enc, out).fit(train, valid)
    before = snapshot(out)
    with pytest.raises(RunDirectoryError, match=rf"{out} already holds a run \(config.json, encoder.json, "
                                                r"checkpoint.pt, history.json"):
        trainer(enc, out).fit(train, valid)
    assert snapshot(out) == before
    t = trainer(enc, out, epochs=2).fit(train, valid, overwrite=True)
    assert t.history[0]["epoch"] == 1 and load_checkpoint(out / "checkpoint.pt")["epoch"] == 2
    # The same Trainer may go on writing the run it wrote.
    t.config.epochs = 3
    t.fit(train, valid)
    assert load_checkpoint(out / "checkpoint.pt")["epoch"] == 3


def test_fives_resumes_exactly_through_the_api(tmp_path):
    # FIVES steps its adjacency on validation batches: the stream of those is part of the checkpoint.
    opts = dict(batch_size=256, embed_dim=4, progress=False, patience=5, dataset_options={"n_samples": 1000})
    straight = fg.train("fives", "synthetic", out=tmp_path / "a", epochs=2, **opts)
    fg.train("fives", "synthetic", out=tmp_path / "b", epochs=1, **opts)
    resumed = fg.train("fives", "synthetic", out=tmp_path / "b", epochs=2, resume=True, **opts)
    assert [h["train_loss"] for h in resumed.trainer.history] == [h["train_loss"] for h in straight.trainer.history]
    for key, value in straight.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key
    assert resumed.metrics["test"] == straight.metrics["test"]


def test_a_checkpoint_survives_sigkill_and_the_run_resumes(tmp_path):
    out = tmp_path / "run"
    script = textwrap.dedent(f"""
        import torch, fgraph.api as fg
        torch.set_num_threads(1)
        fg.train("fm", "synthetic", out={str(out)!r}, epochs=200, patience=200, batch_size=256, embed_dim=4,
                 progress=False, dataset_options={{"n_samples": 3000}})
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while not (out / "checkpoint.pt").exists() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.02)
        time.sleep(0.3)   # somewhere in a later epoch, perhaps mid-write
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    state = load_checkpoint(out / "checkpoint.pt")
    done = state["epoch"]
    assert done >= 1
    resumed = fg.train("fm", "synthetic", out=out, resume=True, epochs=done + 1, progress=False,
                       embed_dim=4, dataset_options={"n_samples": 3000})
    assert resumed.trainer.epoch == done + 1
    assert len((out / "log.txt").read_text().splitlines()) == done + 1
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]


# -- checkpoint / encoder consistency -----------------------------------------------------------------------
def test_a_python_resume_with_a_permuted_encoder_is_refused_and_keeps_the_stored_one(encoded, tmp_path):
    enc, train, valid = encoded
    out = tmp_path / "run"
    trainer(enc, out).fit(train, valid)
    before = snapshot(out)
    other = permuted(enc)
    assert other.space_ == enc.space_ and other.fingerprint() != enc.fingerprint()
    with pytest.raises(CheckpointError, match=r"checkpoint .*checkpoint.pt was trained with another encoder.*"
                                              r"vocabularies differ although sizes match"):
        trainer(other, out, epochs=2).fit(other.transform(pd.DataFrame(
            {"a": [0, 1] * 50, "b": [1, 2] * 50, "c": [0] * 100, "label": [0, 1] * 50})), resume=True)
    assert snapshot(out) == before


def test_a_python_resume_without_encoder_keeps_the_checkpoints_encoder(encoded, tmp_path):
    enc, train, valid = encoded
    out = tmp_path / "run"
    trainer(enc, out).fit(train, valid)
    seed_everything(0)
    t = Trainer(FM(enc.space_, embed_dim=4), TrainConfig(epochs=2, batch_size=128, lr=0.01, progress=False),
                run_dir=out).fit(train, valid, resume=True)
    assert t.encoder is not None
    assert load_checkpoint(out / "checkpoint.pt")["encoder_fingerprint"] == enc.fingerprint()


def test_a_permuted_encoder_json_is_refused_by_load_evaluate_and_resume(tmp_path):
    out = tmp_path / "run"
    run = small_run(out)
    permuted(run.encoder, "f0").save(out / "encoder.json")
    stored = (out / "encoder.json").read_bytes()
    for call in (lambda: fg.load_run(out), lambda: fg.evaluate(out),
                 lambda: small_run(out, resume=True, epochs=2)):
        with pytest.raises(CheckpointError, match=r"encoder.json.*vocabularies differ although sizes match"):
            call()
    assert (out / "encoder.json").read_bytes() == stored


def test_a_damaged_or_missing_encoder_json(tmp_path):
    out = tmp_path / "run"
    small_run(out)
    (out / "encoder.json").write_text('{"format": 1, "sche')
    with pytest.raises(InputFileError, match="encoder.json"):
        fg.load_run(out)
    # The checkpoint holds the encoder too: without encoder.json a resume writes it again from there.
    (out / "encoder.json").unlink()
    run = small_run(out, resume=True, epochs=2)
    assert FieldEncoder.load(out / "encoder.json").fingerprint() == run.encoder.fingerprint()
    assert fg.load_run(out)[1].fingerprint() == run.encoder.fingerprint()


def test_a_checkpoint_from_another_run_is_refused(tmp_path):
    small_run(tmp_path / "fm")
    small_run(tmp_path / "lr", model="lr")
    (tmp_path / "fm" / "checkpoint.pt").write_bytes((tmp_path / "lr" / "checkpoint.pt").read_bytes())
    with pytest.raises(CheckpointError, match=r"holds a 'lr' model, but .*config.json names model 'fm'"):
        fg.load_run(tmp_path / "fm")


def test_a_checkpoint_that_disagrees_with_config_json_names_the_key(tmp_path):
    out = tmp_path / "run"
    small_run(out)
    saved = json.loads((out / "config.json").read_text())
    saved["dataset_options"]["n_samples"] = 3000
    (out / "config.json").write_text(json.dumps(saved))
    with pytest.raises(CheckpointError, match=r"disagrees with .*config.json on 'dataset_options'"):
        fg.evaluate(out)
    saved["dataset_options"]["n_samples"] = 2000
    saved["train"]["lr"] = 0.5
    (out / "config.json").write_text(json.dumps(saved))
    with pytest.raises(CheckpointError, match=r"on training option 'lr'"):
        fg.load_run(out)


def test_a_damaged_config_json_names_the_file(tmp_path):
    out = tmp_path / "run"
    small_run(out)
    (out / "config.json").write_text('{"model": "fm", "dataset"')
    with pytest.raises(InputFileError, match=r"config.json is not valid JSON .*line 1"):
        fg.evaluate(out)
    (out / "config.json").write_bytes(b'{"model": "\xff"}')
    with pytest.raises(InputFileError, match=r"config.json is not UTF-8"):
        fg.load_run(out)
    (out / "config.json").write_text('{"model": "fm"}')
    with pytest.raises(InputFileError, match=r"config.json is not an fgraph run configuration: it lacks"):
        fg.load_run(out)


# -- bad checkpoints ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def good_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("good") / "run"
    small_run(out)
    return out


def broken_copy(good_run, tmp_path, content: bytes | None = None, state: dict | None = None):
    out = tmp_path / "run"
    out.mkdir()
    for name in ("config.json", "encoder.json"):
        (out / name).write_bytes((good_run / name).read_bytes())
    if state is not None:
        save_checkpoint(state, out / "checkpoint.pt")
    else:
        (out / "checkpoint.pt").write_bytes(content)
    return out


def good_state(good_run):
    state = load_checkpoint(good_run / "checkpoint.pt")
    state.pop("format")
    return state


class Mkdir:
    """Unpickling this runs os.mkdir: the test checks it never happens."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return os.mkdir, (self.path,)


@pytest.mark.parametrize("kind, message", [
    ("empty", r"checkpoint .*checkpoint.pt is empty \(0 bytes\)"),
    ("truncated", r"checkpoint .*checkpoint.pt \(\d+ bytes\) cannot be read: it is truncated, corrupt"),
    ("text", r"checkpoint .*checkpoint.pt \(\d+ bytes\) cannot be read"),
    ("tensor", r"checkpoint.pt is not an fgraph checkpoint: it holds a Tensor"),
    ("foreign dict", r"checkpoint.pt is not an fgraph checkpoint: its dict has keys \['epoch_count', 'weights'\]"),
    ("key-less", r"checkpoint .*checkpoint.pt lacks \['history', 'optimizers'\]"),
    ("other format", r"checkpoint .*checkpoint.pt has format 7"),
    ("malicious", r"checkpoint .*checkpoint.pt holds Python objects \(.*mkdir\).*refuses to unpickle"),
])
def test_bad_checkpoints_are_refused_naming_the_file(kind, message, good_run, tmp_path):
    data = (good_run / "checkpoint.pt").read_bytes()
    evil_dir = tmp_path / "pwned"
    if kind == "empty":
        out = broken_copy(good_run, tmp_path, b"")
    elif kind == "truncated":
        out = broken_copy(good_run, tmp_path, data[: len(data) // 2])
    elif kind == "text":
        out = broken_copy(good_run, tmp_path, b"epoch 1 | loss 0.69\n")
    else:
        out = broken_copy(good_run, tmp_path, b"")
        if kind == "tensor":
            torch.save(torch.zeros(3), out / "checkpoint.pt")
        elif kind == "foreign dict":
            torch.save({"weights": torch.zeros(3), "epoch_count": 3}, out / "checkpoint.pt")
        elif kind == "key-less":
            state = good_state(good_run)
            del state["history"], state["optimizers"]
            save_checkpoint(state, out / "checkpoint.pt")
        elif kind == "other format":
            torch.save({**good_state(good_run), "format": 7}, out / "checkpoint.pt")
        elif kind == "malicious":
            torch.save({"format": 1, "model_state": {}, "payload": Mkdir(str(evil_dir))}, out / "checkpoint.pt")
    for call in (lambda: load_checkpoint(out / "checkpoint.pt"), lambda: fg.evaluate(out),
                 lambda: small_run(out, resume=True, epochs=2)):
        with pytest.raises(CheckpointError, match=message):
            call()
    assert not evil_dir.exists()


def test_a_checkpoint_that_is_a_directory_or_missing(good_run, tmp_path):
    out = broken_copy(good_run, tmp_path, b"")
    (out / "checkpoint.pt").unlink()
    with pytest.raises(InputFileNotFoundError, match=rf"{out} holds no checkpoint.pt"):
        fg.load_run(out)
    (out / "checkpoint.pt").mkdir()
    with pytest.raises(CheckpointError, match="is a directory"):
        load_checkpoint(out / "checkpoint.pt")


@pytest.mark.parametrize("damage, message", [
    ("missing key", r"missing \['linear.bias'\]"),
    ("extra key", r"unexpected \['extra.weight'\]"),
    ("shape", r"shapes differ: embedding\S*weight \(\d+, 5\) \(the model has \(\d+, 4\)\)"),
    ("hparams", r"shapes differ: embedding\S*weight \(\d+, 4\) \(the model has \(\d+, 8\)\)"),
])
def test_weights_that_do_not_fit_the_model_are_refused(damage, message, good_run, tmp_path):
    state = good_state(good_run)
    for key in ("model_state", "best_model_state"):
        weights = dict(state[key])
        if damage == "missing key":
            del weights["linear.bias"]
        elif damage == "extra key":
            weights["extra.weight"] = torch.zeros(2)
        elif damage == "shape":
            table = next(k for k in weights if k.startswith("embedding") and k.endswith("weight"))
            weights[table] = torch.zeros(weights[table].shape[0], 5)
        state[key] = weights
    if damage == "hparams":
        state["model_hparams"]["embed_dim"] = 8
    out = broken_copy(good_run, tmp_path, state=state)
    with pytest.raises(CheckpointError, match=rf"best weights in checkpoint {out / 'checkpoint.pt'} do not fit a "
                                              rf"FM built for this encoder: " + message):
        fg.load_run(out)


def test_a_python_resume_into_another_model_is_refused(encoded, tmp_path):
    enc, train, valid = encoded
    out = tmp_path / "run"
    trainer(enc, out).fit(train, valid)
    with pytest.raises(CheckpointError, match="holds a 'fm' model, not the 'lr' model"):
        trainer(enc, out, LogisticRegression(enc.space_), epochs=2).fit(train, valid, resume=True)
    with pytest.raises(CheckpointError, match="with embed_dim=4, not 8"):
        trainer(enc, out, FM(enc.space_, embed_dim=8), epochs=2).fit(train, valid, resume=True)
    with pytest.raises(ConfigError, match="trained with lr=0.01, not 0.5"):
        trainer(enc, out, epochs=2, lr=0.5).fit(train, valid, resume=True)


def test_a_run_without_best_weights_is_scored_on_its_last_weights(good_run, tmp_path):
    state = good_state(good_run)
    state["best_model_state"] = None
    out = broken_copy(good_run, tmp_path, state=state)
    model, _, _ = fg.load_run(out)
    for key, value in state["model_state"].items():
        assert torch.equal(model.state_dict()[key], value)


# -- divergence and NaN -----------------------------------------------------------------------------------
@pytest.mark.parametrize("optimizer, batch_size", [("sgd", 256), ("adam", 1024)])
def test_a_learning_rate_of_10_stops_with_a_clear_error_and_keeps_the_last_good_epoch(optimizer, batch_size,
                                                                                       tmp_path):
    out = tmp_path / "run"
    with pytest.raises(TrainingDivergedError, match=r"diverged at epoch \d+, step \d+ of \d+: the epoch's mean "
                                                    r"training loss is .* more than 1000 times .*lr=10") as info:
        small_run(out, optimizer=optimizer, lr=10, epochs=10, batch_size=batch_size)
    epoch = int(str(info.value).split("epoch ")[1].split(",")[0])
    if epoch == 1:
        assert "no checkpoint was written: epoch 1 was the run's first" in str(info.value)
        assert not (out / "checkpoint.pt").exists()
    else:
        assert f"the last good checkpoint, of epoch {epoch - 1}, is kept at {out / 'checkpoint.pt'}" in str(info.value)
        state = load_checkpoint(out / "checkpoint.pt")
        assert state["epoch"] == epoch - 1 and len(state["history"]) == epoch - 1
        assert all(bool(torch.isfinite(w).all()) for w in state["model_state"].values())
        assert fg.load_run(out)[0] is not None
    assert not (out / "metrics.json").exists()   # a diverged run is not scored
    assert not (out / LOCK_FILE).exists()


class Exploding(CTRModel):
    """A model whose output blows up (``mode="huge"``) or turns NaN (``"nan"``) from epoch 2 on, or whose
    weights turn NaN at the epoch's last step (``"weights"``)."""

    def __init__(self, space, mode="nan"):
        super().__init__(space)
        self.linear = FieldLinear(space)
        self.mode, self.epoch, self.steps = mode, 0, 0

    def on_epoch_start(self, epoch):
        self.epoch = epoch

    def on_train_step_end(self, step):
        if self.mode == "weights" and self.epoch == 2 and step == 7:   # 900 rows / 128: steps 0..7
            with torch.no_grad():
                self.linear.bias.fill_(float("nan"))

    def forward(self, batch):
        out = self.linear(batch)
        if self.training and self.epoch >= 2:
            if self.mode == "nan":
                return out * float("nan")
            if self.mode == "huge":
                return out * 0 + 1e5 * (1 - 2 * batch.y)   # confidently wrong: BCE ~ 1e5
        return out


@pytest.mark.parametrize("mode, message", [
    ("nan", r"diverged at epoch 2, step 1 of 8: the training loss is nan"),
    ("huge", r"diverged at epoch 2, step 1 of 8: the epoch's mean training loss is 100000, more than 1000 times"),
    ("weights", r"diverged at epoch 2, step 8 of 8: the weights \['linear.bias'\] are not finite"),
])
def test_divergence_keeps_the_last_good_checkpoint_and_says_where(mode, message, encoded, tmp_path):
    enc, train, valid = encoded
    out = tmp_path / "run"
    t = trainer(enc, out, Exploding(enc.space_, mode), epochs=4)
    checkpoint_of_epoch_1 = {}

    real_write = t._write_checkpoint

    def write():
        real_write()
        checkpoint_of_epoch_1.setdefault("bytes", (out / "checkpoint.pt").read_bytes())
    t._write_checkpoint = write
    with pytest.raises(TrainingDivergedError, match=message + rf".*last good checkpoint, of epoch 1, is kept at "
                                                              rf"{out / 'checkpoint.pt'}"):
        t.fit(train, valid)
    assert (out / "checkpoint.pt").read_bytes() == checkpoint_of_epoch_1["bytes"]
    assert t.epoch == 1 and len(t.history) == 1
    assert len((out / "log.txt").read_text().splitlines()) == 1
    assert not (out / LOCK_FILE).exists()


def test_divergence_factor_none_turns_the_blow_up_check_off_but_not_the_nan_check(encoded):
    enc, train, valid = encoded
    t = trainer(enc, None, Exploding(enc.space_, "huge"), epochs=2, divergence_factor=None).fit(train, valid)
    assert t.history[-1]["train_loss"] > 1e4
    with pytest.raises(TrainingDivergedError, match="epoch 2, step 1 of 8: the training loss is nan.*nothing was "
                                                    "saved"):
        trainer(enc, None, Exploding(enc.space_, "nan"), epochs=2, divergence_factor=None).fit(train, valid)


@pytest.mark.parametrize("value", [1.0, 0.5, -3, "abc"])
def test_divergence_factor_must_be_above_one(value):
    with pytest.raises(ConfigError, match=rf"'divergence_factor' must be a finite number > 1.0, got {value!r}"):
        TrainConfig(divergence_factor=value)


def test_predict_names_the_rows_whose_output_is_not_finite(tmp_path):
    df = pd.DataFrame({"a": list("xyzxyzxyzx"), "x": np.linspace(0, 1, 10), "label": [0, 1] * 5})
    enc = FieldEncoder(Schema((categorical("a"), numeric("x")), label="label")).fit(df)
    data = enc.transform(df)
    data.values[[3, 7], enc.space_.index("x")] = 1e30   # what overflowing inputs would give
    t = Trainer(FM(enc.space_, embed_dim=4), TrainConfig(progress=False))
    with pytest.raises(DataError, match=r"not finite \(NaN or inf\) for 2 of 10 rows of the test split, first at "
                                        r"row positions \[3, 7\]"):
        t.evaluate(data, name="the test split")
    with pytest.raises(DataError, match=r"rows of the data, first at row positions \[3, 7\]"):
        t.predict(data)


def test_predict_with_non_finite_weights_says_training_diverged(encoded):
    enc, _, valid = encoded
    t = trainer(enc)
    with torch.no_grad():
        t.model.linear.bias.fill_(float("nan"))
    with pytest.raises(TrainingDivergedError, match=r"weights \['linear.bias'\] are not finite, so its outputs "
                                                    r"for the validation split are not either \(300 of 300 rows"):
        t.evaluate(valid, name="the validation split")


def test_metrics_refuse_nan_naming_the_data_and_rows():
    with pytest.raises(DataError, match=r"predicted probabilities of the test split are not finite .* in 1 of 4 "
                                        r"rows, first at row positions \[2\]"):
        binary_metrics([0, 1, 0, 1], [0.1, 0.9, np.nan, 0.8], name="the test split")
    with pytest.raises(DataError, match=r"predictions of the data are not finite .*row positions \[0\]"):
        regression_metrics([1.0, -1.0], [np.inf, 0.0], clip=(-1.0, 1.0))   # clipping would have hidden it


def test_labels_that_do_not_fit_the_task_name_the_rows(encoded):
    enc, train, _ = encoded
    bad = type(train)(train.ids, train.values, train.bags, train.y.clone(), train.space, "click")
    bad.y[4] = float("nan")
    with pytest.raises(DataError, match=r"label column 'click' of the data must hold finite numbers for a "
                                        r"regression run, found \[nan\] at row positions \[4\]"):
        check_labels(bad, "regression", "the data")
    bad.y[4] = 2.0
    with pytest.raises(DataError, match=r"must be 0/1 for a classification run, found values \[2.0\] at row "
                                        r"positions \[4\]"):
        check_labels(bad, "binary", "the data")


# -- what the command line shows --------------------------------------------------------------------------
def test_the_cli_reports_run_directory_checkpoint_and_divergence_errors_in_one_line(good_run, tmp_path, capsys):
    from fgraph.cli import main

    base = ["train", "--epochs", "1", "--batch-size", "256", "--embed-dim", "4", "--no-progress",
            "--dataset-option", "n_samples=2000"]
    cases = [
        (base + ["--out", str(good_run)], f"run directory {good_run} already holds a run"),
        (base + ["--out", str(good_run), "--resume", "--overwrite"], "resume and overwrite exclude each other"),
        (base + ["--out", str(tmp_path / "div"), "--optimizer", "sgd", "--lr", "10", "--epochs", "10"],
         "training diverged at epoch"),
    ]
    trunc = broken_copy(good_run, tmp_path, (good_run / "checkpoint.pt").read_bytes()[:100])
    cases.append((["evaluate", str(trunc)], f"checkpoint {trunc / 'checkpoint.pt'} (100 bytes) cannot be read"))
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("fgraph: error:") and message in err and "Traceback" not in err
        assert len(err.strip().splitlines()) == 1
