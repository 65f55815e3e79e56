"""The walkthrough notebook, executed headless from top to bottom as a user would run it."""

import re
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).parent.parent / "notebooks" / "alexnet_tfx_walkthrough.ipynb"


def test_notebook_is_committed_without_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(not cell.outputs and cell.execution_count is None for cell in code)


def test_walkthrough_runs_every_cell(tmp_path, monkeypatch):
    monkeypatch.setenv("WALKTHROUGH_DIR", str(tmp_path))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    # Any cell error raises CellExecutionError and fails the test.
    NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    ).execute()

    def text(cell):
        return "".join(
            output.get("text", "") or output.get("data", {}).get("text/plain", "")
            for output in cell.outputs
        )

    printed = "\n".join(text(cell) for cell in notebook.cells if cell.cell_type == "code")
    assert re.search(r"total parameters +62,378,344", printed)  # the canonical network
    assert "anomalies: none" in printed
    assert "blessed: True" in printed and "pushed: True" in printed
    assert "model version 1" in printed
    images = sum(
        1
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if {"image/png", "image/jpeg"} & set(output.get("data", {}))
    )
    assert images >= 6  # diagram, transformed images, curves, confusion, per class, input
    assert (tmp_path / "outputs" / "serving_model" / "alexnet" / "1" / "saved_model.pb").exists()
