"""Statistical comparison primitives (mira_theory.stats) against published values, hand
computations and independent brute-force enumerations."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
from scipy import stats as sps

from mira_theory import stats as st

# ---------------------------------------------------------------------------------------
# exact binomial
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("x, n, lo, hi", [
    # published 95% Clopper–Pearson intervals (e.g. Newcombe 1998, Table I; any binomial table)
    pytest.param(0, 10, 0.0, 0.3085, id="0-of-10"),
    pytest.param(5, 10, 0.1871, 0.8129, id="5-of-10"),
    pytest.param(10, 10, 0.6915, 1.0, id="10-of-10"),
    pytest.param(1, 29, 0.0009, 0.1776, id="1-of-29"),
])
def test_clopper_pearson_published(x, n, lo, hi):
    got = st.clopper_pearson(x, n, level=0.95)
    assert got == pytest.approx((lo, hi), abs=1e-4)


def test_clopper_pearson_zero_closed_form():
    # x = 0: the upper bound solves (1 − p)^n = α/2
    for n in (1, 7, 100, 5000):
        assert st.clopper_pearson(0, n, 0.99)[1] == pytest.approx(1 - 0.005 ** (1 / n), rel=1e-10)


def hand_binomial_p(x: int, n: int, p: float) -> float:
    """Σ P(k) over the outcomes no more likely than x (scipy's relative tie tolerance 1 + 1e-7)."""
    pmf = [math.comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(n + 1)]
    return min(1.0, sum(v for v in pmf if v <= pmf[x] * (1 + 1e-7)))


@pytest.mark.parametrize("x, n, p", [(3, 10, 0.5), (0, 20, 0.1), (9, 40, 0.1), (15, 30, 0.3), (30, 30, 0.9)])
def test_binomial_p_value_by_hand(x, n, p):
    c = st.binomial("rate", p, x, n)
    assert c.p_value == pytest.approx(hand_binomial_p(x, n, p), rel=1e-9)
    assert c.passed == (c.p_value > 0.01)
    assert c.observed == x / n and c.n == n and c.level == 0.99


def test_binomial_symmetric_case_hand():
    # x = 2 of n = 10 at p = 1/2: P(X ≤ 2) + P(X ≥ 8) = 2·(1 + 10 + 45)/1024
    assert st.binomial("r", 0.5, 2, 10).p_value == pytest.approx(112 / 1024, rel=1e-12)


def test_perturbed_detection_rate_fails_and_true_rate_passes():
    rng = np.random.default_rng(7)
    d, n = 0.015, 200_000  # the default scenario's weaker-model detection per task
    x = int(rng.binomial(n, d))
    right = st.binomial("detection per task", d, x, n)
    wrong = st.binomial("detection per task", 1.3 * d, x, n)
    assert right.passed and right.interval[0] <= d <= right.interval[1]
    assert not wrong.passed and wrong.p_value < 1e-12
    report = st.adjust([right, wrong])
    assert [c.passed for c in report] == [True, False]
    assert "**FAIL**" in st.render_report(report).splitlines()[-1]


# ---------------------------------------------------------------------------------------
# zero-event rule
# ---------------------------------------------------------------------------------------

def test_zero_event_rule():
    ok = st.zero_event("honest false slashes", 0, 1000)
    assert ok.passed and ok.p_value == 1.0 and ok.predicted == 0.0
    assert ok.interval[1] == pytest.approx(1 - 0.01 ** (1 / 1000), rel=1e-12)
    assert ok.interval[1] == pytest.approx(-math.log(0.01) / 1000, rel=3e-3)  # ≈ 4.6/n
    # at level 0.95 the bound is the rule of three
    assert st.zero_event("z", 0, 3000, level=0.95).interval[1] == pytest.approx(3 / 3000, rel=2e-3)
    bad = st.zero_event("honest false slashes", 1, 10**6)
    assert not bad.passed and bad.p_value == 0.0
    # a predicted rate of exactly 0 given to binomial() is the same rule
    assert st.binomial("f", 0.0, 1, 10**6).passed is False
    assert st.binomial("f", 0.0, 0, 10).passed is True
    assert st.binomial("f", 1.0, 10, 10).passed is True and st.binomial("f", 1.0, 9, 10).passed is False


# ---------------------------------------------------------------------------------------
# chi-square goodness of fit
# ---------------------------------------------------------------------------------------

def test_chi_square_hand():
    # E = (25, 50, 25); X² = 25/25 + 0 + 25/25 = 2; χ²₂ survival = e^{−X²/2} = e^{−1}
    c = st.chi_square("consensus", {"correct": 0.25, "wrong": 0.5, "none": 0.25},
                      {"correct": 30, "wrong": 50, "none": 20})
    assert c.p_value == pytest.approx(math.exp(-1), rel=1e-12)
    assert "chi-square goodness of fit" in c.test and c.passed and c.n == 100


def test_chi_square_rejects_wrong_prediction():
    c = st.chi_square("consensus", {"correct": 0.9, "wrong": 0.05, "none": 0.05},
                      {"correct": 800, "wrong": 100, "none": 100})
    # X² = 100²/900 + 50²/50 + 50²/50 = 111.1…; far beyond χ²₂'s 99% point 9.21
    assert not c.passed and c.p_value < 1e-20


def brute_force_exact_p(counts, probs):
    """P(X² ≥ observed X²) by enumerating every sequence of categories (k^n of them)."""
    n = sum(counts)
    E = [n * p for p in probs]
    x2 = sum((o - e) ** 2 / e for o, e in zip(counts, E))
    total = 0.0
    for seq in itertools.product(range(len(probs)), repeat=n):
        o = [seq.count(i) for i in range(len(probs))]
        if sum((a - e) ** 2 / e for a, e in zip(o, E)) >= x2 - 1e-9:
            total += math.prod(probs[i] for i in seq)
    return total


@pytest.mark.parametrize("counts, probs", [((5, 1, 1), (0.8, 0.15, 0.05)), ((3, 2, 2), (0.7, 0.2, 0.1)),
                                           ((6, 0, 1, 0), (0.6, 0.2, 0.1, 0.1))])
def test_chi_square_small_counts_exact(counts, probs):
    names = [f"c{i}" for i in range(len(probs))]
    c = st.chi_square("small", dict(zip(names, probs)), dict(zip(names, counts)))
    assert "exact multinomial" in c.test
    assert c.p_value == pytest.approx(brute_force_exact_p(counts, probs), rel=1e-9)


def test_chi_square_monte_carlo_fallback_agrees_with_exact():
    pred = {"correct": 0.97, "wrong": 0.001, "none": 0.029}
    obs = {"correct": 480, "wrong": 2, "none": 18}
    exact = st.chi_square("c", pred, obs)
    mc = st.chi_square("c", pred, obs, max_enumerated=0, simulations=200_000)
    assert "exact" in exact.test and "Monte Carlo" in mc.test
    se = math.sqrt(exact.p_value * (1 - exact.p_value) / 200_000)
    assert abs(mc.p_value - exact.p_value) < 5 * se + 1e-5


def test_chi_square_impossible_category():
    c = st.chi_square("c", {"correct": 1.0, "wrong": 0.0, "none": 0.0}, {"correct": 99, "wrong": 1})
    assert not c.passed and c.p_value == 0.0
    ok = st.chi_square("c", {"correct": 0.5, "wrong": 0.5, "none": 0.0}, {"correct": 48, "wrong": 52})
    assert ok.passed


# ---------------------------------------------------------------------------------------
# mean payoff (t)
# ---------------------------------------------------------------------------------------

def test_mean_payoff_hand():
    # x̄ = 3, s² = 2.5, se = √0.5; t_{4, 0.975} = 2.776445 (published t table)
    c = st.mean_payoff("payoff", 2.0, [1, 2, 3, 4, 5], level=0.95)
    half = 2.776445 * math.sqrt(0.5)
    assert c.observed == 3.0 and c.interval == pytest.approx((3 - half, 3 + half), rel=1e-6)
    assert c.p_value == pytest.approx(sps.ttest_1samp([1, 2, 3, 4, 5], 2.0).pvalue, rel=1e-10)
    x = np.random.default_rng(3).normal(0.6, 2.0, 5000)
    a = st.mean_payoff("p", 0.6, x)
    b = st.mean_payoff("p", 0.6, total=x.sum(), total_squares=(x**2).sum(), n=x.size)
    assert a.p_value == pytest.approx(b.p_value, rel=1e-6) and a.interval == pytest.approx(b.interval)
    assert not st.mean_payoff("p", 0.8, x).passed  # 0.2 off with se 0.028


def test_mean_payoff_zero_variance():
    assert st.mean_payoff("p", 0.6, [0.6] * 10).passed
    assert not st.mean_payoff("p", 0.5, [0.6] * 10).passed


# ---------------------------------------------------------------------------------------
# multiple comparisons and the report
# ---------------------------------------------------------------------------------------

def fake(p):
    return st.Comparison("q", 0.0, 0.0, (0.0, 0.0), "t", 0.95, p, True, 1)


def test_holm_hand_example():
    # sorted p: 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06, 0.04·1 = 0.04 → running max 0.06
    ps = [0.01, 0.04, 0.03, 0.005]
    holm = st.adjust([fake(p) for p in ps], level=0.95)
    assert [c.p_adjusted for c in holm] == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert [c.passed for c in holm] == [False, True, True, False]
    bonf = st.adjust([fake(p) for p in ps], method="bonferroni", level=0.95)
    assert [c.p_adjusted for c in bonf] == pytest.approx([0.04, 0.16, 0.12, 0.02])
    assert [c.passed for c in bonf] == [False, True, True, False]
    # Holm is never less powerful than Bonferroni
    assert all(h.p_adjusted <= b.p_adjusted for h, b in zip(holm, bonf))
    assert st.adjust([fake(0.02)] * 2, level=0.99)[0].passed  # 0.04 > 0.01


def test_report_and_json():
    cs = st.adjust([st.binomial("detection", 0.3, 31, 100),
                    st.chi_square("consensus", {"correct": 0.5, "wrong": 0.5}, {"correct": 50, "wrong": 50}),
                    st.zero_event("false slash", 0, 500),
                    st.mean_payoff("payoff", 1.0, [0.9, 1.1, 1.0, 1.05])])
    md = st.render_report(cs)
    lines = md.splitlines()
    assert lines[0] == "| quantity | predicted | observed | interval | n | test | p-value | pass |"
    assert len(lines) == 2 + len(cs) and all(line.count("|") >= 9 for line in lines)
    assert "holm" in md and "FAIL" not in md
    for c in cs:
        json.dumps(c.to_dict(), allow_nan=False)
    with pytest.raises(ValueError):
        st.adjust(cs, method="sidak")
    with pytest.raises(ValueError):
        st.binomial("r", 0.5, 11, 10)


def test_binomial_side_by_hand():
    # 3 honest of 10 when an honest majority is predicted: p = P(X ≤ 3 | n = 10, 1/2) = 176/1024
    c = st.binomial_side("share", 3, 10, "honest", 0.9, level=0.95)
    assert c.p_value == pytest.approx(176 / 1024, rel=1e-12) and c.passed  # 0.17 > 0.05
    # 1 honest of 10, a deviating majority predicted: p = P(X ≥ 1) = 1 − 1/1024 (passes)
    c = st.binomial_side("share", 1, 10, "deviating", 0.1, level=0.95)
    assert c.p_value == pytest.approx(1023 / 1024, rel=1e-12) and c.passed
    # 0 of 10 against an honest majority: p = 1/1024 < 0.05 fails
    assert not st.binomial_side("share", 0, 10, "honest", 0.9, level=0.95).passed
    with pytest.raises(ValueError):
        st.binomial_side("share", 1, 10, "sideways", 0.5)


def test_predictive_by_hand():
    # observed 60/100 against a predictive N(0.5, 0.05²): z = 2, p = 2·(1 − Φ(2)) = 0.0455
    c = st.predictive("share", 0.5, 0.05, 60, 100, level=0.95)
    assert c.p_value == pytest.approx(0.04550026389635842, rel=1e-9)
    assert not c.passed  # 0.0455 < 0.05
    assert st.predictive("share", 0.5, 0.05, 60, 100, level=0.99).passed  # > 0.01
    assert st.predictive("share", 0.6, 0.0, 60, 100).p_value == 1.0  # exact agreement, zero spread


# ---------------------------------------------------------------------------------------
# Monte Carlo tests against simulated runs
# ---------------------------------------------------------------------------------------

def test_monte_carlo_p_value_by_hand():
    sims = np.arange(1, 100)  # 1..99
    c = st.monte_carlo("x", 50.0, sims)
    # 50 values ≤ 50 and 50 ≥ 50: p = 2·(1 + 50)/100 > 1 → 1
    assert c.p_value == 1.0 and c.passed and c.predicted == pytest.approx(50.0)
    c = st.monte_carlo("x", 10.5, sims)  # 10 below: p = 2·11/100
    assert c.p_value == pytest.approx(0.22)
    c = st.monte_carlo("x", 1000.0, sims, level=0.95)  # beyond every simulated run: the smallest p, 2/(R + 1)
    assert c.p_value == pytest.approx(0.02) and c.passed is False
    assert c.interval == pytest.approx(tuple(np.quantile(sims, [0.025, 0.975])))
    with pytest.raises(ValueError):
        st.monte_carlo("x", math.nan, sims)


def test_monte_carlo_tests_are_valid_and_can_fail():
    rng = np.random.default_rng(4)
    R, trials = 199, 600
    p_single, p_joint, p_joint_shifted = [], [], []
    for _ in range(trials):
        sims = rng.gamma(2.0, 1.0, size=(R, 3))  # skewed, like a time-averaged rate
        obs = rng.gamma(2.0, 1.0, size=3)
        p_single.append(st.monte_carlo("x", obs[0], sims[:, 0]).p_value)
        p_joint.append(st.monte_carlo_joint("x", obs, sims).p_value)
        p_joint_shifted.append(st.monte_carlo_joint("x", obs + 5.0, sims).p_value)
    # under the prediction: P(p ≤ a) ≤ a (exact up to ties and the binomial noise of 600 trials)
    for a in (0.05, 0.2):
        assert np.mean(np.array(p_single) <= a) < a + 3 * math.sqrt(a / trials)
        assert np.mean(np.array(p_joint) <= a) < a + 3 * math.sqrt(a / trials)
    assert np.mean(np.array(p_joint) <= 0.5) > 0.4  # not conservative to uselessness
    assert np.mean(np.array(p_joint_shifted) <= 0.05) > 0.9


def test_monte_carlo_joint_by_hand():
    sims = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]])
    # pooled ranks 1..4 have normal scores ∓Φ⁻¹(7/8) ≈ ∓1.150, ∓Φ⁻¹(5/8) ≈ ∓0.319
    c = st.monte_carlo_joint("x", [3.0, 3.0], sims)
    # observed: ranks (4, 4), S = 2·1.150²; the simulated run (0, 0) has ranks (1, 1), the same S: p = 2/4
    assert c.observed == pytest.approx(2 * sps.norm.ppf(7 / 8) ** 2)
    assert c.p_value == pytest.approx(0.5)
    c = st.monte_carlo_joint("x", [3.0, 0.5], sims)
    # observed ranks (4, 2): S = 1.150² + 0.319²; simulated (0,0): (1,1) → 2·1.150²; (1,1): (2,3) → 2·0.319²;
    # (2,2): (3,4) → 0.319² + 1.150² (a tie): two simulated S ≥ the observed one, p = 3/4
    assert c.p_value == pytest.approx(0.75)
    with pytest.raises(ValueError):
        st.monte_carlo_joint("x", [1.0], sims)
