"""The graph heads' shared ``state_norm``: a LayerNorm on every layer's node states (FieldGraphModel)."""
import pytest
import torch
import torch.nn.functional as F

from fgraph.data.loader import FieldLoader
from fgraph.models import build_model
from fgraph.nn.init import init_embeddings
from fgraph.train.metrics import binary_metrics

HEADS = {"graphfm": True, "fives": True, "fignn": False}   # the model's own default


@pytest.mark.parametrize("name", sorted(HEADS))
def test_default_and_layers(planted, name):
    _, enc, _ = planted
    model = build_model(name, enc.space_, embed_dim=8)
    assert model.state_norm is HEADS[name]
    off = build_model(name, enc.space_, embed_dim=8, state_norm=False)
    assert off.state_norms is None
    on = build_model(name, enc.space_, embed_dim=8, state_norm=True)
    interaction_layers = {"graphfm": lambda: len(on.convs), "fives": lambda: on.orders - 1,
                          "fignn": lambda: on.steps}[name]()
    assert len(on.state_norms) == interaction_layers
    assert all(isinstance(m, torch.nn.LayerNorm) for m in on.state_norms)


@pytest.mark.parametrize("name", sorted(HEADS))
def test_states_are_the_layer_norm_of_the_unnormalised_layer(planted, name):
    """With the norms' affine parameters at their init (1, 0) every interaction state is centred per node
    with at most unit variance; with random affine parameters it is exactly ``LN_k`` of what the layer computed from the
    (normalised) previous state."""
    _, enc, data = planted
    torch.manual_seed(0)
    model = build_model(name, enc.space_, embed_dim=8, state_norm=True).eval()
    batch = next(iter(FieldLoader(data["train"], 64)))
    with torch.no_grad():
        states, _ = model.propagate(batch)
    interaction = states[1:] if name == "fives" else states      # FIVES's first state is the embeddings
    for h in interaction:
        assert torch.allclose(h.mean(-1), torch.zeros(()), atol=1e-5)
        # var(LN(x)) = var(x) / (var(x) + eps): 1 for states well above LayerNorm's eps (1e-5), less for the
        # tiny products FIVES starts from
        assert (h.var(-1, unbiased=False) <= 1 + 1e-4).all() and h.var(-1).mean() > 0.1
    # Random affine parameters: the states are no longer standardised, so the check above could fail.
    with torch.no_grad():
        for norm in model.state_norms:
            norm.weight.uniform_(0.5, 2.0)
            norm.bias.uniform_(-1.0, 1.0)
        states, _ = model.propagate(batch)
    interaction = states[1:] if name == "fives" else states
    assert not torch.allclose(interaction[0].mean(-1), torch.zeros(()), atol=1e-2)
    norm0 = model.state_norms[0]
    standardised = (interaction[0] - norm0.bias) / norm0.weight
    assert torch.allclose(standardised.mean(-1), torch.zeros(()), atol=1e-4)


def _fit_auc(model, data, epochs=4, seed=0):
    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(epochs):
        model.train()
        for batch in FieldLoader(data["train"], 512, shuffle=True, seed=seed):
            opt.zero_grad()
            model.loss(batch, F.binary_cross_entropy_with_logits).backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        pred = torch.cat([torch.sigmoid(model(b)) for b in FieldLoader(data["valid"], 4096)])
    return binary_metrics(data["valid"].y.numpy(), pred.numpy())["auc"]


@pytest.mark.slow
def test_graphfm_learns_the_planted_pairs_from_a_tiny_init_only_with_state_norm(planted, one_thread):
    """The plateau in miniature: at the bars protocol's N(0, 1e-4) embeddings GraphFM's messages are products
    of two embeddings (~1e-8), so after an epoch it has learned next to nothing (measured: valid AUC 0.555,
    against 0.808 with the state norm, which gives the messages unit scale)."""
    _, enc, data = planted
    aucs = {}
    for state_norm in (False, True):
        torch.manual_seed(0)
        model = build_model("graphfm", enc.space_, embed_dim=8, state_norm=state_norm)
        init_embeddings(model, "normal", std=1e-4)
        aucs[state_norm] = _fit_auc(model, data, epochs=1)
    assert aucs[False] < 0.62, aucs
    assert aucs[True] > 0.75, aucs


@pytest.mark.parametrize("name", sorted(HEADS))
def test_state_norm_eps_is_the_floor_of_every_norm(planted, name):
    _, enc, _ = planted
    model = build_model(name, enc.space_, embed_dim=8, state_norm=True, state_norm_eps=1e-20)
    assert model.state_norm_eps == 1e-20 and all(m.eps == 1e-20 for m in model.state_norms)
    assert all(m.eps == 1e-5 for m in build_model(name, enc.space_, embed_dim=8, state_norm=True).state_norms)
    with pytest.raises(ValueError, match="state_norm_eps must be > 0"):
        build_model(name, enc.space_, embed_dim=8, state_norm=True, state_norm_eps=0)


@pytest.mark.parametrize("name", ["graphfm", "fives"])
def test_a_small_floor_gives_the_tiny_init_states_unit_scale(planted, name):
    """At N(0, 1e-4) embeddings the first interaction states have a standard deviation far below
    sqrt(1e-5): torch's default floor leaves them tiny after the norm, a floor of 1e-20 standardises them."""
    _, enc, data = planted
    batch = next(iter(FieldLoader(data["train"], 256)))
    stds = {}
    for eps in (1e-5, 1e-20):
        torch.manual_seed(0)
        model = build_model(name, enc.space_, embed_dim=8, state_norm=True, state_norm_eps=eps).eval()
        init_embeddings(model, "normal", std=1e-4)
        with torch.no_grad():
            states, _ = model.propagate(batch)
        stds[eps] = float((states[1] if name == "fives" else states[0]).std(-1, unbiased=False).mean())
    assert stds[1e-5] < 1e-2, stds
    assert stds[1e-20] > 0.9, stds
