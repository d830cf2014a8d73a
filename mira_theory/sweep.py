"""Parameter sweeps: a scenario's solution over a grid of its parameters, as an xarray Dataset.

    >>> import numpy as np
    >>> import mira_theory as mt
    >>> from mira_theory.sweep import sweep
    >>> ds = sweep(mt.load("models/default.toml"),
    ...            over={"audit.sampling_rate": np.linspace(0, 0.2, 5), "stake.slash": [5, 10, 20]},
    ...            episode=False)
    >>> dict(ds.sizes)
    {'audit.sampling_rate': 5, 'stake.slash': 3, 'deviation': 2}
    >>> float(ds["deterrence_sampling_rate"].sel({"stake.slash": 20}).isel({"audit.sampling_rate": 0}))
    0.0476190...

Semantics (explicit, after cadCAD's confusing positional sweeps)
----------------------------------------------------------------
* ``over`` maps scenario keys to values. Keys are the dotted paths of the scenario file,
  as for :meth:`Scenario.replace`: ``"audit.sampling_rate"``, ``"committee.size"``,
  ``"deviation.weaker-model.cost"`` (a ``[[deviation]]`` table by name, or by index:
  ``"deviation.0.cost"``). Every numeric key is a valid axis (:func:`axis_keys`), defaulted
  keys included; anything else is an error listing the valid keys.
* Cartesian by default: one dimension per key, named by the key. ``zip=True``: all axes
  have the same length and share one dimension, ``point``, each key a coordinate on it.
* Values are validated with the scenario's own checks (type, range) once per axis value,
  before any work; a game's cross-key checks (e.g. consensus ``committee.threshold > 1/2``)
  are applied per point where the work is per point.

What is computed
----------------
Audit game: every quantity of :func:`mira_theory.games.audit.closed_form`, evaluated in one
vectorized call over the whole grid (the grid values are broadcast into its arguments, with
the deviations along a trailing axis), and the aggregates :func:`audit.solve` reports: q*
and the binding deviation, L*, S*, deterrability, margins and whether they all hold. The
exact stake-exhaustion margin (:func:`audit.episode_margin`, binomial tails) is evaluated,
vectorized too, once per combination of the axes it depends on; ``episode=False`` skips it
(``holds`` then covers the other margins only, and says so in its attrs).

Consensus game: :func:`mira_theory.games.consensus.solve` per grid point (committee
outcomes, window tails, the symmetric equilibria of the N-player game, capture, corruption),
in parallel chunks on the chosen backend (:mod:`mira_theory.backends`).

The Dataset holds one variable per quantity (with ``units`` and ``description`` attrs);
per-deviation quantities have a trailing ``deviation`` dimension. Its attrs carry the
scenario's TOML text and sha256, the axes, and the method. ``ds.to_dataframe()`` is the flat
table (one row per point and deviation). Arrays may be read-only broadcast views of the
closed form's output (no copy is made of a quantity that does not vary along an axis):
``ds.copy(deep=True)`` before assigning into them.
"""

from __future__ import annotations

import builtins
import dataclasses
import functools
import itertools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from mira_theory import __version__
from mira_theory.backends import check_backend, progress_bar, run_chunks
from mira_theory.scenario import Problem, Scenario, ScenarioError, _suggest, check_value, fields_of

POINT_DIM = "point"
DEVIATION_DIM = "deviation"
TIE = 1e-12  # the tolerance audit.solve uses for "q* ≤ 1" and "lower ≤ upper"

# --------------------------------------------------------------------------------------
# Axes
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Axis:
    key: str  # as the user wrote it (the dimension / coordinate name)
    canonical: str  # array tables addressed by name: "deviation.weaker-model.cost"
    section: str  # "audit", "deviation", ...
    table: str | None  # the array table's name, for [[deviation]] keys
    field: str
    values: np.ndarray
    doc: str
    symbol: str


def _numeric_fields(cls: type) -> dict[str, tuple[Any, dataclasses.Field]]:
    return {n: (tp, f) for n, (tp, f) in fields_of(cls).items() if tp in (int, float)}


def axis_keys(scenario: Scenario) -> list[str]:
    """Every key a sweep may vary: the numeric keys of the scenario's schema, defaulted ones
    included, with array tables addressed by name."""
    out = [f"{section}.{name}" for section, cls in scenario.SECTIONS.items() for name in _numeric_fields(cls)]
    for array, (attr, cls, _) in scenario.ARRAYS.items():
        for item in getattr(scenario, attr):
            out += [f"{array}.{item.name}.{name}" for name in _numeric_fields(cls)]
    return out


def _resolve(scenario: Scenario, key: str, file: str) -> tuple[str, str, str | None, str, Any, Any] | Problem:
    valid = axis_keys(scenario)
    parts = key.split(".") if isinstance(key, str) else []
    if len(parts) == 3 and parts[0] in scenario.ARRAYS:
        attr, cls, _ = scenario.ARRAYS[parts[0]]
        names = [t.name for t in getattr(scenario, attr)]
        name = parts[1]
        if name.isdigit() and int(name) < len(names) and name not in names:
            name = names[int(name)]
        canonical = f"{parts[0]}.{name}.{parts[2]}"
        if canonical in valid:
            tp, f = _numeric_fields(cls)[parts[2]]
            return canonical, parts[0], name, parts[2], tp, f
    elif len(parts) == 2 and parts[0] in scenario.SECTIONS and key in valid:
        tp, f = _numeric_fields(scenario.SECTIONS[parts[0]])[parts[1]]
        return key, parts[0], None, parts[1], tp, f
    return Problem(file, str(key), "a numeric scenario key, one of: " + ", ".join(valid),
                   f"unknown key {key!r}{_suggest(str(key), valid)}")


def _values(file: str, key: str, raw: Any, tp: Any, check: str) -> tuple[np.ndarray | None, list[Problem]]:
    """The axis values as an array of the field's type, checked by the scenario's own rule."""
    arr = np.atleast_1d(np.asarray(raw))
    if arr.ndim != 1 or arr.size == 0:
        return None, [Problem(file, key, "a non-empty one-dimensional sequence of values",
                              f"shape {arr.shape}")]
    problems: list[Problem] = []
    out = []
    for v in arr.tolist():  # once per axis value, not per grid point
        if tp is int and isinstance(v, float) and math.isfinite(v) and v.is_integer():
            v = int(v)  # e.g. np.linspace(3, 11, 5) over committee.size
        value, p = check_value(file, key, v, tp, check)
        problems += p
        out.append(value)
    if problems:
        return None, problems[:5] + ([Problem(file, key, "valid values", f"{len(problems) - 5} more invalid")]
                                     if len(problems) > 5 else [])
    return np.asarray(out, dtype=np.int64 if tp is int else float), []


def axes_of(scenario: Scenario, over: Mapping[str, Any], zip: bool = False) -> list[Axis]:
    """Validate the sweep's axes (names, values, lengths); raise one ScenarioError listing
    every problem."""
    file = scenario.path or scenario.name
    if not isinstance(over, Mapping) or not over:
        raise ScenarioError([Problem(file, "over", "a non-empty mapping of scenario keys to values",
                                     repr(over))])
    problems: list[Problem] = []
    axes: list[Axis] = []
    seen: dict[str, str] = {}
    for key, raw in over.items():
        resolved = _resolve(scenario, key, file)
        if isinstance(resolved, Problem):
            problems.append(resolved)
            continue
        canonical, section, table, name, tp, f = resolved
        if canonical in seen:
            problems.append(Problem(file, key, "each scenario key once", f"the same key as {seen[canonical]!r}"))
            continue
        seen[canonical] = key
        values, p = _values(file, key, raw, tp, f.metadata["check"])
        problems += p
        if values is not None:
            axes.append(Axis(key, canonical, section, table, name, values, f.metadata["doc"],
                             f.metadata["symbol"]))
    if zip and not problems:
        lengths = {a.key: a.values.size for a in axes}
        if len(set(lengths.values())) > 1:
            problems.append(Problem(file, "zip", "axes of equal length (zip=True pairs them point by point)",
                                    ", ".join(f"{k}: {n}" for k, n in lengths.items())))
    if problems:
        raise ScenarioError(problems)
    return axes


def _point_changes(axes: Sequence[Axis], zip: bool) -> list[dict[str, Any]]:
    """The replace() changes of every grid point, in C order of the grid."""
    columns = [a.values.tolist() for a in axes]
    rows = builtins.zip(*columns) if zip else itertools.product(*columns)
    return [{a.canonical: v for a, v in builtins.zip(axes, row)} for row in rows]


def _coords(axes: Sequence[Axis], zip: bool) -> tuple[tuple[str, ...], dict[str, Any]]:
    dims = (POINT_DIM,) if zip else tuple(a.key for a in axes)
    coords: dict[str, Any] = {}
    for a in axes:
        attrs = {"description": a.doc, "symbol": a.symbol, "scenario_key": a.canonical}
        coords[a.key] = ((POINT_DIM,) if zip else (a.key,), a.values, attrs)
    if zip:
        coords[POINT_DIM] = (POINT_DIM, np.arange(axes[0].values.size), {"description": "grid point (zip)"})
    return dims, coords


def _attrs(scenario: Scenario, axes: Sequence[Axis], zip: bool, method: str, **extra: Any) -> dict[str, Any]:
    return {
        "title": f"mira-theory sweep of {scenario.game} scenario '{scenario.name}'",
        "game": scenario.game,
        "scenario_name": scenario.name,
        "scenario_path": scenario.path or "",
        "scenario_sha256": scenario.sha256,
        "scenario": scenario.source,
        "axes": json.dumps([a.key for a in axes]),
        "axis_values": json.dumps({a.key: a.values.tolist() for a in axes}),
        "zip": int(zip),
        "method": method,
        "toolkit_version": __version__,
        **extra,
    }


# --------------------------------------------------------------------------------------
# The sweep
# --------------------------------------------------------------------------------------


def sweep(scenario: Scenario | str | Path, over: Mapping[str, Any], *, zip: bool = False,
          backend: str = "inprocess", client: Any = None, workers: int | None = None,
          chunk_size: int | None = None, progress: bool | None = None, episode: bool = True) -> xr.Dataset:
    """The scenario's solution at every point of a grid of its parameters (see the module doc).

    ``backend``/``client``/``workers``: where per-point work runs (:mod:`mira_theory.backends`);
    ``chunk_size``: points per chunk of per-point work (default: about 4 chunks per worker);
    ``progress``: a tqdm bar (None: only on an interactive terminal); ``episode``: compute
    the audit game's exact stake-exhaustion margin.
    """
    from mira_theory.api import load

    if not isinstance(scenario, Scenario):
        scenario = load(scenario)
    check_backend(backend)
    axes = axes_of(scenario, over, zip)
    run = functools.partial(_run_points, backend=backend, client=client, workers=workers,
                            chunk_size=chunk_size, progress=progress)
    if scenario.game == "audit":
        return _audit_sweep(scenario, axes, zip, run, episode)  # type: ignore[arg-type]
    if scenario.game == "consensus":
        return _consensus_sweep(scenario, axes, zip, run)  # type: ignore[arg-type]
    raise ScenarioError([Problem(scenario.path or scenario.name, "scenario.game",
                                 "a game with a sweep: 'audit' or 'consensus'", repr(scenario.game))])


def _run_points(fn: Any, items: Sequence[Any], desc: str, *, backend: str, client: Any,
                workers: int | None, chunk_size: int | None, progress: bool | None) -> list[Any]:
    """fn over a list of items, in chunks on the backend; flat results in item order."""
    if not items:
        return []
    if chunk_size is None:
        parallel = 1 if backend == "inprocess" else (workers or 2) * 4
        chunk_size = max(1, math.ceil(len(items) / parallel)) if backend != "inprocess" else 16
    chunks = [list(items[i:i + chunk_size]) for i in range(0, len(items), chunk_size)]
    with progress_bar(len(items), desc, "point", progress) as bar:
        results = run_chunks(functools.partial(_map_chunk, fn), chunks, backend=backend, client=client,
                             workers=workers, weights=[len(c) for c in chunks], progress=bar)
    return [r for chunk in results for r in chunk]


def _map_chunk(fn: Any, chunk: Sequence[Any]) -> list[Any]:
    return [fn(x) for x in chunk]


# --------------------------------------------------------------------------------------
# Audit: vectorized closed forms
# --------------------------------------------------------------------------------------

# units and meanings of the closed-form quantities ("money" is the scenario's currency); the
# meanings are those of audit.derivation(), which is not called here: deriving costs seconds
AUDIT_QUANTITIES = {
    "effective_audit": ("probability", "probability an audit has a non-colluding verifier, e = 1 − rⁿ"),
    "detection_per_task": ("probability per task", "detection probability of the deviation per task, d_j"),
    "false_slash_per_task": ("probability per task", "false-slash probability of an honest task, f"),
    "payoff_honest": ("money per task", "provider's expected payoff per task, honest, U_h"),
    "payoff_deviation": ("money per task", "provider's expected payoff per task, deviating, U_j"),
    "ic_margin": ("money per task", "U_h − U_j: ≥ 0 iff honest is a best response"),
    "deterrence_sampling_rate": ("probability (may exceed 1: none ≤ 1 deters; inf: none deters)",
                                 "q*_j: smallest sampling rate that deters the deviation"),
    "deterrence_upper_rate": ("probability (inf: no upper limit)",
                              "rate above which audits make the deviation pay (false alarms > detection)"),
    "minimum_slash": ("money", "L*_j(q): smallest slash that deters the deviation at q"),
    "verifier_gain_honest": ("money per audit", "verifier's gain from auditing an honest provider, w_h"),
    "verifier_gain_deviation": ("money per audit", "verifier's gain from auditing a deviator, w_j"),
    "mixed_sampling_rate": ("probability (nan: no interior mixed equilibrium)",
                            "q°: the verifier's audit probability at the mixed equilibrium"),
    "mixed_deviation_probability": ("probability (nan: no interior mixed equilibrium)",
                                    "t°: provider's deviation probability at the mixed equilibrium"),
    "verifier_payoff_mixed": ("money per task", "verifier's payoff at the mixed equilibrium"),
    "verifier_payoff_leadership": ("money per task", "verifier's payoff committing to q (leadership)"),
    "leadership_gain": ("money per task", "leadership payoff − mixed-equilibrium payoff (verifier)"),
    "episode_tasks": ("tasks", "expected tasks cheated before the first slash settles, E[M]"),
    "minimum_total_stake": ("money", "S*_j: total stake below which a cheating episode pays"),
    "stake_margin": ("money", "S − S*_j: ≥ 0 iff the stake covers a cheating episode"),
    "capital_cost_per_task": ("money per task", "capital cost of the locked stake per task"),
    "participation_margin": ("money per task", "U_h − capital cost per task: ≥ 0 iff honest work pays"),
}
# closed-form outputs that do not depend on the deviation (solve() takes them from the first)
AUDIT_HONEST = ("effective_audit", "false_slash_per_task", "payoff_honest", "verifier_gain_honest",
                "capital_cost_per_task", "participation_margin")
# closed-form outputs whose scenario-level aggregate keeps the plain name (the per-deviation
# value is then "deviation_<name>")
AUDIT_AGGREGATED = ("deterrence_sampling_rate", "deterrence_upper_rate", "minimum_slash", "minimum_total_stake")
# episode_margin reads every argument except these (audit.episode_margin)
EPISODE_IGNORES = frozenset({"damage", "audit_cost", "bounty_share", "capital_cost"})


def margin_holds(value: Any) -> np.ndarray:
    """Vectorized :attr:`mira_theory.results.Margin.holds` (tested equal to it). There, a
    finite margin holds iff v ≥ −1e-12·max(1, |v|), +inf holds, −inf and NaN do not; for
    |v| > 1 no negative v passes, so this is exactly v ≥ −1e-12 (false for −inf and NaN)."""
    with np.errstate(invalid="ignore"):
        return np.asarray(value, float) >= -1e-12


def _audit_arguments(scenario: Any, axes: Sequence[Axis], zip: bool) -> tuple[dict[str, Any], tuple[int, ...]]:
    """closed_form arguments broadcast over a leading deviation dim + the grid dims."""
    from mira_theory.games import audit

    devs = scenario.deviations
    J = len(devs)
    grid_shape = (axes[0].values.size,) if zip else tuple(a.values.size for a in axes)
    nd = len(grid_shape)
    per_dev = [audit.arguments(scenario, d) for d in devs]
    args: dict[str, Any] = {k: v for k, v in per_dev[0].items()}
    # deviations along a leading axis (contiguous per deviation: the reductions over
    # deviations run on whole slices); the Dataset shows it last
    lead = (J,) + (1,) * nd
    for k in ("deviation_cost", "divergence"):
        args[k] = np.array([a[k] for a in per_dev], float).reshape(lead)
    by_path = {path: arg for arg, (_, path) in audit.PARAMETERS.items()}
    for i, a in enumerate(axes):
        shape = [1] + [1] * nd
        shape[1 if zip else 1 + i] = a.values.size
        values = a.values.astype(float).reshape(shape)
        if a.table is not None:
            arg = by_path[f"{a.section}.<name>.{a.field}"]
            which = np.array([d.name == a.table for d in devs]).reshape(lead)
            args[arg] = np.where(which, values, args[arg])
        else:
            args[by_path[a.canonical]] = values
    return args, grid_shape


def _over_deviations(op: Any, arr: np.ndarray) -> np.ndarray:
    """Reduce the leading deviation axis with a binary ufunc, slice by slice."""
    return functools.reduce(op, (arr[j] for j in range(arr.shape[0])))


def _max_over_deviations(arr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(max, index of the first maximum) over the leading deviation axis."""
    best = arr[0]
    index = np.zeros(best.shape, np.int16)
    for j in range(1, arr.shape[0]):
        better = arr[j] > best
        index[better] = j
        best = np.where(better, arr[j], best)
    return best, index


def _last(arr: np.ndarray) -> np.ndarray:
    """The deviation axis moved last (a view)."""
    return np.moveaxis(arr, 0, -1)


def _deviation_flags(names: Sequence[str], description: str) -> dict[str, Any]:
    """Attrs of a variable holding indices into the deviation coordinate (CF flag convention:
    integers, not strings, because string arrays cost more than the whole closed form)."""
    return {"units": "", "flag_values": list(range(len(names))), "flag_meanings": " ".join(names),
            "description": description + ": index into the 'deviation' coordinate (see kind_labels())"}


def kind_labels(ds: xr.Dataset, name: str) -> xr.DataArray:
    """A flag variable's values as labels, e.g. ``kind_labels(ds, "binding_deviation")``."""
    var = ds[name]
    meanings = np.asarray(var.attrs["flag_meanings"].split(" "), dtype=object)
    if name == "binding_deviation" and DEVIATION_DIM in ds.coords:
        meanings = np.asarray(ds[DEVIATION_DIM].values, dtype=object)  # names may contain spaces
    return var.copy(data=meanings[np.asarray(var.values, int)])


def _audit_sweep(scenario: Any, axes: Sequence[Axis], zip: bool, run: Any, episode: bool) -> xr.Dataset:
    from mira_theory.games import audit

    names = [d.name for d in scenario.deviations]
    J = len(names)
    args, grid_shape = _audit_arguments(scenario, axes, zip)
    full = (J,) + grid_shape
    cf = audit.closed_form(**args)
    dims, coords = _coords(axes, zip)
    ddims = dims + (DEVIATION_DIM,)
    coords[DEVIATION_DIM] = (DEVIATION_DIM, np.array(names, dtype=object),
                             {"description": "the dishonest strategy ([[deviation]] name)"})

    def var(dim: tuple[str, ...], data: Any, units: str, description: str) -> tuple:
        return (dim, data, {"units": units, "description": description})

    data: dict[str, Any] = {}
    per: dict[str, np.ndarray] = {k: np.broadcast_to(v, full) for k, v in cf.items()}
    for k, v in per.items():
        units, desc = AUDIT_QUANTITIES.get(k, ("", k.replace("_", " ")))
        if k in AUDIT_HONEST:
            data[k] = var(dims, v[0], units, desc)
        else:
            name = f"deviation_{k}" if k in AUDIT_AGGREGATED else k
            data[name] = var(ddims, _last(v), units, desc)

    q_dev = per["deterrence_sampling_rate"]
    with np.errstate(invalid="ignore"):
        dev_deterrable = q_dev <= 1.0 + TIE
        q_star, binding = _max_over_deviations(q_dev)  # first on ties, as solve()'s max()
        upper = np.minimum(1.0, _over_deviations(np.minimum, per["deterrence_upper_rate"]))
        deterrable = _over_deviations(np.logical_and, dev_deterrable) & (q_star <= upper + TIE)
    data["deviation_deterrable"] = var(ddims, _last(dev_deterrable), "boolean",
                                       "some sampling rate ≤ 1 deters this deviation (q*_j ≤ 1)")
    interior = np.isfinite(per["mixed_sampling_rate"])
    data["equilibrium_kind"] = (ddims, _last(interior.astype(np.int8)), {
        "units": "", "flag_values": [0, 1], "flag_meanings": "pure mixed",
        "description": "equilibrium of the honest-vs-deviation inspection game: 1 (mixed) where the closed "
                       "form has an interior mixed equilibrium, else 0 (pure: a 2×2 game without a fully "
                       "mixed equilibrium has a pure one); see kind_labels()"})
    data["deterrence_sampling_rate"] = var(dims, q_star, AUDIT_QUANTITIES["deterrence_sampling_rate"][0],
                                           "q*: max over deviations of q*_j (the binding deviation's)")
    data["deterrence_upper_rate"] = var(dims, upper, "probability",
                                        "min(1, min_j upper_j): honesty is a best response on [q*, this]")
    data["deterrable"] = var(dims, deterrable, "boolean",
                             "one sampling rate ≤ 1 deters every deviation (as AuditSolution.deterrable)")
    data["binding_deviation"] = (dims, binding.astype(np.int16), _deviation_flags(
        names, "the deviation needing the highest sampling rate (first on ties)"))
    data["minimum_slash"] = var(dims, _over_deviations(np.maximum, per["minimum_slash"]), "money",
                                "L*(q): max over deviations of the minimum deterring slash")
    data["minimum_total_stake"] = var(dims, _over_deviations(np.maximum, per["minimum_total_stake"]), "money",
                                      "S*: max over deviations of the minimum total stake")
    holds = _over_deviations(np.logical_and, margin_holds(per["ic_margin"]) & margin_holds(per["stake_margin"]))
    holds &= margin_holds(per["participation_margin"][0])
    method = ("closed forms of mira_theory.games.audit (sympy-derived, numpy-evaluated), one vectorized "
              "call over the grid")
    if episode:
        ep = _episode_margins(args, axes, zip, grid_shape)
        data["episode_margin"] = var(ddims, _last(ep), "money", "E[min(S, L·K)] − E[episode gain]: ≥ 0 iff a "
                                     "cheating episode loses in expectation (exact, audit.episode_margin)")
        holds &= _over_deviations(np.logical_and, margin_holds(ep))
        method += "; exact episode margins (audit.episode_margin, vectorized)"
    data["holds"] = var(dims, holds, "boolean",
                        "every margin holds (ic and stake per deviation, participation"
                        + (", episode per deviation)" if episode else "; episode margins NOT computed: "
                           "episode=False)"))
    return xr.Dataset(data, coords=coords, attrs=_attrs(scenario, axes, zip, method, episode=int(episode)))


def _episode_margins(args: dict[str, Any], axes: Sequence[Axis], zip: bool,
                     grid_shape: tuple[int, ...]) -> np.ndarray:
    """audit.episode_margin (vectorized) at every point and deviation, evaluated once per
    combination of the axes it depends on, then broadcast over the others."""
    from mira_theory.games import audit

    by_path = {path: arg for arg, (_, path) in audit.PARAMETERS.items()}
    J = np.shape(args["divergence"])[0]
    sub = list(grid_shape)
    if not zip:
        for i, a in enumerate(axes):
            arg = by_path[f"{a.section}.<name>.{a.field}" if a.table else a.canonical]
            if arg in EPISODE_IGNORES:
                sub[i] = 1
    take = (slice(None),) + tuple(slice(0, 1) if n == 1 else slice(None) for n in sub)
    reduced = {k: (np.asarray(v)[take[: np.ndim(v)]] if np.ndim(v) else v) for k, v in args.items()}
    values = np.asarray(audit.episode_margin(reduced), float)
    return np.broadcast_to(values, (J,) + tuple(grid_shape))


# --------------------------------------------------------------------------------------
# Consensus: per-point solves
# --------------------------------------------------------------------------------------

CONSENSUS_POINT = {  # name -> (units, description)
    "quorum": ("votes", "K = ⌈τ·N⌉ identical votes for consensus"),
    "consensus_correct": ("probability", "P(consensus right | all honest committee)"),
    "consensus_wrong": ("probability", "P(consensus wrong | all honest committee)"),
    "consensus_none": ("probability", "P(no consensus | all honest committee)"),
    "agreement_honest": ("probability", "p_h: an honest member's vote equals the consensus"),
    "false_slash_per_window": ("probability per window", "P(Binomial(W, p_h) < θW)"),
    "honest_payoff": ("money per claim", "u_h: honest node's payoff per claim"),
    "minimum_slash": ("money per window", "L*: max over deviations of the minimum deterring slash"),
    "binding_deviation": ("", "the deviation needing the largest slash"),
    "minimum_window": ("claims", "smallest window meeting both error targets (nan: none)"),
    "minimum_window_agreement_threshold": ("fraction", "θ of the minimum window (nan: none)"),
    "capture_probability": ("probability", "P(an adversary holds ≥ K seats), seats drawn with replacement"),
    "capture_probability_finite_network": ("probability", "the same without replacement (hypergeometric)"),
    "adversary_nodes": ("nodes", "round(ρ·nodes)"),
    "minimum_committee_size": ("members", "smallest N with capture ≤ max_capture at τ (nan: none)"),
    "minimum_threshold": ("fraction", "smallest τ with capture ≤ max_capture at N (nan: none)"),
    "cost_of_corruption": ("money per window", "CoC of a non-selective adversary"),
    "profit_from_corruption": ("money per window", "PfC of a non-selective adversary"),
    "false_slash_margin": ("probability", "max_false_slash − P_false"),
    "capture_margin": ("probability", "max_capture − P(capture)"),
    "collusion_margin": ("money per window", "CoC − (1 + γ)·PfC"),
    "holds": ("boolean", "every margin holds (ConsensusSolution.incentive_compatible)"),
}
CONSENSUS_DEVIATION = {
    "agreement": ("probability", "p_j: its agreement with the consensus among N − 1 honest members"),
    "detection_per_window": ("probability per window", "P(Binomial(W, p_j) < θW)"),
    "deviation_minimum_slash": ("money per window", "L*_j: minimum slash deterring this deviation"),
    "payoff_deviation": ("money per claim", "u_j: deviating node's payoff per claim"),
    "profit_over_honest": ("money per claim", "u_j − u_h"),
    "ic_margin": ("money per claim", "u_h − u_j: ≥ 0 iff honest beats the deviation"),
    "miss_margin": ("probability", "max_miss − (1 − P_detect)"),
    "equilibrium_count": ("equilibria", "symmetric equilibria of the N-player game"),
    "honest_equilibrium": ("boolean", "all members honest (σ = 0) is a symmetric equilibrium"),
    "honest_equilibrium_stable": ("boolean", "σ = 0 is a stable symmetric equilibrium"),
    "max_stable_deviation_probability": ("probability", "largest σ among stable symmetric equilibria "
                                                        "(nan: none stable)"),
    "equilibrium_kind": ("", "kinds of the symmetric equilibria, e.g. 'pure' or 'mixed+pure'"),
    "symmetric_equilibria": ("", "every symmetric equilibrium: 'σ kind stable|unstable', ';'-separated"),
}


def _num(v: Any) -> float:
    return math.nan if v is None else float(v)


def _consensus_point(scenario: Any) -> dict[str, Any]:
    """The Dataset's quantities at one point, from consensus.solve (runs in a worker)."""
    from mira_theory.games import consensus

    sol = consensus.solve(scenario)
    margins = {m.name: m.value for m in sol.margins}
    wd = sol.window_design
    point = {
        "quorum": sol.quorum, "consensus_correct": sol.outcome_honest.correct,
        "consensus_wrong": sol.outcome_honest.wrong, "consensus_none": sol.outcome_honest.none,
        "agreement_honest": sol.agreement_honest, "false_slash_per_window": sol.false_slash_per_window,
        "honest_payoff": sol.honest_payoff, "minimum_slash": sol.minimum_slash,
        "binding_deviation": [d.name for d in sol.deviations].index(sol.binding_deviation),
        "minimum_window": _num(wd.window if wd.feasible else None),
        "minimum_window_agreement_threshold": _num(wd.agreement_threshold if wd.feasible else None),
        "capture_probability": sol.capture_probability,
        "capture_probability_finite_network": sol.capture_probability_finite,
        "adversary_nodes": sol.adversary_nodes, "minimum_committee_size": _num(sol.minimum_committee),
        "minimum_threshold": _num(sol.minimum_threshold), "cost_of_corruption": sol.cost_of_corruption,
        "profit_from_corruption": sol.profit_from_corruption, "false_slash_margin": margins["false_slash"],
        "capture_margin": margins["capture"], "collusion_margin": margins["collusion"],
        "holds": sol.incentive_compatible,
    }
    devs: dict[str, list[Any]] = {k: [] for k in CONSENSUS_DEVIATION}
    for d in sol.deviations:
        eqs = d.symmetric_equilibria
        stable = [e.deviation_probability for e in eqs if e.stable]
        honest = [e for e in eqs if e.deviation_probability == 0.0]
        for k, v in (("agreement", d.agreement), ("detection_per_window", d.detection_per_window),
                     ("deviation_minimum_slash", d.minimum_slash), ("payoff_deviation", d.expected_payoff),
                     ("profit_over_honest", d.profit_over_honest), ("ic_margin", margins[f"ic[{d.name}]"]),
                     ("miss_margin", margins[f"miss[{d.name}]"]), ("equilibrium_count", len(eqs)),
                     ("honest_equilibrium", bool(honest)),
                     ("honest_equilibrium_stable", bool(honest and honest[0].stable)),
                     ("max_stable_deviation_probability", max(stable) if stable else math.nan),
                     ("equilibrium_kind", "+".join(sorted({e.kind for e in eqs}))),
                     ("symmetric_equilibria", "; ".join(
                         f"{e.deviation_probability:.6g} {e.kind} {'stable' if e.stable else 'unstable'}"
                         for e in eqs))):
            devs[k].append(v)
    return {"point": point, "deviation": devs}


def _consensus_scenarios(scenario: Scenario, axes: Sequence[Axis], zip: bool) -> list[Scenario]:
    """Every grid point's scenario, fully re-validated (cross-key checks included); one
    ScenarioError naming the first few failing points."""
    out, problems = [], []
    for changes in _point_changes(axes, zip):
        try:
            out.append(scenario.replace(changes))
        except ScenarioError as err:
            where = ", ".join(f"{k} = {v!r}" for k, v in changes.items())
            problems += [Problem(scenario.path or scenario.name, p.key, p.expected, f"{p.found} at {where}")
                         for p in err.problems]
            if len(problems) >= 5:
                break
    if problems:
        raise ScenarioError(problems)
    return out


def _consensus_sweep(scenario: Any, axes: Sequence[Axis], zip: bool, run: Any) -> xr.Dataset:
    points = _consensus_scenarios(scenario, axes, zip)
    results = run(_consensus_point, points, "consensus solves")
    grid_shape = (axes[0].values.size,) if zip else tuple(a.values.size for a in axes)
    names = [d.name for d in scenario.deviations]
    dims, coords = _coords(axes, zip)
    ddims = dims + (DEVIATION_DIM,)
    coords[DEVIATION_DIM] = (DEVIATION_DIM, np.array(names, dtype=object),
                             {"description": "the dishonest strategy ([[deviation]] name)"})
    data: dict[str, Any] = {}
    for k, (units, desc) in CONSENSUS_POINT.items():
        arr = np.array([r["point"][k] for r in results]).reshape(grid_shape)
        attrs = _deviation_flags(names, desc) if k == "binding_deviation" else {"units": units, "description": desc}
        data[k] = (dims, arr.astype(np.int16) if k == "binding_deviation" else arr, attrs)
    for k, (units, desc) in CONSENSUS_DEVIATION.items():
        arr = np.array([r["deviation"][k] for r in results])
        arr = arr.astype(object) if arr.dtype.kind == "U" else arr
        data[k] = (ddims, arr.reshape(grid_shape + (len(names),)), {"units": units, "description": desc})
    method = ("mira_theory.games.consensus.solve per grid point: exact beta-binomial committee outcomes, "
              "binomial window tails, symmetric equilibria of the N-player game")
    return xr.Dataset(data, coords=coords, attrs=_attrs(scenario, axes, zip, method))


def flat_table(ds: xr.Dataset) -> Any:
    """One row per grid point: per-deviation quantities become columns ``name[deviation]``."""
    import pandas as pd

    point_vars = [v for v in ds.data_vars if DEVIATION_DIM not in ds[v].dims]
    frame = ds[point_vars].to_dataframe()
    if DEVIATION_DIM in ds.dims:
        for dev in ds[DEVIATION_DIM].values:
            part = ds.drop_vars(point_vars).sel({DEVIATION_DIM: dev}).drop_vars(DEVIATION_DIM).to_dataframe()
            part.columns = [f"{c}[{dev}]" for c in part.columns]
            frame = pd.concat([frame, part[[c for c in part.columns if c not in frame.columns]]], axis=1)
    return frame
