"""Explain: what a trained model learned, as networkx graphs, DataFrames and derived features.

The models expose what they learned as tensors, through one small protocol per family; this package is
where those tensors become graphs and tables (so no model imports networkx or pandas):

* graph models (GraphFM, Fi-GNN, FIVES): :meth:`~fgraph.models.FieldGraphModel.edge_records` ->
  :func:`instance_graphs` (per row and layer) and :func:`edge_summary` (over a data set);
* AFM and the IFM family: :meth:`~fgraph.models.AttentivePairModel.pair_weights` -> :func:`pair_graph`;
* FIVES: :meth:`~fgraph.models.FIVES.adjacency_weights` -> :func:`fives_interactions` (its explicit
  interactive features) and :func:`fives_graphs`; :class:`fgraph.explain.fives_features.FIVESCrossFeatures`
  adds those features to a DataFrame (a scikit-learn transformer, imported from its module).
"""
from .cross_features import adjacency_graphs, derive_interactions, fives_graphs, fives_interactions
from .graphs import edge_summary, instance_graphs, mean_edge_weights, records_to_graphs
from .pairs import pair_graph, pairs_to_graph

__all__ = ["instance_graphs", "edge_summary", "pair_graph", "fives_interactions", "fives_graphs",
           "records_to_graphs", "mean_edge_weights", "pairs_to_graph", "derive_interactions", "adjacency_graphs"]
