"""Training: one engine for every model, metrics and checkpoints."""
from .checkpoint import load_checkpoint, save_checkpoint
from .grda import GRDA
from .metrics import binary_metrics, regression_metrics
from .optim import OptimConfig, OptimizerSpec, build_optimizers, resolve_optimizer
from .protocols import PROTOCOLS, apply_protocol
from .regularizers import Regularizer, looked_up_rows
from .run_dir import LoadedRun, RunDirectory
from .trainer import TrainConfig, Trainer, check_labels, seed_everything

__all__ = ["Trainer", "TrainConfig", "seed_everything", "check_labels", "binary_metrics", "regression_metrics",
           "load_checkpoint", "save_checkpoint", "PROTOCOLS", "apply_protocol", "Regularizer", "looked_up_rows",
           "OptimConfig", "OptimizerSpec", "build_optimizers", "resolve_optimizer", "RunDirectory", "LoadedRun",
           "GRDA"]
