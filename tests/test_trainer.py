"""The training engine: seeding, early stopping, checkpoints and resume, optimisers, labels."""
import numpy as np
import pandas as pd
import pytest
import torch

from fgraph.data import FieldEncoder, Schema, categorical
from fgraph.models import FM, CTRModel, LogisticRegression
from fgraph.train import Trainer, TrainConfig, load_checkpoint, seed_everything
from fgraph.nn import FieldLinear


def planted_frame(n=6000, seed=0):
    """Label = XOR-like interaction of fields a and b, plus a main effect of c; d is noise."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({k: rng.integers(0, 6, n) for k in "abcd"})
    logit = 2.5 * np.where((df.a % 2) == (df.b % 2), 1.0, -1.0) + 0.5 * (df.c - 2.5)
    df["label"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return df


@pytest.fixture(scope="module")
def data():
    df = planted_frame()
    schema = Schema(tuple(categorical(c) for c in "abcd"), label="label")
    enc = FieldEncoder(schema).fit(df[:4000])
    return enc, enc.transform(df[:4000]), enc.transform(df[4000:5000]), enc.transform(df[5000:])


def fit(model_cls, data, seed=0, **kw):
    enc, train, valid, _ = data
    seed_everything(seed)
    model = model_cls(enc.space_) if model_cls is LogisticRegression else model_cls(enc.space_, embed_dim=4)
    cfg = dict(epochs=3, batch_size=256, lr=0.01, progress=False, seed=seed)
    cfg.update(kw)
    return Trainer(model, TrainConfig(**cfg), encoder=enc).fit(train, valid)


def test_cpu_run_repeats_exactly_with_the_same_seed(data):
    a, b = fit(FM, data), fit(FM, data)
    for (ka, va), (kb, vb) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)
    assert [h["train_loss"] for h in a.history] == [h["train_loss"] for h in b.history]
    c = fit(FM, data, seed=1)
    assert not torch.equal(a.model.embedding.weight, c.model.embedding.weight)


def test_fm_learns_the_planted_interaction_that_lr_cannot(data):
    test = data[3]
    fm = fit(FM, data, epochs=10).evaluate(test)["auc"]
    lr = fit(LogisticRegression, data, epochs=10).evaluate(test)["auc"]
    assert fm > 0.85
    assert fm > lr + 0.1


def test_early_stopping_stops_and_restores_the_best_weights(data):
    # A learning rate this large makes validation AUC wander: training must stop within patience of the
    # best epoch, and the weights at the end must be those of the best epoch.
    t = fit(FM, data, epochs=30, lr=0.3, patience=2)
    aucs = [h["valid_auc"] for h in t.history]
    best = int(np.argmax(aucs))
    assert t.best_epoch == best + 1
    assert len(aucs) <= best + 1 + 2
    if len(aucs) < 30:
        assert len(aucs) == best + 1 + 2
    assert t.evaluate(data[2])["auc"] == pytest.approx(aucs[best], abs=1e-9)


def test_checkpoint_resume_continues_exactly(data, tmp_path):
    enc, train, valid, _ = data

    def trainer(run_dir, epochs):
        seed_everything(0)
        model = FM(enc.space_, embed_dim=4)
        return Trainer(model, TrainConfig(epochs=epochs, batch_size=256, lr=0.01, progress=False, patience=10),
                       encoder=enc, run_dir=run_dir)

    straight = trainer(tmp_path / "a", 3).fit(train, valid)
    trainer(tmp_path / "b", 1).fit(train, valid)
    resumed = trainer(tmp_path / "b", 3).fit(train, valid, resume=True)
    assert resumed.epoch == 3 and len(resumed.history) == 3
    for key, value in straight.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key
    # The checkpoint loads with weights_only=True and holds what a run needs to continue or be scored.
    state = load_checkpoint(tmp_path / "b" / "checkpoint.pt")
    assert {"model_state", "optimizers", "encoder", "config", "epoch"} <= set(state)
    assert not list((tmp_path / "b").glob("*.tmp")) and not list((tmp_path / "b").glob(".*.tmp"))


def test_resume_without_checkpoint_and_from_another_schema_fail_clearly(data, tmp_path):
    enc, train, valid, _ = data
    model = FM(enc.space_, embed_dim=4)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        Trainer(model, TrainConfig(epochs=1, progress=False), run_dir=tmp_path / "none").fit(train, valid, resume=True)
    Trainer(model, TrainConfig(epochs=1, progress=False), encoder=enc, run_dir=tmp_path / "r").fit(train, valid)
    other = planted_frame().rename(columns={"d": "e"})
    enc2 = FieldEncoder(Schema(tuple(categorical(c) for c in "abce"), label="label")).fit(other)
    model2 = FM(enc2.space_, embed_dim=4)
    with pytest.raises(ValueError, match="different schema"):
        Trainer(model2, TrainConfig(epochs=2, progress=False), run_dir=tmp_path / "r").fit(
            enc2.transform(other), resume=True)


def test_model_and_data_from_different_encoders_are_refused(data):
    enc, train, _, _ = data
    small = FieldEncoder(Schema((categorical("a"),), label="label")).fit(planted_frame())
    with pytest.raises(ValueError, match="different schema"):
        Trainer(FM(small.space_), TrainConfig(progress=False)).fit(train)


def test_non_binary_labels_are_refused_for_classification(data):
    enc, train, _, _ = data
    df = planted_frame()
    df["label"] = df["label"] * 2 - 1   # ±1
    with pytest.raises(ValueError, match=r"label column 'label'.*0/1.*regression"):
        Trainer(FM(enc.space_), TrainConfig(progress=False)).fit(enc.transform(df))


def test_regression_protocol_clips_predictions_to_label_range(data):
    enc, _, _, _ = data
    df = planted_frame()
    df["label"] = df["label"] * 2.0 - 1.0
    train, valid = enc.transform(df[:4000]), enc.transform(df[4000:5000])
    seed_everything(0)
    t = Trainer(FM(enc.space_, embed_dim=4), TrainConfig(task="regression", epochs=3, lr=0.01, batch_size=256,
                                                         progress=False)).fit(train, valid)
    assert t.config.monitor == "rmse" and t.clip_range == (-1.0, 1.0)
    pred = np.clip(t.predict(valid), -1, 1)
    expected = float(np.sqrt(np.mean((pred - valid.y.numpy()) ** 2)))
    assert t.evaluate(valid)["rmse"] == pytest.approx(expected, rel=1e-6)
    assert expected < 1.0   # better than predicting 0


def test_optimizer_choice_and_embedding_weight_decay(data):
    enc, train, _, _ = data
    t = Trainer(FM(enc.space_), TrainConfig(optimizer="Adagrad", embedding_weight_decay=1e-4, weight_decay=0.0,
                                            progress=False))
    opt = t.optimizers[0].optimizer
    assert isinstance(opt, torch.optim.Adagrad)
    groups = {g["name"]: g for g in opt.param_groups}
    emb_ids = {id(p) for p in groups["embedding"]["params"]}
    assert groups["embedding"]["weight_decay"] == 1e-4
    assert id(t.model.embedding.weight) in emb_ids and id(t.model.linear.bias) not in emb_ids
    with pytest.raises(ValueError, match="unknown optimizer"):
        Trainer(FM(enc.space_), TrainConfig(optimizer="nope", progress=False))


class TwoLevelModel(CTRModel):
    """A model with a parameter stepped on validation batches, as bilevel search does."""

    def __init__(self, space):
        super().__init__(space)
        self.linear = FieldLinear(space)
        self.arch = torch.nn.Parameter(torch.zeros(1))

    def forward(self, batch):
        return self.linear(batch) + self.arch

    def configure_optimizers(self):
        weights = [p for n, p in self.named_parameters() if n != "arch"]
        return [{"name": "weights", "params": weights, "optimizer": "adam"},
                {"name": "arch", "data": "valid", "params": [self.arch], "optimizer": "sgd", "lr": 0.5}]


def test_optimizers_stepping_on_validation_batches(data):
    enc, train, valid, _ = data
    df = planted_frame(seed=3)
    df["label"] = 1   # validation labels all 1: the arch bias can only be pushed up by validation steps
    valid_ones = enc.transform(df)
    model = TwoLevelModel(enc.space_)
    Trainer(model, TrainConfig(epochs=1, batch_size=500, progress=False, monitor="logloss")).fit(train, valid_ones)
    assert float(model.arch.detach()) > 0.5
    with pytest.raises(ValueError, match="validation"):
        Trainer(TwoLevelModel(enc.space_), TrainConfig(epochs=1, progress=False)).fit(train)


def _tiny_hparams(name):
    """Small settings for each registered model; dropout where a model has it, so its random draws count."""
    import inspect

    from fgraph.models import MODELS

    accepted = set(inspect.signature(MODELS[name].__init__).parameters)
    hp = {"embed_dim": 4} if "embed_dim" in accepted else {}
    hp.update({k: 0.2 for k in ("dropout", "mlp_dropout") if k in accepted})
    if "mlp_dims" in accepted:
        hp["mlp_dims"] = (8,)
    return hp


@pytest.fixture(scope="module")
def tiny():
    df = planted_frame(n=800, seed=5)
    enc = FieldEncoder(Schema(tuple(categorical(c) for c in "abcd"), label="label")).fit(df[:600])
    return enc, enc.transform(df[:600]), enc.transform(df[600:])


@pytest.mark.parametrize("name", sorted(__import__("fgraph.models", fromlist=["MODELS"]).MODELS))
def test_every_model_resumes_bit_exactly(name, tiny, tmp_path, one_thread):
    # 3 epochs straight must equal 1 epoch, a stop, and a resume to 3: same weights to the bit, same losses.
    # FIVES also steps its adjacency on a stream of validation batches that runs across epochs: the stream's
    # position is part of the checkpoint, or the resumed run draws other validation batches.
    from fgraph.models import build_model

    enc, train, valid = tiny

    def trainer(run_dir, epochs):
        seed_everything(0)
        model = build_model(name, enc.space_, **_tiny_hparams(name))
        return Trainer(model, TrainConfig(epochs=epochs, batch_size=128, lr=0.01, progress=False, patience=10),
                       encoder=enc, run_dir=run_dir)

    straight = trainer(tmp_path / "a", 3).fit(train, valid)
    trainer(tmp_path / "b", 1).fit(train, valid)
    resumed = trainer(tmp_path / "b", 3).fit(train, valid, resume=True)
    assert [h["train_loss"] for h in resumed.history] == [h["train_loss"] for h in straight.history]
    assert [h["valid_auc"] for h in resumed.history] == [h["valid_auc"] for h in straight.history]
    assert resumed.best_epoch == straight.best_epoch
    for key, value in straight.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key
    # The last-epoch weights (not only the restored best ones) agree too.
    last_a = load_checkpoint(tmp_path / "a" / "checkpoint.pt")["model_state"]
    last_b = load_checkpoint(tmp_path / "b" / "checkpoint.pt")["model_state"]
    for key, value in last_a.items():
        assert torch.equal(value, last_b[key]), key


def test_resume_restores_python_and_numpy_random_states(tiny, tmp_path):
    enc, train, valid = tiny
    seed_everything(0)
    Trainer(FM(enc.space_, embed_dim=4), TrainConfig(epochs=1, batch_size=128, progress=False),
            encoder=enc, run_dir=tmp_path / "r").fit(train, valid)
    import random
    expected = (random.random(), float(np.random.random()))
    random.seed(123), np.random.seed(123)   # what a caller might do between the stop and the resume
    Trainer(FM(enc.space_, embed_dim=4), TrainConfig(epochs=1, batch_size=128, progress=False),
            encoder=enc, run_dir=tmp_path / "r").fit(train, valid, resume=True)
    assert (random.random(), float(np.random.random())) == expected


def test_batchnorm_model_leaves_out_a_last_batch_of_one_row(data, capsys):
    # 4000 training rows in batches of 3999 leave one row: BatchNorm cannot normalise it in training mode
    # (torch raises "Expected more than 1 value per channel"), so that batch sits out each epoch, said once.
    from fgraph.models import DeepFM
    enc, train, valid, test = data
    seed_everything(0)
    model = DeepFM(enc.space_, embed_dim=4, mlp_dims=(8,), mlp_batch_norm=True)
    t = Trainer(model, TrainConfig(epochs=2, batch_size=3999, lr=0.01, progress=False), encoder=enc).fit(train, valid)
    assert len(t.history) == 2 and np.isfinite(t.history[-1]["train_loss"])
    assert len(t.train_loader) == 1 and t.train_loader.drop_last
    out = capsys.readouterr().out
    assert out.count("leave a last batch of 1") == 1 and "BatchNorm" in out
    # A model without BatchNorm keeps every row.
    fm = Trainer(FM(enc.space_, embed_dim=4), TrainConfig(epochs=1, batch_size=3999, progress=False), encoder=enc)
    fm.fit(train, valid)
    assert len(fm.train_loader) == 2 and not fm.train_loader.drop_last


def test_batchnorm_model_on_a_single_row_is_refused_clearly(data):
    from fgraph.errors import ConfigError
    from fgraph.models import DeepFM
    enc, train, valid, _ = data
    model = DeepFM(enc.space_, embed_dim=4, mlp_dims=(8,), mlp_batch_norm=True)
    with pytest.raises(ConfigError, match=r"training data has 1 row\(s\).*BatchNorm needs at least 2 rows"):
        Trainer(model, TrainConfig(epochs=1, batch_size=256, progress=False), encoder=enc).fit(train.take(torch.tensor([0])), valid)


def test_flush_denormal_holds_during_fit_and_predict_and_is_restored(data, monkeypatch):
    from fgraph.train import numerics
    from fgraph.train.numerics import flush_denormals, flushing_denormals

    assert not flushing_denormals()                              # torch's default
    seen = []
    forward = FM.forward
    monkeypatch.setattr(FM, "forward", lambda self, batch: (seen.append(flushing_denormals()), forward(self, batch))[1])
    t = fit(FM, data, epochs=1)
    assert seen and all(seen)                                    # every training and validation batch
    assert not flushing_denormals()                              # restored after fit
    seen.clear()
    t.predict(data[3])
    assert seen and all(seen) and not flushing_denormals()
    seen.clear()
    fit(FM, data, epochs=1, flush_denormal=False)
    assert seen and not any(seen)
    # Inside the block a subnormal product is 0; a state found on is left on.
    with flush_denormals():
        assert float(torch.full((1,), 1e-40) * 1.0) == 0.0
        with flush_denormals():
            pass
        assert flushing_denormals()
    assert float(torch.full((1,), 1e-40) * 1.0) > 0.0
    # A CPU without the flag: nothing is set, nothing restored.
    monkeypatch.setattr(numerics.torch, "set_flush_denormal", lambda on: False)
    with flush_denormals():
        assert not flushing_denormals()
    with pytest.raises(Exception, match="flush_denormal"):
        TrainConfig(flush_denormal="maybe")
