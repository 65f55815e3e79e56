"""One pushed model version, loaded and warmed, answering batches of encoded images."""

from __future__ import annotations

import hashlib
import io
import logging
import os
import shutil
import tempfile

import tensorflow as tf
from PIL import Image

from contract import prediction
from contract.prediction import Prediction
from modules import storage
from serving import layout, warmup

logger = logging.getLogger(__name__)


def local_copy(path: str) -> str:
    """A version in a bucket copied to local disk once, as KServe's storage initializer
    copies a storageUri: TensorFlow loads SavedModels from files only. A version number is
    never reused, so a copy stays valid."""
    if not storage.is_bucket(path):
        return path
    name = hashlib.sha256(f"{storage.endpoint()} {path}".encode()).hexdigest()[:20]
    target = os.path.join(tempfile.gettempdir(), "alexnet-tfx-models", name)
    if not os.path.exists(os.path.join(target, layout.SAVED_MODEL_FILE)):
        os.makedirs(os.path.dirname(target), exist_ok=True)
        partial = tempfile.mkdtemp(prefix=f"{name}-", dir=os.path.dirname(target))
        storage.download_tree(path, partial)
        try:
            os.rename(partial, target)
        except OSError:  # another process copied it meanwhile
            shutil.rmtree(partial)
    return target


class ServedModel:
    """A SavedModel version from the serving directory, ready for `predict`."""

    def __init__(self, version: int, path: str) -> None:
        self.version = version
        self.path = path
        self.local_path = local_copy(path)
        self.class_names = tuple(layout.read_class_names(self.local_path))
        self._loaded = tf.saved_model.load(self.local_path)
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
        for request in warmup.read_warmup_requests(self.local_path):
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
