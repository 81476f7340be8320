"""The GraphFM model: ablations, exported interaction graphs, and what it learns on planted structure."""
import itertools

import networkx as nx
import numpy as np
import pytest
import torch

from fgraph.data import FieldLoader
from fgraph.explain import edge_summary, instance_graphs
from fgraph.models import GraphFM, build_model
from fgraph.train import Trainer, TrainConfig, seed_everything


def first_batch(encoded, size=5):
    return next(iter(FieldLoader(encoded, size)))


@pytest.mark.parametrize("options", [
    {},                                   # GraphFM
    {"select": False},                    # -S
    {"interaction": False},               # -I
    {"heads": 1},                         # -M
    {"predict_layer": 1},                 # -K 2
    {"topk_mode": "soft"},
    {"concat_heads": False, "residual": True, "layer_norm": True},
])
def test_variants_build_run_and_backpropagate(planted, options):
    _, enc, data = planted
    model = build_model("graphfm", enc.space_, embed_dim=4, neighbours=[8, 3], **options)
    batch = first_batch(data["train"], 16)
    out = model(batch)
    assert out.shape == (16,) and torch.isfinite(out).all()
    model.loss(batch, torch.nn.functional.binary_cross_entropy_with_logits).backward()
    grads = [p.grad for p in model.embedding.parameters()]
    assert all(g is not None and g.abs().sum() > 0 for g in grads)


def test_ablation_flags_change_the_architecture(planted):
    _, enc, _ = planted
    full = GraphFM(enc.space_, embed_dim=4, neighbours=[8, 3])
    assert len(full.scorers) == 2 and [s.k for s in full.samplers] == [8, 3]
    assert len(GraphFM(enc.space_, select=False).scorers) == 0
    assert GraphFM(enc.space_, heads=1).convs[0].heads == 1
    assert GraphFM(enc.space_, predict_layer=2).readout.layers == [2]
    assert GraphFM(enc.space_, interaction=False).convs[0].interaction is False
    # Default neighbourhoods follow the paper's pattern [n, ...]: 8 fields -> [8, 4, 2].
    assert GraphFM(enc.space_).neighbours == [8, 4, 2]


@pytest.mark.parametrize("gate", ["node", "flat"])
def test_attentional_readout_scores_the_concatenated_layer_states(planted, gate):
    """readout="attention" is Fi-GNN's attentional scoring over every field's concatenated layer states:
    sum_i sigmoid(gate_i) * (w_s . h_i + b_s) + b, with the gate from h_i alone ("node") or from all fields."""
    _, enc, data = planted
    seed_everything(0)
    model = GraphFM(enc.space_, embed_dim=4, neighbours=[8, 3], readout="attention", readout_gate=gate).eval()
    for p in model.readout.parameters():                 # non-zero biases, so they are part of the check
        torch.nn.init.normal_(p, std=0.3)
    batch = first_batch(data["test"], 16)
    states, _ = model.propagate(batch)
    h = torch.cat(states, -1)                                                        # (B, n, 2 * 8)
    head = model.readout.heads[0]
    if gate == "node":
        weight = torch.sigmoid(h @ head.gate.weight[0] + head.gate.bias[0])          # (B, n)
    else:
        weight = torch.sigmoid(h.reshape(16, -1) @ head.gate.weight.T + head.gate.bias)
    expected = (weight * (h @ head.score.weight[0] + head.score.bias[0])).sum(1) + head.bias
    torch.testing.assert_close(model(batch), expected, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="gate"):
        GraphFM(enc.space_, readout="attention", readout_gate="fields")


def test_permuting_fields_permutes_node_states(planted):
    """Relabelling the fields of every instance permutes every layer's node states the same way."""
    _, enc, data = planted
    seed_everything(0)
    model = GraphFM(enc.space_, embed_dim=4, neighbours=[8, 3]).eval()
    batch = first_batch(data["test"], 32)
    perm = torch.randperm(8)
    e = model.embedding(batch)

    class Permuted(torch.nn.Module):
        def forward(self, _batch):
            return e[:, perm]

    states, _ = model.propagate(batch)
    model.embedding, original = Permuted(), model.embedding
    try:
        permuted, _ = model.propagate(batch)
    finally:
        model.embedding = original
    for a, b in zip(states, permuted):
        torch.testing.assert_close(b, a[:, perm], atol=1e-5, rtol=1e-5)


def test_interaction_graphs_are_networkx_digraphs_with_kept_edges(planted):
    data, enc, encoded = planted
    model = GraphFM(enc.space_, embed_dim=4, neighbours=[8, 3])
    batch = first_batch(encoded["test"], 3)
    graphs = instance_graphs(model, batch, encoder=enc)
    assert len(graphs) == 3 and all(len(g) == 2 for g in graphs)
    g1, g2 = graphs[0]
    assert isinstance(g1, nx.DiGraph) and sorted(g1.nodes) == sorted(enc.space_.names)
    row = data.test.iloc[0]
    assert all(g1.nodes[f]["value"] == row[f] for f in enc.space_.names)
    # Layer 2 keeps exactly 3 sources per field, each edge with its weight p and 2 attention heads.
    assert all(g2.in_degree(f) == 3 for f in g2.nodes)
    _, _, attrs = next(iter(g2.edges(data=True)))
    assert 0 < attrs["weight"] < 1 and {"alpha_head0", "alpha_head1"} <= set(attrs) and "alpha" not in attrs
    for f in g2.nodes:
        total = sum(d["alpha_head0"] for _, _, d in g2.in_edges(f, data=True))
        assert total == pytest.approx(1.0, abs=1e-5)


def test_layer1_summary_ranks_planted_pairs_above_unrelated_ones(planted):
    data, enc, encoded = planted
    seed_everything(0)
    model = GraphFM(enc.space_, embed_dim=8, neighbours=[8, 4])
    cfg = TrainConfig(epochs=12, batch_size=512, lr=3e-3, progress=False, patience=3)
    trainer = Trainer(model, cfg).fit(encoded["train"], encoded["valid"])
    assert trainer.evaluate(encoded["test"])["auc"] > data.meta["bayes_auc"]["test"] - 0.03
    summary = edge_summary(model, FieldLoader(encoded["valid"], 2048))[0]
    names = enc.space_.names
    sym = (summary.values + summary.values.T) / 2
    planted_pairs = [(0, 1), (2, 3)]
    planted_scores = [sym[i, j] for i, j in planted_pairs]
    others = [sym[i, j] for i, j in itertools.combinations(range(len(names)), 2) if (i, j) not in planted_pairs]
    assert min(planted_scores) > max(others), (planted_scores, sorted(others)[-3:])


@pytest.mark.parametrize("model_name", ["graphfm", "fignn"])
@pytest.mark.parametrize("dataset, options", [
    ("movielens100k", {}),
    ("criteo", {}),
    ("avazu", {}),
    ("frappe", {}),
])
def test_graph_models_run_on_every_dataset_builder(dataset, options, model_name):
    """Every builder's schema (bags, scaled numerics, log-bucketed counts, 39 fields) feeds the graph models."""
    from fgraph.api import encode_dataset
    from fgraph.data.datasets import DatasetNotFoundError

    try:
        enc, data = encode_dataset(dataset, **options)
    except DatasetNotFoundError as e:
        pytest.skip(f"{dataset} files not found: {e}")
    seed_everything(0)
    model = build_model(model_name, enc.space_, embed_dim=4)
    train = data["train"].take(torch.arange(min(len(data["train"]), 3000)))
    trainer = Trainer(model, TrainConfig(epochs=1, batch_size=512, progress=False)).fit(train)
    prob = trainer.predict(data["test"].take(torch.arange(min(len(data["test"]), 500))))
    assert np.isfinite(prob).all() and ((prob > 0) & (prob < 1)).all()
