"""What models learned, read through their protocols (edge records, pair weights, FIVES's adjacency) and turned
into graphs and tables by fgraph.explain; the deprecated fgraph.export alias."""
import importlib
import sys
import warnings

import networkx as nx
import numpy as np
import pandas as pd
import pytest
import torch

from fgraph.data import FieldEncoder, FieldLoader
from fgraph.errors import ConfigError
from fgraph.graph import graph_batches
from fgraph.explain import (adjacency_graphs, derive_interactions, edge_summary, fives_graphs, fives_interaction_table,
                            fives_interactions, graph_matrix, heatmap_figure, instance_graphs, interaction_graph,
                            mean_edge_weights, models_with_structure, pair_graph, plot_heatmaps, read_graph,
                            records_to_graphs, write_graphs, write_interactions_csv)
from fgraph.explain.structure import model_label
from fgraph.models import AFM, FIVES, FM, IFM, INN, DeepIFM, FiGNN, GraphFM, LogisticRegression
from fgraph.nn import LayerRecord


def _suptitle(fig) -> str:
    # Figure.get_suptitle() is matplotlib >= 3.8; the supported range starts at 3.7
    return fig.get_suptitle() if hasattr(fig, "get_suptitle") else fig._suptitle.get_text()


@pytest.fixture
def batch(planted):
    return next(iter(FieldLoader(planted[2]["test"], 6)))


@pytest.mark.parametrize("make", [lambda s: GraphFM(s, embed_dim=4, neighbours=[8, 3], dropout=0.5),
                                  lambda s: FiGNN(s, embed_dim=4, steps=2), lambda s: FIVES(s, embed_dim=4, orders=3)])
def test_edge_records_are_per_layer_tensors_in_evaluation_mode(planted, batch, make):
    _, enc, _ = planted
    torch.manual_seed(0)
    model = make(enc.space_)
    assert model.training
    records = model.edge_records(batch)
    assert model.training                                     # the mode is given back
    states, _ = model.propagate(batch)
    assert len(records) == len(states) - isinstance(model, FIVES)   # FIVES's states start with the embeddings
    for rec in records:
        assert isinstance(rec, LayerRecord) and rec.adj.num_graphs == 6 and rec.edge_attrs
        edges = rec.adj.num_graphs * rec.adj.num_nodes * rec.adj.k
        for value in rec.edge_attrs.values():
            assert not value.requires_grad and value.size(0) in (edges, rec.adj.num_nodes * rec.adj.k)
    # The same as recording in evaluation mode by hand (dropout off: two calls agree).
    model.eval()
    _, by_hand = model.propagate(batch, record=True)
    for a, b in zip(records, model.edge_records(batch)):
        assert a.edge_attrs.keys() == b.edge_attrs.keys()
        for key in a.edge_attrs:
            torch.testing.assert_close(a.edge_attrs[key], b.edge_attrs[key])
    for a, b in zip(records, by_hand):
        for key in a.edge_attrs:
            torch.testing.assert_close(a.edge_attrs[key], b.edge_attrs[key].detach())


def test_instance_graphs_and_summary_are_read_off_the_records(planted, batch):
    _, enc, encoded = planted
    model = GraphFM(enc.space_, embed_dim=4, neighbours=[8, 3])
    names = enc.space_.names
    graphs = instance_graphs(model, batch, enc)
    direct = records_to_graphs(model.edge_records(batch), names,
                               [[enc.value_of(f, i) for f, i in zip(names, row)] for row in batch.ids.tolist()])
    assert len(graphs) == 6 and all(len(g) == 2 for g in graphs)
    for got, want in zip(graphs, direct):
        for g, h in zip(got, want):
            assert nx.utils.graphs_equal(g, h)
    # Without an encoder, the nodes carry ids.
    assert instance_graphs(model, batch)[0][0].nodes["f0"]["value"] == int(batch.ids[0, 0])
    # The summary is the mean over rows of each layer's dense weights.
    loader = FieldLoader(encoded["valid"], 500)
    frames = edge_summary(model, loader)
    again = mean_edge_weights(loader, model.edge_records, names)
    assert [f.shape for f in frames] == [(8, 8)] * 2
    for a, b in zip(frames, again):
        np.testing.assert_allclose(a.values, b.values)
    rows = next(iter(FieldLoader(encoded["valid"], 300)))
    layer2 = [g[1] for g in instance_graphs(model, rows)]
    first = next(iter(model.edge_records(batch)[1].edge_attrs))
    mean_f1_f0 = np.mean([g.edges["f1", "f0"][first] if g.has_edge("f1", "f0") else 0.0 for g in layer2])
    assert edge_summary(model, [rows])[1].loc["f0", "f1"] == pytest.approx(mean_f1_f0, abs=1e-6)


@pytest.mark.parametrize("make", [lambda s: AFM(s, embed_dim=4), lambda s: IFM(s, embed_dim=4, sample_pairs=5)])
def test_pair_weights_protocol(planted, batch, make):
    _, enc, _ = planted
    torch.manual_seed(0)
    model = make(enc.space_)
    found = model.pair_weights(batch)
    assert model.training
    P = 8 * 7 // 2
    assert torch.equal(found["pairs"], model.pairs) and found["pairs"].shape == (2, P)
    assert found["weight"].shape == (6, P) and not found["weight"].requires_grad
    torch.testing.assert_close(found["weight"].sum(1), torch.ones(6))
    static = model.pair_weights()
    assert "weight" not in static and set(static) == set(found) - {"weight"}
    if isinstance(model, IFM):
        assert static["field_norm"].shape == (P,) and bool(((found["weight"] > 0).sum(1) == 5).all())
        torch.testing.assert_close(static["field_norm"], model.field_aspect(model.pairs).norm(dim=-1).detach())
    else:
        assert set(static) == {"pairs"}
    # Evaluation mode: what pooling used when the model predicts in evaluation mode.
    model.eval()
    kept, alpha = model.pair_attention(batch)
    dense = alpha if kept is None else torch.zeros(6, P).index_copy(1, kept, alpha)
    torch.testing.assert_close(found["weight"], dense.detach())


def test_fives_adjacency_protocol_and_what_explain_reads_from_it(planted):
    _, enc, _ = planted
    torch.manual_seed(0)
    model = FIVES(enc.space_, embed_dim=4, orders=4, threshold=[0.5, 0.4, 0.3])
    with torch.no_grad():
        model.adjacency.weight.normal_(0.0, 2.0)
    learned = model.adjacency_weights()
    assert learned["soft"].shape == learned["propagation"].shape == (3, 8, 8)
    assert learned["threshold"].tolist() == [0.5, 0.4, 0.3]
    assert not learned["soft"].requires_grad
    torch.testing.assert_close(learned["soft"], torch.stack(model.adjacency.soft()).detach())
    assert model.adjacency_weights(0.6)["threshold"].tolist() == [0.6] * 3
    with pytest.raises(ValueError, match="one value per order"):
        model.adjacency_weights([0.5])
    found = fives_interactions(model, 0.6)
    assert found == derive_interactions(list(learned["soft"]), enc.space_.names, [0.6] * 3)
    assert found and all(2 <= len(fields) <= 4 for fields, _ in found)
    per_order, multi = fives_graphs(model)
    by_hand = adjacency_graphs(list(learned["soft"]), enc.space_.names, [0.5, 0.4, 0.3],
                               propagation=list(learned["propagation"]))
    assert all(nx.utils.graphs_equal(a, b) for a, b in zip(per_order, by_hand[0]))
    assert nx.utils.graphs_equal(multi, by_hand[1])


def test_explain_names_the_protocol_a_model_lacks(planted, batch):
    _, enc, _ = planted
    afm, graphfm = AFM(enc.space_, embed_dim=4), GraphFM(enc.space_, embed_dim=4)
    with pytest.raises(TypeError, match=r"edge_records\(\).*AFM.*pair_graph"):
        instance_graphs(afm, batch)
    with pytest.raises(TypeError, match=r"edge_records\(\)"):
        edge_summary(afm, [batch])
    with pytest.raises(TypeError, match=r"pair_weights\(\).*GraphFM.*instance_graphs"):
        pair_graph(graphfm, batch)
    with pytest.raises(TypeError, match=r"adjacency_weights\(\).*GraphFM"):
        fives_interactions(graphfm)
    with pytest.raises(ValueError, match="got no batches"):
        pair_graph(afm, [])
    with pytest.raises(ValueError, match="got no batches"):
        edge_summary(graphfm, [])


def test_the_export_alias_warns_and_hands_out_the_explain_code():
    for name in [m for m in sys.modules if m == "fgraph.export" or m.startswith("fgraph.export.")]:
        del sys.modules[name]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        export = importlib.import_module("fgraph.export")
        from fgraph.export.cross_features import derive_interactions as old_derive
        from fgraph.export.fives_features import FIVESCrossFeatures as OldCross
    assert any(issubclass(w.category, DeprecationWarning) and "fgraph.explain" in str(w.message) for w in caught)
    from fgraph.explain.fives_features import FIVESCrossFeatures

    assert export.LayerRecord is LayerRecord and export.instance_graphs is records_to_graphs
    assert export.edge_weight_summary is mean_edge_weights
    assert old_derive is derive_interactions and OldCross is FIVESCrossFeatures


# -- interaction_graph: one call for every family ---------------------------------------------------------------
FAMILIES = {
    "graphfm": lambda s: GraphFM(s, embed_dim=4, neighbours=[8, 3], heads=2),
    "fignn": lambda s: FiGNN(s, embed_dim=4, steps=2),
    "fives": lambda s: FIVES(s, embed_dim=4, orders=3, threshold=[0.5, 0.4]),
    "afm": lambda s: AFM(s, embed_dim=4),
    "ifm": lambda s: IFM(s, embed_dim=4, sample_pairs=5),
    "inn": lambda s: INN(s, embed_dim=4, mlp_dims=(8,)),
    "deepifm": lambda s: DeepIFM(s, embed_dim=4, mlp_dims=(8,)),
}
LAYERS = {"graphfm": 2, "fignn": 2, "fives": 2, "afm": 1, "ifm": 1, "inn": 1, "deepifm": 1}


@pytest.fixture
def small(planted):
    """The first 40 test rows of the planted data set."""
    _, enc, encoded = planted
    return enc, encoded["test"].take(torch.arange(40))


def _model(name, enc):
    torch.manual_seed(0)
    model = FAMILIES[name](enc.space_)
    if name == "fives":
        with torch.no_grad():
            model.adjacency.weight.normal_(0.0, 2.0)
    return model


def _graphs_close(a, b, rel=1e-5) -> bool:
    """Same nodes, node attributes and edges; edge attributes equal up to float rounding (a row's scores come out
    of matrix products whose rounding may depend on how many rows share the batch)."""
    if a.graph != b.graph or list(a.nodes(data=True)) != list(b.nodes(data=True)) or set(a.edges) != set(b.edges):
        return False
    return all(a.edges[e].keys() == b.edges[e].keys()
               and all(b.edges[e][k] == pytest.approx(v, rel=rel, abs=1e-7) for k, v in a.edges[e].items())
               for e in a.edges)


def _record_edges(rec, b):
    """``{(source, target): {attr: value}}`` of row ``b`` of a layer record, read in the flat edge order."""
    adj = rec.adj
    n, k = adj.num_nodes, adj.k
    local = adj.local_index()
    src = local[b if local.size(0) > 1 else 0]
    out = {}
    for i in range(n):
        for s in range(k):
            attrs = {}
            for name, v in rec.edge_attrs.items():
                v = v.reshape(-1, n, k, *v.shape[1:])
                v = v[b if v.size(0) > 1 else 0, i, s]
                if v.dim() == 0:
                    attrs[name] = float(v)
                else:
                    attrs.update({f"{name}_head{h}": float(v[h]) for h in range(v.numel())})
            out[(f"f{int(src[i, s])}", f"f{i}")] = attrs
    return out


@pytest.mark.parametrize("name", list(FAMILIES))
def test_interaction_graph_takes_the_same_arguments_for_every_family(planted, small, name):
    raw, enc, _ = planted
    _, data = small
    model = _model(name, enc)
    L = LAYERS[name]
    directed = name in ("graphfm", "fignn", "fives")
    inst = interaction_graph(model, data, level="instance", encoder=enc, rows=[7, 2])
    assert len(inst) == 2 and all(len(per_row) == L for per_row in inst)
    for r, per_row in zip([7, 2], inst):
        for layer, g in enumerate(per_row):
            assert g.is_directed() == directed and not g.is_multigraph()
            assert list(g.nodes) == enc.space_.names                         # the model's field order
            assert g.graph["row"] == r and g.graph["layer"] == layer and g.graph["level"] == "instance"
            assert [g.nodes[f]["value"] for f in g.nodes] == [raw.test[f].iloc[r] for f in enc.space_.names]
    # Without an encoder the nodes carry the ids.
    plain = interaction_graph(model, data, level="instance", rows=[7])[0][0]
    assert [plain.nodes[f]["value"] for f in plain.nodes] == data.ids[7].tolist()
    # layer=k flattens: one graph per row, or one graph.
    one = interaction_graph(model, data, level="instance", layer=-1, rows=[7, 2], encoder=enc)
    assert [g.graph["layer"] for g in one] == [L - 1] * 2
    assert nx.utils.graphs_equal(one[0], inst[0][-1])
    ds = interaction_graph(model, data, level="dataset")
    assert isinstance(ds, list) and len(ds) == L
    assert all("value" not in d for g in ds for _, d in g.nodes(data=True))
    last = interaction_graph(model, data, level="dataset", layer=L - 1)
    assert isinstance(last, nx.Graph) and nx.utils.graphs_equal(last, ds[-1])
    # A TabularBatch and a loader are the same rows as the EncodedData.
    for other in (next(iter(FieldLoader(data, 40))), FieldLoader(data, 16)):
        again = interaction_graph(model, other, level="instance", encoder=enc, rows=[7, 2])
        assert all(_graphs_close(a, b) for x, y in zip(inst, again) for a, b in zip(x, y))
        mean = interaction_graph(model, other, level="dataset")
        for a, b in zip(ds, mean):
            assert set(a.edges) == set(b.edges)
            for e in a.edges:
                assert a.edges[e] == pytest.approx(b.edges[e], rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("name", ["graphfm", "fignn"])
def test_graph_model_edges_are_the_edge_records(small, name):
    enc, data = small
    model = _model(name, enc)
    batch = next(iter(FieldLoader(data, 40)))
    records = model.edge_records(batch)
    graphs = interaction_graph(model, data, level="instance", rows=[0, 9])
    for r, per_row in zip([0, 9], graphs):
        for rec, g in zip(records, per_row):
            want = _record_edges(rec, r)
            assert set(g.edges) == set(want)
            for u, v, d in g.edges(data=True):
                assert d == pytest.approx(want[u, v], rel=1e-5, abs=1e-7)
                assert all(type(x) is float for x in d.values())
    if name == "graphfm":     # two heads: one attribute per head, and the kept score; 3 kept sources per field
        layer2 = graphs[0][1]
        assert all(set(d) == {"coefficient", "weight", "alpha_head0", "alpha_head1"}
                   for _, _, d in layer2.edges(data=True))
        assert all(layer2.in_degree(f) == 3 for f in layer2.nodes)
    # Data-set level: the mean over the rows, 0 where a row's layer dropped the edge (edge_summary's numbers).
    ds = interaction_graph(model, data, level="dataset")
    first = next(iter(records[0].edge_attrs))
    for frame, g in zip(edge_summary(model, FieldLoader(data, 40)), ds):
        assert g.graph["rows"] == 40
        np.testing.assert_allclose(np.nan_to_num(graph_matrix(g, first, enc.space_.names)), frame.values,
                                   rtol=1e-6, atol=1e-7)
    if name == "graphfm":
        rec = records[1]
        per_row = [_record_edges(rec, b) for b in range(40)]
        u, v = next(iter(ds[1].edges))
        for h in range(2):
            mean = np.mean([row.get((u, v), {}).get(f"alpha_head{h}", 0.0) for row in per_row])
            assert ds[1].edges[u, v][f"alpha_head{h}"] == pytest.approx(mean, abs=1e-7)


def test_fives_edges_are_its_global_adjacency_at_both_levels(small):
    enc, data = small
    model = _model("fives", enc)
    learned = model.adjacency_weights()
    names = enc.space_.names
    inst = interaction_graph(model, data, level="instance", rows=[3])[0]
    ds = interaction_graph(model, None, level="dataset")
    assert interaction_graph(model, data, level="dataset")[0].graph == ds[0].graph   # data adds nothing
    records = model.edge_records(next(iter(FieldLoader(data, 4))))
    for k, (g, d) in enumerate(zip(inst, ds)):
        soft, prop = learned["soft"][k], learned["propagation"][k]
        assert g.graph["order"] == k + 2 and g.graph["threshold"] == [0.5, 0.4][k]
        assert set(g.edges) == set(d.edges) == {(names[j], names[i]) for i, j in zip(*np.nonzero(soft.numpy()))}
        assert not any(u == v for u, v in g.edges)                 # the masked diagonal is no edge
        for u, v, attrs in g.edges(data=True):
            i, j = names.index(v), names.index(u)
            assert attrs == {"weight": float(prop[i, j]), "soft": float(soft[i, j])} == d.edges[u, v]
            assert attrs["weight"] == pytest.approx(_record_edges(records[k], 3)[(u, v)]["weight"])


@pytest.mark.parametrize("name", ["afm", "ifm", "deepifm"])
def test_pair_model_edges_are_the_pair_weights(small, name):
    enc, data = small
    model = _model(name, enc)
    names = enc.space_.names
    batch = next(iter(FieldLoader(data, 40)))
    found = model.pair_weights(batch)
    pairs = found["pairs"].t().tolist()
    rows = [4, 31]
    for r, (g,) in zip(rows, interaction_graph(model, data, level="instance", rows=rows)):
        assert g.number_of_edges() == len(pairs)
        assert sum(w for _, _, w in g.edges(data="weight")) == pytest.approx(1.0, abs=1e-5)
        for p, (i, j) in enumerate(pairs):
            attrs = g.edges[names[i], names[j]]
            assert attrs["weight"] == float(found["weight"][r, p])
            assert set(attrs) == set(found) - {"pairs"}
            if "field_norm" in found:
                assert attrs["field_norm"] == float(found["field_norm"][p])
    (ds,) = interaction_graph(model, data, level="dataset")
    mean = found["weight"].double().mean(0)
    for p, (i, j) in enumerate(pairs):
        assert ds.edges[names[i], names[j]]["weight"] == pytest.approx(float(mean[p]), abs=1e-9)
    m = graph_matrix(ds, "weight", names)
    np.testing.assert_array_equal(m, m.T)                              # undirected: a symmetric matrix
    if name == "afm":
        with pytest.raises(ConfigError, match="depend on the row.*pass data"):
            interaction_graph(model, None, level="dataset")
    else:   # the field aspect does not depend on the row
        (static,) = interaction_graph(model, None, level="dataset")
        assert {k for _, _, d in static.edges(data=True) for k in d} == {"field_norm"} and "rows" not in static.graph


@pytest.mark.parametrize("name", list(FAMILIES))
def test_graphs_write_to_graphml_and_json_and_read_back_equal(small, tmp_path, name):
    enc, data = small
    model = _model(name, enc)
    inst = interaction_graph(model, data, level="instance", encoder=enc, rows=[0, 11])
    ds = interaction_graph(model, data, level="dataset")
    paths = write_graphs(inst, tmp_path, "inst") + write_graphs(ds, tmp_path, "ds", formats=("graphml", "json"))
    flat = [g for per_row in inst for g in per_row] + ds
    assert len(paths) == 2 * len(flat) and len(set(paths)) == len(paths)
    assert paths[0].name == "inst_row0_layer0.graphml" and paths[-1].name == f"ds_layer{LAYERS[name] - 1}.json"
    for path, g in zip(paths, [g for g in flat for _ in range(2)]):
        back = read_graph(path)
        assert nx.utils.graphs_equal(g, back) and type(back) is type(g)
        assert list(back.nodes(data=True)) == list(g.nodes(data=True))
        assert back.graph == g.graph and back.number_of_edges() == g.number_of_edges() > 0
        for u, v, d in g.edges(data=True):
            assert back.edges[u, v] == d                                  # the same floats, exactly
            assert all(type(x) in (int, float, str, bool) for x in d.values())
    # nx.read_graphml itself: the same nodes and edges (it adds two empty graph attributes, read_graph drops them)
    raw = nx.read_graphml(paths[0])
    assert raw.adj == inst[0][0].adj and dict(raw.nodes) == dict(inst[0][0].nodes)


def test_write_graphs_names_files_by_row_and_layer_and_refuses_clashes(small, tmp_path):
    enc, data = small
    model = _model("graphfm", enc)
    g = interaction_graph(model, data, level="dataset", layer=0)
    assert [p.name for p in write_graphs(g, tmp_path, "one", formats="json")] == ["one_layer0.json"]
    with pytest.raises(ConfigError, match="graph formats"):
        write_graphs(g, tmp_path, "one", formats=("gexf",))
    with pytest.raises(ConfigError, match="two graphs would both be written to .*two_layer0"):
        write_graphs([g, g], tmp_path, "two")
    assert not list(tmp_path.glob("two*"))                            # nothing written
    with pytest.raises(ConfigError, match="format of"):
        read_graph(tmp_path / "one_layer0.txt")


def test_interaction_graph_refuses_bad_arguments_clearly(small, planted):
    enc, data = small
    model = _model("graphfm", enc)
    with pytest.raises(ConfigError, match=r"level must be one of \['instance', 'dataset'\], got 'row'"):
        interaction_graph(model, data, level="row")
    with pytest.raises(ConfigError, match=r"layer 2 is out of range.*2 layer\(s\), numbered 0..1"):
        interaction_graph(model, data, level="dataset", layer=2)
    with pytest.raises(ConfigError, match="layer -3 is out of range"):
        interaction_graph(model, data, level="instance", layer=-3, rows=[0])
    for source in (data, next(iter(FieldLoader(data, 40))), FieldLoader(data, 16)):
        with pytest.raises(ConfigError, match=r"rows \[40\] out of range: the data has 40 rows \(positions 0..39\)"):
            interaction_graph(model, source, level="instance", rows=[3, 40])
    with pytest.raises(ConfigError, match="integers >= 0"):
        interaction_graph(model, data, level="instance", rows=[-1])
    with pytest.raises(ConfigError, match="more than once"):
        interaction_graph(model, data, level="instance", rows=[2, 2])
    with pytest.raises(ConfigError, match="instance-level graphs.*need the rows"):
        interaction_graph(model, None, level="instance")
    with pytest.raises(ConfigError, match="depend on the row"):
        interaction_graph(model, None, level="dataset")
    with pytest.raises(TypeError, match="data must be a TabularBatch, an EncodedData"):
        interaction_graph(model, "rows.csv", level="dataset")
    with pytest.raises(TypeError, match="graph_batches yields PyG batches"):
        interaction_graph(model, graph_batches(FieldLoader(data, 16)), level="dataset")
    other = FIVES(other_space(planted), embed_dim=4)
    with pytest.raises(ConfigError, match="not encoded with the encoder"):
        interaction_graph(other, data, level="instance", rows=[0])
    for plain_model in (FM(enc.space_, embed_dim=4), LogisticRegression(enc.space_)):
        with pytest.raises(TypeError, match=r"learns none.*graphfm, graphfm\+, fignn.*fives.*afm, ifm, inn, deepifm"):
            interaction_graph(plain_model, data)
    assert {"graphfm", "fignn", "fives", "afm", "ifm"} <= set(models_with_structure())
    assert not {"fm", "lr"} & set(models_with_structure())


def other_space(planted):
    """The feature space of an encoder fitted on other rows (field f0 has one value only)."""
    raw, _, _ = planted
    frame = raw.train.head(200).copy()
    frame["f0"] = "only"
    return FieldEncoder(raw.schema).fit(frame).space_


def test_interaction_graph_restores_the_training_mode(small):
    enc, data = small
    model = _model("graphfm", enc)
    model.train()
    interaction_graph(model, data, level="dataset")
    assert model.training


# -- heat maps --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["graphfm", "fives", "afm"])
def test_heatmaps_have_a_panel_and_a_colour_bar_per_layer_named_by_field(small, tmp_path, name):
    enc, data = small
    model = _model(name, enc)
    names = enc.space_.names
    out = tmp_path / "sub" / f"{name}.png"
    fig = plot_heatmaps(model, data, level="dataset", out=out)
    L = LAYERS[name]
    assert len(fig.axes) == 2 * L                                      # a panel and its colour bar per layer
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == L
    graphs = interaction_graph(model, data, level="dataset")
    for k, (ax, g) in enumerate(zip(panels, graphs)):
        assert [t.get_text() for t in ax.get_xticklabels()] == names
        assert [t.get_text() for t in ax.get_yticklabels()] == names
        attr = list(next(iter(g.edges(data=True)))[2])[0]
        assert f"layer {k}" in ax.get_title() and model_label(model) in ax.get_title() and attr in ax.get_title()
        drawn = np.ma.filled(ax.images[0].get_array().astype(float), np.nan)
        np.testing.assert_allclose(drawn, graph_matrix(g, attr, names), equal_nan=True)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Instance level: a row of panels per row of data.
    fig = plot_heatmaps(model, data, level="instance", rows=[1, 2, 3], attr=None)
    assert len([ax for ax in fig.axes if ax.images]) == 3 * L
    with pytest.raises(ConfigError, match="edge attribute 'nope' is not in this graph"):
        plot_heatmaps(model, data, attr="nope")


def test_heatmaps_of_a_chosen_head_and_the_missing_edges(small):
    enc, data = small
    model = _model("graphfm", enc)
    fig = plot_heatmaps(model, data, level="instance", rows=[0], layer=1, attr="alpha_head1")
    (ax,) = [ax for ax in fig.axes if ax.images]
    drawn = ax.images[0].get_array()
    assert int(drawn.mask.sum()) == 8 * 5                              # 3 of 8 sources kept: 5 missing per field
    assert "alpha_head1" in ax.get_title() and "grey: no edge" in _suptitle(fig)
    g = interaction_graph(model, data, level="instance", rows=[0], layer=1)[0]
    m = graph_matrix(g, "alpha_head1")
    u, v, w = next(iter(g.edges(data="alpha_head1")))
    assert m[list(g.nodes).index(v), list(g.nodes).index(u)] == w


def test_heatmaps_name_the_extra_when_matplotlib_is_missing(small, monkeypatch):
    enc, data = small
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r"pip install 'fgraph\[plot\]'"):
        plot_heatmaps(_model("fives", enc), data)


def test_heatmap_figure_refuses_too_many_rows(small):
    enc, data = small
    graphs = interaction_graph(_model("afm", enc), data, level="instance", rows=list(range(17)))
    with pytest.raises(ConfigError, match="17 rows are too many"):
        heatmap_figure(graphs)


# -- FIVES's ranked interactions ---------------------------------------------------------------------------------
def test_fives_interaction_table_ranks_the_derived_features(small, tmp_path):
    enc, _ = small
    model = _model("fives", enc)
    found = fives_interactions(model)
    table = fives_interaction_table(model)
    assert list(table.columns) == ["rank", "order", "fields", "weight"] and len(table) == len(found) > 0
    assert table["rank"].tolist() == list(range(1, len(found) + 1))
    assert table["fields"].tolist() == ["\u00d7".join(f) for f, _ in found]
    assert table["order"].tolist() == [len(f) for f, _ in found]
    assert table["weight"].tolist() == [s for _, s in found] and table["weight"].is_monotonic_decreasing
    # A pair's weight is its soft adjacency entry A_ij.
    names = enc.space_.names
    soft = model.adjacency_weights()["soft"][0]
    a, b = next(f for f, _ in found if len(f) == 2)
    assert table.loc[table["fields"] == f"{a}\u00d7{b}", "weight"].item() == pytest.approx(
        float(soft[names.index(a), names.index(b)]))
    path = write_interactions_csv(model, tmp_path / "interactions.csv", thresholds=0.6)
    back = pd.read_csv(path)
    pd.testing.assert_frame_equal(back, fives_interaction_table(model, 0.6), check_dtype=False)
    empty = fives_interaction_table(model, 0.999)
    assert list(empty.columns) == ["rank", "order", "fields", "weight"] and empty.empty
    with pytest.raises(TypeError, match=r"adjacency_weights\(\)"):
        fives_interaction_table(_model("graphfm", enc))

