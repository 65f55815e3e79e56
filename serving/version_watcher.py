"""Hot reload: polls the serving directory and loads each new complete version in the background.

Polling, like TF Serving's --file_system_poll_wait_seconds, works the same on local disks,
network volumes and object stores, where change notifications do not exist.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

import tensorflow as tf

from modules import storage
from serving import layout
from serving.served_model import ServedModel

logger = logging.getLogger(__name__)


class VersionWatcher(threading.Thread):
    """Calls `on_load` with each newer version once it is loaded and warm.

    A version that fails to load is logged and skipped until its saved_model.pb changes; the
    version already serving carries on.
    """

    def __init__(
        self,
        serving_dir: str,
        model_name: str,
        current_version: int,
        on_load: Callable[[ServedModel], None],
        poll_seconds: float = 2.0,
    ) -> None:
        super().__init__(name=f"watch-{model_name}", daemon=True)
        self.serving_dir = serving_dir
        self.model_name = model_name
        self.poll_seconds = poll_seconds
        self._version = current_version
        self._on_load = on_load
        self._failed: dict[int, float] = {}
        self._stopped = threading.Event()

    def run(self) -> None:
        while not self._stopped.wait(self.poll_seconds):
            self.check()

    def stop(self) -> None:
        self._stopped.set()

    def check(self) -> ServedModel | None:
        """Loads the latest complete version if it is new; returns it, or None."""
        try:
            found = layout.latest_version_dir(self.serving_dir, self.model_name)
            if found is None or found[0] == self._version:
                return None
            version, path = found
            stamp = storage.modified_seconds(os.path.join(path, layout.SAVED_MODEL_FILE))
        except (tf.errors.OpError, OSError) as error:  # e.g. a version deleted while listing
            logger.warning("cannot list %s: %s", self.serving_dir, error)
            return None
        if self._failed.get(version) == stamp:
            return None
        logger.info("loading model version %d from %s", version, path)
        try:
            model = ServedModel(version, path)
            model.warm_up()
        except Exception:  # a broken version must never stop the one already serving
            logger.exception(
                "model version %d at %s failed to load; still serving version %d",
                version,
                path,
                self._version,
            )
            self._failed[version] = stamp
            return None
        self._version = version
        self._on_load(model)
        return model
