"""Shared fixtures for the audit-game tests: the model files and a scenario builder."""

from __future__ import annotations

from pathlib import Path

import pytest
import tomli_w

import mira_theory as mt

MODELS = Path(__file__).resolve().parents[1] / "models"


@pytest.fixture(scope="session")
def default():
    return mt.load(MODELS / "default.toml")


@pytest.fixture(scope="session")
def build(default):
    """build(deviations, changes) -> a default.toml variant.

    ``deviations`` (optional) replaces the [[deviation]] tables by (name, cost, divergence)
    triples; ``changes`` are then applied with ``Scenario.replace`` (dotted keys).
    """

    def _build(deviations=None, changes=None):
        base = default
        if deviations is not None:
            raw = default.raw()
            raw["deviation"] = [{"name": n, "cost": float(c), "divergence": float(d)}
                                for n, c, d in deviations]
            base = mt.loads(tomli_w.dumps(raw))
        return base.replace(dict(changes or {})) if changes else base

    return _build


@pytest.fixture(scope="module")
def pool():
    """Two forked workers, started before any Dask thread exists (forking is fast: the
    workers inherit the imported modules; the library's own pools use spawn)."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(2, mp_context=mp.get_context("fork")) as ex:
        list(ex.map(abs, [1, 2]))  # fork both workers now
        yield ex


@pytest.fixture(scope="module")
def dask_client():
    """A Dask client on an in-process LocalCluster of two single-thread workers."""
    from dask.distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        yield client
