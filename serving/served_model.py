"""One pushed model version, loaded and warmed, answering batches of encoded images."""

from __future__ import annotations

import io
import logging

import tensorflow as tf
from PIL import Image

from contract import prediction
from contract.prediction import Prediction
from serving import layout, warmup

logger = logging.getLogger(__name__)


class ServedModel:
    """A SavedModel version from the serving directory, ready for `predict`."""

    def __init__(self, version: int, path: str) -> None:
        self.version = version
        self.path = path
        self.class_names = tuple(layout.read_class_names(path))
        self._loaded = tf.saved_model.load(path)
        self._serve = self._loaded.signatures[prediction.IMAGES_SIGNATURE]

    @classmethod
    def latest(cls, serving_dir: str, model_name: str, version: int | None = None) -> ServedModel:
        """The highest complete version, or `version`, loaded and warmed up."""
        base = layout.model_base(serving_dir, model_name)
        if version is not None:
            versions = layout.complete_versions(base)
            if version not in versions:
                raise FileNotFoundError(
                    f"--version {version}: no such complete version under {base}; pushed "
                    f"versions: {', '.join(map(str, versions)) or 'none'}"
                )
            found = (version, f"{base}/{version}")
        else:
            found = layout.latest_version_dir(serving_dir, model_name)
        if found is None:
            raise FileNotFoundError(
                f"no complete model version under {base}: run the pipeline "
                "(alexnet-tfx run) to push one, or pass --serving-dir/--model-name"
            )
        model = cls(*found)
        model.warm_up()
        return model

    def warm_up(self) -> None:
        """Replays the version's TF Serving warm-up requests, as TF Serving does, so graph
        tracing and allocation happen before the first request; one blank image without them."""
        replayed = 0
        for request in warmup.read_warmup_requests(self.path):
            images = tf.make_ndarray(request.inputs[prediction.IMAGES_INPUT]).tolist()
            self.predict(images)
            replayed += 1
        if not replayed:
            buffer = io.BytesIO()
            Image.new("RGB", (32, 32), (127, 127, 127)).save(buffer, "PNG")
            self.predict([buffer.getvalue()])
        logger.info(
            "model version %d from %s is warm (%d warm-up requests)",
            self.version,
            self.path,
            replayed,
        )

    def predict(self, images: list[bytes]) -> list[Prediction]:
        """Predictions for images already checked with `modules.image_check`."""
        outputs = self._serve(**{prediction.IMAGES_INPUT: tf.constant(images, dtype=tf.string)})
        # The signature already picks the class and its name; nothing is recomputed here.
        columns = {name: tensor.numpy().tolist() for name, tensor in outputs.items()}
        return prediction.from_columns(columns, self.version, self.class_names)
