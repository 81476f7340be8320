"""Fi-GNN: feature interaction graph neural network (Li et al., CIKM 2019)."""
from __future__ import annotations

from typing import Sequence

from torch import Tensor, nn

from ..data.loader import TabularBatch
from ..data.space import FeatureSpace
from ..graph.adjacency import DenseAdj
from ..graph.field_graph import to_dense
from ..nn.edge_attention import EdgeAttention
from ..nn.embedding import FieldEmbedding
from ..nn.field_self_attention import FieldSelfAttention
from ..nn.gated_field_conv import GatedFieldConv
from ..nn.readout import FieldReadout
from ..nn.records import LayerRecord
from .base import register_model
from .field_graph_model import FieldGraphModel, plus_variant


@register_model("fignn")
class FiGNN(FieldGraphModel):
    r"""Fi-GNN. The field embeddings :math:`\mathbf{e}^0` (optionally refined by multi-head self-attention)
    are the initial node states of the complete field graph without self-loops; the edge weights
    :math:`a_{ij}` come from :class:`~fgraph.nn.EdgeAttention`; ``steps`` rounds of
    :class:`~fgraph.nn.GatedFieldConv` update the states,
    :math:`\mathbf{h}^{t} = \mathrm{GRU}(\mathbf{m}^{t}, \mathbf{h}^{t-1}) + \mathbf{e}^0`; the shared
    :class:`~fgraph.nn.FieldReadout` scores the final states (attentional scoring by default).

    Args:
        space: the encoder's feature space.
        embed_dim: embedding size ``d``.
        steps: propagation steps ``T`` (0 reads out the embeddings).
        gru: GRU update (True, the paper) or the additive update :math:`\mathbf{h} \leftarrow \mathbf{m} +
            \mathbf{h}` (False, as ports that run many steps do).
        share_weights: one set of edge-wise transformations for all steps (the paper) or one per step.
            The GRU is shared across steps either way.
        recompute_attention: recompute the edge weights from the current states at every step instead of
            once from the initial embeddings.
        self_attention: apply multi-head self-attention (with residual) to the embeddings first.
        attention_heads: heads of that layer (``embed_dim`` must be divisible by it).
        negative_slope: of the edge attention's LeakyReLU.
        readout: pooling of the shared readout: ``"attention"`` (Fi-GNN's attentional scoring), or
            ``"mean"`` / ``"flatten"``.
        readout_gate: for the attentional scoring, each field's weight from its own state (``"node"``, the
            paper's :math:`a_i = \mathrm{MLP}_2(\mathbf{h}_i)`) or from all fields' states (``"flat"``, the
            RecBole and FuxiCTR ports).
        readout_all_steps: read out the concatenated states of all steps (GraphFM's form) instead of the
            last step only.
        deep_layers, deep_dropout, deep_batch_norm: the readout's deep part, an MLP on the concatenated
            field embeddings :math:`\mathbf{e}^0` (before any self-attention) added to the logit (see
            :class:`~fgraph.nn.FieldReadout`). None or empty: off (the paper's model). ``fignn+`` has it on.

        state_norm: LayerNorm on the node states after every step (shared by the graph heads; see
            :class:`~fgraph.models.field_graph_model.FieldGraphModel`). Off by default: Fi-GNN's update is
            additive with the embeddings added back, so its states do not shrink, and on Frappe under
            ``--protocol bars`` the 3-step model stays on the plateau with it too (test AUC 0.9365, against
            0.9381 without); depth is what moves Fi-GNN (see ``fgraph/zoo/fignn-frappe.yaml``).
        state_norm_eps: the variance floor of those LayerNorms (torch's 1e-5 by default; see
            :class:`~fgraph.models.field_graph_model.FieldGraphModel` for what a smaller one changes).
    """

    #: ``fgraph tune``'s search (with its shared learning rate and embedding regulariser; see CTRModel);
    #: the published Fi-GNN setting on Frappe is 17 steps, GRU off, weights not shared.
    search_space = {
        "model.embed_dim": ("categorical", [8, 10, 16, 32]),
        "model.steps": ("int", 1, 20),
        "model.gru": ("categorical", [True, False]),
        "model.share_weights": ("categorical", [True, False]),
        "model.readout_gate": ("categorical", ["node", "flat"]),
    }

    def __init__(self, space: FeatureSpace, embed_dim: int = 16, steps: int = 3, gru: bool = True,
                 share_weights: bool = True, recompute_attention: bool = False, self_attention: bool = False,
                 attention_heads: int = 2, negative_slope: float = 0.2, readout: str = "attention",
                 readout_all_steps: bool = False, readout_gate: str = "node",
                 deep_layers: Sequence[int] | None = None, deep_dropout: float = 0.0, deep_batch_norm: bool = False,
                 state_norm: bool = False, state_norm_eps: float = 1e-5):
        super().__init__(space)
        n = space.num_fields
        if steps < 0:
            raise ValueError(f"steps must be >= 0, got {steps}")
        if self_attention and embed_dim % attention_heads:
            raise ValueError(f"embed_dim ({embed_dim}) must be divisible by attention_heads ({attention_heads})")
        self.steps, self.recompute_attention = int(steps), recompute_attention
        self.embedding = FieldEmbedding(space, embed_dim)
        self.self_attention = (FieldSelfAttention(embed_dim, embed_dim // attention_heads, attention_heads)
                               if self_attention else None)
        self.edge_attention = EdgeAttention(embed_dim, negative_slope)
        shared_gru = nn.GRUCell(embed_dim, embed_dim) if gru else False
        num_convs = 0 if steps == 0 else (1 if share_weights else steps)
        self.convs = nn.ModuleList(GatedFieldConv(embed_dim, n, gru=shared_gru) for _ in range(num_convs))
        num_states = max(steps, 1)
        self._init_state_norm(state_norm, [embed_dim] * self.steps, state_norm_eps)
        layers = list(range(num_states)) if readout_all_steps else [num_states - 1]
        self.readout = FieldReadout(n, [embed_dim] * num_states, pooling=readout, layers=layers,
                                    gate=readout_gate, embed_dim=embed_dim, deep_layers=deep_layers,
                                    deep_dropout=deep_dropout, deep_batch_norm=deep_batch_norm)

    def propagate(self, batch: TabularBatch, record: bool = False, embeddings: Tensor | None = None):
        e = self.embedding(batch) if embeddings is None else embeddings   # (B, n, d)
        B, n, d = e.shape
        x0 = e.reshape(B * n, d)
        if self.self_attention is not None:
            x0 = self.self_attention(x0, DenseAdj.complete(B, n, self_loops=True, device=e.device))
        if self.steps == 0:
            return [to_dense(x0, n)], []
        adj = DenseAdj.complete(B, n, self_loops=False, device=e.device)
        weight = self.edge_attention(x0, adj)
        h, states, records = x0, [], []
        for t in range(self.steps):
            if t > 0 and self.recompute_attention:
                weight = self.edge_attention(h, adj)
            if record:
                records.append(LayerRecord(adj, {"weight": weight}))
            h = self.normalise_state(t, self.convs[t % len(self.convs)](h, adj, weight, residual=x0))
            states.append(to_dense(h, n))
        return states, records


FiGNNPlus = plus_variant(FiGNN, "fignn+", "Fi-GNN")
