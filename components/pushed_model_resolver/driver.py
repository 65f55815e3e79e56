"""Puts the serving directory's state into the execution's properties before the cache
lookup, so a push between two runs invalidates the cached baseline (as ExampleGen's driver
does with its input files' fingerprint)."""

from __future__ import annotations

from tfx.dsl.components.base import base_driver
from tfx.orchestration import data_types_utils, metadata
from tfx.orchestration.portable import base_driver as ir_base_driver
from tfx.orchestration.portable import data_types
from tfx.proto.orchestration import driver_output_pb2

from components.pushed_model_resolver.executor import (
    MODEL_NAME_KEY,
    SERVING_DIR_KEY,
    serving_state,
)

SERVING_STATE_KEY = "serving_state"


class Driver(base_driver.BaseDriver, ir_base_driver.BaseDriver):
    def __init__(self, metadata_handle: metadata.Metadata) -> None:
        base_driver.BaseDriver.__init__(self, metadata_handle)
        ir_base_driver.BaseDriver.__init__(self, metadata_handle)

    def run(self, execution_info: data_types.ExecutionInfo) -> driver_output_pb2.DriverOutput:
        properties = dict(execution_info.exec_properties)
        properties[SERVING_STATE_KEY] = serving_state(
            properties[SERVING_DIR_KEY], properties[MODEL_NAME_KEY]
        )
        result = driver_output_pb2.DriverOutput()
        for key, value in properties.items():
            if value is not None:
                data_types_utils.set_metadata_value(result.exec_properties[key], value)
        return result
