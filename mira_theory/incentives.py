r"""Verifier incentives: the verifier's dilemma in the audit game, and what it costs to fix.

The audit game (:mod:`mira_theory.games.audit`) assumes that a drawn verifier re-executes the
task. Re-execution costs it k; if it is paid only from bounties and providers are honest there
is nothing to catch, so a rational verifier stops checking, after which providers stop being
honest (the verifier's dilemma: Luu, Teutsch, Kulkarni & Saxena 2015, "Demystifying
incentives in the consensus computer", CCS). This module solves that game and prices three
remedies. Symbols are the audit scenario's (R, c_h, D, c_j, δ_j, k, n, β, α, r, b, q, L).

The checker game (per deviation j)
----------------------------------
A task is audited with probability q (the rate in force) and shown to n drawn verifiers; a
drawn verifier colludes with probability r, so e = 1 − rⁿ as in the audit game. The provider
chooses *cheat* (deviation j) or *honest* before it knows whether it will be audited; the
verifier side chooses, per assignment, *check* (re-execute, k per verifier) or *skip* (sign
off unchecked). The n drawn verifiers are treated as one team that checks or skips together
and splits everything equally, so one verifier's payoff is the team's divided by n (same
equilibria). Free-riding among the n verifiers is analysed where it bites, for the jackpot.

The verifier's reward from a catch counts the bounty with weight ω_b and the damage avoided
with weight ω_D (``bounty_weight``, ``damage_weight``; 1 and 1 = a protocol-aligned verifier,
1 and 0 = a mercenary one): b̃ = ω_b·b, D̃ = ω_D·D. Per verifier and assignment,

    w_h = (e·α·b̃L − n·k)/n                     gain from checking an honest provider
    w_j = (e·δ_j(1 − β)·(D̃ + b̃L) − n·k)/n      gain from checking a deviator

and skipping costs −δ_j·D̃/n against a deviator (0 against honest). The provider, per task,
gets R − c_h − q·y·e·α·(L + R) honest and R − c_j − q·y·e·δ_j(1 − β)·(L + R) cheating when the
verifiers check with probability y. The dilemma is w_h < 0: against an honest provider
checking does not pay. Then (honest, check) is not an equilibrium, and when w_j > 0 and
checking every assignment deters (q ≥ q*_j) neither is any pure profile. The mixed
equilibrium makes each player indifferent (as in the cheater-checking game of Arbitrum:
Kalodner, Goldfeder, Chen, Weinberg & Felten 2018, "Arbitrum: Scalable, private smart
contracts", USENIX Security):

    X*_j = −w_h/(w_j − w_h) = (n·k − e·α·b̃L) / (e·δ_j(1 − β)(D̃ + b̃L) − e·α·b̃L)   cheating rate
    y*_j = (c_h − c_j) / (q·e·(δ_j(1 − β) − α)·(L + R)) = q*_j / q                    check probability

(interior when w_h·w_j < 0 and 0 < y*_j < 1). With n = 1, r = β = α = 0, δ_j = 1 and both
weights 1 this is X* = k/(b·L + D): the cheating rate that makes checking break even. The
provider cheats just often enough to pay for the checks; expected damage per task is
X·δ_j·D·(1 − q·y·e(1 − β)). Over all deviations at once the (1 + J)×2 game is solved exactly
by :mod:`mira_theory.solvers.two_column`.

Remedies: make checking a best response against an honest provider
-------------------------------------------------------------------
Let a₀ = e·α·b̃L/n (a verifier's expected false-alarm bounty per checked honest assignment)
and h = k − a₀ (the shortfall; the dilemma is h > 0). Each remedy below makes the gain of
checking over skipping non-negative when providers are honest; since catching a cheat only
adds to it (when δ_j(1 − β)(D̃ + b̃L) ≥ αb̃L) checking is then dominant, the verifiers check
every assignment and the audit game's deterrence condition q ≥ q*_j applies again. A remedy
is priced as the network's net outlay per (real) task to make checking a best response *and*
leave a checking verifier at least breaking even: a stick that only punishes skipping must
still be paired with pay for the work.

1. Per-audit fee F, paid to each of the n verifiers of an audited task for a *checked*
   assignment: gain F − h ≥ 0, so F* = h⁺; cost q·n·F* per task. This presumes the network
   can tell a check from a skip (a re-execution transcript a skipper cannot forge); a fee
   also paid to skippers changes nothing (``fee_verifiable=False``: the remedy fails).

2. Forced errors and jackpots (Teutsch & Reitwießner 2017/2019, "A scalable verification
   solution for blockchains" (Truebit)). The network injects known-wrong outputs as extra
   tasks, a fraction φ of each verifier's assignments (indistinguishable from real ones),
   and pays a jackpot J, split equally among the verifiers that catch it (a checker catches
   with probability 1 − β; the miss is common, as in the audit game). If the other n − 1
   verifiers of the task check with probability p, a checker's expected share is

       s(p) = E[1/(1 + M)], M ~ Binomial(n − 1, p)  =  (1 − (1 − p)ⁿ)/(n·p)   (s(0) = 1),

   and its gain from checking is G(p) = φ(1 − β)·J·s(p) − h_φ with h_φ = k − (1 − φ)·a₀.
   s falls from 1 to 1/n, so checking is dominant (and all-check an equilibrium) iff
   J ≥ J* = n·h_φ/(φ(1 − β)); for h_φ/(φ(1 − β)) < J < J* the symmetric equilibrium has
   every verifier check with the p* solving G(p*) = 0 (unique; by bisection); below it
   nobody checks. Splitting the jackpot multiplies the one needed by n. With n = 1, β = 0,
   a₀ = 0: checking pays iff φ·J ≥ k. Forced tasks number q·φ/(1 − φ) per real task, each
   paying (1 − β)(1 − (1 − p)ⁿ)·J in expectation plus its production cost c_f
   (``forced_error_cost``): at J* the cost is q·φ/(1 − φ)·((1 − β)J* + c_f)
   = q·n·h_φ/(1 − φ) + q·φ·c_f/(1 − φ) — the jackpot also pays for checking the fakes.

3. Attention challenges. A fraction ψ of each verifier's assignments are extra challenge
   tasks with a known answer; assignments are blind (commit–reveal, the provider's output
   hidden), so a skipper answers a challenge correctly only by guessing, with probability g
   (2⁻²⁵⁶ for a hash of an exact output, 1/m for m-option claims), and loses a bond B on a
   failed challenge; a checker fails one only through its own error, with probability α.
   Checking costs k on every assignment, challenges included (they look alike), so

       gain = ψ·(1 − g − α)·B + (1 − ψ)·a₀ − k ≥ 0   ⇔   B ≥ B* = h_ψ/(ψ(1 − g − α)),

   h_ψ = k − (1 − ψ)·a₀ (none if 1 − g − α ≤ 0). The bond only punishes skipping, so the
   verifier must still be paid per assignment F_p = h_ψ + ψ·α·B + ρ·B (its shortfall, its
   expected forfeits and the capital cost ρ of the bond per assignment); the forfeits return
   to the network. Challenges number q·ψ/(1 − ψ) per real task, each costing c_ch to answer
   (``challenge_cost``, default k). Cost per task:
   q·n/(1 − ψ)·(h_ψ + ρ·B*) + q·ψ/(1 − ψ)·c_ch.

When h ≤ 0 (no dilemma) no remedy is needed: thresholds and costs are 0. The cheapest
remedy is the one with the least cost per task at its threshold; infeasible ones rank last.

:func:`solve` evaluates all of this at a scenario. The closed forms are hand-derived here;
the tests check them against the exact 2×2 solver, pygambit, and Monte Carlo simulations.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import optimize

from mira_theory import __version__
from mira_theory.games.audit import SECONDS_PER_YEAR, AuditScenario, Deviation
from mira_theory.results import (
    Equilibrium,
    FrozenDict,
    Provenance,
    fmt,
    freeze,
    html_table,
    jsonable,
    render_table,
)
from mira_theory.scenario import Problem, ScenarioError
from mira_theory.solvers import two_column

VERIFIER_STRATEGIES = ("check", "skip")
REMEDIES = ("audit-fee", "forced-errors", "attention-challenges")

# --------------------------------------------------------------------------------------
# The checker game
# --------------------------------------------------------------------------------------


def checker_closed_form(*, reward: float, cost_honest: float, damage: float, deviation_cost: float,
                        divergence: float, audit_cost: float, verifiers: int, miss_rate: float,
                        false_alarm_rate: float, collusion: float, bounty_share: float,
                        sampling_rate: float, slash: float, bounty_weight: float = 1.0,
                        damage_weight: float = 1.0) -> dict[str, float]:
    """The checker game's closed forms for one deviation (derived in the module docstring).

    ``cheating_rate`` X* and ``check_probability`` y* are NaN unless the mixed equilibrium is
    interior (w_h·w_j < 0 and 0 < y* < 1).
    """
    n, k = verifiers, audit_cost
    e = 1.0 - collusion**n
    detection = e * divergence * (1.0 - miss_rate)  # one checked assignment catches a deviator
    false_alarm = e * false_alarm_rate
    bounty = bounty_weight * bounty_share * slash
    harm = damage_weight * damage
    gain_honest = (false_alarm * bounty - n * k) / n
    gain_cheat = (detection * (harm + bounty) - n * k) / n
    saving = cost_honest - deviation_cost
    separation = sampling_rate * (detection - false_alarm) * (slash + reward)
    y = saving / separation if separation != 0 else math.nan
    interior = gain_honest * gain_cheat < 0 and 0.0 < y < 1.0
    return {
        "effective_audit": e,
        "detection": detection,
        "verifier_gain_honest": gain_honest,
        "verifier_gain_cheat": gain_cheat,
        "cheating_rate": gain_honest / (gain_honest - gain_cheat) if interior else math.nan,
        "check_probability": y if interior else math.nan,
        "ic_margin_when_checking": separation - saving,
    }


def checker_matrices(*, reward: float, cost_honest: float, damage: float, deviation_cost: float,
                     divergence: float, audit_cost: float, verifiers: int, miss_rate: float,
                     false_alarm_rate: float, collusion: float, bounty_share: float,
                     sampling_rate: float, slash: float, bounty_weight: float = 1.0,
                     damage_weight: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """The 2×2 checker game: provider rows (honest, cheat), verifier columns (check, skip).

    The provider's payoffs are per task, the verifier's per verifier and assignment.
    """
    n = verifiers
    e = 1.0 - collusion**n
    detection = e * divergence * (1.0 - miss_rate)
    false_alarm = e * false_alarm_rate
    bounty = bounty_weight * bounty_share * slash
    harm = damage_weight * damage
    LR = slash + reward
    A = np.array([[reward - cost_honest - sampling_rate * false_alarm * LR, reward - cost_honest],
                  [reward - deviation_cost - sampling_rate * detection * LR, reward - deviation_cost]])
    lost = -divergence * harm / n
    B = np.array([[(false_alarm * bounty - n * audit_cost) / n, 0.0],
                  [lost + (detection * (harm + bounty) - n * audit_cost) / n, lost]])
    return A, B


def checker_arguments(scenario: AuditScenario, deviation: Deviation, bounty_weight: float = 1.0,
                      damage_weight: float = 1.0) -> dict[str, Any]:
    t, a = scenario.task, scenario.audit
    return {"reward": t.reward, "cost_honest": t.cost_honest, "damage": t.damage,
            "deviation_cost": deviation.cost, "divergence": deviation.divergence,
            "audit_cost": a.cost, "verifiers": a.verifiers, "miss_rate": a.miss_rate,
            "false_alarm_rate": a.false_alarm_rate, "collusion": a.collusion,
            "bounty_share": a.bounty_share, "sampling_rate": a.sampling_rate,
            "slash": scenario.stake.slash, "bounty_weight": bounty_weight, "damage_weight": damage_weight}


def checker_bimatrix(scenario: AuditScenario, bounty_weight: float = 1.0,
                     damage_weight: float = 1.0) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The (1 + J)×2 checker game: rows honest and every deviation, columns check/skip."""
    rows = ["honest", *(d.name for d in scenario.deviations)]
    A = np.zeros((len(rows), 2))
    B = np.zeros((len(rows), 2))
    for i, dev in enumerate(scenario.deviations):
        a, b = checker_matrices(**checker_arguments(scenario, dev, bounty_weight, damage_weight))
        A[0], B[0] = a[0], b[0]
        A[i + 1], B[i + 1] = a[1], b[1]
    return A, B, rows


def undetected_damage(scenario: AuditScenario, mix: Mapping[str, float], check: float) -> float:
    """Expected damage per task of divergent outputs that no check catches."""
    a = scenario.audit
    caught = scenario.audit.sampling_rate * check * (1.0 - a.collusion**a.verifiers) * (1.0 - a.miss_rate)
    return sum(mix.get(d.name, 0.0) * d.divergence * scenario.task.damage * (1.0 - caught)
               for d in scenario.deviations)


# --------------------------------------------------------------------------------------
# Remedies
# --------------------------------------------------------------------------------------


def expected_share(verifiers: int, others_check: float) -> float:
    """E[1/(1 + M)], M ~ Binomial(n − 1, p): a catcher's share of a prize split among catchers.

    Equals (1 − (1 − p)ⁿ)/(n·p), evaluated stably for small p (s(0) = 1, s(1) = 1/n).
    """
    n, p = verifiers, others_check
    if p <= 0.0:
        return 1.0
    if p >= 1.0:
        return 1.0 / n
    return -math.expm1(n * math.log1p(-p)) / (n * p)


def fee_gain(fee: float, shortfall: float) -> float:
    """Gain of checking over skipping an honest provider's assignment with a fee per check."""
    return fee - shortfall


def jackpot_gain(jackpot: float, others_check: float, *, forced_error_rate: float, verifiers: int,
                 miss_rate: float, audit_cost: float, false_alarm_bounty: float) -> float:
    """G(p) = φ(1 − β)·J·s(p) + (1 − φ)·a₀ − k: gain of checking with forced errors and jackpot J."""
    phi = forced_error_rate
    return (phi * (1.0 - miss_rate) * jackpot * expected_share(verifiers, others_check)
            + (1.0 - phi) * false_alarm_bounty - audit_cost)


def jackpot_check_probability(jackpot: float, *, forced_error_rate: float, verifiers: int,
                              miss_rate: float, audit_cost: float, false_alarm_bounty: float) -> float:
    """The symmetric equilibrium check probability p* among the n verifiers at jackpot J.

    1 when checking is dominant (G(1) ≥ 0), 0 when skipping is (G(0) < 0), else the unique
    root of G (G falls in p because the share does).
    """
    kw = dict(forced_error_rate=forced_error_rate, verifiers=verifiers, miss_rate=miss_rate,
              audit_cost=audit_cost, false_alarm_bounty=false_alarm_bounty)
    if jackpot_gain(jackpot, 1.0, **kw) >= 0:
        return 1.0
    if jackpot_gain(jackpot, 0.0, **kw) <= 0:
        return 0.0
    return float(optimize.brentq(lambda p: jackpot_gain(jackpot, p, **kw), 0.0, 1.0, xtol=1e-15, rtol=1e-15))


def attention_gain(bond: float, *, challenge_rate: float, guess_probability: float,
                   false_alarm_rate: float, audit_cost: float, false_alarm_bounty: float) -> float:
    """ψ(1 − g − α)·B + (1 − ψ)·a₀ − k: gain of checking with attention challenges and bond B."""
    psi = challenge_rate
    return (psi * (1.0 - guess_probability - false_alarm_rate) * bond
            + (1.0 - psi) * false_alarm_bounty - audit_cost)


def _threshold(shortfall: float, slope: float) -> float:
    """Smallest x ≥ 0 with slope·x ≥ shortfall (inf if none)."""
    if shortfall <= 0:
        return 0.0
    return shortfall / slope if slope > 0 else math.inf


@dataclass(frozen=True)
class RemedyParameters:
    """The remedies' parameters (see :func:`solve` for their meaning and defaults)."""

    bounty_weight: float = 1.0
    damage_weight: float = 1.0
    fee_verifiable: bool = True
    forced_error_rate: float = 0.05
    forced_error_cost: float = 0.0
    jackpot: float | None = None
    challenge_rate: float = 0.05
    guess_probability: float = 2.0**-256
    challenge_cost: float | None = None
    bond_rate: float | None = None

    def check(self) -> None:
        bad = []
        for name in ("bounty_weight", "damage_weight", "guess_probability"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                bad.append(f"{name} must be in [0, 1], got {getattr(self, name)!r}")
        for name in ("forced_error_rate", "challenge_rate"):
            if not 0.0 <= getattr(self, name) < 1.0:
                bad.append(f"{name} must be in [0, 1), got {getattr(self, name)!r}")
        for name in ("forced_error_cost", "jackpot", "challenge_cost", "bond_rate"):
            v = getattr(self, name)
            if v is not None and not (math.isfinite(v) and v >= 0):
                bad.append(f"{name} must be a finite number ≥ 0, got {v!r}")
        if bad:
            raise ValueError("; ".join(bad))


@dataclass(frozen=True)
class Remedy:
    """One remedy: its threshold (smallest parameter making checking a best response when
    providers are honest), the condition, and the network's cost per task at the threshold."""

    name: str
    parameter: str
    threshold: float  # inf: no value works
    condition: str
    cost_per_task: float  # inf when infeasible
    costs: Mapping[str, float]  # breakdown of cost_per_task
    details: Mapping[str, Any]
    note: str = ""

    @property
    def feasible(self) -> bool:
        return math.isfinite(self.threshold) and math.isfinite(self.cost_per_task)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "parameter": self.parameter, "threshold": jsonable(self.threshold),
                "feasible": self.feasible, "condition": self.condition,
                "cost_per_task": jsonable(self.cost_per_task), "costs": jsonable(self.costs),
                "details": jsonable(self.details), "note": self.note}


def remedies(scenario: AuditScenario, params: RemedyParameters) -> tuple[Remedy, ...]:
    """The three remedies at a scenario (formulas in the module docstring)."""
    a, st = scenario.audit, scenario.stake
    n, k, q, beta, alpha = a.verifiers, a.cost, a.sampling_rate, a.miss_rate, a.false_alarm_rate
    e = 1.0 - a.collusion**n
    a0 = e * alpha * params.bounty_weight * a.bounty_share * st.slash / n
    h = k - a0

    # 1. per-audit fee
    if params.fee_verifiable:
        F = max(h, 0.0)
        fee = Remedy("audit-fee", "fee per checked assignment F", F, "F ≥ k − a₀",
                     q * n * F, FrozenDict(fees=q * n * F), FrozenDict(false_alarm_bounty=a0),
                     "assumes a check is verifiable: a skipper cannot collect the fee")
    else:
        fee = Remedy("audit-fee", "fee per checked assignment F", math.inf if h > 0 else 0.0,
                     "none: a fee paid to skippers too leaves the gain of checking at −(k − a₀)",
                     math.inf if h > 0 else 0.0, FrozenDict(), FrozenDict(false_alarm_bounty=a0),
                     "checks are not verifiable, so a fee cannot reward checking over skipping")

    # 2. forced errors and jackpots
    phi, c_f = params.forced_error_rate, params.forced_error_cost
    h_phi = k - (1.0 - phi) * a0
    slope = phi * (1.0 - beta)
    J_star = n * _threshold(h_phi, slope) if h_phi > 0 else 0.0
    J_some = _threshold(h_phi, slope)
    kw = dict(forced_error_rate=phi, verifiers=n, miss_rate=beta, audit_cost=k, false_alarm_bounty=a0)
    forced_per_task = q * phi / (1.0 - phi)
    if J_star == 0.0:
        jack_costs: dict[str, float] = {"jackpots": 0.0, "forced_errors": 0.0}
    elif math.isinf(J_star):
        jack_costs = {"jackpots": math.inf, "forced_errors": forced_per_task * c_f}
    else:
        jack_costs = {"jackpots": forced_per_task * (1.0 - beta) * J_star, "forced_errors": forced_per_task * c_f}
    details: dict[str, Any] = {"forced_error_rate": phi, "forced_error_cost": c_f,
                               "jackpot_for_some_checking": J_some, "share_when_all_check": 1.0 / n,
                               "forced_errors_per_task": forced_per_task}
    if params.jackpot is not None:
        J = params.jackpot
        p = jackpot_check_probability(J, **kw)
        paid = (1.0 - beta) * -math.expm1(n * math.log1p(-p)) if p < 1 else 1.0 - beta
        details.update(jackpot=J, check_probability_at_jackpot=p,
                       cost_per_task_at_jackpot=forced_per_task * (paid * J + c_f))
    jack = Remedy("forced-errors", "jackpot J", J_star, "φ(1 − β)·J/n ≥ k − (1 − φ)·a₀",
                  sum(jack_costs.values()), FrozenDict(jack_costs), FrozenDict(details),
                  f"the jackpot is split among up to n = {n} catchers" if n > 1 else "")

    # 3. attention challenges
    psi, g = params.challenge_rate, params.guess_probability
    c_ch = k if params.challenge_cost is None else params.challenge_cost
    rho = (st.capital_cost / (st.throughput * SECONDS_PER_YEAR) if params.bond_rate is None
           else params.bond_rate)
    h_psi = k - (1.0 - psi) * a0
    B_star = _threshold(h_psi, psi * (1.0 - g - alpha))
    per_assignment = q * n / (1.0 - psi)
    if B_star == 0.0:
        att_costs: dict[str, float] = {"participation_fees": 0.0, "bond_capital": 0.0, "challenges": 0.0}
    elif math.isinf(B_star):
        att_costs = {"participation_fees": math.inf, "bond_capital": math.inf, "challenges": math.inf}
    else:
        att_costs = {"participation_fees": per_assignment * h_psi, "bond_capital": per_assignment * rho * B_star,
                     "challenges": q * psi / (1.0 - psi) * c_ch}
    att = Remedy("attention-challenges", "bond B", B_star, "ψ(1 − g − α)·B ≥ k − (1 − ψ)·a₀",
                 sum(att_costs.values()), FrozenDict(att_costs),
                 FrozenDict(challenge_rate=psi, guess_probability=g, challenge_cost=c_ch,
                            bond_rate=rho, challenges_per_task=q * psi / (1.0 - psi),
                            participation_fee=(h_psi + psi * alpha * B_star + rho * B_star)
                            if 0 < B_star < math.inf else 0.0),
                 "assignments must be blind (commit–reveal) so a skipper can only guess; the bond "
                 "punishes skipping, a participation fee pays for the work")
    if h <= 0:  # checking already pays against honest providers: no remedy needs deploying
        return tuple(dataclasses.replace(r, threshold=0.0, cost_per_task=0.0,
                                         costs=FrozenDict({c: 0.0 for c in r.costs}),
                                         note=f"not needed: checking already pays (a₀ = {a0:.6g} ≥ k = {k:.6g})")
                     for r in (fee, jack, att))
    return fee, jack, att


def rank(found: tuple[Remedy, ...]) -> tuple[str, ...]:
    """Remedy names, cheapest first; infeasible ones last (stable on ties)."""
    order = sorted(range(len(found)), key=lambda i: (not found[i].feasible, found[i].cost_per_task, i))
    return tuple(found[i].name for i in order)


# --------------------------------------------------------------------------------------
# The result object
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckerGame:
    """The 2×2 checker game of one deviation against honesty."""

    deviation: str
    verifier_gain_honest: float  # w_h per verifier and assignment
    verifier_gain_cheat: float  # w_j
    cheating_rate: float  # X* (NaN unless the mixed equilibrium is interior)
    check_probability: float  # y* (NaN unless interior)
    deterred_when_checking: bool  # q ≥ q*_j: honest is a best response when every assignment is checked
    equilibria: tuple[Equilibrium, ...]
    damage_per_task: float  # the largest over the equilibria
    degenerate: bool

    def to_dict(self) -> dict[str, Any]:
        return jsonable({f: getattr(self, f) for f in self.__dataclass_fields__})


def _profile(rows: list[str], x: np.ndarray, y: float, A: np.ndarray, B: np.ndarray,
             kind: str, component: int) -> Equilibrium:
    row_regret, col_regret = two_column.regrets(A, B, x, y)
    yy = np.array([y, 1.0 - y])
    return Equilibrium(
        kind=kind,
        strategies=freeze({"provider": {r: float(p) for r, p in zip(rows, x)},
                           "verifier": dict(zip(VERIFIER_STRATEGIES, (float(y), float(1 - y))))}),
        payoffs=FrozenDict(provider=float(x @ A @ yy), verifier=float(x @ B @ yy)),
        regret=FrozenDict(provider=row_regret, verifier=col_regret), component=component)


def _equilibria(A: np.ndarray, B: np.ndarray, rows: list[str]) -> tuple[tuple[Equilibrium, ...], bool]:
    res = two_column.solve(A, B)
    out = []
    for eq in res.equilibria:
        pure = bool(np.isclose(eq.row.max(), 1.0) and eq.q in (0.0, 1.0))
        out.append(_profile(rows, eq.row, eq.q, A, B, "pure" if pure else "mixed", eq.component))
    return tuple(out), res.degenerate


@dataclass(frozen=True)
class VerifierIncentives(Provenance):
    """The verifier's dilemma at an audit scenario and the remedies' thresholds and costs."""

    scenario: AuditScenario
    parameters: Mapping[str, Any]
    checker: tuple[CheckerGame, ...]
    equilibria: tuple[Equilibrium, ...]  # of the (1 + J)×2 checker game
    degenerate: bool
    dilemma: bool  # checking an honest provider does not pay (w_h < 0)
    verifier_gain_honest: float
    damage_per_task: float  # largest over the (1 + J)×2 equilibria
    remedies: tuple[Remedy, ...]
    ranking: tuple[str, ...]
    method: str
    toolkit_version: str = __version__
    game: str = "incentives"

    @property
    def cheapest(self) -> str | None:
        first = self.remedy(self.ranking[0])
        return first.name if first.feasible else None

    def remedy(self, name: str) -> Remedy:
        return next(r for r in self.remedies if r.name == name)

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.provenance(),
            "parameters": jsonable(self.parameters),
            "dilemma": self.dilemma,
            "verifier_gain_honest": jsonable(self.verifier_gain_honest),
            "damage_per_task": jsonable(self.damage_per_task),
            "checker": [c.to_dict() for c in self.checker],
            "equilibria": [e.to_dict() for e in self.equilibria],
            "degenerate": self.degenerate,
            "remedies": {r.name: r.to_dict() for r in self.remedies},
            "ranking": list(self.ranking),
            "cheapest": self.cheapest,
        }

    # readable forms -------------------------------------------------------------
    def _summary_rows(self) -> list[tuple[str, str]]:
        best = self.cheapest
        return [
            ("scenario", f"{self.scenario.name} ({self.scenario.path or 'derived'})"),
            ("sha256", self.scenario.sha256[:16] + "…"),
            ("verifier's dilemma", fmt(self.dilemma)),
            ("gain of checking an honest provider", fmt(self.verifier_gain_honest)),
            ("damage per task at equilibrium", fmt(self.damage_per_task)),
            ("cheapest remedy", "none needed" if not self.dilemma else
             f"{best} ({fmt(self.remedy(best).cost_per_task)} per task)" if best else "none works"),
        ]

    def _tables(self) -> list[tuple[str, tuple[str, ...], list[tuple[str, ...]]]]:
        games = [(c.deviation, fmt(c.cheating_rate), fmt(c.check_probability), fmt(c.verifier_gain_cheat),
                  fmt(c.deterred_when_checking), fmt(c.damage_per_task)) for c in self.checker]
        eqs = [(e.kind, e.describe(), fmt(e.payoffs["provider"]), fmt(e.payoffs["verifier"]),
                fmt(max(e.regret.values()))) for e in self.equilibria]
        rems = [(str(i + 1), r.name, r.parameter, fmt(r.threshold), fmt(r.cost_per_task), r.condition)
                for i, r in enumerate(self.remedy(n) for n in self.ranking)]
        return [
            ("checker games (one deviation against honesty)",
             ("deviation", "cheating rate X*", "check prob. y*", "gain vs cheat", "deterred if checked",
              "damage/task"), games),
            ("equilibria of the full checker game", ("kind", "strategies", "provider", "verifier",
                                                     "max regret"), eqs),
            ("remedies, cheapest first", ("rank", "remedy", "parameter", "threshold", "cost/task",
                                          "condition"), rems),
        ]

    def __str__(self) -> str:
        parts = [f"verifier incentives: {self.scenario.name}", render_table(self._summary_rows())]
        for title, header, rows in self._tables():
            parts += ["", title, render_table(rows, header)]
        notes = [f"- {r.name}: {r.note}" for r in self.remedies if r.note]
        if notes:
            parts += ["", "notes", *notes]
        parts += ["", f"method: {self.method}; mira-theory {self.toolkit_version}"]
        return "\n".join(parts)

    def __repr__(self) -> str:
        return (f"VerifierIncentives(scenario={self.scenario.name!r}, dilemma={self.dilemma}, "
                f"cheapest={self.cheapest!r}, ranking={self.ranking!r})")

    def _repr_html_(self) -> str:
        parts = [html_table(self._summary_rows(), caption=f"verifier incentives: {self.scenario.name}")]
        for title, header, rows in self._tables():
            parts.append(html_table(rows, header, caption=title))
        return "".join(parts)


def solve(scenario: AuditScenario, **remedy_parameters: Any) -> VerifierIncentives:
    """The checker game and the three remedies at an audit scenario.

    Remedy parameters (keyword arguments) and their defaults:

    * ``bounty_weight`` = 1, ``damage_weight`` = 1: how much of the bounty b·L and of the
      damage D a catching verifier counts (1, 1: protocol-aligned; 1, 0: mercenary).
    * ``fee_verifiable`` = True: the network can tell a check from a skip, so a fee can be
      paid for checks only (False: the fee remedy fails).
    * ``forced_error_rate`` φ = 0.05 (fraction of a verifier's assignments that are forced
      errors), ``forced_error_cost`` c_f = 0 (cost of producing one), ``jackpot`` J = None
      (if given, the symmetric check probability and the cost at that J are reported too).
    * ``challenge_rate`` ψ = 0.05 (fraction of assignments that are attention challenges),
      ``guess_probability`` g = 2⁻²⁵⁶ (a hash; use 1/m for m-option claims),
      ``challenge_cost`` c_ch = k (producing one known answer), ``bond_rate`` ρ = the
      stake's capital cost per assignment, capital_cost / (throughput · year) (a verifier
      handles as many assignments per second as a provider handles tasks).
    """
    if not isinstance(scenario, AuditScenario):
        raise ScenarioError([Problem(scenario.path or scenario.name, "scenario.game",
                                     "'audit' (verifier incentives are a property of the audit game)",
                                     repr(scenario.game))])
    unknown = set(remedy_parameters) - set(RemedyParameters.__dataclass_fields__)
    if unknown:
        raise TypeError(f"unknown remedy parameters {sorted(unknown)}; expected some of "
                        f"{sorted(RemedyParameters.__dataclass_fields__)}")
    params = RemedyParameters(**remedy_parameters)
    params.check()
    wb, wd = params.bounty_weight, params.damage_weight
    games = []
    for dev in scenario.deviations:
        args = checker_arguments(scenario, dev, wb, wd)
        cf = checker_closed_form(**args)
        A, B = checker_matrices(**args)
        rows = ["honest", dev.name]
        eqs, degenerate = _equilibria(A, B, rows)
        damage = max(undetected_damage(scenario, e.strategies["provider"], e.strategies["verifier"]["check"])
                     for e in eqs)
        games.append(CheckerGame(
            deviation=dev.name, verifier_gain_honest=cf["verifier_gain_honest"],
            verifier_gain_cheat=cf["verifier_gain_cheat"], cheating_rate=cf["cheating_rate"],
            check_probability=cf["check_probability"],
            deterred_when_checking=cf["ic_margin_when_checking"] >= 0, equilibria=eqs,
            damage_per_task=damage, degenerate=degenerate))
    A, B, rows = checker_bimatrix(scenario, wb, wd)
    eqs, degenerate = _equilibria(A, B, rows)
    damage = max(undetected_damage(scenario, e.strategies["provider"], e.strategies["verifier"]["check"])
                 for e in eqs)
    found = remedies(scenario, params)
    gain_honest = games[0].verifier_gain_honest
    return VerifierIncentives(
        scenario=scenario,
        parameters=freeze({k: getattr(params, k) for k in RemedyParameters.__dataclass_fields__}),
        checker=tuple(games), equilibria=eqs, degenerate=degenerate, dilemma=gain_honest < 0,
        verifier_gain_honest=gain_honest, damage_per_task=damage, remedies=found, ranking=rank(found),
        method="closed forms (hand-derived, see the module docstring); checker-game equilibria by "
               "exact enumeration of the 2×2 and (1+J)×2 games; jackpot check probability by "
               "bisection of the symmetric indifference condition")
