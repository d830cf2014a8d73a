"""Every notebook runs top to bottom (nbclient, kernel python3, cwd notebooks/) and is committed
without outputs. The notebooks' own assert cells compare with hand values and published numbers."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
_spec = importlib.util.spec_from_file_location("notebooks_run", NOTEBOOKS / "run.py")
run = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(run)

ALL = run.notebooks()


def test_the_five_notebooks_are_there():
    assert [p.name[:2] for p in ALL] == ["01", "02", "03", "04", "05"]


@pytest.mark.parametrize("path", ALL, ids=[p.stem for p in ALL])
def test_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, "a notebook without code"
    assert all(not c.outputs and c.execution_count is None for c in code), f"{path.name} has stored outputs"


@pytest.mark.parametrize("path", ALL, ids=[p.stem for p in ALL])
def test_runs_top_to_bottom(path):
    seconds = run.execute(path)  # raises CellExecutionError naming the failing cell
    assert seconds < 120, f"{path.name} took {seconds:.0f} s (budget: under 60 s each)"
