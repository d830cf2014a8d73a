"""Predictions for adaptive providers (mira_theory.dynamics) against independent derivations:
the exact equilibria of the two-column solver and nashpy, hand-solved logit equilibria,
closed-form replicator solutions, hand-written learning loops and Monte Carlo runs.

Hand values for models/default.toml (R = 1, c_h = 0.4, L = 20, α = β = r = 0, n = 1):
    U_h = 0.6,  U_weaker(q) = 0.9 − 0.3·21·q,  U_random(q) = 1 − 21·q,
    q* = 0.3/(0.3·21) = 1/21,  mixed equilibrium: q° = 1/21, t° = w_h/(w_h − w_j) with
    w_h = −0.4, w_j = 0.3·(5 + 10) − 0.4 = 4.1, so t° = 0.4/4.5 = 4/45 (honest 41/45).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats as sps

from mira_theory import dynamics as dy
from mira_theory.games import audit
from mira_theory.solvers import external, two_column

Q_STAR = 1 / 21
NASH_X = np.array([41 / 45, 4 / 45, 0.0])
NASH_Q = 1 / 21


@pytest.fixture(scope="module")
def game(default):
    A, B, rows = audit.bimatrix(default)
    return A, B, rows


@pytest.fixture(scope="module")
def gentle(build):
    """One deviation, small slash, q = 1/2: realised payoffs of low variance (bandit checks)."""
    return build([("weaker-model", 0.1, 0.3)], {"stake.slash": 2.0, "audit.sampling_rate": 0.5})


def hand_u(q):
    return np.array([0.6, 0.9 - 6.3 * q, 1.0 - 21.0 * q])


def hand_softmax(z):
    e = np.exp(np.asarray(z, float) - np.max(z))
    return e / e.sum()


# ---------------------------------------------------------------------------------------
# payoffs come from audit.py
# ---------------------------------------------------------------------------------------

def test_provider_payoffs_match_hand_and_bimatrix(default, game):
    A, _, rows = game
    q = np.array([0.0, 0.02, Q_STAR, 0.05, 0.3, 1.0])
    U = dy.provider_payoffs(default, q)
    assert U.shape == (6, 3) and dy.strategies(default) == tuple(rows)
    for i, qi in enumerate(q):
        assert U[i] == pytest.approx(hand_u(qi), abs=1e-12)
        assert U[i] == pytest.approx(A @ [qi, 1 - qi], abs=1e-12)
    assert dy.provider_payoffs(default) == pytest.approx(hand_u(0.05))


def test_realised_payoff_model_is_the_bimatrix(default, game):
    A, _, _ = game
    fb = dy.audit_feedback(default)
    assert fb["flag_probability"] == pytest.approx([0.0, 0.3, 1.0]) and fb["slash_cost"] == 21.0
    assert A[:, 1] - fb["flag_probability"] * fb["slash_cost"] == pytest.approx(A[:, 0])


# ---------------------------------------------------------------------------------------
# replicator
# ---------------------------------------------------------------------------------------

def test_replicator_integration_matches_closed_form():
    u, x0 = hand_u(0.05), np.array([0.2, 0.5, 0.3])
    df = dy.replicator(u, x0, t_max=300.0, points=31, names=["h", "w", "r"])
    for t, row in zip(df.time, df[["h", "w", "r"]].to_numpy()):
        expect = x0 * np.exp(u * t) / (x0 * np.exp(u * t)).sum()  # ẋ = x(u − x·u), u constant
        assert row == pytest.approx(expect, rel=1e-6, abs=1e-12)
    # a strategy absent at the start stays absent
    df0 = dy.replicator(u, [0.5, 0.5, 0.0], t_max=10.0, points=3)
    assert (df0["s2"] == 0).all()


def test_one_population_rest_points(game):
    A, _, _ = game
    above, below = dy.rest_points(A, sampling_rate=0.06), dy.rest_points(A, sampling_rate=0.04)
    assert [r.stability for r in above] == ["asymptotically stable", "unstable", "unstable"]
    assert [r.stability for r in below] == ["unstable", "asymptotically stable", "unstable"]
    # eigenvalues at the honest vertex: u_l − u_h
    assert sorted(e.real for e in above[0].eigenvalues) == pytest.approx(sorted(hand_u(0.06)[1:] - 0.6))


def test_two_population_rest_points_contain_exactly_the_nash_equilibria(game):
    A, B, _ = game
    rps = dy.rest_points((A, B))
    nash = [r for r in rps if r.nash]
    exact = two_column.solve(A, B).equilibria
    nashpy = external.nashpy_equilibria(A, B, "support_enumeration")
    assert len(nash) == len(exact) == len(nashpy) == 1
    assert nash[0].provider == pytest.approx(NASH_X) and nash[0].verifier == pytest.approx([NASH_Q, 1 - NASH_Q])
    assert nash[0].provider == pytest.approx(exact[0].row) and nash[0].verifier[0] == pytest.approx(exact[0].q)
    assert nash[0].provider == pytest.approx(nashpy[0][0])
    # the interior rest point of the inspection sub-game is a centre; the others are saddles/sources
    assert nash[0].stability.startswith("neutral")
    assert all(r.stability == "unstable" for r in rps if not r.nash)
    # every rest point: the field vanishes there
    for r in rps:
        dx, dyv = dy.replicator_field_two(r.provider, r.verifier, A, B)
        assert np.abs(dx).max() < 1e-12 and np.abs(dyv).max() < 1e-12


def test_replicator_time_average_converges_to_mixed_equilibrium(game):
    A, B, _ = game
    T = 600.0
    df = dy.replicator((A, B), ([0.8, 0.15, 0.05], [0.1, 0.9]), t_max=T, points=20001)
    shares = df.drop(columns="time").to_numpy()
    avg = np.trapezoid(shares, df.time.to_numpy(), axis=0) / T
    assert avg[:3] == pytest.approx(NASH_X, abs=4e-3)
    assert avg[3] == pytest.approx(NASH_Q, abs=2e-3)
    # but the path itself does not converge: it keeps cycling
    late = df[df.time > T / 2]
    assert late["s1"].max() - late["s1"].min() > 0.05


# ---------------------------------------------------------------------------------------
# logit QRE
# ---------------------------------------------------------------------------------------

def test_qre_at_zero_is_uniform(game):
    A, B, _ = game
    e = dy.logit_qre(A, B, 0.0)
    assert e.provider == pytest.approx([1 / 3] * 3) and e.verifier == pytest.approx([0.5, 0.5])


def test_qre_residual_and_limit_is_nash(game):
    A, B, _ = game
    branch = dy.qre_branch(A, B, [0.5, 5.0, 50.0, 500.0, 5000.0, 50000.0])
    assert (branch.residual < 1e-10).all()
    dist = [max(np.abs(r[["s0", "s1", "s2"]].to_numpy(float) - NASH_X).max(), abs(r["verifier:audit"] - NASH_Q))
            for _, r in branch.iterrows()]
    assert dist[-1] < 1e-4
    assert all(b < a for a, b in zip(dist[2:], dist[3:]))  # converging along the branch
    for _, r in branch.iterrows():  # residual recomputed independently of the module
        x, y, lam = r[["s0", "s1", "s2"]].to_numpy(float), r[["verifier:audit", "verifier:no-audit"]].to_numpy(float), r.precision
        assert x == pytest.approx(hand_softmax(lam * (A @ y)), abs=1e-9)
        assert y == pytest.approx(hand_softmax(lam * (B.T @ x)), abs=1e-9)


def hand_qre_2x2(A, B, lam):
    """Solve the 2×2 logit QRE by bisection on q: g(q) = logistic(λ·(x(q)·w)) − q, where
    x(q) = logistic(λ(U_0(q) − U_1(q))) and w = B[:,0] − B[:,1]; g(0) > 0 > g(1)."""

    def logistic(z):
        return 1.0 / (1.0 + math.exp(-z))

    def x_of(q):
        u0 = q * A[0, 0] + (1 - q) * A[0, 1]
        u1 = q * A[1, 0] + (1 - q) * A[1, 1]
        return logistic(lam * (u0 - u1))

    def g(q):
        h = x_of(q)
        gain = h * (B[0, 0] - B[0, 1]) + (1 - h) * (B[1, 0] - B[1, 1])
        return logistic(lam * gain) - q

    lo, hi = 0.0, 1.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if g(mid) > 0 else (lo, mid)
    q = 0.5 * (lo + hi)
    return x_of(q), q


@pytest.mark.parametrize("lam", [0.3, 2.0, 20.0, 300.0])
def test_qre_2x2_by_hand_and_pygambit(game, lam):
    A, B, _ = game
    A2, B2 = A[:2], B[:2]  # honest / weaker-model against audit / no-audit
    e = dy.logit_qre(A2, B2, lam)
    h, q = hand_qre_2x2(A2, B2, lam)
    assert e.provider[0] == pytest.approx(h, abs=1e-10) and e.verifier[0] == pytest.approx(q, abs=1e-10)
    import pygambit as gbt

    res = gbt.qre.logit_solve_lambda(external._gambit_game(A2, B2, exact=False), lam=[lam])[0]
    assert float(res.profile["1"]["1"]) == pytest.approx(h, abs=1e-6)  # pygambit's own path-follower
    assert float(res.profile["2"]["1"]) == pytest.approx(q, abs=1e-6)


def test_logit_response_against_fixed_q(game):
    A, _, _ = game
    assert dy.logit_response(A, 0.0, sampling_rate=0.05) == pytest.approx([1 / 3] * 3)
    assert dy.logit_response(hand_u(0.05), 3.0) == pytest.approx(hand_softmax(3.0 * hand_u(0.05)))
    assert dy.logit_response(hand_u(0.05), 1e5)[0] == pytest.approx(1.0)  # → best response
    assert dy.logit_response(hand_u(0.04), 1e5)[1] == pytest.approx(1.0)


# ---------------------------------------------------------------------------------------
# learning rules
# ---------------------------------------------------------------------------------------

def hedge_loop(u, eta, rounds, x0):
    """Multiplicative weights written out: w ← w·exp(η u), x = w/Σw."""
    w, out = np.array(x0, float), [np.array(x0, float)]
    for _ in range(rounds):
        w = w * np.exp(eta * u)
        w = w / w.sum()
        out.append(w.copy())
    return np.array(out)


def test_hedge_expected_path_and_logit_identity(game):
    A, _, rows = game
    u = hand_u(0.05)
    df = dy.predicted_learning_path("hedge", A, eta=0.1, rounds=300, sampling_rate=0.05, names=rows)
    assert list(df.columns) == ["round", *rows] and len(df) == 301
    assert df[rows].to_numpy() == pytest.approx(hedge_loop(u, 0.1, 300, [1 / 3] * 3), rel=1e-9)
    # from uniform: Hedge after t rounds is the logit response with λ = η·t
    assert df[rows].iloc[250].to_numpy() == pytest.approx(dy.logit_response(u, 25.0), rel=1e-9)
    assert df.attrs["limit"] == pytest.approx((1.0, 0.0, 0.0))
    below = dy.predicted_learning_path("hedge", hand_u(0.04), eta=0.1, rounds=10)
    assert below.attrs["limit"] == pytest.approx((0.0, 1.0, 0.0))


def test_hedge_full_information_monte_carlo_matches_exact_expectation(game):
    A, _, _ = game
    q, eta, T, runs = 0.05, 0.05, 400, 4000
    exact = dy.predicted_learning_path("hedge", A, eta, T, sampling_rate=q, feedback="full")
    mc = dy.simulate_hedge(A, q, eta, T, runs, feedback="full", seed=11)
    mean, se = mc.mean(axis=1), mc.std(axis=1, ddof=1) / math.sqrt(runs)
    for t in (10, 50, 100, 200, 400):
        for i, col in enumerate(["s0", "s1"]):
            assert abs(mean[t, i] - exact[col].iloc[t]) < 4.5 * se[t, i]
    # and the mean-field is its small-η limit at fixed η·t: the gap shrinks in proportion to η
    gaps = []
    for e in (0.05, 0.0125):
        rounds = int(round(20 / e))
        mf = dy.hedge_path(A @ [q, 1 - q], e, rounds)[-1]
        ex = dy.hedge_full_information_mean(A, q, e, rounds)[-1]
        gaps.append(abs(mf[0] - ex[0]))
    assert gaps[0] > 0.005 and gaps[1] < gaps[0] / 3


def test_bandit_hedge_estimator_is_unbiased(gentle):
    A, _, _ = audit.bimatrix(gentle)
    fb = dy.audit_feedback(gentle)
    q, eta, runs = 0.5, 0.1, 200_000
    x1 = dy.simulate_hedge(A, q, eta, 1, runs, "bandit", seed=5, **fb)[1]
    # log(x_1,w/x_1,h) − log(x_0,w/x_0,h) = η(û_w − û_h), with mean η(u_w − u_h)
    incr = np.log(x1[:, 1] / x1[:, 0]) / eta
    u = dy.provider_payoffs(gentle, q)
    se = incr.std(ddof=1) / math.sqrt(runs)
    assert abs(incr.mean() - (u[1] - u[0])) < 4.5 * se


def test_bandit_hedge_monte_carlo_near_mean_field_for_small_eta(gentle):
    A, _, _ = audit.bimatrix(gentle)
    fb = dy.audit_feedback(gentle)
    q, eta, T, runs = 0.5, 0.004, 500, 4000
    mf = dy.predicted_learning_path("hedge", A, eta, T, sampling_rate=q)
    mc = dy.predicted_learning_path("hedge", A, eta, T, sampling_rate=q, feedback="bandit", runs=runs,
                                    seed=3, **fb)
    for t in (100, 250, 500):
        # CLT band plus the O(η) Jensen error of the mean-field (≈ 0.002 here, documented)
        assert abs(mc["s0"].iloc[t] - mf["s0"].iloc[t]) < 4.5 * mc["s0:se"].iloc[t] + 0.002
    assert mc["s0"].iloc[-1] > 0.55  # learning moved honest up from 1/2


def regret_matching_loop(u, rounds, x0):
    x, R, out = np.array(x0, float), np.zeros(len(u)), []
    for _ in range(rounds + 1):
        out.append(x.copy())
        R = R + u - x @ u
        pos = np.maximum(R, 0)
        x = pos / pos.sum() if pos.sum() > 0 else np.full(len(u), 1 / len(u))
    return np.array(out)


def test_regret_matching_expected_and_realised(game):
    A, _, _ = game
    df = dy.predicted_learning_path("regret-matching", hand_u(0.1), eta=0.0, rounds=50)
    assert df[["s0", "s1", "s2"]].to_numpy() == pytest.approx(regret_matching_loop(hand_u(0.1), 50, [1 / 3] * 3))
    assert df[["s0", "s1", "s2"]].iloc[-1].to_numpy() == pytest.approx([1, 0, 0])
    assert df.attrs["limit"] == (1.0, 0.0, 0.0)
    # realised play: the time-averaged play converges to the best response (honest at q = 0.1,
    # weaker-model at q = 0.02)
    for q, best in ((0.1, 0), (0.02, 1)):
        mc = dy.simulate_regret_matching(A, q, 1500, 200, seed=2)
        avg = mc[500:].mean(axis=0).mean(axis=0)
        assert avg[best] > 0.9


def test_two_population_hedge_tends_to_replicator_for_small_eta(game):
    A, B, _ = game
    init = ([0.8, 0.15, 0.05], [0.1, 0.9])
    rep = dy.predicted_learning_path("replicator", (A, B), eta=0.01, rounds=2000, initial=init)
    errs = []
    for eta in (0.01, 0.0025):
        h = dy.predicted_learning_path("hedge", (A, B), eta=eta, rounds=int(20 / eta), initial=init)
        errs.append(abs(h["s0"].iloc[-1] - rep["s0"].iloc[-1]))
    assert errs[1] < errs[0] / 2 and errs[1] < 0.01
    assert rep.attrs["limit"] is None and "verifier:audit" in rep.columns


def test_unknown_rule_and_bad_initial(game):
    A, _, _ = game
    with pytest.raises(ValueError, match="unknown learning rule"):
        dy.predicted_learning_path("fictitious", A, 0.1, 10, sampling_rate=0.05)
    with pytest.raises(ValueError, match="initial shares"):
        dy.predicted_learning_path("hedge", A, 0.1, 10, sampling_rate=0.05, initial=[0.5, 0.6, 0.0])


# ---------------------------------------------------------------------------------------
# threshold prediction
# ---------------------------------------------------------------------------------------

def test_threshold_prediction(default):
    df = dy.threshold_prediction(default, precision=50.0, eta=0.05, rounds=1000, points=101)
    assert df.attrs["deterrence_sampling_rate"] == pytest.approx(Q_STAR)
    assert df.sampling_rate.iloc[0] == pytest.approx(0.5 * Q_STAR) and df.ratio.iloc[-1] == pytest.approx(1.5)
    assert (df.best_response[df.ratio < 1 - 1e-9] == 0).all() and (df.best_response[df.ratio > 1 + 1e-9] == 1).all()
    assert np.isnan(df.best_response[np.isclose(df.ratio, 1.0)]).all()
    for _, r in df.iloc[::10].iterrows():
        u = hand_u(r.sampling_rate)
        assert r.logit == pytest.approx(hand_softmax(50.0 * u)[0], rel=1e-9)
        assert r.hedge == pytest.approx(hand_softmax(50.0 * u)[0], rel=1e-9)  # η·t = 50 from uniform
    assert (np.diff(df.logit) > 0).all()


def test_resolvable_interval(default):
    z = sps.norm.ppf(0.995)
    iv = dy.resolvable_interval(default, precision=50.0, tasks=1000)
    assert iv.lower < Q_STAR < iv.upper
    for q, p in ((iv.lower, iv.share_low), (iv.upper, iv.share_high)):
        share = hand_softmax(50.0 * hand_u(q))[0]
        assert share == pytest.approx(p, abs=1e-9)
        assert abs(share - 0.5) == pytest.approx(z * math.sqrt(share * (1 - share) / 1000), rel=1e-6)
    sharper = dy.resolvable_interval(default, precision=500.0, tasks=1000)
    more = dy.resolvable_interval(default, precision=50.0, tasks=100_000)
    assert sharper.width < iv.width and more.width < iv.width
    assert sharper.lower < Q_STAR < sharper.upper


# ---------------------------------------------------------------------------------------
# two learning populations as the network runs them (section 5)
# ---------------------------------------------------------------------------------------

# the default game typed by hand (module docstring): rows honest, weaker-model, random-output;
# columns audit, no-audit; a flagged task pays A[i, no-audit] − (L + R) = A[i, no-audit] − 21
HAND_A = np.array([[0.6, 0.6], [0.9 - 6.3, 0.9], [1.0 - 21.0, 1.0]])
HAND_B = np.array([[-0.4, 0.0], [-1.5 + 4.1, -1.5], [-5.0 + 14.6, -5.0]])
HAND_FLAG = np.array([0.0, 0.3, 1.0])


def test_round_robin_batches_and_windows():
    assert dy.round_robin(0, 10, 4).tolist() == [3, 3, 2, 2]  # tasks 0..9: providers 0,1,2,3,0,1,2,3,0,1
    assert dy.round_robin(5, 4, 4).tolist() == [1, 1, 1, 1]  # tasks 5..8: providers 1,2,3,0
    assert dy.round_robin(6, 3, 4).tolist() == [1, 0, 1, 1]  # tasks 6, 7, 8: providers 2, 3, 0
    assert dy.batch_sizes(10, 4).tolist() == [4, 4, 2] and dy.batch_sizes(8, 4).tolist() == [4, 4]
    assert dy.window_edges(10, 3).tolist() == [0, 3, 6, 10]
    with pytest.raises(ValueError):
        dy.window_edges(2, 3)


def test_mixed_equilibrium_and_default_step_sizes_by_hand(game):
    A, B, _ = game
    q, x = dy.mixed_equilibrium(A, B)
    assert q == pytest.approx(NASH_Q) and x == pytest.approx(NASH_X)
    # V = Σ over the equilibrium's strategies (honest, weaker-model) of E[(r − b)²] at q° = 1/21, b = 1:
    # honest r = 0.6 always; weaker-model r = 0.9, or 0.9 − 21 when flagged (probability 0.3·q°)
    p = 0.3 / 21
    V = 0.4 ** 2 + (1 - p) * 0.1 ** 2 + p * 21.1 ** 2
    eta, eta_v = dy.hedge_step_sizes(A, B, HAND_FLAG, 21.0, providers=8, tasks=80_000)
    assert eta == pytest.approx(math.sqrt(2 * math.log(3) / (V * 10_000)))
    assert eta_v == pytest.approx(math.sqrt(8 * math.log(2) / 80_000) / 14.6)


def _first_batch_by_enumeration(q0, eta, eta_v, b=1.0, S=21.0):
    """E[q_1] and E[honest share of one provider after batch 1], two providers with two tasks each.

    Written out from the process description: each provider plays its two tasks from x0 = (1/3, 1/3, 1/3);
    a task with action i is flagged with probability q0·flag_i; its log-weights move by
    η·Σ (r − b)/x0_i; the verifier's by η_v·Σ_tasks B[action]."""
    outcomes = []  # (probability, counts, honest share after the batch) of one provider
    for c in itertools.product(range(3), repeat=2):  # the two actions, in order
        counts = np.bincount(c, minlength=3)
        for flags in itertools.product(*(range(k + 1) for k in counts)):
            pr = (1 / 3) ** 2
            for i, (k, f) in enumerate(zip(counts, flags)):
                pf = q0 * HAND_FLAG[i]
                pr *= math.comb(k, f) * pf ** f * (1 - pf) ** (k - f)
            z = eta * (counts * (HAND_A[:, 1] - b) - np.array(flags) * S) / (1 / 3)
            outcomes.append((pr, counts, hand_softmax(z)[0]))
    assert sum(o[0] for o in outcomes) == pytest.approx(1.0)
    e_honest = sum(p * h for p, _, h in outcomes)
    e_q = 0.0
    for p1, c1, _ in outcomes:
        for p2, c2, _ in outcomes:
            zv = np.log([q0, 1 - q0]) + eta_v * ((c1 + c2) @ HAND_B)
            e_q += p1 * p2 * hand_softmax(zv)[0]
    return e_q, e_honest


def test_two_population_monte_carlo_first_batch_matches_enumeration():
    q0, eta, eta_v = 0.3, 0.05, 0.02
    e_q, e_honest = _first_batch_by_enumeration(q0, eta, eta_v)
    runs = 200_000
    sim = dy.simulate_hedge_two_population(HAND_A, HAND_B, eta=eta, verifier_eta=eta_v, providers=2, tasks=8,
                                           batch=4, initial_rate=q0, flag_probability=HAND_FLAG, slash_cost=21.0,
                                           runs=runs, windows=2, seed=5)
    assert np.all(sim.rate[0] == q0)  # the first batch runs at q_0
    assert sim.deviation[0].mean() == pytest.approx(2 / 3, abs=4 * math.sqrt(2 / 9 / 4 / runs))
    se_q = sim.rate[1].std() / math.sqrt(runs)
    assert abs(sim.rate[1].mean() - e_q) < 4 * se_q
    se_t = sim.deviation[1].std() / math.sqrt(runs)
    assert abs(sim.deviation[1].mean() - (1 - e_honest)) < 4 * se_t
    # the enumeration is far from the first-order answer, so the check can fail
    assert abs(e_q - q0) > 20 * se_q


def _hamiltonian(q, t, r):
    """The constant of motion of ṫ = t(1 − t)·6.3(q* − q), q̇ = q(1 − q)·r·4.5(t − t*) (2 × 2 sub-game
    honest / weaker-model, derived by hand: d/dτ[t* ln t + (1 − t*) ln(1 − t)] = (t* − t)·6.3(q* − q) and
    d/dτ[q* ln q + (1 − q*) ln(1 − q)] = (q* − q)·r·4.5(t − t*), so this weighted sum has zero derivative)."""
    qs, ts = 0.3 / 6.3, 0.4 / 4.5
    return (r * 4.5 * (ts * np.log(t) + (1 - ts) * np.log(1 - t))
            + 6.3 * (qs * np.log(q) + (1 - qs) * np.log(1 - q)))


def test_two_by_two_replicator_conserves_its_constant_of_motion_and_averages_to_the_equilibrium():
    A2, B2, r = HAND_A[:2], HAND_B[:2], 0.5  # verifier at half the provider's speed
    df = dy.replicator((A2, r * B2), ([0.85, 0.15], [0.08, 0.92]), t_max=300.0, points=60_001)
    q, t = df["verifier:audit"].to_numpy(), df["s1"].to_numpy()
    H = _hamiltonian(q, t, r)
    assert np.abs(H - H[0]).max() < 1e-7
    assert q.max() - q.min() > 0.05  # a real cycle, not a point
    # whole periods: between the first and the last upward crossing of t = t*
    ts = 0.4 / 4.5
    up = np.flatnonzero((t[:-1] < ts) & (t[1:] >= ts))
    assert len(up) >= 3
    a, b = up[0], up[-1]
    time = df["time"].to_numpy()
    span = time[b] - time[a]
    assert np.trapezoid(q[a:b + 1], time[a:b + 1]) / span == pytest.approx(0.3 / 6.3, abs=2e-5)
    assert np.trapezoid(t[a:b + 1], time[a:b + 1]) / span == pytest.approx(ts, abs=2e-5)
    # over the whole run, which ends mid-cycle, the average is visibly off: whole cycles matter
    assert abs(np.trapezoid(q, time) / time[-1] - 0.3 / 6.3) > 1e-4


def test_discrete_hedge_drifts_outward_at_rate_eta():
    """Simultaneous Hedge steps decrease the constant of motion, a weighted −KL(equilibrium ‖ state) up to a
    constant: they spiral away from the interior equilibrium (Bailey & Piliouras 2018), by O(η) over a
    fixed continuous time."""
    A2, B2, r = HAND_A[:2], HAND_B[:2], 0.5
    init = ([0.85, 0.15], [0.1, 0.9])
    growth = []
    for eta in (0.004, 0.002):
        xs, ys = dy.hedge_path_two(A2, B2, eta, int(20 / eta), init, verifier_eta=r * eta)
        H = _hamiltonian(ys[:, 0], xs[:, 1], r)
        assert np.all(np.diff(H) < 1e-12)
        growth.append(H[0] - H[-1])
    assert growth[0] > 0 and 1.6 < growth[0] / growth[1] < 2.5


def test_batch_mean_field_is_the_replicator_with_speeds():
    """One task per provider per batch: the mean field is Hedge with steps η (providers) and η_v·P
    (verifier, per batch), i.e. the replicator of (A, (η_v·P/η)·B) at time η·batches."""
    P, eta, eta_v, n = 4, 1e-3, 2e-5, 20_000
    mf = dy.hedge_two_population_mean_field(HAND_A, HAND_B, eta=eta, verifier_eta=eta_v, providers=P,
                                            tasks=P * n, batch=P, initial_rate=0.3)
    rep = dy.replicator((HAND_A, (eta_v * P / eta) * HAND_B), (None, [0.3, 0.7]), t_max=eta * n, points=n + 1)
    for k in (n // 4, n // 2, n - 1):
        assert mf["sampling_rate"].iloc[k] == pytest.approx(rep["verifier:audit"].iloc[k], abs=5e-3)
        assert mf["deviation"].iloc[k] == pytest.approx(1 - rep["s0"].iloc[k], abs=5e-3)


def test_two_population_time_averages_approach_the_mixed_equilibrium():
    """With the default step sizes the simulated time averages approach (q°, t°) like 1/√T."""
    dist = []
    for T in (125_000, 1_000_000):
        eta, eta_v = dy.hedge_step_sizes(HAND_A, HAND_B, HAND_FLAG, 21.0, 8, T, sampling_rate=0.05)
        sim = dy.simulate_hedge_two_population(HAND_A, HAND_B, eta=eta, verifier_eta=eta_v, providers=8, tasks=T,
                                               batch=256, initial_rate=0.05, flag_probability=HAND_FLAG,
                                               slash_cost=21.0, runs=6, seed=3)
        dist.append(np.hypot(sim.rate_total - 1 / 21, sim.deviation_total - 4 / 45).mean())
    assert dist[1] < 0.025 and dist[1] < 0.6 * dist[0], dist  # 1/√8 ≈ 0.35


@pytest.mark.parametrize("rule, kw", [("regret", {"gamma": 0.1}), ("logit", {"precision": 3.0})])
def test_bandit_learner_simulation_matches_the_network_learners(rule, kw):
    """The batched Monte Carlo against the reference node's own learner classes driven task by task
    (choose a batch, then observe the commit payoffs and the slashes), audited with probability q."""
    from reference_node import strategies

    q, batch, batches, window, runs = 0.3, 8, 12, 12, 1500  # windows straddle batches
    rng = np.random.default_rng(7)
    honest = np.zeros((8, runs))
    for r in range(runs):
        learner = (strategies.RegretMatching(["honest", "weaker-model", "random-output"], rng, gamma=kw["gamma"])
                   if rule == "regret" else
                   strategies.LogitResponse(["honest", "weaker-model", "random-output"], rng,
                                            precision=kw["precision"]))
        t = 0
        for _ in range(batches):
            actions = [learner.choose() for _ in range(batch)]
            for a in actions:
                if t < 8 * window:
                    honest[t // window, r] += a == "honest"
                t += 1
            for a in actions:
                i = learner.actions.index(a)
                learner.observe(a, HAND_A[i, 1])  # commit: R − c
                if rng.random() < q * HAND_FLAG[i]:
                    learner.observe(a, -21.0)  # slashed: −(L + R)
    sim = dy.simulate_bandit_learners(rule, HAND_A, q, flag_probability=HAND_FLAG, slash_cost=21.0,
                                      share=np.full((batches, 1), batch), window=window, windows=8, runs=4 * runs,
                                      seed=3, **kw)
    a, b = honest / window, sim / window
    se = np.sqrt(a.var(axis=1) / runs + b.var(axis=1) / (4 * runs))
    assert np.all(np.abs(a.mean(axis=1) - b.mean(axis=1)) < 4 * se), (a.mean(axis=1), b.mean(axis=1), se)
    assert b[-1].mean() > b[0].mean() + 0.05  # the learners move (honest is the best response at q = 0.3)
