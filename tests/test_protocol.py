"""Protocol parity: the plateau schedule, clipping, initialisation, the λ regularisers and named protocols,
each against a hand computation."""
import math

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fgraph.data import FieldEncoder, Schema, categorical, multi_valued, numeric
from fgraph.data.loader import FieldLoader
from fgraph.data.space import PAD, UNKNOWN, FeatureSpace
from fgraph.errors import ConfigError
from fgraph.models import FM, CTRModel, LogisticRegression
from fgraph.nn import FieldEmbedding, FieldwiseLinear, init_dense, init_embeddings
from fgraph.train import Trainer, TrainConfig, load_checkpoint, seed_everything
from fgraph.train.protocols import PROTOCOLS, apply_protocol
from fgraph.train.regularizers import Regularizer, looked_up_rows

pytestmark = pytest.mark.usefixtures("one_thread")


def frame(n=1200, seed=0):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({k: rng.integers(0, 8, n) for k in "abcd"})
    logit = 2.0 * np.where((df.a % 2) == (df.b % 2), 1.0, -1.0) + 0.4 * (df.c - 3.5)
    df["label"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return df


@pytest.fixture(scope="module")
def data():
    df = frame()
    enc = FieldEncoder(Schema(tuple(categorical(c) for c in "abcd"), label="label")).fit(df[:800])
    return enc, enc.transform(df[:800]), enc.transform(df[800:1000])


def full_batch(encoded):
    return next(iter(FieldLoader(encoded, len(encoded.y))))


def global_rows(batch, space):
    """Hand computation of the table rows a batch of single-valued fields looks up, per field offsets."""
    offsets = np.concatenate([[0], np.cumsum(space.cardinalities)[:-1]])
    return np.unique(batch.ids.numpy() + offsets[None, :])


CFG = dict(batch_size=128, progress=False, divergence_factor=None)


# -- the plateau schedule ------------------------------------------------------------------------------------

def scripted(trainer, aucs):
    """Make the trainer see the validation AUC ``aucs[epoch - 1]`` after each epoch."""
    trainer.evaluate = lambda data, name=None: {"auc": aucs[trainer.epoch - 1], "logloss": 0.5}
    return trainer


AUCS = [0.60, 0.70, 0.65, 0.72, 0.71, 0.70, 0.69, 0.68, 0.67, 0.66]


def expected_lrs(lr0, factor, floor):
    # improve, improve, worse (-> x f), improve (counter reset), worse, worse, worse (counter 3 = patience).
    lr1 = lr0 * factor
    lr2 = lr1 * factor
    lr3 = max(lr2 * factor, floor)
    lrs = [lr0, lr0, lr0, lr1, lr1, lr2, lr3]
    return lrs, lr3 if lr3 <= floor else max(lr3 * factor, floor)


def test_plateau_schedule_reduces_resets_and_stops(data):
    enc, train, valid = data
    seed_everything(0)
    lr0, factor, floor = 1e-2, 0.1, 1e-5
    t = scripted(Trainer(FM(enc.space_, embed_dim=4), TrainConfig(
        **CFG, epochs=10, lr=lr0, lr_schedule="plateau", lr_factor=factor, min_lr=floor, patience=3)), AUCS)
    t.fit(train, valid)
    lrs, final = expected_lrs(lr0, factor, floor)
    assert [h["lr"] for h in t.history] == lrs            # the lr each epoch ran at
    assert len(t.history) == 7                            # stopped when the counter reached patience 3
    assert t.best_epoch == 4 and t.bad_epochs == 3
    # Every parameter group of the (one) training optimiser: the floor 1e-5 is not gone below.
    assert t.learning_rates() == [[final] * len(t.optimizers[0].optimizer.param_groups)]
    assert final == floor


def test_without_a_schedule_the_lr_stays_and_the_counter_still_stops(data):
    enc, train, valid = data
    seed_everything(0)
    t = scripted(Trainer(FM(enc.space_, embed_dim=4), TrainConfig(**CFG, epochs=10, lr=1e-2, patience=2)), AUCS)
    t.fit(train, valid)
    assert [h["lr"] for h in t.history] == [1e-2] * 6 and len(t.history) == 6


# improve, improve, then three worse, a best, then worse to the stop.
AUCS_WOBBLE = [0.60, 0.70, 0.65, 0.64, 0.63, 0.72, 0.71, 0.70, 0.69, 0.68, 0.67, 0.66]


def expected_patient_lrs(lr0, f):
    """By hand, lr_patience 1 and patience 5 on AUCS_WOBBLE: the lr each epoch ran at. Epoch 3 is the first
    worse one (let pass), epoch 4 the second in a row (reduce, count back to 0), epoch 5 worse (let pass),
    epoch 6 the best (both counts back to 0), epochs 7-10 worse (reduce after 8 and after 10), epoch 11 the
    fifth worse in a row: stop."""
    return [lr0] * 4 + [lr0 * f] * 4 + [lr0 * f * f] * 2 + [lr0 * f ** 3]


def test_plateau_lr_patience_lets_epochs_pass_before_reducing(data):
    enc, train, valid = data
    seed_everything(0)
    lr0, f = 1e-2, 0.5
    t = scripted(Trainer(FM(enc.space_, embed_dim=4), TrainConfig(
        **CFG, epochs=12, lr=lr0, lr_schedule="plateau", lr_factor=f, lr_patience=1, patience=5)), AUCS_WOBBLE)
    t.fit(train, valid)
    assert [h["lr"] for h in t.history] == pytest.approx(expected_patient_lrs(lr0, f), rel=1e-12)
    assert len(t.history) == 11 and t.best_epoch == 6 and t.bad_epochs == 5 and t.lr_bad_epochs == 1
    # lr_patience 0 is the FuxiCTR schedule of the test above: a reduction on every worse epoch.
    seed_everything(0)
    t0 = scripted(Trainer(FM(enc.space_, embed_dim=4), TrainConfig(
        **CFG, epochs=12, lr=lr0, lr_schedule="plateau", lr_factor=f, lr_patience=0, patience=3)), AUCS)
    t0.fit(train, valid)
    assert [h["lr"] for h in t0.history] == pytest.approx(expected_lrs(lr0, f, 1e-6)[0], rel=1e-12)


def test_resume_keeps_the_lr_patience_count(data, tmp_path):
    enc, train, valid = data
    opts = dict(CFG, lr=1e-2, lr_schedule="plateau", lr_factor=0.5, lr_patience=1, patience=5)

    def trainer(run_dir, epochs):
        seed_everything(0)
        return scripted(Trainer(FM(enc.space_, embed_dim=4), TrainConfig(**opts, epochs=epochs), encoder=enc,
                                run_dir=run_dir), AUCS_WOBBLE)

    straight = trainer(tmp_path / "a", 12).fit(train, valid)
    trainer(tmp_path / "b", 7).fit(train, valid)        # epoch 7: one worse epoch counted, not yet reduced
    assert load_checkpoint(tmp_path / "b" / "checkpoint.pt")["lr_bad_epochs"] == 1
    resumed = trainer(tmp_path / "b", 12).fit(train, valid, resume=True)
    assert [h["lr"] for h in resumed.history] == [h["lr"] for h in straight.history]
    assert resumed.learning_rates() == straight.learning_rates()


class TwoOptimisers(CTRModel):
    """An FM-like model with one parameter stepped on validation batches (like FIVES's adjacency)."""

    def __init__(self, space):
        super().__init__(space)
        self.embedding = FieldEmbedding(space, 4)
        self.lin = nn.Linear(4 * space.num_fields, 1)
        self.searched = nn.Parameter(torch.zeros(1))

    def forward(self, batch):
        return self.lin(self.embedding(batch).flatten(1)).squeeze(-1) + self.searched

    def configure_optimizers(self):
        rest = [p for p in self.parameters() if p is not self.searched]
        return [{"name": "weights", "params": rest},
                {"name": "search", "data": "valid", "params": [self.searched], "optimizer": "sgd", "lr": 0.05}]


def test_plateau_leaves_validation_optimisers_alone(data):
    enc, train, valid = data
    seed_everything(0)
    t = scripted(Trainer(TwoOptimisers(enc.space_), TrainConfig(**CFG, epochs=10, lr=1e-2, lr_schedule="plateau",
                                                                patience=3)), AUCS)
    t.fit(train, valid)
    assert t.learning_rates()[0][0] < 1e-2 and t.learning_rates()[1] == [0.05]


def test_schedule_needs_validation_data(data):
    enc, train, _ = data
    t = Trainer(FM(enc.space_, embed_dim=4), TrainConfig(**CFG, epochs=1, lr_schedule="plateau"))
    with pytest.raises(ConfigError, match="lr_schedule"):
        t.fit(train)


def test_resume_restores_the_reduced_lr_exactly(data, tmp_path):
    enc, train, valid = data
    opts = dict(CFG, lr=1e-2, lr_schedule="plateau", patience=5, embedding_init="normal", embedding_init_std=0.1,
                dense_init="xavier_normal", embedding_regularizer=1e-3, net_regularizer=1e-4,
                regularizer_form="rows", grad_clip=1.0)

    def trainer(run_dir, epochs):
        seed_everything(0)
        return scripted(Trainer(TwoOptimisers(enc.space_), TrainConfig(**opts, epochs=epochs), encoder=enc,
                                run_dir=run_dir), AUCS)

    straight = trainer(tmp_path / "a", 6).fit(train, valid)
    trainer(tmp_path / "b", 3).fit(train, valid)       # epoch 3 reduced the lr
    saved = load_checkpoint(tmp_path / "b" / "checkpoint.pt")
    assert saved["learning_rates"][0] == [1e-2 * 0.1] and saved["bad_epochs"] == 1
    resumed = trainer(tmp_path / "b", 6).fit(train, valid, resume=True)
    assert [h["lr"] for h in resumed.history] == [h["lr"] for h in straight.history] \
        == [1e-2, 1e-2, 1e-2, 1e-3, 1e-3, 1e-2 * 0.1 * 0.1]
    assert resumed.learning_rates() == straight.learning_rates()
    assert [h["train_loss"] for h in resumed.history] == [h["train_loss"] for h in straight.history]
    for (ka, va), (kb, vb) in zip(straight.model.state_dict().items(), resumed.model.state_dict().items()):
        assert ka == kb and torch.equal(va, vb), ka


# -- gradient clipping ------------------------------------------------------------------------------------------

def lr_gradient(train, model):
    """Hand gradient of the mean BCE of a logistic regression whose weights are all zero (p = 1/2 on every
    row): d/d w_r = mean over rows of [row r looked up] (1/2 - y), d/d w_0 = mean (1/2 - y)."""
    space = train.space
    offsets = np.concatenate([[0], np.cumsum(space.cardinalities)[:-1]])
    rows = train.ids.numpy() + offsets[None, :]
    r = 0.5 - train.y.numpy().astype(np.float64)
    g_w = np.zeros(space.num_ids)
    np.add.at(g_w, rows, np.repeat(r[:, None], rows.shape[1], axis=1))
    return g_w / len(r), r.mean()


@pytest.mark.parametrize("clip_ratio", [0.25, 4.0])
def test_clipping_scales_the_gradient_to_the_clip_norm(data, clip_ratio):
    enc, train, _ = data
    model = LogisticRegression(enc.space_)
    g_w, g_b = lr_gradient(train, model)
    norm = math.sqrt((g_w ** 2).sum() + g_b ** 2)
    clip = clip_ratio * norm
    # One full-batch SGD step at lr 1: the weights move by minus the (clipped) gradient.
    Trainer(model, TrainConfig(epochs=1, batch_size=len(train.y), optimizer="sgd", lr=1.0, grad_clip=clip,
                               progress=False)).fit(train)
    step_w = -model.linear.weights.weight.detach().double().flatten().numpy()
    step_b = -float(model.linear.bias.detach())
    scale = min(1.0, clip / (norm + 1e-6))      # torch's clip_grad_norm_ divides by the norm + 1e-6
    np.testing.assert_allclose(step_w, g_w * scale, rtol=1e-5, atol=1e-8)
    assert step_b == pytest.approx(g_b * scale, rel=1e-5)
    step_norm = math.sqrt((step_w ** 2).sum() + step_b ** 2)
    assert step_norm == pytest.approx(norm * scale, rel=1e-6)
    assert step_norm == pytest.approx(clip if clip < norm else norm, rel=1e-4)


# -- initialisation --------------------------------------------------------------------------------------------

def big_space(card=5000, fields=4):
    return FeatureSpace([f"f{k}" for k in range(fields)], ["id"] * fields, [card] * fields,
                        [f"f{k}" for k in range(fields)])


class Dense(CTRModel):
    """Embeddings, a big linear layer, a field-wise linear map, a GRU cell and a free bias."""

    def __init__(self, space):
        super().__init__(space)
        self.embedding = FieldEmbedding(space, 16)
        self.lin = nn.Linear(400, 300)
        self.fieldwise = FieldwiseLinear(60, 40, num_types=50)
        self.gru = nn.GRUCell(8, 8)
        self.bias = nn.Parameter(torch.full((1,), 0.5))

    def forward(self, batch):  # pragma: no cover - not trained here
        return self.embedding(batch).sum((1, 2)) + self.bias


def unknown_rows(space):
    offsets = np.concatenate([[0], np.cumsum(space.cardinalities)[:-1]])
    return offsets[[k for k, kind in enumerate(space.kinds) if kind != "scaled"]] + UNKNOWN


def test_normal_embedding_init_has_the_std_and_keeps_unknown_rows_zero():
    space = big_space()
    seed_everything(0)
    model = FM(space, embed_dim=16)
    dense_before = {k: v.clone() for k, v in model.state_dict().items() if "tables" not in k}
    Trainer(model, TrainConfig(embedding_init="normal", embedding_init_std=1e-4, progress=False))
    for table in (model.embedding.weight, model.linear.weights.weight):   # first-order weights too
        w = table.detach().double()
        zero = unknown_rows(space)
        assert torch.all(w[zero] == 0)
        rest = w[np.setdiff1d(np.arange(len(w)), zero)]
        assert rest.std().item() == pytest.approx(1e-4, rel=0.03 if w.size(1) == 1 else 0.01)
        assert abs(rest.mean().item()) < 1e-5
        # The reserved MISSING (0) and RARE (2) rows are drawn like any value.
        assert torch.all(w[[0, 2]] != 0)
    for k, v in model.state_dict().items():
        if "tables" not in k:
            assert torch.equal(v, dense_before[k]), k


@pytest.mark.parametrize("kind", ["xavier_uniform", "xavier_normal"])
def test_xavier_embedding_init(kind):
    space = big_space()
    seed_everything(0)
    emb = FieldEmbedding(space, 16, init_std=1.0)
    init_embeddings(emb, kind)
    w = emb.weight.detach().double()
    rows, dim = w.shape
    std = math.sqrt(2 / (rows + dim))
    rest = w[np.setdiff1d(np.arange(rows), unknown_rows(space))]
    assert rest.std().item() == pytest.approx(std, rel=0.01)
    if kind == "xavier_uniform":
        assert rest.abs().max().item() <= math.sqrt(3) * std


def test_dense_init_xavier_normal_touches_linear_maps_only():
    space = big_space(card=100)
    seed_everything(0)
    model = Dense(space)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    Trainer(model, TrainConfig(dense_init="xavier_normal", progress=False))
    assert model.lin.weight.std().item() == pytest.approx(math.sqrt(2 / (400 + 300)), rel=0.01)
    # (types, in, out): each type's in -> out matrix on its own fans.
    assert model.fieldwise.weight.std().item() == pytest.approx(math.sqrt(2 / (60 + 40)), rel=0.01)
    assert torch.all(model.lin.bias == 0) and torch.all(model.fieldwise.bias == 0)
    assert abs(model.lin.weight.mean().item()) < 1e-3
    for k in ("embedding.tables.0.weight", "gru.weight_ih", "gru.weight_hh", "gru.bias_ih", "bias"):
        assert torch.equal(model.state_dict()[k], before[k]), k


def test_embedding_init_leaves_dense_weights_and_repeats_with_the_seed():
    space = big_space(card=100)
    states = []
    for _ in range(2):
        seed_everything(3)
        model = Dense(space)
        before = {k: v.clone() for k, v in model.state_dict().items()}
        init_embeddings(model, "normal", 0.01)
        init_dense(model)
        after = model.state_dict()
        assert not torch.equal(after["embedding.tables.0.weight"], before["embedding.tables.0.weight"])
        assert torch.equal(after["gru.weight_hh"], before["gru.weight_hh"])
        states.append({k: v.clone() for k, v in after.items()})
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


def test_modules_a_model_keeps_are_not_redrawn_by_the_protocol_init():
    space = big_space(card=100)
    seed_everything(0)
    model = Dense(space)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.keep_weights(model.embedding, model.lin)
    model.keep_weights(model.lin)                                   # marking twice is marking once
    assert model.kept_modules() == [model.embedding, model.lin]
    Trainer(model, TrainConfig(embedding_init="normal", dense_init="xavier_normal", progress=False))
    after = model.state_dict()
    for k in ("embedding.tables.0.weight", "lin.weight", "lin.bias"):
        assert torch.equal(after[k], before[k]), k
    assert not torch.equal(after["fieldwise.weight"], before["fieldwise.weight"])   # not kept: drawn
    # The functions take the same skip; the model itself skips everything.
    assert init_embeddings(model, "normal", 0.01, skip=[model.embedding]) == 0
    assert init_dense(model, skip=model) == 0
    assert init_dense(model, skip=[model.lin]) == 1
    with pytest.raises(ValueError, match="not one of them"):
        model.keep_weights(nn.Linear(2, 2))


def test_default_options_leave_the_model_and_the_rng_alone(data):
    enc, _, _ = data
    seed_everything(0)
    model = FM(enc.space_, embed_dim=4)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    Trainer(model, TrainConfig(progress=False))
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    # initialize=False keeps a trained model's weights even under an init option.
    Trainer(model, TrainConfig(embedding_init="normal", dense_init="xavier_normal", progress=False),
            initialize=False)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


# -- the λ regularisers ---------------------------------------------------------------------------------------

LAM = 0.05


def fm_trainer(enc, **kw):
    seed_everything(0)
    model = FM(enc.space_, embed_dim=4)
    init_embeddings(model, "normal", 0.3)    # non-zero first-order weights, so that every table counts
    return Trainer(model, TrainConfig(**{**CFG, **kw}))


def tables(model):
    return [model.linear.weights.weight, model.embedding.weight]


def test_table_penalty_is_half_lambda_times_the_squared_norm_of_every_table(data):
    enc, train, _ = data
    t = fm_trainer(enc, embedding_regularizer=LAM)
    batch = next(iter(FieldLoader(train, 64)))
    hand = LAM / 2 * sum(float((w.detach().double() ** 2).sum()) for w in tables(t.model))
    assert float(t.penalty(batch).detach()) == pytest.approx(hand, rel=1e-6)


def test_rows_penalty_covers_the_distinct_looked_up_rows_only(data):
    enc, train, _ = data
    t = fm_trainer(enc, embedding_regularizer=LAM, regularizer_form="rows")
    batch = next(iter(FieldLoader(train, 16)))
    rows = global_rows(batch, enc.space_)
    assert len(rows) < enc.space_.num_ids
    hand = LAM / 2 * sum(float((w.detach().double()[rows] ** 2).sum()) for w in tables(t.model))
    assert float(t.penalty(batch).detach()) == pytest.approx(hand, rel=1e-6)
    assert looked_up_rows(t.model.embedding, batch)[0].tolist() == rows.tolist()


def test_rows_of_bags_skip_the_padding():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.integers(0, 5, 50),
                       "tags": ["|".join(map(str, rng.choice(9, rng.integers(0, 4), replace=False)))
                                for _ in range(50)],
                       "x": rng.random(50), "label": rng.integers(0, 2, 50)})
    enc = FieldEncoder(Schema((categorical("a"), multi_valued("tags", max_tokens=3), numeric("x")),
                              label="label")).fit(df)
    space = enc.space_
    batch = next(iter(FieldLoader(enc.transform(df), 50)))
    offsets = np.concatenate([[0], np.cumsum(space.cardinalities)[:-1]])
    bag_pos = space.bag_positions
    single = [k for k in range(space.num_fields) if k not in bag_pos]
    hand = set((batch.ids.numpy()[:, single] + offsets[single]).ravel().tolist())
    bags = batch.bags.numpy()
    for slot, k in enumerate(bag_pos):
        tok = bags[:, slot]
        hand |= set((tok[tok != PAD] + offsets[k]).tolist())
    assert (bags == PAD).any()
    emb = FieldEmbedding(space, 4)
    assert looked_up_rows(emb, batch)[0].tolist() == sorted(hand)
    # A mixed-dimension embedding: one row set per table, in the table's own offsets.
    mixed = FieldEmbedding(space, 4, field_dims={"tags": 2})
    main, own = looked_up_rows(mixed, batch)
    cards = [space.cardinalities[k] for k in range(space.num_fields) if space.names[k] != "tags"]
    off = np.concatenate([[0], np.cumsum(cards)[:-1]])
    others = [k for k in range(space.num_fields) if space.names[k] != "tags"]
    assert main.tolist() == sorted(set((batch.ids.numpy()[:, others] + off).ravel().tolist()))
    tok = bags[:, 0]
    assert own.tolist() == sorted(set(tok[tok != PAD].tolist()))


@pytest.mark.parametrize("form", ["table", "rows"])
def test_the_penalty_is_backpropagated_but_not_logged(data, form):
    """One full-batch SGD step at lr η: rows no training row looks up (the reserved MISSING and RARE ids)
    get no data gradient, so they move by -η·λ·w under "table" and not at all under "rows"."""
    enc, train, _ = data
    eta = 0.5
    t = fm_trainer(enc, embedding_regularizer=LAM, regularizer_form=form, optimizer="sgd", lr=eta, epochs=1,
                   batch_size=len(train.y))
    batch = full_batch(train)
    absent = np.setdiff1d(np.arange(enc.space_.num_ids), global_rows(batch, enc.space_))
    assert len(absent) >= 8
    before = [w.detach().clone() for w in tables(t.model)]
    bce = float(F.binary_cross_entropy_with_logits(t.model(batch), batch.y).detach())
    penalty = float(t.penalty(batch).detach())
    t.fit(train)
    assert t.history[0]["train_loss"] == pytest.approx(bce, rel=1e-6)      # the penalty is not logged in it
    assert t.history[0]["train_penalty"] == pytest.approx(penalty, rel=1e-6)
    for w0, w in zip(before, tables(t.model)):
        expected = w0[absent] * (1 - eta * LAM) if form == "table" else w0[absent]
        torch.testing.assert_close(w.detach()[absent], expected, rtol=1e-6, atol=1e-9)
        if form == "table":
            assert not torch.equal(w.detach()[absent], w0[absent])


def test_gradients_of_both_forms_against_the_hand_formula(data):
    enc, train, _ = data
    batch = next(iter(FieldLoader(train, 16)))
    rows = torch.as_tensor(global_rows(batch, enc.space_))
    grads = {}
    for form in ("table", "rows"):
        t = fm_trainer(enc, embedding_regularizer=LAM, regularizer_form=form)
        loss = t.model.loss(batch, t.loss_fn)
        data_grads = torch.autograd.grad(loss, tables(t.model), retain_graph=True)
        full = torch.autograd.grad(loss + t.penalty(batch), tables(t.model))
        grads[form] = [f - d for f, d in zip(full, data_grads)]
        for w, g in zip(tables(t.model), grads[form]):
            expected = LAM * w.detach().clone()
            if form == "rows":
                mask = torch.zeros(len(w), dtype=torch.bool)
                mask[rows] = True
                expected[~mask] = 0
            torch.testing.assert_close(g, expected, rtol=1e-5, atol=1e-10)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_table_form_equals_coupled_embedding_weight_decay(data, optimizer):
    enc, train, _ = data
    runs = []
    for kw in (dict(embedding_regularizer=LAM), dict(embedding_weight_decay=LAM)):
        t = fm_trainer(enc, optimizer=optimizer, lr=0.05, epochs=2, **kw)
        t.fit(train)
        runs.append(t.model.state_dict())
    for k in runs[0]:
        torch.testing.assert_close(runs[0][k], runs[1][k], rtol=1e-5, atol=1e-7, msg=k)


def test_net_regularizer_covers_every_trained_non_table_parameter(data):
    enc, _, _ = data
    seed_everything(0)
    model = TwoOptimisers(enc.space_)
    t = Trainer(model, TrainConfig(**CFG, net_regularizer=LAM))
    names = {id(p): n for n, p in model.named_parameters()}
    assert sorted(names[id(p)] for p in t.regularizer.net_parameters) == ["lin.bias", "lin.weight"]
    hand = LAM / 2 * sum(float((p.detach().double() ** 2).sum()) for p in (model.lin.weight, model.lin.bias))
    assert float(t.penalty().detach()) == pytest.approx(hand, rel=1e-6)
    # Both λ: the sum; the embedding penalty alone leaves the dense weights out.
    t2 = Trainer(model, TrainConfig(**CFG, net_regularizer=LAM, embedding_regularizer=LAM), initialize=False)
    emb = LAM / 2 * float((model.embedding.weight.detach().double() ** 2).sum())
    assert float(t2.penalty().detach()) == pytest.approx(hand + emb, rel=1e-6)


# -- options ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("option,value", [
    ("lr_schedule", "cosine"), ("lr_schedule", 1), ("lr_factor", 1.0), ("lr_factor", 0), ("lr_factor", "x"),
    ("lr_factor", -0.5), ("lr_patience", -1), ("lr_patience", 1.5), ("min_lr", -1e-6), ("min_lr", "abc"), ("embedding_init", "uniform"),
    ("embedding_init_std", 0.0), ("embedding_init_std", float("nan")), ("dense_init", "kaiming"),
    ("embedding_regularizer", -1), ("net_regularizer", "lots"), ("regularizer_form", "batch"),
    ("protocol", "fuxictr"), ("protocol", 3),
])
def test_bad_values_are_config_errors_naming_the_option(option, value):
    with pytest.raises(ConfigError) as e:
        TrainConfig(**{option: value})
    message = str(e.value)
    assert f"'{option}'" in message and len(message.splitlines()) == 1


def test_several_bad_values_give_one_line_each():
    with pytest.raises(ConfigError) as e:
        TrainConfig(lr_factor=2, min_lr=-1, regularizer_form="x")
    lines = str(e.value).splitlines()
    assert len(lines) == 3 and all(any(f"'{o}'" in line for line in lines)
                                   for o in ("lr_factor", "min_lr", "regularizer_form"))


def test_strings_from_a_config_file_are_coerced():
    cfg = TrainConfig(lr_factor="0.5", min_lr="1e-6", embedding_init_std="1e-4", embedding_regularizer="1e-3")
    assert (cfg.lr_factor, cfg.min_lr, cfg.embedding_init_std, cfg.embedding_regularizer) == (0.5, 1e-6, 1e-4, 1e-3)


# -- protocols -------------------------------------------------------------------------------------------------

def test_bars_protocol_values():
    bars = PROTOCOLS["bars"]
    assert bars == {"lr_schedule": "plateau", "lr_factor": 0.1, "min_lr": 1e-6, "grad_clip": 10.0,
                    "embedding_init": "normal", "embedding_init_std": 1e-4, "dense_init": "xavier_normal",
                    "epochs": 100, "patience": 2, "batch_size": 4096, "optimizer": "adam",
                    "lr": 1e-3}
    cfg = TrainConfig(**apply_protocol("bars", {}))
    assert cfg.protocol == "bars" and cfg.lr_schedule == "plateau" and cfg.epochs == 100
    # The boards monitor AUC, the binary task's metric; a regression run under the protocol monitors its RMSE
    # (a fixed "auc" refused --protocol bars --task regression).
    assert cfg.monitor == "auc"
    assert TrainConfig(**apply_protocol("bars", {"task": "regression"})).monitor == "rmse"


def test_apply_protocol_given_options_win():
    out = apply_protocol("bars", {"lr": 0.01, "epochs": 5, "grad_clip": None, "seed": 3})
    assert out["lr"] == 0.01 and out["epochs"] == 5 and out["grad_clip"] is None and out["seed"] == 3
    assert out["patience"] == 2 and out["embedding_init_std"] == 1e-4 and out["protocol"] == "bars"
    assert apply_protocol("BARS", {})["protocol"] == "bars"
    assert apply_protocol(None, {"lr": 0.5}) == {"lr": 0.5}
    given = {"lr": 0.01}
    apply_protocol("bars", given)
    assert given == {"lr": 0.01}                       # the caller's dict is not changed
    out["lr_factor"] = 0.5
    assert PROTOCOLS["bars"]["lr_factor"] == 0.1        # nor the protocol's


def test_unknown_protocol_lists_the_known_ones():
    with pytest.raises(ConfigError, match=r"'nope'.*known protocols: \['bars'\]"):
        apply_protocol("nope", {})
    with pytest.raises(ConfigError, match="twice"):
        apply_protocol("bars", {"protocol": "other"})


def test_every_model_trains_under_the_bars_protocol_with_both_penalties(data):
    from fgraph.models import MODELS, build_model
    enc, train, valid = data
    for name in sorted(MODELS):
        seed_everything(0)
        model = build_model(name, enc.space_)
        opts = apply_protocol("bars", dict(epochs=1, batch_size=200, progress=False, embedding_regularizer=1e-3,
                                           net_regularizer=1e-5, regularizer_form="rows"))
        t = Trainer(model, TrainConfig(**opts)).fit(train, valid)
        record = t.history[-1]
        assert math.isfinite(record["train_loss"]) and record["train_penalty"] > 0, name
        assert t.regularizer.tables, name
