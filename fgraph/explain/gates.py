"""AIM's gated interactions (Zhu et al., Section 3) as networkx graphs and tables.

Read off the model's one protocol, :meth:`~fgraph.models.AIM.gate_weights`: the interaction-function pairs
``(fields, function)`` it keeps and searches, with their gates :math:`\\alpha`, and the dimension gates
:math:`\\beta`. The gates are global (the same for every row), so there is one graph per order, not one per row:

* order 2: an undirected ``nx.MultiGraph`` over the fields, one edge per kept pair and function (the edge's key
  is the function's name), since a pair may be kept with several functions;
* every order (or one order above 2): a bipartite ``nx.Graph`` of the fields and the kept interactions, each
  interaction linked to the fields it crosses.

:func:`interactions_to_graph` builds both from plain data (the ``interactions`` of :meth:`~fgraph.models.AIM.found`
or of an AIM run's ``search.json`` have the same shape), :func:`function_panels` splits the pair graph into one
graph per function (what the heat maps draw).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import networkx as nx
import numpy as np
import pandas as pd

from ..errors import ConfigError
from ..nn.hyperedge_interaction import FUNCTIONS
from ._build import plain
from .graphs import needs_protocol

#: The ``order`` that asks for the bipartite graph of every order.
ALL_ORDERS = "all"
#: Joins the field names of an interaction (its ``fields`` attribute, and its node's name).
FIELD_SEP = "|"

_AIM_ONLY = "it is for AIM, whose gates choose its interactions (any order) and their functions"


def has_gates(model) -> bool:
    """Whether ``model`` hands out gated interactions (AIM's :meth:`~fgraph.models.AIM.gate_weights`)."""
    return callable(getattr(model, "gate_weights", None))


def check_order(order):
    """``order`` as ``2``, an int above 2, or :data:`ALL_ORDERS` (None means every order)."""
    if order is None or order == ALL_ORDERS:
        return ALL_ORDERS
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or order < 2:
        raise ConfigError(f"order must be an interaction order (an int >= 2: 2 gives the pair graph, 3 or more that "
                          f"order's interactions) or {ALL_ORDERS!r} (every order, the default), got {order!r}")
    return int(order)


def aim_interactions(model) -> list[dict]:
    """The interactions an AIM model keeps, in :meth:`~fgraph.models.AIM.gate_weights` order: every kept entry
    (whatever its gate), then every searched one whose gate :math:`\\alpha` is not exactly zero (GRDA sets the
    pruned ones to zero).

    Returns:
        ``[{"fields": (names...), "order", "function", "alpha", "searched"}, ...]``, plain Python values.
    """
    needs_protocol(model, "gate_weights", "aim_interactions()", _AIM_ONLY)
    w = model.gate_weights()
    names = list(model.space.names)
    out = []
    for entries, alpha, searched in ((w["kept"], w["kept_alpha"], False), (w["searched"], w["searched_alpha"], True)):
        for (fields, function), a in zip(entries, alpha.detach().cpu().tolist()):
            if searched and a == 0.0:
                continue
            out.append({"fields": tuple(names[int(i)] for i in fields), "order": len(fields),
                        "function": str(function), "alpha": float(a), "searched": searched})
    return out


def interaction_node(fields: Sequence[str], function: str) -> str:
    """The name of an interaction's node in the bipartite graph: ``"f6|f7|f8:outer"``."""
    return f"{FIELD_SEP.join(fields)}:{function}"


def interactions_to_graph(names: Sequence[str], interactions: Sequence[Mapping], order=ALL_ORDERS,
                          graph: Mapping | None = None) -> nx.Graph:
    """A graph of gated interactions over the fields ``names`` (nodes named by field, in this order).

    ``interactions``: ``{"fields": [names], "function", "alpha", "searched"}`` each (as :func:`aim_interactions`,
    :meth:`~fgraph.models.AIM.found` or ``search.json``'s ``found`` give them).

    * ``order=2``: an undirected ``nx.MultiGraph``, one edge per order-2 interaction, keyed by its function, with
      ``alpha`` (float), ``function`` (str) and ``searched`` (bool);
    * ``order="all"`` (or ``p > 2``: only that order): a bipartite ``nx.Graph``. Field nodes: ``bipartite=0``,
      ``kind="field"``. One node per interaction (named by :func:`interaction_node`): ``bipartite=1``,
      ``kind="interaction"``, ``order``, ``function``, ``alpha``, ``searched`` and ``fields`` (the names joined
      by ``|``), linked to each of its fields (edges without attributes).

    Graph attributes: ``graph``, then ``order``. Every attribute is a plain scalar, so GraphML holds it.

    Raises:
        ValueError: an interaction names a field not in ``names``, or is listed twice.
    """
    order = check_order(order)
    names = list(names)
    known = set(names)
    rows = []
    for e in interactions:
        fields = tuple(str(f) for f in e["fields"])
        missing = [f for f in fields if f not in known]
        if missing:
            raise ValueError(f"interaction {list(fields)} names field(s) {missing} that are not among {names}")
        rows.append((fields, str(e["function"]), float(e["alpha"]), bool(e.get("searched", False))))
    seen = set()
    for fields, function, _, _ in rows:
        key = (frozenset(fields), function)
        if key in seen:
            raise ValueError(f"interaction {list(fields)} with function {function!r} is listed twice")
        seen.add(key)
    attrs = {**{k: plain(v) for k, v in (graph or {}).items()}, "order": order}
    if order == 2:
        g = nx.MultiGraph(**attrs)
        g.add_nodes_from(names)
        for fields, function, alpha, searched in rows:
            if len(fields) == 2:
                g.add_edge(fields[0], fields[1], key=function, alpha=alpha, function=function, searched=searched)
        return g
    g = nx.Graph(**attrs)
    g.add_nodes_from((name, {"bipartite": 0, "kind": "field"}) for name in names)
    for fields, function, alpha, searched in rows:
        if order != ALL_ORDERS and len(fields) != order:
            continue
        node = interaction_node(fields, function)
        if node in known:
            raise ValueError(f"the node of interaction {list(fields)} with {function!r} would be named {node!r}, "
                             f"like a field")
        g.add_node(node, bipartite=1, kind="interaction", order=len(fields), function=function, alpha=alpha,
                   searched=searched, fields=FIELD_SEP.join(fields))
        g.add_edges_from((node, f) for f in fields)
    return g


def aim_graph(model, order=ALL_ORDERS, graph: Mapping | None = None) -> nx.Graph:
    """:func:`interactions_to_graph` of :func:`aim_interactions`, with graph attributes ``model`` (``"AIM"``),
    ``level`` (``"dataset"``), ``stage`` and ``base`` (the model's), then ``graph``; what
    :func:`~fgraph.explain.interaction_graph` returns for an AIM model."""
    needs_protocol(model, "gate_weights", "aim_graph()", _AIM_ONLY)
    attrs = {"model": type(model).__name__, "level": "dataset"}
    for key in ("stage", "base"):
        if isinstance(getattr(model, key, None), str):
            attrs[key] = getattr(model, key)
    return interactions_to_graph(model.space.names, aim_interactions(model), order, {**attrs, **(graph or {})})


def function_panels(graph: nx.MultiGraph) -> list[nx.Graph]:
    """The order-2 graph (``order=2``) split by function: one undirected ``nx.Graph`` per function that has an
    edge (in the order of :data:`fgraph.nn.hyperedge_interaction.FUNCTIONS`), over all the fields, with that
    function's edges (``alpha``, then ``searched``) and the graph attributes plus ``function``; what the heat
    maps draw, a panel each."""
    if not graph.is_multigraph():
        raise ConfigError("function_panels() splits the order-2 graph of an AIM model (an nx.MultiGraph keyed by "
                          "function, interaction_graph(model, order=2))")
    functions = list(dict.fromkeys(d.get("function", k) for _, _, k, d in graph.edges(keys=True, data=True)))
    functions.sort(key=lambda f: (FUNCTIONS.index(f) if f in FUNCTIONS else len(FUNCTIONS), str(f)))
    out = []
    for function in functions:
        g = nx.Graph(**{**graph.graph, "function": function})
        g.add_nodes_from(graph.nodes(data=True))
        for u, v, k, d in graph.edges(keys=True, data=True):
            if d.get("function", k) == function:
                g.add_edge(u, v, **{a: x for a, x in d.items() if a != "function"})
        out.append(g)
    return out


def aim_interaction_table(model) -> pd.DataFrame:
    """The kept interactions (:func:`aim_interactions`) as a table: by order, then strongest gate
    (:math:`|\\alpha|`) first. Columns ``fields`` (names joined by ``|``), ``order``, ``function``, ``alpha``,
    ``searched``; empty (with these columns) when nothing is kept."""
    found = sorted(aim_interactions(model), key=lambda e: (e["order"], -abs(e["alpha"])))
    return pd.DataFrame({"fields": pd.Series([FIELD_SEP.join(e["fields"]) for e in found], dtype=object),
                         "order": np.array([e["order"] for e in found], dtype=np.int64),
                         "function": pd.Series([e["function"] for e in found], dtype=object),
                         "alpha": np.array([e["alpha"] for e in found], dtype=np.float64),
                         "searched": np.array([e["searched"] for e in found], dtype=bool)})


def search_tables(search: Mapping | None = None, model=None) -> dict[str, pd.DataFrame]:
    """What an AIM search kept, as tables: ``kept_ratio`` (columns ``order``, ``searched``, ``kept``, ``ratio``:
    per order, how many interaction-function pairs were searched and how many kept) and ``dims_kept`` (``field``,
    ``dims_kept``: the embedding coordinates each field keeps).

    Read from ``search`` (an AIM run's ``search.json``, :meth:`~fgraph.train.RunDirectory.read_search`: its
    ``kept_ratio`` and ``dims_kept``); without it, from ``model``'s own gates (a search stage: its searched
    entries and the non-zero ones, and with a dimension search the non-zero :math:`\\beta` per field). A table
    neither has is left out.
    """
    out = {}
    ratio, dims = None, None
    if search:
        if isinstance(search.get("kept_ratio"), Mapping):
            ratio = {int(p): (int(r.get("searched", 0)), int(r.get("kept", 0)))
                     for p, r in search["kept_ratio"].items()}
        if isinstance(search.get("dims_kept"), Mapping):
            dims = {str(f): int(n) for f, n in search["dims_kept"].items()}
    elif model is not None and has_gates(model):
        w = model.gate_weights()
        counts: dict[int, list[int]] = {}
        for (fields, _), a in zip(w["searched"], w["searched_alpha"].tolist()):
            c = counts.setdefault(len(fields), [0, 0])
            c[0] += 1
            c[1] += a != 0.0
        ratio = {p: (c[0], c[1]) for p, c in counts.items()} or None
        if w.get("beta") is not None:
            dims = {name: int(n) for name, n in zip(model.space.names, (w["beta"] != 0).sum(1).tolist())}
    if ratio:
        orders = sorted(ratio)
        out["kept_ratio"] = pd.DataFrame({
            "order": np.array(orders, dtype=np.int64),
            "searched": np.array([ratio[p][0] for p in orders], dtype=np.int64),
            "kept": np.array([ratio[p][1] for p in orders], dtype=np.int64),
            "ratio": np.array([ratio[p][1] / ratio[p][0] if ratio[p][0] else np.nan for p in orders],
                              dtype=np.float64)})
    if dims:
        out["dims_kept"] = pd.DataFrame({"field": pd.Series(list(dims), dtype=object),
                                         "dims_kept": np.array(list(dims.values()), dtype=np.int64)})
    return out


__all__ = ["aim_interactions", "aim_interaction_table", "aim_graph", "interactions_to_graph", "interaction_node",
           "function_panels", "search_tables", "has_gates", "ALL_ORDERS", "FIELD_SEP"]
