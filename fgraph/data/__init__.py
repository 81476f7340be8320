"""Data: schemas, the encoder, encoded tables, loaders and data-set builders."""
from .encoder import FieldEncoder, UnknownValuesWarning
from .loader import FieldLoader, TabularBatch
from .schema import Field, Schema, categorical, multi_valued, numeric
from .space import EncodedData, FeatureSpace

__all__ = ["FieldEncoder", "UnknownValuesWarning", "FieldLoader", "TabularBatch", "Field", "Schema", "categorical",
           "multi_valued", "numeric", "EncodedData", "FeatureSpace"]
