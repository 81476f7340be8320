"""InteractionAttention's projection after aggregation: W_h(e_i * sum_j a_ij e_j) against the per-message form
sum_j a_ij W_h(e_i * e_j), on the dense fast path and on PyG's general edge_index path, forward and gradients."""
import pytest
import torch
import torch.nn.functional as F

from fgraph.graph import DenseAdj
from fgraph.nn import InteractionAttention, TopKEdges

B, N_FIELDS, D_IN, D_OUT = 3, 5, 4, 3
TOL = dict(atol=1e-5, rtol=1e-5)


def hand(conv: InteractionAttention, x: torch.Tensor, index: torch.Tensor, w: torch.Tensor | None):
    """GraphFM Eq. 10-14 written out on (B, n, k, d) tensors, one W product per message."""
    Bs, n, d = x.shape
    k = index.size(-1)
    H, Do = conv.heads, conv.out_channels
    xj = torch.gather(x.unsqueeze(1).expand(Bs, n, n, d), 2, index.expand(Bs, n, k).unsqueeze(-1).expand(Bs, n, k, d))
    inter = x.unsqueeze(2) * xj                                             # (B, n, k, d)
    c = F.leaky_relu(torch.einsum("bikd,hd->bikh", inter, conv.att.weight), conv.negative_slope)
    if w is not None and conv.edge_weight_mode == "logit":
        c = c * w.unsqueeze(-1)
    alpha = torch.softmax(c, dim=2)
    if w is not None and conv.edge_weight_mode == "message":
        alpha = alpha * w.unsqueeze(-1)
    source = inter if conv.interaction else xj
    v = torch.einsum("bikd,od->biko", source, conv.lin.weight).view(Bs, n, k, H, Do)
    out = torch.einsum("bikh,bikhc->bihc", alpha, v)
    out = out.reshape(Bs, n, H * Do) if conv.concat else out.mean(2)
    return torch.relu(out).reshape(Bs * n, -1)


def graph(topk, mode, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B * N_FIELDS, D_IN, generator=g)
    adj = DenseAdj.complete(B, N_FIELDS)
    if topk is None:
        return x, adj, None, adj.local_index().expand(B, N_FIELDS, N_FIELDS)
    scores = torch.rand(adj.num_edges, generator=g)
    kept, w = TopKEdges(topk, mode)(scores, adj)
    index = kept.local_index().expand(B, N_FIELDS, kept.k)
    return x, kept, w, index


def run(conv, x, adj, w, general: bool):
    x = x.clone().requires_grad_(True)
    w = None if w is None else w.clone().requires_grad_(True)
    conv.zero_grad(set_to_none=True)
    graph_ = adj.edge_index if general else adj
    out = conv(x, graph_, w)
    (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
    grads = [x.grad, conv.att.weight.grad, conv.lin.weight.grad] + ([] if w is None else [w.grad])
    return out.detach(), grads


def run_hand(conv, x, index, adj, w):
    x = x.clone().requires_grad_(True)
    wt = None if w is None else w.clone().requires_grad_(True)
    conv.zero_grad(set_to_none=True)
    out = hand(conv, x.view(B, N_FIELDS, D_IN), index, None if wt is None else adj.edges(wt))
    (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
    grads = [x.grad, conv.att.weight.grad, conv.lin.weight.grad] + ([] if wt is None else [wt.grad])
    return out.detach(), grads


def check(a, b):
    out_a, grads_a = a
    out_b, grads_b = b
    torch.testing.assert_close(out_a, out_b, **TOL)
    assert len(grads_a) == len(grads_b)
    for ga, gb in zip(grads_a, grads_b):
        torch.testing.assert_close(ga, gb, **TOL)


@pytest.mark.parametrize("heads", [1, 2, 3])
@pytest.mark.parametrize("topk,mode", [(None, "hard"), (3, "hard"), (1, "hard"), (3, "soft")])
@pytest.mark.parametrize("interaction", [True, False])
def test_project_after_aggregation_matches_old_and_hand(heads, topk, mode, interaction):
    torch.manual_seed(heads)
    edge_mode = "logit" if mode == "soft" else "message"
    conv = InteractionAttention(D_IN, D_OUT, heads=heads, interaction=interaction, edge_weight_mode=edge_mode)
    x, adj, w, index = graph(topk, mode)
    reference = run_hand(conv, x, index, adj, w)
    results = {}
    for fused in (True, False):
        conv.project_after_aggregation = fused
        for general in (False, True):
            results[fused, general] = run(conv, x, adj, w, general)
    for key, result in results.items():
        check(result, reference)
    check(results[True, False], results[False, False])
    check(results[True, True], results[False, True])


@pytest.mark.parametrize("concat", [True, False])
@pytest.mark.parametrize("options", [dict(), dict(residual=True, layer_norm=True, activation="elu")])
def test_concat_mean_residual_layer_norm(concat, options):
    torch.manual_seed(1)
    conv = InteractionAttention(D_IN, D_OUT, heads=2, concat=concat, **options)
    x, adj, w, _ = graph(3, "hard")
    results = []
    for fused in (True, False):
        conv.project_after_aggregation = fused
        for general in (False, True):
            results.append(run(conv, x, adj, w, general))
    for result in results[1:]:
        check(result, results[0])


@pytest.mark.parametrize("topk", [None, 2])
def test_attention_weights_same_on_both_forms(topk):
    torch.manual_seed(2)
    conv = InteractionAttention(D_IN, D_OUT, heads=2)
    x, adj, w, _ = graph(topk, "hard")
    alphas = []
    for fused in (True, False):
        conv.project_after_aggregation = fused
        for graph_ in (adj, adj.edge_index):
            _, (_, alpha) = conv(x, graph_, w, return_attention_weights=True)
            alphas.append(alpha)
    assert alphas[0].shape == (adj.num_edges, 2)
    for alpha in alphas[1:]:
        torch.testing.assert_close(alpha, alphas[0], **TOL)


def test_dense_path_never_projects_messages(monkeypatch):
    """The fused form projects N rows, not E messages: the Linear never sees an edge-level tensor."""
    conv = InteractionAttention(D_IN, D_OUT, heads=2)
    x, adj, w, _ = graph(None, "hard")
    calls = []
    monkeypatch.setattr(conv.lin, "forward", lambda t: calls.append(t.shape) or F.linear(t, conv.lin.weight))
    conv(x, adj, w)
    conv(x, adj.edge_index, w)
    assert calls == []
    conv.project_after_aggregation = False
    conv(x, adj, w)
    assert len(calls) == 1


def _gathered(adj: DenseAdj) -> DenseAdj:
    """The same edges without the promise of distinct sources: the layer then gathers the k sources."""
    return DenseAdj(adj.num_graphs, adj.num_nodes, adj.local_index().expand(*adj.shape).clone(), distinct=False)


@pytest.mark.parametrize("heads", [1, 2])
@pytest.mark.parametrize("topk", [1, 3, "no self-loops"])
@pytest.mark.parametrize("edge_mode", ["message", "logit"])
def test_masked_pairs_equal_gathered_sources(heads, topk, edge_mode):
    """On a graph with distinct sources the layer scores all n x n pairs and masks the non-edges; that must be
    the function of the gathered form (and of the hand computation), values, gradients and attention weights."""
    torch.manual_seed(3)
    conv = InteractionAttention(D_IN, D_OUT, heads=heads, edge_weight_mode=edge_mode)
    if topk == "no self-loops":
        g = torch.Generator().manual_seed(4)
        x = torch.randn(B * N_FIELDS, D_IN, generator=g)
        adj = DenseAdj.complete(B, N_FIELDS, self_loops=False)
        w = torch.rand(adj.num_edges, generator=g)
        index = adj.local_index().expand(*adj.shape)
    else:
        x, adj, w, index = graph(topk, "hard", seed=5)
    assert adj.distinct and not adj.is_broadcast
    masked, gathered = run(conv, x, adj, w, False), run(conv, x, _gathered(adj), w, False)
    check(masked, gathered)
    check(masked, run_hand(conv, x, index, adj, w))
    alphas = [conv(x, a, w, return_attention_weights=True)[1][1] for a in (adj, _gathered(adj), adj.edge_index)]
    assert alphas[0].shape == (adj.num_edges, heads)
    for alpha in alphas[1:]:
        torch.testing.assert_close(alpha, alphas[0], **TOL)


def test_masked_pairs_get_no_attention_and_no_gradient():
    """The masked-out pairs: zero attention under dropout too, and no gradient reaches the dropped sources'
    features through them (a node's output depends on its kept sources only)."""
    torch.manual_seed(6)
    conv = InteractionAttention(D_IN, D_OUT, heads=2, dropout=0.5).train()
    x, adj, w, index = graph(1, "hard", seed=7)
    x = x.clone().requires_grad_(True)
    out = conv(x, adj, w).view(B, N_FIELDS, -1)
    b, i = 1, 2
    out[b, i].sum().backward()
    grad = x.grad.view(B, N_FIELDS, D_IN)
    touched = {int(j) for j in grad[b].abs().sum(-1).nonzero().flatten()}
    assert touched <= {i, int(index[b, i, 0])}
    assert grad[[0, 2]].abs().sum() == 0
