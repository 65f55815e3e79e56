"""Test processes forked from a server that has imported TensorFlow and TFX once.

A fresh `python` spends 15-30 s importing before it does anything. A process forked from
multiprocessing's forkserver starts with the server's modules already imported, and is
still a process of its own: it can crash, be killed, and leaves nothing behind in the
test process. There is one server per test session: the first caller's preloads are the
ones imported; later callers get correct processes that import what else they need.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterable
from multiprocessing.context import ForkServerContext


def forkserver(preload: Iterable[str]) -> ForkServerContext:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(sorted(set(preload)))
    return context
