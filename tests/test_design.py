"""Mechanism design for the audit game (mira_theory.design)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import optimize, stats

from mira_theory import design as D
from mira_theory.design import design
from mira_theory.games import audit
from mira_theory.results import dumps

CORE = ("ic", "stake", "participation")


def core_margins(scenario):
    """The toolkit's own ic/stake/participation margins at a scenario."""
    return {m.name: m.value for m in audit.solve(scenario).margins if m.name.split("[")[0] in CORE}


# --------------------------------------------------------------------------------------
# (1) designed parameters satisfy every constraint (toolkit's solver), random scenarios
# --------------------------------------------------------------------------------------

scenarios = st.fixed_dictionaries({
    "cost_honest": st.floats(0.05, 1.0),
    "dev": st.lists(st.tuples(st.floats(0.0, 0.9), st.floats(0.2, 1.0)), min_size=1, max_size=3),
    "alpha": st.sampled_from([0.0, 0.01, 0.05]),
    "beta": st.sampled_from([0.0, 0.1, 0.3]),
    "r": st.sampled_from([0.0, 0.2]),
    "n": st.integers(1, 3),
    "k": st.floats(0.01, 1.0),
    "kappa": st.sampled_from([0.0, 0.05, 0.3]),
    "lam": st.sampled_from([1e-6, 1e-3, 1.0]),
    "T": st.sampled_from([0.0, 60.0, 3600.0]),
    "S_max": st.sampled_from([1e3, 1e5, 1e7]),
    "L_max": st.sampled_from([math.inf, 50.0]),
    "free": st.sampled_from([D.VARIABLES, ("sampling_rate", "slash", "reward"),
                             ("sampling_rate", "total_stake", "reward"), ("sampling_rate", "slash")]),
    "margin": st.sampled_from([0.0, 0.2]),
    "exact": st.booleans(),
})


def _scenario(build, p):
    devs = [(f"d{i}", min(c, 0.99) * p["cost_honest"], delta) for i, (c, delta) in enumerate(p["dev"])]
    return build(devs, {"task.cost_honest": p["cost_honest"], "audit.false_alarm_rate": p["alpha"],
                        "audit.miss_rate": p["beta"], "audit.collusion": p["r"], "audit.verifiers": p["n"],
                        "audit.cost": p["k"], "stake.capital_cost": p["kappa"], "stake.throughput": p["lam"],
                        "stake.settlement_latency": p["T"], "stake.total": 500.0, "task.reward": 2.0})


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(p=scenarios)
def test_design_satisfies_every_constraint(build, p):
    sc = _scenario(build, p)
    res = design(sc, free=p["free"], S_max=p["S_max"], L_max=p["L_max"], safety_margin=p["margin"],
                 stake_bound="exact" if p["exact"] else "conservative")
    assert res.status in ("optimal", "infeasible", "unbounded")
    json.dumps(res.to_dict(), allow_nan=False)
    if res.status != "optimal":
        assert res.message
        return
    assert res.verified, str(res)
    designed = res.scenario_with_design()
    for name, value in core_margins(designed).items():
        assert value >= -1e-6, (name, value, str(res))
    for k in D.VARIABLES:  # fixed variables keep the scenario's values
        if k not in p["free"]:
            assert res.parameters[k] == pytest.approx(D._Model(sc, D.provider_types(sc, None), D._Options(
                frozenset(p["free"]), 0, 1, math.inf, math.inf, "exact", 0)).values[k])
    assert res.parameters["sampling_rate"] <= 1.0
    assert res.parameters["total_stake"] <= p["S_max"] * (1 + 1e-9) or "total_stake" not in p["free"]
    # safety margin: IC holds with the saving inflated by (1 + m)
    for c in res.constraints:
        if c.kind == "ic":
            assert c.margin >= c.required - 1e-9


# --------------------------------------------------------------------------------------
# (2) optimality against a brute-force grid and scipy on small cases
# --------------------------------------------------------------------------------------


def _small(build, **extra):
    changes = {"task.cost_honest": 0.4, "audit.false_alarm_rate": 0.02, "audit.miss_rate": 0.1,
               "audit.collusion": 0.1, "audit.verifiers": 2, "audit.cost": 0.3,
               "stake.capital_cost": 0.05, "stake.throughput": 1e-6, "stake.settlement_latency": 1e5}
    changes.update(extra)
    return build([("weaker", 0.1, 0.5), ("random", 0.0, 1.0)], changes)


def _feasible_cost(sc, q, L, S, R, L_max, S_max):
    """Cost of every grid point and whether the toolkit's closed forms say it is feasible."""
    ok = (L <= L_max) & (S <= S_max)
    for dev in sc.deviations:
        args = audit.arguments(sc, dev)
        args.update(sampling_rate=q, slash=L, total_stake=S, reward=R)
        cf = audit.closed_form(**args)
        ok = ok & (cf["ic_margin"] >= 0) & (cf["stake_margin"] >= 0) & (cf["participation_margin"] >= 0)
    cost = R + q * sc.audit.verifiers * sc.audit.cost
    return np.where(ok, cost, np.inf)


@pytest.mark.parametrize("L_max,S_max", [(30.0, 60.0), (10.0, 200.0), (200.0, 25.0)])
def test_design_beats_brute_force_grid(build, L_max, S_max):
    sc = _small(build)
    res = design(sc, L_max=L_max, S_max=S_max)
    assert res.status == "optimal" and res.verified, str(res)
    n = 36
    q, L, S, R = np.meshgrid(np.linspace(0.005, 1.0, n), np.linspace(0.0, L_max, n),
                             np.linspace(0.0, S_max, n), np.linspace(0.3, 1.2, n), indexing="ij", sparse=True)
    cost = _feasible_cost(sc, q, L, S, R, L_max, S_max)
    best = float(cost.min())
    assert math.isfinite(best)
    assert res.objective <= best + 1e-6  # no feasible grid point is cheaper
    # refine the grid around the design: still nothing cheaper, and the best refined point is close
    p = res.parameters
    loc = [np.linspace(max(p[k] * 0.8, 0), p[k] * 1.2 + 1e-3, 25) for k in D.VARIABLES]
    q, L, S, R = np.meshgrid(*loc, indexing="ij", sparse=True)
    fine = float(_feasible_cost(sc, q, L, S, R, L_max, S_max).min())
    assert res.objective <= fine + 1e-6
    assert fine <= res.objective * 1.01


def test_design_matches_scipy_multistart(build):
    sc = _small(build)
    L_max, S_max = 30.0, 60.0
    res = design(sc, L_max=L_max, S_max=S_max)
    k = sc.audit.verifiers * sc.audit.cost

    def cons(x):
        q, L, S, R = x
        out = []
        for dev in sc.deviations:
            args = audit.arguments(sc, dev)
            args.update(sampling_rate=q, slash=L, total_stake=S, reward=R)
            cf = audit.closed_form(**args)
            out += [float(cf["ic_margin"]), float(np.clip(cf["stake_margin"], -1e6, 1e6)),
                    float(cf["participation_margin"])]
        return np.array(out)

    rng = np.random.default_rng(7)
    bounds = [(1e-4, 1.0), (0.0, L_max), (0.0, S_max), (0.0, 3.0)]
    best = math.inf
    for _ in range(40):
        x0 = [rng.uniform(lo, hi) for lo, hi in bounds]
        r = optimize.minimize(lambda x: x[3] + x[0] * k, x0, method="SLSQP", bounds=bounds,
                              constraints=[{"type": "ineq", "fun": cons}], options={"maxiter": 500, "ftol": 1e-12})
        if r.success and (cons(r.x) >= -1e-9).all():
            best = min(best, float(r.fun))
    assert math.isfinite(best)
    assert res.objective <= best + 1e-5
    assert res.objective == pytest.approx(best, rel=1e-3)


def test_exact_stake_bound_never_costs_more_than_conservative(build):
    sc = _small(build)
    exact = design(sc, L_max=30.0, S_max=60.0)
    conservative = design(sc, L_max=30.0, S_max=60.0, stake_bound="conservative")
    assert exact.verified and conservative.verified
    assert exact.objective <= conservative.objective + 1e-9
    assert "sequential GP" in exact.formulation and "conservative posynomial bound" in conservative.formulation


# --------------------------------------------------------------------------------------
# (3) a hand-derived case, and unboundedness
# --------------------------------------------------------------------------------------


@pytest.fixture
def pos(build):
    """Proof-of-Sampling setting: α = β = r = 0, n = 1, δ = 1, T = 0, no capital cost."""
    return build([("cheat", 0.1, 1.0)], {"task.cost_honest": 0.5, "task.reward": 1.0, "audit.cost": 0.2,
                                         "audit.false_alarm_rate": 0.0, "audit.miss_rate": 0.0,
                                         "audit.collusion": 0.0, "audit.verifiers": 1,
                                         "stake.capital_cost": 0.0, "stake.settlement_latency": 0.0,
                                         "stake.total": 1000.0})


@pytest.mark.parametrize("stake_bound", ["exact", "conservative"])
def test_hand_derived_q_and_L(pos, stake_bound):
    # cost R + q·k with R fixed: q as small as IC q·(L + R) ≥ Δc allows, so L as large as allowed.
    # L ≤ L_max = 99 binds (S = 1000 fixed is larger): q* = Δc/(L_max + R) = 0.4/100, L = 99.
    res = design(pos, free=("sampling_rate", "slash"), L_max=99.0, stake_bound=stake_bound)
    assert res.status == "optimal" and res.verified
    assert res.parameters["sampling_rate"] == pytest.approx(0.4 / 100, rel=1e-4)
    assert res.parameters["slash"] == pytest.approx(99.0, rel=1e-5)
    assert res.objective == pytest.approx(1.0 + 0.2 * 0.004, rel=1e-7)
    assert set(res.binding) >= {"ic[cheat]", "slash ≤ L_max"}


def test_hand_derived_stake_binds(pos):
    # no L_max: the stake bounds q. Exact S* = Δc/q − R (T = 0), so q* = Δc/(S + R) = 0.4/1001
    # and the least slash that deters at q* is L = S = 1000; the conservative bound S ≥ Δc/q
    # gives q = 0.4/1000.
    res = design(pos, free=("sampling_rate", "slash"))
    assert res.status == "optimal" and res.verified
    assert res.parameters["sampling_rate"] == pytest.approx(0.4 / 1001, rel=1e-4)
    assert res.parameters["slash"] == pytest.approx(1000.0, rel=1e-4)
    assert {"ic[cheat]", "stake[cheat]"} <= set(res.binding)
    cons = design(pos, free=("sampling_rate", "slash"), stake_bound="conservative")
    assert cons.parameters["sampling_rate"] == pytest.approx(0.4 / 1000, rel=1e-4)


def test_unbounded_is_reported(pos):
    # slash and stake free, no bounds, no capital cost: q → 0, L, S → ∞ lowers the cost to R
    res = design(pos, free=("sampling_rate", "slash", "total_stake"))
    assert res.status == "unbounded" and not res.feasible
    assert res.objective == pytest.approx(1.0)  # the infimum: the fixed reward alone
    assert "L_max" in res.message and "q → 0" in res.message
    assert any("L_max" in s for s in res.suggestions)
    with pytest.raises(ValueError, match="unbounded"):
        res.scenario_with_design()
    # a bound on the slash makes it bounded: q* = Δc/(L_max + R)
    ok = design(pos, free=("sampling_rate", "slash", "total_stake"), L_max=49.0)
    assert ok.status == "optimal" and ok.verified
    assert ok.parameters["sampling_rate"] == pytest.approx(0.4 / 50, rel=1e-4)
    # so does a capital cost on the stake
    priced = design(pos.replace({"stake.capital_cost": 0.05, "stake.throughput": 1e-4}),
                    free=("sampling_rate", "slash", "total_stake", "reward"))
    assert priced.status == "optimal" and priced.verified


def test_nothing_to_deter_is_closed_form(pos):
    sc = pos.replace({"deviation.cheat.cost": 0.7})  # deviating costs more than honest work
    res = design(sc)
    assert res.status == "optimal" and res.verified
    assert res.parameters["sampling_rate"] == 0.0 and res.parameters["total_stake"] == 0.0
    assert res.parameters["reward"] == pytest.approx(0.5)
    assert res.formulation.startswith("closed form")


# --------------------------------------------------------------------------------------
# (4) infeasibility in words
# --------------------------------------------------------------------------------------


def test_undeterrable_deviation_message(build):
    sc = build([("random-output", 0.0, 0.2)], {"audit.false_alarm_rate": 0.3})
    res = design(sc)
    assert res.status == "infeasible"
    assert ("no sampling rate deters 'random-output': false alarms α = 0.3 exceed its detection "
            "δ(1 − β) = 0.2") in res.message
    assert res.suggestions and "α < δ(1 − β)" in res.suggestions[0]
    assert "decided before solving" in res.formulation
    assert res.constraints == ()


def test_full_collusion_message(build):
    res = design(build(None, {"audit.collusion": 1.0}))
    assert res.status == "infeasible" and "colludes" in res.message


# with the reward free a large R deters by itself (the cheater forfeits it on a slashed task), so
# these fix R = 1 and design (q, L, S)
QLS = ("sampling_rate", "slash", "total_stake")


def test_s_max_too_small_says_how_much(build):
    sc = _small(build)
    res = design(sc, free=QLS, S_max=0.1, q_max=0.3, L_max=30.0)
    assert res.status == "infeasible"
    text = " ".join(res.suggestions)
    assert "S_max = 0.1 is below the least stake any design needs" in text
    needed = float(text.split("any design needs, ")[1].split(";")[0])
    again = design(sc, free=QLS, S_max=needed * 1.01, q_max=0.3, L_max=30.0)
    assert again.status == "optimal" and again.verified
    assert "stake[" in text  # names the conflicting constraint


def test_q_max_too_small_says_how_much(build):
    sc = _small(build)
    res = design(sc, free=QLS, S_max=60.0, q_max=0.001, L_max=30.0)
    assert res.status == "infeasible"
    text = " ".join(res.suggestions)
    assert "q_max = 0.001 is too small" in text
    needed = float(text.split("need q ≥ ")[1].split(";")[0])
    assert needed > 0.0227  # IC alone: q·(L_max + R)·gap ≥ Δc
    assert design(sc, free=QLS, S_max=60.0, q_max=min(needed * 1.01, 1.0), L_max=30.0).verified


def test_fixed_reward_too_small(build):
    sc = _small(build, **{"task.reward": 0.3})
    res = design(sc, free=("sampling_rate", "slash", "total_stake"), S_max=60.0, L_max=30.0)
    assert res.status == "infeasible"
    assert any("the fixed reward R = 0.3" in s for s in res.suggestions)
    assert "infeasible" in str(res) and "what would have to change" in str(res)


def test_conflicting_deviations_message(build):
    # 'careful' costs more than honest work but is flagged less often than honest output
    # cheap needs q·(L + R) ≥ 0.1/0.8; careful pays once q·(L + R) > 0.01/0.19
    sc = build([("cheap", 0.3, 1.0), ("careful", 0.41, 0.01)], {"audit.false_alarm_rate": 0.2})
    res = design(sc, safety_margin=0.0)
    assert res.status == "infeasible" and "no design deters both 'cheap' and 'careful'" in res.message


def test_bad_arguments(default):
    with pytest.raises(ValueError, match="free must be a subset"):
        design(default, free=("sampling_rate", "committee"))
    with pytest.raises(ValueError, match="q_max"):
        design(default, q_max=0.0)
    from mira_theory.scenario import ScenarioError

    with pytest.raises(ScenarioError) as err:
        design(default, provider_types=[{"name": "a", "cost_honest": -1, "throughput": 0},
                                        {"name": "a", "cost_honest": 0.1}])
    text = str(err.value)
    assert "provider_types[0].cost_honest" in text and "provider_types[0].throughput" in text
    assert "provider_types[1].name" in text


# --------------------------------------------------------------------------------------
# (5) heterogeneous providers
# --------------------------------------------------------------------------------------


def test_binding_types_by_hand(pos):
    # one deviation with c_j = 0.1, δ = 1; T = 60 s; R = 1 fixed. Type 'costly' has the largest c_h
    # (binds IC, and participation with no capital cost); 'fast' saves less but has 10⁵× the
    # throughput: S*_fast ≈ 0.35/q + 2100 against S*_costly ≈ 0.4/q, so with S ≤ 5000 the fast
    # type's stake exhaustion binds (q ≈ 1.2e-4, where S*_costly ≈ 3300); 'small' is dominated.
    sc = pos.replace({"stake.settlement_latency": 60.0})
    types = [{"name": "costly", "cost_honest": 0.5, "throughput": 0.001, "capital_cost": 0.0, "share": 0.3},
             {"name": "fast", "cost_honest": 0.45, "throughput": 100.0, "capital_cost": 0.0, "share": 0.5},
             {"name": "small", "cost_honest": 0.3, "throughput": 0.001, "capital_cost": 0.0, "share": 0.2}]
    res = design(sc, free=("sampling_rate", "slash", "total_stake"), S_max=5000.0, provider_types=types)
    assert res.status == "optimal" and res.verified, str(res)
    kinds = {c.name: c for c in res.constraints}
    assert kinds["participation"].binding_type == "costly"
    assert res.pruned["stake"] == 2 and res.pruned["participation"] == 1  # 'small' pruned
    # by hand, R = 1, S ≤ 5000, m = round(λT) = 6000 for 'fast'. The exact episode check of 'fast'
    # (K = 1 + Binomial(m, q) slashes, summed term by term here) against its gain (1/q + m)(0.35 − q)
    # binds the design. With IC of 'costly' binding (L + R = 0.4/q) it gives q_ic; letting L grow
    # lowers q further (E[min(S, L·K)] rises to S), towards the infimum q_inf where S = S*:
    # (1/q + m)(0.35 − q) = 5000, approached as L → ∞ and not attained
    R, dc, m, S = 1.0, 0.35, 6000, 5000.0
    ks = np.arange(0, m + 1)

    def episode(q, L):
        return float(np.sum(stats.binom.pmf(ks, m, q) * np.minimum(S, L * (ks + 1)))) - (1 / q + m) * (dc - q * R)

    q_ic = optimize.brentq(lambda q: episode(q, 0.4 / q - R), 1e-5, 0.05, xtol=1e-14)
    q_inf = optimize.brentq(lambda q: (1 / q + m) * (dc - q * R) - S, 1e-5, 0.05, xtol=1e-14)
    q, L = res.parameters["sampling_rate"], res.parameters["slash"]
    assert q_inf * (1 - 1e-9) <= q <= q_ic * (1 + 2e-4)
    assert episode(q, L) >= -1e-6 * S and q * (L + R) >= 0.4 * (1 - 1e-6)  # feasible, by hand
    # every type's margins hold (closed forms), and the design equals that for the Pareto types only
    fewer = design(sc, free=("sampling_rate", "slash", "total_stake"), S_max=5000.0, provider_types=types[:2])
    for k in D.VARIABLES:
        assert fewer.parameters[k] == pytest.approx(res.parameters[k], rel=1e-6)


def test_many_types_satisfied_and_pruned(build):
    sc = build(None, {"stake.throughput": 0.01})
    rng = np.random.default_rng(3)
    K = 2000
    types = [{"name": f"t{i}", "cost_honest": float(rng.uniform(0.2, 0.6)),
              "throughput": float(rng.uniform(0.001, 0.1)), "capital_cost": float(rng.uniform(0.01, 0.2)),
              "share": 1 / K} for i in range(K)]
    res = design(sc, provider_types=types, S_max=1e5)
    assert res.status == "optimal" and res.verified
    assert res.pruned["stake"] < 50 and res.pruned["participation"] < 50
    # every type, by the toolkit's closed forms
    c = np.array([t["cost_honest"] for t in types])
    lam = np.array([t["throughput"] for t in types])
    kap = np.array([t["capital_cost"] for t in types])
    designed = res.scenario_with_design()
    for dev in designed.deviations:
        args = audit.arguments(designed, dev)
        args.update(cost_honest=c, throughput=lam, capital_cost=kap)
        cf = audit.closed_form(**args)
        assert (cf["ic_margin"] >= -1e-9).all()
        assert (cf["stake_margin"] >= -1e-6).all()
        assert (cf["participation_margin"] >= -1e-9).all()
    # the binding types are verified by audit.solve
    assert any("audit.solve" in c.verified_by for c in res.constraints)


def test_pruning_helpers():
    c = np.array([1.0, 2.0, 1.5, 0.5, 2.0])
    a = np.array([1.0, 0.0, 0.5, 3.0, 0.0])
    # lines c + a·s on s ≥ 0: index 1 (2.0 + 0·s) wins at s = 0, then 2? 1.5 + 0.5 s meets 2 at s = 1,
    # 1 + s meets 1.5 + 0.5 s at s = 1 too, 0.5 + 3 s overtakes everything later
    env = D._upper_envelope(c, a)
    assert 1 in env and 3 in env and 4 not in env
    s = np.linspace(0, 10, 2001)
    best = np.argmax(c[None, :] + a[None, :] * s[:, None], axis=1)
    assert set(best) <= set(env)
    par = D._pareto(np.array([1, 2, 2, 0.5]), np.array([5, 1, 3, 6]))
    assert list(par) == [0, 2, 3]


# --------------------------------------------------------------------------------------
# the result object
# --------------------------------------------------------------------------------------


def test_result_object(default):
    res = design(default, S_max=1e5, verifier_remedy=True)
    assert res.status == "optimal" and res.verified
    d = json.loads(dumps(res.to_dict()))
    assert d["scenario_sha256"] == default.sha256 and d["toolkit_version"]
    assert d["formulation"] and d["solver_status"] in ("optimal", "optimal_inaccurate")
    assert {"reward", "audits", "remedy_bound", "remedy_at_design"} <= set(d["costs"])
    assert res.costs["remedy_at_design"] <= res.costs["remedy_bound"] + 1e-12
    assert res.objective == pytest.approx(res.costs["reward"] + res.costs["audits"] + res.costs["remedy_bound"])
    assert res.remedy == "audit-fee"
    text = str(res)
    assert "audit design: default" in text and "binding" in text and "formulation" in text
    assert "<table>" in res._repr_html_()
    assert "DesignResult(" in repr(res)
    with pytest.raises(TypeError):
        res.parameters["slash"] = 1.0  # frozen
    designed = res.scenario_with_design()
    assert designed.stake.slash == res.parameters["slash"]
    assert audit.solve(designed).incentive_compatible is not None
    from mira_theory import deployment

    exported = deployment.export(designed)
    assert exported["parameters"]["sampling_rate"] == res.parameters["sampling_rate"]
