"""The narrative notebooks: each runs top to bottom at its small size and stays narrative.

Every notebook is executed in a temporary copy, so the logs it writes land in `tmp_path`
and not in the repository. `METAZOO_HEADLESS=1` tells the notebooks not to start a
TensorBoard server.
"""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import nbformat
import pytest
from IPython.core.inputtransformer2 import TransformerManager
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
CELL_TIMEOUT = 300  # seconds per cell
HELPER_LINES = 5  # a function this short is plotting glue, anything longer library logic


def _code_cells(notebook):
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def _parse(cell) -> ast.Module:
    """The cell as a Python module, with IPython magics turned into plain calls."""
    return ast.parse(TransformerManager().transform_cell(cell.source))


def test_notebooks_are_found():
    assert len(NOTEBOOKS) >= 5, f"Expected the five notebooks in notebooks/. Found: {NOTEBOOKS}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_layout(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    assert notebook.cells[0].cell_type == "markdown", "The first cell must say what it shows."

    tagged = [c for c in _code_cells(notebook) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"Expected one code cell tagged 'parameters'. Found {len(tagged)}"
    values = {
        target.id: node.value.value
        for node in _parse(tagged[0]).body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    assert values.get("SIZE") == "small", f"The committed size must be small. Found: {values}"
    assert isinstance(values.get("SEED"), int), f"The parameters need a SEED. Found: {values}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_defines_no_library_logic(path):
    notebook = nbformat.read(path, as_version=4)
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        for node in ast.walk(_parse(cell)):
            assert not isinstance(node, ast.ClassDef), (
                f"Cell {index} defines class {node.name}: classes belong in metazoo/."
            )
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno
                assert lines <= HELPER_LINES, (
                    f"Cell {index} defines {node.name} ({lines} lines): "
                    "logic beyond a tiny helper belongs in metazoo/."
                )


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path, tmp_path, monkeypatch):
    monkeypatch.setenv("METAZOO_HEADLESS", "1")  # the kernel inherits the environment
    copy = tmp_path / path.name
    shutil.copyfile(path, copy)
    notebook = nbformat.read(copy, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()  # raises CellExecutionError, with the cell and traceback, on any error
    errors = [
        output
        for cell in _code_cells(notebook)
        for output in cell.get("outputs", [])
        if output.get("output_type") == "error"
    ]
    assert not errors
