r"""The audit game: a staked inference provider against the verifiers that sample its work.

Model (per task; symbols as in the scenario file)
-------------------------------------------------
A provider is paid R per task and runs the declared model at cost c_h, or deviates with
strategy j (a weaker model, random output, ...) at cost c_j, whose output differs detectably
from the honest one with probability δ_j. Each task is audited with probability q by n
verifiers drawn at random; a drawn verifier colludes with the provider with probability r,
so an audit is effective with probability e = 1 − rⁿ (one honest verifier suffices). An
effective audit misses a divergent output with probability β and wrongly flags an honest
one with probability α. A flagged task is slashed L and forfeits its reward R.

    d_j = q·e·δ_j·(1 − β)                 detection probability of deviation j per task
    f   = q·e·α                           false-slash probability of an honest task
    U_h = R − c_h − f·(L + R)             provider's expected payoff, honest
    U_j = R − c_j − d_j·(L + R)           provider's expected payoff, deviation j

Honest inference is a best response to q iff U_h ≥ U_j for every j, i.e.
q·e·(δ_j(1 − β) − α)·(L + R) ≥ c_h − c_j. Solving for q gives the deterrence sampling rate
q*_j, solving for L the minimum slash L*_j(q). With α = β = r = 0, n = 1, δ = 1 it is the
Proof-of-Sampling condition q·(R + L) ≥ c_h − c_j (Zhang et al. 2024, "Proof of Sampling").
If δ_j(1 − β) ≤ α (or e = 0) auditing hurts the honest provider at least as much as the
deviator, and no sampling rate deters j.

The verifier side chooses whether to audit a task. It pays n·k per audit, receives a bounty
b·L per slash it causes, and (as the protocol's agent) avoids the damage D of a divergent
output it catches. Its gain from auditing, against each provider strategy, is

    w_h = e·α·b·L − n·k                    against an honest provider
    w_j = e·δ_j·(1 − β)·(D + b·L) − n·k    against deviation j

and its payoff when it does not audit is −δ_j·D (0 against honest). The bimatrix game
(provider rows: honest and each deviation; verifier columns: audit, no audit) is an
inspection game (Avenhaus, von Stengel & Zamir 2002, "Inspection games"). Its generic mixed
equilibrium pairs the binding deviation with honesty: the verifier audits with q° = q*
(making the provider indifferent) and the provider deviates with t° = w_h / (w_h − w_j)
(making the verifier indifferent). In the leadership game the verifier commits to q first;
committing to q* makes honesty a best response, worth q*·w_h to the verifier against
−t°·δ_j·D in the simultaneous game.

Stake exhaustion (an extension of this module). A provider that has decided to leave cheats
on every task until its first slash settles: N₁ ~ Geometric(d_j) tasks up to and including
the first detected one, then the λ·T tasks in flight during the settlement latency T. Its
expected gain over being honest on those tasks, before any slash, is
E[M]·(c_h − c_j − d_j·R + f·(L + R)) with E[M] = 1/d_j + λ·T; it can lose at most its whole
stake S. So the episode pays whenever S is below

    S*_j = (1/d_j + λ·T)·(c_h − c_j − d_j·R + f·(L + R))⁺.

At the deterrence boundary (IC binding) S*_j = L·(1 + d_j·λ·T): the stake must cover the
slashes the episode is expected to draw. S ≥ S* is necessary; because the per-detection
slashes L·K (K = 1 + Binomial(λT, d_j) detections) are capped at S, sufficiency needs
E[min(S, L·K)] ≥ the episode's gain, which :func:`episode_margin` computes exactly.

Closed forms are derived once by sympy (:func:`derivation`); :func:`closed_form` evaluates
them with vectorized numpy over arrays of any parameter (property-tested equal to the
symbolic forms); :func:`bimatrix` builds the normal form at one point, solved exactly by
:mod:`mira_theory.solvers.two_column` and cross-checked against nashpy and pygambit.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import sympy as sp
from scipy import stats

from mira_theory import __version__
from mira_theory.derivation import Derived
from mira_theory.results import Equilibrium, FrozenDict, Margin, Provenance, freeze, jsonable
from mira_theory.scenario import Problem, Scenario, register_game, spec
from mira_theory.solvers import two_column

SECONDS_PER_YEAR = 365.25 * 24 * 3600

# --------------------------------------------------------------------------------------
# Scenario schema (the keys are a contract: see README)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Task:
    reward: float = spec("nonnegative", "fee paid to the provider per task", "R")
    cost_honest: float = spec("nonnegative", "provider's cost of running the declared model", "c_h")
    damage: float = spec("nonnegative", "loss from an undetected wrong output", "D")


@dataclass(frozen=True)
class Deviation:
    name: str = spec("name", "name of the dishonest strategy")
    cost: float = spec("nonnegative", "provider's cost under this deviation", "c_j")
    divergence: float = spec("probability", "probability its output differs detectably", "δ_j")


@dataclass(frozen=True)
class Audit:
    cost: float = spec("nonnegative", "cost of one verifier re-executing one task", "k")
    verifiers: int = spec("count_1e4", "verifiers drawn per audited task", "n")
    miss_rate: float = spec("probability", "probability an audit misses a divergent output", "β")
    false_alarm_rate: float = spec("probability", "probability an audit flags an honest output", "α")
    collusion: float = spec("probability", "probability a drawn verifier colludes", "r")
    bounty_share: float = spec("probability", "share of the slash paid to the verifier", "b")
    sampling_rate: float = spec("probability", "probability a task is audited (in force)", "q")
    comparison: str = spec("comparison", "how a re-execution is compared: exact or tolerance",
                           default="exact")


@dataclass(frozen=True)
class Stake:
    slash: float = spec("nonnegative", "amount slashed per detected task (in force)", "L")
    total: float = spec("nonnegative", "stake the provider has locked", "S")
    capital_cost: float = spec("nonnegative", "opportunity cost per unit of stake per year")
    throughput: float = spec("positive", "tasks per second per provider", "λ")
    settlement_latency: float = spec("nonnegative", "seconds from a task to its slash being final", "T")


@dataclass(frozen=True)
class ProviderType:
    """One kind of provider in a heterogeneous population (used by mechanism design)."""

    name: str = spec("name", "name of the provider type")
    cost_honest: float = spec("nonnegative", "this type's cost of running the declared model", "c_h,i")
    throughput: float = spec("positive", "this type's tasks per second", "λ_i")
    capital_cost: float = spec("nonnegative", "this type's cost of capital per unit of stake per year", "κ_i")
    share: float = spec("probability", "this type's share of the provider population")


@register_game("audit")
@dataclass(frozen=True)
class AuditScenario(Scenario):
    task: Task = None  # type: ignore[assignment]
    deviations: tuple[Deviation, ...] = ()
    audit: Audit = None  # type: ignore[assignment]
    stake: Stake = None  # type: ignore[assignment]
    provider_types: tuple[ProviderType, ...] = ()

    SECTIONS: ClassVar[dict[str, type]] = {"task": Task, "audit": Audit, "stake": Stake}
    ARRAYS: ClassVar[dict[str, tuple[str, type, int]]] = {"deviation": ("deviations", Deviation, 1),
                                                          "provider_type": ("provider_types", ProviderType, 0)}

    @classmethod
    def validate_extra(cls, file: str, built: Mapping[str, Any]) -> list[Problem]:
        out = [Problem(file, f"deviation[{i}].name", "a name other than 'honest'", "'honest'")
               for i, d in enumerate(built.get("deviations", ())) if d is not None and d.name == "honest"]
        types = built.get("provider_types", ())
        if types and all(t is not None for t in types):
            total = math.fsum(t.share for t in types)
            if abs(total - 1.0) > 1e-9:
                out.append(Problem(file, "provider_type", "shares that sum to 1",
                                   f"shares summing to {total:.12g}"))
        return out


# --------------------------------------------------------------------------------------
# Symbolic derivation (sympy, once)
# --------------------------------------------------------------------------------------

# argument name of the numeric closed form -> (sympy symbol name, scenario key path, LaTeX)
PARAMETERS: dict[str, tuple[str, str]] = {
    "reward": ("R", "task.reward"),
    "cost_honest": ("c_h", "task.cost_honest"),
    "damage": ("D", "task.damage"),
    "deviation_cost": ("c_j", "deviation.<name>.cost"),
    "divergence": ("delta_j", "deviation.<name>.divergence"),
    "audit_cost": ("k", "audit.cost"),
    "verifiers": ("n", "audit.verifiers"),
    "miss_rate": ("beta", "audit.miss_rate"),
    "false_alarm_rate": ("alpha", "audit.false_alarm_rate"),
    "collusion": ("r", "audit.collusion"),
    "bounty_share": ("b", "audit.bounty_share"),
    "sampling_rate": ("q", "audit.sampling_rate"),
    "slash": ("L", "stake.slash"),
    "total_stake": ("S", "stake.total"),
    "capital_cost": ("kappa", "stake.capital_cost"),
    "throughput": ("lambda", "stake.throughput"),
    "settlement_latency": ("T", "stake.settlement_latency"),
}


@functools.cache
def symbols() -> dict[str, sp.Symbol]:
    return {arg: sp.Symbol(sym, nonnegative=True) for arg, (sym, _) in PARAMETERS.items()}


@functools.cache
def derivation() -> tuple[Derived, ...]:
    """Every closed form of the audit game, derived symbolically (the one home of the maths)."""
    s = symbols()
    R, c_h, D, c_j, delta = s["reward"], s["cost_honest"], s["damage"], s["deviation_cost"], s["divergence"]
    k, n, beta, alpha, r, b = (s["audit_cost"], s["verifiers"], s["miss_rate"],
                               s["false_alarm_rate"], s["collusion"], s["bounty_share"])
    q, L, S, lam, T = s["sampling_rate"], s["slash"], s["total_stake"], s["throughput"], s["settlement_latency"]
    kappa = s["capital_cost"]
    t = sp.Symbol("t", nonnegative=True)
    e = 1 - r**n
    d = q * e * delta * (1 - beta)
    f = q * e * alpha
    U_h = R - c_h - f * (L + R)
    U_j = R - c_j - d * (L + R)
    # written in the factored form the docs use; the tests check it equals U_h − U_j
    ic = (c_j - c_h) + q * e * (delta * (1 - beta) - alpha) * (L + R)
    q_star = sp.solve(sp.Eq(ic, 0), q)[0]
    L_star = sp.solve(sp.Eq(ic, 0), L)[0]
    w_h = e * alpha * b * L - n * k
    w_j = e * delta * (1 - beta) * (D + b * L) - n * k
    t_mixed = sp.solve(sp.Eq(t * w_j + (1 - t) * w_h, 0), t)[0]
    v_mixed = -t_mixed * delta * D
    v_lead = q_star * w_h
    episode = 1 / d + lam * T
    s_star = episode * (c_h - c_j - d * R + f * (L + R))
    out = [
        Derived("effective_audit", "probability an audit has a non-colluding verifier, e", e),
        Derived("detection_per_task", "detection probability of the deviation per task, d_j", d),
        Derived("false_slash_per_task", "false-slash probability of an honest task, f", f),
        Derived("payoff_honest", "provider's expected payoff per task, honest, U_h", U_h),
        Derived("payoff_deviation", "provider's expected payoff per task, deviating, U_j", U_j),
        Derived("ic_margin", "U_h − U_j: ≥ 0 iff honest is a best response", ic),
        Derived("deterrence_sampling_rate", "q*: smallest sampling rate that deters (when c_h > c_j "
                "and δ_j(1−β) > α)", sp.simplify(q_star)),
        Derived("minimum_slash", "L*(q): smallest slash that deters at q (when δ_j(1−β) > α)",
                sp.Max(0, sp.simplify(L_star))),
        Derived("verifier_gain_honest", "verifier's gain from auditing an honest provider, w_h", w_h),
        Derived("verifier_gain_deviation", "verifier's gain from auditing a deviator, w_j", w_j),
        Derived("mixed_deviation_probability", "t°: provider's deviation probability at the mixed equilibrium",
                sp.simplify(t_mixed)),
        Derived("verifier_payoff_mixed", "verifier's payoff at the mixed equilibrium", sp.simplify(v_mixed)),
        Derived("verifier_payoff_leadership", "verifier's payoff committing to q* (provider honest)", v_lead),
        Derived("episode_tasks", "expected tasks cheated before the first slash settles, E[M]", episode),
        Derived("minimum_total_stake", "S*: total stake below which a cheating episode pays", s_star),
        Derived("stake_margin", "S − S*: ≥ 0 iff the stake covers a cheating episode", S - s_star),
        Derived("capital_cost_per_task", "capital cost of the locked stake per task",
                kappa * S / (lam * sp.Integer(31557600))),
        Derived("participation_margin", "U_h − capital cost per task: ≥ 0 iff honest work pays",
                U_h - kappa * S / (lam * sp.Integer(31557600))),
    ]
    return tuple(out)


def derived(name: str) -> Derived:
    return next(d for d in derivation() if d.name == name)


def lambdified(name: str):
    """The sympy form of one closed form as a numpy function of the PARAMETERS arguments."""
    s = symbols()
    return sp.lambdify([s[a] for a in PARAMETERS], derived(name).expr, "numpy")


# --------------------------------------------------------------------------------------
# Vectorized numeric closed forms (hand-written; tested equal to the sympy forms)
# --------------------------------------------------------------------------------------


def closed_form(reward, cost_honest, damage, deviation_cost, divergence, audit_cost, verifiers,
                miss_rate, false_alarm_rate, collusion, bounty_share, sampling_rate, slash,
                total_stake, capital_cost, throughput, settlement_latency) -> dict[str, np.ndarray]:
    """Every closed-form quantity for one deviation against honesty, broadcast over arrays.

    Non-finite values carry meaning: ``inf`` for "no finite value deters" (q* or L*), and
    ``nan`` for "no interior mixed equilibrium". q* may exceed 1 (no q ≤ 1 deters at L).
    """
    R, c_h, D = (np.asarray(x, float) for x in (reward, cost_honest, damage))
    c_j, delta = np.asarray(deviation_cost, float), np.asarray(divergence, float)
    k, n = np.asarray(audit_cost, float), np.asarray(verifiers, float)
    beta, alpha, r, b = (np.asarray(x, float) for x in (miss_rate, false_alarm_rate, collusion, bounty_share))
    q, L, S = np.asarray(sampling_rate, float), np.asarray(slash, float), np.asarray(total_stake, float)
    kappa, lam, T = (np.asarray(x, float) for x in (capital_cost, throughput, settlement_latency))

    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        e = 1.0 - r**n
        rho = e * delta * (1.0 - beta)  # detection probability of one audit
        phi = e * alpha  # false-slash probability of one audit of an honest task
        # factored so that δ(1 − β) = α gives exactly 0 whatever e is
        gap = e * (delta * (1.0 - beta) - alpha)
        d = q * rho
        f = q * phi
        saving = c_h - c_j
        LR = L + R
        U_h = R - c_h - f * LR
        U_j = R - c_j - d * LR
        ic = (c_j - c_h) + q * gap * LR
        saves = saving > 0
        gLR = gap * LR
        # the provider's indifference rate: honest is a best response for q ≥ q_ind when
        # gap > 0, and (odd but possible: false alarms exceed detection and deviating costs
        # more) for q ≤ q_ind when gap < 0
        q_ind = saving / gLR
        # q*: the smallest rate at which honest is a best response (0 if deviating saves
        # nothing; inf if auditing cannot separate the two)
        q_star = np.where(~saves, 0.0, np.where((gap > 0) & (LR > 0), q_ind, np.inf))
        q_upper = np.where(~saves & (gLR < 0), q_ind + 0.0, np.inf)  # + 0.0: no "-0"
        qgap = q * gap
        bound = saving / qgap - R  # L*(q) when qgap > 0, the largest deterring L when qgap < 0
        L_star = np.where(qgap > 0, np.maximum(bound, 0.0),
                          np.where(~saves & ((qgap == 0) | (bound >= 0)), 0.0, np.inf))
        nk = n * k
        bL = b * L
        w_h = phi * bL - nk
        w_j = rho * (D + bL) - nk
        interior = (q_ind > 0) & (q_ind < 1.0) & (w_h * w_j < 0)
        t_mixed = np.where(interior, w_h / (w_h - w_j), np.nan)
        q_mixed = np.where(interior, q_ind, np.nan)
        harm = -delta * D
        v_mixed = np.where(interior, t_mixed * harm, np.nan)

        # leadership: the verifier commits to q; the provider best-responds, ties broken in
        # the verifier's favour; the optimum is at q = 0, q = 1 or q = q_ind
        def leader(qc, ic_c, tie):
            honest, deviate = qc * w_h, harm + qc * w_j
            best = np.where(ic_c > 0, honest, np.where(ic_c < 0, deviate, np.maximum(honest, deviate)))
            return np.where(tie, np.maximum(honest, deviate), best)

        no = np.zeros_like(ic, dtype=bool)
        v_lead = np.maximum(leader(0.0, -saving, no), leader(1.0, gLR - saving, no))
        v_lead = np.maximum(v_lead, np.where((q_ind > 0) & (q_ind < 1), leader(q_ind, 0.0, ~no), -np.inf))
        net = saving - d * R + f * LR
        episode = 1.0 / d + lam * T
        S_star = np.where(net <= 0, 0.0, np.where(d > 0, episode * net, np.inf))
        capital_per_task = kappa * S / (lam * SECONDS_PER_YEAR)
    return {
        "effective_audit": e,
        "detection_per_task": d,
        "false_slash_per_task": f,
        "payoff_honest": U_h,
        "payoff_deviation": U_j,
        "ic_margin": ic,
        "deterrence_sampling_rate": q_star,
        "deterrence_upper_rate": q_upper,
        "minimum_slash": L_star,
        "verifier_gain_honest": w_h,
        "verifier_gain_deviation": w_j,
        "mixed_sampling_rate": q_mixed,
        "mixed_deviation_probability": t_mixed,
        "verifier_payoff_mixed": v_mixed,
        "verifier_payoff_leadership": v_lead,
        "leadership_gain": v_lead - v_mixed,
        "episode_tasks": episode,
        "minimum_total_stake": S_star,
        "stake_margin": S - S_star,
        "capital_cost_per_task": capital_per_task,
        "participation_margin": U_h - capital_per_task,
    }


def arguments(scenario: AuditScenario, deviation: Deviation) -> dict[str, float]:
    """The closed-form arguments at a scenario's values, for one deviation."""
    t, a, st = scenario.task, scenario.audit, scenario.stake
    return {
        "reward": t.reward, "cost_honest": t.cost_honest, "damage": t.damage,
        "deviation_cost": deviation.cost, "divergence": deviation.divergence,
        "audit_cost": a.cost, "verifiers": a.verifiers, "miss_rate": a.miss_rate,
        "false_alarm_rate": a.false_alarm_rate, "collusion": a.collusion,
        "bounty_share": a.bounty_share, "sampling_rate": a.sampling_rate, "slash": st.slash,
        "total_stake": st.total, "capital_cost": st.capital_cost, "throughput": st.throughput,
        "settlement_latency": st.settlement_latency,
    }


def episode_margin(args: Mapping[str, Any]) -> Any:
    """Exact stake-exhaustion check: E[min(S, L·K)] − the episode's expected gain.

    K = 1 + Binomial(m, d) slashes are drawn in the episode (the first detection and those
    among the m = round(λ·T) tasks in flight); all of them together can take at most S.
    Positive: the episode does not pay. Uses E[min(S, L·K)] = L·E[min(K, ⌊S/L⌋)]
    + (S − L·⌊S/L⌋)·P(K > ⌊S/L⌋), with E[min(K, ·)] in closed form (O(1) for any λ·T).
    Vectorized: array arguments broadcast (a float for scalar arguments).
    """
    cf = closed_form(**args)
    d = np.asarray(cf["detection_per_task"], float)
    f = np.asarray(cf["false_slash_per_task"], float)
    R, L, S = (np.asarray(args[k], float) for k in ("reward", "slash", "total_stake"))
    saving = np.asarray(args["cost_honest"], float) - np.asarray(args["deviation_cost"], float)
    m = np.rint(np.asarray(args["throughput"], float) * np.asarray(args["settlement_latency"], float))
    d, f, R, L, S, saving, m = np.broadcast_arrays(d, f, R, L, S, saving, m)
    per_task = saving + f * (L + R)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        gain = (1.0 / d + m) * per_task - R * (1.0 + m * d)
        # at most m + 1 slashes can happen
        full = np.where(S / L > m + 1, m + 1, np.floor(S / L))
        full = np.where((L > 0) & (S > 0), full, 0.0)
        s_ = np.maximum(full - 1, 0.0)
        # L·Σ_{x=1}^{full} P(K ≥ x) = L·E[min(K, full)], in closed form with K = 1 + B,
        # B ~ Binomial(m, d), B' ~ Binomial(m − 1, d): E[min(B, s)] = m·d − E[(B − s)⁺] and
        # E[B·1{B ≥ s + 1}] = m·d·P(B' ≥ s), so no sum over up to λ·T terms is needed
        tail_b1 = np.where(m >= 1, stats.binom.sf(s_ - 1, np.maximum(m - 1, 0), d), 0.0)  # P(B' ≥ s)
        tail_b = stats.binom.sf(s_, m, d)  # P(B ≥ s + 1)
        expected = np.where(full == 0, 0.0, L * (1.0 + m * d - (m * d * tail_b1 - s_ * tail_b)))
        # the partial unit beyond ⌊S/L⌋ slashes
        expected = expected + np.where((full <= m) & (L > 0) & (S > 0),
                                       (S - L * full) * stats.binom.sf(full - 1, m, d), 0.0)
        out = np.where((L <= 0) | (S <= 0), -gain, expected - gain)
        out = np.where(d <= 0, np.where(per_task <= 0, np.inf, -np.inf), out)
    return float(out) if out.ndim == 0 else out


# --------------------------------------------------------------------------------------
# The normal form at one point
# --------------------------------------------------------------------------------------

VERIFIER_STRATEGIES = ("audit", "no-audit")


def bimatrix(scenario: AuditScenario) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Payoff arrays (provider A, verifier B), rows honest + deviations, columns audit/not.

    Entries are the players' expected payoffs per task given the pure pair; the verifier's
    mixed strategy is the sampling rate q.
    """
    rows = ["honest", *(d.name for d in scenario.deviations)]
    A = np.zeros((len(rows), 2))
    B = np.zeros((len(rows), 2))
    for i, dev in enumerate([None, *scenario.deviations]):
        args = arguments(scenario, dev or Deviation("honest", scenario.task.cost_honest, 0.0))
        audit = closed_form(**{**args, "sampling_rate": 1.0})
        if dev is None:
            A[i] = [audit["payoff_honest"], scenario.task.reward - scenario.task.cost_honest]
            B[i] = [audit["verifier_gain_honest"], 0.0]
        else:
            A[i] = [audit["payoff_deviation"], scenario.task.reward - dev.cost]
            harm = -dev.divergence * scenario.task.damage
            B[i] = [harm + audit["verifier_gain_deviation"], harm]
    return A, B, rows


# --------------------------------------------------------------------------------------
# Solving a scenario
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeviationResult:
    name: str
    deterrence_sampling_rate: float  # inf: no q deters; > 1: none ≤ 1 deters at the slash
    deterrence_upper_rate: float  # inf unless audits above it make the deviation pay (α > δ(1−β))
    deterrable: bool
    reason: str
    minimum_slash: float
    minimum_total_stake: float
    detection_per_task: float
    expected_payoff: float
    ic_margin: float
    stake_margin: float
    episode_margin: float
    mixed_sampling_rate: float
    mixed_deviation_probability: float

    def to_dict(self) -> dict[str, Any]:
        d = jsonable({k: getattr(self, k) for k in self.__dataclass_fields__})
        if not self.deterrable:
            d["deterrence_sampling_rate"] = None
        d["deterrence_sampling_rate_unbounded"] = jsonable(self.deterrence_sampling_rate)
        return d


@dataclass(frozen=True)
class AuditSolution(Provenance):
    """Everything the toolkit derives for an audit scenario, with its provenance."""

    scenario: AuditScenario
    deviations: tuple[DeviationResult, ...]
    binding_deviation: str
    deterrence_sampling_rate: float
    deterrable: bool
    minimum_slash: float
    minimum_total_stake: float
    honest_payoff: float
    false_slash_per_task: float
    equilibria: tuple[Equilibrium, ...]
    leadership: Equilibrium
    leadership_gain: float
    margins: tuple[Margin, ...]
    degenerate: bool
    degeneracies: tuple[str, ...]
    method: str
    toolkit_version: str = __version__
    game: str = "audit"

    @property
    def incentive_compatible(self) -> bool:
        return all(m.holds for m in self.margins)

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.provenance(),
            "deterrence_sampling_rate": jsonable(self.deterrence_sampling_rate) if self.deterrable else None,
            "deterrence_sampling_rate_unbounded": jsonable(self.deterrence_sampling_rate),
            "minimum_slash": jsonable(self.minimum_slash),
            "minimum_slash_deviation": max(self.deviations, key=lambda d: d.minimum_slash).name,
            "minimum_total_stake": jsonable(self.minimum_total_stake),
            "minimum_total_stake_deviation": max(self.deviations, key=lambda d: d.minimum_total_stake).name,
            "binding_deviation": self.binding_deviation,
            "sampling_rate": self.scenario.audit.sampling_rate,
            "slash": self.scenario.stake.slash,
            "total_stake": self.scenario.stake.total,
            "honest": {"expected_payoff": jsonable(self.honest_payoff),
                       "false_slash_per_task": jsonable(self.false_slash_per_task)},
            "deviations": {d.name: d.to_dict() for d in self.deviations},
            "equilibria": [e.to_dict() for e in self.equilibria],
            "leadership": {**self.leadership.to_dict(), "gain_over_simultaneous": jsonable(self.leadership_gain)},
            "margins": [m.to_dict() for m in self.margins],
            "incentive_compatible": self.incentive_compatible,
            "degenerate": self.degenerate,
            "degeneracies": list(self.degeneracies),
        }

    # readable forms -------------------------------------------------------------
    def _summary_rows(self) -> list[tuple[str, str]]:
        from mira_theory.results import fmt

        q = fmt(self.deterrence_sampling_rate) if self.deterrable else (
            f"none ≤ 1 ({fmt(self.deterrence_sampling_rate)})")
        return [
            ("scenario", f"{self.scenario.name} ({self.scenario.path or 'derived'})"),
            ("sha256", self.scenario.sha256[:16] + "…"),
            ("binding deviation", self.binding_deviation),
            ("deterrence sampling rate q*", q),
            ("sampling rate in force q", fmt(self.scenario.audit.sampling_rate)),
            ("minimum slash L*(q)", f"{fmt(self.minimum_slash)} "
                                    f"({max(self.deviations, key=lambda d: d.minimum_slash).name})"),
            ("slash in force L", fmt(self.scenario.stake.slash)),
            ("minimum total stake S*", f"{fmt(self.minimum_total_stake)} "
                                       f"({max(self.deviations, key=lambda d: d.minimum_total_stake).name})"),
            ("total stake S", fmt(self.scenario.stake.total)),
            ("honest payoff per task", fmt(self.honest_payoff)),
            ("leadership gain (verifier)", fmt(self.leadership_gain)),
            ("incentive compatible", fmt(self.incentive_compatible)),
        ]

    def _tables(self) -> list[tuple[str, tuple[str, ...], list[tuple[str, ...]]]]:
        from mira_theory.results import fmt

        devs = [(d.name, fmt(d.deterrence_sampling_rate), fmt(d.minimum_slash),
                 fmt(d.minimum_total_stake), fmt(d.detection_per_task), fmt(d.expected_payoff),
                 d.reason) for d in self.deviations]
        eqs = [(e.kind, e.describe(), fmt(e.payoffs["provider"]), fmt(e.payoffs["verifier"]),
                fmt(max(e.regret.values()))) for e in (*self.equilibria, self.leadership)]
        margins = [(m.name, fmt(m.value), "holds" if m.holds else "FAILS", m.equation)
                   for m in self.margins]
        return [
            ("deviations", ("deviation", "q*", "L*(q)", "S*", "detect/task", "payoff", "note"), devs),
            ("equilibria", ("kind", "strategies", "provider", "verifier", "max regret"), eqs),
            ("margins (≥ 0 holds)", ("constraint", "margin", "status", "equation"), margins),
        ]

    def __str__(self) -> str:
        from mira_theory.results import render_table

        parts = [f"audit game: {self.scenario.name}", render_table(self._summary_rows())]
        for title, header, rows in self._tables():
            parts += ["", title, render_table(rows, header)]
        if self.degeneracies:
            parts += ["", "degeneracies"] + [f"- {x}" for x in self.degeneracies]
        parts += ["", f"method: {self.method}; mira-theory {self.toolkit_version}"]
        return "\n".join(parts)

    def __repr__(self) -> str:
        q = self.deterrence_sampling_rate
        return (f"AuditSolution(scenario={self.scenario.name!r}, binding={self.binding_deviation!r}, "
                f"q*={q:.6g}, L*={self.minimum_slash:.6g}, S*={self.minimum_total_stake:.6g}, "
                f"incentive_compatible={self.incentive_compatible})")

    def _repr_html_(self) -> str:
        from mira_theory.results import html_table

        parts = [html_table([(a, b) for a, b in self._summary_rows()],
                            caption=f"audit game: {self.scenario.name}")]
        for title, header, rows in self._tables():
            parts.append(html_table(rows, header, caption=title))
        return "".join(parts)


def _deviation_result(scenario: AuditScenario, dev: Deviation) -> DeviationResult:
    args = arguments(scenario, dev)
    cf = {k: float(v) for k, v in closed_form(**args).items()}
    a = scenario.audit
    q_star = cf["deterrence_sampling_rate"]
    saving = scenario.task.cost_honest - dev.cost
    e = cf["effective_audit"]
    rho = e * dev.divergence * (1 - a.miss_rate)
    phi = e * a.false_alarm_rate
    gap = e * (dev.divergence * (1 - a.miss_rate) - a.false_alarm_rate)  # as in closed_form
    if saving <= 0 and math.isfinite(cf["deterrence_upper_rate"]):
        reason = (f"deters only while q ≤ {cf['deterrence_upper_rate']:.6g}: false alarms (effective "
                  f"α = {phi:g}) exceed detection (δ(1 − β) = {rho:g}), so frequent audits make "
                  f"'{dev.name}' pay despite its higher cost")
    elif saving <= 0:
        reason = f"deviating saves nothing (c_j = {dev.cost:g} ≥ c_h = {scenario.task.cost_honest:g})"
    elif cf["effective_audit"] <= 0:
        reason = ("no sampling rate deters: every drawn verifier colludes (r = 1), "
                  "so an audit never detects")
    elif gap <= 0:
        reason = (f"no sampling rate deters: false alarms α = {phi:g} (effective) are at least "
                  f"its detection δ(1 − β) = {rho:g}, so audits hurt honest providers as much")
    elif q_star > 1.0 + 1e-12:
        reason = (f"no sampling rate ≤ 1 deters at slash L = {scenario.stake.slash:g}: "
                  f"it would take q = {q_star:.4g}; at q = 1 a slash of "
                  f"{max(saving / gap - scenario.task.reward, 0.0):.4g} deters")
    else:
        reason = ""
    return DeviationResult(
        name=dev.name, deterrence_sampling_rate=q_star, deterrence_upper_rate=cf["deterrence_upper_rate"],
        deterrable=q_star <= 1.0 + 1e-12, reason=reason,
        minimum_slash=cf["minimum_slash"], minimum_total_stake=cf["minimum_total_stake"],
        detection_per_task=cf["detection_per_task"], expected_payoff=cf["payoff_deviation"],
        ic_margin=cf["ic_margin"], stake_margin=cf["stake_margin"],
        episode_margin=episode_margin(args), mixed_sampling_rate=cf["mixed_sampling_rate"],
        mixed_deviation_probability=cf["mixed_deviation_probability"],
    )


def _profile(rows: list[str], x: np.ndarray, q: float, A: np.ndarray, B: np.ndarray,
             kind: str, component: int = 0, note: str = "") -> Equilibrium:
    y = np.array([q, 1 - q])
    row_regret, col_regret = two_column.regrets(A, B, x, q)
    return Equilibrium(
        kind=kind,
        strategies=freeze({"provider": {r: float(p) for r, p in zip(rows, x, strict=True)},
                           "verifier": dict(zip(VERIFIER_STRATEGIES, map(float, y), strict=True))}),
        payoffs=FrozenDict(provider=float(x @ A @ y), verifier=float(x @ B @ y)),
        # a commitment is not a simultaneous best response: only the follower's regret counts
        regret=FrozenDict(provider=row_regret) if kind == "leadership" else
        FrozenDict(provider=row_regret, verifier=col_regret),
        component=component, note=note,
    )


def solve(scenario: AuditScenario, tol: float = 1e-9) -> AuditSolution:
    """Solve an audit scenario: thresholds, equilibria, leadership, stake, margins."""
    devs = tuple(_deviation_result(scenario, d) for d in scenario.deviations)
    binding = max(devs, key=lambda d: d.deterrence_sampling_rate)  # first on ties
    # honest is a best response on [max_j q*_j, min_j upper_j]: every deviation's interval
    lower = binding.deterrence_sampling_rate
    capper = min(devs, key=lambda d: d.deterrence_upper_rate)
    upper = min(1.0, capper.deterrence_upper_rate)
    deterrable = all(d.deterrable for d in devs) and lower <= upper + 1e-12
    A, B, rows = bimatrix(scenario)
    res = two_column.solve(A, B, tol)
    eqs = []
    for e in res.equilibria:
        pure = bool(np.isclose(e.row.max(), 1.0) and (e.q in (0.0, 1.0)))
        eqs.append(_profile(rows, e.row, e.q, A, B, "pure" if pure else "mixed", e.component))
    lead = two_column.leadership(A, B, tol)
    x = np.zeros(len(rows))
    x[lead.response] = 1.0
    lead_eq = _profile(rows, x, lead.q, A, B, "leadership", note=(
        "the provider is indifferent at the committed rate; committing to any q above it "
        "makes its response strict" if lead.tie else ""))
    # gain from commitment against the simultaneous equilibrium best for the verifier
    # (a finite bimatrix game always has an equilibrium; the enumerator is exhaustive)
    simultaneous = max(e.payoffs["verifier"] for e in eqs)
    first = arguments(scenario, scenario.deviations[0])
    honest_cf = closed_form(**first)
    degeneracies = list(res.degeneracies)
    if all(d.deterrable for d in devs) and not deterrable:
        degeneracies.append(
            f"no sampling rate deters every deviation: '{binding.name}' needs q ≥ {lower:.6g} but "
            f"'{capper.name}' needs q ≤ {capper.deterrence_upper_rate:.6g}")
    for d in devs:
        if not d.deterrable:
            degeneracies.append(f"{d.name}: {d.reason}")
        elif abs(d.ic_margin) <= tol * max(1.0, abs(d.expected_payoff)):
            degeneracies.append(f"{d.name}: the sampling rate in force is exactly q* = "
                                f"{d.deterrence_sampling_rate:.6g}; the provider is indifferent")
    margins = []
    for d in devs:
        margins.append(Margin(f"ic[{d.name}]", d.ic_margin, "q·e·(δ_j(1−β) − α)·(L+R) − (c_h − c_j)",
                              f"honest beats '{d.name}' per task"))
    for d in devs:
        margins.append(Margin(f"stake[{d.name}]", d.stake_margin, "S − (1/d_j + λT)·(c_h − c_j − d_j·R + f·(L+R))⁺",
                              f"a '{d.name}' cheating episode cannot gain more than the stake"))
        margins.append(Margin(f"episode[{d.name}]", d.episode_margin, "E[min(S, L·K)] − E[episode gain]",
                              f"a '{d.name}' cheating episode loses in expectation (exact)"))
    margins.append(Margin("participation", float(honest_cf["participation_margin"]),
                          "U_h − capital_cost·S/(λ·year)",
                          "an honest provider profits after the capital cost of its stake"))
    return AuditSolution(
        scenario=scenario, deviations=devs, binding_deviation=binding.name,
        deterrence_sampling_rate=binding.deterrence_sampling_rate,
        deterrable=deterrable,
        minimum_slash=max(d.minimum_slash for d in devs),
        minimum_total_stake=max(d.minimum_total_stake for d in devs),
        honest_payoff=float(honest_cf["payoff_honest"]),
        false_slash_per_task=float(honest_cf["false_slash_per_task"]),
        equilibria=tuple(eqs), leadership=lead_eq, leadership_gain=lead.leader_payoff - simultaneous,
        margins=tuple(margins), degenerate=res.degenerate or bool(degeneracies),
        degeneracies=tuple(dict.fromkeys(degeneracies)),
        method="closed forms (sympy-derived, numpy-evaluated); equilibria by exact enumeration "
               "of the (1+J)×2 inspection game; leadership by strong Stackelberg commitment",
    )


def derived_cases(scenario: AuditScenario) -> tuple[list, dict[str, dict[str, float]]]:
    """(substitutions, numeric values) per deviation for ``derive``."""
    return substitutions(scenario), derived_values(scenario)


def derived_values(scenario: AuditScenario) -> dict[str, dict[str, float]]:
    """Every derived quantity at the scenario, per deviation, from the numeric closed forms."""
    names = {d.name for d in derivation()}
    return {d.name: {k: float(v) for k, v in closed_form(**arguments(scenario, d)).items() if k in names}
            for d in scenario.deviations}


def substitutions(scenario: AuditScenario) -> list[tuple[str, dict[sp.Symbol, float]]]:
    """One substitution of every symbol per deviation (the cases shown by ``derive``)."""
    s = symbols()
    return [(d.name, {s[k]: v for k, v in arguments(scenario, d).items()})
            for d in scenario.deviations]
