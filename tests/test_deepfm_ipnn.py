"""DeepFM and IPNN: their outputs against a dense hand computation (AIM paper Eq. 9 and 10), their options,
learning on planted structure, and a checkpoint round trip."""
import numpy as np
import pytest
import torch

import fgraph
import fgraph.api as fg
from fgraph.data import FieldEncoder, FieldLoader
from fgraph.data.datasets import synthetic
from fgraph.data.schema import Schema, multi_valued, numeric
from fgraph.data.space import PAD
from fgraph.errors import ConfigError
from fgraph.models import IPNN, DeepFM, build_model
from fgraph.models.base import check_hparams
from fgraph.nn import HyperedgeInteraction
from fgraph.train import Trainer, TrainConfig, seed_everything

NAMES = ("deepfm", "ipnn")


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_thread):
    """Small batches train faster on one thread, and the machine's cores are shared."""


@pytest.fixture(scope="module")
def mixed():
    """Four categorical fields of the synthetic set, a scaled numeric field and a multi-valued field; the
    encoder and a batch of 12 rows."""
    data = synthetic(n_samples=300, n_fields=4, cardinality=4, pairs=((0, 1),), triple=None, seed=3)
    rng = np.random.default_rng(3)
    frame = data.train.copy()
    frame["price"] = rng.normal(5.0, 2.0, len(frame))
    frame["tags"] = ["|".join(rng.choice(list("abcde"), rng.integers(1, 4), replace=False)) for _ in range(len(frame))]
    schema = Schema((*data.schema.fields, numeric("price"), multi_valued("tags", max_tokens=3)),
                    label=data.schema.label)
    enc = FieldEncoder(schema).fit(frame)
    assert set(enc.space_.kinds) == {"id", "scaled", "bag"}
    batch = next(iter(FieldLoader(enc.transform(frame), batch_size=12)))
    return enc, batch


# -- the equations, by hand ---------------------------------------------------------------------------------

def embeddings_by_hand(table: torch.Tensor, batch) -> list[list[torch.Tensor]]:
    """``e[r][f]``: the row of field ``f``'s value (offset by the fields before it), the mean of the rows of a
    multi-valued field's tokens, times the value of a scaled numeric field."""
    space = batch.space
    offsets = [sum(space.cardinalities[:f]) for f in range(space.num_fields)]
    rows = []
    for r in range(batch.ids.size(0)):
        row = []
        for f in range(space.num_fields):
            if space.kinds[f] == "bag":
                tokens = [int(t) for t in batch.bags[r, space.bag_positions.index(f)] if int(t) != PAD]
                vec = sum(table[offsets[f] + t] for t in tokens) / len(tokens)
            else:
                vec = table[offsets[f] + int(batch.ids[r, f])]
            value = float(batch.values[r, f]) if space.kinds[f] == "scaled" else 1.0
            row.append(vec * value)
        rows.append(row)
    return rows


def mlp_by_hand(state: dict, prefix: str, x: torch.Tensor, layers: int, batch_norm: bool) -> torch.Tensor:
    """ReLU(BN(W x + b)) for each hidden layer (BN with its running statistics), then W_out x + b_out."""
    for k in range(layers):
        x = x @ state[f"{prefix}lins.{k}.weight"].T + state[f"{prefix}lins.{k}.bias"]
        if batch_norm:
            mean, var = state[f"{prefix}norms.{k}.running_mean"], state[f"{prefix}norms.{k}.running_var"]
            scale, shift = state[f"{prefix}norms.{k}.weight"], state[f"{prefix}norms.{k}.bias"]
            x = (x - mean) / torch.sqrt(var + 1e-5) * scale + shift
        x = torch.clamp(x, min=0)
    return x @ state[f"{prefix}lins.{layers}.weight"].T + state[f"{prefix}lins.{layers}.bias"]


def reference(name: str, state: dict, batch, layers: int, batch_norm: bool) -> torch.Tensor:
    """Eq. 9 (DeepFM) or Eq. 10 (IPNN) for every row, with explicit loops over the field pairs."""
    e = embeddings_by_hand(state["embedding.tables.0.weight"], batch)
    w = embeddings_by_hand(state["linear.weights.tables.0.weight"], batch) if name == "deepfm" else None
    n, out = batch.space.num_fields, []
    for r, row in enumerate(e):
        products = []
        for i in range(n):
            for j in range(i + 1, n):
                products.append(torch.dot(row[i], row[j]))
        flat = torch.cat(row)
        if name == "deepfm":
            first = state["linear.bias"][0] + sum(w[r][f][0] for f in range(n))
            deep = mlp_by_hand(state, "mlp.", flat.unsqueeze(0), layers, batch_norm)[0, 0]
            out.append(first + sum(products) + deep)
        else:
            x = torch.cat([flat, torch.stack(products)]).unsqueeze(0)
            out.append(mlp_by_hand(state, "mlp.", x, layers, batch_norm)[0, 0])
    return torch.stack(out)


@pytest.mark.parametrize("batch_norm", [False, True])
@pytest.mark.parametrize("name", NAMES)
def test_outputs_follow_the_equations(mixed, name, batch_norm):
    enc, batch = mixed
    seed_everything(0)
    model = build_model(name, enc.space_, embed_dim=5, mlp_dims=[7, 6], mlp_dropout=0.3, mlp_batch_norm=batch_norm)
    with torch.no_grad():
        for p in model.parameters():          # the first-order weights start at zero, the MLP near it: move them
            p.add_(0.3 * torch.randn_like(p))
        model.train()
        for _ in range(3):                     # running statistics away from (0, 1), so the check sees them
            model(batch)
    model.eval()
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    if batch_norm:
        assert not torch.allclose(state["mlp.norms.0.running_mean"], torch.zeros(7))
    with torch.no_grad():
        got = model(batch)
        expected = reference(name, state, batch, layers=2, batch_norm=batch_norm)
    assert got.shape == (12,)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_shapes_parts_and_widths(mixed):
    enc, batch = mixed
    n = enc.space_.num_fields
    deepfm, ipnn = DeepFM(enc.space_, embed_dim=4, mlp_dims=[8]), IPNN(enc.space_, embed_dim=4, mlp_dims=[8])
    for model in (deepfm, ipnn):
        out = model(batch)
        assert out.shape == (12,) and bool(torch.isfinite(out).all())
    assert deepfm.mlp.in_dim == n * 4
    assert ipnn.mlp.in_dim == n * 4 + n * (n - 1) // 2
    # IPNN's product layer: every pair i < j, in row-major order, with the inner product; no first-order term.
    assert isinstance(ipnn.products, HyperedgeInteraction) and ipnn.products.function == "inner"
    assert ipnn.products.hyperedges.tolist() == [[i, j] for i in range(n) for j in range(i + 1, n)]
    assert not hasattr(ipnn, "linear")
    e = ipnn.embedding(batch)
    torch.testing.assert_close(ipnn.products(e)[:, 0], (e[:, 0] * e[:, 1]).sum(-1))
    # One embedding table, shared by DeepFM's FM and deep parts (and the first-order weights apart).
    assert len(deepfm.embedding_parameters()) == 2


def test_defaults_options_and_coercion(mixed):
    enc, batch = mixed
    deepfm, ipnn = build_model("deepfm", enc.space_), build_model("ipnn", enc.space_)
    assert deepfm.hparams == {"embed_dim": 10, "mlp_dims": [400, 400, 400], "mlp_dropout": 0.2,
                              "mlp_batch_norm": True, "field_dims": None}
    assert ipnn.hparams == {**deepfm.hparams, "mlp_dropout": 0.3, "mlp_batch_norm": False}
    assert deepfm.mlp.hidden == [400, 400, 400] and deepfm.mlp.batch_norm and deepfm.embedding.dim == 10
    with pytest.raises(ConfigError, match=r"'deepfm' does not take option\(s\) \['hidden_units'\]"):
        build_model("deepfm", enc.space_, hidden_units=[8])
    with pytest.raises(ConfigError, match="ipnn"):
        build_model("ipnn", enc.space_, nope=1)
    coerced = check_hparams("deepfm", {"embed_dim": "8", "mlp_dims": ["16", 8], "mlp_dropout": "0.1",
                                       "mlp_batch_norm": "no"})
    assert coerced == {"embed_dim": 8, "mlp_dims": [16, 8], "mlp_dropout": 0.1, "mlp_batch_norm": False}
    for bad in ({"mlp_dropout": 1.0}, {"mlp_dims": 8}, {"embed_dim": 0}, {"embed_dim": 2.5},
                {"mlp_batch_norm": "perhaps"}):
        with pytest.raises(ConfigError, match="ipnn"):
            build_model("ipnn", enc.space_, **bad)
    # field_dims: mixed sizes are projected to embed_dim, so the MLP's width stays n d.
    n = enc.space_.num_fields
    mixed_dims = build_model("ipnn", enc.space_, embed_dim=4, mlp_dims=[8], field_dims={"f0": 2})
    assert mixed_dims.mlp.in_dim == n * 4 + n * (n - 1) // 2 and mixed_dims(batch).shape == (12,)
    for name in NAMES:
        space = build_model(name, enc.space_).search_space
        assert {"model.embed_dim", "model.mlp_dropout", "model.mlp_batch_norm"} <= set(space)


# -- learning ----------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small_planted():
    """6 fields of 6 values; the label depends only on the pairs (f0, f1) and (f2, f3): no main effects."""
    data = synthetic(n_samples=6000, n_fields=6, cardinality=6, pairs=((0, 1), (2, 3)), triple=None,
                     strength=2.0, seed=0)
    enc = FieldEncoder(data.schema).fit(data.train)
    return enc, enc.transform(data.train), enc.transform(data.valid)


def valid_auc(name, small_planted, **options):
    enc, train, valid = small_planted
    seed_everything(0)
    model = build_model(name, enc.space_, **options)
    config = TrainConfig(epochs=6, batch_size=256, lr=0.01, progress=False, threads=1, patience=6)
    return Trainer(model, config).fit(train, valid).evaluate(valid)["auc"]


@pytest.fixture(scope="module")
def lr_auc(small_planted):
    return valid_auc("lr", small_planted)


@pytest.mark.parametrize("name", NAMES)
def test_learns_the_planted_pairs_that_lr_cannot(small_planted, lr_auc, name):
    auc = valid_auc(name, small_planted, embed_dim=8, mlp_dims=[64, 64])
    # The label has no first-order signal: LR stays near chance (0.5), a model of pairs does much better.
    assert lr_auc < 0.6 and auc > 0.85 and auc > lr_auc + 0.25, (name, auc, lr_auc)


# -- checkpoints -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_a_trained_run_loads_and_predicts_the_same(name, tmp_path):
    run = fg.train(name, "synthetic", out=tmp_path / "r", epochs=1, batch_size=512, embed_dim=4, progress=False,
                   threads=1, model_options={"mlp_dims": [16, 8]}, dataset_options={"n_samples": 2000})
    predictor = fgraph.load(run.run_dir)
    assert type(predictor.model) is type(run.model) and predictor.model.hparams == run.model.hparams
    test = fg.load_dataset("synthetic", n_samples=2000).test
    run.model.eval()
    with torch.no_grad():
        batch = next(iter(FieldLoader(run.encoder.transform(test), batch_size=len(test))))
        expected = torch.sigmoid(run.model(batch)).double().numpy()
    np.testing.assert_allclose(predictor.predict(test), expected, rtol=1e-6, atol=1e-7)
