"""explain_run: a trained run explained into a folder of graphs, heat maps, FIVES's interactions and an index."""
import json

import networkx as nx
import pandas as pd
import pytest

import fgraph.api as fg
from fgraph.data.datasets import synthetic
from fgraph.errors import ColumnNotFoundError, ConfigError, RunDirectoryError
from fgraph.explain import explain_run, fives_interaction_table, interaction_graph, read_graph
from fgraph.train import RunDirectory

N_SAMPLES = 1500


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("explain_runs")
    out = {}
    for name, options in (("fives", {"orders": 3}), ("graphfm", {"neighbours": [10, 4]}), ("ifm", {}), ("fm", {})):
        fg.train(name, "synthetic", out=root / name, epochs=1, batch_size=512, embed_dim=4, progress=False,
                 dataset_options={"n_samples": N_SAMPLES}, model_options=options)
        out[name] = root / name
    return out


@pytest.fixture(scope="module")
def frame():
    """Raw rows of the data set the runs were trained on (the label column left out)."""
    return synthetic(n_samples=N_SAMPLES).test.drop(columns=["label"]).reset_index(drop=True)


def _files(out):
    return sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())


def _check_index(out, written):
    index = json.loads((out / "explain.json").read_text())
    listed = [p for group in index["files"].values() for p in group]
    assert sorted(listed + ["explain.json"]) == _files(out)               # it lists exactly what is there
    for group, paths in written.items():
        assert all(p.is_file() for p in paths)
        if group != "index":
            assert [p.relative_to(out).as_posix() for p in paths] == index["files"][group]
    return index


def test_fives_needs_no_data_and_writes_its_interactions(runs, tmp_path):
    out = tmp_path / "fives"
    written = explain_run(runs["fives"], out)
    index = _check_index(out, written)
    assert index["model"] == "FIVES" and index["levels"] == ["dataset"] and index["rows"] is None
    assert [p.name for p in written["graphs"]] == ["dataset_layer0.graphml", "dataset_layer0.json",
                                                   "dataset_layer1.graphml", "dataset_layer1.json"]
    assert [p.name for p in written["heatmaps"]] == ["heatmap_dataset.png"]
    assert written["heatmaps"][0].read_bytes()[:4] == b"\x89PNG"
    model = RunDirectory(runs["fives"]).load().model
    pd.testing.assert_frame_equal(pd.read_csv(out / "interactions.csv"), fives_interaction_table(model),
                                  check_dtype=False)
    # The graphs written are the loaded model's.
    for k, g in enumerate(interaction_graph(model, None, level="dataset")):
        for fmt in ("graphml", "json"):
            assert nx.utils.graphs_equal(read_graph(out / "graphs" / f"dataset_layer{k}.{fmt}"), g)
    assert index["edge_attributes"] == {"dataset": ["weight", "soft"]}


def test_graphfm_instances_from_raw_rows(runs, frame, tmp_path):
    out = tmp_path / "gfm"
    written = explain_run(runs["graphfm"], out, rows=[0, 5], data=frame, formats=("json",))
    index = _check_index(out, written)
    assert index["levels"] == ["instance"] and index["rows"] == [0, 5] and written["interactions"] == []
    assert [p.name for p in written["graphs"]] == [f"instance_row{r}_layer{k}.json" for r in (0, 5) for k in range(2)]
    loaded = RunDirectory(runs["graphfm"]).load()
    want = interaction_graph(loaded.model, loaded.encoder.transform(frame), level="instance", rows=[0, 5],
                             encoder=loaded.encoder)
    for r, per_row in zip((0, 5), want):
        for k, g in enumerate(per_row):
            back = read_graph(out / "graphs" / f"instance_row{r}_layer{k}.json")
            assert nx.utils.graphs_equal(back, g) and back.nodes["f0"]["value"] == frame["f0"].iloc[r]
    # Both levels, without heat maps.
    both = explain_run(runs["graphfm"], tmp_path / "both", rows=[1], data=frame, level=["instance", "dataset"],
                       heatmaps=False)
    assert both["heatmaps"] == [] and len(both["graphs"]) == 2 * 2 * 2
    assert _check_index(tmp_path / "both", both)["levels"] == ["instance", "dataset"]


def test_a_previous_explanation_is_replaced_only_with_overwrite(runs, frame, tmp_path):
    out = tmp_path / "again"
    explain_run(runs["graphfm"], out, rows=[0, 1], data=frame)
    before = _files(out)
    with pytest.raises(RunDirectoryError, match=rf"{out}.*previous explanation.*overwrite=True"):
        explain_run(runs["graphfm"], out, rows=[2], data=frame)
    assert _files(out) == before
    (out / "notes.txt").write_text("mine")
    written = explain_run(runs["graphfm"], out, rows=[2], data=frame, overwrite=True)
    after = _files(out)
    assert "graphs/instance_row0_layer0.graphml" not in after and "notes.txt" in after   # only its own files go
    _check_index_without(out, written, "notes.txt")


def _check_index_without(out, written, extra):
    index = json.loads((out / "explain.json").read_text())
    listed = [p for group in index["files"].values() for p in group]
    assert sorted(listed + ["explain.json", extra]) == _files(out)


def test_out_must_be_new_empty_or_an_explanation(runs, tmp_path):
    with pytest.raises(RunDirectoryError, match="holds a training run.*never writes into a run directory"):
        explain_run(runs["fives"], runs["fives"], overwrite=True)
    other = tmp_path / "other"
    other.mkdir()
    (other / "data.csv").write_text("a\n1\n")
    with pytest.raises(RunDirectoryError, match=f"{other} is not empty and holds no explanation"):
        explain_run(runs["fives"], other, overwrite=True)
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunDirectoryError, match="is a file"):
        explain_run(runs["fives"], tmp_path / "file")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert explain_run(runs["fives"], empty, heatmaps=False)["index"][0].is_file()


def test_bad_arguments_are_named(runs, frame, tmp_path):
    out = tmp_path / "x"
    with pytest.raises(ConfigError, match="instance-level explanations.*need the rows: pass data"):
        explain_run(runs["graphfm"], out, rows=[0])
    with pytest.raises(ConfigError, match="weighs its interactions per row.*pass data"):
        explain_run(runs["graphfm"], out)
    with pytest.raises(ConfigError, match=r"rows \[100000\] out of range"):
        explain_run(runs["graphfm"], out, rows=[100000], data=frame)
    with pytest.raises(ConfigError, match="too many to explain one by one"):
        explain_run(runs["graphfm"], out, level="instance", data=frame)
    with pytest.raises(ConfigError, match="too many for one heat-map figure"):
        explain_run(runs["graphfm"], out, rows=list(range(17)), data=frame)
    with pytest.raises(ColumnNotFoundError, match="f3"):
        explain_run(runs["graphfm"], out, rows=[0], data=frame.drop(columns=["f3"]))
    with pytest.raises(ConfigError, match="level must be one of"):
        explain_run(runs["fives"], out, level="rows")
    with pytest.raises(ConfigError, match="graph formats"):
        explain_run(runs["fives"], out, formats=("csv",))
    with pytest.raises(ConfigError, match=r"'fm' model, which learns no interaction structure.*graphfm"):
        explain_run(runs["fm"], out)
    with pytest.raises(TypeError, match="pandas DataFrame of raw rows.*or an EncodedData"):
        explain_run(runs["graphfm"], out, rows=[0], data=[[1, 2]])
    assert not out.exists()                                            # nothing was written
    # The IFM family's field aspect does not depend on the row: a data-set explanation without data.
    written = explain_run(runs["ifm"], tmp_path / "ifm", heatmaps=False)
    g = read_graph(written["graphs"][0])
    assert not g.is_directed() and {k for _, _, d in g.edges(data=True) for k in d} == {"field_norm"}
