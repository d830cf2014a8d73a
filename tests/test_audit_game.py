"""The audit game (mira_theory.games.audit): worked examples computed by hand, the sympy
derivation against the numpy closed forms, properties of the solution, and the stake-
exhaustion extension against a Monte Carlo simulation of a cheating episode.

Every expected number in the worked examples is derived in the comments from the model in
the module docstring (never copied from the code's output):

    e = 1 − rⁿ,  d_j = q·e·δ_j(1 − β),  f = q·e·α,
    U_h = R − c_h − f(L + R),  U_j = R − c_j − d_j(L + R),
    q*_j = (c_h − c_j) / (e(δ_j(1 − β) − α)(L + R)),  L*_j(q) = (c_h − c_j)/(q·e(δ_j(1 − β) − α)) − R,
    w_h = e·α·b·L − n·k,  w_j = e·δ_j(1 − β)(D + b·L) − n·k,  t° = w_h/(w_h − w_j),
    S*_j = (1/d_j + λT)(c_h − c_j − d_j·R + f(L + R))⁺.
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path

import numpy as np
import pytest
import sympy as sp
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

import mira_theory as mt
from mira_theory.games import audit
from mira_theory.results import dumps

MODELS = Path(__file__).resolve().parents[1] / "models"
SETTINGS = settings(max_examples=50, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
YEAR = 365.25 * 24 * 3600  # seconds


def approx(x, rel=1e-9):
    return pytest.approx(x, rel=rel, abs=1e-12)


@functools.cache
def model(name: str):
    return mt.load(MODELS / f"{name}.toml")


@functools.cache
def solution(name: str):
    return mt.solve(model(name))


def dev(sol, name):
    return next(d for d in sol.deviations if d.name == name)


def margin(sol, name):
    return next(m for m in sol.margins if m.name == name)


def profile(eq, rows):
    x = np.array([eq.strategies["provider"][r] for r in rows])
    return x, eq.strategies["verifier"]["audit"]


# --------------------------------------------------------------------------------------
# 1. worked examples
# --------------------------------------------------------------------------------------


def test_default_by_hand():
    # models/default.toml: R = 1, c_h = 0.4, D = 5; k = 0.4, n = 1, β = α = r = 0, b = 0.5,
    # q = 0.05; L = 20, S = 1000, κ = 0.05, λ = 100/s, T = 60 s (λT = 6000).
    # e = 1 − 0¹ = 1, f = 0, L + R = 21.
    sol = solution("default")
    w, rnd = dev(sol, "weaker-model"), dev(sol, "random-output")

    # weaker-model: c_j = 0.1, δ = 0.3. Saving 0.3, gap e·δ(1 − β) − e·α = 0.3.
    # q* = 0.3/(0.3·21) = 1/21 ≈ 0.047619; L*(0.05) = 0.3/(0.05·0.3) − 1 = 20 − 1 = 19.
    # d = 0.05·0.3 = 0.015; U_j = 1 − 0.1 − 0.015·21 = 0.9 − 0.315 = 0.585;
    # ic = −0.3 + 0.05·0.3·21 = −0.3 + 0.315 = 0.015.
    # S* = (1/0.015 + 6000)(0.3 − 0.015·1 + 0) = (18200/3)(0.285) = 1729.
    assert w.deterrence_sampling_rate == approx(1 / 21)
    assert w.deterrable and w.reason == ""
    assert w.minimum_slash == approx(19.0)
    assert w.detection_per_task == approx(0.015)
    assert w.expected_payoff == approx(0.585)
    assert w.ic_margin == approx(0.015)
    assert w.minimum_total_stake == approx(1729.0)
    assert w.stake_margin == approx(1000.0 - 1729.0)
    # verifier: w_h = 0 − 1·0.4 = −0.4; w_j = 0.3·(5 + 0.5·20) − 0.4 = 4.5 − 0.4 = 4.1;
    # t° = −0.4/(−0.4 − 4.1) = 4/45 ≈ 0.0889, at q° = q* = 1/21.
    assert w.mixed_sampling_rate == approx(1 / 21)
    assert w.mixed_deviation_probability == approx(4 / 45)

    # random-output: c_j = 0, δ = 1. Saving 0.4, gap 1.
    # q* = 0.4/21 = 2/105 ≈ 0.019048; L*(0.05) = 0.4/0.05 − 1 = 7; d = 0.05;
    # U_j = 1 − 0.05·21 = −0.05; ic = −0.4 + 0.05·21 = 0.65;
    # S* = (1/0.05 + 6000)(0.4 − 0.05) = 6020·0.35 = 2107.
    # w_j = 1·15 − 0.4 = 14.6, t° = 0.4/15 = 2/75.
    assert rnd.deterrence_sampling_rate == approx(2 / 105)
    assert rnd.minimum_slash == approx(7.0)
    assert rnd.detection_per_task == approx(0.05)
    assert rnd.expected_payoff == approx(-0.05)
    assert rnd.ic_margin == approx(0.65)
    assert rnd.minimum_total_stake == approx(2107.0)
    assert rnd.mixed_sampling_rate == approx(2 / 105)
    assert rnd.mixed_deviation_probability == approx(2 / 75)

    # the scenario: weaker-model binds (1/21 > 2/105); q = 0.05 ≥ 1/21 deters both.
    assert sol.binding_deviation == "weaker-model"
    assert sol.deterrence_sampling_rate == approx(1 / 21) and sol.deterrable
    assert sol.minimum_slash == approx(19.0)  # max(19, 7)
    assert sol.minimum_total_stake == approx(2107.0)  # max(1729, 2107)
    assert sol.honest_payoff == approx(0.6)  # 1 − 0.4 − 0
    assert sol.false_slash_per_task == 0.0

    # equilibria of the 3×2 game (see test_two_column.test_audit_bimatrix_default_by_hand):
    # candidates 0, 1/147, 1/21, 1; only q = 1/21 with rows {honest, weaker} and w of
    # opposite signs admits one: x = (1 − 4/45, 4/45, 0) = (41/45, 4/45, 0).
    # Payoffs: provider U_h = 0.6 (flat in q); verifier x·B[:, no-audit] = (4/45)(−δD)
    # = (4/45)(−1.5) = −2/15.
    rows = ["honest", "weaker-model", "random-output"]
    assert len(sol.equilibria) == 1
    (eq,) = sol.equilibria
    assert eq.kind == "mixed"
    x, q = profile(eq, rows)
    np.testing.assert_allclose(x, [41 / 45, 4 / 45, 0.0], atol=1e-12)
    assert q == approx(1 / 21)
    assert eq.payoffs["provider"] == approx(0.6)
    assert eq.payoffs["verifier"] == approx(-2 / 15)

    # leadership: commit to q* = 1/21; the provider is indifferent between honest and
    # weaker-model and the tie goes to honest (verifier q·w_h = −0.4/21 = −2/105 against
    # −1.5 + 4.1/21 for weaker). Other candidates: q = 0 → random, −5; q = 1/147 → weaker,
    # −1.5 + 4.1/147 ≈ −1.47; q = 1 → honest, −0.4. Gain: −2/105 − (−2/15) = 12/105 = 4/35.
    lead = sol.leadership
    assert lead.kind == "leadership"
    x, q = profile(lead, rows)
    np.testing.assert_array_equal(x, [1.0, 0.0, 0.0])
    assert q == approx(1 / 21)
    assert lead.payoffs["verifier"] == approx(-2 / 105)
    assert lead.payoffs["provider"] == approx(0.6)
    assert set(lead.regret) == {"provider"} and lead.note  # the tie is explained
    assert sol.leadership_gain == approx(4 / 35)

    # stake exhaustion: the episodes pay (S = 1000 < S*). For weaker-model
    # K − 1 ~ Binomial(6000, 0.015) (mean 90, sd ≈ 9.4) so 20·K ≥ 1000 except with
    # probability ≈ 5e-6: E[min(S, L·K)] ≈ 1000 and the gain is
    # E[M]·0.3 − R·E[K] = 6066.67·0.3 − 91 = 1729: margin ≈ −729. For random-output
    # K − 1 ~ Binomial(6000, 0.05) (mean 300): E[min] = 1000, gain = 6020·0.4 − 301 = 2107.
    assert w.episode_margin == pytest.approx(-729.0, abs=1e-2)
    assert rnd.episode_margin == pytest.approx(-1107.0, abs=1e-6)
    # participation: 0.6 − 0.05·1000/(100·YEAR) > 0
    assert margin(sol, "participation").value == approx(0.6 - 50 / (100 * YEAR))
    assert margin(sol, "ic[weaker-model]").holds and margin(sol, "ic[random-output]").holds
    assert not margin(sol, "stake[weaker-model]").holds
    assert not margin(sol, "episode[random-output]").holds
    assert not sol.incentive_compatible
    assert not sol.degenerate and sol.degeneracies == ()


def test_proof_of_sampling_by_hand():
    # models/proof-of-sampling.toml: R = 1, c_h = 0.5, D = 10; one deviation random-output
    # c_j = 0.01, δ = 1; k = 0.5, n = 1, α = β = r = 0, b = 0.5, q = 0.05; L = 20, S = 1000,
    # κ = 0.05, λ = 10, T = 30 (λT = 300). The Proof-of-Sampling condition q(R + L) ≥ c_h − c_j.
    sol = solution("proof-of-sampling")
    (r,) = sol.deviations
    # q* = 0.49/21 = 7/300 ≈ 0.023333; L*(0.05) = 0.49/0.05 − 1 = 8.8.
    assert r.deterrence_sampling_rate == approx(7 / 300)
    assert sol.deterrence_sampling_rate == approx(7 / 300) and sol.binding_deviation == "random-output"
    assert r.minimum_slash == approx(8.8) and sol.minimum_slash == approx(8.8)
    # d = 0.05; U_h = 0.5; U_j = 0.99 − 0.05·21 = −0.06; ic = −0.49 + 1.05 = 0.56.
    assert r.detection_per_task == approx(0.05)
    assert sol.honest_payoff == approx(0.5)
    assert r.expected_payoff == approx(-0.06)
    assert r.ic_margin == approx(0.56)
    # S* = (1/0.05 + 300)(0.49 − 0.05) = 320·0.44 = 140.8; margin 1000 − 140.8 = 859.2.
    assert r.minimum_total_stake == approx(140.8)
    assert r.stake_margin == approx(859.2)
    # episode: K − 1 ~ Binomial(300, 0.05) (mean 15, sd 3.8) so L·K < S = 1000 except with
    # probability ~1e-14: E[min(S, L·K)] = 20·16 = 320; gain 320·0.49 − 16 = 140.8.
    assert r.episode_margin == approx(320 - 140.8, rel=1e-9)
    # w_h = −0.5, w_j = 1·(10 + 10) − 0.5 = 19.5, t° = 0.5/20 = 0.025, q° = 7/300.
    assert r.mixed_sampling_rate == approx(7 / 300)
    assert r.mixed_deviation_probability == approx(0.025)
    (eq,) = sol.equilibria
    x, q = profile(eq, ["honest", "random-output"])
    np.testing.assert_allclose(x, [0.975, 0.025], atol=1e-12)
    assert q == approx(7 / 300)
    # provider 0.5 (U_h), verifier −t°·δD = −0.025·10 = −0.25
    assert eq.payoffs["provider"] == approx(0.5)
    assert eq.payoffs["verifier"] == approx(-0.25)
    # leadership: q*·w_h = (7/300)(−0.5) = −7/600 (vs −10 + (7/300)19.5 for the
    # deviation, −10 at q = 0, −0.5 at q = 1); gain −7/600 + 150/600 = 143/600.
    assert sol.leadership.payoffs["verifier"] == approx(-7 / 600)
    assert sol.leadership_gain == approx(143 / 600)
    assert margin(sol, "participation").value == approx(0.5 - 0.05 * 1000 / (10 * YEAR))
    assert sol.incentive_compatible and not sol.degenerate


def test_noisy_gpu_by_hand():
    # models/noisy-gpu.toml: R = 1, c_h = 0.4, D = 5; k = 0.4, n = 3, β = 0.05, α = 0.02,
    # r = 0.1, b = 0.5, q = 0.1; L = 20, S = 5000, κ = 0.05, λ = 50, T = 60 (λT = 3000).
    # e = 1 − 0.1³ = 0.999; f = 0.1·0.999·0.02 = 0.001998; L + R = 21.
    # U_h = 0.6 − 0.001998·21 = 0.6 − 0.041958 = 0.558042.
    sol = solution("noisy-gpu")
    w, rnd = dev(sol, "weaker-model"), dev(sol, "random-output")
    assert sol.false_slash_per_task == approx(0.001998)
    assert sol.honest_payoff == approx(0.558042)

    # weaker-model (c = 0.1, δ = 0.4): e·δ(1 − β) = 0.999·0.38 = 0.37962,
    # gap = 0.999·(0.38 − 0.02) = 0.35964.
    # q* = 0.3/(0.35964·21) = 0.3/7.55244 ≈ 0.0397224;
    # L*(0.1) = 0.3/0.035964 − 1 ≈ 7.341675; d = 0.037962;
    # U_j = 0.9 − 0.037962·21 = 0.9 − 0.797202 = 0.102798; ic = 0.558042 − 0.102798 = 0.455244;
    # S* = (1/0.037962 + 3000)(0.3 − 0.037962 + 0.041958) = (26.342 + 3000)·0.303996 ≈ 919.996.
    assert w.deterrence_sampling_rate == approx(0.3 / 7.55244)
    assert w.minimum_slash == approx(0.3 / 0.035964 - 1)
    assert w.detection_per_task == approx(0.037962)
    assert w.expected_payoff == approx(0.102798)
    assert w.ic_margin == approx(0.455244)
    assert w.minimum_total_stake == approx((1 / 0.037962 + 3000) * 0.303996)
    # random-output (c = 0, δ = 1): e(1 − β) = 0.94905, gap = 0.999·0.93 = 0.92907.
    # q* = 0.4/(0.92907·21) = 0.4/19.51047 ≈ 0.0205018; L*(0.1) = 0.4/0.092907 − 1 ≈ 3.30538;
    # d = 0.094905; U_j = 1 − 0.094905·21 = −0.993005; ic = 0.558042 + 0.993005 = 1.551047;
    # S* = (1/0.094905 + 3000)(0.4 − 0.094905 + 0.041958) = (10.537 + 3000)·0.347053 ≈ 1044.82.
    assert rnd.deterrence_sampling_rate == approx(0.4 / 19.51047)
    assert rnd.minimum_slash == approx(0.4 / 0.092907 - 1)
    assert rnd.detection_per_task == approx(0.094905)
    assert rnd.expected_payoff == approx(-0.993005)
    assert rnd.ic_margin == approx(1.551047)
    assert rnd.minimum_total_stake == approx((1 / 0.094905 + 3000) * 0.347053)
    assert sol.binding_deviation == "weaker-model"
    assert sol.minimum_slash == approx(0.3 / 0.035964 - 1)
    assert sol.minimum_total_stake == approx((1 / 0.094905 + 3000) * 0.347053)

    # verifier: w_h = 0.999·0.02·0.5·20 − 3·0.4 = 0.1998 − 1.2 = −1.0002;
    # w_weaker = 0.37962·(5 + 10) − 1.2 = 4.4943; t° = 1.0002/5.4945 ≈ 0.182037;
    # w_random = 0.94905·15 − 1.2 = 13.03575; t° = 1.0002/14.03595 ≈ 0.0712599.
    t = 1.0002 / 5.4945
    assert w.mixed_deviation_probability == approx(t)
    assert w.mixed_sampling_rate == approx(0.3 / 7.55244)
    assert rnd.mixed_deviation_probability == approx(1.0002 / 14.03595)

    # the 3×2 game's equilibrium: (1 − t°, t°, 0) at q*_weaker. Provider payoff
    # U_h(q*) = 0.6 − 0.41958·q*, and 0.41958/7.55244 = 0.02/0.36 = 1/18, so
    # 0.6 − 0.3/18 = 7/12. Verifier −t°·δD = −2t° ≈ −0.364073.
    (eq,) = sol.equilibria
    x, q = profile(eq, ["honest", "weaker-model", "random-output"])
    np.testing.assert_allclose(x, [1 - t, t, 0.0], atol=1e-12)
    assert q == approx(0.3 / 7.55244)
    assert eq.payoffs["provider"] == approx(7 / 12)
    assert eq.payoffs["verifier"] == approx(-2 * t)
    # leadership at q*, honest: q*·w_h = −1.0002·0.3/7.55244 ≈ −0.0397303 (the deviation
    # there gives −2 + 4.4943·q* ≈ −1.82); gain ≈ −0.0397303 + 0.364073 = 0.324343.
    assert sol.leadership.payoffs["verifier"] == approx(-1.0002 * 0.3 / 7.55244)
    assert sol.leadership_gain == approx(-1.0002 * 0.3 / 7.55244 + 2 * t)
    # episode (weaker): K − 1 ~ Binomial(3000, 0.037962), mean 113.886, so L·K ≈ 2297.7,
    # far below S = 5000 (cap at K ≥ 250 is 13 sd away): E[min(S, L·K)] = 20·114.886;
    # gain = S* (λT is an integer) ≈ 919.996; margin ≈ 1377.72.
    assert w.episode_margin == approx(20 * (1 + 3000 * 0.037962) - (1 / 0.037962 + 3000) * 0.303996)
    assert margin(sol, "participation").value == approx(0.558042 - 0.05 * 5000 / (50 * YEAR))
    assert sol.incentive_compatible and not sol.degenerate


def test_variant_below_q_star(default):
    # default with q = 0.04 < 1/21: weaker-model is not deterred at the rate in force.
    # ic = −0.3 + 0.04·0.3·21 = −0.3 + 0.252 = −0.048; L*(0.04) = 0.3/(0.04·0.3) − 1 = 24.
    # random-output: ic = −0.4 + 0.04·21 = 0.44, L*(0.04) = 0.4/0.04 − 1 = 9.
    sol = mt.solve(default.replace({"audit.sampling_rate": 0.04}))
    w, rnd = dev(sol, "weaker-model"), dev(sol, "random-output")
    assert w.ic_margin == approx(-0.048) and rnd.ic_margin == approx(0.44)
    assert w.minimum_slash == approx(24.0) and rnd.minimum_slash == approx(9.0)
    assert sol.minimum_slash == approx(24.0)
    assert sol.deterrable  # q* = 1/21 ≤ 1 exists, it is just not in force
    assert not margin(sol, "ic[weaker-model]").holds
    assert not sol.incentive_compatible
    # q* does not depend on the rate in force
    assert sol.deterrence_sampling_rate == approx(1 / 21)


def test_variant_binding_deviation_switches(default):
    # weaker-model at c_j = 0.3: saving 0.1, q* = 0.1/(0.3·21) = 1/63 ≈ 0.01587 < 2/105 ≈ 0.01905,
    # so random-output binds. L*(0.05): weaker 0.1/0.015 − 1 = 17/3, random 7.
    sol = mt.solve(default.replace({"deviation.weaker-model.cost": 0.3}))
    assert dev(sol, "weaker-model").deterrence_sampling_rate == approx(1 / 63)
    assert sol.binding_deviation == "random-output"
    assert sol.deterrence_sampling_rate == approx(2 / 105)
    assert dev(sol, "weaker-model").minimum_slash == approx(17 / 3)
    assert sol.minimum_slash == approx(7.0)
    # now the equilibrium pairs honest with random-output at q = 2/105:
    # t° = 0.4/(0.4 + 14.6) = 2/75, verifier −(2/75)·5 = −2/15.
    (eq,) = sol.equilibria
    x, q = profile(eq, ["honest", "weaker-model", "random-output"])
    np.testing.assert_allclose(x, [1 - 2 / 75, 0.0, 2 / 75], atol=1e-12)
    assert q == approx(2 / 105)
    assert eq.payoffs["verifier"] == approx(-2 / 15)


def test_variant_at_the_deterrence_boundary(build):
    # Exactly representable: c_h = 0.5, c_j = 0.25 (saving 0.25), δ = 1, R = 1, L = 3
    # (L + R = 4), α = β = r = 0: q* = 0.25/4 = 0.0625 (exact in binary). With q = 0.0625
    # the IC margin is −0.25 + 0.0625·4 = 0 exactly: the provider is indifferent, a
    # degenerate point the toolkit must report. L*(q*) = 0.25/0.0625 − 1 = 3 = L.
    # At the boundary S* = L(1 + d·λT) with d = 0.0625, λT = 6000: 3·(1 + 375) = 1128.
    scenario = build([("cheap", 0.25, 1.0)], {
        "task.cost_honest": 0.5, "stake.slash": 3.0, "audit.sampling_rate": 0.0625})
    sol = mt.solve(scenario)
    (d,) = sol.deviations
    assert d.deterrence_sampling_rate == 0.0625
    assert d.ic_margin == 0.0
    assert d.deterrable and margin(sol, "ic[cheap]").holds
    assert d.minimum_slash == approx(3.0)
    assert d.minimum_total_stake == approx(1128.0)
    assert sol.degenerate
    assert any("exactly q*" in r for r in sol.degeneracies), sol.degeneracies
    assert sol.equilibria  # a degenerate point still has its answer


# --------------------------------------------------------------------------------------
# 2. symbolic = numeric
# --------------------------------------------------------------------------------------

ARGS = list(audit.PARAMETERS)


@functools.cache
def lambdified(name):
    return audit.lambdified(name)


@functools.cache
def derivation_names():
    return tuple(d.name for d in audit.derivation())


def _conditions(p):
    """Which closed forms are in their generic (interior) branch at p, computed here."""
    e = 1 - p["collusion"] ** p["verifiers"]
    rho = e * p["divergence"] * (1 - p["miss_rate"])
    phi = e * p["false_alarm_rate"]
    gap, saving, LR = rho - phi, p["cost_honest"] - p["deviation_cost"], p["slash"] + p["reward"]
    q, L, R = p["sampling_rate"], p["slash"], p["reward"]
    d, f = q * rho, q * phi
    k, n, b, D, delta = p["audit_cost"], p["verifiers"], p["bounty_share"], p["damage"], p["divergence"]
    w_h = phi * b * L - n * k
    w_j = rho * (D + b * L) - n * k
    q_star = saving / (gap * LR) if gap > 0 and LR > 0 else math.inf
    interior = saving > 0 and q_star < 1 and w_h * w_j < 0
    lead = (saving > 0 and q_star < 1
            and q_star * w_h >= max(-delta * D, -delta * D + q_star * w_j, w_h) + 1e-9)
    net = saving - d * R + f * LR
    return {
        "deterrence_sampling_rate": saving > 0 and gap > 0 and LR > 0,
        "minimum_slash": saving > 0 and q * gap > 0 and saving / (q * gap) - R > 1e-9,
        "mixed_deviation_probability": interior,
        "verifier_payoff_mixed": interior,
        "verifier_payoff_leadership": lead,
        "minimum_total_stake": d > 0 and net > 1e-12,
        "stake_margin": d > 0 and net > 1e-12,
    }


def _compare_all(p) -> set[str]:
    cf = audit.closed_form(**p)
    generic = _conditions(p)
    compared = set()
    for name in derivation_names():
        if not generic.get(name, True):
            continue
        symbolic = float(lambdified(name)(*[p[a] for a in ARGS]))
        numeric = float(cf[name])
        assert numeric == pytest.approx(symbolic, rel=1e-8, abs=1e-10), name
        compared.add(name)
    return compared


def test_derivation_items_are_all_known():
    # every derived item is either always compared or has a generic-branch condition above
    always = {"effective_audit", "detection_per_task", "false_slash_per_task", "payoff_honest",
              "payoff_deviation", "ic_margin", "verifier_gain_honest", "verifier_gain_deviation",
              "episode_tasks", "capital_cost_per_task", "participation_margin"}
    conditional = set(_conditions({**dict.fromkeys(ARGS, 0.5), "verifiers": 1}))
    assert set(derivation_names()) == always | conditional


@pytest.mark.parametrize("name", ["default", "proof-of-sampling", "noisy-gpu"])
def test_symbolic_equals_numeric_at_models(name):
    scenario = model(name)
    for d in scenario.deviations:
        # every model is in the generic region for every deviation: all items compare
        assert _compare_all(audit.arguments(scenario, d)) == set(derivation_names())


@st.composite
def interior_points(draw):
    f = lambda lo, hi: st.floats(lo, hi, allow_nan=False, allow_infinity=False)  # noqa: E731
    c_h = draw(f(0.1, 2.0))
    delta = draw(f(0.05, 1.0))
    beta = draw(f(0.0, 0.5))
    return {
        "reward": draw(f(0.1, 3.0)), "cost_honest": c_h, "damage": draw(f(0.0, 20.0)),
        "deviation_cost": draw(f(0.0, 0.95 * c_h)), "divergence": delta,
        "audit_cost": draw(f(0.01, 2.0)), "verifiers": draw(st.integers(1, 5)),
        "miss_rate": beta, "false_alarm_rate": draw(f(0.0, 0.9 * delta * (1 - beta))),
        "collusion": draw(f(0.0, 0.9)), "bounty_share": draw(f(0.0, 1.0)),
        "sampling_rate": draw(f(0.001, 1.0)), "slash": draw(f(0.0, 100.0)),
        "total_stake": draw(f(0.0, 1e4)), "capital_cost": draw(f(0.0, 0.2)),
        "throughput": draw(f(0.1, 1000.0)), "settlement_latency": draw(f(0.0, 600.0)),
    }


@settings(max_examples=100, deadline=None)
@given(interior_points())
def test_symbolic_equals_numeric_hypothesis(p):
    compared = _compare_all(p)
    assert "ic_margin" in compared and "effective_audit" in compared
    for name in sorted(set(_conditions(p)) & compared):
        event(f"generic branch: {name}")


def test_symbolic_identities():
    s = audit.symbols()
    items = {d.name: d.expr for d in audit.derivation()}
    q, L = s["sampling_rate"], s["slash"]
    ic, U_h, U_j = items["ic_margin"], items["payoff_honest"], items["payoff_deviation"]
    # the factored IC margin is U_h − U_j
    assert sp.simplify(ic - (U_h - U_j)) == 0
    # q* and L* are the roots of the IC margin
    assert sp.simplify(ic.subs(q, items["deterrence_sampling_rate"])) == 0
    # L* is derived for a nonnegative L, so sympy writes it Max(0, root)
    L_star = items["minimum_slash"]
    roots = [a for a in L_star.args if a != 0] if isinstance(L_star, sp.Max) else [L_star]
    assert len(roots) == 1
    assert sp.simplify(ic.subs(L, roots[0])) == 0
    # t° makes the verifier indifferent: t·w_j + (1 − t)·w_h = 0
    t = items["mixed_deviation_probability"]
    w_h, w_j = items["verifier_gain_honest"], items["verifier_gain_deviation"]
    assert sp.simplify(t * w_j + (1 - t) * w_h) == 0
    # at the deterrence boundary (c_j chosen so that the IC margin is 0) S* = L(1 + d·λT)
    c_j, c_h = s["deviation_cost"], s["cost_honest"]
    boundary = sp.solve(sp.Eq(ic, 0), c_j)[0]
    s_star = items["minimum_total_stake"].subs(c_j, boundary)
    d = items["detection_per_task"]
    assert sp.simplify(s_star - L * (1 + d * s["throughput"] * s["settlement_latency"])) == 0
    # Proof of Sampling: α = β = r = 0, n = 1, δ = 1 gives q* = (c_h − c_j)/(R + L)
    pos = items["deterrence_sampling_rate"].subs({s["false_alarm_rate"]: 0, s["miss_rate"]: 0,
                                                  s["collusion"]: 0, s["verifiers"]: 1,
                                                  s["divergence"]: 1})
    assert sp.simplify(pos - (c_h - c_j) / (s["reward"] + L)) == 0


# --------------------------------------------------------------------------------------
# 4. properties of the solution at hypothesis-generated scenarios
# --------------------------------------------------------------------------------------


def _f(lo, hi):
    # no tiny nonzero values (see audit_changes in test_two_column.py)
    inner = st.floats(max(lo, 1e-6), hi, allow_nan=False, allow_infinity=False)
    return st.one_of(st.just(lo), inner) if lo == 0 else inner


@st.composite
def scenarios(draw, max_deviations=3, saving=False):
    c_h = draw(_f(0.05, 2.0))
    devs = []
    for i in range(draw(st.integers(1, max_deviations))):
        cost = draw(_f(0.0, 0.99 * c_h)) if saving else draw(_f(0.0, 2.5))
        devs.append((f"dev-{i}", cost, draw(_f(0.0, 1.0))))
    changes = {
        "task.reward": draw(_f(0.0, 3.0)), "task.cost_honest": c_h, "task.damage": draw(_f(0.0, 20.0)),
        "audit.cost": draw(_f(0.0, 2.0)), "audit.verifiers": draw(st.integers(1, 5)),
        "audit.miss_rate": draw(_f(0.0, 0.6)), "audit.false_alarm_rate": draw(_f(0.0, 0.3)),
        "audit.collusion": draw(_f(0.0, 0.95)), "audit.bounty_share": draw(_f(0.0, 1.0)),
        "audit.sampling_rate": draw(_f(0.0, 1.0)), "stake.slash": draw(_f(0.0, 100.0)),
        "stake.total": draw(_f(0.0, 1e4)), "stake.throughput": draw(_f(0.5, 200.0)),
        "stake.settlement_latency": draw(_f(0.0, 120.0)),
    }
    return devs, changes


@SETTINGS
@given(scenarios())
def test_no_profitable_deviation_at_reported_equilibria(build, params):
    scenario = build(*params)
    sol = mt.solve(scenario)
    A, B, rows = audit.bimatrix(scenario)
    scale = max(1.0, np.abs(A).max(), np.abs(B).max())
    tol = 1e-9 * scale  # ties are decided up to tol·max(1, |payoff|)
    assert sol.equilibria
    for eq in sol.equilibria:
        assert max(eq.regret.values()) <= tol
        x, q = profile(eq, rows)
        y = np.array([q, 1 - q])
        assert float((A @ y).max() - x @ A @ y) <= tol  # recomputed independently
        assert float((x @ B).max() - x @ B @ y) <= tol
        assert eq.payoffs["provider"] == pytest.approx(x @ A @ y, abs=1e-12 * scale)
        assert eq.payoffs["verifier"] == pytest.approx(x @ B @ y, abs=1e-12 * scale)
    # leadership: the follower best-responds, and commitment beats every equilibrium
    x, q = profile(sol.leadership, rows)
    y = np.array([q, 1 - q])
    assert sol.leadership.regret["provider"] <= tol
    assert float((A @ y).max() - x @ A @ y) <= tol
    lead_value = sol.leadership.payoffs["verifier"]
    for eq in sol.equilibria:
        assert lead_value >= eq.payoffs["verifier"] - tol
    best = max(eq.payoffs["verifier"] for eq in sol.equilibria)
    assert sol.leadership_gain == pytest.approx(lead_value - best, abs=1e-12 * scale)
    assert sol.leadership_gain >= -tol
    # the scenario-level numbers are the extremes over the deviations
    qs = [d.deterrence_sampling_rate for d in sol.deviations]
    assert sol.deterrence_sampling_rate == max(qs)
    assert dev(sol, sol.binding_deviation).deterrence_sampling_rate == max(qs)
    # deterrable: every deviation has q*_j ≤ 1, and no deviation caps q below the largest q*_j (one
    # that costs no less than honesty and that audits favour, gap < 0, allows only q ≤ its upper rate)
    uppers = [d.deterrence_upper_rate for d in sol.deviations]
    assert sol.deterrable == (all(d.deterrence_sampling_rate <= 1 for d in sol.deviations)
                              and max(qs) <= min(uppers) + 1e-12)
    assert sol.minimum_slash == max(d.minimum_slash for d in sol.deviations)
    assert sol.minimum_total_stake == max(d.minimum_total_stake for d in sol.deviations)
    if sol.degenerate:
        assert sol.degeneracies or any(
            sum(1 for e in sol.equilibria if e.component == c) > 1
            for c in {e.component for e in sol.equilibria})
    json.loads(dumps(sol))  # always valid JSON (no NaN/inf)


@SETTINGS
@given(scenarios(saving=True), st.floats(1.01, 10.0), st.floats(0.0, 50.0))
def test_q_star_falls_as_slash_rises(build, params, factor, extra):
    devs, changes = params
    s1 = build(devs, changes)
    L1 = s1.stake.slash
    s2 = s1.replace({"stake.slash": L1 * factor + extra + 1e-3})
    q1, q2 = mt.solve(s1).deterrence_sampling_rate, mt.solve(s2).deterrence_sampling_rate
    assert q2 <= q1
    if 0 < q1 < math.inf:
        assert q2 < q1
    # and per deviation
    for d1, d2 in zip(mt.solve(s1).deviations, mt.solve(s2).deviations, strict=True):
        assert d2.deterrence_sampling_rate <= d1.deterrence_sampling_rate


@SETTINGS
@given(scenarios(saving=True), st.floats(0.01, 2.0))
def test_q_star_rises_with_saving(build, params, raise_by):
    # raising c_h raises every saving c_h − c_j by the same amount
    devs, changes = params
    s1 = build(devs, changes)
    s2 = s1.replace({"task.cost_honest": s1.task.cost_honest + raise_by})
    sol1, sol2 = mt.solve(s1), mt.solve(s2)
    assert sol2.deterrence_sampling_rate >= sol1.deterrence_sampling_rate
    if 0 < sol1.deterrence_sampling_rate < math.inf:
        assert sol2.deterrence_sampling_rate > sol1.deterrence_sampling_rate
    for d1, d2 in zip(sol1.deviations, sol2.deviations, strict=True):
        assert d2.deterrence_sampling_rate >= d1.deterrence_sampling_rate
    # and lowering one deviation's cost raises its own q*
    name, cost, _ = devs[0]
    s3 = s1.replace({f"deviation.{name}.cost": cost / 2})
    assert dev(mt.solve(s3), name).deterrence_sampling_rate >= dev(sol1, name).deterrence_sampling_rate


@SETTINGS
@given(scenarios(saving=True))
def test_q_star_makes_ic_margin_zero(build, params):
    devs, changes = params
    # audits must separate the strategies (δ(1 − β) > α, L + R > 0) for q* to be finite
    devs = [(name, cost, max(delta, 0.05)) for name, cost, delta in devs]
    changes = {**changes, "audit.false_alarm_rate": 0.5 * changes["audit.false_alarm_rate"] * min(
        delta * (1 - changes["audit.miss_rate"]) for _, _, delta in devs),
        "stake.slash": changes["stake.slash"] + 0.5}
    s = build(devs, changes)
    sol = mt.solve(s)
    assert sol.deterrence_sampling_rate < math.inf
    if sol.deterrence_sampling_rate > 1:
        # q*_j(L + R) = (c_h − c_j)/gap_j does not depend on L: pick L with every q* ≤ 2/3
        LR = s.stake.slash + s.task.reward
        s = s.replace({"stake.slash": 1.5 * sol.deterrence_sampling_rate * LR - s.task.reward})
        sol = mt.solve(s)
    assert 0 < sol.deterrence_sampling_rate <= 1
    at = mt.solve(s.replace({"audit.sampling_rate": sol.deterrence_sampling_rate}))
    binding = dev(at, sol.binding_deviation)
    scale = max(1.0, abs(binding.expected_payoff), s.stake.slash + s.task.reward)
    assert abs(binding.ic_margin) <= 1e-12 * scale
    for d in at.deviations:  # q* deters every deviation
        assert d.ic_margin >= -1e-12 * scale
    # the rate in force is exactly q*: reported, not silently passed over
    assert at.degenerate
    assert any("exactly q*" in r and sol.binding_deviation in r for r in at.degeneracies)
    # L*(q*) is the slash in force, and S* = L(1 + d·λT) for the binding deviation
    assert binding.minimum_slash == pytest.approx(s.stake.slash, rel=1e-9, abs=1e-9)
    lam_t = s.stake.throughput * s.stake.settlement_latency
    assert binding.minimum_total_stake == pytest.approx(
        s.stake.slash * (1 + binding.detection_per_task * lam_t), rel=1e-7, abs=1e-9)


@SETTINGS
@given(scenarios(max_deviations=2, saving=True), st.floats(1e-6, 1.0))
def test_not_deterrable_when_false_alarms_exceed_detection(build, params, excess):
    # α > δ(1 − β) for the first deviation (which saves c_h − c_j > 0). Strictly: at
    # equality the toolkit's answer depends on rounding (test_bug_boundary_lost_to_rounding);
    # the exact boundary with dyadic values is in test_two_column.
    devs, changes = params
    name, cost, delta = devs[0]
    beta = changes["audit.miss_rate"]
    alpha = min(1.0, delta * (1 - beta) + excess * (1 - delta * (1 - beta)))
    assume(alpha > delta * (1 - beta) * (1 + 1e-9))
    changes = {**changes, "audit.false_alarm_rate": alpha}
    scenario = build(devs, changes)
    sol = mt.solve(scenario)
    d = dev(sol, name)
    assert not d.deterrable and d.deterrence_sampling_rate == math.inf
    assert "no sampling rate deters" in d.reason
    assert not sol.deterrable and sol.degenerate
    assert any("no sampling rate deters" in r for r in sol.degeneracies)
    out = json.loads(dumps(sol))
    assert out["deterrence_sampling_rate"] is None
    assert out["deviations"][name]["deterrence_sampling_rate"] is None
    assert sol.equilibria  # still answered


@SETTINGS
@given(scenarios(max_deviations=2, saving=True), st.integers(1, 5))
def test_not_deterrable_under_full_collusion(build, params, n):
    devs, changes = params
    scenario = build(devs, {**changes, "audit.collusion": 1.0, "audit.verifiers": n})
    sol = mt.solve(scenario)
    for d in sol.deviations:
        assert not d.deterrable and "no sampling rate deters" in d.reason and "r = 1" in d.reason
    assert sol.degenerate and not sol.deterrable
    assert json.loads(dumps(sol))["deterrence_sampling_rate"] is None
    assert sol.equilibria


def test_json_of_model_files():
    out = json.loads(dumps(solution("default")))
    assert out["deterrence_sampling_rate"] == pytest.approx(1 / 21)
    assert out["binding_deviation"] == "weaker-model"
    assert out["degenerate"] is False and out["degeneracies"] == []
    assert out["leadership"]["gain_over_simultaneous"] == pytest.approx(4 / 35)


def test_not_deterrable_variant_json(default):
    # α = 0.3 = δ_weaker(1 − β) with e = 1: exactly the boundary δ(1 − β) = α.
    sol = mt.solve(default.replace({"audit.false_alarm_rate": 0.3}))
    w = dev(sol, "weaker-model")
    assert not w.deterrable and "no sampling rate deters" in w.reason
    out = json.loads(dumps(sol))
    assert out["deterrence_sampling_rate"] is None
    assert out["deterrence_sampling_rate_unbounded"] is None  # inf → null as well
    assert out["deviations"]["weaker-model"]["deterrence_sampling_rate"] is None
    # random-output is still deterrable: gap 1 − 0.3 = 0.7, q* = 0.4/(0.7·21) = 4/147
    assert out["deviations"]["random-output"]["deterrence_sampling_rate"] == pytest.approx(4 / 147)


def test_regression_boundary_lost_to_rounding(default):
    # δ = 0.75, β = 0.375, α = 0.75·0.625 = 0.46875 (all exact in binary, and so is the
    # product): δ(1 − β) = α exactly. r = 0.3, n = 3 give e = 1 − 0.027 = 0.973 < 1. In
    # exact arithmetic the gap e(δ(1 − β) − α) is 0, so no sampling rate deters.
    sol = mt.solve(default.replace({
        "deviation.weaker-model.divergence": 0.75, "audit.miss_rate": 0.375,
        "audit.false_alarm_rate": 0.46875, "audit.collusion": 0.3, "audit.verifiers": 3}))
    w = dev(sol, "weaker-model")
    assert w.deterrence_sampling_rate == math.inf
    assert "no sampling rate deters" in w.reason


def test_proof_of_sampling_condition(build):
    # with α = β = r = 0, n = 1, δ = 1 the deterrence condition is q(R + L) ≥ c_h − c_j
    pos = model("proof-of-sampling")
    for L, c_j in [(0.0, 0.0), (5.0, 0.2), (99.0, 0.49)]:
        sol = mt.solve(pos.replace({"stake.slash": L, "deviation.random-output.cost": c_j}))
        assert sol.deterrence_sampling_rate == approx((0.5 - c_j) / (1.0 + L))


# --------------------------------------------------------------------------------------
# 5. stake exhaustion
# --------------------------------------------------------------------------------------


def simulate_episode_margin(args, n=200_000, seed=0):
    """Monte Carlo of one cheating episode: N1 ~ Geometric(d) tasks up to the first
    detection, m = round(λT) tasks in flight, K = 1 + Binomial(m, d) detections; gain over
    honest M·(Δc + f(L + R)) − R·K, loss min(S, L·K). Returns (mean margin, standard error)."""
    rng = np.random.default_rng(seed)
    e = 1 - args["collusion"] ** args["verifiers"]
    d = args["sampling_rate"] * e * args["divergence"] * (1 - args["miss_rate"])
    f = args["sampling_rate"] * e * args["false_alarm_rate"]
    R, L, S = args["reward"], args["slash"], args["total_stake"]
    m = int(round(args["throughput"] * args["settlement_latency"]))
    n1 = rng.geometric(d, n)
    K = 1 + rng.binomial(m, d, n)
    M = n1 + m
    net = M * (args["cost_honest"] - args["deviation_cost"] + f * (L + R)) - R * K - np.minimum(S, L * K)
    return float(-net.mean()), float(net.std(ddof=1) / math.sqrt(n))


@pytest.mark.parametrize("name, changes", [
    ("default", {}),
    ("default", {"stake.total": 1800.0}),  # weaker-model: L·K ≈ 1820 ± 190, the cap half binds
    ("default", {"stake.total": 50.0, "stake.slash": 7.0}),  # S not a multiple of L
    ("proof-of-sampling", {}),
    ("noisy-gpu", {}),
    ("noisy-gpu", {"stake.settlement_latency": 2.0}),  # short latency: E[M] ≈ 1/d
])
def test_episode_margin_matches_monte_carlo(name, changes):
    scenario = model(name).replace(changes) if changes else model(name)
    for d in scenario.deviations:
        args = audit.arguments(scenario, d)
        exact = audit.episode_margin(args)
        mc, se = simulate_episode_margin(args)
        assert abs(exact - mc) <= 5 * se + 1e-9, (d.name, exact, mc, se)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(saving=True), st.integers(0, 3000), st.floats(0.5, 0.999))
def test_stake_below_s_star_pays(build, params, in_flight, fraction):
    # S ≥ S* is necessary: E[min(S, L·K)] ≤ S, and with λT an integer the episode's gain is
    # exactly S*, so any S < S* leaves a negative episode margin.
    devs, changes = params
    scenario = build(devs, {**changes, "stake.throughput": 1.0,
                            "stake.settlement_latency": float(in_flight)})
    sol = mt.solve(scenario)
    for d in sol.deviations:
        if not (0 < d.minimum_total_stake < math.inf):
            continue
        below = mt.solve(scenario.replace({"stake.total": fraction * d.minimum_total_stake}))
        db = dev(below, d.name)
        assert db.stake_margin < 0
        assert db.episode_margin < 0
        assert db.episode_margin <= db.stake_margin + 1e-9 * d.minimum_total_stake
        assert not below.incentive_compatible


def test_episode_margin_by_hand_without_cap():
    # default weaker-model with S = 10⁶: the cap never binds, E[min(S, L·K)] = L·E[K] =
    # 20·(1 + 6000·0.015) = 1820, the gain is 1729 (see test_default_by_hand): margin 91.
    args = audit.arguments(model("default"), model("default").deviations[0])
    args = {**args, "total_stake": 1e6}
    assert audit.episode_margin(args) == approx(91.0, rel=1e-9)


def test_regression_tiny_slash_crashes_solve(default):
    # L = 1e-310 is a valid nonnegative slash; the episode margin should be finite
    # (E[min(S, L·K)] ≈ L·E[K] ≈ 0, margin ≈ −gain), not a crash.
    sol = mt.solve(default.replace({"stake.slash": 1e-310}))
    assert all(math.isfinite(d.episode_margin) for d in sol.deviations)


def test_regression_raise_slash_advice_is_for_q_one(default):
    # R = 0.5, L = 0: weaker-model q* = 0.3/(0.3·0.5) = 2 > 1. At q = 1 the slash needed
    # is L*(1) = 0.3/0.3 − 0.5 = 0.5; L*(0.05) = 0.3/(0.05·0.3) − 0.5 = 19.5 is not it.
    sol = mt.solve(default.replace({"stake.slash": 0.0, "task.reward": 0.5}))
    assert "at q = 1 a slash of 0.5 deters" in dev(sol, "weaker-model").reason
    # with α = 0.1 and q = 0: L*(1) = 0.3/(0.3 − 0.1) − 0.5 = 1.0 (not 0.3/0.3 − 0.5 = 0.5)
    sol = mt.solve(default.replace({"stake.slash": 0.0, "task.reward": 0.5,
                                    "audit.false_alarm_rate": 0.1, "audit.sampling_rate": 0.0}))
    assert "at q = 1 a slash of 1 deters" in dev(sol, "weaker-model").reason


def test_no_common_sampling_rate_is_reported(default):
    # α = 0.1, q = 0.08, L = 20, R = 1; a costlier deviation (c = 0.5 > c_h = 0.4, δ = 0):
    # honest beats it iff (c_j − c_h) + q·(δ − α)·(L + R) ≥ 0, i.e. 0.1 − 2.1q ≥ 0,
    # q ≤ 1/21 ≈ 0.0476. weaker-model (δ = 0.3) needs
    # q ≥ 0.3/((0.3 − 0.1)·21) = 1/14 ≈ 0.0714 > 1/21: no rate deters both.
    s = default.replace({"audit.false_alarm_rate": 0.1, "audit.sampling_rate": 0.08})
    raw = s.raw()
    raw["deviation"].append({"name": "pricier-model", "cost": 0.5, "divergence": 0.0})
    import tomli_w
    s = mt.loads(tomli_w.dumps(raw))
    sol = mt.solve(s)
    pricier = next(d for d in sol.deviations if d.name == "pricier-model")
    assert pricier.deterrence_upper_rate == pytest.approx(1 / 21)
    assert not sol.deterrable
    assert sol.to_dict()["deterrence_sampling_rate"] is None
    assert any("no sampling rate deters every deviation" in x for x in sol.degeneracies)


def test_infinite_negative_margin_fails(default):
    # q = 0: nothing is ever detected, so a cheating episode never ends: its stake margin is −∞
    sol = mt.solve(default.replace({"audit.sampling_rate": 0.0}))
    stake = next(m for m in sol.margins if m.name == "stake[weaker-model]")
    assert stake.value == -math.inf and not stake.holds


def test_derive_values_at_boundaries_do_not_crash(default):
    # δ(1 − β) = α exactly, q = 0 and r = 1 used to raise in sympy's Max; the values come from
    # the numeric closed forms: q* = ∞ where no rate deters
    for change in ({"audit.false_alarm_rate": 0.3}, {"audit.sampling_rate": 0.0}, {"audit.collusion": 1.0}):
        d = mt.derive(default.replace(change))
        assert d.render()
        if "audit.sampling_rate" not in change:
            assert d.value("deterrence_sampling_rate", "weaker-model") == math.inf


def test_episode_margin_with_huge_flight(default):
    # λT = 6·10^13 tasks in flight: the closed form of E[min(K, ·)] needs no sum over them
    s = default.replace({"stake.throughput": 1e12, "stake.slash": 1e-9})
    sol = mt.solve(s)
    ep = next(m for m in sol.margins if m.name == "episode[weaker-model]")
    assert ep.value < 0 and math.isfinite(ep.value)
