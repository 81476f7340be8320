"""GraphFM's layers against plain dense computations of the paper's equations, on both paths."""
import pytest
import torch
import torch.nn.functional as F

from fgraph.graph import DenseAdj
from fgraph.nn import EdgeScorer, FieldReadout, InteractionAttention, TopKEdges

B, N, D = 4, 6, 8


def scores_dense(scorer, x):
    """Eq. 7 on (B, n, n) pairs."""
    inter = x.unsqueeze(2) * x.unsqueeze(1)
    return torch.sigmoid(scorer.lin2(torch.relu(scorer.lin1(inter)))).squeeze(-1)


def attention_dense(conv, x, adj_index, weight=None, mode="message"):
    """Eq. 10-14 on a k-regular neighbourhood (B, n, k)."""
    Bx, n, _ = x.shape
    idx = adj_index.expand(Bx, -1, -1)
    xj = torch.stack([x[b, idx[b]] for b in range(Bx)])
    inter = x.unsqueeze(2) * xj
    src = inter if conv.interaction else xj
    c = F.leaky_relu(inter @ conv.att.weight.T, conv.negative_slope)          # (B, n, k, H)
    if weight is not None and mode == "logit":
        c = c * weight.unsqueeze(-1)
    alpha = torch.softmax(c, dim=2)
    if weight is not None and mode == "message":
        alpha = alpha * weight.unsqueeze(-1)
    H, Dout = conv.heads, conv.out_channels
    vals = (src @ conv.lin.weight.T).view(Bx, n, -1, H, Dout)
    out = (alpha.unsqueeze(-1) * vals).sum(2)                                 # (B, n, H, D)
    out = out.reshape(Bx, n, H * Dout) if conv.concat else out.mean(2)
    return torch.relu(out).reshape(Bx * n, -1)


@pytest.fixture
def x():
    torch.manual_seed(0)
    return torch.randn(B, N, D)


def test_edge_scorer_matches_eq7_on_both_paths_and_is_symmetric(x):
    scorer = EdgeScorer(D, 16)
    adj = DenseAdj.complete(B, N)
    flat = x.reshape(B * N, D)
    ref = scores_dense(scorer, x)
    fast = adj.edges(scorer(flat, adj))
    general = adj.edges(scorer(flat, adj.edge_index))
    torch.testing.assert_close(fast, ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(general, ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(fast, fast.transpose(1, 2))
    assert bool(((fast > 0) & (fast < 1)).all())


@pytest.mark.parametrize("self_loops", [True, False])
def test_edge_scorer_scores_each_pair_once_with_the_same_values_and_gradients(x, self_loops):
    """On a complete field graph the scorer runs its MLP on the n(n+1)/2 (or n(n-1)/2) unordered pairs only; the
    edges, the values and the gradients (a pair's gradient is the sum over its two edges) match Eq. 7 on every
    ordered edge."""
    scorer = EdgeScorer(D, 16)
    adj = DenseAdj.complete(B, N, self_loops=self_loops)
    flat = x.reshape(B * N, D).requires_grad_()
    calls = []
    scorer.lin1.register_forward_hook(lambda mod, inp, out: calls.append(inp[0].shape))
    fast = scorer(flat, adj)
    assert calls == [(B, N * (N + 1) // 2 if self_loops else N * (N - 1) // 2, D)]
    ref = scores_dense(scorer, x)
    if not self_loops:
        ref = ref[:, ~torch.eye(N, dtype=torch.bool)].view(B, N, N - 1)
    torch.testing.assert_close(adj.edges(fast), ref, atol=1e-6, rtol=1e-5)
    weight = torch.randn(fast.shape)                       # a loss that weighs the two edges of a pair apart
    grad_fast = torch.autograd.grad((fast * weight).sum(), [flat, scorer.lin1.weight])
    full = EdgeScorer(D, 16, symmetric=False)
    full.load_state_dict(scorer.state_dict())
    slow = full(flat, adj)
    assert slow.shape == fast.shape
    grad_slow = torch.autograd.grad((slow * weight).sum(), [flat, full.lin1.weight])
    torch.testing.assert_close(fast, slow, atol=1e-6, rtol=1e-5)
    for a, b in zip(grad_fast, grad_slow):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    assert "symmetric=False" in repr(full) and "symmetric" not in repr(scorer)


@pytest.mark.parametrize("m", [1, 3, N])
def test_topk_keeps_exactly_m_per_node_on_both_paths(x, m):
    scorer = EdgeScorer(D)
    adj = DenseAdj.complete(B, N)
    flat = x.reshape(B * N, D)
    scores = scorer(flat, adj).detach()
    kept_adj, w = TopKEdges(m)(scores, adj)
    assert kept_adj.k == m and w.shape == (B * N * m,)
    ei, wg = TopKEdges(m)(scores, adj.edge_index)
    assert torch.equal(torch.bincount(ei[1], minlength=B * N), torch.full((B * N,), m))
    # Same kept edges and weights on both paths.
    fast_edges = {(int(s), int(t), round(float(v), 6)) for (s, t), v in zip(kept_adj.edge_index.T, w)}
    gen_edges = {(int(s), int(t), round(float(v), 6)) for (s, t), v in zip(ei.T, wg)}
    assert fast_edges == gen_edges
    # The kept ones are the m largest of each row.
    dense = adj.edges(scores)
    thresh = dense.topk(m, dim=-1).values[..., -1:]
    assert bool((kept_adj.edges(w) >= thresh - 1e-7).all())


def test_topk_with_ties_still_keeps_exactly_m():
    adj = DenseAdj.complete(2, 5)
    ties = torch.full((adj.num_edges,), 0.5)
    kept, w = TopKEdges(2)(ties, adj)
    assert kept.index.shape == (2, 5, 2)
    ei, _ = TopKEdges(2)(ties, adj.edge_index)
    assert torch.equal(torch.bincount(ei[1], minlength=10), torch.full((10,), 2))


def test_soft_topk_keeps_the_graph_and_zeroes_dropped_weights(x):
    adj = DenseAdj.complete(B, N)
    scores = torch.rand(adj.num_edges)
    same, w = TopKEdges(2, mode="soft")(scores, adj)
    assert same is adj
    w = adj.edges(w)
    assert torch.equal((w > 0).sum(-1), torch.full((B, N), 2))
    ei, wg = TopKEdges(2, mode="soft")(scores, adj.edge_index)
    torch.testing.assert_close(wg, adj.flatten_edges(w))


def test_gradients_reach_the_scorer_through_kept_edges(x):
    scorer = EdgeScorer(D)
    conv = InteractionAttention(D, D, heads=2)
    adj = DenseAdj.complete(B, N)
    flat = x.reshape(B * N, D)
    kept, w = TopKEdges(2)(scorer(flat, adj), adj)
    conv(flat, kept, w).sum().backward()
    assert scorer.lin1.weight.grad is not None and scorer.lin1.weight.grad.abs().sum() > 0
    assert scorer.lin2.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("concat", [True, False])
@pytest.mark.parametrize("mode", ["message", "logit"])
@pytest.mark.parametrize("interaction", [True, False])
def test_interaction_attention_matches_eq10_14_on_both_paths(x, concat, mode, interaction):
    torch.manual_seed(1)
    conv = InteractionAttention(D, 5, heads=3, concat=concat, edge_weight_mode=mode, interaction=interaction)
    adj_full = DenseAdj.complete(B, N)
    flat = x.reshape(B * N, D)
    scores = torch.rand(adj_full.num_edges)
    for adj, w in [(adj_full, None), (adj_full, scores), TopKEdges(3)(scores, adj_full)]:
        w_dense = None if w is None else adj.edges(w)
        ref = attention_dense(conv, x, adj.local_index(), w_dense, mode)
        torch.testing.assert_close(conv(flat, adj, w), ref, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(conv(flat, adj.edge_index, w), ref, atol=1e-5, rtol=1e-5)


def test_attention_weights_sum_to_one_per_node_and_head(x):
    conv = InteractionAttention(D, 4, heads=2)
    adj = DenseAdj.complete(B, N)
    _, (_, alpha) = conv(x.reshape(B * N, D), adj, return_attention_weights=True)
    assert alpha.shape == (adj.num_edges, 2)
    torch.testing.assert_close(adj.edges(alpha).sum(2), torch.ones(B, N, 2))


def test_permuting_fields_permutes_the_outputs(x):
    torch.manual_seed(2)
    scorer, conv = EdgeScorer(D), InteractionAttention(D, D, heads=2)
    perm = torch.randperm(N)

    def layer(inp):
        adj = DenseAdj.complete(B, N)
        flat = inp.reshape(B * N, D)
        kept, w = TopKEdges(3)(scorer(flat, adj), adj)
        return conv(flat, kept, w).view(B, N, -1)

    torch.testing.assert_close(layer(x[:, perm]), layer(x)[:, perm], atol=1e-5, rtol=1e-5)


def test_layers_run_on_an_arbitrary_graph():
    torch.manual_seed(0)
    x = torch.randn(9, D)
    edge_index = torch.randint(0, 9, (2, 30))
    scorer, conv = EdgeScorer(D), InteractionAttention(D, 4, heads=2)
    p = scorer(x, edge_index)
    assert p.shape == (30,)
    kept, w = TopKEdges(2)(p, edge_index, num_nodes=9)
    assert int(torch.bincount(kept[1], minlength=9).max()) <= 2
    out = conv(x, kept, w)
    assert out.shape == (9, 8) and torch.isfinite(out).all()


def test_readout_forms_match_their_equations():
    torch.manual_seed(0)
    states = [torch.randn(B, N, 3), torch.randn(B, N, 5)]
    mean = FieldReadout(N, [3, 5], "mean")
    lin = mean.heads[0].proj
    torch.testing.assert_close(mean(states), lin(torch.cat(states, -1).mean(1)).squeeze(-1))

    flat = FieldReadout(N, [3, 5], "flatten", per_layer=True)
    logits = flat.layer_logits(states)
    assert logits.shape == (B, 2)
    for k, h in enumerate(states):
        torch.testing.assert_close(logits[:, k], flat.heads[k].proj(h.reshape(B, -1)).squeeze(-1))
    y = torch.randint(0, 2, (B,)).float()
    bce = F.binary_cross_entropy_with_logits
    expected = (bce(logits[:, 0], y) + bce(logits[:, 1], y)) / 2
    torch.testing.assert_close(flat.loss(states, y, bce), expected)

    att = FieldReadout(N, [3, 5], "attention", layers=[1])
    head = att.heads[0]
    h = states[1]
    ref = (torch.sigmoid(head.gate(h)).squeeze(-1) * head.score(h).squeeze(-1)).sum(1) + head.bias
    torch.testing.assert_close(att(states), ref)

    flat_gate = FieldReadout(N, [3, 5], "attention", layers=[1], gate="flat")
    head = flat_gate.heads[0]
    weight = torch.sigmoid(h.reshape(B, -1) @ head.gate.weight.T + head.gate.bias)          # (B, n)
    ref = (weight * head.score(h).squeeze(-1)).sum(1) + head.bias
    torch.testing.assert_close(flat_gate(states), ref)
    # A field's weight now depends on the other fields' states; with the per-node gate it does not.
    moved = [states[0], h.clone()]
    moved[1][:, 1] += 1.0
    w_node = lambda r, hh: torch.sigmoid(r.heads[0].gate(hh)).squeeze(-1)[:, 0]
    w_flat = lambda r, hh: torch.sigmoid(r.heads[0].gate(hh.reshape(B, -1)))[:, 0]
    torch.testing.assert_close(w_node(att, h), w_node(att, moved[1]))
    assert not torch.allclose(w_flat(flat_gate, h), w_flat(flat_gate, moved[1]))
    with pytest.raises(ValueError, match="gate must be one of"):
        FieldReadout(N, [3], "attention", gate="global")


def test_dense_adj_distinct_sources_and_mask():
    from fgraph.graph import DenseAdj
    from fgraph.nn import TopKEdges
    complete = DenseAdj.complete(2, 4)
    assert complete.distinct and complete.mask().all()
    no_loops = DenseAdj.complete(2, 4, self_loops=False)
    assert no_loops.distinct and torch.equal(no_loops.mask()[0], ~torch.eye(4, dtype=torch.bool))
    scores = torch.rand(complete.num_edges, generator=torch.Generator().manual_seed(0))
    kept, _ = TopKEdges(2)(scores, complete)
    assert kept.distinct and kept[1].distinct and kept.to("cpu").distinct
    mask = kept.mask()
    assert mask.shape == (2, 4, 4) and mask.sum(-1).eq(2).all()
    for b, i, s in [(0, 1, 0), (1, 3, 1)]:
        assert mask[b, i, kept.index[b, i, s]]
    assert not DenseAdj(2, 4, kept.index).distinct          # a user's index makes no promise
    assert not TopKEdges(1)(torch.rand(16), DenseAdj(2, 4, kept.index))[0].distinct
    assert DenseAdj.from_scores(torch.rand(2, 4, 4), 2)[0].distinct
