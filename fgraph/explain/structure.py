"""One entry point for every model that learns an interaction structure: :func:`interaction_graph`.

Three protocols tell what a model learned, and each is read here by a small *reader* that turns it into
dense field x field tensors per layer (:class:`LayerWeights`):

* graph models (GraphFM, Fi-GNN and their "+" variants): :meth:`~fgraph.models.FieldGraphModel.edge_records`,
  per row and layer;
* FIVES (and FIVES+): :meth:`~fgraph.models.FIVES.adjacency_weights`, one global adjacency per order;
* AFM and the IFM family (IFM, INN, DeepIFM): :meth:`~fgraph.models.AttentivePairModel.pair_weights`, per
  row and pair, plus the pair attributes that do not depend on the row.

AIM's gated interactions (:meth:`~fgraph.models.AIM.gate_weights`) are of any order and global, so they are no
field x field tensors: :mod:`fgraph.explain.gates` builds their graphs, and :func:`interaction_graph` hands
over to it.

From there one code path averages (data-set level) or keeps the rows (instance level) and builds the graphs
(:func:`fgraph.explain._build.build_graph`). A new model family needs one more reader.

Graphs keep to what GraphML and node-link JSON can hold -- plain ``int``/``float``/``str`` attributes, one
per attention head -- so that :func:`write_graphs` and :func:`read_graph` give back equal graphs.
"""
from __future__ import annotations

import inspect
import json
from dataclasses import dataclass, field as dc_field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import networkx as nx
import numpy as np
import torch
from torch import Tensor

from ..data.loader import FieldLoader, TabularBatch
from ..data.space import EncodedData
from ..errors import ConfigError
from ._build import build_graph, head_columns, node_values
from .gates import ALL_ORDERS, aim_graph, check_order, has_gates

#: The levels of :func:`interaction_graph`.
LEVELS = ("instance", "dataset")

#: The file formats of :func:`write_graphs`, and their suffixes.
GRAPH_FORMATS = {"graphml": ".graphml", "json": ".json"}

#: Paper names of the model classes, for titles.
_LABELS = {"FiGNN": "Fi-GNN", "FiGNNPlus": "Fi-GNN+", "GraphFMPlus": "GraphFM+", "FIVESPlus": "FIVES+"}


# The node-link JSON's edge list is called "edges": networkx >= 3.4 takes that as ``edges=``, older versions
# (3.0-3.3) as ``link=``.
_EDGES_KEY = ({"edges": "edges"} if "edges" in inspect.signature(nx.node_link_data).parameters
              else {"link": "edges"})


def model_label(model) -> str:
    """The model's name as the papers write it (``GraphFM``, ``Fi-GNN+``, ``FIVES``, ``AFM`` ...)."""
    name = type(model).__name__
    return _LABELS.get(name, name[:-4] + "+" if name.endswith("Plus") else name)


@dataclass
class LayerWeights:
    """What one layer of a model weighed its field pairs with, for a batch of rows, as dense tensors.

    Attributes:
        mask: ``(B or 1, n, n)`` bool. Directed: ``mask[b, i, j]`` is the edge ``j -> i`` (field ``i`` used
            field ``j``). Undirected: the pair ``{i, j}``, stored at ``i < j`` only.
        attrs: ``{name: (B or 1, n, n) or (B or 1, n, n, H)}``, the model's edge tensors at the same places
            (the first one is the edge's weight); a leading 1 means the same for every row.
        graph: the layer's own graph attributes (FIVES: ``order`` and ``threshold``).
    """

    mask: Tensor
    attrs: dict[str, Tensor]
    graph: dict = dc_field(default_factory=dict)


# -- readers: one per protocol ------------------------------------------------------------------------------
class _Reader:
    """Reads one protocol. ``layers(batch)``: per-row weights; ``static()``: the row-independent ones (None if
    the model has none); ``rows_matter``: whether the weights depend on the row."""

    directed = True
    rows_matter = True

    def __init__(self, model):
        self.model = model
        self.names = list(model.space.names)

    def layers(self, batch: TabularBatch) -> list[LayerWeights]:
        raise NotImplementedError

    def static(self) -> list[LayerWeights] | None:
        return None


def _dense_edges(adj, value: Tensor) -> Tensor:
    """Edge tensor ``(E or n*k, ...)`` in ``adj``'s flat order -> ``(B, n, n, ...)``, ``[b, i, j]`` = edge
    ``j -> i`` (0 where there is none)."""
    B, n, k = adj.shape
    rest = tuple(value.shape[1:])
    v = value.detach().reshape(-1, n, k, *rest).expand(B, n, k, *rest)
    index = adj.local_index().expand(B, n, k).reshape(B, n, k, *([1] * len(rest))).expand(B, n, k, *rest)
    out = torch.zeros(B, n, n, *rest, dtype=v.dtype, device=v.device)
    return out.scatter_add_(2, index, v)


class _RecordReader(_Reader):
    """Graph models: :meth:`~fgraph.models.FieldGraphModel.edge_records`."""

    def layers(self, batch):
        out = []
        for rec in self.model.edge_records(batch):
            adj = rec.adj
            B, n, _ = adj.shape
            mask = adj.mask().expand(B, n, n).contiguous()
            out.append(LayerWeights(mask, {name: _dense_edges(adj, v) for name, v in rec.edge_attrs.items()}))
        return out


class _AdjacencyReader(_Reader):
    """FIVES: :meth:`~fgraph.models.FIVES.adjacency_weights`; the same adjacency for every row."""

    rows_matter = False

    def static(self):
        learned = self.model.adjacency_weights()
        out = []
        for k, (soft, prop) in enumerate(zip(learned["soft"], learned["propagation"])):
            # [i, j]: field i crosses what it carries with field j, the message j -> i; exact zeros (the masked
            # diagonal, a row whose previous order kept nothing) are no edge of the model's.
            out.append(LayerWeights((soft > 0).unsqueeze(0), {"weight": prop.unsqueeze(0), "soft": soft.unsqueeze(0)},
                                    {"order": k + 2, "threshold": float(learned["threshold"][k])}))
        return out

    def layers(self, batch):
        return self.static()


class _PairReader(_Reader):
    """AFM and the IFM family: :meth:`~fgraph.models.AttentivePairModel.pair_weights`."""

    directed = False

    def _weights(self, found: dict) -> list[LayerWeights]:
        n = len(self.names)
        i, j = found.pop("pairs")
        mask = torch.zeros(1, n, n, dtype=torch.bool, device=i.device)
        mask[0, i, j] = True
        attrs = {}
        for name, value in found.items():       # weight (B, P) first, then the row-independent (P,)
            value = value if value.dim() == 2 else value.unsqueeze(0)
            dense = value.new_zeros(value.size(0), n, n)
            dense[:, i, j] = value
            attrs[name] = dense
        return [LayerWeights(mask, attrs)]

    def layers(self, batch):
        return self._weights(self.model.pair_weights(batch))

    def static(self):
        found = self.model.pair_weights()
        return self._weights(found) if len(found) > 1 else None


_PROTOCOLS = (("adjacency_weights", _AdjacencyReader), ("edge_records", _RecordReader), ("pair_weights", _PairReader))
#: AIM's protocol: read by fgraph.explain.gates, not by a reader of dense field x field tensors.
_GATES = "gate_weights"


def models_with_structure() -> list[str]:
    """The registered models :func:`interaction_graph` can read (those with one of the four protocols)."""
    from ..models import MODELS

    methods = [m for m, _ in _PROTOCOLS] + [_GATES]
    return [name for name, cls in MODELS.items() if any(callable(getattr(cls, m, None)) for m in methods)]


def reader_for(model, what: str = "interaction_graph()") -> _Reader:
    """The reader of ``model``'s protocol; a TypeError naming the models that have one otherwise."""
    for method, reader in _PROTOCOLS:
        if callable(getattr(model, method, None)):
            return reader(model)
    raise TypeError(f"{what} reads the interaction structure a model learned, and a {type(model).__name__} "
                    f"learns none (it has no edge_records(), adjacency_weights(), pair_weights() or "
                    f"gate_weights()); the models that learn one are {', '.join(models_with_structure())}")


# -- arguments ------------------------------------------------------------------------------------------------
def check_level(level) -> str:
    if level not in LEVELS:
        raise ConfigError(f"level must be one of {list(LEVELS)}, got {level!r}: 'instance' gives one graph per row "
                          f"and layer, 'dataset' one graph per layer averaged over the rows")
    return level


def check_gate_level(model, level) -> None:
    """Refuse the instance level for a model whose gates are global (AIM), saying what it does give."""
    if level == "instance":
        raise ConfigError(f"the {model_label(model)} model's gates (alpha) are global, the same for every row, so it "
                          f"has no instance-level graphs: use level='dataset' (no data or rows needed), with "
                          f"order=2 for the pair graph (an nx.MultiGraph, one edge per pair and function) or "
                          f"order={ALL_ORDERS!r} (the default) for the bipartite graph of fields and interactions "
                          f"of every order")


def check_rows(rows) -> list[int] | None:
    """``rows`` as a list of distinct row positions (None: all rows)."""
    if rows is None:
        return None
    if isinstance(rows, (Tensor, np.ndarray)):
        rows = rows.tolist()
    if isinstance(rows, (int, np.integer)) and not isinstance(rows, bool):
        rows = [int(rows)]
    if isinstance(rows, (str, bytes)) or not isinstance(rows, Iterable):
        raise ConfigError(f"rows must be a list of row positions (e.g. [0, 5]), got {rows!r}")
    rows = list(rows)
    bad = [r for r in rows if isinstance(r, bool) or not isinstance(r, (int, np.integer)) or r < 0]
    if bad:
        raise ConfigError(f"rows must be row positions (integers >= 0), got {bad[0]!r} in {rows}")
    if not rows:
        raise ConfigError("rows is empty: give at least one row position, or rows=None for all rows")
    rows = [int(r) for r in rows]
    twice = sorted({r for r in rows if rows.count(r) > 1})
    if twice:
        raise ConfigError(f"rows lists row(s) {twice} more than once")
    return rows


def _out_of_range(rows: list[int], n: int) -> ConfigError:
    bad = [r for r in rows if r >= n]
    return ConfigError(f"rows {bad} out of range: the data has {n} rows (positions 0..{n - 1})")


def _take(batch: TabularBatch, index: list[int]) -> TabularBatch:
    idx = torch.tensor(index, dtype=torch.long, device=batch.ids.device)
    pick = lambda t: None if t is None else t.index_select(0, idx)  # noqa: E731
    return TabularBatch(pick(batch.ids), pick(batch.values), pick(batch.bags), pick(batch.y), batch.space)


def iter_rows(data, rows: list[int] | None, batch_size: int = 4096) -> Iterator[tuple[list[int], TabularBatch]]:
    """``(row positions, batch)`` over the rows of ``data`` (all, or ``rows`` in their order)."""
    if isinstance(data, EncodedData):
        if rows is not None and max(rows) >= len(data):
            raise _out_of_range(rows, len(data))
        chosen = data if rows is None else data.take(torch.tensor(rows, dtype=torch.long))
        start = 0
        for batch in FieldLoader(chosen, batch_size):
            stop = start + batch.num_rows
            yield (list(range(start, stop)) if rows is None else rows[start:stop]), batch
            start = stop
        return
    if isinstance(data, TabularBatch):
        if rows is None:
            yield list(range(data.num_rows)), data
            return
        if max(rows) >= data.num_rows:
            raise _out_of_range(rows, data.num_rows)
        yield rows, _take(data, rows)
        return
    if isinstance(data, (str, bytes)) or not isinstance(data, Iterable) or hasattr(data, "columns"):
        raise TypeError(f"data must be a TabularBatch, an EncodedData (FieldEncoder.transform) or an iterable of "
                        f"TabularBatch (a FieldLoader), got {type(data).__name__}")
    wanted = None if rows is None else set(rows)
    start = 0
    for batch in data:
        if not isinstance(batch, TabularBatch):
            raise TypeError(f"data must yield TabularBatch objects, got a {type(batch).__name__} "
                            f"(fgraph.graph.graph_batches yields PyG batches: pass the FieldLoader itself)")
        stop = start + batch.num_rows
        if wanted is None:
            yield list(range(start, stop)), batch
        else:
            here = [r for r in range(start, stop) if r in wanted]
            if here:
                yield here, _take(batch, [r - start for r in here])
        start = stop
    if rows is not None and max(rows) >= start:
        raise _out_of_range(rows, start)


def _on_device(model, batch: TabularBatch) -> TabularBatch:
    param = next(iter(model.parameters()), None)
    if param is not None and batch.ids.device != param.device:
        return batch.to(param.device)
    return batch


def _check_space(model, batch: TabularBatch) -> None:
    if batch.space is not model.space:
        diff = model.space.describe_difference(batch.space)
        if diff:
            raise ConfigError(f"the data was not encoded with the encoder of this {model_label(model)} model: "
                              f"{diff}; encode it with the model's FieldEncoder")


def _pick_layer(layer, num_layers: int, model) -> int | None:
    if layer is None:
        return None
    if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)) or not -num_layers <= layer < num_layers:
        raise ConfigError(f"layer {layer!r} is out of range: this {model_label(model)} model has {num_layers} "
                          f"layer(s), numbered 0..{num_layers - 1} (or -1 for the last); layer=None gives all")
    return int(layer) % num_layers


# -- graphs from dense tensors --------------------------------------------------------------------------------
def _graph(names, weights: LayerWeights, b: int, directed: bool, values, graph: dict) -> nx.Graph:
    """Row ``b`` of a layer's dense tensors (row 0 of shared ones) as a graph: the one builder of all families."""
    at = lambda t: t[b if t.size(0) > 1 else 0]  # noqa: E731
    i, j = at(weights.mask).nonzero(as_tuple=True)
    edges = list(zip(j.tolist(), i.tolist())) if directed else list(zip(i.tolist(), j.tolist()))
    columns = head_columns({name: at(t)[i, j] for name, t in weights.attrs.items()})
    return build_graph(names, edges, columns, directed=directed, values=values, graph={**graph, **weights.graph})


@torch.no_grad()
def _dataset_weights(reader: _Reader, data, rows) -> tuple[list[LayerWeights], int | None]:
    """Per layer, the mean over the rows of every per-row tensor (row-independent ones kept as they are) and the
    union of the rows' edges; and the number of rows averaged (None when nothing depends on the row)."""
    if data is None or not reader.rows_matter:
        static = reader.static()
        if static is None:
            raise ConfigError(f"the {model_label(reader.model)} model's interaction weights depend on the row: pass "
                              f"data (an EncodedData, a TabularBatch or a FieldLoader) to average them over")
        return static, None
    sums, fixed, masks, count = None, None, None, 0
    for _, batch in iter_rows(data, rows):
        _check_space(reader.model, batch)
        layers = reader.layers(_on_device(reader.model, batch))
        B = batch.num_rows
        if sums is None:
            sums = [{} for _ in layers]
            fixed = [{} for _ in layers]
            masks = [None for _ in layers]
        for k, lw in enumerate(layers):
            m = lw.mask.any(0, keepdim=True)
            masks[k] = m if masks[k] is None else masks[k] | m
            for name, t in lw.attrs.items():
                if t.size(0) == 1 and B > 1 or name in fixed[k]:
                    fixed[k][name] = t
                else:
                    sums[k][name] = sums[k].get(name, 0) + t.double().sum(0, keepdim=True)
        count += B
    if not count:
        raise ConfigError("the data holds no rows to average the interaction weights over")
    out = []
    for k, lw in enumerate(layers):
        attrs = {name: (fixed[k][name] if name in fixed[k] else sums[k][name] / count) for name in lw.attrs}
        out.append(LayerWeights(masks[k], attrs, lw.graph))
    return out, count


def _gate_graph(model, level, layer, order) -> nx.Graph:
    """:func:`interaction_graph` of a model with global gated interactions (AIM): one graph, of ``order``."""
    check_gate_level(model, level)
    if layer is not None:
        raise ConfigError(f"the {model_label(model)} model has no layers: leave layer=None and choose its "
                          f"interactions with order= (2: the pair graph, 3 or more: that order, {ALL_ORDERS!r}: "
                          f"every order)")
    return aim_graph(model, check_order(order))


@torch.no_grad()
def interaction_graph(model, data=None, level: str = "dataset", layer: int | None = None, encoder=None,
                      rows: Sequence[int] | None = None, order: int | str | None = None):
    r"""The interaction structure a model learned, as networkx graphs over its fields; the same call for
    every model that learns one (GraphFM, Fi-GNN, FIVES and their "+" variants, AFM, IFM, INN, DeepIFM, AIM).

    **Nodes** are named by field (the model's field order) and, at instance level, carry the row's ``value``:
    decoded with the fitted ``encoder`` (a string; a multi-valued field's tokens joined by ``|``), otherwise
    the id (an int).

    **Edges** carry only what the model computed, under the model's own names, one attribute per attention
    head (``alpha_head0``, ``alpha_head1``, ...); the first attribute is the edge's weight:

    * graph models: an ``nx.DiGraph`` per layer with the edges the layer used, ``j -> i`` meaning that field
      ``i``'s update read field ``j`` (:meth:`~fgraph.models.FieldGraphModel.edge_records`): GraphFM
      ``coefficient``, ``weight`` (the kept score, with edge selection) and ``alpha_head<h>``; Fi-GNN
      ``weight``;
    * FIVES: an ``nx.DiGraph`` per order ``2..K`` (layer ``k`` is order ``k + 2``) from
      :meth:`~fgraph.models.FIVES.adjacency_weights`: edge ``j -> i`` (the paper's "field ``i`` crosses with
      field ``j``") wherever the soft adjacency :math:`A_{ij}` is not zero, with ``weight`` (the entry the layer
      propagates with, as in its edge records) and ``soft`` (Eq. 7); graph attributes ``order`` and
      ``threshold``. The adjacency is global, so both levels give the same edges, and ``data`` is only read
      for the node values of the instance level;
    * AFM and the IFM family: one undirected ``nx.Graph`` (one layer) with an edge per pair the model pools
      over (:meth:`~fgraph.models.AttentivePairModel.pair_weights`): ``weight`` (the row's attention weight,
      0 for a pair that sampling left out) and the row-independent attributes (IFM: ``field_norm``).
    * AIM: its gates :math:`\alpha` are global (:meth:`~fgraph.models.AIM.gate_weights`), so it has the
      data-set level only (``data``, ``rows`` and ``encoder`` are not read) and no layers; ``order`` picks the
      graph, one graph each (see :func:`fgraph.explain.gates.interactions_to_graph`). It holds the kept
      interactions: every kept entry and each searched one whose :math:`\alpha` is not zero.

      - ``order=2``: an undirected ``nx.MultiGraph`` over the fields, one edge per kept pair and function,
        keyed by the function's name, with ``alpha``, ``function`` and ``searched`` (a bool);
      - ``order="all"`` (the default, also ``None``) or ``p > 2`` (that order only): a bipartite ``nx.Graph``:
        the fields (``bipartite=0``, ``kind="field"``) and one node per kept interaction and function, named
        like ``"f6|f7|f8:outer"`` (``bipartite=1``, ``kind="interaction"``, ``order``, ``function``, ``alpha``,
        ``searched``, ``fields="f6|f7|f8"``), linked to each of its fields.

      Graph attributes ``model``, ``level``, ``order``, ``stage`` and ``base``.

    At **data-set level** every per-row attribute is the mean over the rows, counting 0 for a row whose layer
    did not use the edge, and an edge is present if some row used it. Row-independent attributes are kept as
    they are; with ``data=None`` they are all there is (FIVES: everything; the IFM family: ``field_norm``;
    AFM: nothing, so it needs ``data``).

    Graph attributes: ``model`` (its name), ``level``, ``layer``; ``row`` (instance level, the row's position in
    ``data``) or ``rows`` (data-set level, how many rows were averaged, when any were); FIVES's ``order`` and
    ``threshold``. Everything is a plain ``int``/``float``/``str``, so :func:`write_graphs` can write it.
    Computed in evaluation mode, without gradients (the model's mode is restored).

    Args:
        model: a trained model with an interaction structure.
        data: the rows: an :class:`~fgraph.data.EncodedData`, a :class:`~fgraph.data.TabularBatch` or an
            iterable of batches (a :class:`~fgraph.data.FieldLoader`), encoded with the model's encoder. Row
            positions count from 0 over all of it. Required at instance level; at data-set level optional for
            models whose weights do not all depend on the row (see above).
        level: ``"instance"`` (a graph per row and layer) or ``"dataset"`` (a graph per layer).
        layer: one layer (``0..L-1``, negative from the end) instead of all of them.
        encoder: the model's fitted :class:`~fgraph.data.FieldEncoder`, to decode the node values.
        rows: the row positions to read (distinct; default: all rows of ``data``), at either level.
        order: AIM only: ``2``, an order above 2 or ``"all"`` (default); see above.

    Returns:
        * ``level="instance"``: ``graphs[r][l]``, a list (one per row, in the order of ``rows``) of lists (one
          per layer); with ``layer``: ``graphs[r]``, one graph per row.
        * ``level="dataset"``: ``graphs[l]``, one graph per layer; with ``layer``: that graph.
        * AIM: one graph (``level="dataset"``).

    Raises:
        TypeError: a model without an interaction structure (FM, LR), or ``data`` of another type.
        ConfigError: a bad ``level``, ``layer``, ``order`` or ``rows`` (out of range, repeated), data from another
            encoder, no data where the weights depend on the row, ``order`` for a model other than AIM, or the
            instance level or a ``layer`` for AIM.
    """
    if has_gates(model):
        check_rows(rows)                        # checked, not read: the gates are the same for every row
        return _gate_graph(model, check_level(level), layer, order)
    reader = reader_for(model)
    check_level(level)
    rows = check_rows(rows)
    if order is not None:
        raise ConfigError(f"order= chooses the interactions of an AIM model by order; the {model_label(model)} "
                          f"model's graphs are per layer: choose one with layer="
                          + (" (layer k is order k + 2)" if callable(getattr(model, "adjacency_weights", None))
                             else ""))
    names = reader.names
    base = {"model": model_label(model), "level": level}
    if level == "dataset":
        weights, count = _dataset_weights(reader, data, rows)
        chosen = _pick_layer(layer, len(weights), model)
        if count is not None:
            base["rows"] = count
        graphs = [_graph(names, lw, 0, reader.directed, None, {**base, "layer": k})
                  for k, lw in enumerate(weights) if chosen is None or k == chosen]
        return graphs[0] if chosen is not None else graphs
    if data is None:
        raise ConfigError(f"instance-level graphs of the {model_label(model)} model need the rows: pass data (an "
                          f"EncodedData, a TabularBatch or a FieldLoader) and, to pick some, rows=")
    static = None if reader.rows_matter else reader.static()
    chosen, out = None, {}
    for positions, batch in iter_rows(data, rows):
        _check_space(model, batch)
        layers = static if static is not None else reader.layers(_on_device(model, batch))
        if chosen is None and layer is not None:
            chosen = _pick_layer(layer, len(layers), model)
        values = node_values(batch, names, encoder)
        for b, r in enumerate(positions):
            per_layer = [_graph(names, lw, b, reader.directed, values[b], {**base, "layer": k, "row": r})
                         for k, lw in enumerate(layers) if chosen is None or k == chosen]
            out[r] = per_layer[0] if chosen is not None else per_layer
    if not out:
        raise ConfigError("the data holds no rows to draw interaction graphs for")
    return list(out.values()) if rows is None else [out[r] for r in rows]    # a loader gives them in its order


# -- files ----------------------------------------------------------------------------------------------------
#: The graph attribute that marks a multigraph's GraphML file (see :func:`write_graphs`).
_MULTIGRAPH = "fgraph_multigraph"


def _flatten(graphs) -> list[nx.Graph]:
    if isinstance(graphs, nx.Graph):
        return [graphs]
    out = []
    for g in graphs:
        out.extend(_flatten(g))
    return out


def graph_file_stem(graph: nx.Graph, stem: str, position: int) -> str:
    """``<stem>_row<r>_layer<l>`` (instance level) or ``<stem>_layer<l>``, from the graph's attributes;
    ``<stem>_order<o>`` for a graph with an ``order`` but no ``layer`` (AIM's: ``_order2``, ``_orderall``); the
    graph's position in the list when it has none of them."""
    parts = [stem]
    if "row" in graph.graph:
        parts.append(f"row{graph.graph['row']}")
    if "layer" in graph.graph:
        parts.append(f"layer{graph.graph['layer']}")
    elif "order" in graph.graph:
        parts.append(f"order{graph.graph['order']}")
    return "_".join(parts) if len(parts) > 1 else f"{stem}_{position}"


def _check_formats(formats) -> tuple[str, ...]:
    formats = (formats,) if isinstance(formats, str) else tuple(formats)
    bad = [f for f in formats if f not in GRAPH_FORMATS]
    if bad or not formats:
        raise ConfigError(f"graph formats must be some of {list(GRAPH_FORMATS)}, got {list(formats)}")
    return formats


def write_graphs(graphs, out_dir, stem: str = "graph", formats: Sequence[str] = ("graphml", "json")) -> list[Path]:
    """Write graphs (one, a list, or the nested lists of :func:`interaction_graph`) to ``out_dir``.

    Each graph goes to ``<stem>_row<r>_layer<l>.<suffix>`` (``<stem>_layer<l>`` at data-set level, see
    :func:`graph_file_stem`), once per format: ``"graphml"`` (``nx.write_graphml``) and ``"json"`` (networkx
    node-link data, ``{"directed", "multigraph", "graph", "nodes", "edges"}``). :func:`read_graph` reads either
    back into an equal graph, multigraphs (AIM's order-2 graph) included: GraphML cannot tell a multigraph
    without parallel edges from a graph, so a multigraph's GraphML file carries the graph attribute
    ``fgraph_multigraph`` (true), which :func:`read_graph` reads and drops. ``out_dir`` is created if need be;
    existing files of the same names are replaced.

    Returns:
        the paths written, graph by graph, in the order of ``formats``.

    Raises:
        ConfigError: an unknown format, or two graphs that would go to the same file.
    """
    formats = _check_formats(formats)
    out_dir = Path(out_dir)
    flat = _flatten(graphs)
    stems = [graph_file_stem(g, stem, position) for position, g in enumerate(flat)]
    twice = next((name for k, name in enumerate(stems) if name in stems[:k]), None)
    if twice is not None:
        raise ConfigError(f"two graphs would both be written to {out_dir / twice}.*: give them distinct 'row' / "
                          f"'layer' graph attributes, or write them under different stems")
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for g, name in zip(flat, stems):
        for fmt in formats:
            path = out_dir / f"{name}{GRAPH_FORMATS[fmt]}"
            if fmt == "graphml":
                marked = g
                if g.is_multigraph():
                    marked = g.copy()
                    marked.graph[_MULTIGRAPH] = True
                nx.write_graphml(marked, path)
            else:
                path.write_text(json.dumps(nx.node_link_data(g, **_EDGES_KEY), indent=1), encoding="utf-8")
            written.append(path)
    return written


def read_graph(path) -> nx.Graph:
    """A graph written by :func:`write_graphs`, by its suffix (``.graphml`` or ``.json``).

    ``nx.read_graphml`` adds the empty graph attributes ``node_default`` and ``edge_default``; they are
    dropped, so that the graph read equals the graph written (``nx.utils.graphs_equal``). A multigraph's file
    (graph attribute ``fgraph_multigraph``) is read as one, with its edge keys.
    """
    path = Path(path)
    if path.suffix == ".graphml":
        g = nx.read_graphml(path)
        if g.graph.get(_MULTIGRAPH) is True:
            g = nx.read_graphml(path, force_multigraph=True)
            del g.graph[_MULTIGRAPH]
        for key in ("node_default", "edge_default"):
            if g.graph.get(key) == {}:
                del g.graph[key]
        return g
    if path.suffix == ".json":
        return nx.node_link_graph(json.loads(path.read_text(encoding="utf-8")), **_EDGES_KEY)
    raise ConfigError(f"cannot tell the format of {path}: expected a .graphml or .json file")


__all__ = ["interaction_graph", "write_graphs", "read_graph", "LayerWeights", "LEVELS", "GRAPH_FORMATS",
           "models_with_structure", "model_label", "check_gate_level"]
