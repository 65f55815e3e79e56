"""One pushed model version, loaded and warmed, answering batches of encoded images."""

from __future__ import annotations

import io
import logging

import tensorflow as tf
from PIL import Image

from components import serving_layout
from contract import prediction
from contract.prediction import Prediction

logger = logging.getLogger(__name__)


class ServedModel:
    """A SavedModel version from the serving directory, ready for `predict`."""

    def __init__(self, version: int, path: str) -> None:
        self.version = version
        self.path = path
        self.class_names = tuple(serving_layout.read_class_names(path))
        self._loaded = tf.saved_model.load(path)
        self._serve = self._loaded.signatures[prediction.IMAGES_SIGNATURE]

    @classmethod
    def latest(cls, serving_dir: str, model_name: str) -> ServedModel:
        """The highest complete version, loaded and warmed up."""
        found = serving_layout.latest_version_dir(serving_dir, model_name)
        if found is None:
            base = serving_layout.model_base(serving_dir, model_name)
            raise FileNotFoundError(
                f"no complete model version under {base}: run the pipeline "
                "(alexnet-tfx run) to push one, or pass --serving-dir/--model-name"
            )
        model = cls(*found)
        model.warm_up()
        return model

    def warm_up(self) -> None:
        """One inference, so graph tracing and allocation happen before the first request."""
        buffer = io.BytesIO()
        Image.new("RGB", (32, 32), (127, 127, 127)).save(buffer, "PNG")
        self.predict([buffer.getvalue()])
        logger.info("model version %d from %s is warm", self.version, self.path)

    def predict(self, images: list[bytes]) -> list[Prediction]:
        """Predictions for images already checked with `modules.image_check`."""
        outputs = self._serve(**{prediction.IMAGES_INPUT: tf.constant(images, dtype=tf.string)})
        # The signature already picks the class and its name; nothing is recomputed here.
        columns = {name: tensor.numpy().tolist() for name, tensor in outputs.items()}
        return prediction.from_columns(columns, self.version, self.class_names)
