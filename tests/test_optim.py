"""What a model asks of its optimisers (plain data) and what the trainer builds from it (fgraph.train.optim)."""
import pytest
import torch

from fgraph.errors import ConfigError
from fgraph.models import AFM, FM, CTRModel
from fgraph.nn import FieldLinear
from fgraph.train import Trainer, TrainConfig
from fgraph.train.optim import OptimConfig, build_optimizers, resolve_groups, resolve_optimizer


class Searching(CTRModel):
    """A model with a searched parameter on validation batches, stepped by an optimiser of its own choice."""

    def __init__(self, space, request=None):
        super().__init__(space)
        self.linear = FieldLinear(space)
        self.gate = torch.nn.Parameter(torch.zeros(1))
        self.request = request

    def forward(self, batch):
        return self.linear(batch) + self.gate

    def configure_optimizers(self):
        if self.request is not None:
            return self.request
        return [{"name": "weights", "params": list(self.linear.parameters())},
                {"name": "gate", "data": "valid", "params": [self.gate], "optimizer": "sgd", "lr": 0.25}]


def test_parameter_groups_are_plain_data_the_trainer_resolves(planted):
    _, enc, _ = planted
    model = AFM(enc.space_, embed_dim=4, attention_l2=0.5)
    groups = model.parameter_groups()
    assert [g["name"] for g in groups] == ["embedding", "dense", "attention_W"]
    assert all(isinstance(p, torch.nn.Parameter) for g in groups for p in g["params"])
    assert [g.get("decay_from") for g in groups] == ["embedding_weight_decay", "weight_decay", None]
    resolved = resolve_groups(groups, OptimConfig(weight_decay=0.1, embedding_weight_decay=0.01))
    assert [g["weight_decay"] for g in resolved] == [0.01, 0.1, 0.5]
    assert all("decay_from" not in g for g in resolved)
    assert [[id(p) for p in g["params"]] for g in resolved] == [[id(p) for p in g["params"]] for g in groups]
    plain = list(model.parameters())
    assert resolve_groups(plain, OptimConfig()) == plain
    with pytest.raises(TypeError, match="decay_from"):
        resolve_groups([{"params": plain, "decay_from": "lr"}], OptimConfig())
    with pytest.raises(TypeError, match="exclude weight_decay"):
        resolve_groups([{"params": plain, "decay_from": "weight_decay", "weight_decay": 0.0}], OptimConfig())


def test_the_default_optimiser_is_the_trainers_with_its_options(planted):
    _, enc, _ = planted
    model = FM(enc.space_, embed_dim=4)
    cfg = OptimConfig("adam", lr=0.02, weight_decay=0.1, embedding_weight_decay=0.01, extra={"amsgrad": True})
    (spec,) = build_optimizers(model, cfg)
    assert (spec.name, spec.data) == ("main", "train") and isinstance(spec.optimizer, torch.optim.Adam)
    groups = spec.optimizer.param_groups
    assert [(g["name"], g["weight_decay"], g["lr"], g["amsgrad"]) for g in groups] == \
        [("embedding", 0.01, 0.02, True), ("dense", 0.1, 0.02, True)]
    assert sorted(id(p) for g in groups for p in g["params"]) == sorted(id(p) for p in model.parameters())


def test_a_model_may_name_its_own_optimiser_and_learning_rate(planted):
    _, enc, _ = planted
    model = Searching(enc.space_)
    weights, gate = build_optimizers(model, OptimConfig("adam", lr=0.02, extra={"amsgrad": True}))
    assert isinstance(weights.optimizer, torch.optim.Adam) and weights.optimizer.param_groups[0]["amsgrad"]
    assert weights.optimizer.param_groups[0]["lr"] == 0.02
    # Its own optimiser gets its own options only (SGD takes no amsgrad).
    assert (gate.name, gate.data) == ("gate", "valid") and isinstance(gate.optimizer, torch.optim.SGD)
    assert gate.optimizer.param_groups[0]["lr"] == 0.25 and gate.optimizer.param_groups[0]["params"] == [model.gate]
    trainer = Trainer(model, TrainConfig(optimizer="adagrad", lr=0.03, progress=False))
    assert [type(s.optimizer) for s in trainer.optimizers] == [torch.optim.Adagrad, torch.optim.SGD]
    assert trainer.trained_parameters == list(model.linear.parameters())


@pytest.mark.parametrize("request_, match", [
    ([], "non-empty list"),
    ("adam", "non-empty list"),
    ([{"name": "x"}], "with 'params'"),
    ([{"params": [], "data": "test"}], "data='test'"),
    ([{"params": [], "betas": (0.9, 0.9)}], r"unknown keys \['betas'\]"),
])
def test_a_malformed_description_is_the_models_mistake(planted, request_, match):
    _, enc, _ = planted
    with pytest.raises(TypeError, match=match):
        build_optimizers(Searching(enc.space_, request_), OptimConfig())


def test_an_unknown_optimizer_name_is_a_config_error(planted):
    _, enc, _ = planted
    assert resolve_optimizer("AdaGrad") is torch.optim.Adagrad and resolve_optimizer(torch.optim.SGD) is torch.optim.SGD
    with pytest.raises(ConfigError, match="unknown optimizer 'adamm'"):
        build_optimizers(Searching(enc.space_, [{"params": [], "optimizer": "adamm"}]), OptimConfig())
