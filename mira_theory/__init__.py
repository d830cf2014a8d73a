"""mira-theory: game-theoretic analysis and verification of staked AI inference.

    >>> import mira_theory as mt
    >>> solution = mt.solve(mt.load("models/default.toml"))
    >>> solution.binding_deviation
    'weaker-model'
"""

__version__ = "0.1.0"

from mira_theory.api import derive, load, loads, solve  # noqa: E402
from mira_theory.scenario import Problem, Scenario, ScenarioError  # noqa: E402

__all__ = ["Problem", "Scenario", "ScenarioError", "__version__", "derive", "load", "loads", "solve"]
