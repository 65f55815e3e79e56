"""Talks to a Kubeflow Pipelines API: starts runs of a compiled package, or schedules them."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator

import kfp
import kfp_server_api
import urllib3

TIMEOUT_SECONDS = 30


@contextlib.contextmanager
def _client(host: str, package: str) -> Iterator[kfp.Client]:
    """A client of the KFP API at `host`; an unreachable API is a one-line ConnectionError."""
    if not os.path.exists(package):
        raise FileNotFoundError(
            f"No compiled pipeline at {package}; run alexnet-tfx compile first or pass --package."
        )
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(TIMEOUT_SECONDS)
    try:
        yield kfp.Client(host=host)
    except (OSError, urllib3.exceptions.HTTPError, kfp_server_api.ApiException) as error:
        raise ConnectionError(
            f"Could not reach Kubeflow Pipelines at {host}: {error}. "
            "Check --host and that the KFP API is reachable."
        ) from error
    finally:
        socket.setdefaulttimeout(previous)


def submit(
    host: str, package: str, experiment: str, pipeline_root: str | None, run_name: str | None
) -> str:
    """Starts a run of a compiled package; returns the run's URL."""
    with _client(host, package) as client:
        result = client.create_run_from_pipeline_package(
            package,
            arguments={},
            run_name=run_name,
            experiment_name=experiment,
            pipeline_root=pipeline_root,
        )
    return f"{host.rstrip('/')}/#/runs/details/{result.run_id}"


def kfp_cron(expression: str) -> str:
    """KFP's 6-field cron (seconds first) from a 5- or 6-field expression."""
    fields = expression.split()
    if len(fields) == 5:
        return " ".join(["0", *fields])
    if len(fields) == 6:
        return " ".join(fields)
    raise ValueError(
        f"--cron: {expression!r} has {len(fields)} fields; give 5 (minute hour day month "
        "weekday, e.g. '0 2 * * *') or KFP's 6 (with seconds first)."
    )


def schedule(
    host: str,
    package: str,
    experiment: str,
    cron: str,
    name: str,
    pipeline_root: str | None,
) -> str:
    """Creates a recurring run of a compiled package; returns its URL."""
    cron_expression = kfp_cron(cron)
    with _client(host, package) as client:
        experiment_id = client.create_experiment(name=experiment).experiment_id
        result = client.create_recurring_run(
            experiment_id=experiment_id,
            job_name=name,
            cron_expression=cron_expression,
            pipeline_package_path=package,
            pipeline_root=pipeline_root,
            # One run at a time, and no backfill: each run reads the newest spans anyway.
            max_concurrency=1,
            no_catchup=True,
        )
    return f"{host.rstrip('/')}/#/recurringrun/details/{result.recurring_run_id}"
