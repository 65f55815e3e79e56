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


def _string_constants(path):
    """The string literals of a file, less `__all__` (class names that double as ids)."""
    tree = ast.parse(path.read_text())
    exported = {
        id(item)
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        and any(getattr(t, "id", "") == "__all__" for t in node.targets)
        for item in ast.walk(node.value)
    }
    return {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in exported
    }


def test_no_file_but_stages_spells_a_node_id(demo_dir):
    """docs/architecture.md: a node's id is spelled in pipelines/stages.py or by TFX, and
    found everywhere else by the role of what it makes (contract/roles.py)."""
    from conftest import wiring_for

    from pipelines.config import build_config

    config = build_config("tiny", data=str(demo_dir), tune=True, bulk_infer_data=str(demo_dir))
    ids = set(wiring_for(config).node_ids())
    assert {"Trainer", "Tuner", "Evaluator", "BulkInferrer"} <= ids
    spelled = {
        str(path.relative_to(ROOT)): found
        for folder in ("contract", "modules", "components", "serving", "pipelines")
        for path in (ROOT / folder).rglob("*.py")
        if path != ROOT / "pipelines" / "stages.py" and (found := _string_constants(path) & ids)
    }
    assert not spelled, spelled


def test_every_named_role_is_a_wiring_channel():
    import dataclasses

    from contract.roles import ROLES
    from pipelines.wiring import Wiring

    channels = [f.name for f in dataclasses.fields(Wiring) if f.name not in ("components", "gates")]
    assert set(ROLES) <= set(channels), set(ROLES) - set(channels)
