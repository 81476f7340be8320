"""A batch of equal-size graphs whose nodes all have the same number of in-neighbours.

Field graphs are such batches: every instance has the same ``n`` fields, and a node keeps either all
fields as neighbours (the complete graph) or its top-``k`` of them (GraphFM's edge sampling). Storing the
neighbourhood densely, as local source indices of shape ``(B, n, k)``, lets a message-passing layer run its
per-edge math on ``(B, n, k, ...)`` tensors and its aggregation as a reduction over the ``k`` axis: the same
work a dense CTR model does, instead of gathering node features through ``edge_index`` and scattering the
messages back (see ``benchmarks/bench_field_graph.py``).

The flat edge order is fixed: edge ``e = (b * n + i) * k + s`` goes from node ``index[b, i, s]`` of graph
``b`` to node ``i`` of graph ``b``. An edge-level tensor of shape ``(E, ...)`` is therefore a free view of a
``(B, n, k, ...)`` tensor and back, and :attr:`DenseAdj.edge_index` lists the same edges in the same order
for any general PyG operator.
"""
from __future__ import annotations

from functools import lru_cache

import torch
from torch import Tensor


@lru_cache(maxsize=64)
def _complete_index(n: int, self_loops: bool, device: torch.device) -> Tensor:
    """Local source indices ``(1, n, k)`` of the complete graph on ``n`` nodes."""
    j = torch.arange(n, device=device)
    if self_loops:
        return j.expand(n, n).unsqueeze(0)
    # Row i lists 0..n-1 without i: shift every index >= i by one.
    s = torch.arange(n - 1, device=device)
    return (s.unsqueeze(0) + (s.unsqueeze(0) >= j.unsqueeze(1)).long()).unsqueeze(0)


# Few entries: one (B, n) edge_index of a big batch holds millions of edges.
@lru_cache(maxsize=8)
def _regular_edge_index(num_graphs: int, n: int, self_loops: bool, device: torch.device) -> Tensor:
    index = _complete_index(n, self_loops, device)
    return _edge_index_from(index, num_graphs, n)


def _edge_index_from(index: Tensor, num_graphs: int, n: int) -> Tensor:
    k = index.size(-1)
    offset = (torch.arange(num_graphs, device=index.device) * n).view(-1, 1, 1)
    src = (index + offset).expand(num_graphs, n, k).reshape(-1)
    dst = torch.arange(num_graphs * n, device=index.device).view(num_graphs, n, 1).expand(num_graphs, n, k)
    return torch.stack([src, dst.reshape(-1)])


def _version(t: Tensor) -> int | None:
    try:
        return t._version
    except RuntimeError:   # an inference tensor (under torch.inference_mode) has no version counter
        return None


def _same_values(kept: Tensor, version: int | None, t: Tensor) -> bool:
    """Whether ``t`` is ``kept`` (held since, so its memory cannot be reused) or a contiguous view of all of
    it, and neither was modified in place since ``version`` was read."""
    return (t.data_ptr() == kept.data_ptr() and t.numel() == kept.numel() and t.dtype == kept.dtype
            and t.is_contiguous() and kept.is_contiguous() and _version(t) == version)


def drop_diagonal(dense: Tensor) -> Tensor:
    """``(B, n, n, ...)`` to ``(B, n, n - 1, ...)`` without the entries ``[b, i, i]``: the flat edge order of the
    complete graph without self-loops (row ``i`` keeps its sources ``0..n-1`` but ``i``, ascending). One copy,
    no index: in a row-major ``n x n`` block the diagonal entries are every ``(n + 1)``-th element."""
    B, n = dense.shape[:2]
    rest = dense.shape[3:]
    flat = dense.reshape(B, n * n, *rest)[:, 1:]
    return flat.reshape(B, n - 1, n + 1, *rest)[:, :, :n].reshape(B, n, n - 1, *rest)


def insert_diagonal(edges: Tensor) -> Tensor:
    """The inverse of :func:`drop_diagonal` with zeros on the diagonal: ``(B, n, n - 1)`` to ``(B, n, n)``."""
    B, n = edges.shape[:2]
    blocks = edges.reshape(B, n - 1, n)
    padded = torch.cat([blocks, blocks.new_zeros(B, n - 1, 1)], dim=2).reshape(B, (n - 1) * (n + 1))
    return torch.cat([padded.new_zeros(B, 1), padded], dim=1).reshape(B, n, n)


class DenseAdj:
    r"""The neighbourhoods of ``B`` graphs of ``n`` nodes, each node with exactly ``k`` in-neighbours.

    ``index[b, i, s]`` is the local id of the ``s``-th neighbour of node ``i`` in graph ``b``; a leading
    dimension of 1 shares one neighbourhood across the batch. ``index=None`` is the complete graph (with
    or without self-loops), which needs no index at all: with self-loops, the source view of a node tensor
    is a broadcast, not a copy.

    Pass a ``DenseAdj`` where a layer of :mod:`fgraph.nn` takes ``edge_index`` to run it on the fast path;
    :attr:`edge_index` gives the same edges to any other PyG operator.

    Args:
        num_graphs: ``B``.
        num_nodes: ``n``, nodes per graph.
        index: ``(B or 1, n, k)`` local source indices, or None for the complete graph.
        self_loops: for the complete graph, whether node ``i`` is its own neighbour.
        distinct: a promise that no node lists a source twice in ``index`` (top-k selections keep it; the
            complete graph is distinct by construction). Layers may then compute over all ``n x n`` pairs with
            the dropped ones masked, which on a field graph is faster than gathering the ``k`` sources (see
            :class:`~fgraph.nn.InteractionAttention`). Nothing checks the promise: with repeated sources and
            ``distinct=True`` such a layer counts a repeated edge once.
    """

    def __init__(self, num_graphs: int, num_nodes: int, index: Tensor | None = None, self_loops: bool = True,
                 device=None, distinct: bool = False):
        self.num_graphs = int(num_graphs)
        self.num_nodes = int(num_nodes)
        self.self_loops = bool(self_loops)
        if index is not None:
            if index.dim() != 3 or index.size(1) != num_nodes or index.size(0) not in (1, num_graphs):
                raise ValueError(f"index must have shape (B or 1, n, k) = ({num_graphs} or 1, {num_nodes}, k), "
                                 f"got {tuple(index.shape)}")
            index = index.long()
            device = index.device
        self.index = index
        self.distinct = bool(distinct) or index is None
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self._edge_index = None

    # -- construction ---------------------------------------------------------------------------------
    @classmethod
    def complete(cls, num_graphs: int, num_nodes: int, self_loops: bool = True, device=None) -> "DenseAdj":
        return cls(num_graphs, num_nodes, None, self_loops, device)

    @classmethod
    def from_scores(cls, scores: Tensor, k: int) -> tuple["DenseAdj", Tensor]:
        """Keep the ``k`` highest-scoring sources of every node from ``(B, n, n)`` scores.

        Returns the adjacency and the kept scores ``(B, n, k)`` (differentiable). Ties are broken by
        :func:`torch.topk`, so exactly ``k`` are kept.
        """
        B, n, _ = scores.shape
        kept, index = torch.topk(scores, min(k, n), dim=-1)
        return cls(B, n, index, distinct=True), kept

    # -- shape ----------------------------------------------------------------------------------------
    @property
    def is_complete(self) -> bool:
        return self.index is None

    @property
    def is_broadcast(self) -> bool:
        """True when the source view of a node tensor is a broadcast (complete graph with self-loops)."""
        return self.index is None and self.self_loops

    @property
    def k(self) -> int:
        if self.index is not None:
            return self.index.size(-1)
        return self.num_nodes if self.self_loops else self.num_nodes - 1

    @property
    def num_edges(self) -> int:
        return self.num_graphs * self.num_nodes * self.k

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.num_graphs, self.num_nodes, self.k

    def local_index(self) -> Tensor:
        """``(B or 1, n, k)`` local source indices, materialised for the complete graph too."""
        if self.index is not None:
            return self.index
        return _complete_index(self.num_nodes, self.self_loops, self.device)

    @property
    def edge_index(self) -> Tensor:
        """The same edges as a PyG ``edge_index`` ``(2, E)``, in the flat edge order (cached)."""
        if self._edge_index is None:
            if self.index is None:
                self._edge_index = _regular_edge_index(self.num_graphs, self.num_nodes, self.self_loops, self.device)
            else:
                self._edge_index = _edge_index_from(self.index, self.num_graphs, self.num_nodes)
        return self._edge_index

    # -- views of node and edge tensors ----------------------------------------------------------------
    def _check_nodes(self, t: Tensor) -> None:
        if t.size(0) != self.num_graphs * self.num_nodes:
            raise ValueError(f"expected a node tensor with {self.num_graphs * self.num_nodes} rows "
                             f"(B={self.num_graphs} x n={self.num_nodes}), got shape {tuple(t.shape)}")

    def target(self, t: Tensor) -> Tensor:
        """Node tensor ``(B*n, ...)`` seen from the target side: a ``(B, n, 1, ...)`` view."""
        self._check_nodes(t)
        return t.view(self.num_graphs, self.num_nodes, 1, *t.shape[1:])

    def source(self, t: Tensor) -> Tensor:
        """Node tensor ``(B*n, ...)`` seen from the source side: ``(B, 1, n, ...)`` view for the complete
        graph with self-loops, otherwise the gathered ``(B, n, k, ...)`` neighbours."""
        self._check_nodes(t)
        B, n = self.num_graphs, self.num_nodes
        dense = t.view(B, n, *t.shape[1:])
        if self.is_broadcast:
            return dense.unsqueeze(1)
        index = self.local_index()
        if index.size(0) == 1:
            return dense[:, index[0]]
        batch = torch.arange(B, device=t.device).view(B, 1, 1)
        return dense[batch, index]

    def edges(self, t: Tensor) -> Tensor:
        """Edge tensor ``(E, ...)`` in the flat edge order as a ``(B, n, k, ...)`` view."""
        if t.size(0) != self.num_edges:
            raise ValueError(f"expected an edge tensor with {self.num_edges} rows, got shape {tuple(t.shape)}")
        return t.view(self.num_graphs, self.num_nodes, self.k, *t.shape[1:])

    def flatten_edges(self, t: Tensor) -> Tensor:
        """``(B, n, k, ...)`` (or broadcastable to it) to the flat ``(E, ...)`` edge order."""
        t = t.expand(self.num_graphs, self.num_nodes, self.k, *t.shape[3:])
        return t.reshape(self.num_edges, *t.shape[3:])

    def dense_adjacency(self, weight: Tensor | None = None) -> Tensor:
        """``(B, n, n)`` matrix with ``A[b, i, j]`` = weight of edge j -> i (1 without weights).

        ``weight`` is in the flat edge order, ``(E,)`` or ``(B, n, k)``. Where a layer computed the dense
        matrix of these very weights already and handed it over with :meth:`remember_dense` (Fi-GNN's edge
        attention does, and its gated steps then read the matrix at every step), that matrix is returned.
        On the complete graph with self-loops the result is a view of ``weight``, and a remembered matrix is
        the layer's own: treat the result as read-only."""
        B, n, k = self.shape
        memo = getattr(self, "_dense_memo", None)
        if weight is not None and memo is not None and _same_values(memo[0], memo[1], weight):
            # Edges detached from the graph (explanation code reads them so) get the matrix detached too.
            return memo[2] if weight.requires_grad or not memo[2].requires_grad else memo[2].detach()
        if weight is None:
            w = torch.ones(B, n, k, device=self.device)
        else:
            w = weight.expand(B, n, k) if weight.dim() == 3 else weight.view(B, n, k)
        if self.is_broadcast:   # k = n and source s is node s: the edges are the matrix
            return w
        if self.is_complete and n > 1:
            return insert_diagonal(w)
        out = torch.zeros(B, n, n, dtype=w.dtype, device=w.device)
        return out.scatter_add_(2, self.local_index().expand(B, n, k), w)

    def mask(self) -> Tensor:
        """``(B or 1, n, n)`` boolean matrix, ``M[b, i, j]`` True where ``j -> i`` is an edge."""
        n = self.num_nodes
        if self.is_broadcast:
            return torch.ones(1, n, n, dtype=torch.bool, device=self.device)
        if self.is_complete:
            return ~torch.eye(n, dtype=torch.bool, device=self.device).unsqueeze(0)
        index = self.index
        out = torch.zeros(index.size(0), n, n, dtype=torch.bool, device=index.device)
        return out.scatter_(2, index, True)

    def remember_dense(self, weight: Tensor, dense: Tensor) -> None:
        """Record that ``dense`` ``(B, n, n)`` is :meth:`dense_adjacency` of the edge tensor ``weight`` (the same
        tensor object, not modified since), so that later calls return it instead of building it again."""
        if dense.shape != (self.num_graphs, self.num_nodes, self.num_nodes):
            raise ValueError(f"dense must have shape {(self.num_graphs, self.num_nodes, self.num_nodes)}, "
                             f"got {tuple(dense.shape)}")
        self._dense_memo = (weight, _version(weight), dense)

    # -- reductions over the neighbourhood --------------------------------------------------------------
    def softmax(self, src: Tensor) -> Tensor:
        """Softmax over each node's neighbours of edge scores ``(B, n, k, ...)``."""
        if src.dim() == 3 and src.device.type == "cpu":
            # torch's CPU softmax vectorises along the reduced axis, so over a short last axis (k neighbours) it
            # runs at a fraction of its speed; over the middle axis of a transposed copy it is 3-4x faster.
            return torch.softmax(src.transpose(1, 2).contiguous(), dim=1).transpose(1, 2).contiguous()
        return torch.softmax(src, dim=2)

    def aggregate(self, msg: Tensor, reduce: str = "sum") -> Tensor:
        """Reduce messages ``(B, n, k, ...)`` over the neighbours, returning node rows ``(B*n, ...)``."""
        B, n, k = self.shape
        if msg.size(2) != k:
            msg = msg.expand(B, n, k, *msg.shape[3:])
        if reduce in ("sum", "add"):
            out = msg.sum(2)
        elif reduce == "mean":
            out = msg.mean(2)
        elif reduce == "max":
            out = msg.amax(2)
        elif reduce == "min":
            out = msg.amin(2)
        else:
            raise ValueError(f"DenseAdj cannot reduce with {reduce!r}")
        return out.reshape(B * n, *out.shape[2:])

    def __getitem__(self, idx: int) -> "DenseAdj":
        """The adjacency of graph ``idx`` alone."""
        index = None if self.index is None else self.index[idx if self.index.size(0) > 1 else 0].unsqueeze(0)
        return DenseAdj(1, self.num_nodes, index, self.self_loops, self.device, self.distinct)

    def to(self, device) -> "DenseAdj":
        index = None if self.index is None else self.index.to(device)
        return DenseAdj(self.num_graphs, self.num_nodes, index, self.self_loops, device, self.distinct)

    def __repr__(self) -> str:
        kind = "complete" + ("" if self.self_loops else ", no self-loops") if self.index is None else "top-k"
        return f"DenseAdj(B={self.num_graphs}, n={self.num_nodes}, k={self.k}, {kind})"
