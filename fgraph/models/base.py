"""What every fgraph model shares: construction from a FeatureSpace, a registry, losses, and the plain-data
description of the optimisers it wants (which :mod:`fgraph.train` turns into torch optimisers)."""
from __future__ import annotations

import contextlib
import functools
import inspect
from typing import Callable, ClassVar, Iterator

from torch import Tensor, nn

from .._validate import as_annotated
from ..data.loader import TabularBatch
from ..data.space import FeatureSpace
from ..errors import ConfigError
from ..nn.embedding import FieldEmbedding

MODELS: dict[str, type["CTRModel"]] = {}


def register_model(name: str):
    """Class decorator: make a model available to :func:`build_model` and ``fgraph train --model``."""
    def wrap(cls):
        if name in MODELS:
            raise ValueError(f"a model named {name!r} is already registered ({MODELS[name].__name__})")
        cls.model_name = name
        MODELS[name] = cls
        return cls
    return wrap


#: Ranges of the hyperparameters that several models share, by name (a model may add its own in
#: ``CTRModel.hparam_ranges``): ``(low, high, low_open, high_open)``, None for no bound, open bounds strict.
SHARED_HPARAM_RANGES: dict[str, tuple] = {
    **{k: (1, None) for k in ("embed_dim", "heads", "attention_heads", "orders", "field_factors",
                                     "scorer_hidden", "hidden_dim", "attention_dim", "anneal_epochs")},
    **{k: (0.0, 1.0, False, True) for k in ("dropout", "mlp_dropout")},
    **{k: (0.0, None, True) for k in ("tau_start", "tau_end", "temperature", "alpha1", "alpha2")},
    **{k: (0.0, None, False) for k in ("field_l2", "attention_l2", "negative_slope")},
    **{k: (0, None, False) for k in ("predict_layer", "steps")},
}


def check_hparams(model: "str | type[CTRModel]", hparams: dict) -> dict:
    """``hparams`` of ``model`` (a registered name or a model class) checked and coerced against the
    model's signature and ranges.

    Integer options refuse 2.5 and ``"abc"``, list options (``neighbours``, ``mlp_dims``) refuse a scalar,
    sizes and counts must be >= 1, dropouts lie in [0, 1). Raises :class:`~fgraph.errors.ConfigError` naming
    the model and the option; unknown option names are refused too. Every model runs this on its own
    arguments when it is constructed, so ``GraphFM(space, heads=0)`` fails as clearly as the CLI does.
    """
    if isinstance(model, str):
        key = model.lower()
        if key not in MODELS:
            raise ConfigError(f"unknown model {model!r}; known models: {sorted(MODELS)}")
        cls = MODELS[key]
    else:
        cls = model
        key = getattr(cls, "model_name", cls.__name__)
        key = cls.__name__ if key == "model" else key
    if not isinstance(hparams, dict):
        raise ConfigError(f"model options must be a mapping of names to values (e.g. {{embed_dim: 16}}), "
                          f"got {type(hparams).__name__} {hparams!r}")
    params = {k: p for k, p in inspect.signature(_original_init(cls)).parameters.items()
              if k not in ("self", "space") and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    unknown = sorted(set(hparams) - set(params))
    if unknown:
        raise ConfigError(f"model {key!r} does not take option(s) {unknown}; it takes {sorted(params)}")
    ranges = {**SHARED_HPARAM_RANGES, **getattr(cls, "hparam_ranges", {})}
    return {k: as_annotated(k, v, params[k].annotation, ranges.get(k), where=f"model {key!r}") for k, v in hparams.items()}


def _original_init(cls):
    """The model's own ``__init__`` (the one :class:`CTRModel` wraps to record hyperparameters)."""
    init = cls.__init__
    return getattr(init, "__wrapped__", init)


def extends(base_init: Callable, **new_defaults) -> Callable:
    """Decorator for a subclass ``__init__(self, space, *, <own options>, **options)`` that hands ``**options``
    to ``base_init``.

    The decorated ``__init__`` gets a signature listing its own options and every option of ``base_init``
    (``new_defaults`` replacing some of their defaults), and is called with all of them, given or defaulted.
    So :func:`~fgraph.models.build_model` checks option names against the full list and checkpoints record
    every value, and the shared options are written once, in the base.
    """
    def wrap(init):
        own = inspect.signature(init)
        own_params = [p for p in own.parameters.values() if p.kind is not p.VAR_KEYWORD]
        taken = {p.name for p in own_params}
        inherited = [p.replace(kind=p.KEYWORD_ONLY, default=new_defaults.get(p.name, p.default))
                     for p in inspect.signature(base_init).parameters.values()
                     if p.name not in taken and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        unknown = sorted(set(new_defaults) - {p.name for p in inherited})
        if unknown:
            raise TypeError(f"{init.__qualname__}: new defaults for options the base does not take: {unknown}")
        sig = own.replace(parameters=own_params + inherited)

        @functools.wraps(init)
        def wrapper(*args, **kwargs):
            bound = sig.bind(*args, **kwargs)
            bound.apply_defaults()
            return init(*bound.args, **bound.kwargs)

        wrapper.__signature__ = sig
        return wrapper
    return wrap


def build_model(name: str, space: FeatureSpace, **hparams) -> "CTRModel":
    """Instantiate the registered model ``name`` for ``space`` with ``hparams`` (checked by :func:`check_hparams`).

    A value a model refuses in its constructor (a ``ValueError``, e.g. more sampled pairs than there are)
    comes back as a :class:`~fgraph.errors.ConfigError` that names the model.
    """
    hparams = check_hparams(name, hparams)  # again at construction; here first, to name unknown options
    key = name.lower()
    try:
        return MODELS[key](space, **hparams)
    except ConfigError:
        raise
    except ValueError as e:
        raise ConfigError(f"model {key!r}: {e}") from None


class CTRModel(nn.Module):
    """Base class of fgraph's models: ``forward(batch) -> (B,)`` logits.

    Subclasses take the :class:`~fgraph.data.FeatureSpace` as first argument and hyperparameters as keyword
    arguments; the keyword arguments are recorded in :attr:`hparams`, so a checkpoint can rebuild the model.

    A model describes the optimisers it wants in plain data (:meth:`parameter_groups`,
    :meth:`configure_optimizers`), and tells what it learned in tensors, through one protocol per family:
    :meth:`FieldGraphModel.edge_records <fgraph.models.FieldGraphModel.edge_records>` (GraphFM, Fi-GNN, FIVES),
    :meth:`AttentivePairModel.pair_weights <fgraph.models.AttentivePairModel.pair_weights>` (AFM, the IFM
    family) and :meth:`FIVES.adjacency_weights <fgraph.models.FIVES.adjacency_weights>`. Building optimisers
    is :mod:`fgraph.train`'s job, drawing graphs and tables :mod:`fgraph.explain`'s: a model imports neither.
    """

    model_name: ClassVar[str] = "model"

    #: What ``fgraph tune`` searches for this model, declared next to its code (plain data: no optuna here).
    #: ``{"model.<constructor option>" or "train.<TrainConfig field>": spec}``, a spec being one of
    #: ``("float", low, high)``, ``("log_float", low, high)``, ``("int", low, high)``, ``("log_int", low, high)``
    #: (bounds inclusive; ``float`` and ``int`` take an optional step as a 4th item) or
    #: ``("categorical", [choice, ...])``. The tuner adds its shared training space (learning rate, embedding
    #: regulariser; see :func:`fgraph.tune.search_space`) under it; a key mapped to ``None`` drops a shared entry.
    #: ``None`` (the default): not declared, and the tuner searches the shared space and ``embed_dim``.
    #: A subclass inherits its base's space; extend it with ``{**Base.search_space, ...}``.
    search_space: ClassVar[dict | None] = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is None:
            return
        sig = inspect.signature(init)

        @functools.wraps(init)
        def recording_init(self, *args, **kw):
            bound = sig.bind(self, *args, **kw)
            bound.apply_defaults()
            if not hasattr(self, "_hparams_owner"):
                # The most derived class checks and records its own arguments (coerced: "8" -> 8).
                given = {k: v for k, v in bound.arguments.items() if k not in ("self", "space")}
                bound.arguments.update(check_hparams(cls, given))
                object.__setattr__(self, "_hparams_owner", cls)
                object.__setattr__(self, "_hparams", {k: v for k, v in bound.arguments.items()
                                                      if k not in ("self", "space")})
                init(*bound.args, **bound.kwargs)
            else:
                init(self, *args, **kw)

        cls.__init__ = recording_init

    def __init__(self, space: FeatureSpace):
        super().__init__()
        if not isinstance(space, FeatureSpace):
            raise TypeError(f"models are built from a FeatureSpace (encoder.space_), got {type(space).__name__}")
        self.space = space

    @property
    def hparams(self) -> dict:
        return dict(getattr(self, "_hparams", {}))

    # -- what a subclass writes ---------------------------------------------------------------------------
    def forward(self, batch: TabularBatch) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def loss(self, batch: TabularBatch, loss_fn: Callable[[Tensor, Tensor], Tensor]) -> Tensor:
        """The training loss of a batch. Models with several outputs (one per layer) override this."""
        return loss_fn(self(batch), batch.y)

    # -- optimisation -----------------------------------------------------------------------------------------
    def embedding_parameters(self) -> list[nn.Parameter]:
        seen, out = set(), []
        for module in self.modules():
            if isinstance(module, FieldEmbedding):
                for p in module.parameters():
                    if id(p) not in seen:
                        seen.add(id(p)), out.append(p)
        return out

    def parameter_groups(self) -> list[dict]:
        """The model's parameters as parameter groups, in plain data: the embedding tables, whose weight decay
        is the trainer's ``embedding_weight_decay``, and everything else, whose decay is its ``weight_decay``.

        Each group is a dict with ``params`` (a list of parameters), ``name`` and either ``decay_from`` (the
        name of the training option its weight decay comes from) or its own ``weight_decay``; any other key
        (``lr``, ...) is a per-group option handed to the optimiser as it is. See :meth:`configure_optimizers`.
        """
        emb = self.embedding_parameters()
        emb_ids = {id(p) for p in emb}
        rest = [p for p in self.parameters() if id(p) not in emb_ids and p.requires_grad]
        groups = [{"params": emb, "decay_from": "embedding_weight_decay", "name": "embedding"}]
        if rest:
            groups.append({"params": rest, "decay_from": "weight_decay", "name": "dense"})
        return groups

    def configure_optimizers(self) -> list[dict]:
        """The optimisers the model wants, described in plain data (no ``torch.optim`` here): the trainer
        builds them (:func:`fgraph.train.optim.build_optimizers`).

        Each description is a dict with

        * ``params``: a list of parameters, or of parameter groups as :meth:`parameter_groups` gives them;
        * ``name`` (default ``"main"``): how errors and checkpoints name the optimiser;
        * ``data`` (default ``"train"``): ``"train"`` to step on every training batch (several such
          optimisers share one backward pass), ``"valid"`` to step on a validation batch after every training
          step (bilevel search, e.g. FIVES's adjacency);
        * ``optimizer`` (optional): a ``torch.optim`` name, fgraph's ``"grda"``
          (:class:`fgraph.train.grda.GRDA`), or a class; default the trainer's ``optimizer``, with its
          ``optimizer_options``;
        * ``lr`` (optional, None: the trainer's ``lr``): the learning rate;
        * ``options`` (optional): a dict of more keyword arguments for the optimiser (e.g.
          ``{"c": 0.005, "mu": 0.8}`` for GRDA); an optimiser the description names gets only these, the
          trainer's gets them over its ``optimizer_options``.

        The default is one optimiser over :meth:`parameter_groups`. Models that search (FIVES) return more.
        """
        return [{"name": "main", "params": self.parameter_groups()}]

    @contextlib.contextmanager
    def _evaluating(self) -> Iterator[None]:
        """Evaluation mode for the block, then the mode the model was in (what the explanation protocols use)."""
        was_training = self.training
        self.eval()
        try:
            yield
        finally:
            self.train(was_training)

    # -- weights set on purpose --------------------------------------------------------------------------------
    def keep_weights(self, *modules: nn.Module) -> None:
        """Mark ``modules`` (this model's submodules, or the model itself) as holding weights set on purpose:
        pre-trained, loaded or warm-started. A training protocol's initialisation (the trainer's
        ``embedding_init`` / ``dense_init``) then leaves them and everything under them as they are.

        Why: the ``bars`` protocol re-draws every embedding table and linear layer when the trainer is built,
        so an AFM pre-trained from an FM (the AFM paper's setting) silently started from N(0, 1e-4) again.

        Raises:
            ValueError: a module is not part of this model.
        """
        names = {id(m): name for name, m in self.named_modules()}
        kept = list(getattr(self, "_kept_weights", ()))
        for module in modules:
            if id(module) not in names:
                raise ValueError(f"keep_weights takes modules of this {type(self).__name__}, got a "
                                 f"{type(module).__name__} that is not one of them")
            if names[id(module)] not in kept:
                kept.append(names[id(module)])
        object.__setattr__(self, "_kept_weights", tuple(kept))

    def kept_modules(self) -> list[nn.Module]:
        """The modules marked with :meth:`keep_weights` (the model itself is named ``""``)."""
        return [self.get_submodule(name) for name in getattr(self, "_kept_weights", ())]

    # -- hooks the trainer calls ------------------------------------------------------------------------------
    def on_epoch_start(self, epoch: int) -> None:
        """Called before every training epoch (annealing schedules live here)."""

    def on_train_step_end(self, step: int) -> None:
        """Called after every optimiser step on a training batch."""

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.hparams.items())
