"""Data-parallel training (fgraph.train.distributed): 2 gloo processes take the steps of one process.

One spawn of two processes runs every scenario (FM with the regularisers and clipping, Fi-GNN, FIVES with its
validation-batch optimiser, a resumed run against an uninterrupted one, fgraph.api.train); this process runs
the same scenarios without a process group and compares.
"""
import json
import os
import socket

import pytest
import torch

from fgraph.data.datasets import synthetic  # noqa: F401  (the data set the scenarios train on)
from fgraph.errors import ConfigError
from fgraph.models import FIVES, FM, FiGNN
from fgraph.train import Trainer, TrainConfig, seed_everything
from fgraph.train import distributed

gloo = torch.distributed.is_available() and torch.distributed.is_gloo_available()
pytestmark = pytest.mark.skipif(not gloo, reason="this torch build has no torch.distributed gloo backend")

WORLD = 2


def _data():
    from fgraph.api import encode_dataset

    enc, data = encode_dataset("synthetic", None, n_samples=1200)
    n = len(data["train"])
    # A batch size whose last batch has one row: rank 1's shard of it is empty; the others are odd-sized.
    size = next(b for b in range(101, 200, 2) if n % b == 1)
    return enc, data, size


def _fit(model, size, train, valid, run_dir=None, resume=False, encoder=None, **kw):
    cfg = dict(epochs=2, batch_size=size, lr=0.01, progress=False, seed=3, threads=1)
    cfg.update(kw)
    return Trainer(model, TrainConfig(**cfg), encoder=encoder, run_dir=run_dir).fit(train, valid, resume=resume)


def scenarios(out: str) -> dict:
    """Every scenario, in this process's process group (or none): what the comparison needs."""
    enc, data, size = _data()
    train, valid, test = data["train"], data["valid"], data["test"]
    res = {}
    seed_everything(0)
    fm = _fit(FM(enc.space_, embed_dim=4), size, train, valid, embedding_regularizer=1e-3, net_regularizer=1e-3,
              regularizer_form="rows", grad_clip=0.5, lr_schedule="plateau", patience=5, epochs=3)
    res["fm"] = {k: v.clone() for k, v in fm.model.state_dict().items()}
    res["fm_history"] = [{k: v for k, v in r.items() if k not in ("samples_per_s", "epoch_seconds")}
                         for r in fm.history]
    res["fm_test"] = fm.evaluate(test, name="the test split")
    res["fm_pred"] = torch.from_numpy(fm.predict(test))
    seed_everything(0)
    gnn = _fit(FiGNN(enc.space_, embed_dim=4, steps=2), size, train, valid, epochs=1)
    res["fignn"] = {k: v.clone() for k, v in gnn.model.state_dict().items()}
    seed_everything(0)
    fives = _fit(FIVES(enc.space_, embed_dim=4, orders=2), size, train, valid, epochs=1)
    res["fives"] = {k: v.clone() for k, v in fives.model.state_dict().items()}
    # A run stopped after one epoch and resumed for two more, against one of three epochs.
    for name, epochs in (("full", [3]), ("resumed", [1, 3])):
        for i, e in enumerate(epochs):
            seed_everything(0)
            t = _fit(FM(enc.space_, embed_dim=4), size, train, valid, run_dir=os.path.join(out, name),
                     resume=i > 0, encoder=enc, epochs=e, patience=5)
        res[name] = {k: v.clone() for k, v in t.model.state_dict().items()}
    from fgraph import api

    run = api.train("fm", "synthetic", dataset_options={"n_samples": 1000}, epochs=1,
                    batch_size=128, progress=False, threads=1, out=os.path.join(out, "api"))
    res["api_test"] = run.metrics["test"]
    return res


def _worker(rank: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(WORLD),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", rank=rank, world_size=WORLD)
    try:
        if rank != 0:   # a rank other than 0 must write nothing: any write fails the run
            import fgraph.train.run_dir as rd

            def refuse(*a, **k):
                raise AssertionError(f"rank {rank} wrote into a run directory")
            for name in ("write_json_atomic", "write_text_atomic", "save_checkpoint"):
                setattr(rd, name, refuse)
            rd.RunDirectory._make = refuse
        res = scenarios(out)
        torch.save(res, os.path.join(out, f"rank{rank}.pt"))
    finally:
        distributed.teardown()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _close(a: dict, b: dict, tol: float = 1e-5) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k].double(), b[k].double(), atol=tol, rtol=0), \
            f"{k}: max difference {float((a[k].double() - b[k].double()).abs().max()):.3g}"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    torch.set_num_threads(1)
    two, one = tmp_path_factory.mktemp("two"), tmp_path_factory.mktemp("one")
    torch.multiprocessing.spawn(_worker, args=(_free_port(), str(two)), nprocs=WORLD, join=True)
    ranks = [torch.load(two / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]
    single = scenarios(str(one))
    return ranks, single, two, one


@pytest.mark.parametrize("model", ["fm", "fignn", "fives"])
def test_two_processes_take_the_steps_of_one(runs, model):
    ranks, single, _, _ = runs
    _close(ranks[0][model], ranks[1][model], tol=0.0)   # DDP keeps the ranks identical
    _close(ranks[0][model], single[model])


def test_losses_metrics_and_schedule_match_one_process(runs):
    ranks, single, _, _ = runs
    assert ranks[0]["fm_history"] == ranks[1]["fm_history"]   # the same early-stopping decisions everywhere
    for two, one in zip(ranks[0]["fm_history"], single["fm_history"]):
        assert two.keys() == one.keys()
        for k in two:
            assert two[k] == pytest.approx(one[k], abs=1e-5), k


def test_gathered_auc_is_the_auc_of_the_whole_set(runs):
    ranks, single, _, _ = runs
    enc, data, size = _data()
    model = FM(enc.space_, embed_dim=4)
    model.load_state_dict(ranks[0]["fm"])
    alone = Trainer(model, TrainConfig(progress=False, batch_size=size))   # no process group here
    assert torch.equal(ranks[0]["fm_pred"], torch.from_numpy(alone.predict(data["test"])))
    assert ranks[0]["fm_test"] == alone.evaluate(data["test"]) == ranks[1]["fm_test"]
    assert ranks[0]["fm_test"]["auc"] == pytest.approx(single["fm_test"]["auc"], abs=1e-4)


def test_only_rank_0_writes_and_the_run_directory_is_complete(runs):
    _, _, two, one = runs
    for name in ("full", "resumed", "api"):
        assert sorted(os.listdir(two / name)) == sorted(os.listdir(one / name)), name
        assert not (two / name / ".lock").exists()
    assert len((two / "full" / "log.txt").read_text().splitlines()) == 3   # each epoch logged once
    saved = json.loads((two / "api" / "metrics.json").read_text())["test"]
    assert saved["auc"] == pytest.approx(json.loads((one / "api" / "metrics.json").read_text())["test"]["auc"],
                                         abs=1e-4)


def test_resumed_distributed_run_equals_an_uninterrupted_one(runs):
    ranks, single, two, _ = runs
    _close(ranks[0]["resumed"], ranks[0]["full"], tol=0.0)
    _close(ranks[0]["full"], single["full"])
    assert json.loads((two / "resumed" / "history.json").read_text())[-1]["epoch"] == 3


def test_a_resume_with_another_number_of_processes_is_refused(runs):
    _, _, two, _ = runs
    enc, data, size = _data()
    with pytest.raises(ConfigError, match="2 processes .*one process"):
        _fit(FM(enc.space_, embed_dim=4), size, data["train"], data["valid"], run_dir=two / "full", resume=True,
             encoder=enc, epochs=4)


def test_shards_cover_each_batch_once_in_order():
    for n in (1, 5, 8, 137):
        bounds = [distributed.shard_bounds(10, 10 + n, r, 3) for r in range(3)]
        assert bounds[0][0] == 10 and bounds[-1][1] == 10 + n
        assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
        assert max(hi - lo for lo, hi in bounds) - min(hi - lo for lo, hi in bounds) <= 1
