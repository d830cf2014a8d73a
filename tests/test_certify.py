"""Robustness intervals and range certificates (mira_theory.certify).

Expected values come from hand derivations (the IC margin is linear in c_h, L, κ...), and
every certificate is checked by a second method: proofs by a dense grid of re-solved points,
counterexamples by re-solving the point, interval enclosures by exact rational evaluation.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import mira_theory as mt
from mira_theory import certify as C
from mira_theory.games import audit
from tests.scenario_texts import audit_scenario

MODELS = Path(__file__).resolve().parents[1] / "models"

# the shared audit text, with a stake large enough that every margin holds, and nonzero
# α, β, r, n = 2 so that the hand formulas exercise every factor
BASE = (audit_scenario("certify", "certify tests").replace("total = 1000.0", "total = 50000.0")
        .replace("sampling_rate = 0.05", "sampling_rate = 0.1").replace("miss_rate = 0.0", "miss_rate = 0.1")
        .replace("false_alarm_rate = 0.0", "false_alarm_rate = 0.01").replace("collusion = 0.0", "collusion = 0.2")
        .replace("verifiers = 1", "verifiers = 2"))
Q, R, L, ALPHA, BETA, r, n, S = 0.1, 1.0, 20.0, 0.01, 0.1, 0.2, 2, 50000.0
E = 1 - r**n  # effective audit
C_H, C_J, DELTA = 0.4, 0.1, 0.3  # task.cost_honest, weaker-model cost and divergence


def with_box(text: str, box: dict[str, tuple[float, float]]) -> mt.Scenario:
    lines = "\n".join(f'"{k}" = [{lo!r}, {hi!r}]' for k, (lo, hi) in box.items())
    return mt.loads(f"{text}\n[uncertainty]\n{lines}\n")


def solved(scenario: mt.Scenario, point: dict[str, float]) -> dict[str, mt.results.Margin]:
    return {m.name: m for m in mt.solve(scenario.replace(point)).margins}


def grid(box: dict[str, tuple[float, float]], k: int) -> list[dict[str, float]]:
    axes = [np.linspace(lo, hi, k) for lo, hi in box.values()]
    return [dict(zip(box, map(float, p))) for p in itertools.product(*axes)]


@pytest.fixture(scope="module")
def base():
    s = mt.loads(BASE)
    assert mt.solve(s).incentive_compatible
    return s


# --------------------------------------------------------------------------------------
# the fast margins are solve's margins
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("point", [{}, {"task.cost_honest": 0.7}, {"audit.sampling_rate": 0.0},
                                   {"stake.total": 300.0, "stake.throughput": 3.0},
                                   {"deviation.random-output.divergence": 0.2, "audit.verifiers": 5}])
def test_fast_margins_equal_solve(base, point):
    fast = C._AuditModel(base).margins(point)
    ref = solved(base, point)
    assert list(fast) == list(ref)
    for name, m in ref.items():
        assert fast[name] == pytest.approx(m.value, rel=1e-12, abs=1e-12) or fast[name] == m.value


# --------------------------------------------------------------------------------------
# robustness intervals
# --------------------------------------------------------------------------------------


def test_robustness_ends_by_hand(base):
    rob = C.robustness(base, ["task.cost_honest", "stake.capital_cost", "stake.slash", "deviation.weaker-model.cost"])
    gap = DELTA * (1 - BETA) - ALPHA
    # IC: c_h* = c_j + q·e·(δ(1−β) − α)·(L + R)
    row = rob.row("task.cost_honest")
    assert row.high == pytest.approx(C_J + Q * E * gap * (L + R), rel=1e-9)
    assert row.high_limit in ("ic[weaker-model]", "episode[weaker-model]")  # proportional at S ≫ S*
    assert row.low == 0.0 and row.low_limit.startswith("domain")
    # IC in L: L* = (c_h − c_j)/(q·e·(δ(1−β) − α)) − R
    assert rob.row("stake.slash").low == pytest.approx((C_H - C_J) / (Q * E * gap) - R, rel=1e-9)
    # participation: U_h = R − c_h − q·e·α·(L+R) ≥ κ·S/(λ·year)
    u_h = R - C_H - Q * E * ALPHA * (L + R)
    row = rob.row("stake.capital_cost")
    assert row.high == pytest.approx(u_h * 100.0 * audit.SECONDS_PER_YEAR / S, rel=1e-12)
    assert row.high_limit == "participation" and "exact roots" in row.method
    # c_j ≥ c_h − q·e·gap·(L+R) < 0: the domain's end
    row = rob.row("deviation.weaker-model.cost")
    assert C_H - Q * E * gap * (L + R) < 0 and row.low == 0.0 and row.low_limit.startswith("domain")
    assert math.isinf(row.high)


def test_robustness_ends_are_where_solve_changes_verdict(base):
    rob = C.robustness(base, ["task.cost_honest", "audit.false_alarm_rate", "stake.throughput"])
    for row in rob.rows:
        for end, sign in ((row.low, -1), (row.high, 1)):
            if not math.isfinite(end) or row.__dict__[("low" if sign < 0 else "high") + "_limit"].startswith(
                    "domain"):
                continue
            eps = 1e-6 * max(1.0, abs(end))
            inside = solved(base, {row.parameter: end - sign * eps})
            outside = solved(base, {row.parameter: end + sign * eps})
            assert all(m.holds for m in inside.values()), (row, end)
            assert not all(m.holds for m in outside.values()), (row, end)
    d = rob.to_dict()
    assert d["scenario_sha256"] == base.sha256 and len(d["parameters"]) == 3
    assert "task.cost_honest ≤ 0.62416" in str(rob) or "0.62416" in str(rob)
    assert set(rob.to_frame().columns) >= {"value", "low", "high", "low_limit", "high_limit"}


def test_robustness_fails_at_value_in_force_is_reported():
    s = mt.loads(audit_scenario("fails", "stake too small"))  # S = 1000 < S*
    row = C.robustness(s, ["task.cost_honest"]).row("task.cost_honest")
    assert math.isnan(row.low) and "stake[" in row.low_limit


def test_consensus_robustness_linear_in_cost():
    s = mt.load(MODELS / "four-option-claims.toml").replace({"network.max_capture": 0.1})
    sol = mt.solve(s)
    assert sol.incentive_compatible
    ic0 = next(m.value for m in sol.margins if m.name == "ic[random-guess]")
    row = C.robustness(s, ["verifier.cost"]).row("verifier.cost")
    # ic = (p_h − p_j)·r − (c − c_j) − (L/W)(P_f − P_d) has slope −1 in c
    assert row.high == pytest.approx(0.04 + ic0, rel=1e-8)
    assert row.high_limit == "ic[random-guess]" and row.low == 0.0


# --------------------------------------------------------------------------------------
# range certificates: audit
# --------------------------------------------------------------------------------------


def test_box_that_holds_is_proved_and_a_grid_agrees():
    box = {"task.cost_honest": (0.3, 0.45), "deviation.weaker-model.divergence": (0.28, 0.35),
           "audit.false_alarm_rate": (0.0, 0.005)}
    s = with_box(BASE, box)
    cert = C.certify(s)
    assert cert.holds is True, str(cert)
    assert {c.status for c in cert.constraints} == {"proved"}
    # the worst corner of the IC margin, by hand: c_h = 0.45, δ = 0.28, α = 0.005
    ic = cert.constraint("ic[weaker-model]")
    assert ic.worst_point == {"task.cost_honest": 0.45, "deviation.weaker-model.divergence": 0.28,
                              "audit.false_alarm_rate": 0.005}
    assert ic.worst_margin == pytest.approx(C_J - 0.45 + Q * E * (0.28 * (1 - BETA) - 0.005) * (L + R), rel=1e-12)
    for point in grid(box, 4):  # the second method: no grid point fails
        assert all(m.holds for m in solved(s, point).values()), point
    doc = cert.to_dict()
    assert doc["holds"] is True and doc["scenario_sha256"] == s.sha256
    assert doc["box"]["task.cost_honest"] == [0.3, 0.45]
    assert "proved" in str(cert)


def test_box_with_a_failing_point_gives_a_counterexample_that_fails():
    box = {"task.cost_honest": (0.3, 0.7), "audit.collusion": (0.0, 0.3)}
    s = with_box(BASE, box)
    cert = C.certify(s)
    assert cert.holds is False
    bad = [c for c in cert.constraints if c.status == "counterexample"]
    assert {c.constraint for c in bad} >= {"ic[weaker-model]"}
    for c in bad:
        assert all(box[k][0] <= v <= box[k][1] for k, v in c.worst_point.items())
        m = solved(s, c.worst_point)[c.constraint]
        assert not m.holds and m.value == pytest.approx(c.worst_margin)
    # random-output is deterred everywhere in the box: c_h − c_j ≤ 0.7 < q·e·(1−β−α)·(L+R)
    assert 0.7 < Q * (1 - 0.3**2) * (1 - BETA - ALPHA) * (L + R)
    assert cert.constraint("ic[random-output]").status == "proved"


def test_branch_and_bound_proves_refutes_and_stays_undecided_on_a_tiny_budget():
    # the stake margin is not monotone in q here (α(L+R) > δ(1−β)R, m = 60): branch and bound
    text = mt.loads(BASE).replace({"audit.false_alarm_rate": 0.05, "stake.throughput": 1.0}).source
    box = {"audit.sampling_rate": (0.02, 0.6), "audit.false_alarm_rate": (0.04, 0.05)}
    proved = with_box(text.replace("total = 50000.0", "total = 100.0"), box)
    full = C.certify(proved).constraint("stake[weaker-model]")
    assert full.status == "proved" and full.method == "interval branch and bound" and full.evaluations > 3
    for point in grid(box, 12):
        assert solved(proved, point)["stake[weaker-model]"].holds
    for budget in (0, 1, 3):
        tiny = C.certify(proved, max_boxes=budget).constraint("stake[weaker-model]")
        assert tiny.status == "undecided", budget
    assert C.certify(proved, seconds=0.0).constraint("stake[weaker-model]").status == "undecided"
    refuted = with_box(text.replace("total = 50000.0", "total = 60.0"), box)
    c = C.certify(refuted).constraint("stake[weaker-model]")
    assert c.status == "counterexample"
    assert not solved(refuted, c.worst_point)["stake[weaker-model]"].holds


def test_episode_case_split_on_m_and_undecided_without_a_lemma():
    # λ, T enter only through m = round(λT): 121 cases, all checked
    box = {"stake.throughput": (99.5, 100.5), "stake.settlement_latency": (59.7, 60.3)}
    s = with_box(BASE, box)
    ep = C.certify(s).constraint("episode[weaker-model]")
    assert ep.status == "proved" and "m = round(λT)" in ep.argument
    assert round(99.5 * 59.7) <= round(ep.worst_point["stake.throughput"] * ep.worst_point[
        "stake.settlement_latency"]) <= round(100.5 * 60.3)
    # too many cases for the budget: undecided, not proved
    assert C.certify(s, max_cases=10).constraint("episode[weaker-model]").status == "undecided"
    # α > 0 and L uncertain: no lemma for L (lemma 6 needs f = 0)
    s2 = with_box(BASE, {"stake.slash": (15.0, 25.0)})
    assert C.certify(s2).constraint("episode[weaker-model]").status == "undecided"


def test_invalid_box_is_an_error(base):
    with pytest.raises(mt.ScenarioError):
        C.certify(base, {"audit.sampling_rate": (0.5, 1.5)})


# --------------------------------------------------------------------------------------
# range certificates: consensus
# --------------------------------------------------------------------------------------


def test_consensus_vertices_prove_and_refute():
    text = (MODELS / "four-option-claims.toml").read_text()
    box = {"verifier.cost": (0.03, 0.06), "deviation.random-guess.accuracy": (0.2, 0.3),
           "network.adversary_stake_share": (0.15, 0.25)}
    s = with_box(text, box)
    cert = C.certify(s, samples=2)
    ic = cert.constraint("ic[random-guess]")
    assert ic.status == "proved" and ic.evaluations == 8
    capture = cert.constraint("capture")
    assert capture.status == "counterexample"
    assert capture.worst_point["network.adversary_stake_share"] == 0.25
    assert not solved(s, capture.worst_point)["capture"].holds
    for point in grid({k: box[k] for k in ("verifier.cost", "deviation.random-guess.accuracy")}, 3):
        assert solved(s, point)["ic[random-guess]"].holds
    # honest accuracy has no monotonicity argument: never proved
    s2 = with_box(text, {"verifier.accuracy": (0.9, 0.93)})
    fs = C.certify(s2, samples=2).constraint("false_slash")
    assert fs.status in ("undecided", "counterexample")
    if fs.status == "counterexample":
        assert not solved(s2, fs.worst_point)["false_slash"].holds


# --------------------------------------------------------------------------------------
# the interval evaluator is sound
# --------------------------------------------------------------------------------------

SYM = audit.symbols()
x, y = sp.symbols("x y", real=True)
EXPRESSIONS = [audit.derived(name).expr for name in ("ic_margin", "stake_margin", "participation_margin",
                                                    "minimum_total_stake", "payoff_deviation")]
HAND = [(x - sp.Rational(1, 2)) ** 3 - 3 * x * y + sp.Max(x, y) ** 2 - sp.Min(x, 1 - y),
        sp.exp(x - y) * sp.log(1 + x) + sp.sqrt(x + y) - sp.Abs(x - y) / (1 + y**2),
        (x + y) ** -2 + x ** sp.Rational(3, 2) - y ** x]


def _exact_in(expr, env_point, iv) -> bool:
    # the point's doubles are exact as rationals; a symbolic exponent (y**x) of such a rational (a
    # denominator of 2^52) makes sympy's exact power explode, so those forms get 80-digit floats
    # (each double is exact in 80 digits; the 60-digit value is far inside the outward rounding)
    symbolic_power = any(isinstance(p, sp.Pow) and p.exp.free_symbols for p in expr.atoms(sp.Pow))
    exact = (lambda v: sp.Float(v, 80)) if symbolic_power else sp.Rational
    val = expr.xreplace({s: exact(v) for s, v in env_point.items()})
    if val.has(sp.zoo, sp.nan) or not val.is_real:
        return True  # undefined at the point: nothing to enclose
    num = val if val.is_Rational else val.evalf(60)
    return sp.Rational(iv[0]) <= num <= sp.Rational(iv[1]) if all(map(math.isfinite, iv)) else (
        (iv[0] == -math.inf or sp.Rational(iv[0]) <= num) and (iv[1] == math.inf or num <= sp.Rational(iv[1])))


unit = st.floats(0.0, 1.0)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, len(EXPRESSIONS) - 1), st.data())
def test_interval_encloses_audit_forms(i, data):
    expr = EXPRESSIONS[i]
    box, point = {}, {}
    for arg, s in SYM.items():
        if s not in expr.free_symbols:
            continue
        hi_max = 1.0 if arg in ("divergence", "miss_rate", "false_alarm_rate", "collusion", "bounty_share",
                                "sampling_rate") else 50.0
        a, b = sorted((data.draw(unit) * hi_max, data.draw(unit) * hi_max))
        if arg == "verifiers":
            a, b = sorted((float(data.draw(st.integers(1, 4))), float(data.draw(st.integers(1, 4)))))
        box[s] = (a, b)
        t = data.draw(unit)
        v = a + t * (b - a)
        point[s] = float(round(v)) if arg == "verifiers" else min(max(v, a), b)
    iv = C.interval(expr, box)
    assert iv[0] <= iv[1]
    assert _exact_in(expr, point, iv), (expr, box, point, iv)


@settings(max_examples=150, deadline=None)
@given(st.integers(0, len(HAND) - 1), unit, unit, unit, unit, unit, unit)
def test_interval_encloses_hand_forms(i, a1, a2, b1, b2, t, u):
    expr = HAND[i]
    xa, xb = sorted((a1 * 3, a2 * 3))
    ya, yb = sorted((b1 * 3, b2 * 3))
    if i == 0:  # negative values too (odd powers, Min/Max across 0)
        xa, xb, ya, yb = xa - 1.5, xb - 1.5, ya - 1.5, yb - 1.5
    box = {x: (xa, xb), y: (ya, yb)}
    point = {x: min(max(xa + t * (xb - xa), xa), xb), y: min(max(ya + u * (yb - ya), ya), yb)}
    iv = C.interval(expr, box)
    assert _exact_in(expr, point, iv), (expr, box, point, iv)


def test_interval_hand_cases():
    lo, hi = C.interval(x**2, {x: (-2.0, 3.0)})
    assert lo == 0.0 and 9.0 <= hi <= math.nextafter(9.0, 10.0) * (1 + 1e-15)
    lo, hi = C.interval(x**3, {x: (-2.0, 1.0)})
    assert -8.0 * (1 + 1e-15) <= lo <= -8.0 and hi == 1.0
    lo, hi = C.interval(1 / x, {x: (0.0, 2.0)})
    assert lo <= 0.5 and hi == math.inf
    assert C.interval(1 / x, {x: (-1.0, 2.0)}) == (-math.inf, math.inf)
    lo, hi = C.interval(x + y, {x: (0.1, 0.1), y: (0.2, 0.2)})
    assert lo < 0.1 + 0.2 <= hi or lo <= sp.Rational(0.1) + sp.Rational(0.2) <= hi  # outward rounded
    assert lo < hi
    with pytest.raises(C.Unsupported):
        C.compile_interval(sp.sin(x))
