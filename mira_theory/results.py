"""Result objects shared by every game family: frozen, with provenance, JSON- and Jupyter-ready.

Following pygambit's ``NashComputationResult``: a solver never returns a bare tuple, it
returns a frozen record of what was computed, from which scenario (and its sha256), by which
method, with which toolkit version.
"""

from __future__ import annotations

import dataclasses
import html
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np


class FrozenDict(dict):
    """A dict that refuses mutation (picklable, JSON-serialisable, unlike MappingProxyType)."""

    def _immutable(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("result objects are immutable")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _immutable  # type: ignore[assignment]

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(sorted(self.items(), key=lambda kv: str(kv[0]))))


def freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return FrozenDict({k: freeze(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(freeze(v) for v in value)
    return value


def jsonable(value: Any) -> Any:
    """Plain JSON types; non-finite numbers become null (JSON has no inf/NaN)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        if hasattr(value, "to_dict"):
            return value.to_dict()
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return value


def fmt(value: Any, digits: int = 6) -> str:
    """A number for people: 'none' for NaN, '∞' for infinity, 6 significant digits."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        v = float(value)
        if math.isnan(v):
            return "none"
        if math.isinf(v):
            return "∞" if v > 0 else "-∞"
        return f"{v:.{digits}g}"
    return str(value)


class Provenance:
    """Mixin of result objects that hold the ``scenario`` they were computed from."""

    @property
    def scenario_sha256(self) -> str:
        return self.scenario.sha256  # type: ignore[attr-defined]

    def provenance(self) -> dict[str, Any]:
        """The head of every result's JSON: what was computed, from what, by what."""
        s = self.scenario  # type: ignore[attr-defined]
        head = {"game": self.game, "scenario": s.name, "scenario_path": s.path,  # type: ignore[attr-defined]
                "scenario_sha256": s.sha256, "toolkit_version": self.toolkit_version}  # type: ignore[attr-defined]
        if hasattr(self, "method"):
            head["method"] = self.method
        return head


@dataclass(frozen=True)
class Margin:
    """One constraint at the scenario's values: ``value`` ≥ 0 means it holds."""

    name: str
    value: float
    equation: str
    meaning: str

    @property
    def holds(self) -> bool:
        if not math.isfinite(self.value):
            return bool(self.value > 0)  # +inf holds; −inf and NaN do not
        return bool(self.value >= -1e-12 * max(1.0, abs(self.value)))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "margin": jsonable(self.value), "holds": self.holds,
                "equation": self.equation, "meaning": self.meaning}


@dataclass(frozen=True)
class Equilibrium:
    """A strategy profile with its payoffs and its regrets (best gain from deviating)."""

    kind: str  # "pure" | "mixed" | "leadership"
    strategies: Mapping[str, Mapping[str, float]]  # player -> strategy -> probability
    payoffs: Mapping[str, float]
    regret: Mapping[str, float]
    component: int = 0
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return jsonable({"kind": self.kind, "strategies": self.strategies,
                         "payoffs": self.payoffs, "regret": self.regret,
                         "component": self.component, "note": self.note})

    def describe(self) -> str:
        parts = []
        for player, mix in self.strategies.items():
            support = {s: p for s, p in mix.items() if p > 1e-12}
            parts.append(f"{player}: " + ", ".join(f"{s} {fmt(p, 4)}" for s, p in support.items()))
        return "; ".join(parts)


def render_table(rows: list[tuple[str, ...]], header: tuple[str, ...] | None = None) -> str:
    """A plain-text table with aligned columns."""
    all_rows = ([header] if header else []) + rows
    widths = [max(len(r[i]) for r in all_rows) for i in range(len(all_rows[0]))]
    lines = []
    for j, r in enumerate(all_rows):
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
        if header and j == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def html_table(rows: list[tuple[str, ...]], header: tuple[str, ...] | None = None,
               caption: str = "") -> str:
    out = ["<table>"]
    if caption:
        out.append(f"<caption>{html.escape(caption)}</caption>")
    if header:
        out.append("<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>")
    for r in rows:
        out.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>")
    out.append("</table>")
    return "".join(out)


def dumps(obj: Any) -> str:
    return json.dumps(jsonable(obj), indent=2, ensure_ascii=False, allow_nan=False)
