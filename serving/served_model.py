"""One pushed model version, loaded and warmed, answering batches of encoded images."""

from __future__ import annotations

import dataclasses
import io

import tensorflow as tf
from kserve.logging import logger
from PIL import Image

from components import serving_layout

SIGNATURE = "serving_default"


@dataclasses.dataclass(frozen=True)
class Prediction:
    class_name: str
    class_id: int
    score: float
    probabilities: list[float]
    model_version: int
    class_names: tuple[str, ...]  # of the version that answered; shared, not copied


class ServedModel:
    """A SavedModel version from the serving directory, ready for `predict`."""

    def __init__(self, version: int, path: str) -> None:
        self.version = version
        self.path = path
        self.class_names = tuple(serving_layout.read_class_names(path))
        self._loaded = tf.saved_model.load(path)
        self._serve = self._loaded.signatures[SIGNATURE]

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
        outputs = self._serve(images=tf.constant(images, dtype=tf.string))
        # The signature already picks the class; only the names' text is decoded here.
        return [
            Prediction(
                class_name=name.decode(),
                class_id=int(class_id),
                score=float(score),
                probabilities=row.tolist(),
                model_version=self.version,
                class_names=self.class_names,
            )
            for name, class_id, score, row in zip(
                outputs["class_names"].numpy(),
                outputs["class_ids"].numpy(),
                outputs["scores"].numpy(),
                outputs["probabilities"].numpy(),
                strict=True,
            )
        ]
