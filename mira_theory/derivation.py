"""Symbolic results of a game: each closed form as a sympy expression, as LaTeX, and its value
at a scenario (one column per case the game distinguishes, e.g. one per deviation)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import sympy as sp

from mira_theory.results import fmt, html_table, jsonable
from mira_theory.scenario import Scenario


@dataclass(frozen=True)
class Derived:
    """One closed form: its name (as in the result objects), meaning and sympy expression."""

    name: str
    meaning: str
    expr: sp.Expr

    @property
    def latex(self) -> str:
        return sp.latex(self.expr)


@dataclass(frozen=True)
class Derivation:
    scenario: Scenario
    items: tuple[Any, ...]  # Derived(name, meaning, expr)
    cases: tuple[tuple[str, dict[sp.Symbol, float]], ...]  # (label, substitution)
    # the values at the scenario come from the game's numeric closed forms (tested equal to
    # these expressions, and carrying their case distinctions: "none", 0, ∞), not from
    # symbolic substitution, which can be slow or undefined at boundaries
    values: tuple[tuple[str, tuple[tuple[str, float], ...]], ...] = ()

    @classmethod
    def of(cls, scenario: Scenario) -> Derivation:
        from mira_theory.api import game_module

        module = game_module(scenario)
        subs, numeric = module.derived_cases(scenario)
        return cls(scenario, module.derivation(), tuple(subs),
                   tuple((case, tuple(vals.items())) for case, vals in numeric.items()))

    def value(self, name: str, case: str) -> float:
        numeric = dict(dict(self.values).get(case, ()))
        if name in numeric:
            return float(numeric[name])
        item = next(i for i in self.items if i.name == name)
        subs = dict(self.cases)[case]
        try:
            v = complex(item.expr.subs(subs).doit().evalf())
        except Exception:  # undefined at this point (0/0, ∞ compared, ...)
            return math.nan
        return v.real if abs(v.imag) < 1e-12 else math.nan

    def to_dict(self) -> dict[str, Any]:
        return jsonable({
            "game": self.scenario.game, "scenario": self.scenario.name,
            "scenario_sha256": self.scenario.sha256,
            "results": [{"name": i.name, "meaning": i.meaning, "expression": str(i.expr),
                         "latex": sp.latex(i.expr),
                         "values": {c: self.value(i.name, c) for c, _ in self.cases}}
                        for i in self.items]})

    def render(self, latex: bool = False) -> str:
        blocks = [f"{self.scenario.game} game: closed forms, derived by sympy "
                  f"(values at {self.scenario.name}: {', '.join(c for c, _ in self.cases)})"]
        for i in self.items:
            form = sp.latex(i.expr) if latex else sp.pretty(i.expr, use_unicode=True)
            values = ", ".join(f"{c}: {fmt(self.value(i.name, c))}" for c, _ in self.cases)
            blocks.append(f"{i.name}: {i.meaning}\n{form}\n= {values}")
        return "\n\n".join(blocks)

    def _repr_html_(self) -> str:
        rows = [(i.name, i.meaning, f"$${sp.latex(i.expr)}$$",
                 ", ".join(fmt(self.value(i.name, c)) for c, _ in self.cases)) for i in self.items]
        return html_table(rows, ("name", "meaning", "expression", "value"))

    def __str__(self) -> str:
        return self.render()
