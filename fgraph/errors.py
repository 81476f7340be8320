"""fgraph's errors about what the user gave: one family, so that every entry point can report them alike.

Every error that fgraph raises because of the user's input -- a bad option, a bad cell of a table, a broken
file, a run directory in use -- is a :class:`FgraphError`. Its message names the input (the option, the
column and row, the file and line), says what was expected and, where there is one, the fix. The
``fgraph`` command prints such an error as one line (``fgraph: error: ...``) and exits with status 2; any
other exception is a bug in fgraph and keeps its traceback.

Each subclass also derives from the built-in exception that Python code would expect for that kind of
problem (``ValueError``, ``KeyError``, ``FileNotFoundError`` ...), so ``except ValueError`` keeps working.

Nothing in this module imports the rest of fgraph: every layer may raise these errors.
"""
from __future__ import annotations

__all__ = [
    "FgraphError", "ConfigError", "DataError", "ColumnNotFoundError", "InputFileError",
    "InputFileNotFoundError", "CheckpointError", "RunDirectoryError", "TrainingDivergedError",
]


class FgraphError(Exception):
    """Base class of the errors caused by the user's input (options, tables, files, run directories)."""


class ConfigError(FgraphError, ValueError):
    """An option (training, model, data set, command line, config file) has a value that fgraph cannot use."""


class DataError(FgraphError, ValueError):
    """A table's content cannot be used as it is: a bad cell, a bad column, a label that does not fit."""


class ColumnNotFoundError(FgraphError, KeyError):
    """A column, field or node name that is not there."""

    def __str__(self) -> str:  # KeyError would print the message with quotes around it
        return str(self.args[0]) if self.args else ""


class InputFileError(FgraphError, ValueError):
    """A file the user gave (data, config, encoder) is unreadable: empty, truncated, corrupt, not UTF-8."""


class InputFileNotFoundError(FgraphError, FileNotFoundError):
    """A file or directory the user named does not exist."""


class CheckpointError(FgraphError, ValueError):
    """A checkpoint that is unreadable, not fgraph's, or does not fit the data, encoder or run it is used with."""


class RunDirectoryError(FgraphError, FileExistsError):
    """A run directory that cannot be written: it holds another run, is in use, or is a file."""


class TrainingDivergedError(FgraphError, FloatingPointError):
    """The training loss became non-finite or blew up; the last good checkpoint is kept."""
