"""The first-order term shared by LR, FM and the FM family."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ..data.loader import TabularBatch
from ..data.space import FeatureSpace
from .embedding import FieldEmbedding


class FieldLinear(nn.Module):
    r"""The linear term :math:`w_0 + \sum_f v_f\, w[o_f + x_f]` of a row, one weight per field value.

    Args:
        space: the encoder's :class:`~fgraph.data.FeatureSpace`.

    Shapes:
        - **input:** a :class:`~fgraph.data.TabularBatch` of ``B`` rows
        - **output:** ``(B,)``
    """

    def __init__(self, space: FeatureSpace):
        super().__init__()
        self.weights = FieldEmbedding(space, 1, init_std=0.0)
        self.bias = nn.Parameter(torch.zeros(1))

    def reset_parameters(self) -> None:
        self.weights.reset_parameters()
        nn.init.zeros_(self.bias)

    def forward(self, batch: TabularBatch) -> Tensor:
        return self.weights(batch).sum(dim=(1, 2)) + self.bias

    def __repr__(self) -> str:
        return f"{type(self).__name__}(ids={self.weights.space.num_ids})"
