"""FIVES: its layers against hand computations of Eq. 2, 7 and 8, the derivation of interactive features
(Figure 2), the bilevel training, and what it finds on planted pairs (FIVES+LR)."""
import math

import networkx as nx
import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from fgraph.cli import main
from fgraph.data import FieldEncoder, FieldLoader
from fgraph.data.datasets import load_dataset
from fgraph.data.space import FeatureSpace
from fgraph.explain import derive_interactions, fives_graphs, fives_interactions, instance_graphs
from fgraph.explain.fives_features import FIVESCrossFeatures
from fgraph.graph import DenseAdj
from fgraph.models import FIVES, build_model
from fgraph.nn import AdjacencyPropagation, AdjacencyTensor
from fgraph.train import Trainer, TrainConfig, seed_everything
from fgraph.train.optim import OptimConfig, build_optimizers

B, N, D = 3, 5, 4


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_thread):
    """Small batches train faster on one thread, and the machine's cores are shared."""



def eq2_dense(conv, x0, h, A):
    """Eq. 2 with weighted-mean aggregation: p_i = sum_j A_ij W_j x0_j / max(1, sum_j A_ij); n_i = p_i * h_i."""
    m = torch.stack([x0[:, j] @ conv.lin.weight[j] for j in range(x0.size(1))], dim=1)     # (B, n, d)
    p = torch.einsum("ij,bjd->bid", A, m) / A.sum(1).clamp(min=1).view(1, -1, 1)
    return (p * h).reshape(-1, x0.size(-1))


@pytest.fixture
def inputs():
    torch.manual_seed(0)
    return torch.randn(B, N, D), torch.randn(B, N, D), torch.rand(N, N)


# -- Eq. 2 -------------------------------------------------------------------------------------------------
def test_propagation_matches_eq2_on_every_path(inputs):
    x0, h, A = inputs
    conv = AdjacencyPropagation(D, N)
    ref = eq2_dense(conv, x0, h, A)
    x = (x0.reshape(B * N, D), h.reshape(B * N, D))
    adj = DenseAdj.complete(B, N)
    flat_w = adj.flatten_edges(A.unsqueeze(0))                          # the same weights per edge, (E,)
    field = torch.arange(N).repeat(B)
    outs = {
        "shared (n, n) weights, matmul": conv(x, adj, A),
        "per-edge weights, dense messages": conv(x, adj, flat_w),
        "general edge_index": conv(x, adj.edge_index, flat_w, node_type=field),
    }
    for name, out in outs.items():
        torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5, msg=name)
    # Without self-loops the diagonal is simply absent.
    no_loops = DenseAdj.complete(B, N, self_loops=False)
    shared = A.gather(1, no_loops.local_index()[0])                     # (n, n - 1)
    ref0 = eq2_dense(conv, x0, h, A * (1 - torch.eye(N)))
    torch.testing.assert_close(conv(x, no_loops, shared), ref0, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(conv(x, no_loops.edge_index, no_loops.flatten_edges(shared.unsqueeze(0)),
                                    node_type=field), ref0, atol=1e-5, rtol=1e-5)
    # A neighbourhood shared by all graphs (top-2 of A per row): the rest of A is left out.
    kept_w, kept = A.topk(2, dim=1)
    topk = DenseAdj(B, N, kept.unsqueeze(0))
    ref_k = eq2_dense(conv, x0, h, torch.zeros(N, N).scatter(1, kept, kept_w))
    torch.testing.assert_close(conv(x, topk, kept_w), ref_k, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(conv(x, topk.edge_index, topk.flatten_edges(kept_w.unsqueeze(0)), node_type=field),
                               ref_k, atol=1e-5, rtol=1e-5)


def test_binary_adjacency_gives_the_exact_mean_and_empty_rows_give_zero(inputs):
    x0, h, _ = inputs
    conv = AdjacencyPropagation(D, N)
    A = torch.zeros(N, N)
    A[0, [1, 3]] = 1.0
    A[2, 4] = 1.0                                                       # rows 1, 3, 4 keep nothing
    out = conv((x0.reshape(-1, D), h.reshape(-1, D)), DenseAdj.complete(B, N), A).view(B, N, D)
    m = [x0[:, j] @ conv.lin.weight[j] for j in range(N)]
    torch.testing.assert_close(out[:, 0], (m[1] + m[3]) / 2 * h[:, 0])
    torch.testing.assert_close(out[:, 2], m[4] * h[:, 2])
    assert torch.equal(out[:, [1, 3, 4]], torch.zeros(B, 3, D))


def test_propagation_on_an_arbitrary_weighted_graph():
    torch.manual_seed(3)
    num_nodes, types = 9, 3
    x0, h = torch.randn(num_nodes, D), torch.randn(num_nodes, D)
    edge_index = torch.randint(0, num_nodes, (2, 25))
    w = torch.rand(25)
    node_type = torch.randint(0, types, (num_nodes,))
    conv = AdjacencyPropagation(D, types)
    out = conv((x0, h), edge_index, w, node_type=node_type)
    M = torch.zeros(num_nodes, num_nodes).index_put_((edge_index[1], edge_index[0]), w, accumulate=True)
    m = torch.stack([x0[v] @ conv.lin.weight[node_type[v]] for v in range(num_nodes)])
    ref = (M @ m) / M.sum(1, keepdim=True).clamp(min=1) * h
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    # Unweighted: every edge counts 1.
    M1 = torch.zeros(num_nodes, num_nodes).index_put_((edge_index[1], edge_index[0]), torch.ones(25), accumulate=True)
    torch.testing.assert_close(conv((x0, h), edge_index, node_type=node_type),
                               (M1 @ m) / M1.sum(1, keepdim=True).clamp(min=1) * h, atol=1e-5, rtol=1e-5)


def test_relabelling_the_fields_permutes_the_output(inputs):
    x0, h, A = inputs
    conv = AdjacencyPropagation(D, N)
    perm = torch.randperm(N)
    out = conv((x0.reshape(-1, D), h.reshape(-1, D)), DenseAdj.complete(B, N), A).view(B, N, D)
    moved = AdjacencyPropagation(D, N)
    with torch.no_grad():
        moved.lin.weight.copy_(conv.lin.weight[perm])
    out_p = moved((x0[:, perm].reshape(-1, D), h[:, perm].reshape(-1, D)), DenseAdj.complete(B, N),
                  A[perm][:, perm]).view(B, N, D)
    torch.testing.assert_close(out_p, out[:, perm], atol=1e-5, rtol=1e-5)


# -- Eq. 7 and 8 ------------------------------------------------------------------------------------------
def sig(v):
    return 1.0 / (1.0 + math.exp(-v))


def test_recursive_adjacency_matches_eq7_by_hand():
    tensor = AdjacencyTensor(3, 2, threshold=0.5)
    H1 = [[0.0, 2.0, -1.0], [0.3, 0.0, 0.4], [-2.0, -3.0, 0.0]]
    H2 = [[0.0, 1.0, 2.0], [-1.0, 0.0, 0.5], [3.0, -0.5, 0.0]]
    with torch.no_grad():
        tensor.weight.copy_(torch.tensor([H1, H2]))
    A1, A2 = tensor.soft()
    # A^(1) = sigma(H^(1)) off the diagonal.
    expected1 = [[0.0, sig(2.0), sig(-1.0)], [sig(0.3), 0.0, sig(0.4)], [sig(-2.0), sig(-3.0), 0.0]]
    torch.testing.assert_close(A1, torch.tensor(expected1))
    # phi(A^(1)) at 0.5: row 0 keeps {1}, row 1 keeps {0, 2}, row 2 keeps nothing (degree taken as 1).
    # A^(2)_ij = mean over the kept c of sigma(H^(2)_cj), diagonal zeroed.
    expected2 = [[0.0, sig(0.0), sig(0.5)],                                  # c = 1: sigma(H2[1, j])
                 [(sig(0.0) + sig(3.0)) / 2, 0.0, (sig(2.0) + sig(0.0)) / 2],   # c in {0, 2}
                 [0.0, 0.0, 0.0]]                                             # no c
    torch.testing.assert_close(A2, torch.tensor(expected2))
    # The independent variant of the ablation: A^(k) = sigma(H^(k)).
    independent = AdjacencyTensor(3, 2, recursive=False)
    with torch.no_grad():
        independent.weight.copy_(tensor.weight)
    torch.testing.assert_close(independent.soft()[1], torch.sigmoid(torch.tensor(H2)) * (1 - torch.eye(3)))


def test_straight_through_lets_later_orders_train_earlier_slices():
    for straight, reaches in ((True, True), (False, False)):
        tensor = AdjacencyTensor(4, 2, straight_through=straight, init_std=1.0)
        tensor.soft()[1].sum().backward()
        grad = tensor.weight.grad
        assert (grad[0].abs().sum() > 0) == reaches and grad[1].abs().sum() > 0


def test_annealing_drives_entries_towards_0_and_1():
    torch.manual_seed(0)
    tensor = AdjacencyTensor(8, 2, init=0.0, init_std=1.0, tau_start=1.0, tau_end=0.02, anneal_epochs=6)
    soft = [a.detach() for a in tensor.soft()]
    gaps, taus = [], []
    for epoch in range(1, 9):
        taus.append(tensor.anneal(epoch))
        scaled = torch.cat([a.detach().flatten() for a in tensor()])
        scaled = scaled[scaled > 0]                                     # the diagonal is 0 anyway
        gaps.append(torch.minimum(scaled, 1 - scaled))
    assert taus[0] == 1.0 and taus[5] == pytest.approx(0.02) and taus[-1] == pytest.approx(0.02)
    assert all(a > b for a, b in zip(taus[:5], taus[1:6]))
    mean_gap = [float(g.mean()) for g in gaps]
    assert all(a > b for a, b in zip(mean_gap[:5], mean_gap[1:6])) and mean_gap[-1] < mean_gap[0] / 10
    near_binary = [float((g < 0.01).float().mean()) for g in gaps]
    assert near_binary[0] == 0.0 and near_binary[-1] > 0.8
    # Eq. 8 keeps every entry on its side of 0.5, so the binary decisions do not move.
    for a, s in zip(soft, tensor()):
        off = ~torch.eye(8, dtype=torch.bool)
        assert torch.equal((a > 0.5)[off], (s.detach() > 0.5)[off])


# -- Section 2.5, Figure 2 ----------------------------------------------------------------------------------
FIG2 = ["f1", "f2", "f3", "f4"]


def figure2_adjacency():
    """Figure 2's example: order 1 has n1 -> n4 and n4 -> n2 (giving f1 x f4 and f4 x f2), order 2 has
    n4 -> n3, where n4 starts with what it generated before (f4 x f2) and n3 is the original f3."""
    A1, A2 = torch.full((4, 4), 0.1), torch.full((4, 4), 0.1)
    A1[0, 3], A1[3, 1] = 0.9, 0.8
    A2[3, 2] = 0.7
    A2[0, 1] = 0.3                # below the threshold: n1 crosses nothing at order 2
    A2[3, 1] = 0.95               # n4 -> n2 again: f4 x f2 x f2 is no new feature
    return [A1, A2]


def test_figure2_worked_example():
    found = derive_interactions(figure2_adjacency(), FIG2, [0.5, 0.5])
    assert found == [(("f1", "f4"), pytest.approx(0.9)), (("f4", "f2"), pytest.approx(0.8)),
                     (("f4", "f2", "f3"), pytest.approx(0.8 * 0.7))]
    # n4 as the end of n1 -> n4 is the original f4: nothing of f2 reaches f1's features.
    assert ("f1", "f4", "f2") not in [f for f, _ in found]
    # A higher order-2 threshold removes the 3-order feature only.
    assert [f for f, _ in derive_interactions(figure2_adjacency(), FIG2, [0.5, 0.75])] == [("f1", "f4"), ("f4", "f2")]


def test_model_reads_figure2_off_its_adjacency_tensor():
    """H set so that Eq. 7 gives Figure 2's binary decisions; interactions() derives the same features."""
    space = FeatureSpace(FIG2, ["id"] * 4, [5] * 4, FIG2)
    model = FIVES(space, embed_dim=4, orders=3)
    H1, H2 = torch.full((4, 4), -4.0), torch.full((4, 4), -4.0)
    H1[0, 3], H1[3, 1] = 2.0, 1.5
    H2[1, 2] = 1.0                # A^(2)_43 = sigma(H2[c=2, j=3]) since n4 kept only n2 at order 1
    with torch.no_grad():
        model.adjacency.weight.copy_(torch.stack([H1, H2]))
    found = fives_interactions(model)
    assert [f for f, _ in found] == [("f1", "f4"), ("f4", "f2"), ("f4", "f2", "f3")]
    assert found[2][1] == pytest.approx(sig(1.5) * sig(1.0))
    per_order, multi = fives_graphs(model)
    assert [g.graph["order"] for g in per_order] == [2, 3]
    g2 = per_order[0]
    assert isinstance(g2, nx.DiGraph) and set(g2.nodes) == set(FIG2)
    assert g2.edges["f1", "f4"]["weight"] == pytest.approx(sig(2.0)) and g2.edges["f1", "f4"]["selected"]
    assert not g2.edges["f4", "f1"]["selected"] and not g2.has_edge("f1", "f1")
    assert {(u, v) for u, v, s in g2.edges(data="selected") if s} == {("f1", "f4"), ("f4", "f2")}
    assert {(u, v) for u, v, s in per_order[1].edges(data="selected") if s} == {("f4", "f3")}
    assert isinstance(multi, nx.MultiDiGraph)
    assert multi.number_of_edges() == g2.number_of_edges() + per_order[1].number_of_edges()
    assert multi.edges["f4", "f3", 3]["selected"] and not multi.edges["f4", "f3", 2]["selected"]


# -- the model -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def paired():
    """Six fields, every one in a planted pair: each field has exactly one useful partner."""
    data = load_dataset("synthetic", n_samples=20_000, n_fields=6, pairs=((0, 1), (2, 3), (4, 5)), triple=None,
                        seed=1)
    enc = FieldEncoder(data.schema).fit(data.train)
    encoded = {k: enc.transform(getattr(data, k)) for k in ("train", "valid", "test")}
    return data, enc, encoded


@pytest.fixture(scope="module")
def trained(paired):
    _, enc, d = paired
    seed_everything(1)
    # A larger step on H than the paper's 5e-3: 12 short epochs are few search steps.
    model = FIVES(enc.space_, embed_dim=8, orders=3, alpha2=2e-2)
    trainer = Trainer(model, TrainConfig(epochs=12, batch_size=512, lr=5e-3, patience=100, progress=False))
    trainer.fit(d["train"], d["valid"])
    return model.eval(), trainer


@pytest.mark.parametrize("readout", ["flatten", "attention", "mean"])
def test_model_shapes_records_and_per_order_loss(paired, readout):
    """Every readout of the search space gives one logit per order, the prediction their mean and the loss the
    mean of the per-order losses."""
    _, enc, d = paired
    model = build_model("fives", enc.space_, embed_dim=4, orders=4, readout=readout)
    assert len(model.readout.heads) == 4 and {h.pooling for h in model.readout.heads} == {readout}
    batch = next(iter(FieldLoader(d["train"], 16)))
    states, records = model.propagate(batch, record=True)
    assert [s.shape for s in states] == [(16, 6, 4)] * 4 and len(records) == 3
    logits = model.readout.layer_logits(states)
    assert logits.shape == (16, 4)
    torch.testing.assert_close(model(batch), logits.mean(1))
    expected = torch.stack([F.binary_cross_entropy_with_logits(logits[:, k], batch.y) for k in range(4)]).mean()
    torch.testing.assert_close(model.loss(batch, F.binary_cross_entropy_with_logits), expected)
    # Per-instance graphs: every instance sees the same global adjacency.
    graphs = instance_graphs(model, next(iter(FieldLoader(d["train"], 2))), enc)
    w = [[g[layer].edges["f1", "f0"]["weight"] for layer in range(3)] for g in graphs]
    assert w[0] == w[1]


def test_bilevel_optimisers_split_the_parameters(paired):
    _, enc, d = paired
    model = FIVES(enc.space_, embed_dim=4, alpha2=5e-4)
    specs = build_optimizers(model, OptimConfig("adam", lr=1e-3))
    assert [(s.name, s.data) for s in specs] == [("weights", "train"), ("adjacency", "valid")]
    theta = {id(p) for g in specs[0].optimizer.param_groups for p in g["params"]}
    h = {id(p) for g in specs[1].optimizer.param_groups for p in g["params"]}
    assert h == {id(model.adjacency.weight)} and not theta & h
    assert theta | h == {id(p) for p in model.parameters()}
    assert specs[0].optimizer.param_groups[0]["lr"] == 1e-3 and specs[1].optimizer.param_groups[0]["lr"] == 5e-4
    assert build_optimizers(FIVES(enc.space_, alpha1=5e-3), OptimConfig(lr=1e-3))[0].optimizer \
        .param_groups[0]["lr"] == 5e-3
    with pytest.raises(ValueError, match="validation"):
        Trainer(model, TrainConfig(epochs=1, progress=False)).fit(d["train"])


def test_trainer_anneals_the_temperature_and_checkpoints_keep_it(trained, paired):
    model, trainer = trained
    assert model.adjacency.temperature == pytest.approx(0.02)      # 12 epochs >= anneal_epochs = 10
    fresh = FIVES(paired[1].space_, embed_dim=8, orders=3)
    assert fresh.adjacency.temperature == 1.0
    fresh.load_state_dict(model.state_dict())
    assert fresh.adjacency.temperature == pytest.approx(0.02)


def test_planted_pairs_are_the_top_order2_interactions_and_fives_lr_beats_lr(paired, trained):
    data, enc, _ = paired
    model, trainer = trained
    assert trainer.evaluate(paired[2]["test"])["auc"] > 0.75
    pairs = [frozenset(f) for f, _ in fives_interactions(model) if len(f) == 2]
    planted_pairs = {frozenset(p) for p in data.meta["pairs"]}
    assert set(pairs[:3]) == planted_pairs

    fields = data.schema.names
    X_train, X_test = data.train[fields], data.test[fields]
    y_train, y_test = data.train["label"].to_numpy(), data.test["label"].to_numpy()

    def auc(*steps):
        pipe = make_pipeline(*steps, OneHotEncoder(handle_unknown="ignore"), LogisticRegression(max_iter=2000))
        return roc_auc_score(y_test, pipe.fit(X_train, y_train).predict_proba(X_test)[:, 1])

    lr = auc()
    fives_lr = auc(FIVESCrossFeatures(top_n=3, model=model, encoder=enc))
    assert fives_lr > lr + 0.1, (lr, fives_lr)


def test_cross_features_transformer_follows_sklearn_conventions(paired, trained):
    data, enc, _ = paired
    model, _ = trained
    X = data.test[data.schema.names].head(50)
    before = X.copy()
    cross = FIVESCrossFeatures(top_n=2, model=model, encoder=enc, max_order=2)
    assert "model" in cross.get_params() and clone(cross).top_n == 2
    with pytest.raises(NotFittedError):
        cross.transform(X)
    out = cross.fit(X).transform(X)
    pd.testing.assert_frame_equal(X, before)                                  # the input is left alone
    (a, b), _ = cross.features_[0]
    name = f"{a}×{b}"
    assert cross.new_columns_[0] == name and list(out.columns) == list(X.columns) + cross.new_columns_
    assert list(cross.get_feature_names_out()) == list(out.columns)
    assert (out[name] == X[a].astype(str) + "×" + X[b].astype(str)).all()
    # Unseen values decode as <unknown>; the model's own interactions are the source.
    odd = X.head(2).copy()
    odd.loc[odd.index[0], a] = "never-seen"
    assert cross.transform(odd)[name].iloc[0].startswith("<unknown>×")
    assert [f for f, _ in cross.features_] == [f for f, _ in fives_interactions(model) if len(f) <= 2][:2]


def test_cross_features_transformer_trains_fives_itself():
    """The docs' FIVES+LR pipeline, and training with a given validation split."""
    data = load_dataset("synthetic", n_samples=3000, n_fields=4, pairs=((0, 1),), triple=None, seed=0)
    fields = data.schema.names
    X, y = data.train[fields], data.train["label"]
    options = dict(top_n=2, model_options={"embed_dim": 4, "orders": 2}, train_options={"epochs": 2, "batch_size": 512})
    pipe = make_pipeline(FIVESCrossFeatures(**options), OneHotEncoder(handle_unknown="ignore"),
                         LogisticRegression(max_iter=500)).fit(X, y)
    cross = pipe[0]
    assert isinstance(cross.model_, FIVES) and len(cross.features_) == 2
    assert all(len(f) == 2 for f, _ in cross.features_)
    assert cross.transform(X).shape == (len(X), 6)
    assert pipe.predict_proba(data.test[fields]).shape == (len(data.test), 2)
    given = FIVESCrossFeatures(**options).fit(X, y, validation_data=(data.valid[fields], data.valid["label"]))
    assert len(given.features_) == 2
    with pytest.raises(ValueError, match="pair"):
        FIVESCrossFeatures(**options).fit(X, y, validation_data=data.valid)


def test_bad_input_gives_clear_errors(paired, trained):
    data, enc, d = paired
    space = enc.space_
    with pytest.raises(ValueError, match="orders"):
        FIVES(space, orders=1)
    with pytest.raises(ValueError, match="one value per order"):
        FIVES(space, orders=3, threshold=[0.5, 0.5, 0.5])
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        FIVES(space, threshold=1.5)
    with pytest.raises(ValueError, match="alpha2"):
        FIVES(space, alpha2=0)
    model, _ = trained
    with pytest.raises(ValueError, match="one value per order"):
        fives_interactions(model, [0.5])
    conv = AdjacencyPropagation(D, N)
    x = torch.randn(B * N, D)
    with pytest.raises(ValueError, match="node_type"):
        conv(x, DenseAdj.complete(B, N).edge_index)
    with pytest.raises(ValueError, match="fields"):
        conv(torch.randn(B * 4, D), DenseAdj.complete(B, 4))
    with pytest.raises(ValueError, match="size 4"):
        conv(torch.randn(B * N, 3), DenseAdj.complete(B, N))
    with pytest.raises(ValueError, match=r"shape \(n, k\)"):
        conv(x, DenseAdj.complete(B, N), torch.rand(N, N - 1))
    per_graph, _ = DenseAdj.from_scores(torch.rand(B, N, N), 2)
    with pytest.raises(ValueError, match="shared by all graphs"):
        conv(x, per_graph, torch.rand(N, 2))
    with pytest.raises(ValueError, match="0..4"):
        conv(x, DenseAdj.complete(B, N).edge_index, node_type=torch.full((B * N,), 7))
    X = data.test[data.schema.names].head(20)
    with pytest.raises(ValueError, match="encoder"):
        FIVESCrossFeatures(model=model).fit(X)
    with pytest.raises(TypeError, match="FIVES"):
        FIVESCrossFeatures(model="nope", encoder=enc).fit(X)
    with pytest.raises(ValueError, match="labels"):
        FIVESCrossFeatures().fit(X)
    with pytest.raises(ValueError, match="0/1"):
        FIVESCrossFeatures().fit(X, np.arange(len(X)))
    with pytest.raises(ValueError, match="top_n"):
        FIVESCrossFeatures(top_n=0, model=model, encoder=enc).fit(X)
    cross = FIVESCrossFeatures(model=model, encoder=enc).fit(X)
    with pytest.raises(KeyError, match="f0"):
        cross.transform(X.drop(columns=["f0"]))
    with pytest.raises(TypeError, match="DataFrame"):
        cross.transform(X.to_numpy())


def test_cli_trains_fives(tmp_path, capsys):
    argv = ["train", "--model", "fives", "--dataset", "synthetic", "--epochs", "2", "--batch-size", "1024",
            "--embed-dim", "4", "--dataset-option", "n_samples=3000", "--model-option", "orders=2",
            "--out", str(tmp_path / "run"), "--no-progress"]
    assert main(argv) == 0
    assert "test auc" in capsys.readouterr().out
    assert (tmp_path / "run" / "checkpoint.pt").is_file()
