"""CuratedImportSchemaGen: TFX's ImportSchemaGen, re-run whenever the schema file changes.

ImportSchemaGen has no inputs, so TFX caches it on its path alone: an edited schema at the
same path would be ignored. The file's digest, as one more execution property, makes the
cache key follow the content. The executor is ImportSchemaGen's own.
"""

from __future__ import annotations

import hashlib

import tensorflow as tf
from tfx import types
from tfx.components.schema_gen.import_schema_gen.component import ImportSchemaGen
from tfx.types import standard_artifacts, standard_component_specs
from tfx.types.component_spec import ExecutionParameter

CONTENT_SHA256_KEY = "content_sha256"


class CuratedImportSchemaGenSpec(standard_component_specs.ImportSchemaGenSpec):
    PARAMETERS = {
        **standard_component_specs.ImportSchemaGenSpec.PARAMETERS,
        CONTENT_SHA256_KEY: ExecutionParameter(type=str),
    }


class CuratedImportSchemaGen(ImportSchemaGen):
    """Copies a curated schema.pbtxt into the pipeline, again each time its content changes."""

    SPEC_CLASS = CuratedImportSchemaGenSpec

    def __init__(self, schema_file: str) -> None:
        with tf.io.gfile.GFile(schema_file, "rb") as handle:
            digest = hashlib.sha256(handle.read()).hexdigest()
        spec = CuratedImportSchemaGenSpec(
            schema_file=schema_file,
            content_sha256=digest,
            schema=types.Channel(type=standard_artifacts.Schema),
        )
        super(ImportSchemaGen, self).__init__(spec=spec)
