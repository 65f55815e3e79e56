"""The `kserve.Model` that answers V1 and V2 requests from the newest pushed version."""

from __future__ import annotations

import asyncio
import dataclasses
import logging

import kserve
from kserve.protocol.infer_type import InferRequest, InferResponse
from prometheus_client import Histogram

from contract import prediction
from contract.prediction import Prediction
from serving import payloads
from serving.batcher import MicroBatcher
from serving.options import ServingOptions
from serving.payloads import CheckedImage
from serving.request_log import RequestLog
from serving.served_model import ServedModel
from serving.version_watcher import VersionWatcher

logger = logging.getLogger(__name__)

BATCH_SIZE = Histogram(
    "batch_size_images",
    "Images per model call, after micro-batching",
    ["model_name"],
    buckets=(1, 2, 4, 8, 16, 32, 64),
)


@dataclasses.dataclass(frozen=True)
class _Parsed:
    images: list[CheckedImage]
    v2_request_id: str | None  # None for V1 requests


class AlexNetModel(kserve.Model):
    def __init__(self, options: ServingOptions) -> None:
        super().__init__(options.model_name)
        self.options = options
        self.batcher: MicroBatcher[CheckedImage, Prediction] = MicroBatcher(
            self._run_batch,
            options.max_batch_size,
            options.max_wait_ms,
            max_batch_cost=options.max_batch_pixels,
            cost=lambda image: image.pixels,
        )
        self._served: ServedModel | None = None
        self._watcher: VersionWatcher | None = None
        # Checked here, at start-up: an unwritable folder stops `serve` before it listens.
        self.request_log = (
            RequestLog(options.log_requests, options.log_sample, int(options.log_max_mb * 2**20))
            if options.log_requests
            else None
        )

    @property
    def served(self) -> ServedModel:
        """The version answering now."""
        return self._served

    def load(self) -> bool:
        """Loads and warms the newest complete version; ready only after that."""
        self._served = ServedModel.latest(self.options.serving_dir, self.name, self.options.version)
        self.ready = True
        return self.ready

    def start(self) -> None:
        if self.options.version is not None:
            return  # pinned: no reload
        self._watcher = VersionWatcher(
            self.options.serving_dir,
            self.name,
            self._served.version,
            self._swap,
            self.options.poll_seconds,
        )
        self._watcher.start()

    def stop(self) -> None:
        if self._watcher is not None:
            self._watcher.stop()
        self.batcher.close()
        if self.request_log is not None:
            self.request_log.close()
        self.ready = False

    def _swap(self, model: ServedModel) -> None:
        # One reference assignment: batches already running keep the model they started with.
        previous, self._served = self._served, model
        logger.info("now serving version %d (was %d)", model.version, previous.version)

    def _run_batch(self, images: list[CheckedImage]) -> list[Prediction]:
        BATCH_SIZE.labels(model_name=self.name).observe(len(images))
        predictions = self._served.predict([image.data for image in images])
        if self.options.answer_unknown:
            return [answer.or_unknown() for answer in predictions]
        return predictions

    def get_input_types(self) -> list[dict]:
        return prediction.v2_input_metadata()

    def get_output_types(self) -> list[dict]:
        return prediction.v2_output_metadata(len(self._served.class_names) if self._served else -1)

    async def preprocess(
        self, payload: dict | InferRequest, headers: dict[str, str] | None = None
    ) -> _Parsed:
        if isinstance(payload, InferRequest):
            images = payloads.v2_images(payload, self.options.max_instances)
            request_id, field = payload.id or "", "inputs[0].data"
        else:
            images = payloads.v1_images(payload, self.options.max_instances)
            request_id, field = None, "instances"
        # Decoding here, off the event loop, keeps one bad image from failing a whole batch.
        checked = await asyncio.to_thread(
            payloads.check_images,
            images,
            field,
            self.options.max_image_pixels,
            self.options.max_request_pixels,
        )
        return _Parsed(checked, request_id)

    async def predict(
        self, payload: _Parsed, headers: dict[str, str] | None = None
    ) -> tuple[_Parsed, list[Prediction]]:
        predictions = await self.batcher.submit(payload.images)
        if self.request_log is not None:
            self.request_log.submit([image.data for image in payload.images], predictions)
        return payload, predictions

    async def postprocess(
        self,
        result: tuple[_Parsed, list[Prediction]],
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> dict | InferResponse:
        parsed, predictions = result
        if parsed.v2_request_id is None:
            return payloads.v1_response(predictions)
        return payloads.v2_response(self.name, parsed.v2_request_id, predictions)
