"""Handing freed heap memory back to the operating system between the phases of a long run.

glibc's allocator raises its mmap threshold after each large free (up to 32 MiB), so batch-sized arrays
come to live on the heap, and the heap keeps what is freed there. Over the passes of the out-of-core path
and the scorings of an evaluation this left hundreds of MiB resident that nothing used: scoring the 1M
validation rows of a 10M-row table five times in one process moved ``RssAnon`` between 463 and 1,225 MiB,
and one ``malloc_trim(0)`` brought it back to 369 (``benchmarks/README.md``, "Out-of-core training").

:func:`release_freed_memory` calls ``malloc_trim(0)`` where the C library has it (glibc on Linux) and does
nothing elsewhere (macOS, Windows, musl). fgraph calls it after each out-of-core pass, each evaluation and
each training epoch: places that run once per many batches, so its cost (a walk over the heap's free
blocks) does not show against them. ``FGRAPH_MALLOC_TRIM=0`` turns it off.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import sys

from .._validate import as_bool

__all__ = ["release_freed_memory", "TRIM_ENV"]

#: ``FGRAPH_MALLOC_TRIM=0`` (or false/no/off) turns :func:`release_freed_memory` off.
TRIM_ENV = "FGRAPH_MALLOC_TRIM"


@functools.lru_cache(maxsize=1)
def _malloc_trim():
    """The C library's ``malloc_trim``, or None where there is none."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):   # no libc by that name, or a C library without it (musl)
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


def release_freed_memory() -> bool:
    """Return the heap's free memory to the operating system (``malloc_trim(0)``).

    Returns True when memory was handed back, False when none was or when the platform has no
    ``malloc_trim`` (or ``FGRAPH_MALLOC_TRIM=0`` is set).

    Raises:
        ConfigError: ``FGRAPH_MALLOC_TRIM`` is set to something other than a true or false word.
    """
    if not as_bool(f"${TRIM_ENV}", os.environ.get(TRIM_ENV, "1")):
        return False
    trim = _malloc_trim()
    return bool(trim(0)) if trim is not None else False
