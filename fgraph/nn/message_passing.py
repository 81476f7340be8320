r"""The base class of fgraph's layers: a PyG ``MessagePassing`` with a dense fast path for field graphs.

A layer written against :class:`FieldMessagePassing` is an ordinary PyG operator: ``propagate`` with a
``(2, E)`` ``edge_index`` runs PyG's gather / message / scatter on any graph. Given a
:class:`~fgraph.graph.DenseAdj` instead, ``propagate`` runs the *same* ``message`` on dense tensors:

* ``x_i`` arguments arrive as ``(B, n, 1, ...)`` views of the node rows;
* ``x_j`` arguments as ``(B, 1, n, ...)`` views on a complete graph with self-loops (a broadcast, no
  gather) or as gathered ``(B, n, k, ...)`` neighbours otherwise;
* edge-level arguments (``E`` rows) as ``(B, n, k, ...)`` views;
* ``index`` is the ``DenseAdj`` itself, so :func:`edge_softmax` can normalise over the ``k`` axis;

and aggregates by reducing over the neighbour axis. This is the dense CTR computation, so field graphs run
at dense speed while the layer stays a general operator. The one rule for ``message``: it must broadcast
over leading dimensions (index feature dimensions from the end, e.g. ``x.sum(-1)``, ``x[..., :d]``).

A layer may also implement PyG's ``message_and_aggregate(adj_t, ...)``: given a :class:`DenseAdj` as
``adj_t`` (node arguments as ``(N, ...)`` rows, edge arguments as ``(B, n, k, ...)`` views) it can fuse the
two steps into batched matrix products, as a dense CTR model would (e.g. ``bmm`` with
:meth:`DenseAdj.dense_adjacency`). It must give the same result as ``message`` + aggregation; the tests check
that for every layer that has one.

Layers whose aggregation is not ``sum``/``mean``/``max``/``min``, or which run with
``flow="target_to_source"`` or in explain mode, fall back to the general path on
:attr:`DenseAdj.edge_index`, so results never depend on which path runs.
"""
from __future__ import annotations

from typing import Any

from torch import Tensor
from torch_geometric.nn import MessagePassing
from torch_geometric.utils import softmax as pyg_softmax

from ..graph.adjacency import DenseAdj

_DENSE_AGGRS = {"sum", "add", "mean", "max", "min"}
# Arguments PyG derives from the graph rather than from **kwargs.
_GRAPH_ARGS = {"index", "ptr", "size", "size_i", "size_j", "dim_size", "edge_index", "edge_index_i",
               "edge_index_j", "adj_t"}


def edge_softmax(src: Tensor, index: Tensor | DenseAdj, ptr: Tensor | None = None,
                 num_nodes: int | None = None) -> Tensor:
    """Softmax of edge scores over the incoming edges of each target node, on either path.

    With a ``(E,)`` ``index`` this is :func:`torch_geometric.utils.softmax`; with a :class:`DenseAdj`
    (what ``message`` receives as ``index`` on the fast path) it normalises ``(B, n, k, ...)`` scores over
    the ``k`` axis.
    """
    if isinstance(index, DenseAdj):
        B, n, k = index.shape
        return index.softmax(src.expand(B, n, k, *src.shape[3:]))
    return pyg_softmax(src, index, ptr, num_nodes)


class FieldMessagePassing(MessagePassing):
    """``MessagePassing`` whose ``propagate`` also accepts a :class:`~fgraph.graph.DenseAdj`."""

    def _set_jittable_templates(self, raise_on_error: bool = False) -> None:
        # PyG compiles a TorchScript-friendly propagate/edge_updater per subclass and installs it on the
        # subclass, which would shadow the dispatch below. fgraph layers are not scripted, so skip it.
        return None

    def propagate(self, edge_index, size=None, **kwargs: Any) -> Tensor:
        if isinstance(edge_index, DenseAdj):
            if self._dense_path_applies():
                if self._fuses_dense():
                    return self._propagate_dense_fused(edge_index, kwargs)
                return self._propagate_dense(edge_index, kwargs)
            edge_index = edge_index.edge_index
        return super().propagate(edge_index, size=size, **kwargs)

    def edge_updater(self, edge_index, size=None, **kwargs: Any) -> Tensor:
        """PyG's ``edge_updater``; with a :class:`DenseAdj`, ``edge_update`` runs on dense tensors and the
        result comes back in the flat edge order ``(E, ...)`` (a view of the dense ``(B, n, k, ...)``)."""
        if isinstance(edge_index, DenseAdj):
            args = self._dense_args(self.inspector.get_param_names("edge_update"), edge_index, kwargs)
            return edge_index.flatten_edges(self.edge_update(**args))
        return super().edge_updater(edge_index, size=size, **kwargs)

    def _dense_path_applies(self) -> bool:
        return (isinstance(self.aggr, str) and self.aggr in _DENSE_AGGRS and self.flow == "source_to_target"
                and not self.explain and self.decomposed_layers == 1
                and not self._propagate_forward_pre_hooks and not self._propagate_forward_hooks)

    def _fuses_dense(self) -> bool:
        return type(self).message_and_aggregate is not MessagePassing.message_and_aggregate

    def _propagate_dense_fused(self, adj: DenseAdj, kwargs: dict) -> Tensor:
        args = self._dense_args(self.inspector.get_param_names("message_and_aggregate"), adj, kwargs)
        args.pop("adj_t", None)
        out = self.message_and_aggregate(adj, **args)
        update_kwargs = self._dense_args(self.inspector.get_param_names("update"), adj, kwargs)
        return self.update(out, **update_kwargs)

    def _dense_args(self, names, adj: DenseAdj, kwargs: dict) -> dict:
        num_nodes = adj.num_graphs * adj.num_nodes
        out = {}
        for name in names:
            if name in _GRAPH_ARGS:
                if name in ("index", "edge_index", "adj_t"):
                    out[name] = adj
                elif name in ("size_i", "size_j", "dim_size"):
                    out[name] = num_nodes
                elif name == "size":
                    out[name] = (num_nodes, num_nodes)
                elif name == "edge_index_i":
                    out[name] = adj.edge_index[1]
                elif name == "edge_index_j":
                    out[name] = adj.edge_index[0]
                else:
                    out[name] = None
                continue
            suffix = name[-2:]
            if suffix in ("_i", "_j") and name[:-2] in kwargs:
                data = kwargs[name[:-2]]
                if isinstance(data, (tuple, list)):
                    data = data[1] if suffix == "_i" else data[0]
                if isinstance(data, Tensor):
                    data = adj.target(data) if suffix == "_i" else adj.source(data)
                out[name] = data
                continue
            value = kwargs.get(name)
            # With k = 1 an edge tensor and a node tensor have the same rows and the same dense view.
            if isinstance(value, Tensor) and value.dim() > 0 and value.size(0) == adj.num_edges:
                value = adj.edges(value)
            out[name] = value
        return out

    def _propagate_dense(self, adj: DenseAdj, kwargs: dict) -> Tensor:
        msg_kwargs = self._dense_args(self.inspector.get_param_names("message"), adj, kwargs)
        msg = self.message(**msg_kwargs)
        if msg.dim() < 3:
            raise RuntimeError(f"{type(self).__name__}.message returned shape {tuple(msg.shape)} on the dense "
                               f"path; it must broadcast over the leading (B, n, k) dimensions")
        out = adj.aggregate(msg, self.aggr)
        update_kwargs = self._dense_args(self.inspector.get_param_names("update"), adj, kwargs)
        return self.update(out, **update_kwargs)
