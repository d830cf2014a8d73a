"""Execute every notebook in this directory top to bottom (nbclient, kernel ``python3``).

    .venv/bin/python notebooks/run.py             # execute all, outputs discarded
    .venv/bin/python notebooks/run.py --write     # execute all and store their outputs
    .venv/bin/python notebooks/run.py 01 03       # only the notebooks whose names start so

The working directory of each kernel is ``notebooks/`` (as in Jupyter); the notebooks find
``models/`` from there. Exit status 1 if any notebook fails (the failing cell is printed).
Notebooks are committed without outputs: ``--write`` is for a local look, not for commits.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

HERE = Path(__file__).resolve().parent
TIMEOUT = 300  # seconds per cell


def notebooks(prefixes: list[str] | None = None) -> list[Path]:
    found = sorted(HERE.glob("[0-9][0-9]-*.ipynb"))
    if prefixes:
        found = [p for p in found if any(p.name.startswith(x) for x in prefixes)]
    return found


def execute(path: Path, write: bool = False, kernel: str = "python3") -> float:
    """Run one notebook; returns the seconds it took. Raises CellExecutionError on failure."""
    nb = nbformat.read(path, as_version=4)
    started = time.perf_counter()
    NotebookClient(nb, timeout=TIMEOUT, kernel_name=kernel,
                   resources={"metadata": {"path": str(HERE)}}).execute()
    if write:
        nbformat.write(nb, path)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("only", nargs="*", help="name prefixes of the notebooks to run (default: all)")
    parser.add_argument("--write", action="store_true", help="store the outputs in the notebooks")
    args = parser.parse_args(argv)
    failed = []
    for path in notebooks(args.only):
        try:
            seconds = execute(path, args.write)
            print(f"ok    {path.name}  {seconds:.1f} s", flush=True)
        except CellExecutionError as err:
            failed.append(path.name)
            print(f"FAIL  {path.name}\n{err}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
