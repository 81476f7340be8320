"""fgraph: feature-interaction learning on field graphs for tabular data, built on PyTorch Geometric."""
__version__ = "0.1.0"


def load(run_dir, **options):
    """A trained run directory, ready to predict: ``fgraph.load("runs/mine").predict(frame)``.

    The same as :func:`fgraph.api.load`: it returns a :class:`fgraph.api.Predictor` with ``predict``,
    ``predict_proba``, ``model``, ``encoder`` and ``config``.
    """
    # Imported by name when called: every layer may import this root package (for __version__ or __file__), so
    # it imports none of them itself (the import-linter layers of pyproject.toml), and `import fgraph` stays light.
    import importlib

    return importlib.import_module("fgraph.api").load(run_dir, **options)


__all__ = ["load", "__version__"]
