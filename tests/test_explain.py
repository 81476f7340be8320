"""What models learned, read through their protocols (edge records, pair weights, FIVES's adjacency) and turned
into graphs and tables by fgraph.explain; the deprecated fgraph.export alias."""
import importlib
import sys
import warnings

import networkx as nx
import numpy as np
import pytest
import torch

from fgraph.data import FieldLoader
from fgraph.explain import (adjacency_graphs, derive_interactions, edge_summary, fives_graphs, fives_interactions,
                            instance_graphs, mean_edge_weights, pair_graph, records_to_graphs)
from fgraph.models import AFM, FIVES, IFM, FiGNN, GraphFM
from fgraph.nn import LayerRecord


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
