"""Verifier incentives (mira_theory.incentives): the checker game and its remedies.

Worked examples are computed by hand in the comments from the model in the module docstring:

    e = 1 − rⁿ,  a₀ = e·α·b·L/n,  w_h = a₀ − k,  w_j = (e·δ(1 − β)(D + bL) − n·k)/n,
    X* = −w_h/(w_j − w_h),  y* = (c_h − c_j)/(q·e·(δ(1 − β) − α)(L + R)),
    F* = k − a₀,  J* = n·(k − (1 − φ)a₀)/(φ(1 − β)),  B* = (k − (1 − ψ)a₀)/(ψ(1 − g − α)).

The equilibria are checked against the exact 2×2 solver and pygambit, the remedies' thresholds
against payoffs enumerated from first principles, the jackpot split against Monte Carlo.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from scipy import stats

import mira_theory as mt
from mira_theory import incentives as inc
from mira_theory.results import dumps
from mira_theory.solvers import external, two_column

MODELS = Path(__file__).resolve().parents[1] / "models"
SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def approx(x, rel=1e-9):
    return pytest.approx(x, rel=rel, abs=1e-12)


@pytest.fixture(scope="module")
def default_solution(default):
    return inc.solve(default)


def game(sol, name):
    return next(c for c in sol.checker if c.deviation == name)


# --------------------------------------------------------------------------------------
# 1. worked examples
# --------------------------------------------------------------------------------------


def test_default_checker_game_by_hand(default_solution):
    # default.toml: R = 1, c_h = 0.4, D = 5; k = 0.4, n = 1, β = α = r = 0, b = 0.5, q = 0.05;
    # L = 20. e = 1, a₀ = 0, bL = 10, L + R = 21.
    sol = default_solution
    assert sol.dilemma and sol.verifier_gain_honest == approx(-0.4)  # w_h = 0 − 0.4
    rnd, weak = game(sol, "random-output"), game(sol, "weaker-model")
    # random-output, δ = 1: w_j = 1·(5 + 10) − 0.4 = 14.6; X* = 0.4/(14.6 + 0.4) = 0.4/15
    # (the simplest form k/(b·L + D)); y* = (0.4 − 0)/(0.05·1·21) = 0.4/1.05 = 0.380952
    assert rnd.verifier_gain_cheat == approx(14.6)
    assert rnd.cheating_rate == approx(0.4 / 15)
    assert rnd.check_probability == approx(0.4 / 1.05)
    # weaker-model, δ = 0.3, c_j = 0.1: w_j = 0.3·15 − 0.4 = 4.1; X* = 0.4/4.5 = 0.0888…;
    # y* = 0.3/(0.05·0.3·21) = 0.3/0.315 = 0.952381 (= q*/q = (1/21)/0.05)
    assert weak.verifier_gain_cheat == approx(4.1)
    assert weak.cheating_rate == approx(0.4 / 4.5)
    assert weak.check_probability == approx(0.3 / 0.315)
    assert weak.deterred_when_checking and rnd.deterred_when_checking
    # damage per task: X·δ·D·(1 − q·y·e(1 − β)); random: (0.4/15)·5·(1 − 0.05·0.4/1.05)
    assert rnd.damage_per_task == approx((0.4 / 15) * 5 * (1 - 0.05 * 0.4 / 1.05))
    # the full game: envelope U_h = 0.6, U_weak = 0.9 − 0.315y, U_rnd = 1 − 1.05y; weak/rnd
    # cross at y = 0.1/0.735 where both w > 0 (no equilibrium), so the unique one mixes
    # honest and weaker-model at y = 0.952381 with X = 0.0888…
    (eq,) = sol.equilibria
    assert eq.strategies["provider"]["weaker-model"] == approx(0.4 / 4.5)
    assert eq.strategies["verifier"]["check"] == approx(0.3 / 0.315)
    assert sol.damage_per_task == approx((0.4 / 4.5) * 0.3 * 5 * (1 - 0.05 * 0.3 / 0.315))


def test_simplest_form_weights(default):
    # random-output at default: X* = k/(ω_b·b·L + ω_D·D)
    for wb, wd, expected in [(1, 1, 0.4 / 15), (1, 0, 0.4 / 10), (0, 1, 0.4 / 5)]:
        sol = inc.solve(default, bounty_weight=wb, damage_weight=wd)
        assert game(sol, "random-output").cheating_rate == approx(expected)
    # nothing to gain from catching: skipping is dominant, the provider cheats for sure
    sol = inc.solve(default, bounty_weight=0, damage_weight=0)
    rnd = game(sol, "random-output")
    assert math.isnan(rnd.cheating_rate)
    assert [(e.strategies["provider"]["random-output"], e.strategies["verifier"]["check"])
            for e in rnd.equilibria] == [(1.0, 0.0)]


def test_committee_with_false_alarms_by_hand(build):
    # n = 3, r = 0, α = 0.01, β = 0, b = 0.5, L = 20, k = 0.4, q = 0.05:
    # a₀ = 1·0.01·10/3 = 1/30; w_h = 1/30 − 0.4 = −0.366667.
    s = build(changes={"audit.verifiers": 3, "audit.false_alarm_rate": 0.01})
    sol = inc.solve(s, bond_rate=0.001)
    a0 = 0.1 / 3
    assert sol.verifier_gain_honest == approx(a0 - 0.4)
    rnd = game(sol, "random-output")
    # w_j = (15 − 1.2)/3 = 4.6; X* = 0.366667/(4.6 + 0.366667) = 1.1/14.9
    # y* = 0.4/(0.05·(1 − 0.01)·21) = 0.4/1.0395
    assert rnd.cheating_rate == approx(1.1 / 14.9)
    assert rnd.check_probability == approx(0.4 / 1.0395)
    fee, jack, att = (sol.remedy(n) for n in inc.REMEDIES)
    # fee: F* = 0.4 − 1/30 = 0.366667; cost q·n·F* = 0.15·0.366667 = 0.055
    assert fee.threshold == approx(0.4 - a0) and fee.cost_per_task == approx(0.055)
    # jackpot, φ = 0.05: h_φ = 0.4 − 0.95/30 = 0.368333; J* = 3·0.368333/0.05 = 22.1;
    # some checking from h_φ/φ = 7.36667; cost q·φ/(1 − φ)·J* = 0.0025/0.95·22.1 = 0.0581579
    h_phi = 0.4 - 0.95 * a0
    assert jack.threshold == approx(22.1)
    assert jack.details["jackpot_for_some_checking"] == approx(h_phi / 0.05)
    assert jack.cost_per_task == approx(0.0025 / 0.95 * 22.1)
    # attention, ψ = 0.05, g ≈ 0: B* = 0.368333/(0.05·0.99) = 7.44108; cost
    # 0.15/0.95·(0.368333 + 0.001·B*) + 0.0025/0.95·0.4
    B = h_phi / 0.0495
    assert att.threshold == approx(B)
    assert att.costs["participation_fees"] == approx(0.15 / 0.95 * h_phi)
    assert att.costs["bond_capital"] == approx(0.15 / 0.95 * 0.001 * B)
    assert att.costs["challenges"] == approx(0.0025 / 0.95 * 0.4)
    assert sol.ranking == ("audit-fee", "forced-errors", "attention-challenges")


def test_default_remedies_by_hand(default_solution):
    # a₀ = 0, h = k = 0.4, q = 0.05, n = 1, φ = ψ = 0.05, c_f = 0, c_ch = k,
    # ρ = 0.05/(100·31557600) per unit of bond and assignment.
    sol = default_solution
    fee, jack, att = (sol.remedy(n) for n in inc.REMEDIES)
    assert fee.threshold == approx(0.4) and fee.cost_per_task == approx(0.05 * 0.4)  # 0.02
    # φ·J ≥ k: J* = 0.4/0.05 = 8; cost 0.05·0.05/0.95·8 = 0.0210526
    assert jack.threshold == approx(8.0) and jack.cost_per_task == approx(0.0025 / 0.95 * 8)
    # ψ·B ≥ k: B* = 8; cost 0.05/0.95·(0.4 + ρ·8) + 0.0025/0.95·0.4 = 0.0221053 (+ ~7e-12)
    rho = 0.05 / (100 * 365.25 * 24 * 3600)
    assert att.threshold == approx(8.0)
    assert att.cost_per_task == approx(0.05 / 0.95 * (0.4 + rho * 8) + 0.0025 / 0.95 * 0.4)
    assert sol.ranking == ("audit-fee", "forced-errors", "attention-challenges")
    assert sol.cheapest == "audit-fee"


def test_jackpot_symmetric_equilibrium_by_hand(build):
    # n = 2, β = 0, a₀ = 0, k = 0.4, φ = 0.05: s(p) = (1 − (1 − p)²)/(2p) = 1 − p/2, so
    # G(p) = 0.05·J·(1 − p/2) − 0.4. J = 12: 0.6(1 − p/2) = 0.4 ⇒ p* = 2/3.
    # J* = 2·0.4/0.05 = 16 (dominant), some checking above 0.4/0.05 = 8.
    s = build(changes={"audit.verifiers": 2})
    sol = inc.solve(s, jackpot=12.0)
    jack = sol.remedy("forced-errors")
    assert jack.threshold == approx(16.0)
    assert jack.details["jackpot_for_some_checking"] == approx(8.0)
    assert jack.details["check_probability_at_jackpot"] == approx(2 / 3)
    # at J = 12, p = 2/3: a forced error is caught w.p. 1 − (1/3)² = 8/9, paying 12:
    # cost 0.05·0.05/0.95·(8/9)·12
    assert jack.details["cost_per_task_at_jackpot"] == approx(0.0025 / 0.95 * 8 / 9 * 12)
    kw = dict(forced_error_rate=0.05, verifiers=2, miss_rate=0.0, audit_cost=0.4, false_alarm_bounty=0.0)
    assert inc.jackpot_check_probability(16.0, **kw) == 1.0
    assert inc.jackpot_check_probability(8.0, **kw) == 0.0


def test_expected_share_by_hand():
    # n = 3, p = 1/2: M ~ Bin(2, 1/2): E[1/(1+M)] = 1/4·1 + 1/2·1/2 + 1/4·1/3 = 7/12;
    # closed form (1 − 1/8)/(3/2) = 7/12
    assert inc.expected_share(3, 0.5) == approx(7 / 12)
    assert inc.expected_share(3, 0.0) == 1.0 and inc.expected_share(3, 1.0) == approx(1 / 3)
    assert inc.expected_share(1, 0.3) == approx(1.0)
    assert inc.expected_share(5, 1e-12) == approx(1.0, rel=1e-9)  # stable near 0


# --------------------------------------------------------------------------------------
# 2. the closed form against the exact solver and pygambit
# --------------------------------------------------------------------------------------

prob = st.floats(0.0, 1.0)


def amount(lo: float, hi: float):
    # nonzero values below 1e-6 sit under the solvers' tie tolerance (1e-9 relative), where
    # the toolkit reports ties that pygambit's exact rationals resolve: map them to 0
    return st.floats(lo, hi).map(lambda v: 0.0 if 0 < abs(v) < 1e-6 else v)


@st.composite
def checker_games(draw):
    p01 = amount(0.0, 1.0)
    return {
        "reward": draw(amount(0.0, 5.0)), "cost_honest": draw(amount(0.0, 2.0)),
        "damage": draw(amount(0.0, 50.0)), "deviation_cost": draw(amount(0.0, 2.0)),
        "divergence": draw(p01), "audit_cost": draw(amount(0.0, 2.0)),
        "verifiers": draw(st.integers(1, 7)), "miss_rate": draw(p01),
        "false_alarm_rate": draw(amount(0.0, 0.3)), "collusion": draw(amount(0.0, 0.9)),
        "bounty_share": draw(p01), "sampling_rate": draw(st.floats(0.001, 1.0)),
        "slash": draw(amount(0.0, 100.0)), "bounty_weight": draw(p01), "damage_weight": draw(p01),
    }


def pairs(res):
    return [(e.row, np.array([e.q, 1 - e.q])) for e in res.equilibria]


def contains(pairs_, x, y, tol=1e-6):
    return any(np.allclose(a, x, atol=tol) and np.allclose(b, y, atol=tol) for a, b in pairs_)


@SETTINGS
@given(checker_games())
def test_closed_form_is_the_equilibrium(p):
    cf = inc.checker_closed_form(**p)
    A, B = inc.checker_matrices(**p)
    res = two_column.solve(A, B)
    gambit = external.pygambit_equilibria(A, B)
    # the toolkit's and pygambit's equilibrium sets agree
    assert all(contains(pairs(res), x, y) for x, y in gambit)
    assert all(contains(gambit, x, y) for x, y in pairs(res)) or res.degenerate
    if math.isnan(cf["cheating_rate"]):
        # no interior equilibrium in the closed form: none with both players strictly mixing
        assert not any(0 < e.row[1] < 1 and 0 < e.q < 1 for e in res.equilibria) or res.degenerate
        return
    x = np.array([1 - cf["cheating_rate"], cf["cheating_rate"]])
    y = cf["check_probability"]
    assert 0 < x[1] < 1 and 0 < y < 1
    # no profitable deviation at the closed form (both players indifferent)
    scale = max(1.0, float(np.abs(A).max()), float(np.abs(B).max()))
    assert max(two_column.regrets(A, B, x, y)) <= 1e-9 * scale
    assert contains(pairs(res), x, np.array([y, 1 - y]))
    assert contains(gambit, x, np.array([y, 1 - y]))


@SETTINGS
@given(checker_games())
def test_dilemma_means_no_honest_checking_equilibrium(p):
    # w_h < 0 and a profitable deviation: (honest, check) is never an equilibrium
    cf = inc.checker_closed_form(**p)
    assume(cf["verifier_gain_honest"] < -1e-9 and p["cost_honest"] > p["deviation_cost"] + 1e-9)
    A, B = inc.checker_matrices(**p)
    res = two_column.solve(A, B)
    assert not any(np.allclose(e.row, [1, 0]) and e.q == 1.0 for e in res.equilibria)


# --------------------------------------------------------------------------------------
# 3. remedies: thresholds against payoffs enumerated from first principles
# --------------------------------------------------------------------------------------


@st.composite
def scenario_changes(draw):
    return {
        "audit.verifiers": draw(st.integers(1, 6)), "audit.cost": draw(st.floats(0.01, 2.0)),
        "audit.false_alarm_rate": draw(st.floats(0.0, 0.2)), "audit.miss_rate": draw(st.floats(0.0, 0.5)),
        "audit.collusion": draw(st.floats(0.0, 0.5)), "audit.bounty_share": draw(prob),
        "audit.sampling_rate": draw(st.floats(0.001, 1.0)), "stake.slash": draw(st.floats(0.0, 50.0)),
    }


remedy_parameters = st.fixed_dictionaries({
    "forced_error_rate": st.floats(0.001, 0.5), "challenge_rate": st.floats(0.001, 0.5),
    "guess_probability": st.sampled_from([2.0**-256, 0.25, 0.5]), "bond_rate": st.floats(0.0, 0.01),
    "forced_error_cost": st.floats(0.0, 1.0),
})


def first_principles(s, params):
    """a₀ and the check-minus-skip payoff of each remedy, by enumerating what can happen."""
    a = s.audit
    n, k = a.verifiers, a.cost
    a0 = (1 - a.collusion**n) * a.false_alarm_rate * a.bounty_share * s.stake.slash / n

    def fee(F):
        return (F - k + a0) - 0.0  # checked: fee, cost, false-alarm bounty; skipped: nothing

    def jackpot(J, p):
        phi, beta = params["forced_error_rate"], a.miss_rate
        share = sum(stats.binom.pmf(m, n - 1, p) * J / (1 + m) for m in range(n))
        check = phi * (-k + (1 - beta) * share) + (1 - phi) * (-k + a0)
        return check - 0.0

    def attention(B):
        psi, g = params["challenge_rate"], params["guess_probability"]
        check = psi * (-k - a.false_alarm_rate * B) + (1 - psi) * (-k + a0)
        skip = psi * (-(1 - g) * B)
        return check - skip

    return a0, fee, jackpot, attention


@SETTINGS
@given(scenario_changes(), remedy_parameters)
def test_thresholds_are_exact(build, changes, params):
    s = build(changes=changes)
    sol = inc.solve(s, **params)
    a0, fee_gain, jackpot_gain, attention_gain = first_principles(s, params)
    fee, jack, att = (sol.remedy(n) for n in inc.REMEDIES)
    tol = 1e-9 * max(1.0, s.audit.cost)
    assert sol.dilemma == (a0 < s.audit.cost)
    cases = [(fee, fee_gain), (jack, lambda J: jackpot_gain(J, 1.0)), (att, attention_gain)]
    for remedy, gain in cases:
        t = remedy.threshold
        if not sol.dilemma:
            assert t == 0.0 and remedy.cost_per_task == 0.0
            continue
        assert math.isfinite(t) and t > 0
        assert gain(t) >= -tol  # checking is a best response at the threshold ...
        assert gain(t) <= tol  # ... exactly: the verifier is indifferent there
        assert gain(t * (1 - 1e-6)) < 0  # and not below it
        assert remedy.cost_per_task >= 0
    if sol.dilemma:
        # the jackpot for some checking is J*/n: there the lone checker (p = 0) breaks even
        assert jackpot_gain(jack.details["jackpot_for_some_checking"], 0.0) == pytest.approx(0.0, abs=tol)


@SETTINGS
@given(scenario_changes(), st.floats(0.001, 0.5), st.floats(0.0, 1.5))
def test_jackpot_check_probability_is_a_symmetric_equilibrium(build, changes, phi, ratio):
    s = build(changes=changes)
    sol = inc.solve(s, forced_error_rate=phi)
    assume(sol.dilemma)
    J = ratio * sol.remedy("forced-errors").threshold
    _, _, jackpot_gain, _ = first_principles(s, {"forced_error_rate": phi})
    p = inc.jackpot_check_probability(
        J, forced_error_rate=phi, verifiers=s.audit.verifiers, miss_rate=s.audit.miss_rate,
        audit_cost=s.audit.cost, false_alarm_bounty=s.audit.cost + sol.verifier_gain_honest)
    tol = 1e-7 * max(1.0, s.audit.cost)
    g = jackpot_gain(J, p)
    if p == 1.0:
        assert g >= -tol  # checking is a best response when all others check
    elif p == 0.0:
        assert g <= tol  # skipping is a best response when nobody checks
    else:
        assert g == pytest.approx(0.0, abs=tol)  # indifferent: any mix is a best response


def test_fee_not_verifiable_fails(default):
    sol = inc.solve(default, fee_verifiable=False)
    fee = sol.remedy("audit-fee")
    assert not fee.feasible and math.isinf(fee.cost_per_task)
    assert sol.ranking == ("forced-errors", "attention-challenges", "audit-fee")
    assert sol.cheapest == "forced-errors"
    assert sol.to_dict()["remedies"]["audit-fee"]["threshold"] is None


def test_guessing_everything_defeats_challenges(default):
    # g = 1: a skipper always passes, no bond makes checking pay
    sol = inc.solve(default, guess_probability=1.0, fee_verifiable=False)
    assert math.isinf(sol.remedy("attention-challenges").threshold)
    assert sol.ranking[-2:] == ("audit-fee", "attention-challenges")  # both infeasible, stable


def test_no_dilemma_needs_no_remedy(build):
    # α = 0.1, b = 1, L = 20, n = 1: a₀ = 2 ≥ k = 0.4, checking pays on false alarms alone
    sol = inc.solve(build(changes={"audit.false_alarm_rate": 0.1, "audit.bounty_share": 1.0}))
    assert not sol.dilemma
    assert all(r.threshold == 0.0 and r.cost_per_task == 0.0 for r in sol.remedies)


# --------------------------------------------------------------------------------------
# 4. the jackpot split against Monte Carlo
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("n,p,beta", [(2, 0.5, 0.0), (3, 0.3, 0.1), (5, 0.8, 0.0), (7, 0.05, 0.2)])
def test_jackpot_split_monte_carlo(n, p, beta):
    # the focal verifier checks; each of the n − 1 others checks with p; a forced error is
    # caught by every checker unless the (common) miss happens; J = 1 split among catchers
    rng = np.random.default_rng(20240501 + n)
    trials = 400_000
    others = rng.binomial(1, p, size=(trials, n - 1)).sum(axis=1)
    caught = rng.random(trials) >= beta
    share = np.where(caught, 1.0 / (1 + others), 0.0)
    expected = (1 - beta) * inc.expected_share(n, p)
    assert abs(share.mean() - expected) <= 5 * share.std() / math.sqrt(trials)


@pytest.mark.parametrize("n", [2, 4, 6])
def test_symmetric_equilibrium_monte_carlo(n):
    # at p*, a checker's simulated gain φ·J·(share) − k is zero within sampling error
    phi, k = 0.1, 0.4
    J = 0.5 * (k / phi + n * k / phi)  # between "some checking" and "all check"
    p = inc.jackpot_check_probability(J, forced_error_rate=phi, verifiers=n, miss_rate=0.0,
                                      audit_cost=k, false_alarm_bounty=0.0)
    assert 0 < p < 1
    rng = np.random.default_rng(7 + n)
    trials = 400_000
    forced = rng.random(trials) < phi
    others = rng.binomial(n - 1, p, size=trials)
    gain = np.where(forced, J / (1 + others), 0.0) - k
    assert abs(gain.mean()) <= 5 * gain.std() / math.sqrt(trials)


# --------------------------------------------------------------------------------------
# 5. ranking and the result object
# --------------------------------------------------------------------------------------


def test_ranking_follows_costs(default):
    # expensive forced errors (c_f = 5): jackpot cost 0.0025/0.95·(8 + 5) = 0.0342 > attention 0.0221
    sol = inc.solve(default, forced_error_cost=5.0)
    assert sol.remedy("forced-errors").cost_per_task == approx(0.0025 / 0.95 * 13)
    assert sol.ranking == ("audit-fee", "attention-challenges", "forced-errors")
    # a cheap, rare challenge vs frequent forced errors with the fee unavailable:
    # φ = 0.5: 0.05·1/0.5·... = q·n·k/(1 − φ) = 0.04; ψ = 0.01, c_ch = 0: 0.05·0.4/0.99 = 0.0202
    sol = inc.solve(default, fee_verifiable=False, forced_error_rate=0.5, challenge_rate=0.01,
                    challenge_cost=0.0, bond_rate=0.0)
    assert sol.remedy("forced-errors").cost_per_task == approx(0.04)
    assert sol.remedy("attention-challenges").cost_per_task == approx(0.02 / 0.99)
    assert sol.cheapest == "attention-challenges"


@SETTINGS
@given(scenario_changes(), remedy_parameters, st.booleans())
def test_ranking_is_sorted(build, changes, params, verifiable):
    sol = inc.solve(build(changes=changes), fee_verifiable=verifiable, **params)
    costs = [sol.remedy(n).cost_per_task for n in sol.ranking]
    assert costs == sorted(costs)
    assert set(sol.ranking) == set(inc.REMEDIES)
    best = sol.remedy(sol.ranking[0])
    assert sol.cheapest == (best.name if best.feasible else None)


def test_result_object(default_solution, default):
    sol = default_solution
    d = sol.to_dict()
    text = json.dumps(d, allow_nan=False)  # JSON-safe: no NaN or inf
    assert json.loads(dumps(sol)) == json.loads(text)
    assert d["scenario"] == "default" and d["scenario_sha256"] == default.sha256
    assert d["toolkit_version"] == mt.__version__ and d["method"]
    assert d["cheapest"] == "audit-fee" and d["ranking"][0] == "audit-fee"
    assert d["remedies"]["forced-errors"]["threshold"] == approx(8.0)
    s = str(sol)
    assert "verifier incentives: default" in s and "audit-fee" in s and "0.0266667" in s
    assert "<table>" in sol._repr_html_() and "cheapest remedy" in sol._repr_html_()
    assert "VerifierIncentives(scenario='default'" in repr(sol)
    with pytest.raises(dataclasses.FrozenInstanceError):
        sol.dilemma = False
    with pytest.raises(TypeError):
        sol.parameters["jackpot"] = 1.0


def test_nan_becomes_null(default):
    sol = inc.solve(default, bounty_weight=0, damage_weight=0)
    d = json.loads(json.dumps(sol.to_dict(), allow_nan=False))
    assert d["checker"][1]["cheating_rate"] is None


def test_rejects_bad_input(default):
    with pytest.raises(mt.ScenarioError, match="audit"):
        inc.solve(mt.load(MODELS / "binary-claims.toml"))
    with pytest.raises(TypeError, match="unknown remedy parameters"):
        inc.solve(default, jackpott=1.0)
    with pytest.raises(ValueError, match="forced_error_rate"):
        inc.solve(default, forced_error_rate=1.0)
    with pytest.raises(ValueError, match="jackpot"):
        inc.solve(default, jackpot=-1.0)
