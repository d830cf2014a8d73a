"""Deployment parameters: the file that configures a deployment (and the reference network).

``export`` writes the parameters in force for a scenario with a certificate (every
constraint, its margin, its equation, pass/fail) and the predictions a network run with
these parameters should show. ``check`` reads such a file (exported, hand-edited, or read
from a live network), applies its parameters to the scenario and recomputes every
constraint. The mapping between parameter names and scenario keys lives here, once.

Schema (``schema_version`` 1)::

    schema_version, toolkit_version, scenario, scenario_sha256, game
    parameters:   audit: sampling_rate, slash, minimum_stake, reward, verifiers_per_audit,
                         audit_comparison ("exact" | "tolerance")
                  consensus: committee_size, threshold, window, agreement_threshold, slash,
                         reward
    certificate:  holds, constraints: [{name, margin, equation, meaning, holds}]
    predictions:  audit: honest {false_slash_per_task, expected_payoff}, deviations.<name>
                         {detection_per_task, expected_payoff}, mixed_equilibrium
                  consensus: agreement {honest, <deviation>...}, false_slash_per_window,
                         detection_per_window.<name>, committee_outcome
    range_certificate: only when the scenario has an [uncertainty] table: per constraint
                  proved | counterexample | undecided over the whole box, with the method
                  (mira_theory.certify)
    environment:  every scenario value in force (the scenario file's tables with defaults
                  filled in): what a network needs to realise the modelled world (costs,
                  divergences, error rates, latencies) without reading the scenario file
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from mira_theory import __version__
from mira_theory.results import jsonable
from mira_theory.scenario import Problem, Scenario, ScenarioError, check_value

SCHEMA_VERSION = 1

# parameter name -> (scenario key, type, check) per game
PARAMETERS: dict[str, dict[str, tuple[str, type, str]]] = {
    "audit": {
        "sampling_rate": ("audit.sampling_rate", float, "probability"),
        "slash": ("stake.slash", float, "nonnegative"),
        "minimum_stake": ("stake.total", float, "nonnegative"),
        "reward": ("task.reward", float, "nonnegative"),
        "verifiers_per_audit": ("audit.verifiers", int, "count_1e4"),
        "audit_comparison": ("audit.comparison", str, "comparison"),
    },
    "consensus": {
        "committee_size": ("committee.size", int, "count_1e5"),
        "threshold": ("committee.threshold", float, "open_probability"),
        "window": ("slashing.window", int, "count_1e7"),
        "agreement_threshold": ("slashing.agreement_threshold", float, "probability"),
        "slash": ("slashing.slash", float, "nonnegative"),
        "reward": ("committee.reward", float, "nonnegative"),
    },
}


def parameters_of(scenario: Scenario) -> dict[str, Any]:
    """The deployment parameters in force in a scenario."""
    raw = scenario.replace({}).raw()  # defaults filled in
    out = {}
    for name, (key, _, _) in PARAMETERS[scenario.game].items():
        section, field = key.split(".")
        out[name] = raw[section][field]
    return out


def _predictions(solution: Any) -> dict[str, Any]:
    if solution.game == "audit":
        mixed = [e for e in solution.equilibria if e.kind == "mixed"]
        return {
            "honest": {"false_slash_per_task": solution.false_slash_per_task,
                       "expected_payoff": solution.honest_payoff},
            "deviations": {d.name: {"detection_per_task": d.detection_per_task,
                                    "expected_payoff": d.expected_payoff}
                           for d in solution.deviations},
            "deterrence_sampling_rate": solution.deterrence_sampling_rate if solution.deterrable else None,
            "mixed_equilibrium": [e.to_dict() for e in mixed],
        }
    return {
        "agreement": {"honest": solution.agreement_honest,
                      **{d.name: d.agreement for d in solution.deviations}},
        "false_slash_per_window": solution.false_slash_per_window,
        "detection_per_window": {d.name: d.detection_per_window for d in solution.deviations},
        "expected_payoff_per_claim": {"honest": solution.honest_payoff,
                                      **{d.name: d.expected_payoff for d in solution.deviations}},
        "committee_outcome": solution.outcome_honest.to_dict(),
    }


def export(scenario: Scenario) -> dict[str, Any]:
    """The deployment-parameters document for the scenario's parameters in force."""
    from mira_theory.api import solve

    solution = solve(scenario)
    return jsonable({
        "schema_version": SCHEMA_VERSION,
        "toolkit_version": __version__,
        "scenario": scenario.name,
        "scenario_sha256": scenario.sha256,
        "game": scenario.game,
        "parameters": parameters_of(scenario),
        "certificate": {
            "holds": solution.incentive_compatible,
            "method": solution.method,
            "constraints": [m.to_dict() for m in solution.margins],
        },
        "predictions": _predictions(solution),
        "environment": scenario.replace({}).raw(),
        **({"range_certificate": _range_certificate(scenario)} if scenario.uncertainty else {}),
    })


def _range_certificate(scenario: Scenario) -> dict[str, Any]:
    """The scenario's [uncertainty] box certified constraint by constraint (mira_theory.certify)."""
    from mira_theory.certify import certify

    return certify(scenario).to_dict()


def dumps(document: dict[str, Any], fmt: str = "json") -> str:
    if fmt == "toml":
        # TOML has no null: absent values are dropped, as TOML readers expect
        return tomli_w.dumps(_drop_none(document))
    return json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value if v is not None]
    return value


@dataclass(frozen=True)
class Params:
    """A parsed, validated deployment-parameters file."""

    path: str
    game: str
    scenario_sha256: str | None
    parameters: dict[str, Any]


def read_params(path: str | Path, game: str) -> Params:
    """Read a params file (JSON, or TOML by extension) and validate its parameters."""
    file = str(path)
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise ScenarioError([Problem(file, "", "an existing parameters file", "no such file")]) from None
    except OSError as err:
        raise ScenarioError([Problem(file, "", "a readable file", str(err))]) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ScenarioError([Problem(file, "", "UTF-8 text", f"undecodable bytes ({err})")]) from None
    try:
        if file.endswith(".toml"):
            doc = tomllib.loads(text)
        else:
            doc = json.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ScenarioError([Problem(file, "", "valid TOML", f"a syntax error: {err}")]) from None
    except json.JSONDecodeError as err:
        raise ScenarioError([Problem(file, "", "valid JSON",
                                     f"a syntax error at line {err.lineno}, column {err.colno}: {err.msg}")]) from None
    if not isinstance(doc, dict):
        raise ScenarioError([Problem(file, "", "a JSON object", type(doc).__name__)])
    problems: list[Problem] = []
    version = doc.get("schema_version")
    if version != SCHEMA_VERSION:
        problems.append(Problem(file, "schema_version", f"{SCHEMA_VERSION}", repr(version)))
    if doc.get("game", game) != game:
        problems.append(Problem(file, "game", f"{game!r} (the scenario's game)", repr(doc.get("game"))))
    params = doc.get("parameters")
    if not isinstance(params, dict):
        problems.append(Problem(file, "parameters", "a table of deployment parameters",
                                "nothing" if params is None else type(params).__name__))
        raise ScenarioError(problems)
    spec = PARAMETERS[game]
    for key in params:
        if key not in spec:
            problems.append(Problem(file, f"parameters.{key}", f"one of {sorted(spec)}", f"unknown key {key!r}"))
    values = {}
    for name, (_, tp, check) in spec.items():
        if name not in params:
            problems.append(Problem(file, f"parameters.{name}", "a value", "nothing: the key is missing"))
            continue
        value, p = check_value(file, f"parameters.{name}", params[name], tp, check)
        problems += p
        values[name] = value
    sha = doc.get("scenario_sha256")
    if sha is not None and not isinstance(sha, str):
        problems.append(Problem(file, "scenario_sha256", "a hex string", repr(sha)))
    if problems:
        raise ScenarioError(problems)
    return Params(file, game, sha, values)


@dataclass(frozen=True)
class CheckResult:
    params: Params
    solution: Any
    sha_matches: bool | None  # None when the file names no sha256

    @property
    def holds(self) -> bool:
        return self.solution.incentive_compatible

    @property
    def failed(self) -> list[str]:
        return [m.name for m in self.solution.margins if not m.holds]


def check(scenario: Scenario, params: Params) -> CheckResult:
    """Apply deployment parameters to the scenario and recompute every constraint."""
    from mira_theory.api import solve

    changes = {PARAMETERS[scenario.game][k][0]: v for k, v in params.parameters.items()}
    try:
        applied = scenario.replace(changes)
    except ScenarioError as err:  # a parameter the scenario's own rules reject
        raise ScenarioError([Problem(params.path, f"parameters ({p.key})", p.expected, p.found)
                             for p in err.problems]) from None
    sha = None if params.scenario_sha256 is None else params.scenario_sha256 == scenario.sha256
    return CheckResult(params, solve(applied), sha)


def margin_rows(result: CheckResult) -> list[tuple[str, str, str, str]]:
    from mira_theory.results import fmt

    return [(m.name, fmt(m.value), "holds" if m.holds else "FAILS", m.equation)
            for m in result.solution.margins]
