"""Explain: what a trained model learned, as networkx graphs, DataFrames, heat maps and derived features.

One call for every model that learns an interaction structure (GraphFM, Fi-GNN, FIVES, their "+" variants,
AFM, the IFM family and AIM): :func:`interaction_graph` (instance or data-set level), :func:`write_graphs` /
:func:`read_graph` (GraphML and node-link JSON), :func:`plot_heatmaps` (matplotlib, ``fgraph[plot]``) and, for
a run directory, :func:`explain_run` (graphs, heat maps, FIVES's ranked interactions, AIM's kept interactions
and search, and an index).

The models expose what they learned as tensors, through one small protocol per family; this package is
where those tensors become graphs and tables (so no model imports networkx or pandas):

* graph models (GraphFM, Fi-GNN, FIVES): :meth:`~fgraph.models.FieldGraphModel.edge_records` ->
  :func:`instance_graphs` (per row and layer) and :func:`edge_summary` (over a data set);
* AFM and the IFM family: :meth:`~fgraph.models.AttentivePairModel.pair_weights` -> :func:`pair_graph`;
* FIVES: :meth:`~fgraph.models.FIVES.adjacency_weights` -> :func:`fives_interactions` (its explicit
  interactive features) and :func:`fives_graphs`; :class:`fgraph.explain.fives_features.FIVESCrossFeatures`
  adds those features to a DataFrame (a scikit-learn transformer, imported from its module);
* AIM: :meth:`~fgraph.models.AIM.gate_weights` -> :func:`aim_interactions` (the kept interactions, any order),
  :func:`aim_interaction_table`, and the graphs of :func:`interactions_to_graph` (``order=2``: an
  ``nx.MultiGraph`` of the pairs keyed by function; ``"all"``: a bipartite graph of fields and interactions);
  :func:`search_tables` reads what an AIM run's search kept (``search.json``).
"""
from .cross_features import (adjacency_graphs, derive_interactions, fives_graphs, fives_interaction_table,
                             fives_interactions, write_interactions_csv)
from .gates import (aim_interaction_table, aim_interactions, function_panels, interactions_to_graph,
                    search_tables)
from .graphs import edge_summary, instance_graphs, mean_edge_weights, records_to_graphs
from .heatmaps import graph_matrix, heatmap_figure, plot_heatmaps
from .pairs import pair_graph, pairs_to_graph
from .report import explain_run
from .structure import interaction_graph, models_with_structure, read_graph, write_graphs

__all__ = ["interaction_graph", "write_graphs", "read_graph", "plot_heatmaps", "heatmap_figure", "graph_matrix",
           "explain_run", "fives_interaction_table", "write_interactions_csv", "models_with_structure",
           "instance_graphs", "edge_summary", "pair_graph", "fives_interactions", "fives_graphs",
           "records_to_graphs", "mean_edge_weights", "pairs_to_graph", "derive_interactions", "adjacency_graphs",
           "aim_interactions", "aim_interaction_table", "interactions_to_graph", "function_panels", "search_tables"]
