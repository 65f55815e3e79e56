"""What a process pays to import the libraries, with the bytecode `make setup` compiles against
compiling the same sources on import, measured in the same run of this script.

Each import runs in a fresh interpreter:
- the pipeline: `pipelines.local_runner`, which `alexnet-tfx run` and each Kubeflow task
  import (TensorFlow, TFX, Beam, TFMA, TFT);
- the model server: TensorFlow and KServe, which the serving check's server imports.
The baseline hides the compiled bytecode behind an empty PYTHONPYCACHEPREFIX with
PYTHONDONTWRITEBYTECODE=1, as in an environment whose packages were installed without it.
Both sides alternate ROUNDS times; each keeps its fastest.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from common import report  # noqa: E402

ROUNDS = 3
IMPORTS = {
    "pipeline": "import pipelines.local_runner",
    "model_server": "import tensorflow, kserve",
}


def _seconds(statement: str, environment: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", statement],
        env=environment,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def main() -> None:
    with tempfile.TemporaryDirectory() as empty:
        compiled = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
        from_source = {**compiled, "PYTHONPYCACHEPREFIX": empty}
        fastest: dict[str, dict[str, float]] = {name: {} for name in IMPORTS}
        for _ in range(ROUNDS):
            for name, statement in IMPORTS.items():
                for side, environment in (("compiled", compiled), ("source", from_source)):
                    seconds = _seconds(statement, environment)
                    fastest[name][side] = min(fastest[name].get(side, seconds), seconds)
    report(
        "startup",
        {
            f"{name}_import_ratio": times["compiled"] / times["source"]
            for name, times in fastest.items()
        },
        {
            **{f"{name}_seconds": times for name, times in fastest.items()},
            "rounds": ROUNDS,
            "imports": IMPORTS,
        },
    )


if __name__ == "__main__":
    main()
