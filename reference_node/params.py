"""The deployment-parameters file, as the reference network reads it.

The node reads only the exported parameters file (``mira-theory export``): the deployment
parameters are validated by :func:`mira_theory.deployment.read_params` (the one reader of the
schema) and the ``environment`` table (the scenario values in force: costs, divergences,
error rates, latencies) is validated here, key by key. Every problem is reported as
``file: key: expected ..., found ...`` through :class:`mira_theory.scenario.ScenarioError`.
The node never re-derives theory from these values; it realises the modelled world.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mira_theory.deployment import read_params
from mira_theory.scenario import Problem, ScenarioError

UNIT = 1_000_000  # ledger amounts are integers in micro-units of the scenario's currency


def to_units(amount: float) -> int:
    return int(round(amount * UNIT))


@dataclass(frozen=True)
class DeviationSpec:
    name: str
    cost: float
    divergence: float


@dataclass(frozen=True)
class NodeParams:
    """Everything a reference network needs, from one params file."""

    path: str
    scenario: str
    scenario_sha256: str | None
    game: str
    sampling_rate: float
    slash: float
    minimum_stake: float
    reward: float
    verifiers_per_audit: int
    comparison: str
    cost_honest: float
    deviations: tuple[DeviationSpec, ...]
    miss_rate: float
    false_alarm_rate: float
    collusion: float
    bounty_share: float
    audit_cost: float
    throughput: float
    settlement_latency: float
    predictions: dict[str, Any] = field(default_factory=dict)

    @property
    def deviation_names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.deviations)

    def deviation(self, name: str) -> DeviationSpec:
        for d in self.deviations:
            if d.name == name:
                return d
        raise KeyError(name)

    def cost_of(self, action: str) -> float:
        return self.cost_honest if action == "honest" else self.deviation(action).cost


def _num(file: str, key: str, table: Any, name: str, lo: float, hi: float, problems: list[Problem],
         integer: bool = False) -> float:
    path = f"{key}.{name}"
    if not isinstance(table, dict) or name not in table:
        problems.append(Problem(file, path, "a number", "nothing: the key is missing"))
        return math.nan
    value = table[name]
    if isinstance(value, bool) or not isinstance(value, int | float) or (integer and not isinstance(value, int)):
        problems.append(Problem(file, path, "an integer" if integer else "a number", repr(value)))
        return math.nan
    if not math.isfinite(value) or not lo <= value <= hi:
        problems.append(Problem(file, path, f"a number in [{lo}, {hi}]", repr(value)))
        return math.nan
    return float(value)


def load(path: str | Path) -> NodeParams:
    """Read and validate a params file; raises ScenarioError listing every problem."""
    file = str(path)
    first = _peek_game(file)
    if first != "audit":
        raise ScenarioError([Problem(file, "game", "'audit' (these services run the audit game; a consensus "
                                     "game's params run on the committee services: mira-node up, "
                                     "reference_node.committee_services)", repr(first))])
    problems: list[Problem] = []
    try:
        params = read_params(path, "audit")
    except ScenarioError as err:
        if any(p.key in ("", "schema_version", "game", "parameters") for p in err.problems):
            raise  # the file itself is unreadable or not a params document
        problems += err.problems  # report the environment's problems too, all at once
        params = None
    doc = json.loads(Path(path).read_text(encoding="utf-8-sig")) if not file.endswith(".toml") else _toml(path)
    env = doc.get("environment")
    if not isinstance(env, dict):
        raise ScenarioError([*problems, Problem(file, "environment", "a table of the scenario values in force "
                                                "(re-export with a current mira-theory)",
                                                "nothing" if env is None else type(env).__name__)])
    task, audit, stake = env.get("task"), env.get("audit"), env.get("stake")
    for key, table in (("task", task), ("audit", audit), ("stake", stake)):
        if not isinstance(table, dict):
            problems.append(Problem(file, f"environment.{key}", "a table", repr(table)))
    if problems and params is None and any(p.key.startswith("environment.") and p.found == repr(None)
                                           for p in problems):
        raise ScenarioError(problems)
    inf = math.inf
    c_h = _num(file, "environment.task", task, "cost_honest", 0, inf, problems)
    beta = _num(file, "environment.audit", audit, "miss_rate", 0, 1, problems)
    alpha = _num(file, "environment.audit", audit, "false_alarm_rate", 0, 1, problems)
    r = _num(file, "environment.audit", audit, "collusion", 0, 1, problems)
    b = _num(file, "environment.audit", audit, "bounty_share", 0, 1, problems)
    k = _num(file, "environment.audit", audit, "cost", 0, inf, problems)
    lam = _num(file, "environment.stake", stake, "throughput", 1e-12, inf, problems)
    T = _num(file, "environment.stake", stake, "settlement_latency", 0, inf, problems)
    devs = env.get("deviation", [])
    deviations = []
    if not isinstance(devs, list):
        problems.append(Problem(file, "environment.deviation", "an array of tables", type(devs).__name__))
        devs = []
    for i, d in enumerate(devs):
        key = f"environment.deviation[{i}]"
        name = d.get("name") if isinstance(d, dict) else None
        if not isinstance(name, str) or not name or name in ("honest", "mixed", "hedge"):
            problems.append(Problem(file, f"{key}.name", "a strategy name other than honest/mixed/hedge", repr(name)))
            continue
        cost = _num(file, key, d, "cost", 0, inf, problems)
        div = _num(file, key, d, "divergence", 0, 1, problems)
        deviations.append(DeviationSpec(name, cost, div))
    if len({d.name for d in deviations}) != len(deviations):
        problems.append(Problem(file, "environment.deviation", "distinct names", str([d.name for d in deviations])))
    if params is None:
        raise ScenarioError(problems)
    p = params.parameters
    if p["audit_comparison"] == "exact" and alpha > 0:
        problems.append(Problem(file, "environment.audit.false_alarm_rate",
                                "0 with audit_comparison 'exact' (an exact re-execution of a deterministic "
                                "model cannot flag an honest output)", repr(alpha)))
    if alpha + beta > 1 or (beta < 1 and alpha / (1 - beta) > 0.5) or (beta == 1 and alpha > 0):
        problems.append(Problem(file, "environment.audit.false_alarm_rate",
                                "α/(1−β) ≤ 0.5 (the honest noise exceeds the tolerance with probability α/(1−β))",
                                repr(alpha)))
    if problems:
        raise ScenarioError(problems)
    return NodeParams(
        path=file, scenario=str(doc.get("scenario", "")), scenario_sha256=params.scenario_sha256,
        game="audit", sampling_rate=p["sampling_rate"], slash=p["slash"], minimum_stake=p["minimum_stake"],
        reward=p["reward"], verifiers_per_audit=p["verifiers_per_audit"], comparison=p["audit_comparison"],
        cost_honest=c_h, deviations=tuple(deviations), miss_rate=beta, false_alarm_rate=alpha, collusion=r,
        bounty_share=b, audit_cost=k, throughput=lam, settlement_latency=T,
        predictions=doc.get("predictions") if isinstance(doc.get("predictions"), dict) else {})


def _toml(path: str | Path) -> dict[str, Any]:
    import tomllib

    return tomllib.loads(Path(path).read_text(encoding="utf-8-sig"))


def _peek_game(file: str) -> Any:
    """The file's game (read errors are left to read_params, which reports them)."""
    try:
        doc = _toml(file) if file.endswith(".toml") else json.loads(Path(file).read_text(encoding="utf-8-sig"))
    except (OSError, ValueError, UnicodeDecodeError):
        return "audit"
    return doc.get("game", "audit") if isinstance(doc, dict) else "audit"
