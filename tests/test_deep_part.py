"""The deep part of the graph heads (GraphFM+, Fi-GNN+, FIVES+): the MLP layer, the readout's sum, the "+" models."""
import pytest
import torch
import torch.nn.functional as F
from torch_geometric.nn import MLP as PyGMLP

from fgraph.data import FieldLoader
from fgraph.errors import ConfigError
from fgraph.explain import instance_graphs
from fgraph.models import (FIVES, MODELS, PLUS_DEEP_LAYERS, FiGNN, FIVESPlus, FiGNNPlus, GraphFM, GraphFMPlus,
                           build_model)
from fgraph.models.base import check_hparams
from fgraph.nn import MLP, FieldReadout
from fgraph.train import Trainer, TrainConfig, seed_everything
from fgraph.train.optim import OptimConfig, build_optimizers

BASES = {"graphfm": GraphFM, "fignn": FiGNN, "fives": FIVES}
PLUS = {"graphfm+": GraphFMPlus, "fignn+": FiGNNPlus, "fives+": FIVESPlus}
# Options that move the readout or the embeddings' path: per-layer outputs, self-attention before the graph.
VARIANTS = [("graphfm", {}), ("graphfm", {"readout_per_layer": True, "readout": "flatten"}),
            ("fignn", {}), ("fignn", {"self_attention": True, "readout_all_steps": True}),
            ("fives", {}), ("fives", {"readout": "mean"})]


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_thread):
    """Small batches train faster on one thread, and the machine's cores are shared."""


@pytest.fixture(scope="module")
def small(planted):
    """The planted set's encoder and a batch of 64 training rows."""
    _, enc, encoded = planted
    batch = next(iter(FieldLoader(encoded["train"], batch_size=64)))
    return enc, batch


def mlp_by_hand(mlp: MLP, x: torch.Tensor) -> torch.Tensor:
    """ReLU(BN(W x + b)) per hidden layer (BN in eval mode: running statistics), then W_out x + b_out."""
    for k, lin in enumerate(mlp.lins[:-1]):
        x = x @ lin.weight.T + lin.bias
        if mlp.norms is not None:
            bn = mlp.norms[k]
            x = (x - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps) * bn.weight + bn.bias
        x = torch.clamp(x, min=0)
    return x @ mlp.lins[-1].weight.T + mlp.lins[-1].bias


# -- the layer ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("hidden, batch_norm", [((), False), ((7,), False), ((9, 5), True)])
def test_mlp_matches_its_equation(hidden, batch_norm):
    torch.manual_seed(0)
    mlp = MLP(12, hidden, dropout=0.3, batch_norm=batch_norm)
    assert mlp.dims == [12, *hidden, 1] and len(mlp.lins) == len(hidden) + 1
    x = torch.randn(16, 12)
    if batch_norm:          # move the running statistics away from (0, 1), so the check sees them
        mlp.train()
        for _ in range(5):
            mlp(3 * x + 1)
    mlp.eval()
    torch.testing.assert_close(mlp(x), mlp_by_hand(mlp, x))
    # Dropout acts in training only, after the hidden activations: with p=0.3 some hidden units are zeroed.
    if hidden:
        mlp.train()
        torch.manual_seed(1)
        assert not torch.allclose(mlp(x), mlp.eval()(x))


def test_mlp_repr_reset_and_refusals():
    mlp = MLP(40, (400, 400), dropout=0.1, batch_norm=True)
    assert repr(mlp) == "MLP(40 -> 400 -> 400 -> 1, dropout=0.1, batch_norm=True)"
    before = [p.detach().clone() for p in mlp.parameters()]
    with torch.no_grad():
        for p in mlp.parameters():
            p.fill_(3.0)
    mlp.reset_parameters()
    after = list(mlp.parameters())
    assert all(not torch.equal(a, torch.full_like(a, 3.0)) for a in after)
    assert all(a.shape == b.shape for a, b in zip(after, before))
    torch.testing.assert_close(mlp.norms[0].weight, torch.ones(400))   # BatchNorm back to its identity init
    with pytest.raises(ValueError, match="widths"):
        MLP(10, (4, 0))
    with pytest.raises(ValueError, match="dropout"):
        MLP(10, (4,), dropout=1.0)


@pytest.mark.parametrize("hidden", [(), (6, 5)])
def test_mlp_is_pyg_mlp_weight_for_weight(hidden):
    """INN and DeepIFM used PyG's MLP: the same parameter names, the same initial draw under a seed, the same
    function (so their checkpoints load and their seeded runs are unchanged)."""
    torch.manual_seed(4)
    ours = MLP(10, hidden, dropout=0.2)
    torch.manual_seed(4)
    theirs = PyGMLP([10, *hidden, 1], dropout=0.2, norm=None, act="relu", plain_last=True)
    a, b = ours.state_dict(), theirs.state_dict()
    assert list(a) == list(b)
    assert all(torch.equal(a[k], b[k]) for k in a)
    x = torch.randn(8, 10)
    torch.testing.assert_close(ours.eval()(x), theirs.eval()(x))


# -- the readout ------------------------------------------------------------------------------------------------
def test_readout_adds_the_deep_logit_to_every_layer_logit():
    torch.manual_seed(0)
    B, n, d = 5, 4, 3
    readout = FieldReadout(n, [d, d], pooling="flatten", per_layer=True, embed_dim=d, deep_layers=[6])
    plain = FieldReadout(n, [d, d], pooling="flatten", per_layer=True)
    plain.load_state_dict({k: v for k, v in readout.state_dict().items() if not k.startswith("deep.")})
    states, e = [torch.randn(B, n, d), torch.randn(B, n, d)], torch.randn(B, n, d)
    deep = mlp_by_hand(readout.deep, e.reshape(B, -1)).squeeze(-1)
    torch.testing.assert_close(readout.deep_logit(e), deep)
    torch.testing.assert_close(readout.layer_logits(states, e), plain.layer_logits(states) + deep[:, None])
    torch.testing.assert_close(readout(states, e), plain(states) + deep)
    y = torch.randint(0, 2, (B,)).float()
    by_hand = sum(F.binary_cross_entropy_with_logits(plain.layer_logits(states)[:, k] + deep, y) for k in (0, 1)) / 2
    torch.testing.assert_close(readout.loss(states, y, F.binary_cross_entropy_with_logits, embeddings=e), by_hand)
    with pytest.raises(ValueError, match="field embeddings"):
        readout(states)
    with pytest.raises(ValueError, match="embed_dim"):
        FieldReadout(n, [d], deep_layers=[4])
    with pytest.raises(ValueError, match="embedding values"):
        readout(states, torch.randn(B, n + 1, d))


# -- the models -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, options", VARIANTS)
def test_output_is_the_graph_logit_plus_the_mlp_of_the_flattened_embeddings(small, name, options):
    """forward = the same model's graph readout without the deep part + MLP([e_1 : ... : e_n]), by hand from the
    modules' own weights; with per-layer outputs the loss is the mean of the per-layer losses, each with the deep
    logit added."""
    enc, batch = small
    seed_everything(0)
    model = build_model(name, enc.space_, embed_dim=8, deep_layers=[16, 8], deep_batch_norm=True, **options).eval()
    with torch.no_grad():                   # running statistics away from (0, 1), so the check sees them
        for bn in model.readout.deep.norms:
            bn.running_mean.uniform_(-0.5, 0.5), bn.running_var.uniform_(0.5, 2.0)
    plain = build_model(name, enc.space_, embed_dim=8, **options).eval()
    missing, unexpected = plain.load_state_dict(model.state_dict(), strict=False)
    assert not missing and unexpected and all(k.startswith("readout.deep.") for k in unexpected)

    e = model.embedding(batch)                                             # (B, n, d): the raw field embeddings
    deep = mlp_by_hand(model.readout.deep, e.reshape(e.size(0), -1)).squeeze(-1)
    assert deep.abs().max() > 1e-3                                         # a deep part that contributes
    torch.testing.assert_close(model(batch), plain(batch) + deep, atol=1e-5, rtol=1e-5)

    states, _ = plain.propagate(batch)
    layer_logits = plain.readout.layer_logits(states) + deep[:, None]
    by_hand = torch.stack([F.binary_cross_entropy_with_logits(layer_logits[:, k], batch.y)
                           for k in range(layer_logits.size(1))]).mean()
    torch.testing.assert_close(model.loss(batch, F.binary_cross_entropy_with_logits), by_hand, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", sorted(BASES))
def test_the_embeddings_are_looked_up_once(small, name):
    enc, batch = small
    model = build_model(name, enc.space_, embed_dim=8, deep_layers=[8])
    calls = []
    model.embedding.register_forward_hook(lambda *_: calls.append(1))
    model(batch)
    model.loss(batch, F.binary_cross_entropy_with_logits)
    assert len(calls) == 2


@pytest.mark.parametrize("name", sorted(BASES))
def test_deep_part_off_is_the_model_without_it(small, name):
    """Off by default; None and [] are off too: no deep parameters, and the seeded model is the same model."""
    enc, batch = small
    outs, counts, keys = [], [], []
    for options in ({}, {"deep_layers": None}, {"deep_layers": []}, {"deep_layers": [], "deep_dropout": 0.5}):
        seed_everything(0)
        model = build_model(name, enc.space_, embed_dim=8, **options).eval()
        assert model.readout.deep is None
        outs.append(model(batch).detach())
        counts.append(sum(p.numel() for p in model.parameters()))
        keys.append(list(model.state_dict()))
    assert all(torch.equal(o, outs[0]) for o in outs) and len(set(counts)) == 1 and all(k == keys[0] for k in keys)
    assert not any("deep" in k for k in keys[0])
    assert BASES[name](enc.space_).hparams["deep_layers"] is None


@pytest.mark.parametrize("name", sorted(BASES))
def test_the_plus_variant_is_the_base_model_plus_an_mlp(small, name):
    """Under one seed, ``name+`` has the base model's weights and an MLP on top (the deep part is built last)."""
    enc, _ = small
    seed_everything(0)
    base = build_model(name, enc.space_, embed_dim=8)
    seed_everything(0)
    plus = build_model(name + "+", enc.space_, embed_dim=8)
    b, p = base.state_dict(), plus.state_dict()
    assert set(p) - set(b) == {k for k in p if k.startswith("readout.deep.")} != set()
    assert all(torch.equal(b[k], p[k]) for k in b)
    width = enc.space_.num_fields * 8
    assert plus.readout.deep.dims == [width, *PLUS_DEEP_LAYERS, 1]
    assert sum(v.numel() for k, v in p.items() if k.startswith("readout.deep.")) == \
        sum(a * c + c for a, c in zip([width, *PLUS_DEEP_LAYERS], [*PLUS_DEEP_LAYERS, 1]))


def test_gradients_reach_the_mlp_and_through_it_the_embeddings(small):
    enc, batch = small
    seed_everything(0)
    model = build_model("fignn", enc.space_, embed_dim=8, deep_layers=[16, 8], deep_dropout=0.1)
    model.loss(batch, F.binary_cross_entropy_with_logits).backward()
    for name, p in model.readout.deep.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name
    # The embeddings get the deep part's gradient too: with the graph path cut off, it is all they get.
    model.zero_grad()
    model.readout.deep_logit(model.embedding(batch)).sum().backward()
    assert model.embedding.tables[0].weight.grad.abs().sum() > 0
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in model.convs.parameters())


def test_deep_options_are_checked():
    for options, match in (({"deep_dropout": 1.0}, "deep_dropout"), ({"deep_dropout": -0.1}, "deep_dropout"),
                           ({"deep_layers": [400, 0]}, r"deep_layers\[1\]"), ({"deep_layers": 400}, "list"),
                           ({"deep_batch_norm": "maybe"}, "deep_batch_norm")):
        for name in [*BASES, *PLUS]:
            with pytest.raises(ConfigError, match=match):
                check_hparams(name, options)
    assert check_hparams("fives+", {"deep_layers": ["64", 32], "deep_batch_norm": "yes"}) == \
        {"deep_layers": [64, 32], "deep_batch_norm": True}


@pytest.mark.parametrize("name", sorted(PLUS))
def test_plus_variants_build_train_a_step_export_and_round_trip(planted, name):
    data, enc, encoded = planted
    assert MODELS[name] is PLUS[name] and issubclass(PLUS[name], BASES[name[:-1]])
    seed_everything(0)
    model = build_model(name, enc.space_, embed_dim=8)
    assert model.hparams["deep_layers"] == list(PLUS_DEEP_LAYERS)
    # The same options as the base model, only the default of deep_layers differs.
    base_hparams = build_model(name[:-1], enc.space_, embed_dim=8).hparams
    assert {k for k in model.hparams} == set(base_hparams)
    assert {k for k in model.hparams if model.hparams[k] != base_hparams[k]} == {"deep_layers"}

    # One optimiser step (FIVES: its weight step) moves the deep part and lowers the loss on that batch.
    batch = next(iter(FieldLoader(encoded["train"], batch_size=256)))
    optimiser = build_optimizers(model, OptimConfig(lr=1e-3))[0].optimizer
    before = [p.detach().clone() for p in model.readout.deep.parameters()]
    loss0 = model.loss(batch, F.binary_cross_entropy_with_logits)
    optimiser.zero_grad()
    loss0.backward()
    optimiser.step()
    assert all(not torch.equal(a, b) for a, b in zip(before, model.readout.deep.parameters()))
    assert model.loss(batch, F.binary_cross_entropy_with_logits) < loss0

    # Interaction graphs still come out, one per row and layer.
    rows = next(iter(FieldLoader(encoded["test"], batch_size=3)))
    graphs = instance_graphs(model, rows, enc)
    assert len(graphs) == 3 and graphs[0] and sorted(graphs[0][0].nodes) == sorted(enc.space_.names)

    # The recorded options rebuild the same model.
    rebuilt = build_model(name, enc.space_, **model.hparams)
    assert type(rebuilt) is type(model) and rebuilt.hparams == model.hparams
    rebuilt.load_state_dict(model.state_dict())
    model.eval(), rebuilt.eval()
    torch.testing.assert_close(rebuilt(rows), model(rows))
    # ... also through the base model's name, given deep_layers.
    assert type(build_model(name[:-1], enc.space_, **model.hparams).readout.deep) is MLP


def test_a_graph_head_with_a_deep_part_learns_the_planted_pairs(planted):
    """GraphFM with a deep part (and batch norm and dropout in it) on 8 fields whose label depends only on two
    pairs: within a few epochs its test AUC is far above chance, near the Bayes AUC."""
    data, enc, encoded = planted
    seed_everything(0)
    model = build_model("graphfm", enc.space_, embed_dim=8, neighbours=[8, 4], deep_layers=[64, 32],
                        deep_dropout=0.1, deep_batch_norm=True)
    train = encoded["train"].take(torch.arange(12_000))
    trainer = Trainer(model, TrainConfig(epochs=4, batch_size=512, lr=1e-2, progress=False)).fit(train)
    auc = trainer.evaluate(encoded["test"])["auc"]
    bayes = data.meta["bayes_auc"]["test"]
    assert auc > 0.5 + 0.7 * (bayes - 0.5), (auc, bayes)
