"""Where the Kubeflow Pipelines launcher keeps a task's artifacts on the pod's disk: each
remote URI has one local path (`LocalPathForURI` in kubeflow/pipelines
backend/src/v2/component/launcher_v2.go). Inputs are downloaded there before the command
runs; outputs are uploaded from there after it exits."""

from __future__ import annotations

LOCAL_PREFIXES = {"gs://": "/gcs/", "minio://": "/minio/", "s3://": "/s3/"}


def local_path(uri: str) -> str | None:
    """The launcher's local path for a remote URI; None for a URI it does not map."""
    for scheme, prefix in LOCAL_PREFIXES.items():
        if uri.startswith(scheme):
            return prefix + uri[len(scheme) :]
    return None


def remote_uri(path: str) -> str | None:
    """The remote URI a launcher's local path stands for; None for any other path."""
    for scheme, prefix in LOCAL_PREFIXES.items():
        if path.startswith(prefix):
            return scheme + path[len(prefix) :]
    return None
