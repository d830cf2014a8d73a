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
