"""Fi-GNN's layers against dense computations of their equations, and the model on planted structure."""
import networkx as nx
import pytest
import torch
import torch.nn.functional as F

from fgraph.data import FieldLoader
from fgraph.explain import instance_graphs
from fgraph.graph import DenseAdj
from fgraph.models import FiGNN
from fgraph.nn import EdgeAttention, FieldSelfAttention, GatedFieldConv
from fgraph.train import Trainer, TrainConfig, seed_everything

B, N, D = 4, 6, 8


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_thread):
    """Small batches train faster on one thread, and the machine's cores are shared."""


@pytest.fixture
def x():
    torch.manual_seed(0)
    return torch.randn(B, N, D)


def edge_attention_dense(layer, h):
    """a_ij = softmax_{j != i} LeakyReLU(w^T [h_i || h_j]) as a (B, n, n) matrix."""
    n = h.size(1)
    pair = torch.cat([h.unsqueeze(2).expand(-1, -1, n, -1), h.unsqueeze(1).expand(-1, n, -1, -1)], -1)
    logits = F.leaky_relu(pair @ layer.att.weight.T, layer.negative_slope).squeeze(-1)
    logits = logits.masked_fill(torch.eye(n, dtype=torch.bool), float("-inf"))
    return torch.softmax(logits, -1)


def gated_dense(conv, h, A, e0=None):
    """m = W_in^(i) sum_j A_ij W_out^(j) h_j + b_i; h' = GRU(m, h) (+ e0), with (n, d, d) weights and bmm."""
    Bx, n, d = h.shape
    sent = torch.einsum("bnd,nde->bne", h, conv.lin_out.weight)
    received = torch.bmm(A, sent)
    m = torch.einsum("bnd,nde->bne", received, conv.lin_in.weight) + conv.lin_in.bias
    if conv.gru is not None:
        out = conv.gru(m.reshape(-1, d), h.reshape(-1, d)).view(Bx, n, d)
    else:
        out = m + h
    return out if e0 is None else out + e0


def self_attention_dense(layer, h, mask=None):
    """AutoInt's interacting layer on (B, n, d) with an optional (B, n, n) neighbour mask."""
    Bx, n, _ = h.shape
    H, Dh = layer.heads, layer.out_channels
    q, k, v = (lin(h).view(Bx, n, H, Dh) for lin in (layer.query, layer.key, layer.value))
    logits = torch.einsum("bihd,bjhd->bhij", q, k)
    if mask is not None:
        logits = logits.masked_fill(~mask.unsqueeze(1), float("-inf"))
    out = torch.einsum("bhij,bjhd->bihd", torch.softmax(logits, -1), v).reshape(Bx, n, H * Dh)
    return torch.relu(out + layer.res(h))


def test_edge_attention_matches_the_dense_softmax_on_both_paths(x):
    layer = EdgeAttention(D)
    flat = x.reshape(B * N, D)
    ref = edge_attention_dense(layer, x)
    adj = DenseAdj.complete(B, N, self_loops=False)
    fast = adj.dense_adjacency(adj.edges(layer(flat, adj)))
    general = adj.dense_adjacency(adj.edges(layer(flat, adj.edge_index)))
    torch.testing.assert_close(fast, ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(general, ref, atol=1e-5, rtol=1e-5)
    # With self-loops in the graph, the self edges get weight 0 and the rest is unchanged.
    loops = DenseAdj.complete(B, N, self_loops=True)
    for edges in (loops, loops.edge_index):
        torch.testing.assert_close(loops.edges(layer(flat, edges)), ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("gru", [True, False])
@pytest.mark.parametrize("graph", ["complete", "topk"])
def test_gated_propagation_matches_batched_matrix_products_on_both_paths(x, gru, graph):
    torch.manual_seed(1)
    conv = GatedFieldConv(D, N, gru=gru)
    flat, e0 = x.reshape(B * N, D), torch.randn(B, N, D)
    if graph == "complete":
        adj = DenseAdj.complete(B, N, self_loops=False)
    else:
        adj = DenseAdj(B, N, torch.argsort(torch.rand(B, N, N), -1)[..., :3])
    weight = torch.rand(adj.num_edges)
    A = adj.dense_adjacency(adj.edges(weight))
    ref = gated_dense(conv, x, A, e0).reshape(B * N, D)
    types = torch.arange(N).repeat(B)
    fast = conv(flat, adj, weight, residual=e0.reshape(B * N, D))
    general = conv(flat, adj.edge_index, weight, node_type=types, residual=e0.reshape(B * N, D))
    torch.testing.assert_close(fast, ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(general, ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("gru", ["gru", "gru without biases", "additive"])
@pytest.mark.parametrize("graph", ["complete", "topk"])
def test_gated_propagation_routes_agree_in_values_and_gradients(x, bias, gru, graph):
    """The field-major products with the GRU's input weights folded in (a DenseAdj in the field-graph
    layout), the per-field maps around propagate and nn.GRUCell (a DenseAdj with node types) and PyG's
    gather / scatter (an edge_index) give one function, in values and in every gradient."""
    torch.manual_seed(2)
    cell = {"gru": True, "gru without biases": torch.nn.GRUCell(D, D, bias=False), "additive": False}[gru]
    conv = GatedFieldConv(D, N, gru=cell, bias=bias)
    with torch.no_grad():           # biases away from zero, so that one added in the wrong place shows
        for p in conv.parameters():
            if p.dim() == 1 or (p.dim() == 2 and p.size(0) == N):
                p.uniform_(-1, 1)
    if graph == "complete":
        adj = DenseAdj.complete(B, N, self_loops=False)
    else:
        adj = DenseAdj(B, N, torch.argsort(torch.rand(B, N, N), -1)[..., :3])
    types = torch.arange(N).repeat(B)
    e0 = torch.randn(B * N, D)
    results = []
    for edges, node_type in ((adj, None), (adj, types), (adj.edge_index, types)):
        conv.zero_grad()
        h = x.reshape(B * N, D).clone().requires_grad_()
        weight = torch.rand(adj.num_edges, generator=torch.Generator().manual_seed(3)).requires_grad_()
        out = conv(h, edges, weight, node_type=node_type, residual=e0)
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
        results.append([out, h.grad, weight.grad] + [p.grad.clone() for p in conv.parameters()])
    for other in results[1:]:
        for a, b in zip(results[0], other):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    if bias:
        with torch.no_grad():
            ref = gated_dense(conv, x, adj.dense_adjacency(adj.edges(weight)), e0.view(B, N, D))
        torch.testing.assert_close(results[0][0], ref.reshape(B * N, D), atol=1e-5, rtol=1e-5)


def test_self_attention_matches_autoint_on_both_paths(x):
    layer = FieldSelfAttention(D, 4, heads=2)
    flat = x.reshape(B * N, D)
    complete = DenseAdj.complete(B, N)
    ref = self_attention_dense(layer, x).reshape(B * N, -1)
    torch.testing.assert_close(layer(flat, complete), ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(layer(flat, complete.edge_index), ref, atol=1e-5, rtol=1e-5)
    sparse = DenseAdj(B, N, torch.argsort(torch.rand(B, N, N), -1)[..., :3])
    ref = self_attention_dense(layer, x, sparse.dense_adjacency() > 0).reshape(B * N, -1)
    torch.testing.assert_close(layer(flat, sparse), ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(layer(flat, sparse.edge_index), ref, atol=1e-5, rtol=1e-5)


def test_permuting_fields_with_their_weights_permutes_the_outputs(x):
    torch.manual_seed(2)
    att, conv = EdgeAttention(D), GatedFieldConv(D, N)
    perm = torch.randperm(N)
    adj = DenseAdj.complete(B, N, self_loops=False)

    def step(h, conv):
        flat = h.reshape(B * N, D)
        return conv(flat, adj, att(flat, adj), residual=flat).view(B, N, D)

    out = step(x, conv)
    permuted = GatedFieldConv(D, N)
    with torch.no_grad():
        permuted.load_state_dict(conv.state_dict())
        for lin in (permuted.lin_in, permuted.lin_out):
            lin.weight.copy_(lin.weight[perm])
        permuted.lin_in.bias.copy_(conv.lin_in.bias[perm])
    torch.testing.assert_close(step(x[:, perm], permuted), out[:, perm], atol=1e-5, rtol=1e-5)


def test_layers_run_on_an_arbitrary_typed_graph():
    torch.manual_seed(0)
    num_nodes, types = 9, torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2])
    x = torch.randn(num_nodes, D)
    edge_index = torch.randint(0, num_nodes, (2, 30))
    weight = EdgeAttention(D)(x, edge_index)
    incoming = torch.zeros(num_nodes).index_add_(0, edge_index[1], weight)
    has_other = torch.zeros(num_nodes, dtype=torch.bool)
    has_other[edge_index[1][edge_index[0] != edge_index[1]]] = True
    torch.testing.assert_close(incoming[has_other], torch.ones(int(has_other.sum())))
    assert bool((weight[edge_index[0] == edge_index[1]] == 0).all())
    conv = GatedFieldConv(D, 3)
    out = conv(x, edge_index, weight, node_type=types)
    # Reference: an explicit loop over edges with the per-type matrices.
    received = torch.zeros(num_nodes, D)
    for (j, i), a in zip(edge_index.t().tolist(), weight):
        received[i] += a * (x[j] @ conv.lin_out.weight[types[j]])
    m = torch.einsum("nd,nde->ne", received, conv.lin_in.weight[types]) + conv.lin_in.bias[types]
    torch.testing.assert_close(out, conv.gru(m, x), atol=1e-5, rtol=1e-5)
    assert FieldSelfAttention(D, 4)(x, edge_index).shape == (num_nodes, 8)


def test_bad_inputs_name_the_argument():
    conv = GatedFieldConv(D, N)
    x = torch.randn(2 * N, D)
    adj = DenseAdj.complete(2, N, self_loops=False)
    with pytest.raises(ValueError, match="x must have shape"):
        conv(torch.randn(2 * N, D + 1), adj)
    with pytest.raises(ValueError, match="node_type"):
        conv(x, adj.edge_index, node_type=torch.full((2 * N,), N))
    with pytest.raises(ValueError, match="node_type"):
        conv(torch.randn(7, D), torch.zeros(2, 0, dtype=torch.long))
    with pytest.raises(ValueError, match="GRUCell"):
        GatedFieldConv(D, N, gru=torch.nn.GRUCell(D, D + 1))


def test_zero_steps_reads_out_the_embeddings(planted):
    _, enc, encoded = planted
    model = FiGNN(enc.space_, embed_dim=8, steps=0).eval()
    batch = next(iter(FieldLoader(encoded["test"], 16)))
    torch.testing.assert_close(model(batch), model.readout([model.embedding(batch)]))
    assert model.convs is not None and len(model.convs) == 0


@pytest.mark.parametrize("options", [
    {},
    {"gru": False, "share_weights": False},
    {"recompute_attention": True, "self_attention": True, "readout": "mean", "readout_all_steps": True},
])
def test_variants_run_and_export_attention_graphs(planted, options):
    _, enc, encoded = planted
    torch.manual_seed(0)
    model = FiGNN(enc.space_, embed_dim=8, steps=2, **options)
    batch = next(iter(FieldLoader(encoded["test"], 3)))
    logits = model(batch)
    logits.sum().backward()
    assert logits.shape == (3,) and all(p.grad is not None for p in model.edge_attention.parameters())
    graphs = instance_graphs(model, batch, enc)
    assert len(graphs) == 3 and len(graphs[0]) == 2
    g = graphs[0][0]
    assert isinstance(g, nx.DiGraph) and set(g.nodes) == set(enc.space_.names)
    assert g.number_of_edges() == 8 * 7 and not any(u == v for u, v in g.edges)
    for node in g.nodes:
        assert sum(w for _, _, w in g.in_edges(node, data="weight")) == pytest.approx(1.0, abs=1e-5)
    assert g.nodes["f0"]["value"] == enc.value_of("f0", int(batch.ids[0, 0]))


def test_learns_the_planted_set_close_to_the_true_probabilities(planted):
    data, enc, encoded = planted
    seed_everything(0)
    # Pure interactions with no main effects: the model starts on a plateau, which a larger step size
    # leaves within a few epochs.
    model = FiGNN(enc.space_, embed_dim=8, steps=2)
    cfg = TrainConfig(epochs=12, batch_size=512, lr=1e-2, progress=False, patience=3)
    trainer = Trainer(model, cfg).fit(encoded["train"], encoded["valid"])
    auc = trainer.evaluate(encoded["test"])["auc"]
    assert auc > data.meta["bayes_auc"]["test"] - 0.02, (auc, data.meta["bayes_auc"])


@pytest.mark.parametrize("self_loops", [False, True])
def test_edge_attention_gives_the_same_edges_and_gradients_on_both_paths(x, self_loops):
    # The complete graph's fast path computes all (B, n, n) weights at once and drops the diagonal; the flat
    # edge order and the gradients must be those of the general path.
    layer = EdgeAttention(D)
    adj = DenseAdj.complete(B, N, self_loops=self_loops)
    flat = x.reshape(B * N, D).requires_grad_()
    fast = layer(flat, adj)
    cot = torch.randn_like(fast)
    (g_fast,) = torch.autograd.grad((fast * cot).sum(), flat)
    general = layer(flat, adj.edge_index)
    (g_general,) = torch.autograd.grad((general * cot).sum(), flat)
    torch.testing.assert_close(fast, general, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(g_fast, g_general, atol=1e-6, rtol=1e-5)
    # Its (B, n, n) matrix is what the adjacency now gives for these edges, read by the gated steps.
    torch.testing.assert_close(adj.dense_adjacency(fast), edge_attention_dense(layer, x), atol=1e-6, rtol=1e-5)
