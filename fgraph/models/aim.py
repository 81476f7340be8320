r"""AIM: automatic interaction machine (Zhu et al., TKDE): gated search of interactions (FIS), of their
interaction functions (IFS) and of embedding dimensions (EDS) on top of FM, DeepFM or IPNN."""
from __future__ import annotations

import inspect
import itertools
from typing import Sequence

import torch
from torch import Tensor, nn

from ..data.loader import TabularBatch
from ..data.space import FeatureSpace
from ..nn.embedding import FieldEmbedding
from ..nn.gates import DimensionGate, InteractionGate
from ..nn.hyperedge_interaction import FUNCTIONS, HyperedgeInteraction
from ..nn.linear import FieldLinear
from ..nn.mlp import MLP
from .base import MODELS, CTRModel, register_model

#: the base models AIM searches on (Section 3.1): how the interaction layer meets the prediction
AIM_BASES = ("fm", "deepfm", "ipnn")
#: the stages of one AIM run, in order (Section 3.5); ``search-P`` is one per order 2..max_order
AIM_STAGES = ("search", "embed", "retrain")


def base_default(base: str, option: str):
    """The default of ``option`` in the registered base model ``base``'s signature."""
    return inspect.signature(MODELS[base].__init__).parameters[option].default


def combine(top: Sequence[Sequence[int]], num_fields: int) -> list[tuple[int, ...]]:
    r"""Algorithm 1, line 4: the candidates of order :math:`p` from the top interactions of order
    :math:`p-1`, each crossed with every field it does not hold (the Cartesian product with
    :math:`\mathcal{M}_1`), without repeats, each as sorted field indices, in sorted order.

    With :math:`k` interactions in ``top`` there are at most :math:`k (n - p + 1)` candidates: :math:`O(n^2)`
    for :math:`k \le n`, not the :math:`\binom{n}{p}` of enumerating every order-:math:`p` interaction."""
    pool = {tuple(sorted({*t, f})) for t in top for f in range(num_fields) if f not in t}
    return sorted(pool)


def pairs_of(num_fields: int) -> list[tuple[int, int]]:
    """Every pair ``i < j`` of the fields, in :func:`itertools.combinations` order."""
    return list(itertools.combinations(range(num_fields), 2))


class _GatedInteractions(nn.Module):
    """Interaction-function pairs ``(fields, function)`` evaluated group by group (one
    :class:`~fgraph.nn.HyperedgeInteraction` per function and order) and gated together by one
    :class:`~fgraph.nn.InteractionGate`, in the order of :attr:`entries`."""

    def __init__(self, entries: list[tuple[tuple[int, ...], str]], channels: int, gate_init: float, batch_norm: bool):
        super().__init__()
        groups: dict[tuple[str, int], list[tuple[int, ...]]] = {}
        for fields, function in entries:
            groups.setdefault((function, len(fields)), []).append(fields)
        self.keys = sorted(groups, key=lambda k: (FUNCTIONS.index(k[0]), k[1]))
        self.entries = [(fields, function) for function, order in self.keys for fields in groups[(function, order)]]
        self.functions = nn.ModuleList(HyperedgeInteraction(groups[k], k[0], channels) for k in self.keys)
        self.gate = InteractionGate(len(self.entries), init=gate_init, batch_norm=batch_norm)

    def locate(self, index: int) -> tuple[HyperedgeInteraction, int]:
        """The layer that computes entry ``index`` and its row (hyperedge) in that layer."""
        for layer in self.functions:
            if index < layer.num_hyperedges:
                return layer, index
            index -= layer.num_hyperedges
        raise IndexError(index)

    def values(self, embeddings: dict[str, Tensor]) -> Tensor:
        """The raw interaction values ``(B, P)`` (before normalisation and gate)."""
        parts = [layer(embeddings[function]) for (function, _), layer in zip(self.keys, self.functions)]
        if not parts:
            some = next(iter(embeddings.values()))
            return some.new_zeros(some.size(0), 0)
        return torch.cat(parts, dim=1)

    def forward(self, embeddings: dict[str, Tensor]) -> Tensor:
        return self.gate(self.values(embeddings))


@register_model("aim")
class AIM(CTRModel):
    r"""AIM on a base model: every interaction :math:`q` (a set of fields, of order :math:`p = |q|`) and
    interaction function :math:`k` has a gate :math:`\alpha_{qk}` on its batch-normalised value (Eq. 13-14,
    Section 3.6), and the base model combines the gated values:

    .. math::
        z_{qk} = \alpha_{qk}\,\mathrm{BN}\big(f_k(\mathbf{e}^{(k)}_{q_1}, \dots, \mathbf{e}^{(k)}_{q_p})\big),
        \qquad
        \hat y = \begin{cases}
            \langle \mathbf{w}, \mathbf{x} \rangle + \sum_{qk} z_{qk} & \text{FM (Eq. 12-14)} \\
            \langle \mathbf{w}, \mathbf{x} \rangle + \sum_{qk} z_{qk} + \mathrm{MLP}(\mathbf{E}) & \text{DeepFM (Eq. 9)} \\
            \mathrm{MLP}([\mathbf{E}, \mathbf{z}]) & \text{IPNN (Eq. 10)}
        \end{cases}

    with the interaction functions of :class:`~fgraph.nn.HyperedgeInteraction` (inner, vector kernel, scalar
    kernel, outer; any order), a table of function-wise embeddings :math:`\mathbf{e}^{(k)}` per function
    (Eq. 14; ``shared_embedding`` for one table), and :math:`\mathbf{E}` the concatenated embeddings of the first
    function's table. With ``search_dims`` every table's embeddings go through one
    :class:`~fgraph.nn.DimensionGate` first (Eq. 15, shared by a field's function-wise embeddings).

    One model is one stage of AIM's search (Section 3.5); ``fgraph train --model aim`` runs them all (see
    :meth:`stage_plan`): the order-2 search over every pair and function, the order-:math:`p` searches over
    the candidates Algorithm 1 grows from the top :math:`k` of order :math:`p-1` (:func:`combine`), the
    embedding-dimension search, and the retraining of the kept interactions, functions and dimensions.
    The searched gates (``candidates``' :math:`\alpha`, and :math:`\beta` with ``search_dims``) step with
    GRDA, whose :math:`\ell_1` pull sets useless ones to exactly zero; everything else with the trainer's
    optimiser, on the same batches (:meth:`configure_optimizers`). Kept interactions (``interactions``) keep
    their normalisation and a gate the trainer's optimiser trains, as in the authors' retraining.

    Interactions are given, and reported by :meth:`found`, by field *name*:
    ``{"fields": ["user", "item"], "function": "inner"}``.

    Args:
        space: the encoder's feature space.
        base: ``"fm"``, ``"deepfm"`` or ``"ipnn"`` (:data:`AIM_BASES`).
        embed_dim: the embedding size :math:`d` (the largest, with a dimension search).
        functions: the interaction functions searched (:data:`fgraph.nn.hyperedge_interaction.FUNCTIONS`).
        interactions: the kept interaction-function pairs (all orders), gated by trained, not searched,
            gates; None: none.
        candidates: the searched pairs, gated by GRDA: ``"pairs"`` (every pair of fields with every function
            that ``interactions`` does not keep: the order-2 search), a list of pairs (a higher-order search), or None (nothing searched).
        dims: the kept embedding coordinates per field name (the dimension search's result; fields not named
            keep all :math:`d`); tables then have one column per kept coordinate (see
            :class:`~fgraph.nn.FieldEmbedding`'s ``field_dims``).
        search_dims: gate every embedding coordinate with :math:`\beta` (EDS) and search the gates with GRDA.
        shared_embedding: one embedding table for every function (Eq. 13) instead of function-wise tables.
        gate_init: the initial :math:`\alpha` (0.6, the authors' code) and, for :math:`\beta`, 1.
        batch_norm: the normalisation before the gates (Section 3.6); False: the raw values are gated.
        grda_lr, grda_c, grda_mu: GRDA's learning rate and its :math:`c`, :math:`\mu` (Eq. 21) for the searched
            interaction gates :math:`\alpha`; ``grda_c`` may list one :math:`c` per order from 2 (the last one
            for the orders after it), since a higher order's candidates have fewer steps to show their use
            before the threshold, which grows with the step, reaches their initial gate.
        grda_c_dims: GRDA's :math:`c` for the dimension gates :math:`\beta`. Smaller than ``grda_c``: behind the
            batch normalisation an interaction's value does not change with the overall scale of its fields'
            :math:`\beta`, so nothing resists a uniform pull to zero but the dimensions' relative use (on the
            planted synthetic set, ``grda_c_dims = grda_c = 0.05`` pruned every dimension of a planted pair's
            fields).
        mlp_dims, mlp_dropout, mlp_batch_norm: the MLP of ``deepfm`` and ``ipnn`` (unused by ``fm``); None: the
            base model's own default (:class:`~fgraph.models.DeepFM`'s or :class:`~fgraph.models.IPNN`'s, their
            published BARS Frappe settings), so that AIM on a base starts from that base as it is shipped.
        max_order: the highest interaction order searched (2, 3 or 4 in the paper), read by :meth:`stage_plan`.
        top_k: how many interactions of order :math:`p-1` grow the order-:math:`p` candidates (Algorithm 1;
            None: :math:`\lfloor n/2 \rfloor`, as in the paper), read by :meth:`stage_plan`.
        search_embedding: run the embedding-dimension stage (EDS) in :meth:`stage_plan`.
        retrain_base: the base model of the retraining stage (None: ``base``), to carry an interaction set
            found on one base into another (Section 4.6).
        found: what an earlier search found (``{"interactions": [...], "dims": {...}}``, the ``found`` of an AIM
            run's ``search.json``): this model retrains it (it sets ``interactions`` and ``dims``, and searches
            nothing). ``fgraph train --model-option found=RUN_DIR`` reads it from that run.
        stage: which stage this model is (a label the staged run sets: ``"search-2"``, ``"embed"``,
            ``"retrain"``, ...; checked against the structure options).
    """

    #: ``fgraph tune``'s search (with its shared learning rate and embedding regulariser; see CTRModel)
    search_space = {
        "model.embed_dim": ("categorical", [8, 10, 16, 20, 32]),
        "model.grda_c": ("log_float", 5e-4, 5e-2),
        "model.grda_mu": ("float", 0.5, 0.9),
    }
    hparam_ranges = {"grda_lr": (0.0, None, True), "grda_c": (0.0, None, False), "grda_mu": (0.0, None, True),
                     "grda_c_dims": (0.0, None, False),
                     "max_order": (2, None), "top_k": (1, None)}

    def __init__(self, space: FeatureSpace, base: str = "fm", embed_dim: int = 10,
                 functions: Sequence[str] = FUNCTIONS, interactions: list | None = None,
                 candidates: str | list | None = "pairs", dims: dict | None = None, search_dims: bool = False,
                 shared_embedding: bool = False, gate_init: float = 0.6, batch_norm: bool = True,
                 grda_lr: float = 1.0, grda_c: float | Sequence[float] = 0.005, grda_mu: float = 0.8,
                 grda_c_dims: float = 5e-4,
                 mlp_dims: Sequence[int] | None = None, mlp_dropout: float | None = None,
                 mlp_batch_norm: bool | None = None,
                 max_order: int = 2, top_k: int | None = None, search_embedding: bool = True,
                 retrain_base: str | None = None, found: dict | None = None, stage: str = "search-2"):
        super().__init__(space)
        for name, value in (("base", base), ("retrain_base", retrain_base)):
            if value is not None and value not in AIM_BASES:
                raise ValueError(f"{name} is {value!r}; AIM searches on one of {list(AIM_BASES)}")
        functions = tuple(functions)
        unknown = [f for f in functions if f not in FUNCTIONS]
        if unknown or not functions or len(set(functions)) != len(functions):
            raise ValueError(f"functions must be distinct names from {list(FUNCTIONS)}, got {list(functions)}")
        n = space.num_fields
        if n < 2:
            raise ValueError(f"AIM crosses fields; the data has {n} field")
        self.base, self.functions, self.embed_dim = base, functions, int(embed_dim)
        self.grda_lr, self.grda_mu = float(grda_lr), float(grda_mu)
        # One c, or one per order 2, 3, ...: this model's searched order picks its own (see stage_options).
        per_order = [float(c) for c in grda_c] if isinstance(grda_c, (list, tuple)) else [float(grda_c)]
        if not per_order or min(per_order) < 0:
            raise ValueError(f"grda_c must be >= 0 (one value, or one per order from 2), got {grda_c!r}")
        if len(per_order) > max(int(max_order), 2) - 1:
            # A c for an order that is never searched would be dropped without a word.
            raise ValueError(f"grda_c lists {len(per_order)} values, one per order from 2, but max_order is "
                             f"{max_order}: give at most {max(int(max_order), 2) - 1} (or raise max_order)")
        self.grda_c = per_order[0]
        self.grda_c_dims = float(grda_c_dims)
        self.stage = str(stage)
        if found is not None:
            if not isinstance(found, dict) or not isinstance(found.get("interactions"), list):
                raise ValueError(f"found must be what a search found (a mapping with 'interactions', as in an AIM "
                                 f"run's search.json; fgraph train takes its run directory), got {found!r}")
            interactions, dims, candidates = found["interactions"], found.get("dims"), None
        kept = [self._entry(e, "interactions") for e in (interactions or [])]
        if candidates == "pairs":
            taken = set(kept)
            searched = [(pair, f) for pair in pairs_of(n) for f in functions if (pair, f) not in taken]
        elif candidates is None:
            searched = []
        elif isinstance(candidates, str):
            raise ValueError(f"candidates is {candidates!r}; give 'pairs', a list of interactions or None")
        else:
            searched = [self._entry(e, "candidates") for e in candidates]
        both = set(kept) & set(searched)
        if both:
            fields, function = sorted(both)[0]
            raise ValueError(f"interaction {[space.names[i] for i in fields]} with {function!r} is both kept "
                             f"(interactions) and searched (candidates)")
        self.kept = _GatedInteractions(kept, self.embed_dim, gate_init, batch_norm)
        self.searched = _GatedInteractions(searched, self.embed_dim, gate_init, batch_norm)
        used = {f for _, f in self.kept.entries + self.searched.entries}
        tables = ["shared"] if shared_embedding else [f for f in functions if f in used or f == functions[0]]
        field_dims = {name: list(coords) for name, coords in (dims or {}).items()}
        self.embeddings = nn.ModuleDict({t: FieldEmbedding(space, self.embed_dim, field_dims) for t in tables})
        self.dim_gate = DimensionGate(n, self.embed_dim) if search_dims else None
        self.linear = FieldLinear(space) if base in ("fm", "deepfm") else None
        deep_in = {"fm": None, "deepfm": n * self.embed_dim,
                   "ipnn": n * self.embed_dim + len(self.kept.entries) + len(self.searched.entries)}[base]
        if deep_in is None:
            self.mlp = None
        else:   # what is not given is the base model's own (DeepFM's, IPNN's: their published BARS settings)
            mlp = {k: v if v is not None else base_default(base, k)
                   for k, v in (("mlp_dims", mlp_dims), ("mlp_dropout", mlp_dropout), ("mlp_batch_norm", mlp_batch_norm))}
            self.mlp = MLP(deep_in, tuple(mlp["mlp_dims"]), mlp["mlp_dropout"], mlp["mlp_batch_norm"])

    def _entry(self, entry, option: str) -> tuple[tuple[int, ...], str]:
        """An interaction given by field names (``{"fields": [...], "function": ...}``) as field indices."""
        names = self.space.names
        if not isinstance(entry, dict) or "fields" not in entry or "function" not in entry:
            raise ValueError(f"each of {option} must be a mapping with 'fields' (field names) and 'function', "
                             f"got {entry!r}")
        fields = list(entry["fields"])
        missing = [f for f in fields if f not in names]
        if missing:
            raise ValueError(f"{option} names field(s) {missing}, which the data does not have (fields: {names})")
        if len(set(fields)) != len(fields) or len(fields) < 2:
            raise ValueError(f"{option}: an interaction crosses two or more distinct fields, got {fields}")
        if entry["function"] not in self.functions:
            raise ValueError(f"{option}: function {entry['function']!r} is not one of this model's functions "
                             f"{list(self.functions)}")
        return tuple(sorted(names.index(f) for f in fields)), str(entry["function"])

    # -- the model -----------------------------------------------------------------------------------------
    @property
    def embedding(self) -> FieldEmbedding:
        """The first function's table (or the shared one): the embeddings the MLP of DeepFM and IPNN reads."""
        return self.embeddings["shared" if "shared" in self.embeddings else self.functions[0]]

    def embed(self, batch: TabularBatch) -> dict[str, Tensor]:
        """The embeddings each function reads, ``{function: (B, n, d)}`` (one shared table, or one per
        function), through the dimension gate when it searches."""
        out = {}
        for name, table in self.embeddings.items():
            e = table(batch)
            out[name] = e if self.dim_gate is None else self.dim_gate(e)
        if "shared" in out:
            return {f: out["shared"] for f in self.functions}
        return {f: out.get(f, out[self.functions[0]]) for f in self.functions}

    def gated_values(self, batch: TabularBatch) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        """The gated values of the kept ``(B, K)`` and of the searched ``(B, C)`` interactions (in the order of
        :meth:`entries`), and the embeddings."""
        e = self.embed(batch)
        return self.kept(e), self.searched(e), e

    def forward(self, batch: TabularBatch) -> Tensor:
        kept, searched, e = self.gated_values(batch)
        flat = e[self.functions[0]].flatten(1)
        if self.base == "ipnn":
            return self.mlp(torch.cat([flat, kept, searched], dim=1)).squeeze(-1)
        out = self.linear(batch) + kept.sum(1) + searched.sum(1)
        return out if self.mlp is None else out + self.mlp(flat).squeeze(-1)

    # -- optimisation ---------------------------------------------------------------------------------------
    def searched_parameters(self) -> list[nn.Parameter]:
        """The gates GRDA searches: the candidates' :math:`\\alpha` and, with ``search_dims``, :math:`\\beta`."""
        out = [self.searched.gate.alpha] if self.searched.entries else []
        return out + ([self.dim_gate.beta] if self.dim_gate is not None else [])

    def configure_optimizers(self) -> list[dict]:
        """Everything but the searched gates with the trainer's optimiser; the searched gates with GRDA at
        ``grda_lr`` (no weight decay; :math:`\\alpha` with ``grda_c``, :math:`\\beta` with ``grda_c_dims``), on
        the same training batches (Section 4.2.3)."""
        gates = self.searched_parameters()
        ids = {id(p) for p in gates}
        groups = [{**g, "params": [p for p in g["params"] if id(p) not in ids]} for g in self.parameter_groups()]
        out = [{"name": "weights", "params": [g for g in groups if g["params"]]}]
        gate_groups = []
        if self.searched.entries:
            gate_groups.append({"params": [self.searched.gate.alpha], "name": "alpha", "c": self.grda_c})
        if self.dim_gate is not None:
            gate_groups.append({"params": [self.dim_gate.beta], "name": "beta", "c": self.grda_c_dims})
        if gate_groups:
            out.append({"name": "gates", "params": gate_groups, "optimizer": "grda", "lr": self.grda_lr,
                        "options": {"mu": self.grda_mu}})
        return out

    # -- what the model learned ----------------------------------------------------------------------------
    @torch.no_grad()
    def gate_weights(self) -> dict:
        """The gates, in tensors and field indices (no names): ``kept`` and ``searched``, each a list of
        ``(fields, function)`` with ``alpha`` ``(P,)`` in the same order, and ``beta`` ``(n, d)`` (None without
        a dimension search). What :meth:`found` and :func:`fgraph.explain.interaction_graph` read."""
        return {"kept": list(self.kept.entries), "kept_alpha": self.kept.gate.alpha.detach().clone(),
                "searched": list(self.searched.entries), "searched_alpha": self.searched.gate.alpha.detach().clone(),
                "beta": None if self.dim_gate is None else self.dim_gate.beta.detach().clone()}

    def found(self) -> dict:
        """What this stage found, in plain data (field names): ``interactions``, the kept interactions (every
        kept one, and the searched ones whose gate is not zero), each ``{"fields", "function", "order",
        "alpha", "searched"}``; per order, how many were ``searched`` and how many of those were ``kept``; and
        with a dimension search ``dims``, the kept coordinates per field."""
        w, names = self.gate_weights(), self.space.names
        out, searched, kept_count = [], {}, {}
        for entries, alpha, was_searched in ((w["kept"], w["kept_alpha"], False),
                                             (w["searched"], w["searched_alpha"], True)):
            for (fields, function), a in zip(entries, alpha.tolist()):
                p = str(len(fields))
                if was_searched:
                    searched[p] = searched.get(p, 0) + 1
                    if a == 0.0:
                        continue
                    kept_count[p] = kept_count.get(p, 0) + 1
                out.append({"fields": [names[i] for i in fields], "function": function, "order": len(fields),
                            "alpha": float(a), "searched": was_searched})
        result = {"interactions": out, "searched": searched, "kept": {p: kept_count.get(p, 0) for p in searched}}
        if self.dim_gate is not None:
            result["dims"] = {names[i]: coords for i, coords in enumerate(self.dim_gate.kept_coordinates())}
        return result

    # -- the staged run ------------------------------------------------------------------------------------
    @torch.no_grad()
    def warm_start(self, previous: "AIM") -> None:
        """Start from what the previous search stage learned: the embedding tables, the first-order term and
        the MLP where their shapes agree, and, for every interaction this model holds (kept or searched) that
        ``previous`` held too, its function's parameters, its gate and its normalisation statistics.

        The staged run calls it for the searches after the first (``search-3``, ..., ``embed``), not for the
        retraining, which starts afresh as in the paper. Why: started from scratch, the order-3 search on the
        planted synthetic set relearns the strong pairs while its candidates grown from them soak up their
        residue, and it stopped before learning the planted triple in 1 of 3 seeds (``grda_c`` 0.03, 8 epochs)."""
        mine, theirs = self.state_dict(), previous.state_dict()
        for prefix in ("embeddings.", "linear.", "mlp."):
            for key, value in theirs.items():
                if key.startswith(prefix) and key in mine and mine[key].shape == value.shape:
                    mine[key].copy_(value)
        where = {}
        for part_name in ("kept", "searched"):
            part = getattr(previous, part_name)
            for index, entry in enumerate(part.entries):
                where[entry] = (part, index)
        for part in (self.kept, self.searched):
            for index, entry in enumerate(part.entries):
                if entry not in where:
                    continue
                source, source_index = where[entry]
                mine_layer, mine_row = part.locate(index)
                their_layer, their_row = source.locate(source_index)
                for name, param in mine_layer.named_parameters():
                    param[mine_row].copy_(getattr(their_layer, name)[their_row])
                part.gate.alpha[index] = source.gate.alpha[source_index]
                if part.gate.norm is not None and source.gate.norm is not None:
                    part.gate.norm.running_mean[index] = source.gate.norm.running_mean[source_index]
                    part.gate.norm.running_var[index] = source.gate.norm.running_var[source_index]
        self.load_state_dict(mine)

    #: the options that describe one stage's structure (set by :meth:`stage_options`, not by the user)
    STAGE_OPTIONS = ("interactions", "candidates", "dims", "search_dims", "stage", "found")

    @staticmethod
    def _order_c(options: dict, order: int) -> float:
        """GRDA's c for the search of ``order``: ``grda_c``, or its entry for that order (the last entry for
        orders past the list)."""
        c = options.get("grda_c", 0.005)
        if isinstance(c, (list, tuple)):
            return float(c[min(order - 2, len(c) - 1)])
        return float(c)

    @classmethod
    def stage_plan(cls, options: dict) -> list[str]:
        """The search stages a run with ``options`` (the user's model options) goes through before it
        retrains: ``search-2`` .. ``search-<max_order>``, then ``embed`` (unless ``search_embedding`` is
        False). Empty when ``options`` already carry a found set (``interactions``) and nothing to search."""
        if options.get("found") is not None or (options.get("interactions") is not None
                                                 and options.get("candidates", "pairs") in (None, [], ())):
            return []
        stages = [f"search-{p}" for p in range(2, int(options.get("max_order", 2)) + 1)]
        return stages + (["embed"] if options.get("search_embedding", True) else [])

    @classmethod
    def stage_options(cls, stage: str, options: dict, found: dict, space: FeatureSpace) -> dict:
        """The model options of ``stage`` (one of :meth:`stage_plan`'s, or ``"retrain"``) given the user's
        ``options`` and what the earlier stages ``found`` (the union of their :meth:`found` ``interactions``,
        the latest first for an interaction found twice, and ``dims``)."""
        base = {k: v for k, v in options.items() if k not in cls.STAGE_OPTIONS}
        kept = [{"fields": e["fields"], "function": e["function"]} for e in found.get("interactions", [])]
        if stage.startswith("search-"):
            p = int(stage.split("-", 1)[1])
            if p == 2:
                return {**base, "interactions": None, "candidates": "pairs", "stage": stage,
                        "grda_c": cls._order_c(options, 2)}
            previous = [e for e in found.get("interactions", []) if e["order"] == p - 1]
            # Rank the order-(p-1) interactions by their largest gate over the functions (Algorithm 1, line 6).
            score: dict[tuple, float] = {}
            for e in previous:
                key = tuple(sorted(space.names.index(f) for f in e["fields"]))
                score[key] = max(score.get(key, 0.0), abs(e["alpha"]))
            k = options.get("top_k") or space.num_fields // 2
            top = sorted(score, key=lambda key: (-score[key], key))[:k]
            functions = tuple(options.get("functions", FUNCTIONS))
            pool = [([space.names[i] for i in q], f) for q in combine(top, space.num_fields) for f in functions]
            return {**base, "interactions": kept, "stage": stage, "grda_c": cls._order_c(options, p),
                    "candidates": [{"fields": q, "function": f} for q, f in pool]}
        if stage == "embed":
            return {**base, "interactions": kept, "candidates": None, "search_dims": True, "stage": stage}
        if stage == "retrain":
            out = {**base, "interactions": kept, "candidates": None, "search_dims": False, "stage": stage,
                   "dims": found.get("dims")}
            if options.get("retrain_base"):
                out["base"] = options["retrain_base"]
            return out
        raise ValueError(f"unknown AIM stage {stage!r}; the stages are search-<order>, embed and retrain")

    def extra_repr(self) -> str:
        return (f"base={self.base!r}, stage={self.stage!r}, kept={len(self.kept.entries)}, "
                f"searched={len(self.searched.entries)}, functions={list(self.functions)}")
