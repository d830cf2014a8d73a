"""The consensus verification game (mira_theory.games.consensus).

Checked against, in order:
1. values worked out by hand for small committees (the arithmetic is in the comments);
2. an exact brute-force enumeration of every vote vector (honest patterns weighted by the
   Beta moments E[p^x (1 − p)^(h − x)], deviator votes independent), written here from the
   model description rather than from the module's convolution formulas;
3. a Monte Carlo simulation of committees straight from the model description (latent
   p ~ Beta, honest right w.p. p else the distractor, deviators right w.p. a_j else uniform
   over the m − 1 wrong options), seeded, 200 000 claims, within 5 standard errors;
4. binomial tails summed term by term (and in log space by logsumexp of the log pmf);
5. pygambit on the full normal form of the N-player verifier game (enumpoly_solve finds all
   equilibria of these small games, enumpure_solve the pure ones; gnm_solve is not used
   because it never returns on some of them), run in a forked child under a time limit, and
   a brute-force expectation over every pure profile of the other members;
6. binomial / hypergeometric sums with math.comb for capture.

Model conventions used throughout: option 0 is right, option 1 is the honest distractor;
K = ⌈τN⌉; action "1" of the normal form is honest and "2" is the deviation.
"""

from __future__ import annotations

import itertools
import json
import math
import multiprocessing
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import tomli_w
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from scipy import special, stats

import mira_theory as mt
from mira_theory import cli
from mira_theory.games import consensus as C

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"
SHIPPED = ("binary-claims", "four-option-claims", "large-committee")

EXACT = 1e-12  # hand arithmetic and exact enumeration vs the module
SIGMA_TOL = 1e-6  # an equilibrium's deviation probability, toolkit vs pygambit
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --------------------------------------------------------------------------------------
# independent helpers
# --------------------------------------------------------------------------------------


def quorum_exact(N: int, tau: float) -> int:
    """⌈τN⌉ in exact rational arithmetic on the decimal the user wrote."""
    return math.ceil(Fraction(repr(tau)) * N)


def beta_moment(h: int, x: int, a: float, kappa: float) -> float:
    """E[p^x (1 − p)^(h − x)], p ~ Beta(a(1 − κ)/κ, (1 − a)(1 − κ)/κ): the probability of one
    particular pattern of h honest votes with x right."""
    if h == 0:
        return 1.0
    if kappa == 0:
        return a**x * (1 - a) ** (h - x)
    if kappa == 1:
        return a if x == h else (1 - a) if x == 0 else 0.0
    s = (1 - kappa) / kappa
    al, be = a * s, (1 - a) * s
    return math.exp(special.betaln(al + x, be + h - x) - special.betaln(al, be))


def enumerate_committee(honest: int, deviators: dict[str, tuple[int, float]], m: int, tau: float,
                        a: float, kappa: float) -> dict:
    """Exact outcome by summing over every vote vector of the committee."""
    seats = [(name, acc) for name, (count, acc) in deviators.items() for _ in range(count)]
    N = honest + len(seats)
    K = quorum_exact(N, tau)
    first = {}
    for i, (name, _) in enumerate(seats):
        first.setdefault(name, honest + i)
    res = {"correct": 0.0, "wrong": 0.0, "none": 0.0, "agree_honest": 0.0,
           "agree": dict.fromkeys(first, 0.0)}
    for pattern in itertools.product((0, 1), repeat=honest):  # 0 right, 1 distractor
        w_h = beta_moment(honest, pattern.count(0), a, kappa)
        if w_h == 0:
            continue
        for dv in itertools.product(range(m), repeat=len(seats)):
            w = w_h
            for v, (_, acc) in zip(dv, seats):
                w *= acc if v == 0 else (1 - acc) / (m - 1)
            votes = pattern + dv
            counts = np.bincount(votes, minlength=m)
            top = int(counts.argmax())
            cons = top if counts[top] >= K else None
            if cons is None:
                res["none"] += w
            elif cons == 0:
                res["correct"] += w
            else:
                res["wrong"] += w
            if honest and votes[0] == cons:
                res["agree_honest"] += w
            for name, seat in first.items():
                if votes[seat] == cons:
                    res["agree"][name] += w
    return res


def simulate_committee(n: int, honest: int, deviators: dict[str, tuple[int, float]], m: int, tau: float,
                       a: float, kappa: float, seed: int) -> dict:
    """Monte Carlo committees from the model description. Agreement frequencies average over
    all members of a type (exchangeable), which only lowers their variance."""
    rng = np.random.default_rng(seed)
    N = honest + sum(c for c, _ in deviators.values())
    K = quorum_exact(N, tau)
    if kappa == 0:
        p = np.full(n, a)
    elif kappa == 1:
        p = (rng.random(n) < a).astype(float)
    else:
        s = (1 - kappa) / kappa
        p = rng.beta(a * s, (1 - a) * s, n)
    cols, kinds = [], []
    if honest:
        right = rng.random((n, honest)) < p[:, None]
        cols.append(np.where(right, 0, 1))
        kinds += ["honest"] * honest
    for name, (count, acc) in deviators.items():
        right = rng.random((n, count)) < acc
        wrong = 1 + rng.integers(0, m - 1, (n, count))
        cols.append(np.where(right, 0, wrong))
        kinds += [name] * count
    votes = np.concatenate(cols, axis=1)
    counts = (votes[:, :, None] == np.arange(m)).sum(axis=1)
    top = counts.argmax(axis=1)
    cons = np.where(counts.max(axis=1) >= K, top, -1)
    kinds_arr = np.array(kinds)
    agree = {k: float((votes[:, kinds_arr == k] == cons[:, None]).mean()) for k in set(kinds)}
    return {"correct": float((cons == 0).mean()), "wrong": float((cons > 0).mean()),
            "none": float((cons < 0).mean()), "agree": agree}


def binom_tail_below(W: int, t: int, p: float) -> float:
    """P(Binomial(W, p) < t) summed term by term."""
    return math.fsum(math.comb(W, j) * p**j * (1 - p) ** (W - j) for j in range(max(0, t)))


def log_binom_tail_below(W: int, t: int, p: float) -> float:
    """log P(Binomial(W, p) ≤ t − 1) by logsumexp of the log pmf (finite where the tail underflows)."""
    j = np.arange(t)
    logpmf = (special.gammaln(W + 1) - special.gammaln(j + 1) - special.gammaln(W - j + 1)
              + j * math.log(p) + (W - j) * math.log1p(-p))
    return float(special.logsumexp(logpmf))


def window_feasible(W: int, p_h: float, p_devs, F: float, M: float) -> bool:
    """Is there a count t with P(B(W, p_h) < t) ≤ F and P(B(W, p_j) ≥ t) ≤ M for every j?
    t is scanned over the whole range for small W, else around the means (F, M < 1/2 put any
    feasible t between max p_j·W and p_h·W, give or take a few standard deviations)."""
    if W <= 5000:
        t = np.arange(W + 2)
    else:
        sd = math.sqrt(W * 0.25)
        lo = max(0, int(max(p_devs) * W - 15 * sd))
        hi = min(W + 1, int(p_h * W + 15 * sd))
        t = np.arange(lo, hi + 1)
    false = stats.binom.cdf(t - 1, W, p_h)
    miss = np.max([stats.binom.sf(t - 1, W, p) for p in p_devs], axis=0)
    return bool(np.any((false <= F) & (miss <= M)))


def D_bernstein(delta: np.ndarray, sigma: float) -> float:
    """Σ_k C(n, k) σ^k (1 − σ)^(n − k) Δ(k) with scipy's binomial pmf (independent of _BinomialMean)."""
    n = len(delta) - 1
    return float(stats.binom.pmf(np.arange(n + 1), n, sigma) @ delta)


def D_brute_force(uh: np.ndarray, uj: np.ndarray, sigma: float) -> float:
    """Expected payoff(honest) − payoff(deviate) of member 0 when each of the other N − 1
    deviates independently w.p. σ, summed over all 2^(N−1) pure profiles of the others."""
    N = len(uh)
    total = 0.0
    for others in itertools.product((0, 1), repeat=N - 1):
        k = sum(others)
        prob = sigma**k * (1 - sigma) ** (N - 1 - k)
        total += prob * (uh[k] - uj[k])
    return total


def normal_form(uh: np.ndarray, uj: np.ndarray, N: int) -> list[np.ndarray]:
    """Payoff arrays of the full N-player game: action 0 honest, 1 deviate; a member's payoff
    is u_a(k) with k the number of OTHER members deviating."""
    arrays = []
    for i in range(N):
        A = np.empty((2,) * N)
        for prof in itertools.product((0, 1), repeat=N):
            k = sum(prof) - prof[i]
            A[prof] = uh[k] if prof[i] == 0 else uj[k]
        arrays.append(A)
    return arrays


def gambit_game(uh, uj, N):
    import pygambit as gbt

    return gbt.StrategicGame.from_arrays(*normal_form(uh, uj, N))


def gambit_symmetric(uh, uj, N) -> list[float]:
    """Deviation probabilities of the symmetric equilibria pygambit finds (enumpoly: all
    equilibria on every support; enumpure as a second source for the pure ones). gnm_solve is
    not used: on some of these games it never returns."""
    import pygambit as gbt

    game = gambit_game(uh, uj, N)
    found = []
    for result in (gbt.nash.enumpoly_solve(game), gbt.nash.enumpure_solve(game)):
        for eq in result.equilibria:
            s = [float(eq[str(i + 1)]["2"]) for i in range(N)]
            if max(s) - min(s) < 1e-7:
                found.append(float(np.mean(s)))
    out: list[float] = []
    for s in sorted(found):
        if not out or abs(s - out[-1]) > SIGMA_TOL:
            out.append(s)
    return out


def run_with_time_limit(fn, seconds: float):
    """fn() in a forked child process; None if it does not answer within the time limit
    (pygambit's C++ solvers cannot be interrupted from Python)."""
    ctx = multiprocessing.get_context("fork")
    recv, send = ctx.Pipe(duplex=False)

    def child():
        try:
            send.send(("ok", fn()))
        except BaseException as err:  # noqa: BLE001 - report anything to the parent
            send.send(("error", repr(err)))

    proc = ctx.Process(target=child, daemon=True)
    proc.start()
    try:
        if not recv.poll(seconds):
            return None
        status, value = recv.recv()
    finally:
        if proc.is_alive():
            proc.kill()
        proc.join()
    if status != "ok":
        raise RuntimeError(value)
    return value


def gambit_regret(uh, uj, N, sigma: float) -> float:
    """pygambit's max regret of the symmetric profile (each deviates w.p. σ)."""
    game = gambit_game(uh, uj, N)
    prof = game.mixed_strategy_profile(rational=False)
    for pl in game.players:
        prof[pl] = {"1": 1.0 - sigma, "2": sigma}
    return float(prof.max_regret())


def game_params(draw_n):
    """A hypothesis strategy for generic N-player verifier games."""
    return st.fixed_dictionaries({
        "N": draw_n,
        "options": st.sampled_from([2, 3, 4]),
        "threshold": st.sampled_from([0.51, 0.6, 0.7, 0.75, 0.9]),
        "accuracy": st.floats(0.6, 0.99),
        "correlation": st.one_of(st.just(0.0), st.floats(0.01, 0.6)),
        "dev_share": st.floats(0.0, 0.95),  # a_j as a share of a
        "reward": st.floats(0.01, 1.0),
        "cost_share": st.floats(0.0, 0.5),  # c / r
        "dev_cost_share": st.floats(0.0, 1.0),  # c_j / c
        "window": st.integers(5, 200),
        "agreement_threshold": st.floats(0.3, 0.95),
        "slash": st.floats(0.0, 50.0),
    })


def coefficients(p):
    c = p["cost_share"] * p["reward"]
    return C.payoff_difference_coefficients(
        p["N"], p["options"], p["threshold"], p["reward"], c, p["accuracy"], p["correlation"],
        p["dev_cost_share"] * c, p["dev_share"] * p["accuracy"], p["window"], p["agreement_threshold"],
        p["slash"])


# --------------------------------------------------------------------------------------
# 1. hand-computed small cases
# --------------------------------------------------------------------------------------


def test_guessing_values_by_hand():
    # random answers pass k independent m-option checks with probability (1/m)^k
    assert C.guessing_probability(4, 3) == pytest.approx(1 / 64, abs=EXACT)  # (1/4)^3
    assert C.guessing_probability(2, 10) == pytest.approx(1 / 1024, abs=EXACT)  # (1/2)^10
    table = C.guessing_table()
    assert list(table.index) == [2, 4, 6, 8, 10] and list(table.columns) == list(range(1, 11))
    assert table.loc[4, 3] == pytest.approx(1 / 64, abs=EXACT)
    assert table.loc[6, 2] == pytest.approx(1 / 36, abs=EXACT)  # (1/6)^2
    assert table.loc[10, 1] == pytest.approx(0.1, abs=EXACT)
    assert table.loc[8, 4] == pytest.approx(1 / 4096, abs=EXACT)  # 8^4 = 4096


@pytest.mark.parametrize(("N", "tau", "K"), [
    (3, 0.6, 2),  # 1.8 -> 2
    (5, 0.6, 3),  # 3 exactly
    (7, 0.7, 5),  # 4.9 -> 5
    (100, 0.55, 55),  # 0.55·100 = 55.00000000000001 in binary: must be 55, not 56
    (25, 0.56, 14),  # 14.000000000000002 -> 14
    (90, 0.7, 63),  # 62.99999999999999 -> 63
    (101, 0.67, 68),  # 67.67 -> 68
    (2, 0.6, 2),  # unanimity
    (11, 0.51, 6),  # 5.61 -> 6, simple majority
])
def test_quorum_by_hand(N, tau, K):
    assert C.quorum(N, tau) == K == quorum_exact(N, tau)


def test_three_independent_honest_binary():
    # N = 3, m = 2, τ = 0.6 -> K = ⌈1.8⌉ = 2, κ = 0, a = 0.9
    # P(correct) = a³ + 3a²(1 − a) = 0.729 + 3·0.81·0.1 = 0.972
    # P(wrong)   = (1 − a)³ + 3(1 − a)²a = 0.001 + 0.027 = 0.028;  P(none) = 0 (3 votes, 2 options)
    # agreement: own right and ≥ 1 of the other two right: 0.9·(1 − 0.1²) = 0.891
    #          + own wrong and ≥ 1 of the other two wrong: 0.1·(1 − 0.9²) = 0.019   -> 0.91
    out = C.committee_outcome(3, {}, 2, 0.6, 0.9, 0.0)
    assert out.correct == pytest.approx(0.972, abs=EXACT)
    assert out.wrong == pytest.approx(0.028, abs=EXACT)
    assert out.none == pytest.approx(0.0, abs=EXACT)
    assert out.consensus == pytest.approx(1.0, abs=EXACT)
    assert out.agree_honest == pytest.approx(0.91, abs=EXACT)
    assert dict(out.agree_deviation) == {}
    assert C.ensemble_accuracy(3, 0.6, 0.9, 0.0) == pytest.approx(0.972, abs=EXACT)


def test_one_random_guesser_among_two_honest():
    # N = 3 (2 honest a = 0.9, 1 guesser a_j = 0.5), m = 2, K = 2, κ = 0
    # P(correct) = P(both honest right) + P(exactly one right)·½ = 0.81 + 2·0.9·0.1·0.5 = 0.90
    # P(wrong)   = 0.01 + 0.18·0.5 = 0.10
    # honest agreement: right 0.9·(1 − 0.1·0.5) = 0.855; wrong 0.1·(1 − 0.9·0.5) = 0.055 -> 0.91
    # guesser agreement: right 0.5·(1 − 0.1²) = 0.495; wrong 0.5·(1 − 0.9²) = 0.095 -> 0.59
    out = C.committee_outcome(2, {"guess": (1, 0.5)}, 2, 0.6, 0.9, 0.0)
    assert out.correct == pytest.approx(0.90, abs=EXACT)
    assert out.wrong == pytest.approx(0.10, abs=EXACT)
    assert out.none == pytest.approx(0.0, abs=EXACT)
    assert out.agree_honest == pytest.approx(0.91, abs=EXACT)
    assert out.agree_deviation["guess"] == pytest.approx(0.59, abs=EXACT)


@pytest.mark.parametrize("m", [2, 4])
def test_perfectly_correlated_honest_nodes_agree(m):
    # κ = 1: all honest nodes are right together (w.p. a) or all on the distractor together.
    # N = 3 honest, K = 2: P(correct) = a = 0.8, P(wrong) = 0.2, every honest vote agrees.
    out = C.committee_outcome(3, {}, m, 0.6, 0.8, 1.0)
    assert (out.correct, out.wrong, out.none) == pytest.approx((0.8, 0.2, 0.0), abs=EXACT)
    assert out.agree_honest == pytest.approx(1.0, abs=EXACT)
    # 2 honest + 1 guesser (a_j = 1/m): the honest pair alone reaches K = 2, so the outcome is the
    # pair's answer; the guesser agrees iff it votes that answer:
    # a·a_j + (1 − a)·(1 − a_j)/(m − 1) = 0.8/m + 0.2·(1/m)  (for a guess, (1 − 1/m)/(m − 1) = 1/m) = 1/m
    out = C.committee_outcome(2, {"guess": (1, 1 / m)}, m, 0.6, 0.8, 1.0)
    assert (out.correct, out.wrong) == pytest.approx((0.8, 0.2), abs=EXACT)
    assert out.agree_honest == pytest.approx(1.0, abs=EXACT)
    assert out.agree_deviation["guess"] == pytest.approx(1 / m, abs=EXACT)
    # a weaker model a_j = 0.6, m = 4: 0.8·0.6 + 0.2·(0.4/3) = 0.48 + 0.02666… = 0.50666…
    out = C.committee_outcome(2, {"weak": (1, 0.6)}, 4, 0.6, 0.8, 1.0)
    assert out.agree_deviation["weak"] == pytest.approx(0.48 + 0.2 * 0.4 / 3, abs=EXACT)


def test_beta_binomial_pair_by_hand():
    # N = 2, τ = 0.6 -> K = ⌈1.2⌉ = 2 (unanimity), a = 0.8, κ = 0.25.
    # Beta moments: P(both right) = E[p²] = a·(a + κ(1 − a)) = 0.8·(0.8 + 0.05) = 0.68
    #               P(both wrong) = (1 − a)·((1 − a) + κa) = 0.2·(0.2 + 0.2) = 0.08
    #               P(split) = 2a(1 − a)(1 − κ) = 2·0.16·0.75 = 0.24 (= 1 − 0.68 − 0.08)
    out = C.committee_outcome(2, {}, 2, 0.6, 0.8, 0.25)
    assert out.correct == pytest.approx(0.68, abs=EXACT)
    assert out.wrong == pytest.approx(0.08, abs=EXACT)
    assert out.none == pytest.approx(0.24, abs=EXACT)
    assert out.agree_honest == pytest.approx(0.76, abs=EXACT)  # agrees iff both vote alike
    # the pmf itself: P(X = 0, 1, 2) = 0.08, 0.24, 0.68
    assert C.honest_pmf(2, 0.8, 0.25) == pytest.approx([0.08, 0.24, 0.68], abs=EXACT)
    # the pairwise correlation of correctness is κ: (E[p²] − a²)/(a(1 − a)) = (0.68 − 0.64)/0.16 = 0.25


def test_beta_binomial_triple_by_hand():
    # N = 3, K = 2, a = 0.8, κ = 0.25: s = (1 − κ)/κ = 3, α = 2.4, β = 0.6.
    # E[p²] = α(α+1)/(s(s+1)) = 2.4·3.4/12 = 0.68;  E[p³] = 2.4·3.4·4.4/(3·4·5) = 35.904/60 = 0.5984
    # P(X = 3) = 0.5984;  P(X = 2) = 3·(E[p²] − E[p³]) = 3·0.0816 = 0.2448 -> P(correct) = 0.8432
    # E[(1−p)²] = 0.08, E[(1−p)³] = 0.6·1.6·2.6/60 = 0.0416; P(X = 1) = 3·(0.08 − 0.0416) = 0.1152
    # P(wrong) = 0.0416 + 0.1152 = 0.1568
    # a member disagrees iff it is the lone dissenter: (P(X=2) + P(X=1))/3 = 0.36/3 = 0.12 -> 0.88
    out = C.committee_outcome(3, {}, 2, 0.6, 0.8, 0.25)
    assert out.correct == pytest.approx(0.8432, abs=EXACT)
    assert out.wrong == pytest.approx(0.1568, abs=EXACT)
    assert out.none == pytest.approx(0.0, abs=EXACT)
    assert out.agree_honest == pytest.approx(0.88, abs=EXACT)
    assert C.honest_pmf(3, 0.8, 0.25) == pytest.approx([0.0416, 0.1152, 0.2448, 0.5984], abs=EXACT)


def test_four_options_wrong_consensus_through_a_non_distractor():
    # m = 4, N = 3 (1 honest a = 0.9, 2 guessers a_j = 1/4 spreading uniformly: each wrong option
    # w.p. (3/4)/3 = 1/4), K = 2, κ = 0. Option 1 is the distractor, options 2 and 3 "other".
    # correct: honest right·(≥ 1 guesser right) + honest wrong·(both guessers right)
    #        = 0.9·(1 − (3/4)²) + 0.1·(1/4)² = 0.9·7/16 + 0.1/16 = 0.39375 + 0.00625 = 0.4
    # distractor: honest wrong·(≥ 1 guesser on it) + honest right·(both on it)
    #        = 0.1·7/16 + 0.9/16 = 0.04375 + 0.05625 = 0.1
    # through an other option (only guessers vote there): 2 options·(1/4)² = 0.125
    # wrong = 0.225, none = 1 − 0.4 − 0.225 = 0.375
    out = C.committee_outcome(1, {"guess": (2, 0.25)}, 4, 0.6, 0.9, 0.0)
    assert out.correct == pytest.approx(0.4, abs=EXACT)
    assert out.wrong == pytest.approx(0.225, abs=EXACT)
    assert out.none == pytest.approx(0.375, abs=EXACT)
    # honest agreement: right 0.9·7/16 + wrong 0.1·7/16 = 0.4375
    assert out.agree_honest == pytest.approx(0.4375, abs=EXACT)
    # guesser: right ¼·(1 − 0.1·¾) = 0.23125; distractor ¼·(1 − 0.9·¾) = 0.08125;
    #          other option ½·(the other guesser picks the same one: ¼) = 0.125  -> 0.4375
    assert out.agree_deviation["guess"] == pytest.approx(0.23125 + 0.08125 + 0.125, abs=EXACT)


def test_four_option_guessers_only():
    # 3 guessers, m = 4, K = 2: an option reaches K w.p. 3·(1/4)²·(3/4) + (1/4)³ = 10/64.
    # correct = 10/64, wrong = 3·10/64 = 30/64, none = 24/64;
    # a guesser agrees iff another guesser picks its option: 1 − (3/4)² = 7/16.
    out = C.committee_outcome(0, {"guess": (3, 0.25)}, 4, 0.6, 0.9, 0.0)
    assert (out.correct, out.wrong, out.none) == pytest.approx((10 / 64, 30 / 64, 24 / 64), abs=EXACT)
    assert math.isnan(out.agree_honest)
    assert out.agree_deviation["guess"] == pytest.approx(7 / 16, abs=EXACT)


_committee_cases = st.tuples(
    st.integers(0, 4),  # honest
    st.integers(0, 2), st.integers(0, 2),  # two deviation types
    st.sampled_from([2, 3, 4]),
    st.sampled_from([0.51, 0.6, 0.67, 0.75, 0.9]),
    st.floats(0.05, 0.99), st.sampled_from([0.0, 0.1, 0.35, 0.8, 1.0]),
    st.one_of(st.sampled_from([0.0, 1.0]), st.floats(0.0, 1.0)),
    st.one_of(st.sampled_from([0.0, 1.0]), st.floats(0.0, 1.0)),
)


@SETTINGS
@given(_committee_cases)
def test_committee_outcome_matches_exhaustive_enumeration(case):
    h, n1, n2, m, tau, a, kappa, a1, a2 = case
    assume(h + n1 + n2 >= 1)
    devs = {name: (n, acc) for name, n, acc in (("guess", n1, a1), ("weak", n2, a2)) if n}
    got = C.committee_outcome(h, devs, m, tau, a, kappa)
    want = enumerate_committee(h, devs, m, tau, a, kappa)
    assert got.correct == pytest.approx(want["correct"], abs=1e-10)
    assert got.wrong == pytest.approx(want["wrong"], abs=1e-10)
    assert got.none == pytest.approx(want["none"], abs=1e-10)
    assert got.consensus == pytest.approx(want["correct"] + want["wrong"], abs=1e-10)
    if h:
        assert got.agree_honest == pytest.approx(want["agree_honest"], abs=1e-10)
    assert set(got.agree_deviation) == set(want["agree"])
    for name, v in want["agree"].items():
        assert got.agree_deviation[name] == pytest.approx(v, abs=1e-10)


def test_agreement_curves_exact_match_enumeration():
    # p_h(k): an honest member with N − 1 − k honest and k deviating others; p_j(k): a deviator
    # with N − 1 − k honest and k other deviators.
    N, m, tau, a, kappa, aj = 4, 3, 0.6, 0.85, 0.3, 0.4
    ph, pj = C.agreement_curves(N, m, tau, a, kappa, aj, exact=True)
    for k in range(N):
        e_h = enumerate_committee(N - k, {"d": (k, aj)} if k else {}, m, tau, a, kappa)
        e_j = enumerate_committee(N - 1 - k, {"d": (k + 1, aj)}, m, tau, a, kappa)
        assert ph[k] == pytest.approx(e_h["agree_honest"], abs=1e-12)
        assert pj[k] == pytest.approx(e_j["agree"]["d"], abs=1e-12)


@SETTINGS
@given(st.integers(1, 12), st.sampled_from([2, 3, 4]), st.sampled_from([0.51, 0.6, 0.67, 0.75, 0.9]),
       st.floats(0.05, 0.99), st.sampled_from([0.0, 0.1, 0.35, 0.8, 1.0]), st.floats(0.01, 0.99))
def test_agreement_curves_exact_equal_committee_outcome(N, m, tau, a, kappa, aj):
    # the exact branch is a vectorized rewrite of committee_outcome: member by member equal
    ph, pj = C.agreement_curves(N, m, tau, a, kappa, aj, exact=True)
    assert ph.shape == pj.shape == (N,)
    for k in range(N):
        h = C.committee_outcome(N - k, {"d": (k, aj)} if k else {}, m, tau, a, kappa)
        j = C.committee_outcome(N - 1 - k, {"d": (k + 1, aj)}, m, tau, a, kappa)
        assert ph[k] == pytest.approx(h.agree_honest, abs=1e-12)
        assert pj[k] == pytest.approx(j.agree_deviation["d"], abs=1e-12)


# --------------------------------------------------------------------------------------
# 2. Monte Carlo
# --------------------------------------------------------------------------------------

MC_CLAIMS = 200_000
MC_SE = 5.0


@pytest.mark.parametrize(("honest", "devs", "m", "tau", "a", "kappa"), [
    (3, {}, 2, 0.6, 0.9, 0.0),  # N = 3, K = 2
    (4, {"guess": (1, 0.5)}, 2, 0.6, 0.85, 0.2),  # binary-claims-like
    (5, {"guess": (2, 0.25)}, 4, 0.7, 0.8, 0.3),  # N = 7, K = 5
    (7, {"guess": (2, 0.25), "weak": (2, 0.6)}, 4, 0.6, 0.75, 0.1),  # N = 11, K = 7, two types
    (2, {"guess": (9, 0.25)}, 4, 0.51, 0.9, 0.5),  # N = 11, deviators dominate, wrong via others
    (0, {"guess": (5, 1 / 3)}, 3, 0.6, 0.9, 0.0),  # no honest member
    (6, {"weak": (3, 0.7)}, 3, 0.67, 0.8, 1.0),  # κ = 1
    (11, {}, 2, 0.51, 0.7, 0.45),  # N = 11 honest, strong correlation
], ids=lambda v: str(v) if not isinstance(v, dict) else ",".join(f"{k}{c}" for k, (c, _) in v.items()) or "none")
def test_committee_outcome_monte_carlo(honest, devs, m, tau, a, kappa):
    got = C.committee_outcome(honest, devs, m, tau, a, kappa)
    sim = simulate_committee(MC_CLAIMS, honest, devs, m, tau, a, kappa, seed=honest * 100 + m)

    def close(p, f):
        se = math.sqrt(max(p * (1 - p), 0.0) / MC_CLAIMS)
        return abs(p - f) <= MC_SE * se + 3 / MC_CLAIMS

    for key in ("correct", "wrong", "none"):
        assert close(getattr(got, key), sim[key]), (key, getattr(got, key), sim[key])
    assert close(got.consensus, sim["correct"] + sim["wrong"])
    if honest:
        assert close(got.agree_honest, sim["agree"]["honest"]), (got.agree_honest, sim["agree"]["honest"])
    for name in devs:
        assert close(got.agree_deviation[name], sim["agree"][name]), (name, got.agree_deviation[name],
                                                                      sim["agree"][name])


# --------------------------------------------------------------------------------------
# 3. windowed slashing
# --------------------------------------------------------------------------------------


def test_slash_probability_by_hand():
    # W = 3, θ = 0.5: t = ⌈1.5⌉ = 2, slashed iff ≤ 1 match: (1 − p)³ + 3p(1 − p)² = 0.001 + 0.027 at p = 0.9
    assert float(C.slash_probability(3, 0.5, 0.9)) == pytest.approx(0.028, abs=EXACT)
    # W = 10, θ = 0.7: t = 7, P(B ≤ 6) at p = 0.8 = 1 − [120·0.8⁷·0.2³ + 45·0.8⁸·0.2² + 10·0.8⁹·0.2 + 0.8¹⁰]
    #   = 1 − [0.201326592 + 0.301989888 + 0.268435456 + 0.1073741824] = 0.1208738816
    assert float(C.slash_probability(10, 0.7, 0.8)) == pytest.approx(0.1208738816, abs=EXACT)
    # θ·W = 0.6·5 = 3: t = 3 (slashed iff ≤ 2 matches): P(B(5, ½) ≤ 2) = ½ by symmetry
    assert C.slash_count(5, 0.6) == 3
    assert float(C.slash_probability(5, 0.6, 0.5)) == pytest.approx(0.5, abs=EXACT)
    # θ·W = 0.56·25 = 14.000000000000002 in binary: t must be 14, not 15
    assert C.slash_count(25, 0.56) == 14
    assert float(C.slash_probability(25, 0.56, 0.5)) == pytest.approx(binom_tail_below(25, 14, 0.5), abs=EXACT)
    # θ = 0 never slashes; θ = 1 slashes unless all W match: 1 − p^W
    assert float(C.slash_probability(7, 0.0, 0.3)) == 0.0
    assert float(C.slash_probability(4, 1.0, 0.9)) == pytest.approx(1 - 0.9**4, abs=EXACT)


@SETTINGS
@given(st.integers(1, 60), st.floats(0.0, 1.0), st.floats(0.001, 0.999))
def test_slash_probability_is_a_direct_pmf_sum(W, theta, p):
    t = math.ceil(round(theta * W, 9))
    want = binom_tail_below(W, t, p)
    assert float(C.slash_probability(W, theta, p)) == pytest.approx(want, rel=1e-9, abs=1e-15)
    if want > 1e-280:
        assert float(C.log_slash_probability(W, theta, p)) == pytest.approx(math.log(want), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize(("W", "theta", "p"), [
    (10**6, 0.89, 0.9),  # ≈ e^−544.36: small but representable
    (10**6, 0.895, 0.9),  # ≈ e^−140.65
    (10**6, 0.5, 0.9),  # ≈ e^−510 835: the probability underflows to 0
    (10**6, 0.7, 0.9),  # ≈ e^−153 672: underflows
    (2 * 10**5, 0.6, 0.75),  # ≈ e^−10 829: underflows
])
def test_log_slash_probability_is_finite_where_the_tail_underflows(W, theta, p):
    t = math.ceil(round(theta * W, 9))
    want = log_binom_tail_below(W, t, p)
    got = float(C.log_slash_probability(W, theta, p))
    assert math.isfinite(got), (
        f"log P(Binomial({W}, {p}) < {t}) = {want:.6g} but log_slash_probability returned {got}: "
        "scipy's binom.logcdf is log(cdf) and underflows")
    assert got == pytest.approx(want, rel=1e-8)
    # consistent with the plain probability where that does not underflow
    plain = float(C.slash_probability(W, theta, p))
    if plain > 0:
        assert math.log(plain) == pytest.approx(got, rel=1e-8)


@SETTINGS
@given(st.integers(2, 20), st.data(), st.floats(0.0, 1.0), st.floats(0.0, 1.0))
def test_window_monotone_false_slash_falls_detection_rises(q, data, u_h, u_j):
    # θ = s/q between p_j and p_h; windows W = q·n make θW an integer (no rounding steps)
    s = data.draw(st.integers(1, q - 1))
    theta = s / q
    p_h = theta + 0.005 + u_h * (0.999 - theta - 0.005)
    p_j = 0.001 + u_j * (theta - 0.005 - 0.001)
    assume(theta + 0.005 < 0.999 and 0.001 < theta - 0.005)
    W = q * np.arange(1, 60)
    false = C.slash_probability(W, theta, p_h)
    detect = C.slash_probability(W, theta, p_j)
    # detection P(B(W, p_j) < θW) rises with W from the first window on
    assert np.all(np.diff(detect) >= -1e-12), detect
    # false slash P(B(W, p_h) < θW) falls once the honest mean clears the threshold by one vote,
    # (p_h − θ)·W ≥ 1; below that the strict "<" can make it rise: θ = ½, p_h = 0.625 gives
    # W = 2: 0.375² = 0.140625 but W = 4: 0.375⁴ + 4·0.625·0.375³ = 0.151611…
    keep = ((p_h - theta) * W >= 1) & (false > 1e-250)  # and above the float floor
    f = false[keep]
    assert np.all(np.diff(f) <= 1e-12 * f[1:]), false


def test_false_slash_can_rise_for_tiny_windows():
    # the counterexample above, by hand
    assert float(C.slash_probability(2, 0.5, 0.625)) == pytest.approx(0.375**2, abs=EXACT)
    assert float(C.slash_probability(4, 0.5, 0.625)) == pytest.approx(0.375**4 + 4 * 0.625 * 0.375**3, abs=EXACT)
    assert C.slash_probability(4, 0.5, 0.625) > C.slash_probability(2, 0.5, 0.625)


def test_minimum_slash_by_hand():
    # L* = W·((c − c_j) − (p_h − p_j)·r)/(P_d − P_f)
    # W = 100, r = 0.1, c = 0.08, c_j = 0, p_h = 0.9, p_j = 0.5, P_f = 0.01, P_d = 0.99:
    # need = 0.08 − 0.4·0.1 = 0.04 -> L* = 100·0.04/0.98 = 4.081632…
    assert C.minimum_slash_per_window(100, 0.1, 0.08, 0.9, 0.01, 0.0, 0.5, 0.99) == pytest.approx(4 / 0.98)
    # the reward gap alone deters: need = 0.04 − 0.04 = 0 -> 0
    assert C.minimum_slash_per_window(100, 0.1, 0.04, 0.9, 0.01, 0.0, 0.5, 0.99) == 0.0
    # detection not above false slashing: no slash deters
    assert C.minimum_slash_per_window(100, 0.1, 0.08, 0.9, 0.3, 0.0, 0.5, 0.3) == math.inf


def _check_design(p_h, p_devs, F, M, d, below=24):
    assert d.feasible, d.reason
    W, theta = d.window, d.agreement_threshold
    t = round(theta * W)
    assert C.slash_count(W, theta) == t
    # the reported errors are those of (W, θ) and meet the targets
    assert float(C.slash_probability(W, theta, p_h)) == pytest.approx(d.false_slash, rel=1e-9, abs=1e-300)
    assert d.false_slash <= F
    miss = max(float(stats.binom.sf(t - 1, W, p)) for p in p_devs)  # P(B(W, p_j) ≥ t)
    assert miss == pytest.approx(d.worst_miss, rel=1e-6, abs=1e-300)
    assert d.worst_miss <= M
    # independently: W works, and no smaller window in the stretch below does
    assert window_feasible(W, p_h, p_devs, F, M)
    for w in range(max(1, W - below), W):
        assert not window_feasible(w, p_h, p_devs, F, M), f"W = {w} < {W} also meets both targets"


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])  # ~60 ms a design
@given(st.floats(0.6, 0.999), st.data(), st.floats(1e-5, 0.2), st.floats(1e-5, 0.2))
def test_design_window_is_the_smallest_feasible(p_h, data, F, M):
    p_devs = data.draw(st.lists(st.floats(0.01, p_h - 0.08), min_size=1, max_size=3))
    d = C.design_window(p_h, p_devs, F, M)
    assume(d.feasible and d.window <= 2000)
    _check_design(p_h, p_devs, F, M, d, below=6)


@pytest.mark.parametrize(("p_h", "p_j", "F", "M"), [
    (0.9, 0.5, 1e-3, 1e-2), (0.95, 0.6, 1e-3, 1e-3), (0.8, 0.7, 0.05, 0.05), (0.99, 0.25, 0.1, 0.1),
])
def test_design_window_exhaustive_small(p_h, p_j, F, M):
    d = C.design_window(p_h, [p_j], F, M)
    _check_design(p_h, [p_j], F, M, d, below=d.window)  # every smaller window fails


@pytest.mark.parametrize(("p_h", "p_j", "F", "M"), [
    (0.9, 0.899, 1e-3, 1e-3),  # close agreement probabilities: W in the millions
    (0.9, 0.89, 1e-30, 1e-30),  # tight targets
    (0.999, 0.998, 1e-6, 1e-6),
])
def test_design_window_at_million_scale(p_h, p_j, F, M):
    d = C.design_window(p_h, [p_j], F, M)
    assert d.feasible and d.window > 10**5
    _check_design(p_h, [p_j], F, M, d, below=1)


def test_design_window_reports_infeasible():
    for p_h, p_devs in [(0.8, [0.8]), (0.8, [0.9]), (0.8, [0.5, 0.85])]:
        d = C.design_window(p_h, p_devs, 1e-3, 1e-3)
        assert not d.feasible and d.window is None and d.agreement_threshold is None
        assert "no window separates" in d.reason and "p_h" in d.reason
    # no deviation at all: any window
    d = C.design_window(0.9, [], 1e-3, 1e-3)
    assert d.feasible and d.window == 1


# --------------------------------------------------------------------------------------
# 4. the N-player verifier game
# --------------------------------------------------------------------------------------

BINARY = {"N": 3, "options": 2, "threshold": 0.6, "accuracy": 0.95, "correlation": 0.2, "dev_share": 0.5 / 0.95,
          "reward": 0.1, "cost_share": 0.4, "dev_cost_share": 0.0, "window": 100, "agreement_threshold": 0.7,
          "slash": 10.0}


@pytest.mark.parametrize("N", [3, 4, 5, 6])
def test_reduction_equals_brute_force_over_pure_profiles(N):
    for p in (dict(BINARY, N=N), dict(BINARY, N=N, options=4, dev_share=0.3, correlation=0.0, slash=30.0)):
        uh, uj, delta = coefficients(p)
        assert delta == pytest.approx(uh - uj, abs=EXACT)
        D = C._BinomialMean(delta)
        for sigma in (0.0, 0.05, 0.3, 0.5, 0.77, 0.999, 1.0):
            bf = D_brute_force(uh, uj, sigma)
            assert D(sigma) == pytest.approx(bf, rel=1e-9, abs=1e-12)  # log-space weights: ~1e-11 rel
            assert D_bernstein(delta, sigma) == pytest.approx(bf, rel=1e-9, abs=1e-12)
    # and pygambit's strategy values on the full normal form say the same
    uh, uj, _ = coefficients(dict(BINARY, N=N))
    game = gambit_game(uh, uj, N)
    prof = game.mixed_strategy_profile(rational=False)
    for sigma in (0.2, 0.6):
        for pl in game.players:
            prof[pl] = {"1": 1 - sigma, "2": sigma}
        for pl in game.players:
            v = prof.strategy_values[pl]
            assert v["1"] - v["2"] == pytest.approx(D_brute_force(uh, uj, sigma), abs=1e-12)


def _check_equilibria_against_brute_force(uh, uj, eqs):
    """Each reported σ is an equilibrium of the reduction and its stability is the sign of D′."""
    for e in eqs:
        s = e.deviation_probability
        D = D_brute_force(uh, uj, s)
        scale = max(1.0, float(np.abs(uh - uj).max()))
        if e.kind == "pure":
            assert s in (0.0, 1.0)
            assert (D >= -1e-12 * scale) if s == 0 else (D <= 1e-12 * scale)
            assert e.stable == (abs(D) > 1e-12 * scale)
        else:
            assert 0 < s < 1
            assert abs(D) <= 1e-9 * scale
            h = 1e-5
            slope = (D_brute_force(uh, uj, min(1, s + h)) - D_brute_force(uh, uj, max(0, s - h))) / (2 * h)
            assert e.stable == (slope > 0)
        assert e.honest_share == pytest.approx(1 - s)


def _compare_with_gambit(uh, uj, delta, N, seconds):
    """Toolkit equilibria ⊆ Nash equilibria of the normal form; pygambit's symmetric equilibria
    ⊆ toolkit's; and no sign change of D (brute force, fine grid) without a reported root."""
    eqs = C.symmetric_equilibria(delta)
    _check_equilibria_against_brute_force(uh, uj, eqs)
    ours = sorted(e.deviation_probability for e in eqs)
    scale = max(1.0, float(np.abs(delta).max()))
    for s in ours:  # every toolkit equilibrium is a Nash equilibrium of the full normal form
        assert gambit_regret(uh, uj, N, s) <= 1e-9 * scale, (s, delta)
    grid = np.linspace(0, 1, 201)
    weights = stats.binom.pmf(np.arange(N)[None, :], N - 1, grid[:, None])
    vals = weights @ delta
    tiny = 1e-12 * scale
    for i in range(len(grid) - 1):
        if (vals[i] < -tiny and vals[i + 1] > tiny) or (vals[i] > tiny and vals[i + 1] < -tiny):
            assert any(grid[i] - 1e-9 <= s <= grid[i + 1] + 1e-9 for s in ours), (grid[i], ours, delta)
    theirs = run_with_time_limit(lambda: gambit_symmetric(uh, uj, N), seconds)
    if theirs is None:
        return None
    for s in theirs:  # every symmetric equilibrium pygambit finds is among the toolkit's
        assert min(abs(s - o) for o in ours) <= SIGMA_TOL, (s, ours, theirs, delta)
    return ours, theirs


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(game_params(st.just(3)))
def test_symmetric_equilibria_agree_with_pygambit_three_players(p):
    uh, uj, delta = coefficients(p)
    assume(np.all(np.isfinite(delta)))  # NaN coefficients: see test_deterministic_deviations_*
    assert _compare_with_gambit(uh, uj, delta, 3, 10.0) is not None, "pygambit did not answer in 10 s"


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(game_params(st.just(4)))
def test_symmetric_equilibria_agree_with_pygambit_four_players(p):
    uh, uj, delta = coefficients(p)
    assume(np.all(np.isfinite(delta)))
    _compare_with_gambit(uh, uj, delta, 4, 5.0)  # None (gambit too slow) only skips the comparison


@pytest.mark.parametrize("N", [3, 4])
def test_generic_games_match_pygambit_exactly(N):
    # on generic games pygambit's enumpoly finds every equilibrium, so the sets are equal
    for seed in range(6):
        rng = np.random.default_rng(100 * N + seed)
        p = dict(BINARY, N=N, accuracy=float(rng.uniform(0.7, 0.97)), slash=float(rng.uniform(0, 40)),
                 cost_share=float(rng.uniform(0.1, 0.5)), options=int(rng.choice([2, 3, 4])),
                 correlation=float(rng.uniform(0, 0.4)), dev_share=float(rng.uniform(0.2, 0.8)))
        uh, uj, delta = coefficients(p)
        got = _compare_with_gambit(uh, uj, delta, N, 5.0)
        assert got is not None, "pygambit did not answer in 5 s"
        ours, theirs = got
        assert len(ours) == len(theirs) and np.allclose(ours, theirs, atol=SIGMA_TOL), (ours, theirs, delta)


@pytest.mark.parametrize("seed", range(4))
def test_symmetric_equilibria_contain_pygambits_five_players(seed):
    # pygambit's enumpoly does not always find the mixed equilibrium at N = 5 (nor is it always
    # quick): there we only ask that what it finds is among the toolkit's, and that the toolkit's
    # have zero regret in the 5-player normal form.
    rng = np.random.default_rng(seed)
    p = dict(BINARY, N=5, accuracy=float(rng.uniform(0.7, 0.97)), slash=float(rng.uniform(0, 40)),
             cost_share=float(rng.uniform(0.1, 0.5)), options=int(rng.choice([2, 4])))
    uh, uj, delta = coefficients(p)
    _compare_with_gambit(uh, uj, delta, 5, 1.5)


@pytest.mark.parametrize("aj", [0.0, 1.0])
def test_deterministic_deviations_keep_probabilities_in_range(aj):
    # a deviation that is always wrong (a_j = 0) or always right (a_j = 1) is allowed by the
    # schema; its votes all land on one option, so whole committees agree with certainty.
    out = C.committee_outcome(1, {"d": (2, aj)}, 2, 0.51, 0.75, 0.125)
    # 1 honest + 2 identical deviators, K = 2: the deviators alone decide; they agree w.p. 1
    assert out.agree_deviation["d"] == pytest.approx(1.0, abs=EXACT)
    assert 0.0 <= out.agree_deviation["d"] <= 1.0, repr(out.agree_deviation["d"])
    assert 0.0 <= out.consensus <= 1.0, repr(out.consensus)
    assert 0.0 <= out.correct <= 1.0 and 0.0 <= out.wrong <= 1.0


def test_deterministic_deviation_payoffs_are_finite_and_equilibria_complete():
    # N = 7, m = 2, τ = 0.51 (K = 4), a = 0.95, κ = 0.2 and an always-wrong deviation (a_j = 0),
    # binary-claims' economics (r = 0.1, c = 0.04, c_j = 0, W = 100, θ = 0.7, L = 10).
    args = (7, 2, 0.51, 0.1, 0.04, 0.95, 0.2, 0.0, 0.0, 100, 0.7, 10.0)
    ph, pj = C.agreement_curves(7, 2, 0.51, 0.95, 0.2, 0.0)
    assert np.all((ph >= 0) & (ph <= 1)) and np.all((pj >= 0) & (pj <= 1)), (
        f"max p_h − 1 = {ph.max() - 1:.3g}, max p_j − 1 = {pj.max() - 1:.3g}")
    uh, uj, delta = C.payoff_difference_coefficients(*args)
    assert np.all(np.isfinite(delta)), f"Δ(k) = {delta}"
    # independently, with the agreement probabilities clipped to [0, 1]: Δ(0) > 0 > Δ(6), so the
    # Bernstein mean D changes sign in (0, 1) and a mixed symmetric equilibrium exists
    r, c, W, theta, L = 0.1, 0.04, 100, 0.7, 10.0
    ph_c, pj_c = np.clip(ph, 0, 1), np.clip(pj, 0, 1)
    d_c = (ph_c * r - c - L / W * stats.binom.cdf(math.ceil(theta * W) - 1, W, ph_c)) - (
        pj_c * r - L / W * stats.binom.cdf(math.ceil(theta * W) - 1, W, pj_c))
    assert d_c[0] > 0 > d_c[-1]
    eqs = C.symmetric_equilibria(delta)
    assert any(e.kind == "mixed" for e in eqs), f"no mixed equilibrium reported: {eqs}"


@SETTINGS
@given(_committee_cases)
@example((1, 2, 0, 2, 0.51, 0.75, 0.125, 0.0, 0.0))  # agreement 1 + 2⁻⁵² (see above)
@example((0, 3, 0, 3, 0.51, 0.9, 0.0, 1.0, 0.0))
def test_committee_probabilities_stay_in_unit_interval(case):
    h, n1, n2, m, tau, a, kappa, a1, a2 = case
    assume(h + n1 + n2 >= 1)
    devs = {name: (n, acc) for name, n, acc in (("guess", n1, a1), ("weak", n2, a2)) if n}
    out = C.committee_outcome(h, devs, m, tau, a, kappa)
    values = [out.consensus, out.correct, out.wrong, out.none, *out.agree_deviation.values()]
    if h:
        values.append(out.agree_honest)
    assert all(0.0 <= v <= 1.0 for v in values), values


def test_binary_claims_three_player_equilibria_by_hand():
    # binary-claims at N = 3 has Δ(0) > 0 > Δ(1) > Δ(2): all honest and all deviating are
    # strict symmetric equilibria; the mixed one solves (1−σ)²Δ0 + 2σ(1−σ)Δ1 + σ²Δ2 = 0,
    # a quadratic whose root in (0, 1) we solve here directly.
    uh, uj, delta = coefficients(BINARY)
    d0, d1, d2 = delta
    assert d0 > 0 > d1 > d2
    # (Δ0 − 2Δ1 + Δ2)σ² + 2(Δ1 − Δ0)σ + Δ0 = 0
    roots = np.roots([d0 - 2 * d1 + d2, 2 * (d1 - d0), d0])
    sigma = float(next(r.real for r in roots if abs(r.imag) < 1e-12 and 0 < r.real < 1))
    eqs = C.symmetric_equilibria(delta)
    assert [(e.kind, e.stable) for e in eqs] == [("pure", True), ("mixed", False), ("pure", True)]
    assert eqs[1].deviation_probability == pytest.approx(sigma, abs=1e-10)


APPROX_CASES = [
    # large-committee.toml's parameters (m = 2, τ = 0.67, a = 0.93, κ = 0.1, a_j = 0.5)
    (101, 2, 0.67, 0.93, 0.1, 0.5),
    (401, 2, 0.67, 0.93, 0.1, 0.5),
    # other scenarios at the crossover N = EXACT_N + 1
    (401, 4, 0.7, 0.92, 0.15, 0.25),  # four-option-claims' parameters
    (401, 2, 0.8, 0.8, 0.0, 0.5),
    (101, 3, 0.6, 0.85, 0.3, 0.6),
]


@pytest.mark.parametrize(("N", "m", "tau", "a", "kappa", "aj"), APPROX_CASES)
def test_normal_approximation_matches_exact_agreement_curves(N, m, tau, a, kappa, aj):
    ph_e, pj_e = C.agreement_curves(N, m, tau, a, kappa, aj, exact=True)
    ph_a, pj_a = C.agreement_curves(N, m, tau, a, kappa, aj, exact=False)
    if N > C.EXACT_N:  # the default beyond EXACT_N is the approximation
        ph_d, _ = C.agreement_curves(N, m, tau, a, kappa, aj)
        assert ph_d == pytest.approx(ph_a, abs=0)
    err_h, err_j = np.abs(ph_e - ph_a), np.abs(pj_e - pj_a)
    assert err_h.max() <= 1e-3, f"p_h(k): max error {err_h.max():.2e} at k = {err_h.argmax()}"
    assert err_j.max() <= 1e-3, f"p_j(k): max error {err_j.max():.2e} at k = {err_j.argmax()}"


def test_ten_thousand_member_committee():
    # large-committee.toml's economics at N = 10⁴: honesty strictly better when no one deviates
    uh, uj, delta = C.payoff_difference_coefficients(10**4, 2, 0.67, 0.02, 0.01, 0.93, 0.1, 0.0, 0.5,
                                                     200, 0.75, 20.0)
    assert len(delta) == 10**4 and np.all(np.isfinite(delta))
    eqs = C.symmetric_equilibria(delta)
    assert eqs[0].deviation_probability == 0.0 and eqs[0].stable and eqs[0].kind == "pure"
    assert delta[0] > 0
    for e in eqs:  # the reported equilibria satisfy the reduction (Bernstein mean with scipy weights)
        D = D_bernstein(delta, e.deviation_probability)
        if e.kind == "mixed":
            assert abs(D) < 1e-9
    # no sign change of D is missed on an independent fine grid
    grid = np.linspace(0, 1, 201)
    vals = np.array([D_bernstein(delta, s) for s in grid])
    changes = int(np.sum(np.sign(vals[:-1]) * np.sign(vals[1:]) < 0))
    assert changes == sum(e.kind == "mixed" for e in eqs)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_scenario_equilibria_are_complete(name):
    s = mt.load(MODELS / f"{name}.toml")
    sol = mt.solve(s)
    d = s.deviations[0]
    uh, uj, delta = C.payoff_difference_coefficients(
        s.committee.size, s.claim.options, s.committee.threshold, s.committee.reward, s.verifier.cost,
        s.verifier.accuracy, s.verifier.error_correlation, d.cost, d.accuracy, s.slashing.window,
        s.slashing.agreement_threshold, s.slashing.slash)
    eqs = sol.symmetric_equilibria
    if s.committee.size <= 11:
        _check_equilibria_against_brute_force(uh, uj, eqs)
    grid = np.linspace(0, 1, 2001)
    vals = np.array([D_bernstein(delta, x) for x in grid])
    roots = [grid[i] for i in range(len(grid) - 1) if vals[i] * vals[i + 1] < 0]
    mixed = [e.deviation_probability for e in eqs if e.kind == "mixed"]
    assert len(roots) == len(mixed)
    for r, m in zip(roots, mixed):
        assert abs(r - m) <= 1e-3
    assert (vals[0] >= 0) == any(e.deviation_probability == 0 for e in eqs)
    assert (vals[-1] <= 0) == any(e.deviation_probability == 1 for e in eqs)


# --------------------------------------------------------------------------------------
# 5. capture
# --------------------------------------------------------------------------------------


def test_capture_by_hand():
    # N = 3, τ = 0.6 -> K = 2, ρ = 0.2: 3·0.2²·0.8 + 0.2³ = 0.096 + 0.008 = 0.104
    assert float(C.capture_probability(3, 0.6, 0.2)) == pytest.approx(0.104, abs=EXACT)
    # finite network of 10 nodes, 2 adversarial, N = 3: both in the committee, plus one of the
    # other 8: C(2,2)·C(8,1)/C(10,3) = 8/120 = 1/15
    assert C.capture_probability_finite(3, 0.6, 10, 2) == pytest.approx(1 / 15, abs=EXACT)
    # τ = 0.75, ρ = 0.3: N = 3 needs all 3: 0.027; N = 5 needs ⌈3.75⌉ = 4:
    # 5·0.3⁴·0.7 + 0.3⁵ = 0.02835 + 0.00243 = 0.03078. Capture does NOT fall from N = 3 to 5:
    # with the ceiling, K/N jumps (1 → 0.8), so monotonicity holds along N with τN integral
    # (tested below), not for every odd N.
    assert float(C.capture_probability(3, 0.75, 0.3)) == pytest.approx(0.027, abs=EXACT)
    assert float(C.capture_probability(5, 0.75, 0.3)) == pytest.approx(0.03078, abs=EXACT)


@SETTINGS
@given(st.integers(1, 60), st.sampled_from([0.51, 0.6, 2 / 3, 0.67, 0.75, 0.9]), st.floats(0.0, 1.0))
def test_capture_with_replacement_is_a_binomial_sum(N, tau, rho):
    K = quorum_exact(N, tau)
    want = math.fsum(math.comb(N, j) * rho**j * (1 - rho) ** (N - j) for j in range(K, N + 1))
    assert float(C.capture_probability(N, tau, rho)) == pytest.approx(want, rel=1e-9, abs=1e-15)


@SETTINGS
@given(st.integers(2, 40), st.data())
def test_capture_finite_network_is_hypergeometric(nodes, data):
    N = data.draw(st.integers(1, nodes))
    adv = data.draw(st.integers(0, nodes))
    tau = data.draw(st.sampled_from([0.51, 0.6, 0.67, 0.75]))
    K = quorum_exact(N, tau)
    want = Fraction(sum(math.comb(adv, j) * math.comb(nodes - adv, N - j) for j in range(K, N + 1)),
                    math.comb(nodes, N))
    assert C.capture_probability_finite(N, tau, nodes, adv) == pytest.approx(float(want), rel=1e-9, abs=1e-15)
    assert float(want) == pytest.approx(stats.hypergeom.sf(K - 1, nodes, adv, N), rel=1e-9, abs=1e-15)


@SETTINGS
@given(st.integers(2, 10), st.data())
def test_capture_falls_with_committee_size(q, data):
    # τ = s/q with N multiples of q, so K = τN exactly; any ρ < τ
    s = data.draw(st.integers(q // 2 + 1, q))
    tau = s / q
    assume(tau > 0.5)
    rho = data.draw(st.floats(0.001, tau - 0.005))
    Ns = q * np.arange(1, 30)
    cap = C.capture_probability(Ns, tau, rho)
    keep = cap > 1e-250
    assert np.all(np.diff(cap[keep]) < 0), (tau, rho, cap)


@SETTINGS
@given(st.floats(0.001, 0.499))
def test_capture_falls_with_odd_committee_size_under_majority(rho):
    # τ = 0.51 is a simple majority (K = (N + 1)/2) for every odd N < 50: Condorcet's jury
    # theorem in reverse — for ρ < ½ the adversary's chance of a majority falls with N
    Ns = np.arange(1, 50, 2)
    assert all(C.quorum(int(n), 0.51) == (n + 1) // 2 for n in Ns)
    cap = C.capture_probability(Ns, 0.51, rho)
    keep = cap > 1e-250
    assert np.all(np.diff(cap[keep]) < 0)


@pytest.mark.parametrize(("tau", "rho", "target"), [
    (0.6, 0.2, 1e-6), (2 / 3, 0.3, 1e-6), (0.67, 0.3, 1e-9), (0.75, 0.5, 1e-3), (0.51, 0.1, 1e-12),
])
def test_minimum_committee_is_the_smallest_size_meeting_the_target(tau, rho, target):
    n = C.minimum_committee(tau, rho, target)
    assert n is not None

    def cap(N):
        K = quorum_exact(N, tau)
        return math.fsum(math.comb(N, j) * rho**j * (1 - rho) ** (N - j) for j in range(K, N + 1))

    assert cap(n) <= target
    assert all(cap(N) > target for N in range(1, n))


def test_minimum_threshold_by_hand():
    # N = 5, ρ = 0.2, target 0.01: K = 3: 10·0.2³·0.8² + 5·0.2⁴·0.8 + 0.2⁵ = 0.0512 + 0.0064 + 0.00032
    # = 0.05792 > 0.01; K = 4: 5·0.2⁴·0.8 + 0.2⁵ = 0.00672 ≤ 0.01 -> τ = 4/5
    assert C.minimum_threshold(5, 0.2, 0.01) == pytest.approx(0.8)
    # even unanimity (0.2⁵ = 0.00032) misses a 1e-4 target
    assert C.minimum_threshold(5, 0.2, 1e-4) is None


@SETTINGS
@given(st.integers(1, 80), st.floats(0.01, 0.9), st.floats(1e-9, 0.5))
def test_minimum_threshold_is_the_smallest_quorum_meeting_the_target(N, rho, target):
    def cap(K):
        return math.fsum(math.comb(N, j) * rho**j * (1 - rho) ** (N - j) for j in range(K, N + 1))

    tau = C.minimum_threshold(N, rho, target)
    feasible = [K for K in range(N // 2 + 1, N + 1) if cap(K) <= target * (1 - 1e-9)]
    if tau is None:
        assert not feasible
        return
    K = C.quorum(N, tau)
    assert K / N == pytest.approx(tau) and K > N / 2
    assert cap(K) <= target * (1 + 1e-9)
    assert all(cap(k) > target * (1 - 1e-9) for k in range(N // 2 + 1, K))


def test_minimum_committee_none_when_the_adversary_holds_the_threshold():
    assert C.minimum_committee(0.6, 0.6, 1e-6) is None
    assert C.minimum_committee(0.6, 0.7, 1e-6) is None


# --------------------------------------------------------------------------------------
# 6. solve() and the JSON of `mira-theory solve`
# --------------------------------------------------------------------------------------

REQUIRED_KEYS = ("minimum_slash", "false_slash_per_window", "detection_per_window", "minimum_window",
                 "symmetric_equilibria", "capture_probability", "cost_of_corruption", "profit_from_corruption")


@pytest.mark.parametrize("name", SHIPPED)
def test_solve_shipped_scenarios_are_consistent(name):
    s = mt.load(MODELS / f"{name}.toml")
    sol = mt.solve(s)
    N, tau, m = s.committee.size, s.committee.threshold, s.claim.options
    a, kappa = s.verifier.accuracy, s.verifier.error_correlation
    W, theta, r = s.slashing.window, s.slashing.agreement_threshold, s.committee.reward
    assert sol.quorum == quorum_exact(N, tau)
    honest = C.committee_outcome(N, {}, m, tau, a, kappa)
    assert sol.agreement_honest == pytest.approx(honest.agree_honest, abs=EXACT)
    assert sol.false_slash_per_window == pytest.approx(float(C.slash_probability(W, theta, sol.agreement_honest)),
                                                       rel=1e-12, abs=1e-300)
    for d_sc, d in zip(s.deviations, sol.deviations):
        one = C.committee_outcome(N - 1, {d_sc.name: (1, d_sc.accuracy)}, m, tau, a, kappa)
        assert d.agreement == pytest.approx(one.agree_deviation[d_sc.name], abs=EXACT)
        assert d.agreement < sol.agreement_honest
        assert d.detection_per_window == pytest.approx(float(C.slash_probability(W, theta, d.agreement)), rel=1e-12)
        Ls = C.minimum_slash_per_window(W, r, s.verifier.cost, sol.agreement_honest, sol.false_slash_per_window,
                                        d_sc.cost, d.agreement, d.detection_per_window)
        assert d.minimum_slash == pytest.approx(Ls)
        if 0 < d.minimum_slash < math.inf:  # at L = L* the deviation is exactly as good as honesty
            u_h = sol.agreement_honest * r - s.verifier.cost - d.minimum_slash * sol.false_slash_per_window / W
            u_j = d.agreement * r - d_sc.cost - d.minimum_slash * d.detection_per_window / W
            assert u_h == pytest.approx(u_j, abs=1e-12)
    assert sol.minimum_slash == max(d.minimum_slash for d in sol.deviations)
    design = C.design_window(sol.agreement_honest, [d.agreement for d in sol.deviations],
                             s.slashing.max_false_slash, s.slashing.max_miss)
    assert sol.window_design == design and design.feasible
    _check_design(sol.agreement_honest, [d.agreement for d in sol.deviations], s.slashing.max_false_slash,
                  s.slashing.max_miss, design)
    assert sol.capture_probability == pytest.approx(float(C.capture_probability(N, tau,
                                                                             s.network.adversary_stake_share)))
    assert sol.minimum_committee == C.minimum_committee(tau, s.network.adversary_stake_share,
                                                        s.network.max_capture)
    assert sol.cost_of_corruption >= 0 and sol.profit_from_corruption >= 0


def _cli_json(capsys, path) -> dict:
    assert cli.main(["solve", "--json", str(path)]) == 0
    return json.loads(capsys.readouterr().out)


def _check_required_json(out: dict, scenario) -> None:
    for key in REQUIRED_KEYS:
        assert key in out, key
    assert out["game"] == "consensus"
    assert set(out["detection_per_window"]) == {d.name for d in scenario.deviations}
    assert out["symmetric_equilibria"], "at least one symmetric equilibrium"
    for e in out["symmetric_equilibria"]:
        assert set(e) >= {"honest_share", "stable"}
        assert 0 <= e["honest_share"] <= 1 and isinstance(e["stable"], bool)
    for key in ("capture_probability", "cost_of_corruption", "profit_from_corruption", "false_slash_per_window"):
        assert isinstance(out[key], float | int), key


@pytest.mark.parametrize("name", SHIPPED)
def test_cli_json_has_required_keys(name, capsys):
    path = MODELS / f"{name}.toml"
    out = _cli_json(capsys, path)
    s = mt.load(path)
    _check_required_json(out, s)
    sol = mt.solve(s)
    assert out["minimum_window"] == sol.window_design.window and isinstance(out["minimum_window"], int)
    assert out["minimum_slash"] == pytest.approx(sol.minimum_slash)
    assert out["capture_probability"] == pytest.approx(sol.capture_probability)
    assert [e["honest_share"] for e in out["symmetric_equilibria"]] == pytest.approx(
        [e.honest_share for e in sol.symmetric_equilibria])


def test_cli_module_entry_point():
    # `python -m mira_theory.cli solve --json` as a user would run it (mostly import time)
    proc = subprocess.run([sys.executable, "-m", "mira_theory.cli", "solve", "--json",
                           str(MODELS / "binary-claims.toml")], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    _check_required_json(out, mt.load(MODELS / "binary-claims.toml"))


def _variant(tmp_path, changes, name="variant") -> Path:
    s = mt.load(MODELS / "binary-claims.toml").replace(changes)
    path = tmp_path / f"{name}.toml"
    path.write_text(tomli_w.dumps(s.raw()))
    return path


@pytest.mark.parametrize("a", [0.95, 0.67, 0.9])
def test_deviation_as_accurate_as_honest_reports_no_window(tmp_path, capsys, a):
    # κ = 0, m = 2 and a_j = a: a deviating vote has exactly the law of an honest one, so p_j = p_h
    # (mathematically; the two are computed along different paths and may differ in the last bit)
    # and no window can separate them.
    path = _variant(tmp_path, {"verifier.error_correlation": 0.0, "verifier.accuracy": a,
                               "deviation.random-guess.accuracy": a})
    sol = mt.solve(mt.load(path))
    d = sol.deviations[0]
    assert d.agreement == pytest.approx(sol.agreement_honest, abs=1e-14)
    wd = sol.window_design
    assert not wd.feasible and wd.window is None
    assert "no window separates" in wd.reason, (
        f"a = {a}: p_h − p_j = {sol.agreement_honest - d.agreement:.3g} (rounding) gives reason {wd.reason!r}")
    assert "as often as honest" in d.note
    out = _cli_json(capsys, path)
    for key in REQUIRED_KEYS:
        assert key in out
    assert out["minimum_window"] is None
    assert out["window_design"]["feasible"] is False


def test_more_accurate_deviation_reports_no_window(tmp_path):
    path = _variant(tmp_path, {"deviation.random-guess.accuracy": 0.99})
    sol = mt.solve(mt.load(path))
    assert sol.deviations[0].agreement > sol.agreement_honest
    assert not sol.window_design.feasible and "no window separates" in sol.window_design.reason
    assert sol.to_dict()["minimum_window"] is None
