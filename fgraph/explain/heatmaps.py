"""Heat maps of what a model learned: one field x field matrix per layer (as in the GraphFM paper's Figure 4).

Drawn from the graphs of :func:`~fgraph.explain.interaction_graph`, so every model with an interaction
structure gets them. matplotlib is an optional dependency (``pip install 'fgraph[plot]'``), imported only
when a figure is drawn; figures are built without pyplot, on matplotlib's Agg canvas, so they draw and save
the same with or without a display.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import networkx as nx
import numpy as np

from ..errors import ConfigError
from .gates import function_panels, has_gates
from .structure import _flatten, interaction_graph

#: The most rows of panels one figure holds (instance level: one row of panels per instance).
MAX_PANEL_ROWS = 16


def _matplotlib():
    try:
        import matplotlib
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - the message is tested with matplotlib hidden
        raise ImportError("drawing heat maps needs matplotlib, which is not installed: "
                          "pip install 'fgraph[plot]'") from exc
    return matplotlib, Figure, FigureCanvasAgg


def edge_attributes(graph: nx.Graph) -> list[str]:
    """The edge attribute names of ``graph``, in the order its edges carry them (the first is the weight)."""
    seen: dict[str, None] = {}
    for _, _, attrs in graph.edges(data=True):
        seen.update(dict.fromkeys(attrs))
    return list(seen)


def graph_matrix(graph: nx.Graph, attr: str | None = None, names: Sequence[str] | None = None) -> np.ndarray:
    """Edge attribute ``attr`` of ``graph`` as an ``n x n`` matrix over the fields ``names`` (default: the
    graph's node order).

    Entry ``[i, j]`` is the attribute of edge ``j -> i`` of a directed graph (row: the field that reads,
    column: the field it reads), of the pair ``{i, j}`` of an undirected one (a symmetric matrix); NaN where
    there is no edge. ``attr`` defaults to the graph's first edge attribute.

    Raises:
        ConfigError: ``attr`` is not an edge attribute of the graph.
    """
    names = list(graph.nodes) if names is None else list(names)
    available = edge_attributes(graph)
    attr = attr if attr is not None else (available[0] if available else None)
    if attr is None or attr not in available:
        raise ConfigError(f"edge attribute {attr!r} is not in this graph; its edges carry {available}")
    pos = {name: k for k, name in enumerate(names)}
    out = np.full((len(names), len(names)), np.nan)
    for u, v, value in graph.edges(data=attr):
        if value is None:
            continue
        out[pos[v], pos[u]] = value
        if not graph.is_directed():
            out[pos[u], pos[v]] = value
    return out


def _tick_size(n: int) -> float:
    return 9.0 if n <= 12 else 8.0 if n <= 20 else 7.0 if n <= 45 else 5.5


def heatmap_figure(graphs, attr: str | None = None, names: Sequence[str] | None = None, title: str | None = None):
    """A figure of one heat map per graph: a row of panels per instance (graphs with a ``row`` attribute), a
    column per layer (or per ``function``: AIM's :func:`~fgraph.explain.gates.function_panels`; a single row of
    panels wraps after 3, or 2 beyond 20 fields); each panel with its own colour bar, field names on both axes.

    Args:
        graphs: what :func:`~fgraph.explain.interaction_graph` returns (a graph, a list or nested lists).
        attr: the edge attribute to draw (default: each graph's first, see :func:`graph_matrix`).
        names: the fields, in axis order (default: the first graph's node order).
        title: the figure's title (default: the model, the attribute and the level, from the graph attributes).

    Returns:
        a ``matplotlib.figure.Figure`` (on an Agg canvas), whose axes are the panels followed by their colour
        bars, in row-major order.
    """
    matplotlib, Figure, FigureCanvasAgg = _matplotlib()
    flat = _flatten(graphs)
    if not flat:
        raise ConfigError("no graphs to draw")
    names = list(flat[0].nodes) if names is None else list(names)
    row_keys = list(dict.fromkeys(g.graph.get("row") for g in flat))
    column = lambda g: (g.graph.get("layer"), g.graph.get("function"))  # noqa: E731
    layer_keys = list(dict.fromkeys(column(g) for g in flat))
    if len(row_keys) > MAX_PANEL_ROWS:
        raise ConfigError(f"{len(row_keys)} rows are too many for one figure (at most {MAX_PANEL_ROWS}): draw "
                          f"fewer rows at a time (rows=)")
    grid = {(row_keys.index(g.graph.get("row")), layer_keys.index(column(g))): g for g in flat}
    n_rows, n_cols = len(row_keys), len(layer_keys)
    n = len(names)
    wrap = 3 if n <= 20 else 2                             # panels side by side, for one row of panels
    if n_rows == 1 and n_cols > wrap:
        grid = {divmod(c, wrap): g for (_, c), g in grid.items()}
        n_rows, n_cols = -(-n_cols // wrap), wrap
    size = _tick_size(n)
    longest = max(len(str(s)) for s in names)
    label = longest * size * 0.62 / 72 + 0.5             # inches taken by the rotated / left tick labels
    side = min(max(0.2 * n + 1.6, 3.2), 9.0)              # inches of one matrix
    # Every panel carries its own tick labels, title and colour bar; the matrices are square.
    fig = Figure(figsize=(n_cols * (side + 1.3 + label), n_rows * (side + 0.75 + label) + 0.45),
                 layout="constrained")
    FigureCanvasAgg(fig)
    first = flat[0].graph
    panels = {}
    for (r, c), g in sorted(grid.items()):
        panels[r, c] = fig.add_subplot(n_rows, n_cols, r * n_cols + c + 1)
    bars, used_attr, missing = [], None, False
    for (r, c), ax in panels.items():
        g = grid[r, c]
        a = attr if attr is not None else edge_attributes(g)[0] if edge_attributes(g) else None
        used_attr = used_attr or a
        m = graph_matrix(g, a, names)
        missing = missing or bool(np.isnan(m).any())
        finite = m[np.isfinite(m)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        if lo < 0 < hi:
            cmap, bound = "RdBu_r", max(-lo, hi)
            lo, hi = -bound, bound
        else:
            cmap = "viridis"
        if hi == lo:
            hi = lo + 1e-12
        cm = matplotlib.colormaps[cmap].with_extremes(bad="#d9d9d9")
        im = ax.imshow(np.ma.masked_invalid(m), cmap=cm, vmin=lo, vmax=hi, interpolation="nearest", aspect="equal")
        ax.set_xticks(range(n), names, rotation=90, fontsize=size)
        ax.set_yticks(range(n), names, fontsize=size)
        ax.tick_params(length=2, pad=1.5)
        parts = [f"layer {g.graph['layer']}" if "layer" in g.graph else None,
                 f"order {g.graph['order']}" if "order" in g.graph else None,
                 str(g.graph["function"]) if "function" in g.graph else None,
                 f"row {g.graph['row']}" if "row" in g.graph else None]
        head = f"{g.graph.get('model', '')} \u00b7 " + ", ".join(p for p in parts if p)
        ax.set_title(f"{head}\n{a}", fontsize=10)
        if g.is_directed():
            ax.set_xlabel("source field j (edge j \u2192 i)", fontsize=9)
            ax.set_ylabel("target field i", fontsize=9)
        else:
            ax.set_xlabel("field", fontsize=9)
            ax.set_ylabel("field", fontsize=9)
        bar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03)
        bar.ax.tick_params(labelsize=8)
        bar.set_label(a, fontsize=9)
        bars.append(bar)
    if title is None:
        level = first.get("level")
        per = "function" if "function" in first and "layer" not in first else "layer"
        title = f"{first.get('model', 'model')}: {used_attr if attr is None else attr} per {per}"
        if level:
            title += f", {level} level"
        notes = ([f"mean over {first['rows']} rows"] if first.get("rows") else []) + (["grey: no edge"] if missing
                                                                                       else [])
        if notes:   # on a line of its own, so that a one-panel figure holds the title
            title += "\n" + "; ".join(notes)
    fig.suptitle(title, fontsize=11)
    return fig


def save_figure(fig, out, dpi: int = 150) -> Path:
    """Save ``fig`` to ``out`` (the format by its suffix, e.g. ``.png``; parent folders are created)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi)
    return out


def aim_panels(pair_graph: nx.MultiGraph) -> list[nx.Graph]:
    """The heat-map panels of an AIM model's order-2 graph (:func:`~fgraph.explain.gates.function_panels`).

    Raises:
        ConfigError: the graph has no edge (the model keeps no pair).
    """
    panels = function_panels(pair_graph)
    if not panels:
        raise ConfigError(f"the {pair_graph.graph.get('model', 'AIM')} model keeps no order-2 interaction, so there "
                          f"is no pair heat map to draw (its interactions: interaction_graph(model, order='all'))")
    return panels


def plot_heatmaps(model, data=None, level: str = "dataset", attr: str | None = None, out=None, *,
                  layer: int | None = None, encoder=None, rows: Sequence[int] | None = None, dpi: int = 150):
    """Heat maps of a model's learned edge weights: per layer, a field x field matrix (the GraphFM paper's
    Figure 4), for every model :func:`~fgraph.explain.interaction_graph` reads.

    ``data``, ``level``, ``layer``, ``encoder`` and ``rows`` are those of
    :func:`~fgraph.explain.interaction_graph`; entry ``[i, j]`` is the weight of edge ``j -> i`` (a symmetric
    matrix for AFM and the IFM family), grey where there is no edge. At instance level each row gets a row of
    panels (at most :data:`MAX_PANEL_ROWS`).

    AIM: one panel per interaction function, its order-2 gates ``alpha`` (a symmetric matrix, grey where the
    pair is not kept with that function; :func:`~fgraph.explain.gates.function_panels`); higher orders are not
    drawn. Data-set level only, and no ``layer``.

    Args:
        attr: the edge attribute to draw (default: the layer's first, e.g. GraphFM ``coefficient``, Fi-GNN and
            FIVES ``weight``, AFM ``weight``); per head: ``alpha_head0``, ...
        out: also save the figure there (e.g. ``heatmaps.png``).
        dpi: of the saved file.

    Returns:
        the ``matplotlib.figure.Figure``: one panel per graph, then one colour bar per panel.

    Raises:
        ImportError: matplotlib is not installed (``pip install 'fgraph[plot]'``).
        ConfigError: ``attr`` is no edge attribute of the graphs, an AIM model that keeps no pair, and the errors
            of ``interaction_graph``.
    """
    _matplotlib()
    graphs = interaction_graph(model, data, level=level, layer=layer, encoder=encoder, rows=rows,
                               **({"order": 2} if has_gates(model) else {}))
    if has_gates(model):
        graphs = aim_panels(graphs)
    fig = heatmap_figure(graphs, attr, names=list(model.space.names))
    if out is not None:
        save_figure(fig, out, dpi)
    return fig


__all__ = ["plot_heatmaps", "heatmap_figure", "graph_matrix", "edge_attributes", "save_figure", "MAX_PANEL_ROWS"]
