"""mira-theory: game-theoretic analysis and verification of staked AI inference.

    >>> import mira_theory as mt
    >>> solution = mt.solve(mt.load("models/default.toml"))
    >>> solution.binding_deviation
    'weaker-model'
"""

__version__ = "0.1.0"

from mira_theory.api import derive, load, loads, solve  # noqa: E402
from mira_theory.scenario import Problem, Scenario, ScenarioError  # noqa: E402
from mira_theory.sweep import sweep  # noqa: E402  (binds the function over the submodule's name)


def __getattr__(name: str):  # the heavier entry points load on first use
    if name == "simulate":
        from mira_theory.montecarlo import simulate

        return simulate
    if name == "design_consensus":
        from mira_theory.consensus_design import design_consensus

        return design_consensus
    raise AttributeError(f"module 'mira_theory' has no attribute {name!r}")


# the audit design is mira_theory.design.design (the submodule's name is taken by the module)
__all__ = ["Problem", "Scenario", "ScenarioError", "__version__", "derive", "design_consensus", "load", "loads",
           "simulate", "solve", "sweep"]
