"""FieldLoader / TabularBatch, and the embedding layers against explicit per-row, per-field computations."""
import numpy as np
import pandas as pd
import pytest
import torch
from torch_geometric.data import Batch

from fgraph.data import EncodedData, FeatureSpace, FieldEncoder, FieldLoader, Schema, TabularBatch
from fgraph.data import categorical, multi_valued, numeric
from fgraph.data.space import PAD, UNKNOWN
from fgraph.models import FM
from fgraph.nn import FieldEmbedding, FieldLinear, FMInteraction
from fgraph.errors import ConfigError
from fgraph.graph import batch_graph, graph_batches

# ----------------------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------------------

# Node order: id, scaled, bag, id, bag.
SPACE = FeatureSpace(
    names=["a", "s", "m", "b", "t"],
    kinds=["id", "scaled", "bag", "id", "bag"],
    cardinalities=[6, 2, 7, 5, 4],
    sources=["a", "s", "m", "b", "t"],
    max_tokens={"m": 4, "t": 2},
)


def random_batch(space: FeatureSpace, B: int, seed: int = 0) -> TabularBatch:
    """Random ids in range, random scaled values, bags with 1..max_tokens tokens then PAD (like the encoder)."""
    g = torch.Generator().manual_seed(seed)
    n = space.num_fields
    ids = torch.stack([torch.randint(0, c, (B,), generator=g) for c in space.cardinalities], dim=1)
    values = None
    if space.scaled_positions:
        values = torch.ones(B, n)
        for k in space.scaled_positions:
            values[:, k] = torch.randn(B, generator=g)
            values[ids[:, k] == 0, k] = 1.0   # a missing value keeps multiplier 1
    bags = None
    if space.bag_positions:
        L = space.bag_length
        bags = torch.full((B, len(space.bag_positions), L), PAD, dtype=torch.long)
        for slot, k in enumerate(space.bag_positions):
            mt = space.max_tokens[space.names[k]]
            for r in range(B):
                length = int(torch.randint(1, mt + 1, (1,), generator=g))
                bags[r, slot, :length] = torch.randint(0, space.cardinalities[k], (length,), generator=g)
            ids[:, k] = bags[:, slot, 0]
    y = torch.randint(0, 2, (B,), generator=g).float()
    return TabularBatch(ids, values, bags, y, space)


def lookup_table(emb: FieldEmbedding, field: int):
    """(weight of the table holding ``field``, offset of ``field`` in it, projection matrix or None),
    worked out from the space and ``field_dims`` alone (not from the module's buffers)."""
    space = emb.space
    size = emb.field_dims.get(space.names[field], emb.dim)
    g = emb.group_sizes.index(size)
    members = [k for k in range(space.num_fields) if emb.field_dims.get(space.names[k], emb.dim) == size]
    offset = sum(space.cardinalities[k] for k in members if k < field)
    proj = None if size == emb.dim else emb.projections[g].weight
    return emb.tables[g].weight, offset, proj


def manual_embedding(emb: FieldEmbedding, batch: TabularBatch) -> torch.Tensor:
    """``e[r, f]`` by loops: table row (or mean of bag rows), projected, times the value."""
    space = emb.space
    B, n = batch.ids.shape
    out = torch.zeros(B, n, emb.dim)
    for f in range(n):
        table, offset, proj = lookup_table(emb, f)
        for r in range(B):
            if space.kinds[f] == "bag":
                slot = space.bag_positions.index(f)
                toks = [int(t) for t in batch.bags[r, slot] if int(t) != PAD]
                vec = torch.stack([table[offset + t] for t in toks]).mean(0)
            else:
                vec = table[offset + int(batch.ids[r, f])]
            if proj is not None:
                vec = vec @ proj.T
            if batch.values is not None:
                vec = vec * batch.values[r, f]
            out[r, f] = vec
    return out


def pairwise_loops(e: torch.Tensor, reduce: bool = True) -> torch.Tensor:
    B, n, d = e.shape
    out = torch.zeros(B, d, dtype=e.dtype)
    for i in range(n):
        for j in range(i + 1, n):
            out += e[:, i] * e[:, j]
    return out.sum(-1) if reduce else out


def indexed_data(N: int) -> EncodedData:
    """Row r has id r, value r, bag [r, r, PAD] and label r, so every tensor of a batch names its row."""
    space = FeatureSpace(["r", "v", "m"], ["id", "scaled", "bag"], [N, 2, N], ["r", "v", "m"], {"m": 3})
    r = torch.arange(N, dtype=torch.int32)
    ids = torch.stack([r, torch.ones(N, dtype=torch.int32), r], 1)
    values = torch.stack([torch.ones(N), r.float(), torch.ones(N)], 1)
    bags = torch.full((N, 1, 3), PAD, dtype=torch.int32)
    bags[:, 0, 0] = r
    bags[:, 0, 1] = r
    return EncodedData(ids, values, bags, r.float(), space, "y")


def epoch_rows(loader) -> list[int]:
    rows = []
    for batch in loader:
        r = batch.ids[:, 0]
        # every tensor of the batch belongs to the same rows
        assert torch.equal(batch.values[:, 1].long(), r)
        assert torch.equal(batch.bags[:, 0, 0], r) and torch.equal(batch.bags[:, 0, 1], r)
        assert torch.equal(batch.y.long(), r)
        rows += r.tolist()
    return rows


# ----------------------------------------------------------------------------------------------------------
# FieldLoader
# ----------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("N,bs", [(23, 5), (20, 5), (7, 10), (1, 1)])
def test_loader_in_order_yields_every_row_once(N, bs):
    loader = FieldLoader(indexed_data(N), batch_size=bs)
    sizes = [b.num_rows for b in loader]
    assert sum(sizes) == N and len(sizes) == len(loader) == -(-N // bs)
    assert all(s == bs for s in sizes[:-1]) and 1 <= sizes[-1] <= bs
    assert epoch_rows(loader) == list(range(N))
    assert epoch_rows(loader) == list(range(N))  # and again next epoch


def test_loader_batches_are_int64_and_keep_the_space():
    data = indexed_data(9)
    batch = next(iter(FieldLoader(data, batch_size=4)))
    assert isinstance(batch, TabularBatch)
    assert batch.ids.dtype == torch.long and batch.bags.dtype == torch.long
    assert batch.values.dtype == torch.float32 and batch.space is data.space
    assert batch.num_fields == 3


@pytest.mark.parametrize("N,bs", [(23, 5), (50, 7)])
def test_loader_shuffle_is_a_permutation_each_epoch(N, bs):
    loader = FieldLoader(indexed_data(N), batch_size=bs, shuffle=True, seed=3)
    e1, e2 = epoch_rows(loader), epoch_rows(loader)
    assert sorted(e1) == sorted(e2) == list(range(N))
    assert e1 != list(range(N))
    assert e1 != e2  # a new permutation every epoch


def test_loader_drop_last():
    N, bs = 23, 5
    loader = FieldLoader(indexed_data(N), batch_size=bs, drop_last=True)
    sizes = [b.num_rows for b in loader]
    assert sizes == [bs] * (N // bs) and len(loader) == N // bs
    assert epoch_rows(loader) == list(range(N // bs * bs))
    shuffled = FieldLoader(indexed_data(N), batch_size=bs, drop_last=True, shuffle=True, seed=1)
    rows = epoch_rows(shuffled)
    assert len(rows) == len(set(rows)) == N // bs * bs
    # drop_last on an exact multiple drops nothing
    assert len(epoch_rows(FieldLoader(indexed_data(20), batch_size=5, drop_last=True))) == 20


def test_loader_seed_controls_the_order():
    data = indexed_data(40)
    a = FieldLoader(data, batch_size=8, shuffle=True, seed=11)
    b = FieldLoader(data, batch_size=8, shuffle=True, seed=11)
    c = FieldLoader(data, batch_size=8, shuffle=True, seed=12)
    a1, a2 = epoch_rows(a), epoch_rows(a)
    assert [a1, a2] == [epoch_rows(b), epoch_rows(b)]
    assert epoch_rows(c) != a1


def test_loader_state_dict_reproduces_the_next_epoch():
    data = indexed_data(40)
    loader = FieldLoader(data, batch_size=8, shuffle=True, seed=5)
    epoch_rows(loader)
    state = loader.state_dict()
    expected = epoch_rows(loader)
    other = FieldLoader(data, batch_size=8, shuffle=True, seed=999)
    other.load_state_dict(state)
    assert epoch_rows(other) == expected
    # the saved state is a copy: continuing the first loader does not change it
    again = FieldLoader(data, batch_size=8, shuffle=True, seed=0)
    again.load_state_dict(state)
    assert epoch_rows(again) == expected


def test_loader_rejects_bad_arguments():
    data = indexed_data(5)
    with pytest.raises(ValueError, match="batch_size"):
        FieldLoader(data, batch_size=0)
    with pytest.raises(ValueError, match="empty"):
        FieldLoader(data.take(torch.tensor([], dtype=torch.long)), batch_size=2)
    with pytest.raises(TypeError, match="EncodedData"):
        FieldLoader({"ids": data.ids}, batch_size=2)


def test_graph_batches_yields_pyg_batches():
    graphs = list(graph_batches(FieldLoader(indexed_data(7), batch_size=3), self_loops=False))
    assert [g.num_graphs for g in graphs] == [3, 3, 1]
    assert all(isinstance(g, Batch) for g in graphs)
    assert torch.cat([g.ids.view(-1, 3)[:, 0] for g in graphs]).tolist() == list(range(7))


def test_the_old_graph_options_say_where_they_went():
    with pytest.raises(ConfigError, match="graph_batches"):
        FieldLoader(indexed_data(7), batch_size=3, as_graph=True)
    with pytest.raises(ConfigError, match="batch_graph"):
        next(iter(FieldLoader(indexed_data(7), batch_size=3))).to_graph()


# ----------------------------------------------------------------------------------------------------------
# fgraph.graph.batch_graph
# ----------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("self_loops", [True, False])
def test_to_graph_structure_and_node_attributes(self_loops):
    B, n = 3, SPACE.num_fields
    batch = random_batch(SPACE, B, seed=1)
    g = batch_graph(batch, self_loops=self_loops)
    assert isinstance(g, Batch)
    assert g.num_graphs == B and g.num_nodes == B * n
    per_graph = n * n if self_loops else n * (n - 1)
    assert g.edge_index.size(1) == B * per_graph
    src, dst = g.edge_index
    assert torch.equal(g.batch[src], g.batch[dst])           # no edge between instances
    assert torch.equal(g.ids, batch.ids.reshape(-1))
    assert torch.equal(g.value, batch.values.reshape(-1))
    assert torch.equal(g.y, batch.y)
    assert torch.equal(g.field, torch.arange(n).repeat(B))
    # bag nodes carry their bag, others a bag holding just their id
    bag = g.bag.view(B, n, -1)
    for slot, k in enumerate(SPACE.bag_positions):
        assert torch.equal(bag[:, k], batch.bags[:, slot])
    for k in (0, 1, 3):
        assert torch.equal(bag[:, k, 0], batch.ids[:, k]) and (bag[:, k, 1:] == PAD).all()

    datas = g.to_data_list()
    assert len(datas) == B
    expected_edges = {(i, j) for i in range(n) for j in range(n) if self_loops or i != j}
    for b, d in enumerate(datas):
        assert d.num_nodes == n
        assert set(map(tuple, d.edge_index.t().tolist())) == expected_edges
        assert d.edge_index.size(1) == per_graph
        assert torch.equal(d.ids, batch.ids[b])
        assert torch.equal(d.field, torch.arange(n))
        assert float(d.y) == float(batch.y[b])


def test_to_graph_without_values_or_bags():
    space = FeatureSpace(["a", "b"], ["id", "id"], [4, 5], ["a", "b"])
    batch = TabularBatch(torch.tensor([[3, 4], [0, 1]]), None, None, None, space)
    g = batch_graph(batch)
    assert g.num_graphs == 2 and g.edge_index.size(1) == 2 * 4
    assert torch.equal(g.ids, torch.tensor([3, 4, 0, 1]))
    assert len(g.to_data_list()) == 2


# ----------------------------------------------------------------------------------------------------------
# FieldEmbedding
# ----------------------------------------------------------------------------------------------------------

def test_embedding_equals_manual_lookup_times_values():
    torch.manual_seed(0)
    emb = FieldEmbedding(SPACE, 6)
    batch = random_batch(SPACE, 8, seed=2)
    out = emb(batch)
    assert out.shape == (8, SPACE.num_fields, 6)
    torch.testing.assert_close(out, manual_embedding(emb, batch), atol=1e-6, rtol=1e-5)


def test_embedding_bag_is_the_mean_of_its_non_pad_tokens():
    torch.manual_seed(1)
    emb = FieldEmbedding(SPACE, 4, init_std=1.0)
    batch = random_batch(SPACE, 2, seed=3)
    m, offset = SPACE.index("m"), SPACE.offsets[SPACE.index("m")]
    batch.bags[0, 0] = torch.tensor([3, 5, PAD, PAD])
    batch.bags[1, 0] = torch.tensor([6, 6, 4, 2])
    out = emb(batch)
    W = emb.weight
    torch.testing.assert_close(out[0, m], (W[offset + 3] + W[offset + 5]) / 2)
    torch.testing.assert_close(out[1, m], (2 * W[offset + 6] + W[offset + 4] + W[offset + 2]) / 4)
    # The id column of a bag node is not what the embedding reads.
    batch.ids[:, m] = 0
    torch.testing.assert_close(emb(batch), out)


@pytest.mark.parametrize("init_std", [None, 0.5])
def test_embedding_unknown_rows_are_zero_at_init(init_std):
    emb = FieldEmbedding(SPACE, 5, init_std=init_std)
    W = emb.weight
    for k, (kind, off) in enumerate(zip(SPACE.kinds, SPACE.offsets)):
        if kind in ("id", "bag"):
            assert torch.count_nonzero(W[off + UNKNOWN]) == 0, SPACE.names[k]
            assert torch.count_nonzero(W[off + UNKNOWN + 1]) > 0, SPACE.names[k]
    # Every other row is initialised (not zero).
    zero_rows = (W == 0).all(1).nonzero().flatten().tolist()
    unknown_rows = [off + UNKNOWN for kind, off in zip(SPACE.kinds, SPACE.offsets) if kind != "scaled"]
    assert zero_rows == unknown_rows
    # re-initialising keeps the property
    with torch.no_grad():
        W.fill_(1.0)
    emb.reset_parameters()
    assert all(torch.count_nonzero(emb.weight[r]) == 0 for r in unknown_rows)


def test_embedding_scaled_field_present_vector_is_not_zeroed():
    """Id 1 of a scaled numeric field is the *present* vector, used by every row that has a value."""
    emb = FieldEmbedding(SPACE, 5)
    s = SPACE.index("s")
    assert torch.count_nonzero(emb.weight[SPACE.offsets[s] + 1]) > 0
    batch = random_batch(SPACE, 6, seed=4)
    batch.ids[:, s] = 1
    batch.values[:, s] = 2.0
    assert (emb(batch)[:, s].abs().sum(-1) > 0).all()


def test_embedding_mixed_dims_project_to_model_dim():
    torch.manual_seed(2)
    emb = FieldEmbedding(SPACE, 8, field_dims={"a": 4})
    batch = random_batch(SPACE, 5, seed=5)
    out = emb(batch)
    assert out.shape == (5, SPACE.num_fields, 8)
    a = SPACE.index("a")
    g = emb.group_sizes.index(4)
    assert emb.tables[g].weight.shape == (SPACE.cardinalities[a], 4)
    proj = emb.projections[g]
    assert isinstance(proj, torch.nn.Linear) and proj.weight.shape == (8, 4) and proj.bias is None
    ref_a = emb.tables[g].weight[batch.ids[:, a]] @ proj.weight.T
    torch.testing.assert_close(out[:, a], ref_a)
    torch.testing.assert_close(out, manual_embedding(emb, batch), atol=1e-6, rtol=1e-5)


def test_embedding_mixed_dims_with_bag_and_scaled_fields_in_small_groups():
    torch.manual_seed(3)
    dims = {"t": 3, "s": 3, "b": 2}
    emb = FieldEmbedding(SPACE, 5, field_dims=dims)
    assert emb.group_sizes == [5, 2, 3]
    batch = random_batch(SPACE, 6, seed=6)
    out = emb(batch)
    assert out.shape == (6, SPACE.num_fields, 5)
    torch.testing.assert_close(out, manual_embedding(emb, batch), atol=1e-6, rtol=1e-5)
    # unknown rows of the small tables are zero too
    t = SPACE.index("t")
    table, offset, _ = lookup_table(emb, t)
    assert torch.count_nonzero(table[offset + UNKNOWN]) == 0


def test_embedding_rejects_unknown_field_dims_and_bad_dim():
    with pytest.raises(KeyError, match="nope"):
        FieldEmbedding(SPACE, 4, field_dims={"nope": 2})
    with pytest.raises(ValueError, match="dim"):
        FieldEmbedding(SPACE, 0)


def test_embedding_on_an_encoded_frame():
    """End to end: encoder -> loader -> embedding agrees with the manual lookup."""
    schema = Schema((categorical("c"), numeric("x"), multi_valued("g", max_tokens=3),
                     numeric("z", "bucket", buckets=(2, 4))), label="y")
    frame = pd.DataFrame({"c": ["a", "b", None, "a", "c"], "x": [1.0, np.nan, 3.0, 4.0, 0.5],
                          "g": ["p|q", "", ["q"], "q|r|s|t", np.nan], "z": [0.0, 1.0, 2.0, np.nan, 9.0],
                          "y": [1, 0, 1, 0, 1]})
    data = FieldEncoder(schema).fit(frame).transform(frame)
    torch.manual_seed(4)
    emb = FieldEmbedding(data.space, 3)
    batch = next(iter(FieldLoader(data, batch_size=5)))
    torch.testing.assert_close(emb(batch), manual_embedding(emb, batch), atol=1e-6, rtol=1e-5)


# ----------------------------------------------------------------------------------------------------------
# FieldLinear, FMInteraction, FM
# ----------------------------------------------------------------------------------------------------------

def test_field_linear_is_bias_plus_weighted_sum():
    lin = FieldLinear(SPACE)
    batch = random_batch(SPACE, 7, seed=7)
    assert torch.count_nonzero(lin(batch)) == 0  # starts at zero
    with torch.no_grad():
        lin.weights.weight.normal_()
        lin.bias.fill_(0.3)
    manual = manual_embedding(lin.weights, batch)[..., 0].sum(1) + 0.3
    out = lin(batch)
    assert out.shape == (7,)
    torch.testing.assert_close(out, manual, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("B,n,d", [(5, 6, 4), (1, 2, 1), (3, 9, 7)])
def test_fm_interaction_equals_explicit_pairwise_sum(B, n, d):
    torch.manual_seed(B * 100 + n)
    e = torch.randn(B, n, d)
    torch.testing.assert_close(FMInteraction()(e), pairwise_loops(e), atol=1e-5, rtol=1e-5)
    per_dim = FMInteraction(reduce=False)(e)
    assert per_dim.shape == (B, d)
    torch.testing.assert_close(per_dim, pairwise_loops(e, reduce=False), atol=1e-5, rtol=1e-5)


def test_fm_interaction_single_field_is_zero():
    assert torch.allclose(FMInteraction()(torch.randn(4, 1, 3)), torch.zeros(4), atol=1e-6)


def test_fm_forward_is_bias_plus_linear_plus_pairwise():
    torch.manual_seed(5)
    model = FM(SPACE, embed_dim=4)
    with torch.no_grad():
        model.linear.weights.weight.normal_()
        model.linear.bias.fill_(-0.7)
    batch = random_batch(SPACE, 6, seed=8)
    linear = -0.7 + manual_embedding(model.linear.weights, batch)[..., 0].sum(1)
    pair = pairwise_loops(manual_embedding(model.embedding, batch))
    out = model(batch)
    assert out.shape == (6,)
    torch.testing.assert_close(out, linear + pair, atol=1e-5, rtol=1e-5)


def test_fm_with_field_dims_matches_manual():
    torch.manual_seed(6)
    model = FM(SPACE, embed_dim=6, field_dims={"a": 3, "m": 2})
    with torch.no_grad():
        model.linear.weights.weight.normal_()
    batch = random_batch(SPACE, 4, seed=9)
    ref = model.linear.bias + manual_embedding(model.linear.weights, batch)[..., 0].sum(1) \
        + pairwise_loops(manual_embedding(model.embedding, batch))
    torch.testing.assert_close(model(batch), ref, atol=1e-5, rtol=1e-5)


def test_fm_dropout_drops_coordinates_of_the_interaction_vector_and_is_off_in_eval():
    torch.manual_seed(11)
    model = FM(SPACE, embed_dim=8, dropout=0.5)
    with torch.no_grad():
        model.linear.weights.weight.normal_()
    batch = random_batch(SPACE, 5, seed=12)
    linear = model.linear.bias + manual_embedding(model.linear.weights, batch)[..., 0].sum(1)
    per_dim = pairwise_loops(manual_embedding(model.embedding, batch), reduce=False)  # (B, d)
    model.eval()  # evaluation is Rendle's FM, unscaled
    torch.testing.assert_close(model(batch), linear + per_dim.sum(-1), atol=1e-5, rtol=1e-5)
    model.train()
    torch.manual_seed(3)
    out = model(batch)
    torch.manual_seed(3)  # the same mask, drawn by hand: keep with probability 0.5, scale kept ones by 2
    mask = torch.nn.functional.dropout(torch.ones_like(per_dim), 0.5, training=True)
    assert set(mask.unique().tolist()) <= {0.0, 2.0} and (mask == 0).any() and (mask == 2).any()
    torch.testing.assert_close(out, linear + (per_dim * mask).sum(-1), atol=1e-5, rtol=1e-5)
    # without dropout a training-mode forward is the plain FM, and the option is range-checked like any dropout
    plain = FM(SPACE, embed_dim=8)
    plain.load_state_dict(model.state_dict())
    torch.testing.assert_close(plain.train()(batch), linear + per_dim.sum(-1), atol=1e-5, rtol=1e-5)
    with pytest.raises(ConfigError, match="dropout"):
        FM(SPACE, dropout=1.0)
