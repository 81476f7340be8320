"""AFM and the IFM family: the pooling against a dense reference on both paths, the field aspect, sampling,
learning on planted structure, the regression protocol, pre-training, exported graphs and the CLI."""
import itertools
import json

import networkx as nx
import numpy as np
import pandas as pd
import pytest
import torch
from torch_geometric.data import Batch, Data

import fgraph.api as fg
from fgraph.cli import main
from fgraph.data import FieldEncoder, FieldLoader
from fgraph.data.schema import Schema, categorical, numeric
from fgraph.errors import ConfigError
from fgraph.explain import pair_graph
from fgraph.models import AFM, FM, IFM, INN, DeepIFM, build_model
from fgraph.nn import AttentiveEdgePooling, FieldAspect, FMInteraction, InteractionSampling, pair_products
from fgraph.train import Trainer, TrainConfig, seed_everything
from fgraph.train.optim import OptimConfig, resolve_groups
from fgraph.train.protocols import apply_protocol

B, N, D = 5, 6, 8


def pooling_reference(pool, x, pairs=None, scale=None):
    """AFM Eq. 4-5 / IFM Eq. 5 with a Python loop over the pairs of each instance."""
    outs, alphas = [], []
    for row in x:
        n = row.size(0)
        pair_list = list(itertools.combinations(range(n), 2)) if pairs is None else pairs
        inter = torch.stack([row[i] * row[j] for i, j in pair_list])                 # (P, d)
        pre = inter @ pool.lin.weight.T
        pre = pre / pool.temperature + pool.lin.bias if pool.temperature_mode == "input" else pre + pool.lin.bias
        hidden = torch.relu(pre) if pool.activation == "relu" else torch.tanh(pre)
        logits = (hidden @ pool.att.weight.T).squeeze(-1)
        if pool.temperature_mode == "logit":
            logits = logits / pool.temperature
        alpha = torch.exp(logits) / torch.exp(logits).sum()
        values = inter if scale is None else inter * scale
        outs.append((alpha.unsqueeze(-1) * values).sum(0))
        alphas.append(alpha)
    return torch.stack(outs), torch.stack(alphas)


@pytest.fixture
def x():
    torch.manual_seed(0)
    return torch.randn(B, N, D)


def general_inputs(x):
    """The same graphs as PyG node rows: the pairs i < j of each instance as a global edge_index, and batch."""
    i, j = torch.triu_indices(N, N, 1)
    offset = (torch.arange(B) * N).repeat_interleave(i.numel())
    edge_index = torch.stack([i.repeat(B) + offset, j.repeat(B) + offset])
    return x.reshape(B * N, D), edge_index, torch.arange(B).repeat_interleave(N)


@pytest.mark.parametrize("options", [
    {},
    {"temperature": 3.0},
    {"temperature": 3.0, "temperature_mode": "logit"},
    {"activation": "tanh", "attention_channels": 5},
])
def test_pooling_matches_the_dense_reference_on_both_paths(x, options):
    torch.manual_seed(1)
    pool = AttentiveEdgePooling(D, **{"attention_channels": 4, **options})
    with torch.no_grad():
        pool.lin.bias.normal_()                           # a non-zero b, so its place relative to τ matters
    scale = torch.rand(N * (N - 1) // 2, D) + 0.5
    ref, ref_alpha = pooling_reference(pool, x)
    ref_scaled, _ = pooling_reference(pool, x, scale=scale)

    fast, (pairs, alpha) = pool(x, return_attention_weights=True)
    torch.testing.assert_close(fast, ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(alpha, ref_alpha, atol=1e-5, rtol=1e-5)
    assert [tuple(p) for p in pairs.t().tolist()] == list(itertools.combinations(range(N), 2))
    torch.testing.assert_close(pool(x, pair_scale=scale), ref_scaled, atol=1e-5, rtol=1e-5)

    flat, edge_index, batch = general_inputs(x)
    general, (_, g_alpha) = pool(flat, edge_index, batch, return_attention_weights=True)
    torch.testing.assert_close(general, ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(g_alpha.view(B, -1), ref_alpha, atol=1e-5, rtol=1e-5)
    general_scaled = pool(flat, edge_index, batch, pair_scale=scale.repeat(B, 1))
    torch.testing.assert_close(general_scaled, ref_scaled, atol=1e-5, rtol=1e-5)
    # reduce=False gives the weighted pair vectors that sum to the pooled output.
    torch.testing.assert_close(pool(x, reduce=False).sum(1), fast, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("shape, pairs", [
    ((3, 6, 4), "upper"),                                   # dense field embeddings, all pairs i < j
    ((3, 6, 4), [(0, 3), (3, 0), (2, 2), (0, 3)]),          # repeated, reversed and self pairs
    ((9, 4), [(0, 1), (1, 0), (5, 8), (8, 8), (1, 5)]),     # node rows with a global edge_index
])
def test_pair_products_gradients_match_autograds_product(shape, pairs):
    """pair_products keeps only x for its backward pass; its first and second derivatives are those of the
    plain gathered product."""
    torch.manual_seed(3)
    x = torch.randn(*shape, dtype=torch.double, requires_grad=True)
    n = shape[-2]
    index = torch.triu_indices(n, n, 1) if pairs == "upper" else torch.tensor(pairs).t()
    weight = torch.randn(*pair_products(x.detach(), index).shape, dtype=torch.double)

    def plain(x):
        return x.index_select(-2, index[0]) * x.index_select(-2, index[1])

    out = pair_products(x, index)
    torch.testing.assert_close(out, plain(x))
    torch.testing.assert_close(pair_products(x.detach(), index), plain(x).detach())
    (g,) = torch.autograd.grad((out * weight).sum(), x, create_graph=True)
    (g_ref,) = torch.autograd.grad((plain(x) * weight).sum(), x, create_graph=True)
    torch.testing.assert_close(g, g_ref)
    (gg,) = torch.autograd.grad(g.pow(2).sum(), x)
    (gg_ref,) = torch.autograd.grad(g_ref.pow(2).sum(), x)
    torch.testing.assert_close(gg, gg_ref)
    assert torch.autograd.gradcheck(lambda x: pair_products(x, index), (x,))
    assert torch.autograd.gradgradcheck(lambda x: pair_products(x, index), (x,))


def test_pooling_on_arbitrary_graphs_and_chosen_pairs(x):
    """Graphs of different sizes with arbitrary pair lists (PyG Batch), and a sampled pair list on the fast path."""
    torch.manual_seed(2)
    pool = AttentiveEdgePooling(D, 4)
    graphs, refs = [], []
    for n in (3, 5, 2, 7):
        feats = torch.randn(n, D)
        pairs = [(i, j) for i, j in itertools.permutations(range(n), 2) if torch.rand(()) < 0.5] or [(0, 1)]
        graphs.append(Data(x=feats, edge_index=torch.tensor(pairs).t(), num_nodes=n))
        refs.append(pooling_reference(pool, feats.unsqueeze(0), pairs)[0])
    data = Batch.from_data_list(graphs)
    out = pool(data.x, data.edge_index, data.batch)
    torch.testing.assert_close(out, torch.cat(refs), atol=1e-5, rtol=1e-5)
    # Listing the edges in another order changes nothing.
    perm = torch.randperm(data.edge_index.size(1))
    torch.testing.assert_close(pool(data.x, data.edge_index[:, perm], data.batch), out, atol=1e-5, rtol=1e-5)

    chosen = [(0, 3), (1, 2), (4, 5), (2, 5)]
    fast = pool(x, torch.tensor(chosen).t())
    torch.testing.assert_close(fast, pooling_reference(pool, x, chosen)[0], atol=1e-5, rtol=1e-5)


def test_uniform_attention_is_fm_up_to_the_number_of_pairs(x):
    """With h = 0 every pair gets 1/P, so P * p^T pooled with p = 1 is FM's pairwise term."""
    pool = AttentiveEdgePooling(D, 4)
    with torch.no_grad():
        pool.att.weight.zero_()
    num_pairs = N * (N - 1) // 2
    torch.testing.assert_close(pool(x).sum(-1) * num_pairs, FMInteraction()(x), atol=1e-4, rtol=1e-5)


def test_attention_weights_sum_to_one_per_instance_and_differ(x):
    """Normalising over a size-1 axis (a known bug of one reference implementation) would give every weight 1."""
    pool = AttentiveEdgePooling(D, 4)
    _, (_, alpha) = pool(x, return_attention_weights=True)
    torch.testing.assert_close(alpha.sum(1), torch.ones(B))
    assert bool((alpha < 1).all()) and float(alpha.detach().std(1).min()) > 1e-4
    flat, edge_index, batch = general_inputs(x)
    _, (_, g_alpha) = pool(flat, edge_index, batch, return_attention_weights=True)
    torch.testing.assert_close(torch.zeros(B).index_add_(0, batch[edge_index[0]], g_alpha), torch.ones(B))


@pytest.mark.parametrize("mode", ["input", "logit"])
def test_high_temperature_makes_the_feature_aspect_uniform(planted, mode):
    _, enc, data = planted
    batch = next(iter(FieldLoader(data["test"], 64)))
    num_pairs = 28
    hot = IFM(enc.space_, embed_dim=8, temperature=1e9, temperature_mode=mode)
    cold = IFM(enc.space_, embed_dim=8, temperature=0.05, temperature_mode=mode)
    cold.load_state_dict(hot.state_dict())
    T = hot.pair_weights(batch)["weight"]
    torch.testing.assert_close(T, torch.full_like(T, 1.0 / num_pairs), atol=1e-6, rtol=0)
    assert float(cold.pair_weights(batch)["weight"].std(1).min()) > 1e-3


def test_model_outputs_follow_the_papers_equations(planted):
    """AFM Eq. 6, IFM Eq. 9 and INN Eq. 14-15 (sum variant) from the models' own parameters."""
    _, enc, data = planted
    batch = next(iter(FieldLoader(data["test"], 6)))
    afm, ifm = AFM(enc.space_, embed_dim=4).eval(), IFM(enc.space_, embed_dim=4, temperature=2.0).eval()
    inn = INN(enc.space_, embed_dim=4, pair_reduce="sum", mlp_dims=[3]).eval()
    with torch.no_grad():
        afm.projection.weight.normal_()
        e = afm.embedding(batch)
        pooled, _ = pooling_reference(afm.pooling, e)
        torch.testing.assert_close(afm(batch), afm.linear(batch) + pooled @ afm.projection.weight[0])
        for model in (ifm, inn):
            e = model.embedding(batch)
            f = model.field_aspect(model.pairs)
            terms, _ = pooling_reference(model.pooling, e, scale=f)          # sum_ij T_ij f_ij * v_i * v_j
            expected = terms.sum(-1) if model is ifm else model.mlp(terms).squeeze(-1)
            torch.testing.assert_close(model(batch), model.linear(batch) + expected, atol=1e-5, rtol=1e-5)


def test_field_aspect_parameter_counts_and_equation():
    torch.manual_seed(0)
    n, K, KF = 10, 256, 26
    factorised, full = FieldAspect(n, K, KF), FieldAspect(n, K, None)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(factorised) == n * KF + KF * K                 # O(n K_F + K_F K), Eq. 6
    assert count(full) == n * (n - 1) // 2 * K                  # n(n-1)/2 x K (IFM⁻); 11,520 for Frappe at K = 256
    assert count(full) == 11_520
    fields = torch.tensor([[0, 3, 9], [1, 7, 2]])
    f = factorised(fields)
    U, Dm = factorised.U, factorised.D
    ref = torch.stack([Dm.T @ (U[i] * U[j]) for i, j in fields.t().tolist()])
    torch.testing.assert_close(f, ref)
    torch.testing.assert_close(f, factorised(fields.flip(0)))     # f_ij = f_ji
    torch.testing.assert_close(full(fields), full(fields.flip(0)))
    assert full(torch.tensor([[0, 1], [2, 3]])).shape == (2, K)
    # Both start near 1, so IFM starts as AFM with p = 1. Each entry of f is 1 plus noise of std about
    # sqrt(K_F) * 0.01 = 0.05; over 768 entries a bound of 0.2 (4 std) failed now and then, unseeded.
    assert float((f.detach() - 1).abs().max()) < 0.3
    with pytest.raises(ValueError, match="paired with itself"):
        full(torch.tensor([[4], [4]]))


def test_sampling_keeps_exactly_c_pairs():
    torch.manual_seed(0)
    w = torch.rand(45) + 0.01
    sampler = InteractionSampling(7)
    draws = [sampler(w) for _ in range(50)]
    for kept in draws:
        assert kept.shape == (7,) and kept.unique().numel() == 7 and bool((kept[1:] > kept[:-1]).all())
    assert len({tuple(k.tolist()) for k in draws}) > 1            # Gumbel noise in training
    sampler.eval()
    top = sampler(w)
    torch.testing.assert_close(top, torch.topk(w, 7).indices.sort().values)
    assert all(torch.equal(sampler(w), top) for _ in range(3))
    # A fraction rounds up; per-row choices; grouped entries keep c per group (all of a smaller group).
    assert InteractionSampling(0.1)(w).shape == (5,)
    assert sampler(torch.rand(4, 45)).shape == (4, 7)
    index = torch.tensor([0] * 10 + [1] * 3 + [2] * 12)
    kept = InteractionSampling(4)(torch.rand(25), index)
    assert torch.bincount(index[kept]).tolist() == [4, 3, 4]


def test_gumbel_top_k_draws_in_proportion_to_the_weights():
    torch.manual_seed(0)
    sampler = InteractionSampling(1)
    w = torch.tensor([1.0, 1.0, 8.0, 0.0])
    counts = torch.bincount(torch.cat([sampler(w) for _ in range(4000)]), minlength=4).float() / 4000
    torch.testing.assert_close(counts, torch.tensor([0.1, 0.1, 0.8, 0.0]), atol=0.03, rtol=0)


def test_ifm_sampling_attends_to_exactly_c_pairs(planted):
    _, enc, data = planted
    batch = next(iter(FieldLoader(data["test"], 32)))
    model = IFM(enc.space_, embed_dim=8, sample_pairs=5)
    kept, T = model.pair_attention(batch)                 # training mode: a Gumbel-top-k draw
    assert kept.shape == (5,) and T.shape == (32, 5)
    torch.testing.assert_close(T.sum(1), torch.ones(32))
    weights = model.pair_weights(batch)["weight"]          # evaluation mode: the top 5 by norm, every time
    assert model.training and weights.shape == (32, 28) and bool(((weights > 0).sum(1) == 5).all())
    assert torch.equal(weights > 0, model.pair_weights(batch)["weight"] > 0)
    norms = model.field_aspect(model.pairs).norm(dim=-1)
    assert set((weights[0] > 0).nonzero().squeeze(1).tolist()) == set(torch.topk(norms, 5).indices.tolist())
    inn = INN(enc.space_, embed_dim=8, sample_pairs=0.25, mlp_dims=[8])
    assert inn(batch).shape == (32,)


# -- models on planted structure --------------------------------------------------------------------------------

@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_thread):
    """Small batches train faster on one thread, and the machine's cores are shared."""



def fit(model, data, **cfg):
    """A short run on the shared ``planted`` set (tests/conftest.py: 8 fields, pairs (f0, f1) and (f2, f3))."""
    seed_everything(0)
    config = TrainConfig(**{"epochs": 2, "batch_size": 256, "lr": 0.01, "progress": False, **cfg})
    return Trainer(model, config).fit(data["train"], data["valid"])


@pytest.fixture(scope="module")
def trained(planted):
    """``trained(name, **options)``: the model trained on the planted set, and its trainer (each trained once)."""
    _, enc, data = planted
    cache = {}

    def get(name, **options):
        key = (name, json.dumps(options, sort_keys=True))
        if key not in cache:
            seed_everything(0)
            model = build_model(name, enc.space_, embed_dim=8, **options)
            cache[key] = model, fit(model, data)
        return cache[key]
    return get


PLANTED = {frozenset(("f0", "f1")), frozenset(("f2", "f3"))}


def ranked_pairs(graph, attr):
    return [frozenset(e[:2]) for e in sorted(graph.edges(data=attr), key=lambda e: -e[2])]


@pytest.mark.parametrize("name, options", [
    ("afm", {}),
    ("ifm", {}),
    ("ifm", {"sample_pairs": 8, "factorise": False}),
    ("inn", {"mlp_dims": [16]}),
    ("deepifm", {"mlp_dims": [16, 16]}),
])
def test_models_learn_the_planted_pairs(planted, trained, name, options):
    data, _, encoded = planted
    bayes = data.meta["bayes_auc"]["test"]
    auc = trained(name, **options)[1].evaluate(encoded["test"])["auc"]
    # Chance is 0.5 and the Bayes AUC about 0.90; a first-order model cannot beat chance here.
    assert auc > 0.8 and auc > bayes - 0.06, (name, auc, bayes)


def test_afm_attention_finds_the_planted_pairs(planted, trained):
    """On data with structure the weights are far from uniform: the planted pairs get the most attention."""
    _, _, data = planted
    model, _ = trained("afm")
    alpha = model.pair_weights(next(iter(FieldLoader(data["test"], 200))))["weight"]
    torch.testing.assert_close(alpha.sum(1), torch.ones(200))
    assert float(alpha.std(1).min()) > 1e-4                    # no row weighs its pairs equally
    planted = [k for k, (i, j) in enumerate(model.pairs.t().tolist()) if (i, j) in ((0, 1), (2, 3))]
    assert float(alpha[:, planted].sum(1).mean()) > 0.3        # 2/28 if the weights were uniform
    weights = sorted((w for _, _, w in pair_graph(model, FieldLoader(data["test"], 1024)).edges(data="weight")),
                     reverse=True)
    assert set(ranked_pairs(pair_graph(model, FieldLoader(data["test"], 1024)), "weight")[:2]) == PLANTED
    assert weights[1] > 3 * weights[2]


def test_ifm_field_aspect_separates_signal_from_noise_fields(trained):
    """||f_ij|| of the planted pairs exceeds that of every pair with a field that carries no signal; the
    unfactorised aspect (a free vector per pair) ranks the planted pairs first."""
    model, _ = trained("ifm")
    norms = {frozenset(e[:2]): e[2] for e in pair_graph(model).edges(data="field_norm")}
    noise = [w for pair, w in norms.items() if pair & {"f4", "f5", "f6", "f7"}]
    assert min(norms[p] for p in PLANTED) > max(noise)
    free, _ = trained("ifm", sample_pairs=8, factorise=False)
    assert set(ranked_pairs(pair_graph(free), "field_norm")[:2]) == PLANTED


def test_regression_protocol_with_adagrad(planted):
    """±1 labels, squared loss, RMSE of predictions clipped to [-1, 1]; Adagrad through the optimizer option."""
    data, enc, _ = planted
    pm1 = {k: getattr(data, k).assign(label=2 * getattr(data, k)["label"] - 1) for k in ("train", "valid", "test")}
    encoded = {k: enc.transform(v) for k, v in pm1.items()}
    seed_everything(0)
    model = AFM(enc.space_, embed_dim=8, dropout=0.1, attention_l2=1e-4)
    trainer = fit(model, encoded, task="regression", optimizer="adagrad", lr=0.05)
    assert any(isinstance(s.optimizer, torch.optim.Adagrad) for s in trainer.optimizers)
    rmse = trainer.evaluate(encoded["test"])["rmse"]
    y = encoded["test"].y.numpy()
    constant = float(np.sqrt(np.mean((y - y.mean()) ** 2)))
    pred = np.clip(trainer.predict(encoded["test"]), -1, 1)
    assert rmse == pytest.approx(float(np.sqrt(np.mean((pred - y) ** 2))), rel=1e-5)
    assert rmse < 0.9 * constant, (rmse, constant)


def test_l2_applies_to_the_attention_W_and_the_field_aspect_only(planted):
    _, enc, data = planted
    model = IFM(enc.space_, embed_dim=8, attention_l2=0.5, field_l2=0.25)
    groups = {g["name"]: g for g in resolve_groups(model.parameter_groups(), OptimConfig(weight_decay=0.0))}
    assert [id(p) for p in groups["attention_W"]["params"]] == [id(model.pooling.lin.weight)]
    assert groups["attention_W"]["weight_decay"] == 0.5 and groups["field_aspect"]["weight_decay"] == 0.25
    everything = [id(p) for g in groups.values() for p in g["params"]]
    assert sorted(everything) == sorted(id(p) for p in model.parameters())      # each parameter once
    # A zero loss leaves every parameter but W and the field aspect where it was.
    opt = torch.optim.SGD(resolve_groups(model.parameter_groups(), OptimConfig()), lr=0.1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    (0 * model(next(iter(FieldLoader(data["train"], 16))))).sum().backward()
    opt.step()
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    assert changed == {"pooling.lin.weight", "field_aspect.U", "field_aspect.D"}
    torch.testing.assert_close(model.pooling.lin.weight, before["pooling.lin.weight"] * (1 - 0.1 * 0.5))
    # Without attention_l2, W stays with the dense weights.
    assert "attention_W" not in {g["name"] for g in AFM(enc.space_).parameter_groups()}


def test_pretraining_from_an_fm_run(tmp_path, capsys):
    fm_run = fg.train("fm", "synthetic", out=tmp_path / "fm", epochs=1, embed_dim=6, progress=False,
                      dataset_options={"n_samples": 3000})
    afm_dir = tmp_path / "afm"
    assert main(["train", "--model", "afm", "--embed-dim", "6", "--epochs", "1", "--no-progress", "--out",
                 str(afm_dir), "--dataset-option", "n_samples=3000", "--model-option",
                 f"pretrained={tmp_path / 'fm'}"]) == 0
    model = IFM(fm_run.encoder.space_, embed_dim=6, pretrained=fg.load_run(tmp_path / "fm")[0])
    torch.testing.assert_close(model.embedding.weight, fm_run.model.embedding.weight)
    torch.testing.assert_close(model.linear.weights.weight, fm_run.model.linear.weights.weight)
    assert model.hparams["pretrained"] is None
    # The AFM run rebuilds from its own checkpoint, without the FM run.
    saved = json.loads((afm_dir / "config.json").read_text())
    assert saved["model_options"]["pretrained"] == str(tmp_path / "fm")
    for path in (tmp_path / "fm").iterdir():
        path.unlink()
    (tmp_path / "fm").rmdir()
    afm, _, _ = fg.load_run(afm_dir)
    assert isinstance(afm, AFM)
    with pytest.raises(ValueError, match="embed_dim=6"):
        AFM(fm_run.encoder.space_, embed_dim=4, pretrained=fm_run.model)
    other = FieldEncoder(Schema((categorical("a"), categorical("b")))).fit(pd.DataFrame({"a": ["x"], "b": ["y"]}))
    with pytest.raises(ValueError, match="pre-trained FM"):
        AFM(other.space_, embed_dim=6, pretrained=fm_run.model)
    with pytest.raises(TypeError, match="trained FM"):
        AFM(fm_run.encoder.space_, pretrained=AFM(fm_run.encoder.space_))
    # A model reads no files: a run directory goes through fgraph.api (as above), the error says so.
    with pytest.raises(ConfigError, match=r"not from the path .*fgraph.api.load_run"):
        AFM(fm_run.encoder.space_, embed_dim=6, pretrained=str(tmp_path / "afm"))
    with pytest.raises(ConfigError, match="fgraph.api.load_run"):
        build_model("ifm", fm_run.encoder.space_, embed_dim=6, pretrained=tmp_path / "afm")


def test_the_bars_init_keeps_the_pretrained_weights(tmp_path):
    """The bars protocol re-draws every table when the trainer is built; a pre-trained AFM's embeddings and
    first-order weights are the FM's, not N(0, 1e-4), when training starts (they were re-drawn before)."""
    fm_run = fg.train("fm", "synthetic", out=tmp_path / "fm", epochs=1, embed_dim=6, progress=False,
                      dataset_options={"n_samples": 3000})
    afm = AFM(fm_run.encoder.space_, embed_dim=6, pretrained=fm_run.model)
    attention = afm.pooling.lin.weight.clone()
    Trainer(afm, TrainConfig(**apply_protocol("bars", {"progress": False})))
    torch.testing.assert_close(afm.embedding.weight, fm_run.model.embedding.weight, rtol=0, atol=0)
    torch.testing.assert_close(afm.linear.weights.weight, fm_run.model.linear.weights.weight, rtol=0, atol=0)
    assert fm_run.model.embedding.weight.abs().max() > 1e-2          # not what the protocol would draw
    assert not torch.equal(afm.pooling.lin.weight, attention)         # the rest gets the protocol's init


def test_projection_init_fm_starts_a_pretrained_afm_as_its_fm(tmp_path):
    fm_run = fg.train("fm", "synthetic", out=tmp_path / "fm", epochs=2, embed_dim=6, progress=False,
                      dataset_options={"n_samples": 3000})
    afm = AFM(fm_run.encoder.space_, embed_dim=6, pretrained=fm_run.model, projection_init="fm")
    pairs = afm.pairs.size(1)
    assert torch.all(afm.projection.weight == pairs) and torch.all(afm.pooling.att.weight == 0)
    # Uniform attention (a_ij = 1/P) and p = P: the pair term is exactly the FM's, so the model is its FM.
    Trainer(afm, TrainConfig(**apply_protocol("bars", {"progress": False})))      # and stays so
    batch = next(iter(FieldLoader(fm_run.data["test"], 64)))
    afm.eval(), fm_run.model.eval()
    with torch.no_grad():
        torch.testing.assert_close(afm(batch), fm_run.model(batch), rtol=1e-5, atol=1e-5)
    # A chosen start is kept under a protocol's dense init; the default one is re-drawn (FuxiCTR's Xavier).
    for init, kept in (("fm", True), ("ones", True), (None, False)):
        model = AFM(fm_run.encoder.space_, embed_dim=6, projection_init=init)
        start = model.projection.weight.clone()
        Trainer(model, TrainConfig(**apply_protocol("bars", {"progress": False})))
        assert torch.equal(model.projection.weight, start) == kept, init
    with pytest.raises(ConfigError, match="projection_init must be one of"):
        AFM(fm_run.encoder.space_, projection_init="twos")


def test_aspect_init_fm_starts_a_pretrained_ifm_as_its_fm(tmp_path):
    fm_run = fg.train("fm", "synthetic", out=tmp_path / "fm", epochs=2, embed_dim=6, progress=False,
                      dataset_options={"n_samples": 3000})
    ifm = IFM(fm_run.encoder.space_, embed_dim=6, field_factors=4, pretrained=fm_run.model, aspect_init="fm")
    pairs = ifm.pairs.size(1)
    f = ifm.field_aspect(ifm.pairs)
    assert torch.all(ifm.pooling.att.weight == 0)
    torch.testing.assert_close(f, torch.full_like(f, float(pairs)), rtol=0.05, atol=0)   # f_ij ≈ P·1, with noise
    assert f.std() > 0                                                    # the noise that breaks the symmetry
    Trainer(ifm, TrainConfig(**apply_protocol("bars", {"progress": False})))        # h is kept
    assert torch.all(ifm.pooling.att.weight == 0)
    # Without the noise, uniform T_ij = 1/P and f_ij = P·1 make the pair term exactly the FM's.
    ifm.field_aspect.init_std = 0.0
    ifm.field_aspect.reset_parameters()
    batch = next(iter(FieldLoader(fm_run.data["test"], 64)))
    ifm.eval(), fm_run.model.eval()
    with torch.no_grad():
        torch.testing.assert_close(ifm(batch), fm_run.model(batch), rtol=1e-5, atol=1e-5)
    # The default start is 1/P of that: f_ij ≈ 1.
    default = IFM(fm_run.encoder.space_, embed_dim=6, field_factors=4).field_aspect
    torch.testing.assert_close(default(ifm.pairs), torch.ones(pairs, 6), rtol=0, atol=0.05)
    with pytest.raises(ConfigError, match="aspect_init must be one of"):
        IFM(fm_run.encoder.space_, aspect_init="twos")
    with pytest.raises(ValueError, match="init_scale must be > 0"):
        FieldAspect(4, 8, init_scale=0.0)


def test_pretrained_fm_is_trained_first_inside_the_run(tmp_path, monkeypatch, capsys):
    loaded = []
    load_fm = AFM.load_fm

    def recording(self, fm):
        loaded.append({k: v.clone() for k, v in fm.state_dict().items()})
        return load_fm(self, fm)

    monkeypatch.setattr(AFM, "load_fm", recording)
    options = dict(out=tmp_path / "afm", epochs=1, embed_dim=6, progress=False, seed=4,
                   dataset_options={"n_samples": 3000}, model_options={"pretrained": "fm"})
    afm_run = fg.train("afm", "synthetic", **options)
    fm_dir = tmp_path / "afm" / "pretrained-fm"
    assert "pre-training an FM in" in capsys.readouterr().out
    fm, _, _ = fg.load_run(fm_dir)
    assert isinstance(fm, FM) and fm.embedding.dim == 6
    assert json.loads((fm_dir / "config.json").read_text())["train"]["seed"] == 4
    assert len(loaded) == 1 and all(torch.equal(loaded[0][k], v) for k, v in fm.state_dict().items())
    assert json.loads((tmp_path / "afm" / "config.json").read_text())["model_options"]["pretrained"] == "fm"
    assert isinstance(afm_run.model, AFM)
    # Run again over the same directory: the FM is trained again only when the run is replaced.
    fm_mtime = (fm_dir / "metrics.json").stat().st_mtime_ns
    fg.train("afm", "synthetic", **{**options, "resume": True})
    assert "already trained" in capsys.readouterr().out
    assert (fm_dir / "metrics.json").stat().st_mtime_ns == fm_mtime
    fg.train("afm", "synthetic", **{**options, "overwrite": True})
    assert "pre-training an FM in" in capsys.readouterr().out


def test_interaction_graphs_per_instance_and_per_dataset(planted, trained):
    raw, enc, data = planted
    model, _ = trained("afm")
    batch = next(iter(FieldLoader(data["test"], 3)))
    graphs = pair_graph(model, batch, enc)
    assert len(graphs) == 3 and all(isinstance(g, nx.Graph) and not g.is_directed() for g in graphs)
    g = graphs[0]
    assert set(g.nodes) == set(enc.space_.names) and g.number_of_edges() == 28
    assert sum(w for _, _, w in g.edges(data="weight")) == pytest.approx(1.0, abs=1e-5)
    assert g.nodes["f0"]["value"] == raw.test["f0"].iloc[0]
    found = model.pair_weights(batch)
    assert found["pairs"][:, 0].tolist() == [0, 1]
    assert g["f0"]["f1"]["weight"] == pytest.approx(float(found["weight"][0, 0]))
    whole = pair_graph(model, [batch])
    mean = found["weight"].mean(0)
    assert whole["f0"]["f1"]["weight"] == pytest.approx(float(mean[0]), abs=1e-6)
    with pytest.raises(ValueError, match="depend on the row"):
        pair_graph(model)
    ifm = IFM(enc.space_, embed_dim=8, sample_pairs=4)
    ig = pair_graph(ifm, batch)[0]
    assert {"weight", "field_norm"} <= set(next(iter(ig.edges(data=True)))[2])
    assert sum(1 for _, _, w in ig.edges(data="weight") if w > 0) == 4


def test_deepifm_pairs_only_nodes_of_different_columns():
    frame = pd.DataFrame({"age": np.linspace(0, 1, 50), "city": list("abcde") * 10, "label": [0, 1] * 25})
    schema = Schema((numeric("age", "bucket", buckets=(3, 7)), categorical("city")), label="label")
    enc = FieldEncoder(schema).fit(frame)
    assert enc.space_.sources == ["age", "age", "city"]
    deep = DeepIFM(enc.space_, embed_dim=4, mlp_dims=[4])
    assert deep.pairs.t().tolist() == [[0, 2], [1, 2]] and deep.pooling.activation == "tanh"
    assert IFM(enc.space_, embed_dim=4).pairs.size(1) == 3
    out = deep(next(iter(FieldLoader(enc.transform(frame), 8))))
    assert out.shape == (8,) and bool(torch.isfinite(out).all())


def test_checkpoint_options_rebuild_every_model(planted):
    _, enc, data = planted
    batch = next(iter(FieldLoader(data["test"], 8)))
    for cls, options in [(AFM, {"dropout": 0.1}), (IFM, {"factorise": False}), (INN, {"pair_reduce": "sum"}),
                         (DeepIFM, {"mlp_dims": [5]})]:
        model = cls(enc.space_, embed_dim=4, **options).eval()
        again = build_model(model.model_name, enc.space_, **model.hparams).eval()
        again.load_state_dict(model.state_dict())
        torch.testing.assert_close(again(batch), model(batch))
    assert DeepIFM(enc.space_).hparams["activation"] == "tanh" and IFM(enc.space_).hparams["temperature"] == 10.0


def test_bad_input_gives_clear_errors(planted):
    _, enc, _ = planted
    pool = AttentiveEdgePooling(D, 4)
    with pytest.raises(ValueError, match=r"\(B, n, 8\)"):
        pool(torch.randn(2, 3, 5))
    with pytest.raises(ValueError, match="outside 0..5"):
        pool(torch.randn(2, 6, D), torch.tensor([[0], [6]]))
    with pytest.raises(ValueError, match="need an edge_index"):
        pool(torch.randn(4, D))
    with pytest.raises(ValueError, match="different graphs"):
        pool(torch.randn(4, D), torch.tensor([[0], [3]]), torch.tensor([0, 0, 1, 1]))
    with pytest.raises(ValueError, match="pair_scale of shape"):
        pool(torch.randn(2, 6, D), pair_scale=torch.ones(14, D))
    with pytest.raises(ValueError, match="at least 2 fields"):
        pool(torch.randn(2, 1, D))
    with pytest.raises(ValueError, match="temperature must be > 0"):
        AttentiveEdgePooling(D, temperature=0)
    with pytest.raises(ValueError, match="activation"):
        AttentiveEdgePooling(D, activation="gelu")
    with pytest.raises(ValueError, match="fraction"):
        InteractionSampling(1.5)
    with pytest.raises(ValueError, match="non-negative"):
        InteractionSampling(2)(torch.tensor([1.0, -1.0, 2.0]))
    with pytest.raises(ValueError, match="outside 0..3"):
        FieldAspect(4, 8)(torch.tensor([[0], [4]]))
    with pytest.raises(ValueError, match="pair_reduce"):
        INN(enc.space_, pair_reduce="mean")
    with pytest.raises(ValueError, match=r"does not take option\(s\) \['temperature'\]"):
        build_model("afm", enc.space_, temperature=2.0)
    single = FieldEncoder(Schema((categorical("a"),))).fit(pd.DataFrame({"a": ["x", "y"], "label": [0, 1]}))
    with pytest.raises(ValueError, match="at least 2"):
        AFM(single.space_)


@pytest.mark.parametrize("model", ["afm", "ifm", "inn", "deepifm"])
def test_cli_trains_each_model(model, tmp_path, capsys):
    out = tmp_path / model
    argv = ["train", "--model", model, "--epochs", "1", "--embed-dim", "4", "--no-progress", "--out", str(out),
            "--dataset-option", "n_samples=3000"]
    if model == "ifm":
        argv += ["--task", "regression", "--optimizer", "adagrad", "--model-option", "sample_pairs=0.5"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert ("test rmse" if model == "ifm" else "test auc") in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert main(["evaluate", str(out)]) == 0
    key = "rmse" if model == "ifm" else "auc"
    assert f"{key} {metrics['test'][key]:.4f}" in capsys.readouterr().out
