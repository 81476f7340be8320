"""fgraph: feature-interaction learning on field graphs for tabular data, built on PyTorch Geometric."""
__version__ = "0.1.0"


def load(run_dir, **options):
    """A trained run directory, ready to predict: ``fgraph.load("runs/mine").predict(frame)``.

    The same as :func:`fgraph.api.load`: it returns a :class:`fgraph.api.Predictor` with ``predict``,
    ``predict_proba``, ``model``, ``encoder`` and ``config``.
    """
    # Imported when called, so that `import fgraph` stays light (no torch until a run is loaded).
    from .api import load as _load

    return _load(run_dir, **options)


__all__ = ["load", "__version__"]
