"""The code's layering: shared names, then modules/, components/, serving/, pipelines/."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_imports_only_point_down():
    """import-linter's layers contract (pyproject.toml), lazy imports inside functions too."""
    result = subprocess.run(
        [Path(sys.executable).parent / "lint-imports"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "Contracts: 1 kept, 0 broken." in result.stdout


def test_the_shared_names_need_only_the_standard_library():
    """So the light client, and every layer, can import them without a heavy dependency."""
    imported = set()
    for path in (ROOT / "contract").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                imported.add(node.module.split(".")[0])
    assert imported, "no imports found: the walk is broken"
    assert imported - {"contract"} <= set(sys.stdlib_module_names), imported
