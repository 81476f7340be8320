"""FIVES: feature interaction via edge search (Xie et al., KDD'21)."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from ..data.loader import TabularBatch
from ..data.space import FeatureSpace
from ..graph.adjacency import DenseAdj
from ..graph.field_graph import to_dense
from ..nn.adjacency_propagation import AdjacencyPropagation
from ..nn.adjacency_tensor import AdjacencyTensor, as_thresholds
from ..nn.embedding import FieldEmbedding
from ..nn.readout import FieldReadout
from ..nn.records import LayerRecord
from .base import register_model
from .field_graph_model import FieldGraphModel, plus_variant


@register_model("fives")
class FIVES(FieldGraphModel):
    r"""FIVES. A global adjacency tensor (Eq. 7, re-scaled by an annealed temperature, Eq. 8) says which
    fields each field crosses at every order; layer :math:`k` crosses node states with the weighted mean of
    the chosen fields' transformed embeddings, :math:`\mathbf{n}^{(k)}_i = \mathbf{p}^{(k)}_i \odot
    \mathbf{n}^{(k-1)}_i` (Eq. 2), with one :math:`\mathbf{W}_j` per field shared by all orders. Every
    layer :math:`0..K-1` (order :math:`1..K`) has its own linear output on the concatenated node states
    (Eq. 3) and the loss is their mean (Eq. 4). The weights :math:`\Theta` step on training batches, the
    adjacency parameters :math:`\mathbf{H}` on validation batches (Algorithm 1).

    What it learned is, besides the per-instance :meth:`~fgraph.models.FieldGraphModel.edge_records` of every
    graph model, one global adjacency per order, read through :meth:`adjacency_weights` (tensors only).
    :func:`fgraph.explain.fives_interactions` derives the explicit interactive features from it (Section
    2.5) and :func:`fgraph.explain.fives_graphs` draws it as networkx graphs.

    Args:
        space: the encoder's feature space.
        embed_dim: embedding size, also the GNN's hidden size (8 or 16 in the paper).
        orders: :math:`K`, the highest interaction order (2, 3 or 4 in the paper): ``K - 1`` propagation
            layers, ``K - 1`` learned slices of :math:`\mathbf{H}` (:math:`\mathbf{H}^{(0)} = \mathbf{I}`).
        threshold: threshold of the binarisation :math:`\varphi` in Eq. 7 (one, or one per order 2..K); also
            the default of :meth:`adjacency_weights`.
        recursive: Eq. 7; False gives the independent adjacencies of the ablation (Section 3.3.1).
        straight_through: gradients pass :math:`\varphi` as the identity.
        self_loops: allow a field to cross itself.
        tau_start, tau_end, anneal_epochs: temperature of Eq. 8, annealed geometrically per epoch;
            ``tau_end=1`` is the ablation without re-scaling (Section 3.3.2).
        adjacency_init: initial :math:`H_{ij}` (0.5: every edge starts just above the 0.5 threshold).
        alpha1: learning rate of :math:`\Theta` (default: the trainer's ``lr``; the paper's is 5e-3).
        alpha2: learning rate of :math:`\mathbf{H}` (5e-3 or 5e-4 in the paper).
        readout: pooling of :class:`~fgraph.nn.FieldReadout` (``"flatten"`` is Eq. 3).
        deep_layers, deep_dropout, deep_batch_norm: the readout's deep part, an MLP on the concatenated
            field embeddings :math:`\mathbf{n}^{(0)}` whose logit is added to every order's output (so to
            every per-layer loss of Eq. 4, and once to the prediction; see :class:`~fgraph.nn.FieldReadout`).
            None or empty: off (the paper's model). ``fives+`` has it on. Its weights are in :math:`\Theta`.

        state_norm: LayerNorm on the node states of every order before they are crossed again (shared by the
            graph heads; see :class:`~fgraph.models.field_graph_model.FieldGraphModel`). On by default: the
            states of Eq. 2 are products of embeddings and shrink with every order; on Frappe under
            ``--protocol bars`` FIVES stays on the first-order plateau without it (test AUC 0.9376) and
            reaches 0.9781 with it. False: the paper's Eq. 2 as written.
        state_norm_eps: the variance floor of those LayerNorms (torch's 1e-5 by default; see
            :class:`~fgraph.models.field_graph_model.FieldGraphModel` for what a smaller one changes).
    """

    #: ``fgraph tune``'s search (with its shared learning rate and embedding regulariser; see CTRModel)
    search_space = {
        "model.embed_dim": ("categorical", [8, 10, 16, 32]),
        "model.orders": ("int", 2, 4),
        "model.alpha2": ("log_float", 5e-4, 5e-3),
        "model.tau_end": ("log_float", 0.02, 1.0),
        "model.anneal_epochs": ("int", 2, 20),
        # the readout: GraphFM on Frappe gained 0.0019 of validation AUC from "attention" over "mean"
        # (docs/models/graphfm.md); FIVES's own Eq. 3 is "flatten".
        "model.readout": ("categorical", ["flatten", "attention", "mean"]),
    }

    def __init__(self, space: FeatureSpace, embed_dim: int = 16, orders: int = 3,
                 threshold: float | Sequence[float] = 0.5, recursive: bool = True, straight_through: bool = True,
                 self_loops: bool = False, tau_start: float = 1.0, tau_end: float = 0.02, anneal_epochs: int = 10,
                 adjacency_init: float = 0.5, alpha1: float | None = None, alpha2: float = 5e-3,
                 readout: str = "flatten", deep_layers: Sequence[int] | None = None, deep_dropout: float = 0.0,
                 deep_batch_norm: bool = False, state_norm: bool = True, state_norm_eps: float = 1e-5):
        super().__init__(space)
        if int(orders) < 2:
            raise ValueError(f"orders (the highest interaction order K) must be >= 2, got {orders}")
        for name, lr in (("alpha1", alpha1), ("alpha2", alpha2)):
            if lr is not None and not lr > 0:
                raise ValueError(f"{name} must be > 0, got {lr}")
        n = space.num_fields
        self.orders, self.alpha1, self.alpha2 = int(orders), alpha1, float(alpha2)
        self.embedding = FieldEmbedding(space, embed_dim)
        self.adjacency = AdjacencyTensor(n, self.orders - 1, threshold, recursive=recursive,
                                         straight_through=straight_through, self_loops=self_loops,
                                         tau_start=tau_start, tau_end=tau_end, anneal_epochs=anneal_epochs,
                                         init=adjacency_init)
        self.conv = AdjacencyPropagation(embed_dim, n)
        self._init_state_norm(state_norm, [embed_dim] * (self.orders - 1), state_norm_eps)
        self.readout = FieldReadout(n, [embed_dim] * self.orders, pooling=readout, per_layer=True,
                                    embed_dim=embed_dim, deep_layers=deep_layers, deep_dropout=deep_dropout,
                                    deep_batch_norm=deep_batch_norm)

    def propagate(self, batch: TabularBatch, record: bool = False, embeddings: Tensor | None = None):
        e = self.embedding(batch) if embeddings is None else embeddings   # (B, n, d): n^(0)
        B, n, _ = e.shape
        adj = DenseAdj.complete(B, n, self_loops=True, device=e.device)
        x0 = e.reshape(B * n, -1)
        source = self.conv.transform(x0, adj)                       # W_j n_j^(0), the same at every order
        h, states, records = x0, [e], []
        for k, a in enumerate(self.adjacency()):
            h = self.normalise_state(k, self.conv((x0, h), adj, a, transformed=source))
            states.append(to_dense(h, n))
            if record:
                records.append(LayerRecord(adj, {"weight": adj.flatten_edges(a.detach().unsqueeze(0))}))
        return states, records

    # -- training -----------------------------------------------------------------------------------------
    def on_epoch_start(self, epoch: int) -> None:
        self.adjacency.anneal(epoch)

    def configure_optimizers(self) -> list[dict]:
        """:math:`\\Theta` on training batches at ``alpha1``, :math:`\\mathbf{H}` on validation batches at
        ``alpha2`` (no weight decay on :math:`\\mathbf{H}`), both with the trainer's optimiser."""
        searched = {id(p) for p in self.adjacency.parameters()}
        groups = [{**g, "params": [p for p in g["params"] if id(p) not in searched]}
                  for g in self.parameter_groups()]
        return [{"name": "weights", "data": "train", "params": [g for g in groups if g["params"]],
                 "lr": self.alpha1},
                {"name": "adjacency", "data": "valid", "params": list(self.adjacency.parameters()),
                 "lr": self.alpha2}]

    # -- what the model learned -------------------------------------------------------------------------------
    def _thresholds(self, thresholds) -> list[float]:
        if thresholds is None:
            return list(self.adjacency.thresholds)
        return as_thresholds(thresholds, self.orders - 1)

    @torch.no_grad()
    def adjacency_weights(self, thresholds: float | Sequence[float] | None = None) -> dict[str, Tensor]:
        r"""The learned adjacency of every order 2..K, without gradients.

        Entry ``[k, i, j]`` of each tensor is the edge :math:`i \to j` of order ``k + 2`` (field :math:`i`
        crosses what it carries with field :math:`j`; the message :math:`j \to i` in PyG terms). Returns:

        * ``soft``: ``(K - 1, n, n)``, the soft adjacency :math:`\mathbf{A}^{(k)}` of Eq. 7 (no temperature),
          what interactive features are read from;
        * ``propagation``: ``(K - 1, n, n)``, the entries the layers propagate with (Eq. 8 at the current
          temperature);
        * ``threshold``: ``(K - 1,)`` (float64), the binarisation thresholds per order: ``thresholds``
          (a number, or one per order) or, by default, the model's ``threshold``.

        Raises:
            ValueError: ``thresholds`` has not one value per order, or a value outside ``[0, 1)``.
        """
        soft = torch.stack(self.adjacency.soft())
        return {"soft": soft, "propagation": torch.stack(self.adjacency()),
                "threshold": torch.tensor(self._thresholds(thresholds), dtype=torch.float64)}


FIVESPlus = plus_variant(FIVES, "fives+", "FIVES")
