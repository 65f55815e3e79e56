"""TF Serving's warm-up records: `assets.extra/tf_serving_warmup_requests` in a SavedModel.

A TFRecord of `PredictionLog`s, each holding a `PredictRequest` and the version's own
`PredictResponse` to it: every output of the prediction contract, the unknown-image score and
flag included. TF Serving replays the requests when it loads a version, before the version
takes traffic (https://www.tensorflow.org/tfx/serving/saved_model_warmup); `alexnet-tfx
serve` replays the same file.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence

import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

from contract.model_files import WARMUP_FILE
from contract.prediction import IMAGES_INPUT, IMAGES_SIGNATURE


def _answering(saved_model_dir: str) -> Callable[..., dict] | None:
    """The model's signature for images; None if it has none that takes them (the serving
    check, which replays the records, then says why)."""
    loaded = tf.saved_model.load(saved_model_dir)
    signature = loaded.signatures.get(IMAGES_SIGNATURE)
    spec = signature.structured_input_signature[1].get(IMAGES_INPUT) if signature else None
    if spec is None or spec.dtype != tf.string:
        return None
    return lambda images: signature(**{IMAGES_INPUT: images})  # keeps `loaded` alive


def write_warmup_records(saved_model_dir: str, model_name: str, images: Sequence[bytes]) -> str:
    """One PredictRequest of raw image bytes per image, with the model's response (if it
    takes images); returns the file's path."""
    answer = _answering(saved_model_dir)
    path = os.path.join(saved_model_dir, WARMUP_FILE)
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.TFRecordWriter(path) as writer:
        for image in images:
            request = predict_pb2.PredictRequest()
            request.model_spec.name = model_name
            request.model_spec.signature_name = IMAGES_SIGNATURE
            request.inputs[IMAGES_INPUT].CopyFrom(tf.make_tensor_proto([image], dtype=tf.string))
            response = predict_pb2.PredictResponse(model_spec=request.model_spec)
            for name, tensor in (answer(tf.constant([image])) if answer else {}).items():
                response.outputs[name].CopyFrom(tf.make_tensor_proto(tensor.numpy()))
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request, response=response)
            )
            writer.write(log.SerializeToString())
    return path


def read_warmup_requests(saved_model_dir: str) -> Iterator[predict_pb2.PredictRequest]:
    """The PredictRequests of the model's warm-up file; none if it has no such file."""
    path = os.path.join(saved_model_dir, WARMUP_FILE)
    if not tf.io.gfile.exists(path):
        return
    for record in tf.data.TFRecordDataset(path).as_numpy_iterator():
        log = prediction_log_pb2.PredictionLog.FromString(record)
        if log.WhichOneof("log_type") == "predict_log":
            yield log.predict_log.request
