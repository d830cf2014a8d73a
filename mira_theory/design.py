r"""Mechanism design for the audit game: the cheapest incentive-compatible (q, L, S, R).

:func:`design` chooses the audit sampling rate q, the slash L, the provider's total stake S
and the reward R (each free, or fixed at the scenario's value) so that honest inference is
safe and worth doing, at the least cost to the network. Symbols are those of
:mod:`mira_theory.games.audit`: e = 1 − rⁿ, ρ_j = e·δ_j(1 − β) (detection per audit),
φ = e·α (false slash per audit), gap_j = e·(δ_j(1 − β) − α), Y = seconds per year.

The exact episode check
-----------------------
Besides S ≥ S* (a necessary bound) the design enforces the exact episode check of
:func:`audit.episode_margin`: E[min(S, L·K)] ≥ the episode's expected gain, with K = 1 +
Binomial(m, d_j) slashes drawn in an episode and all of them capped by S. Its gain equals
S*_j, so the check reads E[min(S, L·K)] ≥ S*_j, and since E[min(S, L·K)] ≤ S it implies
S ≥ S*_j. It is not a posynomial constraint; it enters by an outer loop: the GP's stake
constraint is S ≥ μ_j·S*_j, and after each solve μ_j is raised to (the least S that passes
the exact check, found by bisection as the check is nondecreasing in S) / S*_j at the
design, until the design passes (at most 20 rounds; the result says how many ran and the
final μ). A local polish then works on the exact constraints themselves (scipy SLSQP from
that point, over the free variables, with IC, participation, S ≥ S* and the episode check
for every pruned type as inequality constraints; kept only if cheaper and passing): the
outer loop's μ is fixed at the point it reached and its tie-break (least slash) can leave
the episode check binding at a small slash where a larger one would allow fewer audits.
The design is exact in what it certifies (re-checked by the toolkit) and local in what it
optimises (the episode check is not convex). During the search the episode check is imposed
on the Pareto front of types in (c_h, λ) only: its margin falls with c_h, and is concave in
m = round(λT) (each task in flight adds a slash with probability d, less often as the cap S
nears), so over λ its minimum is at the largest λ or at m = 0, where (for S ≥ L) it is the IC
condition. The final verification evaluates it for every type anyway (vectorized).

Objective: the network's cost per task
--------------------------------------

    cost = R + q·n·k  [+ q·c_rem]

the reward it pays plus the audits it runs (n verifiers re-executing at k each). The
provider's capital cost of its locked stake is *not* a separate term: it is the provider's
cost, and it reaches the network through the participation constraint below, which forces
R ≥ c_h + f·(L + R) + κ·S/(λ·Y) — a larger stake must be paid for with a larger reward.

With ``verifier_remedy`` the cheapest verifier's-dilemma remedy of :mod:`mira_theory.incentives`
is added. Every remedy's cost is linear in q, so it is q·c_rem with c_rem the cheapest
remedy's cost per *audited* task (``incentives.solve`` at q = 1). c_rem is computed with the
verifiers' false-alarm bounty a₀ = e·α·b·L/n set to 0 (``bounty_weight=0``): a₀ depends on
L and lowers every remedy's cost (e.g. the audit fee is q·n·(k − a₀)⁺), so dropping it makes
the modelled cost an upper bound, exact when α·b = 0 (with the audit fee it is q·n·k: the
verifiers are paid their cost). The remedy's actual cost at the design (a₀ included) is
reported beside it.

Constraints (for every deviation j and every provider type i)
-------------------------------------------------------------
A provider type i has its own c_h,i, throughput λ_i and capital cost κ_i; the deviation
costs c_j are the scenario's. Δc_ij = c_h,i − c_j, m = ``safety_margin``.

* incentive compatibility: q·gap_j·(L + R) ≥ (1 + m)·Δc_ij when Δc_ij > 0. When auditing
  hurts honest work more than the deviation (gap_j < 0) and the deviation costs more
  (Δc_ij < 0) the constraint caps the audits: (1 + m)·q·|gap_j|·(L + R) ≤ |Δc_ij| (the
  honest advantage must exceed the deviator's by the factor 1 + m). Only the type with the
  largest c_h matters for either.
* participation: R − c_h,i − q·φ·(L + R) − κ_i·S/(λ_i·Y) ≥ 0 (audit.py's participation margin).
* stake exhaustion: S ≥ S*_ij = (1/(q·ρ_j) + λ_i·T)·(Δc_ij − q·ρ_j·R + q·φ·(L + R))⁺.
* bounds: L ≥ 0, q ≤ q_max (≤ 1), S ≤ S_max, L ≤ L_max (each on a free variable).

Formulation: a geometric program after u = L + R
------------------------------------------------
With u = L + R every constraint is a posynomial ≤ a monomial in the positive variables
(q, u, R, S): IC is the monomial (1 + m)·Δc/gap · q⁻¹u⁻¹ ≤ 1; participation is
(c_h + φ·q·u + κS/(λY))/R ≤ 1; L ≥ 0 is R/u ≤ 1; q ≤ q_max and S ≤ S_max are monomials; the
cost is a posynomial. Stake exhaustion expands to

    Δc/(qρ) + λTΔc + (φ/ρ)·u + λTφ·q·u  ≤  S + R + λTρ·q·R

(for Δc > 0 and net > 0; the (·)⁺ only relaxes it). Dropping the right-hand side's R terms
(the −d_j·R in S*, the reward the cheater forfeits on the slashed task) gives the
*conservative* posynomial bound S ≥ (1/(qρ) + λT)(Δc⁺ + qφu) — a pure GP, solved first
(``stake_bound="conservative"`` stops there). The exact constraint is a posynomial ≤
posynomial (a signomial), handled by sequential GP (the convex–concave procedure, Lipp &
Boyd 2016): the right-hand side is replaced by its AM–GM monomial underestimate at the
current point, which is an inner approximation, so every iterate satisfies the exact
constraint and the cost never rises; it converges to a KKT point of the exact problem that
is no worse than the conservative GP's optimum (``stake_bound="exact"``, the default). The
same condensation handles L ≤ L_max when R is free (u ≤ L_max + R) and IC when L is fixed
and R free (u = L + R is then a posynomial). A penalty slack keeps the condensed problems
feasible. Each GP is solved by cvxpy's DGP (``prob.solve(gp=True)``) with CLARABEL; the
result says which formulation ran.

Degenerate cases are decided before solving: a deviation that saves cost but that audits
cannot separate from honest work (gap ≤ 0) makes every design infeasible; when nothing needs
deterring and q is free, q = 0 is optimal (closed form); when the slash and the stake are
free, unbounded and costless (no L_max, no S_max, no capital cost), the infimum is approached
as q → 0, L → ∞, S → ∞ and is not attained: reported as ``unbounded`` with its value.

Heterogeneous providers
-----------------------
The scenario's ``[[provider_type]]`` tables (name, cost_honest, throughput, capital_cost,
share; shares sum to 1), or the ``provider_types`` argument (a list of such dicts, which
overrides them), must all be satisfied by one parameter set. Before solving, dominated types are pruned: IC needs
only the largest c_h; participation only the types on the upper envelope of the lines
c_h,i + (κ_i/λ_i Y)·S over S ≥ 0; stake exhaustion (nondecreasing in c_h and λ) only the
Pareto front in (c_h, λ). The remaining types enter by constraint generation: solve with a
few, evaluate every type's constraints in closed form, add the violated ones, re-solve
(exact: the final design satisfies every type). The result names the binding type of
each constraint.

Verification: the design is re-checked by the toolkit, not by cvxpy: every type's margins by
:func:`mira_theory.games.audit.closed_form` (vectorized over types) and the binding types'
by :func:`mira_theory.games.audit.solve` on ``scenario.replace({...designed values...})``.

    >>> import mira_theory as mt
    >>> from mira_theory.design import design
    >>> result = design(mt.load("models/default.toml"), S_max=1e5)
    >>> result.status, result.verified
    ('optimal', True)
"""

from __future__ import annotations

import dataclasses
import math
import time
import warnings
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mira_theory import __version__
from mira_theory.games import audit
from mira_theory.games.audit import SECONDS_PER_YEAR, AuditScenario
from mira_theory.results import FrozenDict, Provenance, fmt, freeze, html_table, jsonable, render_table
from mira_theory.scenario import Problem, ScenarioError

VARIABLES = ("sampling_rate", "slash", "total_stake", "reward")
KEYS = {"sampling_rate": "audit.sampling_rate", "slash": "stake.slash",
        "total_stake": "stake.total", "reward": "task.reward"}
SYMBOLS = {"sampling_rate": "q", "slash": "L", "total_stake": "S", "reward": "R"}
_BASE = ("q", "u", "R", "S")  # the GP's variables; u = L + R
_TIGHTEN = 1e-6  # constraints are imposed with this relative slack, so solver round-off stays feasible
_PENALTY = 100.0  # exponent of the condensation slack in the objective
_MAX_ITER = 60
_BIG = 1e12  # a designed L or S beyond this (or q below 1/_BIG) is reported as unbounded
_EPISODE_ROUNDS = 20


# --------------------------------------------------------------------------------------
# Provider types
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProviderTypes:
    """K provider types as arrays (validated)."""

    names: tuple[str, ...]
    cost_honest: np.ndarray
    throughput: np.ndarray
    capital_cost: np.ndarray
    share: np.ndarray
    from_scenario: bool = False

    def __len__(self) -> int:
        return len(self.names)

    @property
    def capital_per_stake(self) -> np.ndarray:
        """a_i = κ_i/(λ_i·Y): capital cost per task per unit of stake."""
        return self.capital_cost / (self.throughput * SECONDS_PER_YEAR)


def provider_types(scenario: AuditScenario, types: Sequence[Mapping[str, Any]] | None) -> ProviderTypes:
    """Validate provider types (every problem reported); None: the scenario's own provider."""
    st = scenario.stake
    if types is None and scenario.provider_types:  # the scenario's [[provider_type]] tables (validated)
        pt = scenario.provider_types
        return ProviderTypes(tuple(t.name for t in pt), *(np.array([getattr(t, k) for t in pt], float)
                                                          for k in ("cost_honest", "throughput", "capital_cost",
                                                                    "share")))
    if types is None:
        return ProviderTypes(("scenario",), np.array([scenario.task.cost_honest]), np.array([st.throughput]),
                             np.array([st.capital_cost]), np.array([1.0]), from_scenario=True)
    file = "provider_types"
    problems: list[Problem] = []
    rules = {"cost_honest": ("a finite number ≥ 0", lambda v: v >= 0),
             "throughput": ("a finite number > 0", lambda v: v > 0),
             "capital_cost": ("a finite number ≥ 0", lambda v: v >= 0),
             "share": ("a share in [0, 1]", lambda v: 0 <= v <= 1)}
    names: list[str] = []
    cols: dict[str, list[float]] = {k: [] for k in rules}
    seen: dict[str, int] = {}
    if len(types) == 0:
        raise ScenarioError([Problem(file, "", "at least one provider type", "an empty list")])
    for i, t in enumerate(types):
        if not isinstance(t, Mapping):
            problems.append(Problem(file, f"provider_types[{i}]", "a table", type(t).__name__))
            continue
        unknown = set(t) - {"name", *rules}
        for key in sorted(unknown):
            problems.append(Problem(file, f"provider_types[{i}].{key}",
                                    f"one of the keys {sorted({'name', *rules})}", f"unknown key {key!r}"))
        name = t.get("name", f"type-{i}")
        if not isinstance(name, str) or not name.strip():
            problems.append(Problem(file, f"provider_types[{i}].name", "a non-empty name", repr(name)))
        elif name in seen:
            problems.append(Problem(file, f"provider_types[{i}].name", "a unique name",
                                    f"{name!r}, which provider_types[{seen[name]}] already has"))
        else:
            seen[name] = i
        names.append(str(name))
        for key, (rule, ok) in rules.items():
            default = {"share": 1.0 / len(types), "capital_cost": scenario.stake.capital_cost,
                       "throughput": scenario.stake.throughput}.get(key)
            v = t.get(key, default)
            if v is None or isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) \
                    or not ok(v):
                problems.append(Problem(file, f"provider_types[{i}].{key}", rule,
                                        "nothing: the key is missing" if v is None else repr(v)))
                v = math.nan
            cols[key].append(float(v))
    if problems:
        raise ScenarioError(problems)
    return ProviderTypes(tuple(names), *(np.asarray(cols[k], float) for k in rules))


def _upper_envelope(intercept: np.ndarray, slope: np.ndarray) -> np.ndarray:
    """Indices of the lines c + a·s that are the maximum for some s ≥ 0 (ties: first index)."""
    order = np.lexsort((np.arange(len(slope)), -intercept, slope))  # slope ↑, intercept ↓
    hull: list[int] = []
    for i in order:
        if hull and slope[hull[-1]] == slope[i]:
            continue  # same slope, smaller (or equal, later) intercept
        while hull:
            j = hull[-1]
            if intercept[i] >= intercept[j]:  # steeper and higher at s = 0: j never maximal on s ≥ 0
                hull.pop()
                continue
            if len(hull) >= 2:
                k = hull[-2]
                # j is irrelevant if i overtakes k no later than j does
                if (intercept[k] - intercept[i]) * (slope[j] - slope[k]) <= \
                        (intercept[k] - intercept[j]) * (slope[i] - slope[k]):
                    hull.pop()
                    continue
            break
        hull.append(int(i))
    return np.array(sorted(hull), dtype=int)


def _pareto(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Indices not weakly dominated in (x, y), both larger-is-worse (ties: first index)."""
    order = np.lexsort((np.arange(len(x)), -y, -x))  # x ↓, then y ↓
    keep, best = [], -math.inf
    for i in order:
        if y[i] > best:
            keep.append(int(i))
            best = y[i]
    return np.array(sorted(keep), dtype=int)


# --------------------------------------------------------------------------------------
# The model: constraints as signomials in (q, u, R, S)
# --------------------------------------------------------------------------------------

Terms = list[tuple[float, tuple[int, int, int, int]]]  # Σ coef·q^a·u^b·R^c·S^d


@dataclass
class _Con:
    name: str
    kind: str  # ic | participation | stake | bound
    P: dict[tuple[int, ...], float]  # positive part
    N: dict[tuple[int, ...], float]  # the negated negative part: constraint P ≤ N
    deviation: str = ""
    type_index: int = -1


@dataclass
class _Options:
    free: frozenset[str]
    safety_margin: float
    q_max: float
    S_max: float
    L_max: float
    stake_bound: str
    remedy_per_audit: float
    episode_factor: tuple[float, ...] = ()  # μ_j ≥ 1 per deviation: the stake constraint is S ≥ μ_j·S*_j


class _Model:
    def __init__(self, scenario: AuditScenario, types: ProviderTypes, opts: _Options):
        self.sc, self.types, self.o = scenario, types, opts
        a, st = scenario.audit, scenario.stake
        self.e = 1.0 - a.collusion**a.verifiers
        self.phi = self.e * a.false_alarm_rate
        self.devs = scenario.deviations
        self.rho = np.array([self.e * d.divergence * (1.0 - a.miss_rate) for d in self.devs])
        self.gap = np.array([self.e * (d.divergence * (1.0 - a.miss_rate) - a.false_alarm_rate)
                             for d in self.devs])
        self.cj = np.array([d.cost for d in self.devs])
        self.T = st.settlement_latency
        self.audit_cost = a.verifiers * a.cost + opts.remedy_per_audit
        self.values = {"sampling_rate": a.sampling_rate, "slash": st.slash, "total_stake": st.total,
                       "reward": scenario.task.reward}
        self.ic_type = int(np.argmax(types.cost_honest))  # first on ties
        self.part_types = _upper_envelope(types.cost_honest, types.capital_per_stake)
        self.stake_types = _pareto(types.cost_honest, types.throughput)
        self.mu = np.array(opts.episode_factor or (1.0,) * len(self.devs), dtype=float)

    # fixed values ---------------------------------------------------------------
    def fixed(self, name: str) -> float | None:
        return None if name in self.o.free else float(self.values[name])

    def base_fixed(self) -> tuple[dict[str, float], float | None]:
        """Fixed base variables, and L when u must be expanded as L + R (L fixed, R free)."""
        out: dict[str, float] = {}
        qf, Lf, Sf, Rf = (self.fixed(n) for n in VARIABLES)
        if qf is not None:
            out["q"] = qf
        if Sf is not None:
            out["S"] = Sf
        if Rf is not None:
            out["R"] = Rf
        expand = None
        if Lf is not None:
            if Rf is not None:
                out["u"] = Lf + Rf
            else:
                expand = Lf
        return out, expand

    def needs_deterrence(self) -> list[int]:
        dc = self.types.cost_honest[self.ic_type] - self.cj
        return [j for j in range(len(self.devs)) if (1 + self.o.safety_margin) * dc[j] > 0]

    # signomials -----------------------------------------------------------------
    def ic_terms(self, j: int) -> Terms | None:
        dc = float(self.types.cost_honest[self.ic_type] - self.cj[j])
        g, m = float(self.gap[j]), self.o.safety_margin
        if dc > 0:
            return [((1 + m) * dc, (0, 0, 0, 0)), (-g, (1, 1, 0, 0))]
        if g < 0:
            return [((1 + m) * -g, (1, 1, 0, 0)), (dc, (0, 0, 0, 0))]
        return None  # deviating saves nothing and audits favour honesty: always holds

    def participation_terms(self, i: int) -> Terms:
        t = self.types
        return [(float(t.cost_honest[i]), (0, 0, 0, 0)), (self.phi, (1, 1, 0, 0)),
                (float(t.capital_per_stake[i]), (0, 0, 0, 1)), (-1.0, (0, 0, 1, 0))]

    def stake_terms(self, i: int, j: int, exact: bool) -> Terms | None:
        dc = float(self.types.cost_honest[i] - self.cj[j])
        lamT = float(self.types.throughput[i]) * self.T
        rho, phi = float(self.rho[j]), self.phi
        if rho <= 0:  # never detected: the episode must not pay at all (S* = ∞ otherwise)
            return [(dc, (0, 0, 0, 0)), (phi, (1, 1, 0, 0))]
        if not exact:
            dc = max(dc, 0.0)
        mu = float(self.mu[j])
        terms: Terms = [(mu * dc / rho, (-1, 0, 0, 0)), (mu * lamT * dc, (0, 0, 0, 0)),
                        (mu * phi / rho, (0, 1, 0, 0)), (mu * lamT * phi, (1, 1, 0, 0)), (-1.0, (0, 0, 0, 1))]
        if exact:
            terms += [(-mu, (0, 0, 1, 0)), (-mu * lamT * rho, (1, 0, 1, 0))]
        return terms

    def bound_terms(self) -> list[tuple[str, Terms]]:
        out: list[tuple[str, Terms]] = []
        f = self.o.free
        if "slash" in f:
            out.append(("slash ≥ 0", [(1.0, (0, 0, 1, 0)), (-1.0, (0, 1, 0, 0))]))
            if math.isfinite(self.o.L_max):
                out.append(("slash ≤ L_max", [(1.0, (0, 1, 0, 0)), (-1.0, (0, 0, 1, 0)),
                                              (-self.o.L_max, (0, 0, 0, 0))]))
        if "sampling_rate" in f:
            out.append(("sampling rate ≤ q_max", [(1.0, (1, 0, 0, 0)), (-min(self.o.q_max, 1.0), (0, 0, 0, 0))]))
        if "total_stake" in f and math.isfinite(self.o.S_max):
            out.append(("stake ≤ S_max", [(1.0, (0, 0, 0, 1)), (-self.o.S_max, (0, 0, 0, 0))]))
        return out

    def objective_terms(self) -> Terms:
        return [(1.0, (0, 0, 1, 0)), (self.audit_cost, (1, 0, 0, 0))]

    def reduce(self, terms: Terms) -> tuple[dict[tuple[int, ...], float], dict[tuple[int, ...], float]]:
        """Substitute fixed values, merge like terms, split into (P, N): the constraint is P ≤ N."""
        fixed, expand = self.base_fixed()
        out: dict[tuple[int, ...], float] = defaultdict(float)
        for c, e in terms:
            if c == 0:
                continue
            parts = [(c, list(e))]
            if e[1] and expand is not None:  # u = L + R with L fixed (u appears with exponent 1 only)
                parts = [(c * expand, [e[0], 0, e[2], e[3]]), (c, [e[0], 0, e[2] + 1, e[3]])]
            for coef, ex in parts:
                for k, var in enumerate(_BASE):
                    if var in fixed and ex[k]:
                        v = fixed[var]
                        coef = coef * (v ** ex[k] if v > 0 else (0.0 if ex[k] > 0 else math.inf))
                        ex[k] = 0
                    if coef == 0:
                        break
                if coef != 0:
                    out[tuple(ex)] += coef
        scale = max((abs(c) for c in out.values() if math.isfinite(c)), default=1.0)
        P = {e: c for e, c in out.items() if c > 1e-14 * scale}
        N = {e: -c for e, c in out.items() if c < -1e-14 * scale}
        return P, N

    def constraint(self, name: str, kind: str, terms: Terms | None, deviation: str = "",
                   type_index: int = -1) -> _Con | None:
        if terms is None:
            return None
        P, N = self.reduce(terms)
        return _Con(name, kind, P, N, deviation, type_index)

    # numeric checks (vectorized over types) ---------------------------------------
    def point(self, x: Mapping[str, float]) -> tuple[float, float, float, float]:
        """(q, L, S, R) from GP values (free) and fixed values."""
        fixed, expand = self.base_fixed()
        q = x.get("q", fixed.get("q"))
        R = x.get("R", fixed.get("R"))
        S = x.get("S", fixed.get("S"))
        if "u" in x:
            L = x["u"] - R
        elif expand is not None:
            L = expand
        else:
            L = float(self.values["slash"])
        return float(q), float(max(L, 0.0)), float(S), float(R)

    def participation_need(self, idx: np.ndarray, q: float, L: float, S: float, R: float) -> np.ndarray:
        t = self.types
        return t.cost_honest[idx] + q * self.phi * (L + R) + t.capital_per_stake[idx] * S

    def stake_need(self, j: int, idx: np.ndarray, q: float, L: float, R: float, exact: bool) -> np.ndarray:
        t = self.types
        dc = t.cost_honest[idx] - self.cj[j]
        lamT = t.throughput[idx] * self.T
        rho, phi, u, mu = float(self.rho[j]), self.phi, L + R, float(self.mu[j])
        with np.errstate(divide="ignore", invalid="ignore"):
            if rho <= 0 or q <= 0:
                return np.where(dc + q * phi * u > 0, math.inf, 0.0)
            if exact:
                net = dc - q * rho * R + q * phi * u
                return mu * np.where(net > 0, (1.0 / (q * rho) + lamT) * net, 0.0)
            return mu * (1.0 / (q * rho) + lamT) * (np.maximum(dc, 0.0) + q * phi * u)

    def episode_stake(self, j: int, i: int, q: float, L: float, R: float) -> float:
        """The least S for which type i's 'deviation j' episode loses in expectation, exactly
        (:func:`audit.episode_margin` ≥ 0, slashes capped at S); bisection, as the margin is
        nondecreasing in S. ∞ when no stake suffices (IC fails: with S ≥ L·(m + 1) no slash
        is capped and the episode check is IC times (1 + m·d))."""
        t = self.types
        args = audit.arguments(self.sc, self.devs[j])
        args.update(sampling_rate=q, slash=L, reward=R, total_stake=0.0, cost_honest=float(t.cost_honest[i]),
                    throughput=float(t.throughput[i]), capital_cost=float(t.capital_cost[i]))

        def margin(S: float) -> float:
            return audit.episode_margin({**args, "total_stake": S})

        if margin(0.0) >= 0:
            return 0.0
        m = int(round(float(t.throughput[i]) * self.T))
        hi = max(L * (m + 1), 1e-12)
        if margin(hi) < 0:
            return math.inf
        lo = 0.0
        for _ in range(200):
            mid = 0.5 * (lo + hi)
            if margin(mid) >= 0:
                hi = mid
            else:
                lo = mid
            if hi - lo <= 1e-10 * hi:
                break
        return hi


# --------------------------------------------------------------------------------------
# Solving: sequential GP with constraint generation
# --------------------------------------------------------------------------------------


@dataclass
class _Outcome:
    status: str  # optimal | infeasible | unbounded | impossible
    x: dict[str, float] = field(default_factory=dict)
    objective: float = math.nan
    iterations: int = 0
    solves: int = 0
    condensed: bool = False
    impossible: list[_Con] = field(default_factory=list)
    solver_status: str = ""
    active: dict[str, list[int]] = field(default_factory=dict)


def _monomial(coef: float, e: tuple[int, ...], V: Mapping[str, Any]) -> Any:
    expr: Any = coef
    for k, var in enumerate(_BASE):
        if e[k]:
            expr = expr * V[var] ** e[k]
    return expr


def _value(terms: Mapping[tuple[int, ...], float], x: Mapping[str, float]) -> float:
    total = 0.0
    for e, c in terms.items():
        v = c
        for k, var in enumerate(_BASE):
            if e[k]:
                v *= x[var] ** e[k]
        total += v
    return total


def _condense(N: Mapping[tuple[int, ...], float], x0: Mapping[str, float]) -> tuple[float, tuple[float, ...]]:
    """The AM–GM monomial underestimate of the posynomial N, tight at x0: (coef, exponents)."""
    vals = {e: _value({e: c}, x0) for e, c in N.items()}
    total = sum(vals.values())
    coef, expo = 1.0, [0.0] * 4
    for e, c in N.items():
        w = vals[e] / total
        if w <= 0:
            continue
        coef *= (c / w) ** w
        for k in range(4):
            expo[k] += w * e[k]
    return coef, tuple(expo)


def _gp(model: _Model, cons: list[_Con], x0: Mapping[str, float], free_base: list[str],
        objective: str = "cost", cost_cap: float | None = None,
        slack: bool = True) -> tuple[str, dict[str, float], float, float]:
    """One GP: condensed constraints at x0 with a penalty slack. Returns (status, x, goal, slack).

    ``objective``: "cost"; "tiebreak" (least S·u, else q); or a base variable ("q", "S") to minimise.
    """
    import cvxpy as cp

    V = {v: cp.Variable(pos=True, name=v) for v in free_base}
    s = None
    constraints = []
    tight = 1.0 + _TIGHTEN
    for c in cons:
        lhs = [_monomial(coef * tight, e, V) for e, coef in c.P.items()]
        if len(c.N) == 1:
            (e, coef), = c.N.items()
            rhs = _monomial(coef, e, V)
        else:
            coef, expo = _condense(c.N, x0)
            rhs = _monomial(coef, expo, V)
            if slack:
                if s is None:
                    s = cp.Variable(pos=True, name="slack")
                    constraints.append(s >= 1.0)
                rhs = rhs * s
        if not isinstance(rhs, cp.Expression) and all(not isinstance(t, cp.Expression) for t in lhs):
            if sum(lhs) > rhs:
                return "infeasible", {}, math.nan, math.nan
            continue
        constraints.append(cp.sum(cp.hstack(lhs)) <= rhs if len(lhs) > 1 else lhs[0] <= rhs)
    obj_P, _ = model.reduce(model.objective_terms())
    cost = sum(_monomial(c, e, V) for e, c in obj_P.items())
    # a constant part (a fixed reward) does not move the optimum but flattens the log-space
    # objective, which costs the solver accuracy in the variables: leave it out
    varying = [_monomial(c, e, V) for e, c in obj_P.items() if any(e)]
    if cost_cap is not None and varying:
        constraints.append(sum(varying) <= cost_cap)
    if objective == "cost":
        goal = sum(varying) if varying else cost
    elif objective in V:
        goal = V[objective]
    else:  # tie-break: the smallest stake and slash (else sampling rate) among optimal designs
        picks = [V[v] for v in ("S", "u") if v in V] or [V[v] for v in ("q", "R") if v in V][:1]
        goal = picks[0] * picks[1] if len(picks) == 2 else picks[0]
    if s is not None:
        goal = goal * s**_PENALTY
    if not isinstance(goal, cp.Expression):
        goal = cp.Constant(float(goal))
    prob = cp.Problem(cp.Minimize(goal), constraints)
    with warnings.catch_warnings():  # "may be inaccurate": every design is re-verified by the toolkit
        warnings.simplefilter("ignore")
        try:
            prob.solve(gp=True, solver=cp.CLARABEL, tol_gap_abs=1e-10, tol_gap_rel=1e-10, tol_feas=1e-10,
                       max_iter=500)
        except cp.error.SolverError:
            try:
                prob.solve(gp=True, solver=cp.SCS)
            except cp.error.SolverError:
                return "solver_error", {}, math.nan, math.nan
    status = prob.status
    if status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
        return status, {}, math.nan, math.nan
    x = {v: float(V[v].value) for v in free_base}
    value = x[objective] if objective in x else float(_value(obj_P, x))
    return status, x, value, float(s.value) if s is not None else 1.0


def _varying_cost(model: _Model, x: Mapping[str, float]) -> float:
    obj_P, _ = model.reduce(model.objective_terms())
    return _value({e: c for e, c in obj_P.items() if any(e)}, x)


def _optimize(model: _Model, goal: str = "cost") -> _Outcome:
    """Constraint generation over types × sequential GP for the signomial constraints."""
    fixed, expand = model.base_fixed()
    free_base = [v for v in _BASE if v not in fixed and not (v == "u" and expand is not None)]
    J = len(model.devs)
    exact_stake = model.o.stake_bound == "exact"

    # structural constraints (IC and bounds) and the starting point
    base_cons: list[_Con] = []
    for j, d in enumerate(model.devs):
        c = model.constraint(f"ic[{d.name}]", "ic", model.ic_terms(j), d.name, model.ic_type)
        if c is not None:
            base_cons.append(c)
    for name, terms in model.bound_terms():
        base_cons.append(model.constraint(name, "bound", terms))
    v = model.values
    x0 = {"q": max(v["sampling_rate"], 1e-3), "u": max(v["slash"], 1.0) + max(v["reward"], 1e-3),
          "R": max(v["reward"], 1e-3), "S": max(v["total_stake"], 1.0)}
    x0 = {k: x0[k] for k in free_base}
    q, L, S, R = model.point(x0)

    active_part = {int(model.part_types[np.argmax(model.participation_need(model.part_types, q, L, S, R))])}
    active_stake: dict[int, set[int]] = {}
    st = model.stake_types
    for j in range(J):
        need = model.stake_need(j, st, q, L, R, exact=False)
        active_stake[j] = {int(st[np.argmax(need)]), int(st[np.argmax(model.types.cost_honest[st])]),
                           int(st[np.argmax(model.types.throughput[st])])}

    out = _Outcome("optimal", condensed=False)
    phase_exact = False  # the conservative GP first; then the exact stake bound by condensation
    prev = math.inf
    x = dict(x0)
    for it in range(1, _MAX_ITER + 1):
        cons = list(base_cons)
        for i in sorted(active_part):
            cons.append(model.constraint(f"participation[{model.types.names[i]}]", "participation",
                                         model.participation_terms(i), type_index=i))
        for j, d in enumerate(model.devs):
            for i in sorted(active_stake[j]):
                c = model.constraint(f"stake[{d.name}]", "stake", model.stake_terms(i, j, phase_exact),
                                     d.name, i)
                if c is not None:
                    cons.append(c)
        impossible = [c for c in cons if c.P and not c.N or any(not math.isfinite(a) for a in c.P.values())]
        cons = [c for c in cons if c.P and not any(math.isinf(a) for a in c.N.values())]
        if impossible:
            return _Outcome("impossible", impossible=impossible, iterations=it)
        if not free_base:
            ok = all(_value(c.P, {}) <= _value(c.N, {}) * (1 + 1e-9) for c in cons)
            obj_P, _ = model.reduce(model.objective_terms())
            return _Outcome("optimal" if ok else "infeasible", {}, _value(obj_P, {}), it, 0)
        out.condensed = out.condensed or any(len(c.N) > 1 for c in cons)
        status, xn, cost, slack = _gp(model, cons, x, free_base, objective=goal)
        out.solves += 1
        out.solver_status = status
        if status in ("infeasible", "infeasible_inaccurate", "solver_error") or not xn:
            if not phase_exact and exact_stake:  # the conservative bound may be too strict: go exact
                phase_exact = True
                continue
            return _Outcome("infeasible", iterations=it, solves=out.solves, solver_status=status)
        q, L, S, R = model.point(xn)
        step = max(abs(math.log(xn[v]) - math.log(x[v])) for v in free_base)
        added = False
        need = model.participation_need(model.part_types, q, L, S, R)
        viol = need > R * (1 + 1e-9) + 1e-12
        if viol.any():
            worst = model.part_types[np.argsort(-(need - R))[: min(5, int(viol.sum()))]]
            new = set(map(int, worst)) - active_part
            active_part |= new
            added |= bool(new)
        for j in range(J):
            need = model.stake_need(j, st, q, L, R, exact=phase_exact)
            viol = need > S * (1 + 1e-9) + 1e-12
            if viol.any():
                worst = st[np.argsort(-need)[: min(5, int(viol.sum()))]]
                new = set(map(int, worst)) - active_stake[j]
                active_stake[j] |= new
                added |= bool(new)
        x = xn
        if added:
            continue
        if not phase_exact and exact_stake:
            phase_exact, prev = True, _varying_cost(model, xn) if goal == "cost" else cost
            continue
        varying = _varying_cost(model, xn) if goal == "cost" else cost
        converged = step <= 1e-7 or abs(prev - varying) <= 1e-9 * abs(varying)
        if (not out.condensed or converged) and slack <= 1.0 + 1e-7:
            break
        if converged and slack > 1.0 + 1e-7 and it > 5:
            return _Outcome("infeasible", iterations=it, solves=out.solves, solver_status="penalty slack > 1")
        prev = varying
    else:
        if slack > 1.0 + 1e-6:
            return _Outcome("infeasible", iterations=it, solves=out.solves, solver_status="no convergence")
    # tie-break: among (near-)optimal designs the least stake and slash
    if goal == "cost" and ("S" in free_base or "u" in free_base):
        status2, x2, cost2, slack2 = _gp(model, cons, x, free_base, objective="tiebreak",
                                         cost_cap=_varying_cost(model, x) * (1 + 1e-9), slack=False)
        out.solves += 1
        if x2 and slack2 <= 1 + 1e-7:
            q2, L2, S2, R2 = model.point(x2)
            ok = bool((model.participation_need(model.part_types, q2, L2, S2, R2) <= R2 * (1 + 1e-9) + 1e-12).all())
            ok = ok and all((model.stake_need(j, st, q2, L2, R2, exact_stake) <= S2 * (1 + 1e-9) + 1e-12).all()
                            for j in range(J))
            if ok:
                x, cost = x2, cost2
    obj_P, _ = model.reduce(model.objective_terms())
    out.x, out.objective, out.iterations = x, float(_value(obj_P, x)), it
    out.active = {"participation": sorted(active_part),
                  **{f"stake[{d.name}]": sorted(active_stake[j]) for j, d in enumerate(model.devs)}}
    return out


def _exact_margins(model: _Model, params: Mapping[str, float]) -> np.ndarray:
    """Every design constraint's margin at params, scaled to O(1), for the local polish:
    IC (with the safety margin), participation, stake and the exact episode check over the
    pruned types. ≥ 0 everywhere iff the design holds."""
    q, L, S, R = (float(params[k]) for k in VARIABLES)
    sc, t, m = model.sc, model.types, model.o.safety_margin
    design_sc_args = {"sampling_rate": q, "slash": L, "total_stake": S, "reward": R}
    # only the types pruning kept: IC's (largest c_h), participation's envelope, stake's front
    idx = np.unique(np.concatenate([[model.ic_type], model.part_types, model.stake_types]))
    ic = np.flatnonzero(idx == model.ic_type)
    part, stake = np.isin(idx, model.part_types), np.isin(idx, model.stake_types)
    out: list[float] = []
    for j, d in enumerate(model.devs):
        args = audit.arguments(sc, d)
        args.update(design_sc_args, cost_honest=t.cost_honest[idx], throughput=t.throughput[idx],
                    capital_cost=t.capital_cost[idx])
        cf = audit.closed_form(**args)
        dc = t.cost_honest[idx] - d.cost
        required = np.where(dc > 0, m * dc, np.where(model.gap[j] < 0, -m * q * model.gap[j] * (L + R), 0.0))
        out.append(float(np.min(((cf["ic_margin"] - required) / np.maximum(np.abs(dc), 1e-9))[ic])))
        out.append(float(np.min(cf["stake_margin"][stake])) / max(S, 1e-9))
        if j == 0:
            out.append(float(np.min(cf["participation_margin"][part])) / max(R, 1e-9))
        args.update(cost_honest=t.cost_honest[idx][stake], throughput=t.throughput[idx][stake],
                    capital_cost=t.capital_cost[idx][stake])
        out.extend(np.atleast_1d(audit.episode_margin(args)) / max(S, 1e-9))
    return np.array(out)


def _polish(model: _Model, params: Mapping[str, float]) -> dict[str, float] | None:
    """A local improvement of a design on the exact constraints (scipy SLSQP from the outer
    loop's point): the outer loop fixes μ at the point it reached, and its tie-break (least
    slash) can leave the episode check binding at a slash smaller than the bounds allow,
    where a larger slash would permit fewer audits. Returns a cheaper design that passes
    every exact constraint, or None."""
    from scipy import optimize

    free = [k for k in VARIABLES if k in model.o.free]
    if not free:
        return None
    start = np.array([float(params[k]) for k in free])
    scale = np.where(start > 0, start, 1.0)
    upper = {"sampling_rate": min(model.o.q_max, 1.0), "slash": model.o.L_max, "total_stake": model.o.S_max,
             "reward": math.inf}
    bounds = [(0.0 if k != "sampling_rate" else 1e-12 / scale[i], upper[k] / scale[i]) for i, k in enumerate(free)]

    def point(z: np.ndarray) -> dict[str, float]:
        return {**params, **{k: float(z[i] * scale[i]) for i, k in enumerate(free)}}

    def cost(z: np.ndarray) -> float:
        x = point(z)
        return x["reward"] + x["sampling_rate"] * model.audit_cost

    base = cost(np.ones(len(free)))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = optimize.minimize(lambda z: cost(z) / base, np.ones(len(free)), method="SLSQP", bounds=bounds,
                                    constraints=[{"type": "ineq", "fun": lambda z: _exact_margins(model, point(z))}],
                                    options={"maxiter": 100, "ftol": 1e-10})
    except (ValueError, ArithmeticError):
        return None
    if not np.all(np.isfinite(res.x)):
        return None
    x = point(res.x)
    if (_exact_margins(model, x) >= -1e-9).all() and cost(res.x) < base * (1 - 1e-9):
        return x
    return None


# --------------------------------------------------------------------------------------
# Verification by the toolkit's closed forms and solver
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DesignConstraint:
    """One constraint at the design, recomputed by the toolkit: ``margin`` ≥ ``required`` holds."""

    name: str
    kind: str  # ic | stake | participation | bound
    margin: float
    required: float  # 0, or the safety margin m·(c_h − c_j) for IC
    holds: bool
    binding: bool
    binding_type: str  # the provider type with the least margin ("" for bounds)
    equation: str
    verified_by: str

    def to_dict(self) -> dict[str, Any]:
        return jsonable({f: getattr(self, f) for f in self.__dataclass_fields__})


def _with(scenario: AuditScenario, params: Mapping[str, float], types: ProviderTypes | None = None,
          i: int | None = None) -> AuditScenario:
    changes: dict[str, Any] = {KEYS[k]: float(v) for k, v in params.items()}
    if types is not None and i is not None and not types.from_scenario:
        changes.update({"task.cost_honest": float(types.cost_honest[i]), "stake.throughput": float(types.throughput[i]),
                        "stake.capital_cost": float(types.capital_cost[i])})
    return scenario.replace(changes)  # type: ignore[return-value]


def _margins(model: _Model, params: Mapping[str, float], solve: bool) -> tuple[list[DesignConstraint], list[str]]:
    """Every constraint's margin at params over all types (closed_form, vectorized); with
    ``solve`` the binding types' margins are recomputed by audit.solve and must agree."""
    sc, t, o = model.sc, model.types, model.o
    q, L, S, R = (float(params[k]) for k in VARIABLES)
    design_sc = sc.replace({KEYS[k]: float(v) for k, v in params.items()})
    out: list[DesignConstraint] = []
    notes: list[str] = []
    per_type: dict[str, tuple[float, int, float, float]] = {}  # name -> (margin, type, required, scale)
    m = o.safety_margin
    for j, d in enumerate(model.devs):
        args = audit.arguments(design_sc, d)
        args.update(cost_honest=t.cost_honest, throughput=t.throughput, capital_cost=t.capital_cost)
        cf = audit.closed_form(**args)
        dc = t.cost_honest - d.cost
        required = np.where(dc > 0, m * dc, np.where(model.gap[j] < 0, -m * q * model.gap[j] * (L + R), 0.0))
        slack = cf["ic_margin"] - required
        i = int(np.argmin(slack))
        per_type[f"ic[{d.name}]"] = (float(cf["ic_margin"][i]), i, float(required[i]),
                                     max(abs(dc[i]), 1e-12))
        sm = cf["stake_margin"]
        i = int(np.argmin(sm))
        per_type[f"stake[{d.name}]"] = (float(sm[i]), i, 0.0, max(S, 1e-12))
        em = np.atleast_1d(audit.episode_margin(args))  # every type (vectorized), not only the front
        k = int(np.argmin(em))
        per_type[f"episode[{d.name}]"] = (float(em[k]), k, 0.0, max(S, 1e-12))
        if j == 0:
            pm = cf["participation_margin"]
            i = int(np.argmin(pm))
            per_type["participation"] = (float(pm[i]), i, 0.0, max(R, 1e-12))
    solved: dict[int, audit.AuditSolution] = {}
    equations = {"ic": "q·e·(δ_j(1−β) − α)·(L+R) − (c_h − c_j)  ≥  safety_margin·(c_h − c_j)",
                 "stake": "S − (1/d_j + λT)·(c_h − c_j − d_j·R + f·(L+R))⁺",
                 "participation": "U_h − capital_cost·S/(λ·year)",
                 "episode": "E[min(S, L·K)] − (1/d_j + m)·(c_h − c_j − d_j·R + f·(L+R)), K = 1 + Bin(m, d_j)"}
    for name, (margin, i, required, scale) in per_type.items():
        kind = name.split("[")[0]
        by = "audit.closed_form (all types)"
        if solve:
            if i not in solved:
                solved[i] = audit.solve(_with(sc, params, t, i))
            ms = {mm.name: mm.value for mm in solved[i].margins}
            check = ms[name]
            if not (math.isclose(check, margin, rel_tol=1e-9, abs_tol=1e-9 * scale) or check == margin):
                notes.append(f"{name}: audit.solve gives {check!r}, closed_form {margin!r}")
            margin = min(margin, check)
            by = "audit.solve (binding type) + audit.closed_form (all types)"
        holds = margin >= required - 1e-9 * max(1.0, scale)
        binding = holds and margin - required <= 1e-5 * scale
        out.append(DesignConstraint(name, kind, margin, required, bool(holds), bool(binding), t.names[i],
                                    equations[kind], by))
    if "sampling_rate" in o.free:
        qm = min(o.q_max, 1.0)
        out.append(DesignConstraint("sampling rate ≤ q_max", "bound", qm - q, 0.0, q <= qm * (1 + 1e-12),
                                    qm - q <= 1e-5 * qm, "", "q_max − q", "design"))
    if "total_stake" in o.free and math.isfinite(o.S_max):
        out.append(DesignConstraint("stake ≤ S_max", "bound", o.S_max - S, 0.0, S <= o.S_max * (1 + 1e-12),
                                    o.S_max - S <= 1e-5 * o.S_max, "", "S_max − S", "design"))
    if "slash" in o.free and math.isfinite(o.L_max):
        out.append(DesignConstraint("slash ≤ L_max", "bound", o.L_max - L, 0.0, L <= o.L_max * (1 + 1e-12),
                                    o.L_max - L <= 1e-5 * max(o.L_max, 1e-12), "", "L_max − L", "design"))
    return out, notes


# --------------------------------------------------------------------------------------
# The result
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DesignResult(Provenance):
    """The cheapest parameters of an audit scenario, with provenance and a verified certificate."""

    scenario: AuditScenario
    status: str  # optimal | infeasible | unbounded
    message: str  # why (infeasible/unbounded), in words
    suggestions: tuple[str, ...]  # what would have to change
    parameters: Mapping[str, float]  # sampling_rate, slash, total_stake, reward (NaN unless optimal)
    free: tuple[str, ...]
    options: Mapping[str, Any]
    objective: float  # the minimised cost per task (remedy cost bounded as in the docs)
    costs: Mapping[str, float]  # reward, audits, remedy (modelled), remedy_at_design (actual)
    remedy: str | None
    constraints: tuple[DesignConstraint, ...]
    binding: tuple[str, ...]
    binding_types: Mapping[str, str]
    provider_types: int
    pruned: Mapping[str, int]  # types left per constraint family after pruning
    formulation: str
    solver_status: str
    iterations: int
    solves: int
    seconds: float
    notes: tuple[str, ...] = ()
    toolkit_version: str = __version__
    game: str = "audit-design"

    @property
    def feasible(self) -> bool:
        return self.status == "optimal"

    @property
    def verified(self) -> bool:
        """Every constraint holds at the design, as recomputed by audit.closed_form/audit.solve."""
        return self.feasible and all(c.holds for c in self.constraints)

    def scenario_with_design(self) -> AuditScenario:
        """The scenario with the designed values (for ``solve``/``export``)."""
        if not self.feasible:
            raise ValueError(f"no design to apply: {self.status}: {self.message}")
        return self.scenario.replace({KEYS[k]: float(v) for k, v in self.parameters.items()})  # type: ignore[return-value]

    def to_dict(self) -> dict[str, Any]:
        return jsonable({
            **self.provenance(),
            "status": self.status, "message": self.message, "suggestions": list(self.suggestions),
            "verified": self.verified, "formulation": self.formulation, "solver_status": self.solver_status,
            "iterations": self.iterations, "solves": self.solves, "seconds": self.seconds,
            "free": list(self.free), "options": self.options, "parameters": self.parameters,
            "objective": self.objective, "costs": self.costs, "remedy": self.remedy,
            "constraints": [c.to_dict() for c in self.constraints], "binding": list(self.binding),
            "binding_types": self.binding_types, "provider_types": self.provider_types,
            "pruned": self.pruned, "notes": list(self.notes),
        })

    def _summary_rows(self) -> list[tuple[str, str]]:
        rows = [("scenario", f"{self.scenario.name} ({self.scenario.path or 'derived'})"),
                ("sha256", self.scenario.sha256[:16] + "…"),
                ("status", self.status + ("" if not self.feasible else
                                          " (verified by the toolkit)" if self.verified else " (NOT verified)"))]
        if self.message:
            rows.append(("why", self.message))
        for k in VARIABLES:
            tag = "designed" if k in self.free else "fixed"
            rows.append((f"{k} {SYMBOLS[k]} ({tag})", fmt(self.parameters.get(k, math.nan))))
        rows.append(("cost per task", fmt(self.objective)))
        for k, v in self.costs.items():
            rows.append((f"  {k}", fmt(v)))
        if self.remedy:
            rows.append(("verifier remedy", self.remedy))
        rows.append(("provider types", f"{self.provider_types} (after pruning: "
                     + ", ".join(f"{k} {v}" for k, v in self.pruned.items()) + ")"))
        return rows

    def _constraint_rows(self) -> list[tuple[str, ...]]:
        return [(c.name, fmt(c.margin), fmt(c.required), "holds" if c.holds else "FAILS",
                 "binding" if c.binding else "", c.binding_type) for c in self.constraints]

    def __str__(self) -> str:
        parts = [f"audit design: {self.scenario.name}", render_table(self._summary_rows())]
        if self.constraints:
            parts += ["", "constraints at the design (margin ≥ required holds)",
                      render_table(self._constraint_rows(),
                                   ("constraint", "margin", "required", "status", "", "type"))]
        if self.suggestions:
            parts += ["", "what would have to change"] + [f"- {x}" for x in self.suggestions]
        if self.notes:
            parts += ["", "notes"] + [f"- {x}" for x in self.notes]
        parts += ["", f"formulation: {self.formulation}; solver {self.solver_status}, {self.solves} GP "
                  f"solve(s), {self.seconds:.2f} s; mira-theory {self.toolkit_version}"]
        return "\n".join(parts)

    def __repr__(self) -> str:
        p = ", ".join(f"{SYMBOLS[k]}={self.parameters.get(k, math.nan):.6g}" for k in VARIABLES)
        return (f"DesignResult(scenario={self.scenario.name!r}, status={self.status!r}, {p}, "
                f"cost={self.objective:.6g}, verified={self.verified})")

    def _repr_html_(self) -> str:
        parts = [html_table(self._summary_rows(), caption=f"audit design: {self.scenario.name}")]
        if self.constraints:
            parts.append(html_table(self._constraint_rows(), ("constraint", "margin", "required", "status",
                                                              "", "type"), caption="constraints at the design"))
        if self.suggestions:
            parts.append(html_table([(x,) for x in self.suggestions], caption="what would have to change"))
        parts.append(html_table([(self.formulation,)], caption="formulation"))
        return "".join(parts)


# --------------------------------------------------------------------------------------
# Pre-checks, diagnosis, and the entry point
# --------------------------------------------------------------------------------------


def _structural(model: _Model) -> tuple[str, list[str]] | None:
    """Conflicts no choice of (q, L, S, R) can fix: (message, suggestions) or None."""
    a = model.sc.audit
    ch = float(model.types.cost_honest[model.ic_type])
    who = "" if model.types.from_scenario else f" (provider type '{model.types.names[model.ic_type]}')"
    for j in model.needs_deterrence():
        d = model.devs[j]
        if model.gap[j] > 0:
            continue
        rho = d.divergence * (1 - a.miss_rate)
        if model.e <= 0:
            why = (f"no sampling rate deters '{d.name}': every drawn verifier colludes (r = {a.collusion:g}, "
                   f"n = {a.verifiers}), so an audit never detects")
            fix = ["lower the collusion probability r below 1 or draw more verifiers"]
        else:
            why = (f"no sampling rate deters '{d.name}': false alarms α = {a.false_alarm_rate:g} "
                   f"{'equal' if model.gap[j] == 0 else 'exceed'} its detection δ(1 − β) = {rho:g}, so audits hurt "
                   f"an honest provider at least as much as one running '{d.name}', which saves "
                   f"c_h − c_j = {ch - d.cost:g}{who}")
            fix = [f"the audit must separate the two: α < δ(1 − β) = {rho:g} (fewer false alarms, or a "
                   f"comparison that detects '{d.name}' more often)",
                   f"or '{d.name}' must save nothing: c_j ≥ c_h = {ch:g}"]
        return why, fix
    m = model.o.safety_margin
    need = model.needs_deterrence()
    if not need:
        return None
    lo_j = max(need, key=lambda j: (1 + m) * (ch - model.cj[j]) / model.gap[j])
    lower = (1 + m) * (ch - model.cj[lo_j]) / model.gap[lo_j]
    for j, d in enumerate(model.devs):
        if model.gap[j] < 0 and ch - d.cost <= 0:
            upper = (d.cost - ch) / ((1 + m) * -model.gap[j])
            if upper < lower:
                why = (f"no design deters both '{model.devs[lo_j].name}' and '{d.name}': the first needs "
                       f"q·(L + R) ≥ {lower:.6g}, but '{d.name}' (costlier than honest work, yet flagged less "
                       f"often: α > δ(1 − β)) pays once q·(L + R) > {upper:.6g}")
                return why, [f"fewer false alarms (α below '{d.name}''s δ(1 − β)), or a smaller safety margin"]
    return None


def _unbounded(model: _Model) -> tuple[float, str] | None:
    """The infimum and why, when q → 0, L → ∞, S → ∞ lowers the cost without end."""
    o, t = model.o, model.types
    need = model.needs_deterrence()
    if not need or "sampling_rate" not in o.free or model.audit_cost <= 0:
        return None
    if "slash" not in o.free or math.isfinite(o.L_max):
        return None
    if "total_stake" not in o.free or math.isfinite(o.S_max) or (t.capital_cost > 0).any():
        return None
    m, ch = o.safety_margin, float(t.cost_honest[model.ic_type])
    w = max((1 + m) * (ch - model.cj[j]) / model.gap[j] for j in need)
    R = float(t.cost_honest.max()) + model.phi * w if "reward" in o.free else float(model.values["reward"])
    why = (f"unbounded: the cost falls towards {R:.6g} (the reward alone) as q → 0 with the slash "
           f"L = {w:.6g}/q − R → ∞ and the stake S → ∞, and the infimum is not attained — nothing bounds the "
           "slash (no L_max) or prices the stake (no S_max, capital cost 0)")
    return R, why


def _params_of(model: _Model, x: Mapping[str, float]) -> dict[str, float]:
    q, L, S, R = model.point(x)
    return {"sampling_rate": q, "slash": L, "total_stake": S, "reward": R}


def _diagnose(scenario: AuditScenario, types: ProviderTypes, opts: _Options) -> list[str]:
    """Relax one bound or fixed value at a time; say which change restores feasibility, and how far."""
    import dataclasses as dc

    out: list[str] = []

    def attempt(o: _Options, goal: str = "cost") -> tuple[_Model, _Outcome]:
        mdl = _Model(scenario, types, o)
        return mdl, _optimize(mdl, goal)

    def binding_at(mdl: _Model, x: Mapping[str, float]) -> str:
        cons, _ = _margins(mdl, _params_of(mdl, x), solve=False)
        names = [c.name for c in cons if c.binding and c.kind != "bound"]
        return f" (binding there: {', '.join(names)})" if names else ""

    v = _Model(scenario, types, opts).values
    if "sampling_rate" in opts.free and opts.q_max < 1:
        mdl, res = attempt(dc.replace(opts, q_max=1.0), "q")
        if res.status == "optimal":
            q = mdl.point(res.x)[0]
            out.append(f"q_max = {opts.q_max:g} is too small: the other constraints need q ≥ {q:.6g}; "
                       f"raise q_max to at least that{binding_at(mdl, res.x)}")
    if "total_stake" in opts.free and math.isfinite(opts.S_max):
        mdl, res = attempt(dc.replace(opts, S_max=math.inf), "S")
        if res.status == "optimal":
            S = mdl.point(res.x)[2]
            out.append(f"S_max = {opts.S_max:g} is below the least stake any design needs, {S:.6g}; raise "
                       f"S_max to at least that{binding_at(mdl, res.x)}")
    if "slash" in opts.free and math.isfinite(opts.L_max):
        mdl, res = attempt(dc.replace(opts, L_max=math.inf))
        if res.status == "optimal":
            L = mdl.point(res.x)[1]
            out.append(f"L_max = {opts.L_max:g} is too small: without it the cheapest design slashes "
                       f"L = {L:.6g}{binding_at(mdl, res.x)}")
    for name in VARIABLES:
        if name in opts.free:
            continue
        mdl, res = attempt(dc.replace(opts, free=opts.free | {name}))
        if res.status == "optimal":
            val = _params_of(mdl, res.x)[name]
            out.append(f"the fixed {name} {SYMBOLS[name]} = {v[name]:g} cannot work with the rest: designed "
                       f"freely it would be {val:.6g}{binding_at(mdl, res.x)}")
    if not out:
        every = dc.replace(opts, free=frozenset(VARIABLES), q_max=1.0, S_max=math.inf,
                           L_max=math.inf if math.isinf(opts.L_max) else opts.L_max * 1e6)
        mdl, res = attempt(every)
        if res.status == "optimal":
            p = _params_of(mdl, res.x)
            out.append("no single change suffices; with q, L, S and R all free and no bounds a design exists: "
                       + ", ".join(f"{SYMBOLS[k]} = {p[k]:.6g}" for k in VARIABLES))
        else:
            out.append("the constraints conflict even with q, L, S and R all free and no bounds")
    return out


def design(scenario: AuditScenario, *, free: Sequence[str] = VARIABLES, safety_margin: float = 0.0,
           q_max: float = 1.0, S_max: float = math.inf, L_max: float = math.inf,
           provider_types: Sequence[Mapping[str, Any]] | None = None,
           verifier_remedy: bool | Mapping[str, Any] = False, stake_bound: str = "exact") -> DesignResult:
    """The cheapest (q, L, S, R) for an audit scenario (model and formulation: module docstring).

    ``free``: the variables to design (the others keep the scenario's values). ``safety_margin``
    m: IC must hold with the saving inflated by 1 + m. ``q_max``, ``S_max``, ``L_max``: bounds on
    the free sampling rate, stake and slash. ``provider_types``: a list of {name, cost_honest,
    throughput, capital_cost, share} that one design must satisfy (None: the scenario's
    provider). ``verifier_remedy``: add the cheapest verifier's-dilemma remedy's cost (True, or
    a dict of :func:`mira_theory.incentives.solve` remedy parameters). ``stake_bound``: "exact"
    (sequential GP) or "conservative" (the pure GP with −d_j·R dropped).
    """
    started = time.perf_counter()
    if not isinstance(scenario, AuditScenario):
        raise ScenarioError([Problem(scenario.path or scenario.name, "scenario.game",
                                     "'audit' (design covers the audit game)", repr(scenario.game))])
    free_set = frozenset(free)
    bad = []
    if not free_set <= set(VARIABLES):
        bad.append(f"free must be a subset of {VARIABLES}, got {sorted(free_set - set(VARIABLES))}")
    if not (math.isfinite(safety_margin) and safety_margin >= 0):
        bad.append(f"safety_margin must be a finite number ≥ 0, got {safety_margin!r}")
    if not (0 < q_max <= 1):
        bad.append(f"q_max must be in (0, 1], got {q_max!r}")
    if not (S_max > 0):
        bad.append(f"S_max must be > 0, got {S_max!r}")
    if not (L_max >= 0):
        bad.append(f"L_max must be ≥ 0, got {L_max!r}")
    if stake_bound not in ("exact", "conservative"):
        bad.append(f"stake_bound must be 'exact' or 'conservative', got {stake_bound!r}")
    if bad:
        raise ValueError("; ".join(bad))
    types = globals()["provider_types"](scenario, provider_types)
    notes: list[str] = []
    if L_max == 0 and "slash" in free_set:  # L = 0 exactly: an equality the GP's positive variables can't hold
        free_set = free_set - {"slash"}
        scenario = scenario.replace({"stake.slash": 0.0})  # type: ignore[assignment]
        notes.append("L_max = 0: the slash is fixed at 0")

    remedy_params: dict[str, Any] = dict(verifier_remedy) if isinstance(verifier_remedy, Mapping) else {}
    per_audit, remedy_name = 0.0, None
    if verifier_remedy is not False:
        from mira_theory import incentives

        bound = incentives.solve(scenario.replace({"audit.sampling_rate": 1.0}),
                                 **{**remedy_params, "bounty_weight": 0.0})
        remedy_name = bound.cheapest
        per_audit = bound.remedy(remedy_name).cost_per_task if remedy_name else math.inf
    opts = _Options(free_set, float(safety_margin), float(q_max), float(S_max), float(L_max), stake_bound,
                    per_audit)
    model = _Model(scenario, types, opts)
    pruned = FrozenDict({"ic": 1, "participation": len(model.part_types), "stake": len(model.stake_types)})
    formulation = ("geometric program in (q, u = L + R, R, S) by cvxpy DGP (CLARABEL)"
                   + ("; stake exhaustion exact (the −d_j·R term kept) by sequential GP: AM–GM condensation "
                      "from the conservative GP's optimum (a local optimum no worse than it)"
                      if stake_bound == "exact" else
                      "; stake exhaustion by the conservative posynomial bound S ≥ (1/(qρ) + λT)(Δc⁺ + qφ(L+R)) "
                      "(−d_j·R dropped)")
                   + ("; provider types by pruning and constraint generation" if len(types) > 1 else ""))

    def result(status: str, message: str = "", suggestions: Sequence[str] = (), params: Mapping[str, float] | None = None,
               objective: float = math.nan, form: str = formulation, outcome: _Outcome | None = None,
               extra_notes: Sequence[str] = ()) -> DesignResult:
        params = dict(params) if params is not None else {
            k: math.nan if k in free_set else float(model.values[k]) for k in VARIABLES}
        constraints: list[DesignConstraint] = []
        all_notes = list(notes) + list(extra_notes)
        costs: dict[str, float] = {}
        actual_remedy = remedy_name
        if status == "optimal":
            constraints, check_notes = _margins(model, params, solve=True)
            all_notes += check_notes
            costs = {"reward": params["reward"], "audits": params["sampling_rate"] * model.sc.audit.verifiers
                     * model.sc.audit.cost}
            if verifier_remedy is not False:
                from mira_theory import incentives

                costs["remedy_bound"] = params["sampling_rate"] * per_audit
                actual = incentives.solve(scenario.replace({KEYS[k]: v for k, v in params.items()}), **remedy_params)
                actual_remedy = actual.cheapest
                costs["remedy_at_design"] = (actual.remedy(actual.cheapest).cost_per_task if actual.cheapest
                                             else math.inf)
        binding = tuple(c.name for c in constraints if c.binding)
        binding_types = FrozenDict({c.name: c.binding_type for c in constraints if c.binding and c.binding_type})
        return DesignResult(
            scenario=scenario, status=status, message=message, suggestions=tuple(suggestions),
            parameters=FrozenDict(params), free=tuple(k for k in VARIABLES if k in free_set),
            options=freeze({"safety_margin": safety_margin, "q_max": q_max, "S_max": S_max, "L_max": L_max,
                            "stake_bound": stake_bound, "verifier_remedy": bool(verifier_remedy is not False),
                            "remedy_parameters": remedy_params}),
            objective=objective, costs=FrozenDict(costs), remedy=actual_remedy,
            constraints=tuple(constraints), binding=binding, binding_types=binding_types,
            provider_types=len(types), pruned=pruned, formulation=form,
            solver_status=outcome.solver_status if outcome else "", iterations=outcome.iterations if outcome else 0,
            solves=outcome.solves if outcome else 0, seconds=time.perf_counter() - started, notes=tuple(all_notes))

    if math.isinf(per_audit):
        return result("infeasible", "no verifier's-dilemma remedy is feasible at this scenario "
                      "(see `mira-theory incentives`)", form="none (decided before solving)")
    conflict = _structural(model)
    if conflict:
        return result("infeasible", conflict[0], conflict[1], form="none (decided before solving)")
    unb = _unbounded(model)
    if unb:
        return result("unbounded", unb[1], ["set L_max (a largest slash), S_max (a largest stake), or give the "
                                            "stake a capital cost", "or fix the slash or the sampling rate"],
                      objective=unb[0], form="none (decided before solving)")
    if "sampling_rate" in free_set and not model.needs_deterrence():
        # nothing to deter: no audits; the least stake and slash; the reward covers the honest cost
        p = dict(model.values)
        p["sampling_rate"] = 0.0
        if "slash" in free_set:
            p["slash"] = 0.0
        if "total_stake" in free_set:
            p["total_stake"] = 0.0
        need = float((types.cost_honest + types.capital_per_stake * p["total_stake"]).max())
        form = "closed form: no deviation saves cost, so q = 0 (no audits) and R covers the honest cost"
        if "reward" in free_set:
            p["reward"] = need
        elif p["reward"] < need:
            return result("infeasible", f"the fixed reward R = {p['reward']:g} is below the honest cost "
                          f"(capital cost included) {need:.6g}", [f"raise R to at least {need:.6g}"], form=form)
        return result("optimal", params=p, objective=p["reward"], form=form)

    outcome = _optimize(model)
    episode_rounds = 0
    while outcome.status == "optimal" and episode_rounds < _EPISODE_ROUNDS:
        # the exact episode check (slashes capped at S) as an outer loop: S ≥ μ_j·S*_j, with μ_j
        # raised to the ratio (least S passing the exact check)/S*_j at the current design until
        # the design passes; the polish below then works on the exact constraints themselves
        q, L, S, R = model.point(outcome.x)
        mu = model.mu.copy()
        passes = True
        for j in range(len(model.devs)):
            for i in model.stake_types:
                star = float(model.stake_need(j, np.array([i]), q, L, R, exact=True)[0]) / model.mu[j]
                if star <= 0 or not math.isfinite(star):
                    continue
                need = model.episode_stake(j, int(i), q, L, R)
                if need > S * (1 + 1e-9):
                    passes = False
                    mu[j] = max(mu[j], need / star * (1 + 1e-6))
        if passes:
            break
        episode_rounds += 1
        opts = dataclasses.replace(opts, episode_factor=tuple(float(v) for v in mu))
        model = _Model(scenario, types, opts)
        outcome = _optimize(model)
    if episode_rounds:
        formulation += (f"; the exact episode check by {episode_rounds} outer round(s) raising the stake bound "
                        f"to S ≥ μ_j·S*_j (μ = {', '.join(f'{v:.6g}' for v in model.mu)})")
    if outcome.status == "impossible":
        fixed = ", ".join(f"{SYMBOLS[k]} = {model.values[k]:g}" for k in VARIABLES if k not in free_set)
        names = ", ".join(dict.fromkeys(c.name for c in outcome.impossible))
        return result("infeasible", f"{names} cannot hold at any positive q, L + R"
                      + (f" with {fixed} fixed" if fixed else ""),
                      _diagnose(scenario, types, opts), outcome=outcome)
    if outcome.status != "optimal":
        sugg = _diagnose(scenario, types, opts)
        return result("infeasible", "no parameter set satisfies every constraint within the bounds and fixed "
                      "values", sugg, outcome=outcome)
    params = _params_of(model, outcome.x)
    polished = _polish(model, params) if stake_bound == "exact" else None
    if polished is not None:
        params = polished
        outcome.objective = polished["reward"] + polished["sampling_rate"] * model.audit_cost
        formulation += "; then a local polish on the exact constraints (scipy SLSQP) lowered the cost"
    if params["sampling_rate"] < 1 / _BIG or params["slash"] > _BIG or params["total_stake"] > _BIG:
        return result("unbounded", "numerically unbounded: the solver drove q → 0 or L, S → ∞ "
                      f"(q = {params['sampling_rate']:.3g}, L = {params['slash']:.3g}, S = {params['total_stake']:.3g})",
                      ["set L_max or S_max"], objective=outcome.objective, outcome=outcome)
    form = formulation if outcome.condensed or stake_bound == "exact" else formulation
    return result("optimal", params=params, objective=outcome.objective, form=form, outcome=outcome)


# --------------------------------------------------------------------------------------
# The trade-off curve
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Frontier(Provenance):
    """The Pareto frontier of the locked stake against the audit cost (and the reward).

    ``table``: one row per stake cap S_max (a geometric grid): the cheapest design under that
    cap (q, L, S, R, audit cost q·n·k, reward, cost per task, status) and ``pareto``: whether
    the row is on the frontier (no other row has both less stake and a lower audit cost).
    More stake lets the network audit less: S* and the episode check fall as q rises.
    """

    scenario: AuditScenario
    against: str  # audit_cost | reward
    table: Any  # pandas.DataFrame
    seconds: float
    toolkit_version: str = __version__
    game: str = "audit-frontier"

    @property
    def pareto(self) -> Any:
        return self.table[self.table["pareto"]].reset_index(drop=True)

    def to_dict(self) -> dict[str, Any]:
        return jsonable({**self.provenance(), "against": self.against, "seconds": self.seconds,
                         "points": self.table.to_dict(orient="records")})

    def __str__(self) -> str:
        t = self.pareto
        rows = [(fmt(r.S_max), fmt(r.total_stake), fmt(r.sampling_rate), fmt(r.slash), fmt(r.reward),
                 fmt(r.audit_cost), fmt(r.cost)) for r in t.itertuples()]
        head = (f"stake against {self.against.replace('_', ' ')}: {self.scenario.name} "
                f"({len(t)} Pareto points of {len(self.table)} stake caps)")
        return head + "\n" + render_table(rows, ("S_max", "stake S", "q", "slash L", "reward R", "audit cost",
                                                 "cost/task"))

    def plot(self, ax: Any = None, path: str | None = None) -> Any:
        """Stake (x, log) against the audit cost or reward (y), the Pareto points joined."""
        import matplotlib

        if ax is None and path is not None:
            matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig = None
        if ax is None:
            fig, ax = plt.subplots(figsize=(6, 4))
        t = self.table[self.table["status"] == "optimal"]
        p = self.pareto
        ax.plot(t["total_stake"], t[self.against], "o", color="0.7", label="cheapest design per stake cap")
        ax.plot(p["total_stake"], p[self.against], "-o", color="C0", label="Pareto frontier")
        ax.set_xscale("log")
        ax.set_xlabel("locked stake S")
        ax.set_ylabel({"audit_cost": "audit cost per task q·n·k", "reward": "reward per task R"}[self.against])
        ax.set_title(f"{self.scenario.name}: stake against {self.against.replace('_', ' ')}")
        ax.legend()
        if path is not None:
            (fig or ax.figure).savefig(path, dpi=120, bbox_inches="tight")
        return ax


def frontier(scenario: AuditScenario, *, against: str = "audit_cost", points: int = 25,
             S_range: tuple[float, float] | None = None, **options: Any) -> Frontier:
    """Trace the stake/audit-cost (or stake/reward) trade-off by designing under a grid of stake caps.

    Each point is :func:`design` with ``S_max`` set to one value of a geometric grid over
    ``S_range`` (default: from the least stake the GP allows (10⁻⁴ of the uncapped design's
    stake when any stake > 0 will do) to the uncapped design's stake) and the other
    ``options`` passed through. ``design`` finds local optima (sequential GP, the episode
    outer loop): where a smaller cap's verified design is cheaper it is kept for the larger
    cap too (it is feasible there), so the curve is monotone; ``source`` says which. The stake must be free.
    """
    import pandas as pd

    started = time.perf_counter()
    if against not in ("audit_cost", "reward"):
        raise ValueError(f"against must be 'audit_cost' or 'reward', got {against!r}")
    if not (isinstance(points, int) and 2 <= points <= 1000):
        raise ValueError(f"points must be an integer from 2 to 1000, got {points!r}")
    free = tuple(options.pop("free", VARIABLES))
    if "total_stake" not in free:
        raise ValueError("the stake must be free to trace the stake trade-off (free includes 'total_stake')")
    if S_range is None:
        # from the least stake the constraints allow (the GP minimising S, a lower bound: the exact
        # episode check can only raise it; caps below the true least stake come out infeasible)
        # to the stake of the uncapped design (or 10⁴ times the least, if that is unbounded)
        opts = _Options(frozenset(free), float(options.get("safety_margin", 0.0)), float(options.get("q_max", 1.0)),
                        math.inf, float(options.get("L_max", math.inf)), options.get("stake_bound", "exact"), 0.0)
        mdl = _Model(scenario, provider_types(scenario, options.get("provider_types")), opts)
        res = _optimize(mdl, "S")
        top = design(scenario, free=free, **options)
        if res.status == "optimal":
            lo_S = max(mdl.point(res.x)[2], 1e-9)
            hi_S = float(top.parameters["total_stake"]) if top.feasible else 1e4 * lo_S
        elif res.solver_status == "unbounded" and top.feasible:  # S → 0 works (q = 1, R large)
            hi_S = float(top.parameters["total_stake"])
            lo_S = 1e-4 * hi_S
        else:
            raise ValueError("no design is feasible, so there is no frontier (see `mira-theory design`)")
        S_range = (lo_S, max(hi_S, 10 * lo_S))
    lo_S, hi_S = S_range
    if not (0 < lo_S < hi_S and math.isfinite(hi_S)):
        raise ValueError(f"S_range must be 0 < low < high < ∞, got {S_range!r}")
    rows: list[dict[str, Any]] = []
    n, k = scenario.audit.verifiers, scenario.audit.cost
    best: dict[str, Any] | None = None
    for cap in np.geomspace(lo_S, hi_S, points):
        res = design(scenario, free=free, **{**options, "S_max": float(cap)})
        p = res.parameters
        row = {"S_max": float(cap), "status": res.status, **{key: float(p[key]) for key in VARIABLES},
               "audit_cost": float(p["sampling_rate"]) * n * k, "cost": res.objective,
               "verified": res.verified, "source": "design"}
        if res.verified and best is not None and best["cost"] < row["cost"]:
            # the design is a local optimum (sequential GP, episode outer loop); a smaller cap's
            # verified design is feasible under this larger cap too, and cheaper: keep it
            row = {**best, "S_max": float(cap), "source": f"design at S_max = {best['S_max']:.6g}"}
        if row["verified"] and (best is None or row["cost"] <= best["cost"]):
            best = row
        rows.append(row)
    table = pd.DataFrame(rows)
    ok = table["status"] == "optimal"
    pareto = np.zeros(len(table), bool)
    for i in np.flatnonzero(ok):
        s, c = table.at[i, "total_stake"], table.at[i, against]
        dominated = ok & (table["total_stake"] <= s) & (table[against] <= c) & \
            ((table["total_stake"] < s * (1 - 1e-9)) | (table[against] < c - 1e-12 * max(1.0, abs(c))))
        pareto[i] = not dominated.any()
    table["pareto"] = pareto
    return Frontier(scenario, against, table, time.perf_counter() - started)
