"""Talks to a Kubeflow Pipelines API: starts runs of compiled packages."""

from __future__ import annotations

import os
import socket

import kfp
import kfp_server_api
import urllib3

SUBMIT_TIMEOUT_SECONDS = 30


def submit(
    host: str, package: str, experiment: str, pipeline_root: str | None, run_name: str | None
) -> str:
    """Starts a run of a compiled package on a KFP server; returns the run's URL."""
    if not os.path.exists(package):
        raise FileNotFoundError(
            f"No compiled pipeline at {package}; run alexnet-tfx compile first or pass --package."
        )
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(SUBMIT_TIMEOUT_SECONDS)
    try:
        client = kfp.Client(host=host)
        result = client.create_run_from_pipeline_package(
            package,
            arguments={},
            run_name=run_name,
            experiment_name=experiment,
            pipeline_root=pipeline_root,
        )
    except (OSError, urllib3.exceptions.HTTPError, kfp_server_api.ApiException) as error:
        raise ConnectionError(
            f"Could not submit to Kubeflow Pipelines at {host}: {error}. "
            "Check --host and that the KFP API is reachable."
        ) from error
    finally:
        socket.setdefaulttimeout(previous)
    return f"{host.rstrip('/')}/#/runs/details/{result.run_id}"
