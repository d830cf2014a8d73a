"""The small facade: load a scenario, solve it, derive its closed forms.

Each game family module provides ``solve(scenario)`` and ``derivation()``; this module
dispatches on the scenario's game so users and the CLI need not know which module it is.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from mira_theory.scenario import Scenario
from mira_theory.scenario import load as _load
from mira_theory.scenario import loads as _loads


def load(path: str | Path) -> Scenario:
    """Read and validate a scenario file (raises :class:`ScenarioError` listing every problem)."""
    return _load(path)


def loads(text: str) -> Scenario:
    """Validate scenario TOML text."""
    return _loads(text)


def game_module(scenario: Scenario) -> Any:
    return importlib.import_module(f"mira_theory.games.{scenario.game}")


def solve(scenario: Scenario | str | Path) -> Any:
    """Solve a scenario (or a scenario file) with its game's model."""
    if not isinstance(scenario, Scenario):
        scenario = _load(scenario)
    return game_module(scenario).solve(scenario)


def derive(scenario: Scenario | str | Path) -> Any:
    """The symbolic closed forms of a scenario's game, with their values at the scenario."""
    from mira_theory.derivation import Derivation

    if not isinstance(scenario, Scenario):
        scenario = _load(scenario)
    return Derivation.of(scenario)
