"""The field graph and the fast path every fgraph layer can take on it."""
import pytest
import torch
from torch import nn

from fgraph.graph import DenseAdj, field_graph, to_dense, to_flat
from fgraph.nn import FieldMessagePassing, edge_softmax


class ProbeConv(FieldMessagePassing):
    """A small operator touching every part of the dense path: x_i, x_j, edge weights, edge softmax."""

    def __init__(self, dim: int, aggr: str = "sum"):
        super().__init__(aggr=aggr)
        self.att = nn.Linear(dim, 2)
        self.lin = nn.Linear(dim, dim)

    def forward(self, x, edge_index, edge_weight=None):
        return self.propagate(edge_index, x=x, edge_weight=edge_weight)

    def message(self, x_i, x_j, edge_weight, index, ptr, size_i):
        inter = x_i * x_j
        alpha = edge_softmax(self.att(inter), index, ptr, size_i)          # (..., 2) heads
        msg = alpha.mean(-1, keepdim=True) * self.lin(inter) + x_j
        if edge_weight is not None:
            msg = msg * edge_weight.unsqueeze(-1)
        return msg


def dense_reference(conv: ProbeConv, x: torch.Tensor, index: torch.Tensor, weight=None, aggr="sum"):
    """Plain PyTorch on (B, n, k, d): what the operator means on a k-regular graph."""
    B, n, d = x.shape
    index = index.expand(B, -1, -1)
    xj = torch.stack([x[b, index[b]] for b in range(B)])             # (B, n, k, d)
    inter = x.unsqueeze(2) * xj
    alpha = torch.softmax(conv.att(inter), dim=2).mean(-1, keepdim=True)
    msg = alpha * conv.lin(inter) + xj
    if weight is not None:
        msg = msg * weight.unsqueeze(-1)
    red = {"sum": msg.sum(2), "mean": msg.mean(2), "max": msg.amax(2)}[aggr]
    return red.reshape(B * n, d)


def adjacencies(B, n):
    torch.manual_seed(1)
    scores = torch.rand(B, n, n)
    topk, kept = DenseAdj.from_scores(scores, 3)
    return {
        "complete": (DenseAdj.complete(B, n), None),
        "no_self_loops": (DenseAdj.complete(B, n, self_loops=False), None),
        "top3": (topk, kept),
    }


@pytest.mark.parametrize("aggr", ["sum", "mean", "max"])
@pytest.mark.parametrize("kind", ["complete", "no_self_loops", "top3"])
def test_fast_path_equals_general_path_and_dense_math(kind, aggr):
    torch.manual_seed(0)
    B, n, d = 5, 6, 8
    conv = ProbeConv(d, aggr)
    adj, weight = adjacencies(B, n)[kind]
    x = torch.randn(B * n, d, requires_grad=True)
    w_flat = None if weight is None else adj.flatten_edges(weight)

    fast = conv(x, adj, w_flat)
    general = conv(x, adj.edge_index, w_flat)
    ref = dense_reference(conv, x.view(B, n, d), adj.local_index(), weight, aggr)
    torch.testing.assert_close(fast, general, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(fast, ref, atol=1e-5, rtol=1e-5)

    # Same gradients on both paths, for the input and the layer's weights.
    g_fast = torch.autograd.grad(fast.square().sum(), [x, conv.att.weight, conv.lin.weight])
    g_gen = torch.autograd.grad(conv(x, adj.edge_index, w_flat).square().sum(), [x, conv.att.weight, conv.lin.weight])
    for a, b in zip(g_fast, g_gen):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_unsupported_aggregation_falls_back_to_general_path():
    torch.manual_seed(0)
    B, n, d = 3, 4, 5
    conv = ProbeConv(d, aggr="std")
    adj = DenseAdj.complete(B, n)
    x = torch.randn(B * n, d)
    torch.testing.assert_close(conv(x, adj), conv(x, adj.edge_index))


def test_layer_runs_on_an_arbitrary_graph():
    torch.manual_seed(0)
    x = torch.randn(7, 4)
    edge_index = torch.tensor([[0, 1, 2, 3, 4, 5, 6, 2], [1, 2, 0, 0, 6, 6, 5, 5]])
    out = ProbeConv(4)(x, edge_index)
    assert out.shape == (7, 4)
    # Node 3 and 4 receive nothing: a sum over no messages is zero.
    assert torch.all(out[[3, 4]] == 0)


@pytest.mark.parametrize("self_loops", [True, False])
def test_complete_edge_index_lists_every_pair_once_in_flat_order(self_loops):
    B, n = 3, 4
    adj = DenseAdj.complete(B, n, self_loops=self_loops)
    src, dst = adj.edge_index
    k = n if self_loops else n - 1
    assert adj.num_edges == B * n * k == src.numel()
    pairs = {(int(s), int(t)) for s, t in zip(src, dst)}
    expected = {(b * n + j, b * n + i) for b in range(B) for i in range(n) for j in range(n) if self_loops or i != j}
    assert pairs == expected and len(pairs) == src.numel()
    # Flat order: edge (b, i, s) targets node b*n+i.
    assert torch.equal(adj.edges(dst).reshape(B * n, k)[:, 0], torch.arange(B * n))


def test_topk_adjacency_keeps_exactly_k_and_matches_edge_index():
    torch.manual_seed(0)
    B, n, k = 4, 5, 2
    scores = torch.zeros(B, n, n)  # all ties: still exactly k per node
    adj, kept = DenseAdj.from_scores(scores, k)
    assert adj.index.shape == (B, n, k) and kept.shape == (B, n, k)
    src, dst = adj.edge_index
    assert torch.equal(torch.bincount(dst, minlength=B * n), torch.full((B * n,), k))
    assert torch.equal(adj.edges(src) % n, adj.index)


def test_dense_and_flat_views_share_memory():
    x = torch.randn(6, 4, 3)
    flat = to_flat(x)
    assert flat.shape == (24, 3) and flat.data_ptr() == x.data_ptr()
    back = to_dense(flat, 4)
    assert back.shape == (6, 4, 3) and back.data_ptr() == x.data_ptr()


def test_field_graph_is_a_pyg_batch_that_splits_back():
    B, n, d = 3, 4, 2
    x = torch.randn(B, n, d)
    g = field_graph(B, n, x=x, y=torch.tensor([0.0, 1.0, 1.0]), self_loops=False)
    assert g.num_graphs == B and g.x.data_ptr() == x.data_ptr()
    assert torch.equal(g.field, torch.arange(n).repeat(B))
    graphs = g.to_data_list()
    assert len(graphs) == B
    for b, data in enumerate(graphs):
        assert torch.equal(data.x, x[b])
        assert data.edge_index.shape == (2, n * (n - 1))
        assert int(data.edge_index.max()) == n - 1
        assert float(data.y) == float(g.y[b])
    # The structure of a (B, n) batch is built once and reused.
    g2 = field_graph(B, n, x=torch.randn(B, n, d), self_loops=False)
    assert g2.edge_index.data_ptr() == g.edge_index.data_ptr()


@pytest.mark.parametrize("n", [2, 3, 7])
@pytest.mark.parametrize("self_loops", [True, False])
def test_dense_adjacency_of_the_complete_graph_equals_the_scatter_of_its_edges(n, self_loops):
    # The complete graph builds its (B, n, n) matrix by padding or viewing the edges; a scatter of every edge
    # into place at its (target, source) entry is the reference.
    torch.manual_seed(n)
    B = 3
    adj = DenseAdj.complete(B, n, self_loops=self_loops)
    w = torch.randn(adj.num_edges)
    src, dst = adj.edge_index
    ref = torch.zeros(B * n, B * n).index_put_((dst, src), w, accumulate=True)
    ref = torch.stack([ref[b * n:(b + 1) * n, b * n:(b + 1) * n] for b in range(B)])
    torch.testing.assert_close(adj.dense_adjacency(w), ref, rtol=0, atol=0)
    torch.testing.assert_close(adj.dense_adjacency(adj.edges(w)), ref, rtol=0, atol=0)
    torch.testing.assert_close(adj.dense_adjacency(), (ref != 0).float(), rtol=0, atol=0)


def test_a_remembered_dense_matrix_is_reused_only_for_the_same_unmodified_edges():
    B, n = 2, 4
    adj = DenseAdj.complete(B, n, self_loops=False)
    w = torch.rand(adj.num_edges)
    dense = adj.dense_adjacency(w)
    marked = dense.clone()
    adj.remember_dense(w, marked)
    assert adj.dense_adjacency(w) is marked                 # the same tensor
    assert adj.dense_adjacency(adj.edges(w)) is marked      # a (B, n, k) view of it
    other = w.clone()
    assert adj.dense_adjacency(other) is not marked         # equal values, another tensor: rebuilt
    torch.testing.assert_close(adj.dense_adjacency(other), dense)
    w.mul_(2)                                               # modified in place: rebuilt from the new values
    torch.testing.assert_close(adj.dense_adjacency(w), 2 * dense)
    with pytest.raises(ValueError, match="shape"):
        adj.remember_dense(w, dense[:, :2])


def test_detached_edges_get_the_remembered_matrix_detached():
    adj = DenseAdj.complete(2, 3, self_loops=False)
    w = torch.rand(adj.num_edges, requires_grad=True)
    adj.remember_dense(w, adj.dense_adjacency(w))
    assert adj.dense_adjacency(w).requires_grad
    assert not adj.dense_adjacency(w.detach()).requires_grad
