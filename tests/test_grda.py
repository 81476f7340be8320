"""GRDA (fgraph.train.grda), against a hand computation of AIM's Eq. 21; its exact zeros, checkpoints, and the
optimiser vocabulary (fgraph.train.optim) and trainer that drive it."""
import io

import numpy as np
import pandas as pd
import pytest
import torch

from fgraph.data import FieldEncoder, Schema, categorical
from fgraph.errors import ConfigError
from fgraph.models import CTRModel
from fgraph.nn import FieldEmbedding, FieldLinear
from fgraph.train import GRDA, Trainer, TrainConfig, seed_everything
from fgraph.train.grda import l1_threshold
from fgraph.train.optim import FGRAPH_OPTIMIZERS, OptimConfig, build_optimizers, resolve_optimizer

pytestmark = pytest.mark.usefixtures("one_thread")

THETA0 = [0.3, -0.2, 0.05, 0.0]
GRADS = [[0.5, -0.1, 0.02, 0.3], [-0.2, 0.4, -0.01, 0.3], [0.1, 0.1, 0.03, -0.6],
         [0.7, -0.3, 0.0, 0.1], [-0.4, 0.2, -0.02, 0.05]]


def hand_grda(theta0, grads, lr, c, mu):
    """Eq. 21 in plain floats: v_t = θ0 - lr Σ_{i<=t} g_i, θ_t = sign(v_t) max(|v_t| - c lr^(1/2+μ) t^μ, 0)."""
    out, v = [], [float(x) for x in theta0]
    for t, g in enumerate(grads, start=1):
        v = [vi - lr * gi for vi, gi in zip(v, g)]
        l1 = c * lr ** (0.5 + mu) * t ** mu
        out.append([(1.0 if vi > 0 else -1.0) * max(abs(vi) - l1, 0.0) for vi in v])
    return out


def run(p, opt, grads):
    seen = []
    for g in grads:
        p.grad = torch.tensor(g, dtype=p.dtype)
        opt.step()
        seen.append(p.detach().clone())
    return seen


@pytest.mark.parametrize("lr, c, mu", [(0.1, 0.05, 0.6), (0.3, 0.005, 0.9)])
def test_grda_is_eq21_step_by_step(lr, c, mu):
    p = torch.nn.Parameter(torch.tensor(THETA0, dtype=torch.float64))
    seen = run(p, GRDA([p], lr=lr, c=c, mu=mu), GRADS)
    expected = hand_grda(THETA0, GRADS, lr, c, mu)
    for t, (got, want) in enumerate(zip(seen, expected), start=1):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-12, atol=1e-15, err_msg=f"step {t}")
        assert l1_threshold(lr, c, mu, t) == pytest.approx(c * lr ** (0.5 + mu) * t ** mu, rel=1e-15)
    # float32 parameters follow the same steps, to float32 precision.
    p32 = torch.nn.Parameter(torch.tensor(THETA0))
    np.testing.assert_allclose(run(p32, GRDA([p32], lr=lr, c=c, mu=mu), GRADS)[-1].numpy(), expected[-1],
                               atol=1e-6)


def test_weak_gradients_give_exact_zeros_that_stay_zero():
    # Coordinate 0: a strong, consistent gradient; 1 and 2: small gradients of alternating sign.
    p = torch.nn.Parameter(torch.tensor([0.5, 0.01, -0.01]))
    opt = GRDA([p], lr=0.1, c=0.05, mu=0.6)
    small = [[-1.0, 1e-3 * (-1) ** t, -1e-3 * (-1) ** t] for t in range(20)]
    seen = run(p, opt, small)
    assert seen[0][1] != 0.0 and seen[0][2] != 0.0          # the threshold starts below |θ0|
    zero_at = next(t for t, s in enumerate(seen) if s[1] == 0.0)
    assert 0 < zero_at < 10 and all(s[1] == 0.0 and s[2] == 0.0 for s in seen[zero_at:])
    assert p[1].item() == 0.0 and p[2].item() == 0.0 and not torch.signbit(p.detach()).any()   # +0.0, not -0.0
    assert p[0].item() > 0.5
    # The zero stays zero under more small gradients, while the strong coordinate keeps moving.
    later = run(p, opt, small)
    assert all(s[1].item() == 0.0 and s[2].item() == 0.0 for s in later)
    assert later[-1][0] > seen[-1][0]
    assert (p.detach() == 0.0).sum().item() == 2


def test_with_c_zero_it_is_sgd_from_dual_averaging():
    p = torch.nn.Parameter(torch.tensor(THETA0))
    q = torch.nn.Parameter(torch.tensor(THETA0))
    grda, sgd = GRDA([p], lr=0.1, c=0.0, mu=0.7), torch.optim.SGD([q], lr=0.1)
    for g in GRADS:
        p.grad, q.grad = torch.tensor(g), torch.tensor(g)
        grda.step()
        sgd.step()
        assert torch.equal(p, q)
    np.testing.assert_allclose(p.detach().numpy(), np.array(THETA0) - 0.1 * np.array(GRADS).sum(0), atol=1e-6)


def test_parameter_groups_take_their_own_lr_c_and_mu():
    a = torch.nn.Parameter(torch.tensor(THETA0, dtype=torch.float64))
    b = torch.nn.Parameter(torch.tensor(THETA0, dtype=torch.float64))
    skipped = torch.nn.Parameter(torch.tensor([1.0], dtype=torch.float64))
    opt = GRDA([{"params": [a]}, {"params": [b, skipped], "lr": 0.3, "c": 0.02, "mu": 0.9}], lr=0.1, c=0.05, mu=0.6)
    assert [(g["lr"], g["c"], g["mu"]) for g in opt.param_groups] == [(0.1, 0.05, 0.6), (0.3, 0.02, 0.9)]
    for g in GRADS:
        a.grad, b.grad = torch.tensor(g, dtype=torch.float64), torch.tensor(g, dtype=torch.float64)
        opt.step()   # skipped has no gradient: left alone, no state
    np.testing.assert_allclose(a.detach().numpy(), hand_grda(THETA0, GRADS, 0.1, 0.05, 0.6)[-1], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(b.detach().numpy(), hand_grda(THETA0, GRADS, 0.3, 0.02, 0.9)[-1], rtol=1e-12, atol=1e-15)
    assert skipped.item() == 1.0 and skipped not in opt.state
    assert opt.state[a]["step"] == opt.state[b]["step"] == len(GRADS)


def test_a_reduced_learning_rate_keeps_the_threshold_reached():
    # As the authors' code: the threshold grows by c lr_t^(1/2+μ) (t^μ - (t-1)^μ) at each step's rate.
    p = torch.nn.Parameter(torch.tensor(THETA0, dtype=torch.float64))
    opt = GRDA([p], lr=0.1, c=0.05, mu=0.6)
    run(p, opt, GRADS[:3])
    assert opt.state[p]["l1"] == pytest.approx(l1_threshold(0.1, 0.05, 0.6, 3), rel=1e-14)
    opt.param_groups[0]["lr"] = 0.01
    run(p, opt, GRADS[3:])
    want = l1_threshold(0.1, 0.05, 0.6, 3) + sum(l1_threshold(0.01, 0.05, 0.6, t) - l1_threshold(0.01, 0.05, 0.6, t - 1)
                                               for t in (4, 5))
    assert opt.state[p]["l1"] == pytest.approx(want, rel=1e-14) and want > l1_threshold(0.1, 0.05, 0.6, 3)
    v = np.array(THETA0) - 0.1 * np.array(GRADS[:3]).sum(0) - 0.01 * np.array(GRADS[3:]).sum(0)
    np.testing.assert_allclose(opt.state[p]["accumulator"].numpy(), v, rtol=1e-12)
    np.testing.assert_allclose(p.detach().numpy(), np.sign(v) * np.maximum(np.abs(v) - want, 0), rtol=1e-12, atol=1e-15)


def test_a_checkpoint_resumes_exactly():
    grads = [[float(x) for x in row] for row in np.random.default_rng(0).normal(size=(6, 4)) * 0.1]
    theta0 = torch.tensor([0.3, -0.02, 0.05, 0.0])
    straight = torch.nn.Parameter(theta0.clone())
    run(straight, GRDA([straight], lr=0.1, c=0.05, mu=0.6), grads)

    first = torch.nn.Parameter(theta0.clone())
    opt = GRDA([first], lr=0.1, c=0.05, mu=0.6)
    run(first, opt, grads[:3])
    buffer = io.BytesIO()
    torch.save(opt.state_dict(), buffer)   # the trainer's checkpoints are read back with weights_only=True
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)
    assert saved["state"][0]["step"] == 3 and isinstance(saved["state"][0]["l1"], float)
    second = torch.nn.Parameter(first.detach().clone())
    resumed = GRDA([second], lr=0.5, c=0.0, mu=0.9)    # the state brings the hyperparameters back
    resumed.load_state_dict(saved)
    assert (resumed.param_groups[0]["lr"], resumed.param_groups[0]["c"], resumed.param_groups[0]["mu"]) == (0.1, 0.05, 0.6)
    run(first, opt, grads[3:])
    run(second, resumed, grads[3:])
    assert torch.equal(first, straight) and torch.equal(second, straight)
    assert resumed.state[second]["step"] == 6


def test_sparse_gradients_are_refused():
    emb = torch.nn.Embedding(5, 2, sparse=True)
    emb(torch.tensor([1, 2])).sum().backward()
    with pytest.raises(RuntimeError, match="sparse gradients.*sparse=False"):
        GRDA(emb.parameters()).step()


@pytest.mark.parametrize("kwargs, match", [
    (dict(lr=0.0), r"option 'lr' must be a finite number > 0, got 0.0; pass e.g. lr=0.01"),
    (dict(lr=-1.0), "option 'lr'"),
    (dict(c=-0.1), r"option 'c' must be a finite number >= 0, got -0.1; pass e.g. c=0.005"),
    (dict(mu=0.0), r"option 'mu' must be a finite number > 0, got 0.0; pass e.g. mu=0.7"),
    (dict(mu=float("nan")), "option 'mu'"),
    (dict(c="big"), "option 'c'.*got 'big'"),
])
def test_bad_hyperparameters_are_value_errors_naming_the_option(kwargs, match):
    p = torch.nn.Parameter(torch.zeros(2))
    with pytest.raises(ValueError, match=match):
        GRDA([p], **kwargs)
    with pytest.raises(ConfigError, match="GRDA parameter group 'gates': " + match.split(";")[0].split(",")[0]):
        GRDA([{"name": "gates", "params": [p], **kwargs}])


def test_a_group_with_weight_decay_is_refused():
    p = torch.nn.Parameter(torch.zeros(2))
    GRDA([{"params": [p], "weight_decay": 0.0}])
    with pytest.raises(ConfigError, match="no weight decay.*weight_decay=0.1"):
        GRDA([{"params": [p], "weight_decay": 0.1}])


# -- the optimiser vocabulary -----------------------------------------------------------------------------

class Described:
    """What build_optimizers reads of a model: configure_optimizers()."""

    def __init__(self, requests):
        self.requests = requests

    def configure_optimizers(self):
        return self.requests


def test_grda_is_resolved_by_name_and_built_with_its_options():
    assert resolve_optimizer("GRDA") is GRDA and resolve_optimizer("grda") is GRDA and FGRAPH_OPTIMIZERS == {"grda": GRDA}
    with pytest.raises(ConfigError, match=r"unknown optimizer 'grad'.*or fgraph's: \['grda'\]"):
        resolve_optimizer("grad")
    weights, gates = [torch.nn.Parameter(torch.zeros(3))], [torch.nn.Parameter(torch.ones(2))]
    model = Described([{"name": "weights", "params": weights},
                       {"name": "gates", "params": gates, "optimizer": "grda", "lr": 0.1,
                        "options": {"c": 0.01, "mu": 0.8}}])
    # The trainer's options (amsgrad) go to its own optimiser only.
    w, g = build_optimizers(model, OptimConfig("adam", lr=0.02, extra={"amsgrad": True}))
    assert isinstance(w.optimizer, torch.optim.Adam) and w.optimizer.param_groups[0]["amsgrad"]
    assert "c" not in w.optimizer.param_groups[0]
    assert (g.name, g.data) == ("gates", "train") and isinstance(g.optimizer, GRDA)
    group = g.optimizer.param_groups[0]
    assert (group["lr"], group["c"], group["mu"]) == (0.1, 0.01, 0.8) and group["params"] == gates
    # options also reach the trainer's optimiser, over its optimizer_options.
    (spec,) = build_optimizers(Described([{"params": weights, "options": {"amsgrad": False}}]),
                               OptimConfig("adam", extra={"amsgrad": True}))
    assert spec.optimizer.param_groups[0]["amsgrad"] is False
    with pytest.raises(TypeError, match=r"unknown keys \['momentum'\]"):
        build_optimizers(Described([{"params": gates, "optimizer": "grda", "momentum": 0.9}]), OptimConfig())
    with pytest.raises(TypeError, match="options must be a dict"):
        build_optimizers(Described([{"params": gates, "optimizer": "grda", "options": {"lr": 0.1}}]), OptimConfig())
    with pytest.raises(TypeError, match="options must be a dict"):
        build_optimizers(Described([{"params": gates, "optimizer": "grda", "options": [("c", 0.1)]}]), OptimConfig())
    with pytest.raises(ConfigError, match="option 'mu'"):
        build_optimizers(Described([{"params": gates, "optimizer": "grda", "options": {"mu": -1}}]), OptimConfig())


# -- through the trainer ----------------------------------------------------------------------------------

class GatedFM(CTRModel):
    """An FM whose pairwise terms are each multiplied by a gate (AutoFIS's search stage): Adam on the
    weights, GRDA on the gates."""

    def __init__(self, space, embed_dim: int = 4):
        super().__init__(space)
        self.linear = FieldLinear(space)
        self.embedding = FieldEmbedding(space, embed_dim)
        n = len(space.names)
        self.register_buffer("pairs", torch.triu_indices(n, n, offset=1), persistent=False)
        self.gates = torch.nn.Parameter(torch.full((self.pairs.shape[1],), 0.5))

    def forward(self, batch):
        e = self.embedding(batch)
        inner = (e[:, self.pairs[0]] * e[:, self.pairs[1]]).sum(-1)
        return self.linear(batch) + inner @ self.gates

    def configure_optimizers(self):
        return [{"name": "weights", "params": [p for n, p in self.named_parameters() if n != "gates"]},
                {"name": "gates", "params": [self.gates], "optimizer": "grda", "lr": 0.1,
                 "options": {"c": 1.3, "mu": 0.8}}]


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    n = 1200
    df = pd.DataFrame({k: rng.integers(0, 6, n) for k in "abcd"})
    logit = 2.0 * np.where((df.a % 2) == (df.b % 2), 1.0, -1.0)
    df["label"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    enc = FieldEncoder(Schema(tuple(categorical(c) for c in "abcd"), label="label")).fit(df[:800])
    return enc, enc.transform(df[:800]), enc.transform(df[800:1000])


def test_the_trainer_steps_gates_with_grda_and_resumes_exactly(data, tmp_path):
    enc, train, valid = data
    cfg = dict(batch_size=128, lr=5e-2, progress=False, divergence_factor=None, patience=5)

    def trainer(run_dir, epochs):
        seed_everything(0)
        return Trainer(GatedFM(enc.space_), TrainConfig(**cfg, epochs=epochs), encoder=enc, run_dir=run_dir)

    straight = trainer(tmp_path / "a", 2).fit(train, valid)
    assert [type(s.optimizer) for s in straight.optimizers] == [torch.optim.Adam, GRDA]
    gate_state = straight.optimizers[1].optimizer.state[straight.model.gates]
    assert gate_state["step"] == 2 * len(range(0, 800, 128))
    # The label depends on the pair (a, b) only, the first gate: its gate stays, the others are exactly 0.
    gates = straight.model.gates.detach()
    assert gates[0] > 0.1 and torch.equal(gates[1:], torch.zeros(5)), gates

    trainer(tmp_path / "b", 1).fit(train, valid)
    resumed = trainer(tmp_path / "b", 2).fit(train, valid, resume=True)
    assert [h["train_loss"] for h in resumed.history] == [h["train_loss"] for h in straight.history]
    for (ka, va), (kb, vb) in zip(straight.model.state_dict().items(), resumed.model.state_dict().items()):
        assert ka == kb and torch.equal(va, vb), ka
    again = resumed.optimizers[1].optimizer.state[resumed.model.gates]
    assert again["step"] == gate_state["step"] and again["l1"] == gate_state["l1"]
    assert torch.equal(again["accumulator"], gate_state["accumulator"])
