"""Explain a trained run into a folder of files: graphs, heat maps, FIVES's ranked interactions, AIM's kept
interactions and search, an index.

:func:`explain_run` is what ``fgraph explain RUN_DIR --out DIR`` runs. It reads the run
(:class:`~fgraph.train.run_dir.RunDirectory`) but not the run's data set (reading a data set is the front
ends' job): the caller passes the rows to explain, already encoded or as a raw DataFrame.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

import pandas as pd

from ..data.loader import TabularBatch
from ..data.space import EncodedData
from ..errors import ConfigError, InputFileError, InputFileNotFoundError, RunDirectoryError
from ..train.run_dir import RUN_FILES, RunDirectory, write_json_atomic
from .cross_features import write_interactions_csv
from .gates import ALL_ORDERS, aim_interaction_table, function_panels, has_gates, search_tables
from .heatmaps import MAX_PANEL_ROWS, _matplotlib, edge_attributes, heatmap_figure, save_figure
from .structure import (LEVELS, _check_formats, check_gate_level, check_level, check_rows, interaction_graph,
                        model_label, models_with_structure, reader_for, write_graphs)

#: The index :func:`explain_run` writes last; its presence marks a folder as holding an explanation.
INDEX_FILE = "explain.json"
#: Subfolder of the graph files.
GRAPHS_DIR = "graphs"
#: Version of the index's layout.
INDEX_VERSION = 1


def _check_out(out: Path, overwrite: bool, remove: bool) -> None:
    """Refuse an ``out`` that is a file, holds a run, holds other files, or (without ``overwrite``) holds a
    previous explanation; with ``overwrite`` and ``remove``, remove the previous explanation's files (those its
    index lists)."""
    if out.exists() and not out.is_dir():
        raise RunDirectoryError(f"explanation folder {out} is a file: give a new or empty folder as --out")
    if not out.exists() or not any(out.iterdir()):
        return
    run_files = [name for name in RUN_FILES if (out / name).exists()]
    if run_files:
        raise RunDirectoryError(f"explanation folder {out} holds a training run ({', '.join(run_files)}); an "
                                f"explanation never writes into a run directory: choose another --out, e.g. "
                                f"{out / 'explain'}")
    index = out / INDEX_FILE
    if not index.exists():
        raise RunDirectoryError(f"explanation folder {out} is not empty and holds no explanation ({INDEX_FILE}): "
                                f"give a new or empty folder as --out")
    if not overwrite:
        raise RunDirectoryError(f"explanation folder {out} holds a previous explanation ({index}): pass "
                                f"overwrite=True (--overwrite) to replace it, or another --out")
    if not remove:
        return
    try:
        listed = json.loads(index.read_text(encoding="utf-8"))["files"]
        paths = [p for group in listed.values() for p in group]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InputFileError(f"cannot read the previous explanation's index {index} ({exc}), so its files cannot "
                             f"be told apart: remove {out} by hand or choose another --out") from None
    root = out.resolve()
    for rel in paths:
        path = (out / str(rel)).resolve()
        if path.parent != root and root not in path.parents:
            continue                                     # an index never lists files outside its folder
        if path.is_file():
            path.unlink()
    graphs = out / GRAPHS_DIR
    if graphs.is_dir() and not any(graphs.iterdir()):
        graphs.rmdir()
    index.unlink()


def _levels(level, rows) -> list[str]:
    if level is None:
        return ["instance" if rows is not None else "dataset"]
    levels = [level] if isinstance(level, str) else list(level)
    if not levels:
        raise ConfigError(f"level must be one of {list(LEVELS)} (or a list of them), got an empty list")
    return list(dict.fromkeys(check_level(lv) for lv in levels))


def _encode(data, loaded, run_dir: Path):
    if data is None or isinstance(data, (EncodedData, TabularBatch)):
        return data
    if isinstance(data, pd.DataFrame):
        return loaded.encoder.transform(data)           # a missing field column: the encoder's own error
    raise TypeError(f"data to explain run {run_dir} with must be a pandas DataFrame of raw rows (encoded with the "
                    f"run's encoder) or an EncodedData, got {type(data).__name__}")


def _num_rows(data) -> int:
    return len(data) if isinstance(data, EncodedData) else data.num_rows


def explain_run(run_dir, out, *, rows: Sequence[int] | None = None, data=None, level=None,
                layer: int | None = None, attr: str | None = None,
                formats: Sequence[str] = ("graphml", "json"), heatmaps: bool = True,
                overwrite: bool = False) -> dict[str, list[Path]]:
    """Explain the trained run in ``run_dir`` into the folder ``out``.

    Reads the run's model and encoder (:meth:`RunDirectory.load() <fgraph.train.run_dir.RunDirectory.load>`)
    and writes, per level:

    * ``graphs/<level>_row<r>_layer<l>.<suffix>`` (instance level) or ``graphs/dataset_layer<l>.<suffix>``:
      the graphs of :func:`~fgraph.explain.interaction_graph`, once per format (``.graphml``, ``.json``);
    * ``heatmap_<level>.png``: every layer as a panel (instance level: a row of panels per row of data), see
      :func:`~fgraph.explain.heatmaps.heatmap_figure`;
    * FIVES only: ``interactions.csv``, its explicit interactive features ranked by weight
      (:func:`~fgraph.explain.fives_interaction_table`);
    * AIM (data-set level only; its gates are global): ``graphs/dataset_order2.<suffix>`` (the pairs, an
      ``nx.MultiGraph`` keyed by function) and ``graphs/dataset_orderall.<suffix>`` (the bipartite graph of
      fields and interactions of every order), ``heatmap_dataset.png`` (the order-2 ``alpha``, one panel per
      function; left out when no pair is kept), ``interactions.csv`` (the kept interactions:
      :func:`~fgraph.explain.aim_interaction_table`) and, under ``search``, ``kept_ratio.csv`` (per order:
      searched, kept, ratio) and ``dims_kept.csv`` (per field, the embedding dimensions kept), from the run's
      ``search.json`` (a search stage's run: from its own gates; see :func:`~fgraph.explain.search_tables`),
      each when there is something to write;
    * ``explain.json``, last: the index of what was written (paths relative to ``out``), with the run, the
      model, the levels, the rows and the layers' edge attributes.

    Everything is computed before the first file is written, so an error leaves ``out`` as it was.

    Args:
        run_dir: a trained run directory.
        out: the folder to write (created if need be). It must be new or empty, or hold a previous explanation
            and ``overwrite=True``; a folder holding a run or any other files is refused.
        rows: row positions of ``data`` to explain one by one (at most :data:`MAX_PANEL_ROWS` with heat maps);
            they imply the instance level.
        data: the rows: an :class:`~fgraph.data.EncodedData` (or :class:`~fgraph.data.TabularBatch`) encoded
            with the run's encoder, or a pandas DataFrame of raw rows, which is encoded with it (the label
            column may be left out). Required at instance level, and at data-set level for models whose
            weights all depend on the row (GraphFM, Fi-GNN, AFM); FIVES (and the IFM family's ``field_norm``)
            need none there. This function reads no data set: a front end passes e.g. the run's validation
            split.
        level: ``"instance"``, ``"dataset"``, or a list of both; default: instance level if ``rows`` are given,
            data-set level otherwise.
        layer: one layer only (default: all).
        attr: the edge attribute of the heat maps (default: each layer's first).
        formats: graph file formats, some of ``"graphml"`` and ``"json"``.
        heatmaps: draw the heat maps (needs matplotlib, ``pip install 'fgraph[plot]'``).
        overwrite: replace a previous explanation in ``out`` (only the files its index lists are removed).

    Returns:
        ``{"graphs": [...], "heatmaps": [...], "interactions": [...], "search": [...], "index":
        [out/explain.json]}``, the paths written (absolute when ``out`` is).

    Raises:
        RunDirectoryError: ``out`` is a file, holds a run, other files, or a previous explanation without
            ``overwrite``.
        ConfigError: a run whose model learns no interaction structure, a bad ``level``/``layer``/``rows``/
            ``formats``, rows that are out of range, or no data where it is needed.
        InputFileNotFoundError, InputFileError, CheckpointError: the run cannot be read.
        ColumnNotFoundError, DataError: ``data`` does not fit the run's encoder.
        ImportError: ``heatmaps`` without matplotlib.
    """
    run_dir, out = Path(run_dir), Path(out)
    formats = _check_formats(formats)
    rows = check_rows(rows)
    levels = _levels(level, rows)
    if heatmaps:
        _matplotlib()
    _check_out(out, overwrite, remove=False)
    loaded = RunDirectory(run_dir).load()
    model = loaded.model
    if has_gates(model):
        return _explain_gates(run_dir, out, loaded, levels, layer, attr, formats, heatmaps, overwrite)
    try:
        reader = reader_for(model)
    except TypeError:
        raise ConfigError(f"run {run_dir} holds a {loaded.config.get('model', type(model).__name__)!r} model, "
                          f"which learns no interaction structure to explain; explain a run of a model that "
                          f"does ({', '.join(models_with_structure())})") from None
    data = _encode(data, loaded, run_dir)
    if "instance" in levels:
        if data is None:
            raise ConfigError(f"instance-level explanations of run {run_dir} need the rows: pass data (fgraph "
                              f"explain: --data FILE) and rows (--rows 0,5)")
        if rows is None and _num_rows(data) > MAX_PANEL_ROWS:
            raise ConfigError(f"the data has {_num_rows(data)} rows, too many to explain one by one: pick some "
                              f"with rows (--rows 0,5)")
        if heatmaps and rows is not None and len(rows) > MAX_PANEL_ROWS:
            raise ConfigError(f"{len(rows)} rows are too many for one heat-map figure (at most {MAX_PANEL_ROWS}): "
                              f"explain fewer rows, or leave the heat maps out (heatmaps=False, --no-heatmaps)")
    if "dataset" in levels and data is None and reader.rows_matter and reader.static() is None:
        raise ConfigError(f"the {model_label(model)} model of run {run_dir} weighs its interactions per row: a "
                          f"data-set level explanation needs data to average over (e.g. the run's validation "
                          f"split); pass data")

    # Compute everything first.
    names = list(model.space.names)
    results = {}
    for lv in levels:
        graphs = interaction_graph(model, data, level=lv, layer=layer, encoder=loaded.encoder, rows=rows)
        fig = heatmap_figure(graphs, attr, names=names) if heatmaps else None
        results[lv] = (graphs, fig)
    fives = callable(getattr(model, "adjacency_weights", None))

    # Then write.
    _check_out(out, overwrite, remove=True)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, list[Path]] = {"graphs": [], "heatmaps": [], "interactions": [], "search": [], "index": []}
    attributes = {}
    for lv, (graphs, fig) in results.items():
        written["graphs"] += write_graphs(graphs, out / GRAPHS_DIR, lv, formats)
        flat = [graphs] if not isinstance(graphs, list) else graphs
        first = flat[0][0] if isinstance(flat[0], list) else flat[0]
        attributes[lv] = edge_attributes(first)
        if fig is not None:
            written["heatmaps"].append(save_figure(fig, out / f"heatmap_{lv}.png"))
    if fives:
        written["interactions"].append(write_interactions_csv(model, out / "interactions.csv"))
    return _write_index(out, written, run_dir, model, loaded, levels, rows, layer, attributes, attr)


def _write_index(out: Path, written: dict, run_dir: Path, model, loaded, levels, rows, layer, attributes,
                 attr, **extra) -> dict[str, list[Path]]:
    """Write ``explain.json``, the index of ``written``, last; ``written`` with it."""
    index = {
        "fgraph_explain": INDEX_VERSION,
        "run": os.fspath(run_dir.resolve()),
        "model": model_label(model),
        "model_name": loaded.config.get("model"),
        "levels": levels,
        "rows": rows,
        "layer": layer,
        "edge_attributes": attributes,
        "heatmap_attribute": attr,
        **extra,
        "files": {group: [p.relative_to(out).as_posix() for p in paths] for group, paths in written.items()
                  if group != "index"},
    }
    write_json_atomic(out / INDEX_FILE, index)
    written["index"].append(out / INDEX_FILE)
    return written


def _read_search(run_dir: Path) -> dict | None:
    """The run's ``search.json`` (an AIM run), or None where it has none (a search stage's run directory)."""
    try:
        return RunDirectory(run_dir).read_search()
    except InputFileNotFoundError:
        return None


def _explain_gates(run_dir: Path, out: Path, loaded, levels, layer, attr, formats, heatmaps,
                   overwrite) -> dict[str, list[Path]]:
    """:func:`explain_run` of a model with global gated interactions (AIM): its graphs, its pair heat map, its
    kept interactions and what its search kept. The rows are not read."""
    model = loaded.model
    for lv in levels:
        check_gate_level(model, lv)
    # Compute everything first.
    graphs = [interaction_graph(model, level="dataset", layer=layer, order=order) for order in (2, ALL_ORDERS)]
    panels = function_panels(graphs[0])
    fig = heatmap_figure(panels, attr, names=list(model.space.names)) if heatmaps and panels else None
    table = aim_interaction_table(model)
    search = _read_search(run_dir)
    tables = search_tables(search, model)

    # Then write.
    _check_out(out, overwrite, remove=True)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, list[Path]] = {"graphs": [], "heatmaps": [], "interactions": [], "search": [], "index": []}
    written["graphs"] += write_graphs(graphs, out / GRAPHS_DIR, "dataset", formats)
    if fig is not None:
        written["heatmaps"].append(save_figure(fig, out / "heatmap_dataset.png"))
    table.to_csv(out / "interactions.csv", index=False, encoding="utf-8")
    written["interactions"].append(out / "interactions.csv")
    for name in ("kept_ratio", "dims_kept"):
        if name in tables:
            tables[name].to_csv(out / f"{name}.csv", index=False, encoding="utf-8")
            written["search"].append(out / f"{name}.csv")
    attributes = {"dataset": edge_attributes(graphs[0])}
    return _write_index(out, written, run_dir, model, loaded, ["dataset"], None, layer, attributes, attr,
                        search=os.fspath(RunDirectory(run_dir).search_path.resolve()) if search else None)


__all__ = ["explain_run", "INDEX_FILE", "GRAPHS_DIR"]
