"""Run directories: one run per directory, one writer at a time, no file written by halves.

A run directory holds what one training writes: ``config.json`` (how the run was asked for),
``encoder.json``, ``checkpoint.pt``, ``history.json``, ``log.txt`` and, once the run is scored,
``metrics.json``. The rules that keep two runs from mixing there:

* a directory that already holds any of those files is a run: training into it is refused unless the
  training resumes that run or is asked to overwrite it; overwriting removes the old run's files first
  (fgraph's files only: anything else the user keeps there is left alone); an empty or new directory is fine;
* while a process trains, it holds an exclusive ``flock`` on ``<run>/.lock`` (which names its pid); a second
  training into the same directory, from another process or the same one, is refused while the lock is
  held. The kernel drops the lock when the process ends, even by SIGKILL, so a crash leaves no stale lock;
* every file is written to a temporary name, flushed and renamed, so a crash leaves the old file or the new
  one, never half of one.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import ConfigError, InputFileNotFoundError, RunDirectoryError

try:  # POSIX; elsewhere an exclusively created lock file stands in (see RunDirectory.acquire)
    import fcntl
except ImportError:  # pragma: no cover - not on Linux/macOS
    fcntl = None

#: every file a training writes into its run directory
RUN_FILES = ("config.json", "encoder.json", "checkpoint.pt", "history.json", "metrics.json", "log.txt")
LOCK_FILE = ".lock"

_FIX = "use --resume (resume=True) to continue it, --overwrite (overwrite=True) to replace it, or another --out"


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

    def __repr__(self) -> str:
        return f"RunDirectory({str(self.path)!r}, locked={self.locked})"

    @property
    def locked(self) -> bool:
        """Whether this object holds the directory's lock."""
        return self._fd is not None

    def existing(self, names=RUN_FILES) -> list[str]:
        """Which of the run files ``names`` are in the directory."""
        return [n for n in names if (self.path / n).exists()]

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
        found = self.existing(files)
        if resume:
            if not (self.path / "checkpoint.pt").is_file():
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


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None


__all__ = ["RunDirectory", "RUN_FILES", "LOCK_FILE", "write_text_atomic", "write_json_atomic"]
