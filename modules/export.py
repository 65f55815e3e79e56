"""The Trainer's export: a SavedModel whose signatures run the TFT layer, then AlexNet.

  serving_default(images: tf.string [None])   raw encoded images (TF Serving / KServe V1)
  serving_examples(examples: tf.string [None]) serialized tf.Examples (TFMA, batch jobs)
  bulk_examples(examples: tf.string [None])    the same less class_name (BulkInferrer)

They return the fields of `contract.prediction.OUTPUTS` (BULK_OUTPUTS), and embed the same
TFT layer as training, so no preprocessing is written twice. The probabilities are calibrated
(softmax of the logits over the fitted temperature), and the unknown-image score and flag come
from conv1's channel means (modules/held_out_fit.py); serving_examples also answers the uncalibrated
probabilities, for the Evaluator's calibration error before and after. Beside the model go the
class names and the training record (`contract/model_files.py`).
"""

from __future__ import annotations

import json
import os
from typing import Any

import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras

from contract import model_files, prediction
from contract.data import IMAGE_KEY
from modules.held_out_fit import HeldOutFit
from modules.model import features_and_logits


def _predictions(
    network: keras.Model, fit: HeldOutFit, images: tf.Tensor, names: tf.Tensor
) -> dict:
    features, logits = network(images, training=False)
    logits = tf.cast(logits, tf.float32)
    probabilities = tf.nn.softmax(logits / fit.temperature.value)
    class_ids = tf.argmax(probabilities, axis=1)  # the temperature never changes it
    ood_scores = fit.detector.scores(features)
    return {
        prediction.PROBABILITIES.name: probabilities,
        prediction.CLASS_ID.name: class_ids,
        prediction.CLASS_NAME.name: tf.gather(names, class_ids),
        prediction.SCORE.name: tf.reduce_max(probabilities, axis=1),
        prediction.OOD_SCORE.name: ood_scores,
        prediction.UNKNOWN.name: fit.detector.flags(ood_scores),
        prediction.UNCALIBRATED_PROBABILITIES: tf.nn.softmax(logits),
    }


def export_model(
    model: keras.Model,
    transform_output: tft.TFTransformOutput,
    image_feature: str,
    class_names: list[str],
    path: str,
    training_record: dict[str, Any],
    fit: HeldOutFit,
) -> None:
    """Saves a SavedModel whose signatures run the TFT layer, then the network with the
    held-out `fit` applied, with the class names and the training record beside it
    (`contract/model_files.py`)."""
    model.tft_layer = transform_output.transform_features_layer()
    network = features_and_logits(model)
    names = tf.constant(class_names)
    image_spec = {image_feature: transform_output.raw_feature_spec()[image_feature]}

    def transformed_images(raw: dict[str, tf.Tensor]) -> tf.Tensor:
        return model.tft_layer(raw)[IMAGE_KEY]

    @tf.function(
        input_signature=[tf.TensorSpec([None], tf.string, name=prediction.IMAGES_INPUT)],
        autograph=False,
    )
    def serve_images(images: tf.Tensor) -> dict:
        raw = {image_feature: tf.reshape(images, [-1, 1])}
        outputs = _predictions(network, fit, transformed_images(raw), names)
        return {field.name: outputs[field.name] for field in prediction.OUTPUTS}

    @tf.function(
        input_signature=[tf.TensorSpec([None], tf.string, name=prediction.EXAMPLES_INPUT)],
        autograph=False,
    )
    def serve_examples(examples: tf.Tensor) -> dict:
        raw = tf.io.parse_example(examples, image_spec)
        return _predictions(network, fit, transformed_images(raw), names)

    @tf.function(
        input_signature=[tf.TensorSpec([None], tf.string, name=prediction.EXAMPLES_INPUT)],
        autograph=False,
    )
    def bulk_examples(examples: tf.Tensor) -> dict:
        outputs = serve_examples(examples)
        return {field.name: outputs[field.name] for field in prediction.BULK_OUTPUTS}

    model.save(
        path,
        save_format="tf",
        signatures={
            prediction.IMAGES_SIGNATURE: serve_images.get_concrete_function(),
            prediction.EXAMPLES_SIGNATURE: serve_examples.get_concrete_function(),
            prediction.BULK_SIGNATURE: bulk_examples.get_concrete_function(),
        },
    )
    labels = os.path.join(path, model_files.CLASS_NAMES_FILE)
    tf.io.gfile.makedirs(os.path.dirname(labels))
    with tf.io.gfile.GFile(labels, "w") as handle:
        handle.write("".join(f"{name}\n" for name in class_names))
    with tf.io.gfile.GFile(os.path.join(path, model_files.TRAINING_RECORD_FILE), "w") as handle:
        json.dump(training_record, handle, indent=2)
