"""AIM in the explanation API: its gates (gate_weights) as a pair multigraph and a bipartite graph of every order,
written and read back, drawn per function, and explained from a run directory (interactions, kept ratio, dims)."""
import json

import networkx as nx
import pandas as pd
import pytest
import torch

import fgraph.api as fg
from fgraph.data import FieldEncoder
from fgraph.data.datasets import synthetic
from fgraph.errors import ConfigError
from fgraph.explain import (aim_interaction_table, aim_interactions, function_panels, interaction_graph,
                            interactions_to_graph, models_with_structure, plot_heatmaps, read_graph, search_tables,
                            write_graphs)
from fgraph.models import AIM, FIVES
from fgraph.train import RunDirectory

pytestmark = pytest.mark.usefixtures("one_thread")

KEPT = [(["f0", "f1"], "inner"), (["f0", "f1"], "outer"), (["f2", "f3", "f4"], "outer"), (["f1", "f5"], "inner")]
SEARCHED = [(["f1", "f2"], "inner"), (["f3", "f4"], "vector_kernel"), (["f1", "f2", "f3"], "scalar_kernel"),
            (["f0", "f4", "f5"], "inner"), (["f2", "f5"], "scalar_kernel")]


@pytest.fixture(scope="module")
def space():
    data = synthetic(n_samples=400, n_fields=6, cardinality=4, pairs=((0, 1),), triple=None)
    return FieldEncoder(data.schema).fit(data.train).space_


def _aim(space, kept_alpha=(0.7, -0.2, 1.5, 0.0), searched_alpha=(0.3, 0.0, -0.9, 0.0, 0.25)):
    torch.manual_seed(0)
    model = AIM(space, embed_dim=4, interactions=[{"fields": f, "function": k} for f, k in KEPT],
                candidates=[{"fields": f, "function": k} for f, k in SEARCHED])
    # gate_weights lists the entries grouped by function: set alpha by entry
    want = {(tuple(f), k): a for (f, k), a in zip(KEPT, kept_alpha)}
    with torch.no_grad():
        model.kept.gate.alpha[:] = torch.tensor([want[(tuple(space.names[i] for i in q), k)]
                                                 for q, k in model.kept.entries])
        want = {(tuple(f), k): a for (f, k), a in zip(SEARCHED, searched_alpha)}
        model.searched.gate.alpha[:] = torch.tensor([want[(tuple(space.names[i] for i in q), k)]
                                                     for q, k in model.searched.entries])
    return model


def _expected(model):
    """``{(fields, function): (alpha, searched)}`` of the kept interactions, read off gate_weights() directly."""
    w, names = model.gate_weights(), model.space.names
    out = {}
    for entries, alpha, searched in ((w["kept"], w["kept_alpha"], False), (w["searched"], w["searched_alpha"], True)):
        for (q, k), a in zip(entries, alpha.tolist()):
            if not searched or a != 0.0:
                out[(tuple(names[i] for i in q), k)] = (a, searched)
    return out


def test_pair_graph_is_the_order_2_gates(space):
    model = _aim(space)
    want = {key: v for key, v in _expected(model).items() if len(key[0]) == 2}
    assert set(want) == {(("f0", "f1"), "inner"), (("f0", "f1"), "outer"), (("f1", "f5"), "inner"),
                         (("f1", "f2"), "inner"), (("f2", "f5"), "scalar_kernel")}   # zero-alpha searched: gone
    g = interaction_graph(model, order=2)
    assert isinstance(g, nx.MultiGraph) and not g.is_directed() and list(g.nodes) == space.names
    assert g.graph == {"model": "AIM", "level": "dataset", "stage": "search-2", "base": "fm", "order": 2}
    got = {(tuple(sorted((u, v))), k): (d["alpha"], d["searched"]) for u, v, k, d in g.edges(keys=True, data=True)}
    assert got == want                                           # the same floats, exactly
    assert all(d["function"] == k and type(d["alpha"]) is float for _, _, k, d in g.edges(keys=True, data=True))
    assert g.number_of_edges("f0", "f1") == 2                    # one pair, two functions
    # data, rows and encoder are not read (the gates are global)
    assert nx.utils.graphs_equal(interaction_graph(model, None, level="dataset", order=2, rows=[3]), g)


def test_bipartite_graph_holds_every_order(space):
    model = _aim(space)
    want = _expected(model)
    g = interaction_graph(model)                                 # order="all" is the default
    assert nx.utils.graphs_equal(g, interaction_graph(model, order="all")) and not g.is_multigraph()
    assert g.graph["order"] == "all" and nx.is_bipartite(g)
    fields = [n for n, d in g.nodes(data=True) if d["bipartite"] == 0]
    assert fields == space.names and all(g.nodes[f]["kind"] == "field" for f in fields)
    inter = {n: d for n, d in g.nodes(data=True) if d["bipartite"] == 1}
    got = {}
    for node, d in inter.items():
        names = tuple(d["fields"].split("|"))
        assert node == f"{d['fields']}:{d['function']}" and d["kind"] == "interaction"
        assert g.degree(node) == d["order"] == len(names) and set(g[node]) == set(names)
        got[(names, d["function"])] = (d["alpha"], d["searched"])
    assert got == want and len(inter) == 7
    three = interaction_graph(model, order=3)
    assert {d["fields"] for n, d in three.nodes(data=True) if d["bipartite"] == 1} == {"f2|f3|f4", "f1|f2|f3"}
    # the table: the same interactions, by order then |alpha|
    table = aim_interaction_table(model)
    assert list(table.columns) == ["fields", "order", "function", "alpha", "searched"]
    assert {(tuple(r.fields.split("|")), r.function): (r.alpha, r.searched) for r in table.itertuples()} == want
    assert table["order"].tolist() == [2] * 5 + [3] * 2 and table["alpha"].tolist()[:2] == pytest.approx([0.7, 0.3])
    assert len(aim_interactions(model)) == 7


def test_aim_graphs_write_and_read_back_equal(space, tmp_path):
    model = _aim(space)
    graphs = [interaction_graph(model, order=2), interaction_graph(model, order="all")]
    paths = write_graphs(graphs, tmp_path, "aim")
    assert [p.name for p in paths] == ["aim_order2.graphml", "aim_order2.json", "aim_orderall.graphml",
                                       "aim_orderall.json"]
    for path, g in zip(paths, [g for g in graphs for _ in range(2)]):
        back = read_graph(path)
        assert type(back) is type(g) and nx.utils.graphs_equal(back, g) and back.graph == g.graph
        assert list(back.nodes(data=True)) == list(g.nodes(data=True))
    # a multigraph without parallel edges (or edges) stays a multigraph
    alone = interactions_to_graph(space.names, [{"fields": ["f0", "f1"], "function": "inner", "alpha": 0.5}], order=2)
    empty = interactions_to_graph(space.names, [], order=2, graph={"layer": 9})
    for g, stem in ((alone, "alone"), (empty, "empty")):
        for path in write_graphs(g, tmp_path, stem):
            back = read_graph(path)
            assert back.is_multigraph() and nx.utils.graphs_equal(back, g) and back.graph == g.graph


def test_aim_refuses_what_it_does_not_have(space):
    model = _aim(space)
    with pytest.raises(ConfigError, match=r"global, the same for every row.*no instance-level graphs: use "
                                          r"level='dataset'.*order=2.*order='all'"):
        interaction_graph(model, None, level="instance", rows=[0, 1])
    with pytest.raises(ConfigError, match="has no layers.*order="):
        interaction_graph(model, layer=0)
    for bad in (1, "pairs", True):
        with pytest.raises(ConfigError, match="order must be an interaction order"):
            interaction_graph(model, order=bad)
    with pytest.raises(ConfigError, match=r"order= chooses the interactions of an AIM model.*layer=.*k \+ 2"):
        interaction_graph(FIVES(space, embed_dim=4), order=2)
    with pytest.raises(ValueError, match="listed twice"):
        interactions_to_graph(space.names, [{"fields": ["f0", "f1"], "function": "inner", "alpha": 1.0},
                                            {"fields": ["f1", "f0"], "function": "inner", "alpha": 2.0}])
    assert "aim" in models_with_structure()


def test_heatmaps_have_a_panel_per_function(space):
    pytest.importorskip("matplotlib")
    model = _aim(space)
    panels = function_panels(interaction_graph(model, order=2))
    assert [p.graph["function"] for p in panels] == ["inner", "scalar_kernel", "outer"]   # FUNCTIONS order
    assert {e for e in panels[0].edges} == {("f0", "f1"), ("f1", "f5"), ("f1", "f2")}
    fig = plot_heatmaps(model)
    assert len(fig.axes) == 2 * 3 and [ax.get_title().split("\n")[0] for ax in fig.axes[:3]] == [
        "AIM \u00b7 order 2, inner", "AIM \u00b7 order 2, scalar_kernel", "AIM \u00b7 order 2, outer"]
    triple = AIM(space, embed_dim=4, interactions=[{"fields": ["f0", "f1", "f2"], "function": "outer"}],
                 candidates=None)
    with pytest.raises(ConfigError, match="keeps no order-2 interaction"):
        plot_heatmaps(triple)


@pytest.fixture(scope="module")
def aim_run(tmp_path_factory, one_thread):
    out = tmp_path_factory.mktemp("aim_run") / "aim"
    fg.train("aim", "synthetic", out=out, embed_dim=8, batch_size=256, epochs=2, progress=False,
             dataset_options={"n_samples": 3000, "pairs": [[0, 1], [2, 3], [6, 7]], "triple": [6, 7, 8]},
             model_options={"max_order": 3, "grda_c": 0.02})
    return out


def test_explain_an_aim_run(aim_run, tmp_path):
    out = tmp_path / "ex"
    written = fg.explain(aim_run, out)
    assert {k: [p.name for p in v] for k, v in written.items()} == {
        "graphs": ["dataset_order2.graphml", "dataset_order2.json", "dataset_orderall.graphml",
                   "dataset_orderall.json"],
        "heatmaps": ["heatmap_dataset.png"], "interactions": ["interactions.csv"],
        "search": ["kept_ratio.csv", "dims_kept.csv"], "index": ["explain.json"]}
    index = json.loads((out / "explain.json").read_text())
    assert index["model"] == "AIM" and index["levels"] == ["dataset"] and index["files"]["search"] == [
        "kept_ratio.csv", "dims_kept.csv"]
    loaded = RunDirectory(aim_run).load()
    search = RunDirectory(aim_run).read_search()
    table = pd.read_csv(out / "interactions.csv")
    pd.testing.assert_frame_equal(table, aim_interaction_table(loaded.model), check_dtype=False)
    # the retrained model keeps what the search found, no more, no less
    assert {(tuple(r.fields.split("|")), r.function) for r in table.itertuples()} == {
        (tuple(e["fields"]), e["function"]) for e in search["found"]["interactions"]}
    assert not table["searched"].any()
    ratio = pd.read_csv(out / "kept_ratio.csv")
    assert ratio.to_dict("records") == [{"order": int(p), **r} for p, r in sorted(search["kept_ratio"].items())]
    dims = pd.read_csv(out / "dims_kept.csv")
    assert dict(zip(dims["field"], dims["dims_kept"])) == search["dims_kept"]
    for order in ("2", "all"):
        want = interaction_graph(loaded.model, order=2 if order == "2" else "all")
        for fmt in ("graphml", "json"):
            assert nx.utils.graphs_equal(read_graph(out / "graphs" / f"dataset_order{order}.{fmt}"), want)
    with pytest.raises(ConfigError, match="no instance-level graphs"):
        fg.explain(aim_run, tmp_path / "rows", rows=[0, 1])
    assert not (tmp_path / "rows").exists()
    # a search stage's run: its own searched gates give the kept ratio, and the pruned ones are left out
    stage = fg.explain(aim_run / "stages" / "search-2", tmp_path / "stage", heatmaps=False)
    model = RunDirectory(aim_run / "stages" / "search-2").load().model
    assert [p.name for p in stage["search"]] == ["kept_ratio.csv"]
    (row,) = pd.read_csv(tmp_path / "stage" / "kept_ratio.csv").to_dict("records")
    alpha = model.gate_weights()["searched_alpha"]
    assert row["order"] == 2 and row["searched"] == alpha.numel() == 4 * 45 and row["kept"] == int((alpha != 0).sum())
    assert len(pd.read_csv(tmp_path / "stage" / "interactions.csv")) == row["kept"]
    assert search_tables(None, model)["kept_ratio"].to_dict("records") == [row]
