"""`python -m modules.cluster_watchdog TIMEOUT KIND INDEX REPLICAS PEER...`: after TIMEOUT
seconds, one line on stderr saying that a replica's cluster did not form, naming the peers
that do not answer on their TCP port. A replica starts it before TensorFlow waits for its
cluster, and stops it once the cluster has formed (modules/multi_worker.py). The standard
library only: it starts in milliseconds."""

from __future__ import annotations

import os
import socket
import sys
import time


def answers(address: str, timeout_s: float = 2.0) -> bool:
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            return True
    except (OSError, ValueError):
        return False


def main(argv: list[str]) -> None:
    timeout_s, kind, index, replicas, *peers = argv
    parent = os.getppid()
    time.sleep(float(timeout_s))
    if os.getppid() != parent:  # the replica is gone (killed, restarted): nothing to say
        return
    silent = [peer for peer in peers if not answers(peer)]
    who = f"{', '.join(silent)} did not answer" if silent else "every peer answers"
    sys.stderr.write(
        f"Error: {kind} {index} of {replicas} replicas: the cluster did not form within "
        f"{float(timeout_s):.0f} s ({who}); check TF_CONFIG's addresses and that every "
        "replica is running\n"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
