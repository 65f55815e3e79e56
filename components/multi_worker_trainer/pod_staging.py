"""A TFJob replica's artifacts on its own pod's disk, moved as the Kubeflow Pipelines launcher
moves a task's (`downloadArtifacts` and `uploadOutputArtifacts` in kubeflow/pipelines
backend/src/v2/component/launcher_v2.go): the Trainer task hands its replicas the launcher's
local paths (contract/launcher_paths.py), which exist on its own pod only. So a replica
downloads each input that is not on its disk from the URI the path stands for, and the chief
uploads its outputs there when it has trained; the Trainer task then downloads them into
its own local paths, from which the launcher uploads them as it would have.

On one machine (the local mode) every path is on the disk already: nothing moves.
"""

from __future__ import annotations

import os

from tfx import types

from contract.launcher_paths import remote_uri
from modules import storage


def _remote_paths(artifacts: dict[str, list[types.Artifact]]) -> list[tuple[str, str]]:
    """(local path, remote URI) of each artifact that stands for a remote one."""
    return [
        (artifact.uri, remote)
        for items in artifacts.values()
        for artifact in items
        if (remote := remote_uri(artifact.uri))
    ]


def stage_in(inputs: dict[str, list[types.Artifact]]) -> None:
    """Downloads the inputs missing from this disk."""
    for local, remote in _remote_paths(inputs):
        if not os.path.exists(local):
            storage.download_tree(remote, local)


def stage_out(outputs: dict[str, list[types.Artifact]]) -> None:
    """Uploads the outputs this replica wrote to their remote URIs."""
    for local, remote in _remote_paths(outputs):
        if os.path.isdir(local):
            storage.upload_tree(local, remote)


def collect(outputs: dict[str, list[types.Artifact]]) -> None:
    """Downloads what the chief uploaded into this task's local output paths."""
    for local, remote in _remote_paths(outputs):
        if storage.exists(remote):
            storage.download_tree(remote, local)
