"""Explicit interactive features read off per-order adjacency matrices (FIVES, Section 2.5), and their graphs.

:func:`fives_interactions` and :func:`fives_graphs` read a FIVES model's one protocol,
:meth:`~fgraph.models.FIVES.adjacency_weights`; :func:`derive_interactions` and :func:`adjacency_graphs` work
on any per-order adjacency matrices.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import networkx as nx
import numpy as np
import pandas as pd

from ._build import build_graph
from .graphs import needs_protocol


def _as_arrays(adjacency: Sequence, n: int | None = None) -> list[np.ndarray]:
    out = []
    for k, a in enumerate(adjacency):
        a = a.detach().cpu().numpy() if hasattr(a, "detach") else np.asarray(a, dtype=float)
        if a.ndim != 2 or a.shape[0] != a.shape[1] or (n is not None and a.shape[0] != n):
            raise ValueError(f"adjacency of order {k + 2} must be a square ({n} x {n}) matrix, got shape {a.shape}")
        out.append(a.astype(float))
    return out


def derive_interactions(adjacency: Sequence, names: Sequence[str], thresholds: Sequence[float]
                        ) -> list[tuple[tuple[str, ...], float]]:
    r"""The interactive features suggested by binarised adjacencies, strongest first.

    ``adjacency[k]`` is :math:`\mathbf{A}^{(k+1)}` (soft, ``n x n``), binarised at ``thresholds[k]``. An edge
    :math:`i \to j` (:math:`A_{ij}` above the threshold) at order :math:`k` crosses every feature that node
    :math:`i` carries from order :math:`k-1` with the original field :math:`j`, and node :math:`i` carries the
    results on; at the first order node :math:`i` carries its own field. So the features are
    :math:`f_i \otimes f_{c_1} \otimes \dots \otimes f_{c_k}` with :math:`A^{(m)}_{i c_m} = 1` for every
    :math:`m` (Section 2.5), written as the tuple ``(f_i, f_c1, ..., f_ck)`` in the order they were crossed.

    A crossing with a field the feature already holds gives no new feature and is skipped. Each feature's
    score is the product of the soft entries along its path; a feature reached along several paths (e.g.
    ``a -> b`` and ``b -> a``) is listed once, with its best path.

    Returns:
        ``[(fields, score), ...]`` over all orders 2..K, by decreasing score (ties: lower order, then names).
    """
    names = list(names)
    n = len(names)
    mats = _as_arrays(adjacency, n)
    if len(thresholds) != len(mats):
        raise ValueError(f"need one threshold per order ({len(mats)}), got {len(thresholds)}")
    carried: list[dict[frozenset, tuple[tuple[int, ...], float]]] = [
        {frozenset((i,)): ((i,), 1.0)} for i in range(n)]
    found: dict[frozenset, tuple[tuple[int, ...], float]] = {}
    for a, t in zip(mats, thresholds):
        nxt: list[dict[frozenset, tuple[tuple[int, ...], float]]] = [{} for _ in range(n)]
        for i, j in zip(*np.nonzero(a > t)):
            for key, (path, score) in carried[i].items():
                if j in key:
                    continue
                new_key, new_score = key | {int(j)}, score * float(a[i, j])
                if new_key not in nxt[i] or new_score > nxt[i][new_key][1]:
                    nxt[i][new_key] = (path + (int(j),), new_score)
        for feats in nxt:
            for key, (path, score) in feats.items():
                if key not in found or score > found[key][1]:
                    found[key] = (path, score)
        carried = nxt
    ranked = sorted(found.values(), key=lambda ps: (-ps[1], len(ps[0]), [names[i] for i in ps[0]]))
    return [(tuple(names[i] for i in path), score) for path, score in ranked]


def adjacency_graphs(adjacency: Sequence, names: Sequence[str], thresholds: Sequence[float],
                     propagation: Sequence | None = None) -> tuple[list[nx.DiGraph], nx.MultiDiGraph]:
    r"""Per-order ``nx.DiGraph`` s and one ``nx.MultiDiGraph`` of all orders.

    Nodes are the fields; edge :math:`i \to j` (the paper's direction: :math:`i` crosses what it carries with
    field :math:`j`) exists wherever :math:`A_{ij} > 0` and carries ``weight`` (the soft entry), ``selected``
    (whether it passes the order's threshold) and, when given, ``propagation_weight`` (the entry the model
    propagates with). Graph attributes: ``order`` (2..K) and ``threshold``; multigraph edges are keyed by
    their order and carry it as ``order`` too.
    """
    names = list(names)
    mats = _as_arrays(adjacency, len(names))
    props = _as_arrays(propagation, len(names)) if propagation is not None else [None] * len(mats)
    per_order, multi = [], nx.MultiDiGraph()
    multi.add_nodes_from(names)
    for k, (a, t, p) in enumerate(zip(mats, thresholds, props)):
        order = k + 2
        rows, cols = np.nonzero(a > 0)
        columns = {"weight": a[rows, cols].tolist(), "selected": (a[rows, cols] > t).tolist()}
        if p is not None:
            columns["propagation_weight"] = p[rows, cols].tolist()
        edges = list(zip(rows.tolist(), cols.tolist()))
        g = build_graph(names, edges, columns, directed=True, graph={"order": order, "threshold": float(t)})
        per_order.append(g)
        for u, v, attrs in g.edges(data=True):
            multi.add_edge(u, v, key=order, order=order, **attrs)
    return per_order, multi


_FIVES_ONLY = "it is for FIVES (and FIVES+), whose adjacency is the same for every instance"


def fives_interactions(model, thresholds: float | Sequence[float] | None = None
                       ) -> list[tuple[tuple[str, ...], float]]:
    """The interactive features of orders 2..K a FIVES model's learned adjacency suggests (Section 2.5,
    Figure 2), strongest first.

    The soft adjacency of Eq. 7 is binarised per order at ``thresholds`` (a number, or one per order 2..K;
    default: the model's ``threshold``); an edge ``i -> j`` at order ``k`` crosses what field ``i`` carries
    from order ``k - 1`` with the original field ``j``. Returns ``[(field names, score), ...]``; the score is
    the product of the soft entries along the feature's path (see :func:`derive_interactions`).

    Raises:
        ValueError: ``thresholds`` has not one value per order, or one outside ``[0, 1)``.
    """
    needs_protocol(model, "adjacency_weights", "fives_interactions()", _FIVES_ONLY)
    learned = model.adjacency_weights(thresholds)
    return derive_interactions(learned["soft"], model.space.names, learned["threshold"].tolist())


def fives_graphs(model, thresholds: float | Sequence[float] | None = None
                 ) -> tuple[list[nx.DiGraph], nx.MultiDiGraph]:
    """A FIVES model's learned adjacency as networkx graphs: one ``DiGraph`` per order 2..K and a
    ``MultiDiGraph`` of all orders (see :func:`adjacency_graphs`). Edge ``i -> j`` carries ``weight`` (the
    soft Eq. 7 entry), ``selected`` (binarised at ``thresholds``, default the model's) and
    ``propagation_weight`` (the entry re-scaled at the current temperature)."""
    needs_protocol(model, "adjacency_weights", "fives_graphs()", _FIVES_ONLY)
    learned = model.adjacency_weights(thresholds)
    return adjacency_graphs(learned["soft"], model.space.names, learned["threshold"].tolist(),
                            propagation=learned["propagation"])


def fives_interaction_table(model, thresholds: float | Sequence[float] | None = None, sep: str = "×"
                            ) -> pd.DataFrame:
    """The explicit interactive features of a FIVES model (:func:`fives_interactions`) as a table, strongest
    first.

    Columns: ``rank`` (1 = strongest), ``order`` (how many fields the feature crosses), ``fields`` (their names
    joined with ``sep``, in the order they were crossed, e.g. ``f0×f1``, the column name
    :class:`~fgraph.explain.fives_features.FIVESCrossFeatures` gives it) and ``weight``: the product of the
    soft adjacency entries (Eq. 7) along the feature's path, for a pair simply its entry
    :math:`A_{ij}`. Features are binarised at ``thresholds`` (default: the model's); an empty table (with
    these columns) when no edge passes.
    """
    found = fives_interactions(model, thresholds)
    return pd.DataFrame({"rank": np.arange(1, len(found) + 1, dtype=np.int64),
                         "order": np.array([len(fields) for fields, _ in found], dtype=np.int64),
                         "fields": pd.Series([sep.join(fields) for fields, _ in found], dtype=object),
                         "weight": np.array([float(score) for _, score in found], dtype=np.float64)})


def write_interactions_csv(model, path, thresholds: float | Sequence[float] | None = None, sep: str = "×"):
    """Write :func:`fives_interaction_table` to the CSV file ``path`` (UTF-8, no index column) and return its
    path."""
    path = Path(path)
    fives_interaction_table(model, thresholds, sep).to_csv(path, index=False, encoding="utf-8")
    return path


__all__ = ["derive_interactions", "adjacency_graphs", "fives_interactions", "fives_graphs",
           "fives_interaction_table", "write_interactions_csv"]
