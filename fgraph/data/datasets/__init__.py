from ._common import DatasetNotFoundError, DatasetSplits, random_split, resolve_data_dir, split_indices
from .frappe import frappe
from .movielens import movielens100k
from .criteo import criteo
from .avazu import avazu
