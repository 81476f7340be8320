"""Throughput and peak memory of every registered model against a dense reference, written to docs/speed.md.

    python -m benchmarks.speed                          # B = 4096, d = 16, n in {10, 23, 39}: docs/speed.md
    python -m benchmarks.speed --quick --out /tmp/s.md  # tiny sizes and a few models, seconds
    python -m benchmarks.speed --models graphfm fignn --n 10 39 --threads 2 --repeats 7

For every model and field count ``n`` the script builds the model on ``n`` synthetic id fields (``--vocab``
values each) and times, on one batch of random ids:

* a training step: forward, binary cross-entropy, backward and an Adam step;
* an inference step: forward in evaluation mode under ``torch.inference_mode``;

for the model and for its dense reference, alternately (``common.time_interleaved``: the two take turns in
every round, so load on the machine slows both alike), and reports the median of the rounds (``--repeats``
of them, fewer where a measurement would take longer than ``--budget`` seconds). The dense
reference is the same model's parameters run through plain batched tensor code of the same equations: the
embedding lookup, the first-order term and the readout are the model's own on both sides, only the interaction
layers differ. Those dense layers come from the existing benchmarks (``bench_graphfm.dense_layer``,
``bench_fignn.dense_edge_attention`` / ``dense_step``, ``bench_fives.dense_adjacency``,
``bench_afm.dense_afm_pooling``); the IFM family's is written here. FM, LR, DeepFM and IPNN are dense tensor
code already, so their ratio is 1 by definition and no copy of them is timed. Before timing, the script checks
on a small batch that each reference gives the model's logits (the "max |Δ logit|" column).

Peak memory is the resident-set high-water mark of this process during one training step above its resident
size just before the step, the mark being reset through ``/proc/self/clear_refs`` (Linux) after
``malloc_trim`` has handed freed memory back; elsewhere it is not measured.
"""
from __future__ import annotations

import argparse
import ctypes
import datetime
import inspect
import math
import os
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
HERE = ROOT / "benchmarks"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
if str(HERE) not in sys.path:
    # The bench_*.py scripts import their helpers as `common`; last on the path, so that the scripts' names
    # (distributed.py, ...) shadow no installed package.
    sys.path.append(str(HERE))

# On a machine whose cores other jobs hold, OpenMP threads that spin while waiting make a 2-thread step
# tens of times slower than a 1-thread one; passive waiting avoids it. It only takes effect when torch is first
# imported here (not, say, under pytest, which imports torch earlier); an OMP_WAIT_POLICY already set is kept.
OMP_POLICY_SET = "torch" not in sys.modules and "OMP_WAIT_POLICY" not in os.environ
if OMP_POLICY_SET:
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import bench_afm  # noqa: E402
import bench_fignn  # noqa: E402
import bench_fives  # noqa: E402
import bench_graphfm  # noqa: E402
import fgraph  # noqa: E402
from common import set_threads, time_interleaved  # noqa: E402
from fgraph.data.loader import TabularBatch  # noqa: E402
from fgraph.data.space import FeatureSpace  # noqa: E402
from fgraph.models import MODELS, build_model  # noqa: E402

DEFAULT_OUT = ROOT / "docs" / "speed.md"
QUICK_MODELS = ["fm", "afm", "graphfm", "fignn", "fives"]
#: registered models this page does not time, and why
NOT_TIMED = {"aim": "not timed: its search-stage form has no dense reference here; `benchmarks/bench_aim.py` "
                    "times its unpruned and retrained forms against the plain base models"}
#: registered models left out of the default list (``--models`` times them), and why
NOT_DEFAULT = {"graphfm+": "left out of the default list: a step costs GraphFM's (half a minute at n = 39) plus "
                           "a 400-400-400 MLP that both sides share, so its ratio is GraphFM's, diluted; "
                           "`--models graphfm+` times it"}


# -- dense references ---------------------------------------------------------------------------------------------
# Each takes the fgraph model and a batch and returns the model's logits, computed with the model's parameters
# but with the interaction layers in dense (B, n, ...) tensor code.

def graphfm_reference(model, batch):
    """GraphFM with every layer as ``bench_graphfm.dense_layer`` (scores of all n x n pairs, torch.topk,
    einsum attention over the gathered (B, n, m, d) interactions)."""
    e = model.embedding(batch)
    h, states = e, []
    for k, conv in enumerate(model.convs):
        h = model.normalise_state(k, bench_graphfm.dense_layer(model.scorers[k], conv, h, model.neighbours[k]))
        states.append(h)
    return model.readout(states, e)


def fignn_reference(model, batch):
    """Fi-GNN with the (B, n, n) attention of ``bench_fignn.dense_edge_attention`` and the batched gated step
    of ``bench_fignn.dense_step``."""
    e = model.embedding(batch)
    A = bench_fignn.dense_edge_attention(model.edge_attention, e)
    h, states = e, []
    for t in range(model.steps):
        h = model.normalise_state(t, bench_fignn.dense_step(model.convs[t % len(model.convs)], h, A, e))
        states.append(h)
    return model.readout(states, e)


def fives_reference(model, batch):
    """FIVES with the adjacency of ``bench_fives.dense_adjacency`` and Eq. 2 as two einsums per order.

    ``bench_fives.dense_fives`` leaves out the LayerNorm that the model applies to every order's states by
    default (``state_norm``), so the loop over orders is here, with the model's norms."""
    e = model.embedding(batch)
    sent = torch.einsum("bni,nio->bno", e, model.conv.lin.weight)          # W_j e_j, shared by the orders
    h, states = e, [e]
    for k, a in enumerate(bench_fives.dense_adjacency(model)):
        mean = a / a.sum(1, keepdim=True).clamp(min=1)
        h = model.normalise_state(k, torch.einsum("ij,bjd->bid", mean, sent) * h)
        states.append(h)
    return model.readout(states, e)


def afm_reference(model, batch):
    """AFM with the pooling of ``bench_afm.dense_afm_pooling`` (all n x n products, the i < j ones kept)."""
    rows, cols = model.pairs
    pooled = bench_afm.dense_afm_pooling(model.pooling, model.embedding(batch), rows, cols)
    return model.linear(batch) + model.projection(pooled).squeeze(-1)


def dense_ifm_terms(model, e: torch.Tensor, reduce: bool = True) -> torch.Tensor:
    """IFM's feature and field aspects (Eq. 5-6) in the einsum style of ``bench_afm.dense_afm_pooling``:
    the weighted pair terms summed over the pairs, (B, d), or one per pair, (B, P, d)."""
    pool = model.pooling
    rows, cols = model.pairs
    inter = (e.unsqueeze(2) * e.unsqueeze(1))[:, rows, cols]                 # (B, P, d)
    pre = torch.einsum("bpd,td->bpt", inter, pool.lin.weight)
    if pool.temperature_mode == "input":
        pre = pre / pool.temperature
    hidden = (torch.relu if pool.activation == "relu" else torch.tanh)(pre + pool.lin.bias)
    logits = torch.einsum("bpt,t->bp", hidden, pool.att.weight[0])
    if pool.temperature_mode == "logit":
        logits = logits / pool.temperature
    alpha = torch.softmax(logits, dim=1)
    values = inter * model.field_aspect(model.pairs)                         # f_ij * (e_i * e_j)
    return torch.einsum("bp,bpd->bd", alpha, values) if reduce else alpha.unsqueeze(-1) * values


def ifm_reference(model, batch):
    return model.linear(batch) + dense_ifm_terms(model, model.embedding(batch)).sum(-1)


def inn_reference(model, batch):
    concat = model.pair_reduce == "concat"
    h0 = dense_ifm_terms(model, model.embedding(batch), reduce=not concat)
    return model.linear(batch) + model.mlp(h0.flatten(1) if concat else h0).squeeze(-1)


def deepifm_reference(model, batch):
    e = model.embedding(batch)
    return model.linear(batch) + dense_ifm_terms(model, e).sum(-1) + model.mlp(e.flatten(1)).squeeze(-1)


_GRAPHFM = (graphfm_reference, "`bench_graphfm.dense_layer` per layer")
_FIGNN = (fignn_reference, "`bench_fignn` dense attention and gated step")
_FIVES = (fives_reference, "`bench_fives.dense_adjacency` + einsum propagation")
_IFM_NOTE = "einsum form of Eq. 5-6 (in `speed.py`)"
#: model name -> (reference function, where its dense code comes from)
REFERENCES: dict[str, tuple[Callable, str]] = {
    "graphfm": _GRAPHFM, "graphfm+": _GRAPHFM,
    "fignn": _FIGNN, "fignn+": _FIGNN,
    "fives": _FIVES, "fives+": _FIVES,
    "afm": (afm_reference, "`bench_afm.dense_afm_pooling`"),
    "ifm": (ifm_reference, _IFM_NOTE), "inn": (inn_reference, _IFM_NOTE),
    "deepifm": (deepifm_reference, _IFM_NOTE),
}
#: models that are dense tensor code already: the model is its own dense reference
DENSE = {"fm": "dense already (sum-square FM term)", "lr": "dense already (first-order sum)",
         "deepfm": "dense already (FM term + MLP)", "ipnn": "dense already (pair products + MLP)"}

#: model options the dense references do not cover; a model built with another value is refused
_COVERED = {
    "graphfm": {"select": True, "self_loops": True, "topk_mode": "hard", "residual": False, "layer_norm": False,
                "interaction": True, "concat_heads": True, "dropout": 0.0},
    "fignn": {"self_attention": False, "recompute_attention": False, "gru": True},
    "fives": {"self_loops": False},
    "afm": {"dropout": 0.0},
    "ifm": {"dropout": 0.0, "sample_pairs": None},
}


def check_covered(name: str, model) -> None:
    base = name.rstrip("+")
    base = "ifm" if base in ("inn", "deepifm") else base
    wrong = {k: model.hparams.get(k) for k, v in _COVERED.get(base, {}).items() if model.hparams.get(k) != v}
    if wrong:
        raise ValueError(f"the dense reference of {name} does not cover the options {wrong}")


# -- measuring ---------------------------------------------------------------------------------------------------

def make_space(n: int, vocab: int) -> FeatureSpace:
    names = [f"f{k}" for k in range(n)]
    return FeatureSpace(names, ["id"] * n, [vocab] * n, names)


def make_batch(space: FeatureSpace, rows: int, vocab: int, generator: torch.Generator) -> TabularBatch:
    n = space.num_fields
    ids = torch.randint(0, vocab, (rows, n), generator=generator)
    y = torch.randint(0, 2, (rows,), generator=generator).float()
    return TabularBatch(ids, None, None, y, space)


def build(name: str, space: FeatureSpace, dim: int, **options):
    accepted = inspect.signature(MODELS[name].__init__).parameters
    if "embed_dim" in accepted:
        options = {"embed_dim": dim, **options}
    return build_model(name, space, **options)


def train_step(model, forward: Callable, batch: TabularBatch, opt: torch.optim.Optimizer) -> Callable[[], None]:
    def step():
        opt.zero_grad(set_to_none=True)
        F.binary_cross_entropy_with_logits(forward(batch), batch.y).backward()
        opt.step()
    return step


def infer_step(forward: Callable, batch: TabularBatch) -> Callable[[], None]:
    def step():
        with torch.inference_mode():
            forward(batch)
    return step


class PeakMemory:
    """Peak resident memory of a call above the resident size before it (Linux; None elsewhere)."""

    def __init__(self):
        self.libc = None
        try:
            self.libc = ctypes.CDLL("libc.so.6")
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            self.libc = None

    @property
    def available(self) -> bool:
        return self.libc is not None

    @staticmethod
    def _status() -> dict[str, int]:
        out = {}
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    key, value = line.split(":")
                    out[key] = int(value.split()[0]) * 1024
        return out

    def __call__(self, fn: Callable[[], object], tries: int = 1) -> int | None:
        if not self.available:
            fn()
            return None
        best = None
        for _ in range(tries):
            # Tensors are freed by reference counting, so no gc.collect (it takes half a second in this process).
            self.libc.malloc_trim(0)
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")                         # the high-water mark restarts from the current size
            before = self._status()["VmRSS"]
            fn()
            peak = self._status()["VmHWM"] - before
            best = peak if best is None else min(best, peak)
        return max(best, 0)


def adam(model) -> torch.optim.Adam:
    """Adam over the model's parameters with its state already created (one step on zero gradients, which
    moves no parameter), so that the memory of the first measured step does not include it."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    model.zero_grad(set_to_none=True)
    return opt


def warm_up(peak: PeakMemory, models: dict, steps: dict[str, Callable], warmup: int) -> dict[str, int | None]:
    """The untimed first calls of every side; the first training step of each also gives its peak memory
    (with the gradients freed before it, as the step allocates them afresh). A step that runs in under 2 s
    is measured once more and the smaller peak kept."""
    mem = {}
    for k, step in steps.items():
        models[k].zero_grad(set_to_none=True)
        start = time.perf_counter()
        mem[k] = peak(step)
        if time.perf_counter() - start < 2.0 and peak.available:
            models[k].zero_grad(set_to_none=True)
            mem[k] = min(mem[k], peak(step))
        for _ in range(warmup - 1):
            step()
    return mem


def _warm(fns: dict[str, Callable], calls: int) -> None:
    for _ in range(calls):
        for fn in fns.values():
            fn()


def timed(fns: dict[str, Callable], repeats: int, budget: float) -> tuple[dict[str, float], int]:
    """Median seconds per call of every side, over rounds in which the sides take turns
    (``common.time_interleaved``, one repeat per round). Stops after ``repeats`` rounds, or earlier once 3
    rounds are done (2 when one round alone takes longer than ``budget``) and another would take the total
    past ``budget`` seconds."""
    samples: dict[str, list[float]] = {k: [] for k in fns}
    spent = 0.0
    while True:
        got = time_interleaved(fns, repeats=1, warmup=0)
        for k, v in got.items():
            samples[k].append(v)
        this = sum(got.values())
        spent += this
        done = len(samples[next(iter(fns))])
        least = min(2 if this > budget else 3, repeats)
        if done >= repeats or (done >= least and spent + this > budget):
            return {k: statistics.median(v) for k, v in samples.items()}, done


@torch.no_grad()
def logit_gap(model, reference: Callable, batch: TabularBatch) -> float:
    was = model.training
    model.eval()
    try:
        return float((model(batch) - reference(model, batch)).abs().max())
    finally:
        model.train(was)


def measure_model(name: str, n: int, args, peak: PeakMemory) -> dict:
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(n)
    space = make_space(n, args.vocab)
    model = build(name, space, args.dim)
    batch = make_batch(space, args.batch, args.vocab, gen)
    opt = adam(model)
    row = {"model": name, "n": n, "params": sum(p.numel() for p in model.parameters())}
    sides = {"model": model}
    if name in REFERENCES:
        check_covered(name, model)
        reference = REFERENCES[name][0]
        row["gap"] = logit_gap(model, reference, make_batch(space, 64, args.vocab, gen))
        sides["ref"] = lambda b: reference(model, b)
    model.train()
    train = {k: train_step(model, f, batch, opt) for k, f in sides.items()}
    mem = warm_up(peak, {k: model for k in sides}, train, args.warmup)
    t, row["rounds_train"] = timed(train, args.repeats, args.budget)
    row.update({f"train_{k}": v for k, v in t.items()})
    row.update({f"mem_{k}": v for k, v in mem.items()})
    model.eval()
    infer = {k: infer_step(f, batch) for k, f in sides.items()}
    _warm(infer, args.warmup)
    t, row["rounds_infer"] = timed(infer, args.repeats, args.budget)
    row.update({f"infer_{k}": v for k, v in t.items()})
    return row


WIDTHS = ("GraphFM, default width", "GraphFM, half width", "dense, half width", "dense, default width")


def measure_width(n: int, args, peak: PeakMemory) -> dict:
    """GraphFM at its default layer width (hidden_dim = embed_dim per head, heads concatenated) and at half of
    it, with the dense reference at both widths, all four timed in turn."""
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(n)
    space = make_space(n, args.vocab)
    half = max(1, args.dim // 2)
    full_model = build("graphfm", space, args.dim)
    half_model = build("graphfm", space, args.dim, hidden_dim=half)
    batch = make_batch(space, args.batch, args.vocab, gen)
    models = dict(zip(WIDTHS, (full_model, half_model, half_model, full_model)))
    forwards = dict(zip(WIDTHS, (full_model, half_model, lambda b: graphfm_reference(half_model, b),
                                 lambda b: graphfm_reference(full_model, b))))
    opts = {id(m): adam(m) for m in (full_model, half_model)}
    out = {"n": n, "hidden": {WIDTHS[0]: full_model.convs[0].out_channels,
                              WIDTHS[1]: half_model.convs[0].out_channels},
           "heads": full_model.convs[0].heads}
    out["hidden"].update({WIDTHS[2]: out["hidden"][WIDTHS[1]], WIDTHS[3]: out["hidden"][WIDTHS[0]]})
    for m in (full_model, half_model):
        m.train()
    train = {k: train_step(models[k], f, batch, opts[id(models[k])]) for k, f in forwards.items()}
    out["mem"] = warm_up(peak, models, train, args.warmup)
    out["train"], out["rounds_train"] = timed(train, args.repeats, args.budget)
    for m in (full_model, half_model):
        m.eval()
    infer = {k: infer_step(f, batch) for k, f in forwards.items()}
    _warm(infer, args.warmup)
    out["infer"], out["rounds_infer"] = timed(infer, args.repeats, args.budget)
    return out


def deepctr_peers(n: int, args) -> list[dict] | None:
    """fgraph's AFM and DeepFM against DeepCTR-Torch's on the same ids (training steps); None if not installed."""
    try:
        from deepctr_torch.inputs import SparseFeat
        from deepctr_torch.models import DeepFM as TheirDeepFM
    except ImportError:
        return None
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(n)
    space = make_space(n, args.vocab)
    batch = make_batch(space, args.batch, args.vocab, gen)
    X = batch.ids.float()
    rows = []
    ours = build("afm", space, args.dim)
    theirs, _ = bench_afm.deepctr_models(n, args.vocab, args.dim, ours.pooling.attention_channels)
    columns = [SparseFeat(f"f{k}", args.vocab, embedding_dim=args.dim) for k in range(n)]
    pairs = [("afm", ours, theirs, "DeepCTR-Torch `AFM`")]
    ours_dfm = build("deepfm", space, args.dim)
    theirs_dfm = TheirDeepFM(columns, columns, dnn_hidden_units=tuple(ours_dfm.hparams["mlp_dims"]),
                             dnn_dropout=ours_dfm.hparams["mlp_dropout"],
                             dnn_use_bn=ours_dfm.hparams["mlp_batch_norm"], task="binary")
    pairs.append(("deepfm", ours_dfm, theirs_dfm, "DeepCTR-Torch `DeepFM`"))
    for name, mine, peer, label in pairs:
        fns = {"model": _plain_step(mine, lambda: mine(batch)), "peer": _plain_step(peer, lambda: peer(X))}
        _warm(fns, args.warmup)
        t, _ = timed(fns, args.repeats, args.budget)
        rows.append({"model": name, "peer": label, "n": n, "model_t": t["model"], "peer_t": t["peer"]})
    return rows


def recbole_peer(n: int, args) -> list[dict] | None:
    """Fi-GNN (with self-attention first, as RecBole's always has) against RecBole's FiGNN, both from the same
    (B, n, d) embeddings, as in ``bench_fignn``; None if RecBole is not installed."""
    cls = bench_fignn.load_recbole_fignn()
    if cls is None:
        return None
    torch.manual_seed(0)
    steps = 3
    x = torch.randn(args.batch, n, args.dim, requires_grad=True)
    peer = bench_fignn.build_recbole(cls, n, args.dim, steps)
    ours = bench_fignn.FgraphWithSelfAttention(n, args.dim, steps)
    fns = {"model": _plain_step(ours, lambda: ours(x)), "peer": _plain_step(peer, lambda: peer.fignn_layer(x))}
    _warm(fns, args.warmup)
    t, _ = timed(fns, args.repeats, args.budget)
    return [{"model": "fignn", "peer": "RecBole `FiGNN` (from embeddings)", "n": n, "model_t": t["model"],
             "peer_t": t["peer"]}]


def _plain_step(module, output: Callable) -> Callable[[], None]:
    """A training step for a peer comparison: forward, a squared-output loss, backward, Adam."""
    opt = torch.optim.Adam(module.parameters(), lr=1e-4)

    def step():
        opt.zero_grad(set_to_none=True)
        output().float().reshape(-1).square().mean().backward()
        opt.step()
    return step


# -- writing -----------------------------------------------------------------------------------------------------

def _ratio(a: float | None, b: float | None) -> str:
    return "n/a" if not a or not b else f"{a / b:.2f}"


def _mb(value: int | None) -> str:
    return "n/a" if value is None else f"{value / 2**20:,.1f}"


def _rate(batch: int, seconds: float | None) -> str:
    return "—" if seconds is None else f"{batch / seconds:,.0f}"


def growth_exponent(ns: list[int], seconds: list[float]) -> float | None:
    """Least-squares slope of log(cost) against log(n)."""
    if len(ns) < 2:
        return None
    xs, ys = [math.log(v) for v in ns], [math.log(v) for v in seconds]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    load = ""
    if hasattr(os, "getloadavg"):
        load = f"; load average at the start {os.getloadavg()[0]:.2f}"
    policy = os.environ.get("OMP_WAIT_POLICY")
    policy = ("; OMP_WAIT_POLICY=PASSIVE (set by the script)" if OMP_POLICY_SET else
              f"; OMP_WAIT_POLICY={policy}" if policy else "")
    return (f"{platform.platform()}, {cpu}, {os.cpu_count()} cores, torch {torch.__version__} with "
            f"{torch.get_num_threads()} threads, Python {platform.python_version()}{load}{policy}")


def plot(rows: list[dict], ns: list[int], path: Path, batch: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9.5, 5.2))
    names = list(dict.fromkeys(r["model"] for r in rows))
    cmap = plt.get_cmap("tab20")
    for i, name in enumerate(names):
        mine = sorted((r for r in rows if r["model"] == name), key=lambda r: r["n"])
        x = [r["n"] for r in mine]
        ax.plot(x, [r["train_model"] * 1e3 for r in mine], "o-", color=cmap(i % 20), label=name,
                linewidth=2.2 if name == "graphfm" else 1.2)
        if name == "graphfm" and "train_ref" in mine[0]:
            ax.plot(x, [r["train_ref"] * 1e3 for r in mine], "s:", color=cmap(i % 20), label="graphfm, dense reference")
    graph = sorted((r for r in rows if r["model"] == "graphfm"), key=lambda r: r["n"]) or \
        sorted((r for r in rows if r["model"] == names[0]), key=lambda r: r["n"])
    if graph:
        n0, t0 = graph[0]["n"], graph[0]["train_model"] * 1e3
        grid = [min(ns), max(ns)]
        ax.plot(grid, [t0 * (v / n0) ** 2 for v in grid], "--", color="0.3", label="∝ n² (through graphfm)")
        ax.plot(grid, [t0 * (v / n0) for v in grid], ":", color="0.6", label="∝ n")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(ns)
    ax.set_xticklabels([str(v) for v in ns])
    ax.minorticks_off()
    ax.set_xlabel("fields n")
    ax.set_ylabel(f"ms per training step (B = {batch})")
    ax.set_title("Training-step cost against the number of fields")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def graphfm_note(rows: list[dict]) -> str:
    """What the GraphFM line of the plot says, with the exponents this run measured."""
    mine = sorted((r for r in rows if r["model"] == "graphfm"), key=lambda r: r["n"])
    if len(mine) < 2:
        return "GraphFM was not timed at two field counts in this run, so it has no measured exponent."
    ns = [r["n"] for r in mine]
    em = growth_exponent(ns, [r["train_model"] for r in mine])
    er = growth_exponent(ns, [r["train_ref"] for r in mine])
    return (f"GraphFM's training step grew as n^{em:.2f} over n = {ns[0]}–{ns[-1]} here, its dense reference's "
            f"as n^{er:.2f}. By default layer k keeps m_k = n, ⌈n/2⌉ and ⌈n/4⌉ neighbours per field, so the "
            "attention of layers 2 and 3 covers n·n/2 and n·n/4 pairs instead of n², and the model (which "
            "aggregates the kept neighbours with batched products) gains on the reference (which gathers them "
            "into (B, n, m, d) tensors) as n grows. But the edge scorer of every layer still scores all n(n+1)/2 "
            "unordered pairs (the reference scores all n² ordered ones) and layer 1 keeps them all, so each part "
            "of the step is still proportional to n²: top-k and the scorer's symmetry lower the constant, not the "
            "order. A slope below 2 over this range most likely comes from the parts that grow "
            "more slowly (the lookup, the readout, the per-field work) still weighing at these n; this run does "
            "not time beyond them.")


def write_page(path: Path, png: Path, args, command: str, rows: list[dict], width: dict | None,
               peers: dict, elapsed: float, started: str, machine_line: str, memory_ok: bool) -> None:
    ns, B = args.n, args.batch
    names = list(dict.fromkeys(r["model"] for r in rows))
    by = {(r["model"], r["n"]): r for r in rows}
    L = ["# Speed: fgraph's models against dense references", "",
         f"Written by `{command}` on {started}: fgraph {fgraph.__version__}; {machine_line}.", "",
         "The machines this runs on are shared and noisy (other jobs may hold the cores), so the absolute "
         "samples/s move from run to run; read the ratios. Each ratio comes from one run in which the model and "
         "its reference took turns in every round, so load slows both alike: the median of up to "
         f"{args.repeats} round{'s' if args.repeats > 1 else ''} after {args.warmup} untimed "
         f"call{'s' if args.warmup > 1 else ''} of each side, fewer where a measurement would pass "
         f"{args.budget:g} s (at least 3 rounds, 2 where one round alone takes longer; the rounds column below). "
         "Rerunning gives ratios that differ by roughly ±0.1–0.2, more where there were few rounds.", "",
         f"Set-up: B = {B} rows, embedding d = {args.dim}, n synthetic id fields of {args.vocab} values each "
         "(random ids), each model with its defaults otherwise. A training step is forward, binary "
         "cross-entropy on the logits, backward and an Adam step over all parameters (one optimiser for every "
         "model, also for FIVES, whose trainer steps its adjacency on validation batches); an inference step is "
         "the forward pass in evaluation mode under `torch.inference_mode`.", "",
         "The dense reference of a model runs the same parameters through plain batched tensor code of the "
         "same equations (`benchmarks/speed.py` says where each comes from). The embedding lookup, first-order "
         "term and readout are the model's own on both sides, so only the interaction layers differ. "
         "FM, LR, DeepFM and IPNN are dense tensor code already: there the model is its own dense reference "
         "and the ratio is 1 by definition (\"1 (dense)\"), not a timing.", "",
         "## Ratios", "",
         "Throughput ratios are the model's samples/s divided by its reference's (above 1: the model is "
         "faster). Memory ratios are the model's peak divided by its reference's (below 1: the model needs "
         "less).", ""]
    head = ["model", "reference"] + [f"train n={n}" for n in ns] + [f"inference n={n}" for n in ns] + \
        [f"memory n={n}" for n in ns]
    L += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name in names:
        cells = [name]
        if name in DENSE:
            cells.append(DENSE[name])
            cells += ["1 (dense)"] * (3 * len(ns))
        else:
            cells.append(REFERENCES[name][1])
            for kind in ("train", "infer"):
                cells += [_ratio(by[name, n][f"{kind}_ref"], by[name, n][f"{kind}_model"]) if (name, n) in by
                          else "n/a" for n in ns]
            cells += [_ratio(by[name, n]["mem_model"], by[name, n]["mem_ref"]) if (name, n) in by else "n/a"
                      for n in ns]
        L.append("| " + " | ".join(cells) + " |")
    skipped = {**NOT_TIMED, **NOT_DEFAULT}
    skipped = [f"`{name}` is registered but {why}." for name, why in skipped.items()
               if name in MODELS and name not in names]
    if skipped:
        L += [""] + skipped

    L += ["", "## Figures measured", "",
          "Bare samples/s (model / reference), milliseconds per training step and peak memory of one training "
          "step in MiB. \"max |Δ logit|\" is the largest difference between the model's and the reference's "
          "logits on 64 rows, in evaluation mode: the check that the reference computes the model.", "",
          "| model | n | parameters | train samples/s | inference samples/s | ms / training step | "
          "peak MiB | max \\|Δ logit\\| | rounds (train, inference) |", "|---|---|---|---|---|---|---|---|---|"]
    for name in names:
        for n in ns:
            r = by.get((name, n))
            if r is None:
                continue
            dense = "train_ref" not in r
            pair = (lambda k, f: f(r[f"{k}_model"]) if dense else f"{f(r[f'{k}_model'])} / {f(r[f'{k}_ref'])}")
            L.append(f"| {name} | {n} | {r['params']:,} | {pair('train', lambda s: _rate(B, s))} | "
                     f"{pair('infer', lambda s: _rate(B, s))} | {pair('train', lambda s: f'{s * 1e3:,.1f}')} | "
                     f"{pair('mem', _mb)} | {'—' if dense else format(r['gap'], '.1e')} | "
                     f"{r['rounds_train']}, {r['rounds_infer']} |")

    L += ["", "## Growth with the number of fields", "",
          f"![training-step cost against n]({png.name})", "",
          "The plot shows milliseconds per training step against n on log-log axes, with an n² guide line "
          "through GraphFM's first point. The exponent below is the least-squares slope of log(cost) against "
          f"log(n) over n = {', '.join(map(str, ns))} (2 means cost grows as n², 1 as n).", "",
          "| model | exponent, model | exponent, reference |", "|---|---|---|"]
    for name in names:
        mine = sorted((r for r in rows if r["model"] == name), key=lambda r: r["n"])
        em = growth_exponent([r["n"] for r in mine], [r["train_model"] for r in mine])
        er = None if name in DENSE else growth_exponent([r["n"] for r in mine], [r["train_ref"] for r in mine])
        L.append(f"| {name} | {'n/a' if em is None else f'{em:.2f}'} | "
                 f"{'(dense)' if name in DENSE else 'n/a' if er is None else f'{er:.2f}'} |")
    L += ["", graphfm_note(rows)]

    L += ["", "## GraphFM width", ""]
    if width is None:
        L.append("Not measured in this run.")
    else:
        wn, ref = width["n"], WIDTHS[2]
        L += [f"GraphFM at n = {wn}: its default width (`hidden_dim` = embedding size = "
              f"{width['hidden'][WIDTHS[0]]} per head, {width['heads']} heads concatenated, so "
              f"{width['hidden'][WIDTHS[0]] * width['heads']}-wide states) and half of it (`hidden_dim` = "
              f"{width['hidden'][WIDTHS[1]]}), with the dense reference at both widths; all four were timed in "
              "turn in one run. Ratios are samples/s divided by the dense reference's at half width. The accuracy "
              "of the two widths is compared in docs/results.md.", "",
              "| variant | hidden_dim per head | train samples/s | train ÷ dense half | inference samples/s | "
              "inference ÷ dense half | peak MiB |", "|---|---|---|---|---|---|---|"]
        for k in WIDTHS:
            L.append(f"| {k} | {width['hidden'][k]} | {_rate(B, width['train'][k])} | "
                     f"{_ratio(width['train'][ref], width['train'][k])} | {_rate(B, width['infer'][k])} | "
                     f"{_ratio(width['infer'][ref], width['infer'][k])} | {_mb(width['mem'][k])} |")
        L += ["", f"Half width against default width, same run: training "
              f"{_ratio(width['train'][WIDTHS[0]], width['train'][WIDTHS[1]])}×, inference "
              f"{_ratio(width['infer'][WIDTHS[0]], width['infer'][WIDTHS[1]])}× the samples/s."]

    L += ["", "## Other libraries", "",
          "Optional peers (the `bench` extra of pyproject.toml); a peer that is not installed is not timed. "
          "Ratios are fgraph's samples/s divided by the peer's, training steps (forward, a squared-output loss, "
          "backward, Adam).", ""]
    if peers["deepctr"] is None:
        L.append("- DeepCTR-Torch (`AFM`, `DeepFM`): not installed (`pip install deepctr-torch`).")
    if peers["recbole"] is None:
        L.append("- RecBole (`FiGNN`): not installed (`pip install --no-deps recbole`).")
    measured = (peers["deepctr"] or []) + (peers["recbole"] or [])
    if measured:
        L += ["", "| model | peer | n | fgraph samples/s | peer samples/s | fgraph ÷ peer |", "|---|---|---|---|---|---|"]
        for r in measured:
            L.append(f"| {r['model']} | {r['peer']} | {r['n']} | {_rate(B, r['model_t'])} | {_rate(B, r['peer_t'])} | "
                     f"{_ratio(r['peer_t'], r['model_t'])} |")

    L += ["", "## How memory is measured", ""]
    if memory_ok:
        L.append("Peak memory is the growth of this process's resident set during a training step (the first "
                 "call of each side, with the gradients freed before it and Adam's state created before it): the "
                 "Linux "
                 "high-water mark `VmHWM` is reset through `/proc/self/clear_refs` after `malloc_trim` has handed "
                 "freed memory back, and the figure is `VmHWM` after the step minus `VmRSS` before it (a step "
                 "of under 2 s is measured twice and the smaller figure kept). It is measured in the process that "
                 "times, not in a fresh one per configuration: with the mark reset before every step a fresh "
                 "process adds nothing, and importing fgraph takes seconds. It counts tensors and everything else the step allocates. torch "
                 "keeps no peak statistics for CPU memory, and its profiler's memory records are per operator, "
                 "with no peak, so neither is used.")
    else:
        L.append("Not measured on this platform (it needs Linux's `/proc/self/clear_refs`).")
    L += ["", f"The whole run took {elapsed:.0f} s.", ""]
    path.write_text("\n".join(L), encoding="utf-8")


# -- entry point -------------------------------------------------------------------------------------------------

def parse(argv: list[str] | None):
    p = argparse.ArgumentParser(prog="python -m benchmarks.speed", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="tiny sizes (B=256, n in {5, 8}, one repeat, a few models): a check that it runs")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT,
                   help="Markdown page to write (default docs/speed.md); the plot goes beside it as <stem>_cost.png")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--models", nargs="+", help="registered model names (default: all but aim and graphfm+; --quick: "
                   + " ".join(QUICK_MODELS) + ")")
    p.add_argument("--n", "--fields", dest="n", type=int, nargs="+",
                   help="field counts (default 10 23 39; --quick: 5 8)")
    p.add_argument("--batch", type=int, help="rows per batch (default 4096; --quick: 256)")
    p.add_argument("--dim", type=int, default=16, help="embedding size")
    p.add_argument("--vocab", type=int, default=100, help="values per field")
    p.add_argument("--repeats", type=int, help="most timed rounds per measurement (default 5; --quick: 1)")
    p.add_argument("--budget", type=float, default=30.0,
                   help="seconds per measurement after which no more rounds start once 3 are done (default 30)")
    p.add_argument("--warmup", type=int, help="untimed calls of each side first (default 1, at least 1)")
    p.add_argument("--no-width", action="store_true", help="skip the GraphFM width section")
    args = p.parse_args(argv)
    args.n = args.n or ([5, 8] if args.quick else [10, 23, 39])
    args.batch = args.batch or (256 if args.quick else 4096)
    args.repeats = args.repeats or (1 if args.quick else 5)
    args.warmup = 1 if args.warmup is None else max(1, args.warmup)
    args.models = args.models or (QUICK_MODELS if args.quick else
                                  [m for m in MODELS if m not in NOT_TIMED and m not in NOT_DEFAULT])
    unknown = [m for m in args.models if m not in REFERENCES and m not in DENSE]
    if unknown:
        p.error(f"no dense reference for {unknown}: "
                + "; ".join(f"{m} is {NOT_TIMED[m]}" if m in NOT_TIMED else f"{m} is not registered"
                            for m in unknown))
    if min(args.n) < 2:
        p.error("--n: the pair models need at least 2 fields")
    return args


def main(argv: list[str] | None = None) -> Path:
    raw = sys.argv[1:] if argv is None else list(argv)
    args = parse(raw)
    set_threads(args.threads)
    started_at = time.perf_counter()
    started = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    machine_line = machine()
    peak = PeakMemory()
    rows = []
    # Sorted so that the order of --models does not change what runs first on a warming machine.
    order = sorted(args.models, key=lambda m: (m in DENSE, list(MODELS).index(m)))
    for n in args.n:
        for name in order:
            row = measure_model(name, n, args, peak)
            rows.append(row)
            line = f"n={n:>3} {name:<9} train {args.batch / row['train_model']:>9,.0f}/s"
            if "train_ref" in row:
                line += (f"  ratio train {row['train_ref'] / row['train_model']:.2f}  "
                         f"inference {row['infer_ref'] / row['infer_model']:.2f}  |Δ| {row['gap']:.1e}")
            print(line, flush=True)
    width = None
    if not args.no_width:
        wn = 10 if 10 in args.n else args.n[0]
        width = measure_width(wn, args, peak)
        print(f"width n={wn}: " + ", ".join(f"{k} {args.batch / v:,.0f}/s" for k, v in width["train"].items()),
              flush=True)
    peers = {"deepctr": None, "recbole": None}
    for n in args.n:
        for key, found in (("deepctr", deepctr_peers(n, args)), ("recbole", recbole_peer(n, args))):
            if found is not None:
                peers[key] = (peers[key] or []) + found
    out = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    png = out.with_name(out.stem + "_cost.png")
    plot(rows, args.n, png, args.batch)
    command = "python -m benchmarks.speed" + (" " + shlex.join(raw) if raw else "")
    write_page(out, png, args, command, rows, width, peers, time.perf_counter() - started_at, started,
               machine_line, peak.available)
    print(f"wrote {out} and {png} in {time.perf_counter() - started_at:.0f} s")
    return out


if __name__ == "__main__":
    main()
