"""Data: schemas, the encoder, encoded tables, loaders, data-set builders and a user's own files."""
from .encoder import FieldEncoder, UnknownValuesWarning
from .files import (FileSplits, LabelEncoding, SchemaInferenceWarning, SchemaReport, SchemaSpec, describe_schema,
                    file_columns, file_splits, infer_schema, infer_schema_report, load_schema, read_file, save_schema)
from .loader import FieldLoader, TabularBatch
from .schema import Field, Schema, categorical, multi_valued, numeric
from .space import EncodedData, FeatureSpace

__all__ = ["FieldEncoder", "UnknownValuesWarning", "FieldLoader", "TabularBatch", "Field", "Schema", "categorical",
           "multi_valued", "numeric", "EncodedData", "FeatureSpace", "read_file", "file_columns", "infer_schema",
           "infer_schema_report", "SchemaReport", "describe_schema", "SchemaSpec", "load_schema", "save_schema",
           "file_splits", "FileSplits", "LabelEncoding", "SchemaInferenceWarning"]
