"""Run directories: one run per directory, one writer at a time, no file written by halves.

A run directory holds what one training writes: ``config.json`` (how the run was asked for),
``encoder.json``, ``checkpoint.pt``, ``history.json``, ``log.txt``, ``schema.yaml`` (for a run on a user's
files: the schema it used) and, once the run is scored, ``metrics.json``. :class:`RunDirectory` is the one place that knows these names: it reads and writes each
file (``read_config()``, ``write_checkpoint(state)``, ...) and loads a whole run back in one call
(:meth:`RunDirectory.load`). The rules that keep two runs from mixing there:

* a directory that already holds any of those files is a run: training into it is refused unless the
  training resumes that run or is asked to overwrite it; overwriting removes the old run's files first
  (fgraph's files only: anything else the user keeps there is left alone); an empty or new directory is fine;
* while a process trains, it holds an exclusive ``flock`` on ``<run>/.lock`` (which names its pid); a second
  training into the same directory, from another process or the same one, is refused while the lock is
  held. The kernel drops the lock when the process ends, even by SIGKILL, so a crash leaves no stale lock;
* every file is written to a temporary name, flushed and renamed, so a crash leaves the old file or the new
  one, never half of one;
* under ``torchrun`` (a process group of several ranks, :mod:`fgraph.train.distributed`) only rank 0 takes
  the lock, checks and writes: on the other ranks entering, :meth:`~RunDirectory.prepare`, :meth:`~RunDirectory.clear`
  and every ``write_*`` do nothing (they read what they need, e.g. the checkpoint of a resume);
* what is read back is checked: config.json, the checkpoint and encoder.json must be readable and come from
  the same run (see :meth:`RunDirectory.load`), or a clear :class:`~fgraph.errors.FgraphError` says which
  file is wrong.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..data.encoder import FieldEncoder
from ..errors import (CheckpointError, ConfigError, FgraphError, InputFileError, InputFileNotFoundError,
                      RunDirectoryError)
from ..models.base import CTRModel, build_model
from .distributed import is_writer
from .checkpoint import (check_encoder_fingerprint, check_same_space, load_checkpoint, load_weights,
                         save_checkpoint, to_plain)

try:  # POSIX; elsewhere an exclusively created lock file stands in (see RunDirectory.acquire)
    import fcntl
except ImportError:  # pragma: no cover - not on Linux/macOS
    fcntl = None

#: the files of a run directory, by what they hold
CONFIG_FILE, ENCODER_FILE, CHECKPOINT_FILE = "config.json", "encoder.json", "checkpoint.pt"
HISTORY_FILE, METRICS_FILE, LOG_FILE = "history.json", "metrics.json", "log.txt"
SCHEMA_FILE = "schema.yaml"
#: what a staged run (AIM) searched and found, and the folder of its search stages (one run directory each)
SEARCH_FILE, STAGES_DIR = "search.json", "stages"
#: every file a training writes into its run directory
RUN_FILES = (CONFIG_FILE, ENCODER_FILE, CHECKPOINT_FILE, HISTORY_FILE, METRICS_FILE, LOG_FILE, SCHEMA_FILE,
             SEARCH_FILE)
#: the run files only some runs have (a staged run's search.json)
OPTIONAL_RUN_FILES = (SEARCH_FILE,)
LOCK_FILE = ".lock"
#: what config.json names that a resume, and the checkpoint, must agree with
RUN_KEYS = ("model", "dataset", "min_count", "model_options", "dataset_options")
#: training options a resume must keep: the saved optimiser state overrides them (lr, weight decays, optimiser
#: options), they no longer act (seed: the loaders' random state is restored) or they give the saved metrics
#: another meaning (task, monitor). The other options (epochs, patience, batch sizes, device...) may change.
RESUME_FIXED_OPTIONS = ("task", "monitor", "optimizer", "optimizer_options", "lr", "weight_decay",
                        "embedding_weight_decay", "seed")



def _rank0_only(method):
    """A writing method that does nothing on ranks other than 0 of a process group."""
    def guarded(self, *args, **kwargs):
        if not is_writer():
            return None
        return method(self, *args, **kwargs)
    guarded.__name__, guarded.__qualname__, guarded.__doc__ = method.__name__, method.__qualname__, method.__doc__
    return guarded


_FIX = "use --resume (resume=True) to continue it, --overwrite (overwrite=True) to replace it, or another --out"


def fixed_option_differences(saved: dict, current: dict) -> list[tuple[str, object, object]]:
    """``(option, saved value, current value)`` for each of :data:`RESUME_FIXED_OPTIONS` that differs between
    two :meth:`~fgraph.train.TrainConfig.to_dict` (plain data, e.g. from a checkpoint or ``config.json``)."""
    out = []
    for key in RESUME_FIXED_OPTIONS:
        a, b = to_plain(saved.get(key)), to_plain(current.get(key))
        if key == "optimizer" and isinstance(a, str) and isinstance(b, str):
            a_cmp, b_cmp = a.lower(), b.lower()
        else:
            a_cmp, b_cmp = a, b
        if a_cmp != b_cmp:
            out.append((key, a, b))
    return out


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` through a flushed temporary file and a rename."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as e:   # a full disk, a read-only directory: the old file stays as it was
        raise RunDirectoryError(f"cannot write {path}: {e.strerror or e}; the previous {path.name} (if any) is "
                                f"left as it was") from None
    finally:
        if tmp.exists():
            tmp.unlink()


def write_json_atomic(path: str | os.PathLike, obj) -> None:
    """``obj`` as indented JSON, written atomically (see :func:`write_text_atomic`)."""
    write_text_atomic(path, json.dumps(obj, indent=1) + "\n")


class RunDirectory:
    """A run directory and the lock that makes one process its only writer.

    Use it as a context manager (``with RunDirectory(path) as run: ...``): entering creates the directory if
    needed and takes the lock, leaving releases it (also on an exception or Ctrl-C) and removes the directory
    again if this object created it and nothing was written into it.

    Args:
        path: the directory.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._fd: int | None = None
        self._created = False
        self._following = False   # entered on a rank other than 0: no lock, nothing written

    def __repr__(self) -> str:
        return f"RunDirectory({str(self.path)!r}, locked={self.locked})"

    @property
    def locked(self) -> bool:
        """Whether this object holds the directory's lock (on a rank other than 0: whether it was entered)."""
        return self._fd is not None or self._following

    def existing(self, names=RUN_FILES) -> list[str]:
        """Which of the run files ``names`` are in the directory."""
        return [n for n in names if (self.path / n).exists()]

    # -- the files ------------------------------------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        """``config.json``: how the run was asked for (model, data set, options), written once at its start."""
        return self.path / CONFIG_FILE

    @property
    def encoder_path(self) -> Path:
        """``encoder.json``: the fitted encoder, to score raw data (a copy of the checkpoint's)."""
        return self.path / ENCODER_FILE

    @property
    def checkpoint_path(self) -> Path:
        """``checkpoint.pt``: model, optimisers, encoder and random states after the last completed epoch."""
        return self.path / CHECKPOINT_FILE

    @property
    def history_path(self) -> Path:
        """``history.json``: one record per completed epoch."""
        return self.path / HISTORY_FILE

    @property
    def metrics_path(self) -> Path:
        """``metrics.json``: the scores of the finished run."""
        return self.path / METRICS_FILE

    @property
    def log_path(self) -> Path:
        """``log.txt``: one line per completed epoch."""
        return self.path / LOG_FILE

    @property
    def search_path(self) -> Path:
        """``search.json``: a staged run's search (AIM): the stages, what each found, the kept set retrained."""
        return self.path / SEARCH_FILE

    def stage_path(self, stage: str) -> Path:
        """``stages/<stage>``: the run directory of one search stage of a staged run."""
        return self.path / STAGES_DIR / stage

    @_rank0_only
    def write_search(self, search: dict) -> None:
        """Write ``search.json`` (plain data)."""
        write_json_atomic(self.search_path, search)

    def read_search(self) -> dict:
        """``search.json`` of a staged run.

        Raises:
            InputFileNotFoundError: the run has none (it is not an AIM run, or its search has not ended).
            InputFileError: the file is damaged.
        """
        path = self.search_path
        if not path.is_file():
            raise InputFileNotFoundError(f"{self.path} has no {SEARCH_FILE}: it is not the directory of an AIM run "
                                         f"whose search has ended")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise InputFileError(f"{path} is not a readable search record ({e})") from None
        if not isinstance(data, dict) or not isinstance(data.get("found"), dict):
            raise InputFileError(f"{path} is not a search record: it has no 'found' mapping")
        return data

    @property
    def schema_path(self) -> Path:
        """``schema.yaml``: the schema of a run on a user's files (what ``fgraph train --data`` inferred or was
        given), in the schema file format (:func:`fgraph.data.files.load_schema` reads it)."""
        return self.path / SCHEMA_FILE

    # -- the lock -----------------------------------------------------------------------------------------
    def _check_is_directory(self) -> None:
        if self.path.exists() and not self.path.is_dir():
            raise RunDirectoryError(f"run directory {self.path} is a file, not a directory; choose another --out "
                                    f"(a new or empty directory)")

    def _make(self) -> None:
        self._check_is_directory()
        if self.path.is_dir():
            return
        try:
            self.path.mkdir(parents=True)
            self._created = True
        except FileExistsError:   # created meanwhile by someone else (or it is a file): fine if a directory
            self._check_is_directory()
        except NotADirectoryError:
            raise RunDirectoryError(f"cannot create run directory {self.path}: a part of the path is a file, "
                                    f"not a directory; choose another --out") from None
        except OSError as e:
            raise RunDirectoryError(f"cannot create run directory {self.path}: {e.strerror}; choose another "
                                    f"--out") from None

    def acquire(self) -> "RunDirectory":
        """Create the directory if needed and take its lock, or raise :class:`RunDirectoryError` if another
        training holds it. Taking a lock this object already holds does nothing."""
        if self.locked:
            return self
        if not is_writer():   # rank 0 holds the lock for the whole process group
            self._following = True
            return self
        self._make()
        lock = self.path / LOCK_FILE
        for _ in range(20):
            try:
                # O_NOFOLLOW: a .lock planted as a symlink must not make us truncate the file it points to.
                flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | (0 if fcntl is not None else os.O_EXCL)
                fd = os.open(lock, flags, 0o644)
            except FileExistsError:   # no flock: an existing lock file means a writer (or a crashed one)
                raise RunDirectoryError(f"run directory {self.path} is in use by another training (lock file "
                                        f"{lock} exists); wait for it to end, or delete {lock} if no training "
                                        f"runs there") from None
            except OSError as e:
                raise RunDirectoryError(f"cannot write in run directory {self.path}: {e.strerror}") from None
            if fcntl is None:  # pragma: no cover
                break
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:   # BlockingIOError: someone holds it
                holder = _read_pid(fd)
                os.close(fd)
                who = "another training" if holder is None else (
                    f"another training in this process (pid {holder})" if holder == os.getpid()
                    else f"another training (pid {holder})")
                raise RunDirectoryError(f"run directory {self.path} is in use by {who}; wait for it to end, "
                                        f"or train into another --out") from None
            # The holder removes the lock file as it lets go; if that happened between our open and our flock,
            # we hold a lock on a file nobody else sees. Start again on the file that is there now.
            try:
                here, there = os.fstat(fd), os.stat(lock)
                same = (here.st_ino, here.st_dev) == (there.st_ino, there.st_dev)
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        else:  # pragma: no cover - needs twenty lost races in a row
            raise RunDirectoryError(f"could not lock run directory {self.path}: its lock file keeps changing")
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        self._remove_temporaries()
        return self

    def release(self) -> None:
        """Let go of the lock (and remove the directory if this object created it and it stayed empty)."""
        self._following = False
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        lock = self.path / LOCK_FILE
        try:
            # Removed while still locked, so that no one can lock the file that is about to disappear.
            here, there = os.fstat(fd), os.stat(lock)
            if (here.st_ino, here.st_dev) == (there.st_ino, there.st_dev):
                lock.unlink()
        except OSError:
            pass
        finally:
            os.close(fd)
        if self._created:
            self._created = False
            try:
                self.path.rmdir()   # only succeeds if nothing was written
            except OSError:
                pass

    def __enter__(self) -> "RunDirectory":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

    # -- what may be written --------------------------------------------------------------------------------
    def prepare(self, *, resume: bool = False, overwrite: bool = False, files=RUN_FILES) -> None:
        """Check that a training may write here, under the lock.

        Args:
            resume: the training continues the run that is there: it needs a checkpoint.
            overwrite: the training replaces the run that is there (call :meth:`clear` before writing).
            files: the run files whose presence means "a run is there".

        Raises:
            ConfigError: both ``resume`` and ``overwrite``.
            InputFileNotFoundError: ``resume`` without a checkpoint to resume from.
            RunDirectoryError: a run is there and neither ``resume`` nor ``overwrite`` was asked for.
        """
        if resume and overwrite:
            raise ConfigError(f"resume and overwrite exclude each other: resume continues the run in {self.path}, "
                              f"overwrite deletes it; give one of them")
        if not is_writer():   # rank 0 checks; here rank 0 may have written meanwhile
            return
        found = self.existing(files)
        if resume:
            # A staged run (AIM) stopped during a search stage has no checkpoint of its own yet, but its stages do.
            if not self.checkpoint_path.is_file() and not (self.path / STAGES_DIR).is_dir():
                if found:
                    raise InputFileNotFoundError(
                        f"cannot resume {self.path}: there is no checkpoint (it holds {', '.join(found)}), so "
                        f"the run stopped before its first epoch ended; start it again with --overwrite")
                raise InputFileNotFoundError(f"cannot resume: no checkpoint in {self.path} (there is no run to "
                                             f"continue); train without --resume to start one")
            return
        if found and not overwrite:
            raise RunDirectoryError(f"run directory {self.path} already holds a run ({', '.join(found)}); {_FIX}")

    def clear(self, files=RUN_FILES) -> list[str]:
        """Remove the run files ``files`` (and stale temporary files), so nothing of an old run stays. Returns
        the names removed. Other files in the directory are left alone."""
        if not is_writer():
            return []
        if not self.locked:
            raise RuntimeError("clear() needs the lock: use the RunDirectory as a context manager")
        removed = []
        for name in files:
            p = self.path / name
            if p.is_file() or p.is_symlink():
                p.unlink()
                removed.append(name)
        self._remove_temporaries()
        return removed

    def _remove_temporaries(self) -> None:
        # Left by a writer killed between writing and renaming; no live writer owns them, since we hold the lock.
        for name in RUN_FILES:
            for stale in [*self.path.glob(f".{name}.*tmp"), self.path / f"{name}.tmp"]:
                try:
                    if stale.is_file():
                        stale.unlink()
                except OSError:
                    pass


    # -- writing (under the lock) ----------------------------------------------------------------------------
    @_rank0_only
    def write_config(self, config: dict) -> None:
        """Write ``config.json`` (plain data: see :func:`~fgraph.train.checkpoint.to_plain`)."""
        write_json_atomic(self.config_path, config)

    @_rank0_only
    def write_encoder(self, encoder: FieldEncoder) -> None:
        """Write ``encoder.json`` (the fitted encoder)."""
        encoder.save(self.encoder_path)

    @_rank0_only
    def write_schema(self, schema) -> None:
        """Write ``schema.yaml`` (a :class:`~fgraph.data.Schema`, in full)."""
        from ..data.files import save_schema

        save_schema(schema, self.schema_path)

    @_rank0_only
    def write_checkpoint(self, state: dict) -> None:
        """Write ``checkpoint.pt`` (see :func:`~fgraph.train.checkpoint.save_checkpoint`)."""
        save_checkpoint(state, self.checkpoint_path)

    @_rank0_only
    def write_history(self, history: list[dict]) -> None:
        """Write ``history.json``, the records of the completed epochs."""
        write_json_atomic(self.history_path, history)

    @_rank0_only
    def write_metrics(self, metrics: dict) -> None:
        """Write ``metrics.json``, the finished run's scores."""
        write_json_atomic(self.metrics_path, metrics)

    @_rank0_only
    def remove_metrics(self) -> None:
        """Remove ``metrics.json`` (a resumed run replaces the checkpoint those scores described)."""
        self.metrics_path.unlink(missing_ok=True)

    @_rank0_only
    def append_log(self, line: str) -> None:
        """Add an epoch's line to ``log.txt``."""
        with open(self.log_path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")

    @_rank0_only
    def write_log(self, text: str) -> None:
        """Write ``log.txt`` anew (a resume rewrites it from the checkpoint's history)."""
        write_text_atomic(self.log_path, text)

    # -- reading --------------------------------------------------------------------------------------------
    def read_config(self) -> dict:
        """The run's ``config.json``, checked to hold what fgraph writes there.

        Raises:
            InputFileNotFoundError: the directory is not a run (no config.json).
            InputFileError: config.json is not UTF-8, not JSON, or lacks :data:`RUN_KEYS` or ``train``.
        """
        path = self.config_path
        if not path.is_file():
            raise InputFileNotFoundError(f"{self.path} is not an fgraph run directory (no {CONFIG_FILE})")
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError as e:
            raise InputFileError(f"{path} is not UTF-8 text (byte {e.start}): the run directory is damaged") from None
        except json.JSONDecodeError as e:
            raise InputFileError(f"{path} is not valid JSON ({e.msg} at line {e.lineno}, column {e.colno}): the run "
                                 f"directory is damaged") from None
        missing = [] if not isinstance(saved, dict) else \
            [k for k in (*RUN_KEYS, "train") if k not in saved]
        if not isinstance(saved, dict) or missing or not isinstance(saved["train"], dict):
            raise InputFileError(f"{path} is not an fgraph run configuration"
                                 f"{f': it lacks {missing}' if missing else ''}: the run directory is damaged")
        return saved

    def read_encoder(self) -> FieldEncoder | None:
        """The encoder of ``encoder.json``, or None if the run has none (the checkpoint holds a copy).

        Raises:
            InputFileError: encoder.json cannot be read.
        """
        path = self.encoder_path
        if not path.is_file():
            return None
        try:
            return FieldEncoder.load(path)
        except FgraphError:
            raise
        except Exception as e:
            raise InputFileError(f"{path} cannot be read ({type(e).__name__}: {e}); the run's encoder is also "
                                 f"in {CHECKPOINT_FILE}: delete {path} and a resume writes it again") from None

    def read_checkpoint(self, map_location="cpu") -> dict:
        """The checkpoint, read and checked by :func:`~fgraph.train.checkpoint.load_checkpoint`.

        Raises:
            InputFileNotFoundError: there is none (the training stopped before its first epoch was saved).
            CheckpointError: it is damaged or not fgraph's.
        """
        if not self.checkpoint_path.exists():
            raise InputFileNotFoundError(f"{self.path} holds no {CHECKPOINT_FILE}: its training stopped before the "
                                         f"first epoch was saved, so there is nothing to load")
        return load_checkpoint(self.checkpoint_path, map_location=map_location)

    def read_run(self, config: dict | None = None) -> tuple[dict, FieldEncoder]:
        """The checkpoint and its encoder, once checked to belong to this run: the checkpoint agrees with
        ``config`` (default: :meth:`read_config`) on :data:`RUN_KEYS` and :data:`RESUME_FIXED_OPTIONS`, its
        encoder matches its feature space and fingerprint, and ``encoder.json`` (if there) is that encoder.

        Raises:
            InputFileNotFoundError, InputFileError, CheckpointError: see :meth:`read_config`,
                :meth:`read_encoder`, :meth:`read_checkpoint`; CheckpointError also when the files come from
                different runs or encoders.
        """
        config = self.read_config() if config is None else config
        state = self.read_checkpoint()
        self._check_run_info(state, config)
        encoder = self._checkpoint_encoder(state)
        self._check_stored_encoder(encoder)
        return state, encoder

    def load(self) -> "LoadedRun":
        """The trained run in one call: its model with the best weights (the last epoch's if no epoch improved
        on the validation score), its encoder, config.json and the checkpoint, all checked (see
        :meth:`read_run`); the model is built on the CPU.

        Raises:
            InputFileNotFoundError: not a run directory, or one without a checkpoint.
            InputFileError: a damaged config.json or encoder.json.
            CheckpointError: a damaged or foreign checkpoint, one that disagrees with config.json or
                encoder.json, or one holding a model this fgraph cannot build.
        """
        config = self.read_config()
        state, encoder = self.read_run(config)
        path = self.checkpoint_path
        try:
            model = build_model(state["model_name"], encoder.space_, **state["model_hparams"])
        except (FgraphError, ValueError, TypeError) as e:
            raise CheckpointError(f"checkpoint {path} holds a {state['model_name']!r} model this fgraph cannot "
                                  f"build ({e})") from None
        # Without a validation improvement (every monitored score NaN, say) there are no best weights: the last
        # epoch's are used.
        best = state.get("best_model_state")
        load_weights(model, best if best is not None else state["model_state"], path,
                     "best weights" if best is not None else "weights")
        return LoadedRun(self.path, model, encoder, config, state)

    def _check_run_info(self, state: dict, saved: dict) -> None:
        """Refuse a checkpoint whose run information disagrees with the run's config.json (another run's file)."""
        path, where = self.checkpoint_path, self.config_path
        info = state.get("run_info") or {}
        if state["model_name"] != saved["model"]:
            raise CheckpointError(f"checkpoint {path} holds a {state['model_name']!r} model, but {where} names "
                                  f"model {saved['model']!r}: the two files come from different runs")
        for key in RUN_KEYS:
            if key not in info:
                raise CheckpointError(f"checkpoint {path} has no run information {key!r} to match {where}: it was "
                                      f"not written by fgraph train into this directory")
            if info[key] != saved[key]:
                raise CheckpointError(f"checkpoint {path} disagrees with {where} on {key!r}: {info[key]!r} in the "
                                      f"checkpoint, {saved[key]!r} in {CONFIG_FILE}; the two files come from "
                                      f"different runs")
        for key, was, now in fixed_option_differences(saved.get("train", {}), info.get("train", {})):
            raise CheckpointError(f"checkpoint {path} disagrees with {where} on training option {key!r}: {now!r} "
                                  f"in the checkpoint, {was!r} in {CONFIG_FILE}; the two files come from different "
                                  f"runs")

    def _checkpoint_encoder(self, state: dict) -> FieldEncoder:
        """The encoder stored in a checkpoint, checked against its fingerprint and the model's feature space."""
        path = self.checkpoint_path
        if state.get("encoder") is None:
            raise CheckpointError(f"checkpoint {path} holds no encoder, so its ids cannot be matched to raw data: "
                                  f"it was written by a Trainer without encoder=")
        try:
            encoder = FieldEncoder.from_state_dict(state["encoder"])
        except Exception as e:   # whatever a damaged state makes the encoder raise
            raise CheckpointError(f"the encoder stored in checkpoint {path} cannot be read ({e}): the checkpoint "
                                  f"is damaged") from None
        check_same_space(state["space"], encoder.space_, what=f"model in checkpoint {path}",
                         other="the encoder stored with it (the checkpoint is damaged)")
        check_encoder_fingerprint(state.get("encoder_fingerprint"), encoder.fingerprint(), path,
                                  "encoder stored with it")
        return encoder

    def _check_stored_encoder(self, encoder: FieldEncoder) -> None:
        """Refuse a run whose encoder.json is not the encoder of its checkpoint (a missing one is fine)."""
        stored = self.read_encoder()
        if stored is None:
            return
        path, stored_path = self.checkpoint_path, self.encoder_path
        diff = encoder.space_.describe_difference(stored.space_)
        if diff:
            raise CheckpointError(f"{stored_path} is not the encoder of checkpoint {path}: {diff}")
        check_encoder_fingerprint(encoder.fingerprint(), stored.fingerprint(), path, f"run's {stored_path.name}")


@dataclass
class LoadedRun:
    """A trained run read back by :meth:`RunDirectory.load`.

    Attributes:
        path: the run directory.
        model: the model with the run's best weights (on the CPU).
        encoder: the fitted encoder the model's ids come from.
        config: the run's ``config.json`` (model, data set, model / data-set / training options).
        checkpoint: the checkpoint's dict (training options, history, clip range, ...).
    """

    path: Path
    model: CTRModel
    encoder: FieldEncoder
    config: dict
    checkpoint: dict


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None


__all__ = ["RunDirectory", "LoadedRun", "RUN_FILES", "SCHEMA_FILE", "RUN_KEYS", "LOCK_FILE", "RESUME_FIXED_OPTIONS",
           "fixed_option_differences", "write_text_atomic", "write_json_atomic"]
