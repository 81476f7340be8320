"""Staged runs: a model that searches its own structure (AIM) trains one model per search stage, each with the
one :class:`~fgraph.train.Trainer`, and hands what each stage found to the next.

A model class takes part by defining two class methods (plain data in, plain data out) and one method:

* ``stage_plan(options) -> [stage, ...]``: the search stages a run with the user's model ``options`` goes
  through before the final (retraining) stage;
* ``stage_options(stage, options, found, space) -> options``: the model options of a stage (or of
  ``"retrain"``, the final one), given what the earlier stages found;
* ``model.found() -> dict``: what a trained stage found (``interactions``, optionally ``dims``, counts per
  order under ``searched`` and ``kept``);
* optionally ``model.warm_start(previous_model)``: start a search stage after the first from the previous
  stage's weights. It is called after the stage's trainer is built, so the copied weights replace the
  protocol's initial draws, not the other way round.

:func:`fit_stages` runs the search stages, each in ``stages/<stage>`` of the run directory (a complete run
directory: ``fgraph evaluate``, ``predict`` and ``explain`` read it), and writes ``search.json``. A stage that
already ended (its ``metrics.json`` and ``found.json`` are there) is not trained again; one that stopped
midway (a checkpoint, no ``metrics.json``) resumes from its checkpoint, so ``fgraph train --resume`` continues
a staged run wherever it stopped.
"""
from __future__ import annotations

import inspect
import json
from typing import Callable

from ..data.space import EncodedData
from ..models.base import MODELS, build_model
from .checkpoint import to_plain
from .run_dir import RunDirectory
from .trainer import TrainConfig, Trainer, seed_everything

#: what a stage's run directory holds besides the run files: what the stage found
FOUND_FILE = "found.json"


def stage_seed(seed: int, index: int) -> int:
    """The seed stage ``index`` of a run seeded ``seed`` builds its model under (the retraining is the stage after
    the last search stage)."""
    return seed + 1009 * (index + 1)


def is_staged(model: str) -> bool:
    """Whether the registered model ``model`` runs in stages (defines ``stage_plan``)."""
    return hasattr(MODELS.get(str(model).lower()), "stage_plan")


def merge_found(found: dict, new: dict) -> dict:
    """``found`` with a later stage's findings: its interactions replace the earlier ones (a later stage
    reports every interaction it kept, the earlier stages' included), ``dims`` the earlier dims, and its
    per-order counts are added to the earlier ones."""
    out = {"interactions": list(new.get("interactions", found.get("interactions", []))),
           "searched": {**found.get("searched", {}), **new.get("searched", {})},
           "kept": {**found.get("kept", {}), **new.get("kept", {})}}
    if "dims" in new or "dims" in found:
        out["dims"] = new.get("dims", found.get("dims"))
    return out


def fit_stages(model: str, encoder, data: dict[str, EncodedData], config: TrainConfig, options: dict,
               run: RunDirectory, *, log: Callable[[str], None] = print) -> tuple[dict, dict]:
    """Run the search stages of the staged model ``model`` and return the final stage's model options and the
    search record (what ``search.json`` holds, also written into ``run``).

    Args:
        model: the registered name of a staged model.
        encoder: the fitted encoder (its ``space_`` builds every stage's model).
        data: the encoded ``train`` and ``valid`` splits (each stage early-stops on ``valid``).
        config: the training options of every stage.
        options: the user's model options.
        run: the run directory (locked by the caller); stage ``s`` trains in ``run.stage_path(s)``.
        log: where the progress lines go.
    """
    cls = MODELS[model]
    space = encoder.space_
    plan = list(cls.stage_plan(options))
    found: dict = dict(options.get("found") or {}) if isinstance(options.get("found"), dict) else {}
    record: dict = {"model": model, "plan": plan + ["retrain"], "stages": {}}
    previous = None
    for index, stage in enumerate(plan):
        stage_options = cls.stage_options(stage, options, found, space)
        # Each stage draws its initial weights from a seed of its own, so that a stage resumed or skipped
        # (already done) leaves the later stages exactly as in an uninterrupted run.
        seed_everything(stage_seed(config.seed, index))
        where = RunDirectory(run.stage_path(stage))
        found_path = where.path / FOUND_FILE
        if where.metrics_path.is_file() and found_path.is_file():
            new = json.loads(found_path.read_text(encoding="utf-8"))
            log(f"stage {stage}: already done in {where.path}; using what it found")
            net = None
        else:
            resume = where.checkpoint_path.is_file()
            log(f"stage {stage}: {'resuming' if resume else 'training'} in {where.path}")
            net = build_model(model, space, **stage_options)
            # The trainer draws the protocol's initialisation (bars: every table and linear layer) first, and
            # the warm start then copies what the previous stage learned over it: the other way round the
            # draws replaced the copied embeddings, first-order term, MLP and interaction functions.
            trainer = Trainer(net, config, encoder=encoder, run_dir=where)
            if index > 0 and hasattr(net, "warm_start"):
                # From what the previous stage learned (read back from its directory if it ended in an
                # earlier call); a resumed stage's checkpoint then replaces these weights anyway.
                net.warm_start(previous if previous is not None else
                               RunDirectory(run.stage_path(plan[index - 1])).load().model)
            trainer.fit(data["train"], data["valid"], resume=resume, overwrite=where.path.exists() and not resume)
            metrics = {"valid": trainer.evaluate(data["valid"], name="the validation split"),
                       "best_epoch": trainer.best_epoch, "epochs_run": trainer.epoch}
            new = to_plain(net.found())
            found_path.write_text(json.dumps(new, indent=1), encoding="utf-8")
            where.write_metrics(metrics)
        previous = net
        found = merge_found(found, new)
        record["stages"][stage] = {"searched": new.get("searched", {}), "kept": new.get("kept", {}),
                                   "dims": new.get("dims")}
        log(f"stage {stage}: " + _ratio_line(new))
    final = cls.stage_options("retrain", options, found, space)
    seed_everything(stage_seed(config.seed, len(plan)))   # the retrained model's initial weights
    record["found"] = {k: v for k, v in found.items() if k in ("interactions", "dims")}
    record["kept_ratio"] = {p: {"searched": n, "kept": found.get("kept", {}).get(p, 0),
                                "ratio": found.get("kept", {}).get(p, 0) / n if n else None}
                            for p, n in sorted(found.get("searched", {}).items())}
    if found.get("dims") is not None:
        d = int(final.get("embed_dim") or inspect.signature(cls.__init__).parameters["embed_dim"].default)
        record["dims_kept"] = {f: len(c) for f, c in found["dims"].items()}
        record["dims_ratio"] = (sum(record["dims_kept"].values()) / (d * len(found["dims"]))) if d else None
    record["final_options"] = final
    run.write_search(to_plain(record))
    return final, record


def _ratio_line(found: dict) -> str:
    parts = [f"order {p}: kept {found.get('kept', {}).get(p, 0)} of {n} searched"
             for p, n in sorted(found.get("searched", {}).items())]
    if found.get("dims") is not None:
        dims = found["dims"]
        parts.append(f"embedding dimensions kept: {sum(len(c) for c in dims.values())} "
                     f"over {len(dims)} fields")
    return "; ".join(parts) or "nothing searched"


__all__ = ["fit_stages", "is_staged", "merge_found", "stage_seed", "FOUND_FILE"]
