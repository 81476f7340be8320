"""Logistic regression: the first-order term alone."""
from __future__ import annotations

from torch import Tensor

from ..data.loader import TabularBatch
from ..data.space import FeatureSpace
from ..nn.linear import FieldLinear
from .base import CTRModel, register_model


@register_model("lr")
class LogisticRegression(CTRModel):
    r""":math:`\hat y = w_0 + \sum_f v_f w_{x_f}`, one weight per field value."""

    #: no model option to tune: ``fgraph tune`` searches its shared training space alone
    search_space = {}

    def __init__(self, space: FeatureSpace):
        super().__init__(space)
        self.linear = FieldLinear(space)

    def forward(self, batch: TabularBatch) -> Tensor:
        return self.linear(batch)
