r"""Mechanism design for the consensus game: the cheapest secure committee and slashing rule.

:func:`design_consensus` chooses the committee size N, the consensus threshold τ (as the
quorum K = ⌈τN⌉), the evaluation window W, the agreement threshold θ (as the slash count
t = ⌈θW⌉) and the slash L — each free, or fixed at the scenario's value — so that every
constraint :func:`mira_theory.games.consensus.solve` checks holds, at the least cost to the
network. Symbols are those of :mod:`mira_theory.games.consensus`: p_h = P(an honest member's
vote equals the consensus | all honest), p_j = the same for one member running deviation j
among N − 1 honest ones (both from :func:`consensus.committee_outcome`), P_f = P(Binomial(W,
p_h) < t), P_d,j = P(Binomial(W, p_j) < t), P(capture) = P(Binomial(N, ρ) ≥ K).

Objective: the network's cost per claim
---------------------------------------

    cost = N·r

the committee's reward budget: each of the N seats is paid r when its vote matches the
consensus (the expected payout N·p_h·r is reported beside it, but is not minimised: it falls
when fewer claims reach consensus, which no designer wants to buy). The reward r is a
scenario value, not a design variable, so what consensus.py's payoffs say a verifier must be
paid to take part — u_h = p_h·r − c − L·P_f/W ≥ 0, its inference cost plus its expected false
slashes — is a *constraint* (participation); the honest members' expected false slashes
N·L·P_f/W and their compute N·c are reported in ``costs``. Ties in cost are broken
lexicographically: the least quorum K (the committee that reaches consensus most often), then
the least window W (the fastest detection), then the least slash L, then the least t.

Constraints
-----------
For every deviation j, with m = ``safety_margin`` and Δc_j = c − c_j:

* ic[j] (guessing deterred): u_h − u_j = (p_h − p_j)·r − Δc_j + L·(P_d,j − P_f)/W ≥ m·Δc_j⁺,
  consensus.solve's IC margin. It is linear in L: a lower bound L ≥ W·need_j/(P_d,j − P_f)
  when need_j = Δc_j + m·Δc_j⁺ − (p_h − p_j)·r > 0 (impossible when P_d,j ≤ P_f), and an upper
  bound when need_j ≤ 0 and P_d,j < P_f (the slash would hurt honest members more).
* participation: u_h ≥ 0, i.e. L·P_f/W ≤ p_h·r − c.
* false_slash: P_f ≤ max_false_slash; miss[j]: 1 − P_d,j ≤ max_miss.
* capture: P(Binomial(N, ρ) ≥ K) ≤ max_capture.
* collusion: CoC ≥ (1 + γ)·PfC with CoC = adversary nodes·L·P(Binomial(W, P(capture)) < t) and
  PfC = V·P(capture)·W·nodes/N (consensus.py's non-selective adversary): linear in L.
* bounds: N ≤ N_max (≤ network.nodes), W ≤ W_max, L ≤ L_max (each on a free variable).

Formulation, and why each part is exact
---------------------------------------
* **(N, K): a MILP** (cvxpy, HiGHS) with one binary per candidate pair (every N ≤ N_max and
  every K with N/2 < K ≤ N, or the fixed N and/or K = ⌈τN⌉), Σx = 1, and the objective
  Σ x·(N·(N_max + 1) + K) — integers ordering the pairs exactly as (N·r, K) for r > 0, so the
  lexicographic tie-break is part of the one linear objective. The constraints that depend on
  (N, K) alone are linear rows over exact precomputed numbers: Σ x·P(capture) ≤ max_capture
  (binomial tails), Σ x·(p_h·r − c) ≥ 0 (participation at L = 0, a necessary condition) and
  Σ x·(p_h − p_j) > 0 for each deviation that has to be deterred or detected (otherwise no
  window tells it from honest work). p_h and p_j are computed for every K of an N at once by
  cumulative sums of the beta-binomial pmf (:func:`agreement_table`, tested equal to
  committee_outcome).
* **(W, t, L) given (N, K): exact 1-D searches and closed forms.** For each W the feasible
  slash counts form an interval [t_lo, t_hi] (P_f rises and 1 − P_d,j falls in t), found by
  vectorised bisection on the same binomial cdf the verification uses; every t in it is then
  evaluated: L's lower bounds (IC, collusion) and upper bounds (L_max, participation, capped
  IC) are closed forms linear in L, so the least feasible L is their maximum. W is scanned
  upward from 1 (vectorised in blocks) and the first W with a feasible t is the least window;
  the scan stops early, exactly, once W·max(need_j, collusion rate) exceeds L_max (both lower
  bounds grow at least linearly in W, as P_d,j − P_f ≤ 1 and P(slash) ≤ 1).
* **Coupling: lazy constraint generation.** The inner feasibility is not linear in the
  binaries, so it enters the MILP as cuts x_i = 0 for pairs proven infeasible; the pairs are
  checked in the MILP objective's own order, so the MILP optimum over the remaining pairs is
  the first feasible pair and is re-checked (a disagreement would be reported in ``notes``).

Verification: the design is re-checked by the toolkit, not by the solver —
:func:`consensus.solve` on :meth:`ConsensusDesignResult.scenario_with_design` recomputes every
margin (ic, false_slash, miss, capture, collusion) and the honest payoff (participation).

    >>> import mira_theory as mt
    >>> from mira_theory.consensus_design import design_consensus
    >>> result = design_consensus(mt.load("models/binary-claims.toml"), N_max=15, W_max=500)
    >>> result.status, result.verified
    ('optimal', True)
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
import warnings
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from scipy import stats

from mira_theory import __version__
from mira_theory.games import consensus
from mira_theory.games.consensus import ConsensusScenario
from mira_theory.results import FrozenDict, Provenance, fmt, freeze, html_table, jsonable, render_table
from mira_theory.scenario import Problem, ScenarioError

VARIABLES = ("committee_size", "threshold", "window", "agreement_threshold", "slash")
KEYS = {"committee_size": "committee.size", "threshold": "committee.threshold", "window": "slashing.window",
        "agreement_threshold": "slashing.agreement_threshold", "slash": "slashing.slash"}
SYMBOLS = {"committee_size": "N", "threshold": "τ", "window": "W", "agreement_threshold": "θ", "slash": "L"}
DEFAULT_W_MAX = 10_000
_L_INFLATE = 1e-9  # the designed L sits this far (relatively) above its least value: round-off stays feasible
_W_BLOCK = 256


# --------------------------------------------------------------------------------------
# Exact agreement probabilities for every quorum of one committee size
# --------------------------------------------------------------------------------------


def agreement_table(N: int, options: int, accuracy: float, correlation: float,
                    dev_accuracies: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """p_h(K) and p_j(K) for K = 1..N (rows j): committee_outcome's agreement probabilities
    for every quorum at once, by cumulative sums of the beta-binomial pmf.

    All honest: p_h(K) = Σ_x P(X = x)·(x/N·1{x ≥ K} + (N − x)/N·1{N − x ≥ K}), X the right votes
    of N honest members. One deviator among N − 1 honest (X′): it needs K − 1 others on its own
    option, p_j(K) = a_j·P(X′ ≥ K − 1) + w·P(N − 1 − X′ ≥ K − 1) + (m − 2)·w·1{K ≤ 1},
    w = (1 − a_j)/(m − 1).
    """
    K = np.arange(1, N + 1)
    X = consensus.honest_pmf(N, accuracy, correlation)
    x = np.arange(N + 1)
    right = np.concatenate([np.cumsum((X * x / N)[::-1])[::-1], [0.0]])  # Σ_{x ≥ i}
    wrong_terms = X * (N - x) / N  # indexed by x; N − x ≥ K  ⇔  x ≤ N − K
    wrong = np.concatenate([[0.0], np.cumsum(wrong_terms)])  # wrong[i] = Σ_{x < i}
    p_h = right[K] + wrong[N - K + 1]
    rows = []
    if dev_accuracies:
        Xo = consensus.honest_pmf(N - 1, accuracy, correlation)
        sf = np.concatenate([np.cumsum(Xo[::-1])[::-1], [0.0]])  # sf[i] = P(X′ ≥ i), i = 0..N
        cdf = np.concatenate([[0.0], np.cumsum(Xo)])  # cdf[i] = P(X′ < i)
        need = K - 1
        p_right = sf[np.clip(need, 0, N)]
        p_dist = cdf[np.clip(N - 1 - need + 1, 0, N)]  # P(X′ ≤ N − 1 − need)
        other = (need <= 0).astype(float)
        for a_j in dev_accuracies:
            w = (1 - a_j) / (options - 1)
            rows.append(a_j * p_right + w * p_dist + (options - 2) * w * other)
    return np.clip(p_h, 0.0, 1.0), np.clip(np.array(rows).reshape(len(dev_accuracies), N), 0.0, 1.0)


# --------------------------------------------------------------------------------------
# The inner problem: (W, t, L) for one (N, K)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Opts:
    free: frozenset[str]
    N_max: int
    W_max: int
    L_max: float
    safety_margin: float


@dataclass
class _Inner:
    feasible: bool
    window: int = 0
    count: int = 0  # t
    slash: float = math.nan
    reason: str = ""
    need: float = math.nan  # the quantity the reason is about (least W or L needed)


def _cdf(t: np.ndarray, W: np.ndarray, p: float) -> np.ndarray:
    """P(Binomial(W, p) < t), as consensus.slash_probability computes it."""
    return stats.binom.cdf(t - 1, W, min(max(p, 0.0), 1.0))


def _count_interval(W: np.ndarray, p_h: float, p_devs: Sequence[float], F: float, M: float
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Per W: t_hi = largest t ∈ [0, W] with P_f ≤ F; t_lo = least t with 1 − P_d,j ≤ M for all j
    (W + 1 when none). Vectorised bisection; both conditions are monotone in t."""
    lo, hi = np.zeros_like(W), W.copy()
    while (lo < hi).any():
        mid = (lo + hi + 1) // 2
        ok = _cdf(mid, W, p_h) <= F
        lo, hi = np.where(ok, mid, lo), np.where(ok, hi, mid - 1)
    t_hi = lo
    t_lo = np.zeros_like(W)
    for p in p_devs:
        lo, hi = np.zeros_like(W), W + 1
        while (lo < hi).any():
            mid = (lo + hi) // 2
            ok = (1.0 - _cdf(np.minimum(mid, W), W, p) <= M) & (mid <= W)
            lo, hi = np.where(ok, lo, mid + 1), np.where(ok, mid, hi)
        t_lo = np.maximum(t_lo, lo)
    return t_lo, t_hi


class _Pair:
    """The data of one (N, K) the inner search needs (from the module's committee_outcome)."""

    def __init__(self, sc: ConsensusScenario, N: int, K: int, opts: _Opts,
                 agreement: tuple[float, Sequence[float]] | None = None):
        self.N, self.K = N, K
        tau = K / N
        m, a, kappa = sc.claim.options, sc.verifier.accuracy, sc.verifier.error_correlation
        if agreement is not None:  # agreement_table's values (equal to committee_outcome's to ~1e-15)
            self.p_h, self.p_j = float(agreement[0]), [float(v) for v in agreement[1]]
        else:
            self.p_h = consensus.committee_outcome(N, {}, m, tau, a, kappa).agree_honest
            self.p_j = [consensus.committee_outcome(N - 1, {d.name: (1, d.accuracy)}, m, tau, a, kappa)
                        .agree_deviation[d.name] for d in sc.deviations]
        r, c = sc.committee.reward, sc.verifier.cost
        dc = [c - d.cost for d in sc.deviations]
        self.need = [dc_j + opts.safety_margin * max(dc_j, 0.0) - (self.p_h - pj) * r
                     for dc_j, pj in zip(dc, self.p_j, strict=True)]
        self.budget = self.p_h * r - c  # participation: L·P_f/W ≤ budget
        self.cap = float(consensus.capture_probability(N, tau, sc.network.adversary_stake_share))
        self.adv = int(round(sc.network.adversary_stake_share * sc.network.nodes))
        # collusion: L ≥ coll_rate·W/P(slash | agreement = capture)
        pfc_per_W = sc.claim.value_at_risk * self.cap * sc.network.nodes / N
        self.coll_rate = (1 + sc.network.security_margin) * pfc_per_W / self.adv if pfc_per_W > 0 and self.adv \
            else (math.inf if pfc_per_W > 0 else 0.0)


def _evaluate(pair: _Pair, sc: ConsensusScenario, opts: _Opts, W: np.ndarray, t: np.ndarray,
              L_fixed: float | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """At (W, t) arrays: (least L, largest L, ok) over IC, collusion, participation, L_max."""
    Wf = W.astype(float)
    P_f = _cdf(t, W, pair.p_h)
    lo = np.zeros(len(W))
    hi = np.full(len(W), opts.L_max if "slash" in opts.free else math.inf)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for p_j, need in zip(pair.p_j, pair.need, strict=True):
            gap = _cdf(t, W, p_j) - P_f
            if need > 0:
                lo = np.maximum(lo, np.where(gap > 0, Wf * need / gap, math.inf))
            else:
                hi = np.minimum(hi, np.where(gap < 0, Wf * -need / -gap, math.inf))
        if pair.coll_rate > 0:
            P_s = _cdf(t, W, pair.cap)
            lo = np.maximum(lo, np.where(P_s > 0, pair.coll_rate * Wf / P_s, math.inf))
        hi = np.minimum(hi, np.where(P_f > 0, Wf * pair.budget / P_f, math.inf))
    if pair.budget < 0:
        hi[:] = -math.inf
    if L_fixed is not None:
        ok = (lo <= L_fixed * (1 + 1e-12)) & (L_fixed <= hi * (1 + 1e-12) + 1e-300)
    else:
        ok = (lo <= hi) & np.isfinite(lo)  # an infinite least slash (a bound overflowed) is no design
    return lo, hi, ok


def _inner(pair: _Pair, sc: ConsensusScenario, opts: _Opts) -> _Inner:
    """The least W (then least L, then least t) meeting every window-level constraint, or why not."""
    F, M = sc.slashing.max_false_slash, sc.slashing.max_miss
    free = opts.free
    L_fixed = None if "slash" in free else float(sc.slashing.slash)
    theta = None if "agreement_threshold" in free else float(sc.slashing.agreement_threshold)
    if pair.budget < 0:
        return _Inner(False, reason="participation", need=pair.budget)
    for p_j, need in zip(pair.p_j, pair.need, strict=True):
        if p_j >= pair.p_h - 1e-12 and (need > 0 or F + M < 1):
            return _Inner(False, reason="inseparable", need=p_j - pair.p_h)
    if "window" in free:
        W_hi = opts.W_max
        rate = max([0.0, pair.coll_rate, *(n for n in pair.need if n > 0)])
        L_top = L_fixed if L_fixed is not None else opts.L_max
        if rate > 0 and math.isfinite(L_top):
            W_hi = min(W_hi, int(math.floor(L_top / rate * (1 + 1e-12))))  # beyond it L > L_top
        W_lo = 1
    else:
        W_lo = W_hi = int(sc.slashing.window)
    first_window = None  # the least W meeting the false-slash and miss targets
    best_reason: Counter[str] = Counter()
    start = W_lo
    while start <= W_hi:
        W = np.arange(start, min(W_hi, start + _W_BLOCK - 1) + 1)
        start = int(W[-1]) + 1
        if theta is not None:
            t_fix = np.ceil(np.round(theta * W, 9)).astype(int)
            t_lo, t_hi = _count_interval(W, pair.p_h, pair.p_j, F, M)
            keep = (t_lo <= t_fix) & (t_fix <= t_hi)
            t_lo = t_hi = t_fix
        else:
            t_lo, t_hi = _count_interval(W, pair.p_h, pair.p_j, F, M)
            keep = t_lo <= t_hi
        if not keep.any():
            continue
        W, t_lo, t_hi = W[keep], t_lo[keep], t_hi[keep]
        if first_window is None:
            first_window = int(W[0])
        for i0 in range(0, len(W), 16):  # a few windows at a time: the first feasible W ends the scan
            Ws, lo_s, hi_s = W[i0:i0 + 16], t_lo[i0:i0 + 16], t_hi[i0:i0 + 16]
            sizes = hi_s - lo_s + 1
            Wr = np.repeat(Ws, sizes)
            tr = np.repeat(lo_s - np.cumsum(np.r_[0, sizes[:-1]]), sizes) + np.arange(int(sizes.sum()))
            L_lo, L_hi, ok = _evaluate(pair, sc, opts, Wr, tr, L_fixed)
            if ok.any():
                i = int(np.argmax(ok))
                w = int(Wr[i])
                sel = ok & (Wr == w)
                cand = np.nonzero(sel)[0]
                if L_fixed is None:
                    j = int(cand[np.argmin(L_lo[cand])])  # argmin takes the first (least t) on ties
                    L = float(L_lo[j]) * (1 + _L_INFLATE)
                    L = min(L, float(L_hi[j])) if L_lo[j] > 0 else 0.0
                else:
                    j, L = int(cand[0]), L_fixed
                return _Inner(True, w, int(tr[j]), L)
            # why the first windows fail: the least L needed against what is allowed
            fail_low = np.isinf(L_lo) | ((L_lo > L_hi) & (L_hi >= (opts.L_max if "slash" in free else math.inf)))
            best_reason["slash"] += int(fail_low.sum())
            best_reason["participation or capped IC"] += int((~fail_low).sum())
    if first_window is None:
        return _Inner(False, reason="window", need=math.nan)
    if best_reason and best_reason.most_common(1)[0][0] == "slash":
        return _Inner(False, reason="slash", window=first_window)
    return _Inner(False, reason="participation-window", window=first_window)


# --------------------------------------------------------------------------------------
# The outer problem: a MILP over (N, K) with lazily generated cuts
# --------------------------------------------------------------------------------------


@dataclass
class _Candidates:
    N: np.ndarray
    K: np.ndarray
    capture: np.ndarray
    budget: np.ndarray  # p_h·r − c
    separation: np.ndarray  # min over the deviations that matter of p_h − p_j (+inf if none)
    p_h: np.ndarray
    p_j: np.ndarray  # (pairs, deviations)

    def __len__(self) -> int:
        return len(self.N)


def _candidates(sc: ConsensusScenario, opts: _Opts, Ns: Sequence[int]) -> _Candidates:
    tau_fixed = None if "threshold" in opts.free else float(sc.committee.threshold)
    r, c = sc.committee.reward, sc.verifier.cost
    F, M = sc.slashing.max_false_slash, sc.slashing.max_miss
    devs = sc.deviations
    dc = np.array([sc.verifier.cost - d.cost for d in devs])
    out: dict[str, list[np.ndarray]] = {k: [np.zeros(0, int if k in "NK" else float)]
                                        for k in ("N", "K", "capture", "budget", "separation", "p_h")}
    out["p_j"] = [np.zeros((0, len(sc.deviations)))]
    rho = sc.network.adversary_stake_share
    for N in Ns:
        Ks = np.arange(N // 2 + 1, N + 1) if tau_fixed is None else np.array([consensus.quorum(N, tau_fixed)])
        p_h, p_j = agreement_table(N, sc.claim.options, sc.verifier.accuracy, sc.verifier.error_correlation,
                                   [d.accuracy for d in devs])
        ph, pj = p_h[Ks - 1], p_j[:, Ks - 1]
        sep = np.full(len(Ks), math.inf)
        for j in range(len(devs)):
            need = dc[j] + opts.safety_margin * max(dc[j], 0.0) - (ph - pj[j]) * r
            matters = (need > 0) | (F + M < 1)
            sep = np.where(matters, np.minimum(sep, ph - pj[j]), sep)
        out["N"].append(np.full(len(Ks), N))
        out["K"].append(Ks)
        out["capture"].append(stats.binom.sf(Ks - 1, N, rho))
        out["budget"].append(ph * r - c)
        out["separation"].append(sep)
        out["p_h"].append(ph)
        out["p_j"].append(pj.T)
    return _Candidates(**{k: np.concatenate(v) for k, v in out.items()})


def _join(a: _Candidates, b: _Candidates) -> _Candidates:
    return _Candidates(*(np.concatenate([getattr(a, k), getattr(b, k)])
                         for k in ("N", "K", "capture", "budget", "separation", "p_h", "p_j")))


def _n_blocks(sc: ConsensusScenario, opts: _Opts) -> list[list[int]]:
    """Committee sizes in growing blocks: the objective orders pairs by N first, so the search
    stops generating candidates once a block holds a feasible pair."""
    if "committee_size" not in opts.free:
        return [[int(sc.committee.size)]]
    out, lo, size = [], 1, 32
    while lo <= opts.N_max:
        hi = min(opts.N_max, lo + size - 1)
        out.append(list(range(lo, hi + 1)))
        lo, size = hi + 1, size * 2
    return out


_SEPARATION_EPS = 1e-12  # p_h − p_j must exceed this (committee_outcome's round-off is ~1e-16)


def _rows_ok(cand: _Candidates, sc: ConsensusScenario) -> dict[str, np.ndarray]:
    return {"capture": cand.capture <= sc.network.max_capture,
            "participation": cand.budget >= 0,
            "separation": cand.separation > _SEPARATION_EPS}


@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    """HiGHS prints its banner from C on file descriptor 1, which would corrupt JSON on stdout."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # captured stdout (pytest, notebooks): nothing to guard
        yield
        return
    sys.stdout.flush()
    saved = os.dup(fd)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), fd)
            yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)


def _milp(cand: _Candidates, excluded: np.ndarray, sc: ConsensusScenario, opts: _Opts,
          cutoff: float = math.inf) -> tuple[str, int | None, int]:
    """Solve the selection MILP with cvxpy/HiGHS: (status, index of the chosen pair, binaries).

    With a one-hot x each linear row holds or fails per pair, so pairs that fail a row alone, the
    cut pairs and the pairs scoring above the incumbent ``cutoff`` are fixed to 0 before the
    solve (presolve and objective cutoff, as branch and bound would); HiGHS gets the rest.
    """
    import cvxpy as cp

    score_all = cand.N * (opts.N_max + 1) + cand.K
    rows = _rows_ok(cand, sc)
    keep = np.nonzero(~excluded & np.logical_and.reduce(list(rows.values())) & (score_all <= cutoff))[0]
    if len(keep) == 0:
        return "infeasible (every candidate fixed to 0 by the rows, the cuts or the cutoff)", None, 0
    n = len(keep)
    x = cp.Variable(n, boolean=True)
    sep = np.minimum(cand.separation[keep], 1.0)  # +inf (nothing to separate) as 1
    cons = [cp.sum(x) == 1,
            cand.capture[keep] @ x <= sc.network.max_capture,
            cand.budget[keep] @ x >= 0,
            sep @ x >= 2 * _SEPARATION_EPS]
    prob = cp.Problem(cp.Minimize(score_all[keep].astype(float) @ x), cons)
    with warnings.catch_warnings(), _quiet_stdout():
        warnings.simplefilter("ignore")
        try:
            prob.solve(solver=cp.HIGHS, verbose=False)
        except cp.error.SolverError as e:
            return f"solver_error: {e}", None, n
    if prob.status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE) or x.value is None:
        return str(prob.status), None, n
    return str(prob.status), int(keep[int(np.argmax(x.value))]), n


@dataclass
class _Search:
    status: str  # optimal | infeasible
    pair: _Pair | None = None
    inner: _Inner | None = None
    solver_status: str = ""
    milp_solves: int = 0
    milp_binaries: int = 0
    inner_checks: int = 0
    cuts: int = 0
    candidates: int = 0
    rows: dict[str, int] = field(default_factory=dict)  # pairs passing each row
    rows_all: int = 0  # pairs passing every row
    failures: list[tuple[int, int, _Inner]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _search(sc: ConsensusScenario, opts: _Opts) -> _Search:
    out = _Search("infeasible")
    cand = _candidates(sc, opts, [])
    excluded = np.zeros(0, bool)
    found = None
    for Ns in _n_blocks(sc, opts):
        block = _candidates(sc, opts, Ns)
        start = len(cand)
        cand = _join(cand, block)
        excluded = np.concatenate([excluded, np.zeros(len(block), bool)])
        rows = _rows_ok(block, sc)
        ok_rows = np.logical_and.reduce(list(rows.values()))
        for k, v in rows.items():
            out.rows[k] = out.rows.get(k, 0) + int(v.sum())
        out.rows_all += int(ok_rows.sum())
        order = np.nonzero(ok_rows)[0]
        order = start + order[np.lexsort((block.K[order], block.N[order]))]  # the MILP objective's order
        # lazy cuts in the MILP's own order: check pairs until one is feasible
        for i in order:
            pair = _Pair(sc, int(cand.N[i]), int(cand.K[i]), opts, (cand.p_h[i], cand.p_j[i]))
            res = _inner(pair, sc, opts)
            out.inner_checks += 1
            if res.feasible:
                # the design is re-derived from committee_outcome's own probabilities
                exact = _Pair(sc, pair.N, pair.K, opts)
                res_exact = _inner(exact, sc, opts)
                if res_exact.feasible:
                    pair, res = exact, res_exact
                else:
                    out.notes.append(f"(N, K) = ({pair.N}, {pair.K}) passes with agreement_table's probabilities "
                                     "but not with committee_outcome's; kept the former")
                found = (int(i), pair, res)
                break
            excluded[i] = True
            out.failures.append((int(cand.N[i]), int(cand.K[i]), res))
        if found is not None:
            break
    out.candidates = len(cand)
    out.cuts = int(excluded.sum())
    checked: dict[int, tuple[_Pair, _Inner]] = {found[0]: (found[1], found[2])} if found else {}
    cutoff = float(cand.N[found[0]] * (opts.N_max + 1) + cand.K[found[0]]) if found else math.inf
    for _ in range(5):
        status, choice, n = _milp(cand, excluded, sc, opts, cutoff)
        out.milp_solves += 1
        out.milp_binaries = max(out.milp_binaries, n)
        out.solver_status = status
        if choice is None:
            if found is not None:
                out.notes.append(f"the MILP returned {status} but pair (N, K) = ({found[1].N}, {found[1].K}) "
                                 "is feasible: the scan's choice is kept")
                out.status, out.pair, out.inner = "optimal", found[1], found[2]
            return out
        if choice not in checked:  # the MILP disagrees with the scan order (should not happen): check it
            pair = _Pair(sc, int(cand.N[choice]), int(cand.K[choice]), opts)
            checked[choice] = (pair, _inner(pair, sc, opts))
            out.inner_checks += 1
            out.notes.append(f"the MILP chose (N, K) = ({pair.N}, {pair.K}) before the scan did")
        pair, res = checked[choice]
        if res.feasible:
            out.status, out.pair, out.inner = "optimal", pair, res
            return out
        excluded[choice] = True
        out.cuts += 1
    out.notes.append("the MILP kept choosing infeasible pairs; stopped after 5 rounds")
    return out


# --------------------------------------------------------------------------------------
# The result
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConsensusDesignConstraint:
    """One constraint at the design, recomputed by consensus.solve: ``margin`` ≥ ``required`` holds."""

    name: str
    kind: str  # ic | participation | false_slash | miss | capture | collusion | bound
    margin: float
    required: float
    holds: bool
    binding: bool
    equation: str
    verified_by: str

    def to_dict(self) -> dict[str, Any]:
        return jsonable({f: getattr(self, f) for f in self.__dataclass_fields__})


@dataclass(frozen=True)
class ConsensusDesignResult(Provenance):
    """The cheapest committee and slashing rule of a consensus scenario, with a verified certificate."""

    scenario: ConsensusScenario
    status: str  # optimal | infeasible
    message: str
    suggestions: tuple[str, ...]
    parameters: Mapping[str, float]  # committee_size, threshold, window, agreement_threshold, slash
    free: tuple[str, ...]
    options: Mapping[str, Any]
    objective: float  # N·r
    costs: Mapping[str, float]
    constraints: tuple[ConsensusDesignConstraint, ...]
    binding: tuple[str, ...]
    formulation: str
    solver_status: str
    search: Mapping[str, int]  # candidates, pairs passing the rows, inner checks, cuts, MILP solves
    seconds: float
    notes: tuple[str, ...] = ()
    toolkit_version: str = __version__
    game: str = "consensus-design"

    @property
    def feasible(self) -> bool:
        return self.status == "optimal"

    @property
    def verified(self) -> bool:
        """Every constraint holds at the design, as recomputed by consensus.solve."""
        return self.feasible and bool(self.constraints) and all(c.holds for c in self.constraints)

    @property
    def quorum(self) -> int | None:
        if not self.feasible:
            return None
        return consensus.quorum(int(self.parameters["committee_size"]), self.parameters["threshold"])

    def scenario_with_design(self) -> ConsensusScenario:
        """The scenario with the designed values (for ``solve``/``export``)."""
        if not self.feasible:
            raise ValueError(f"no design to apply: {self.status}: {self.message}")
        return _apply(self.scenario, self.parameters)

    def to_dict(self) -> dict[str, Any]:
        return jsonable({
            **self.provenance(),
            "status": self.status, "message": self.message, "suggestions": list(self.suggestions),
            "verified": self.verified, "formulation": self.formulation, "solver_status": self.solver_status,
            "search": self.search, "seconds": self.seconds, "free": list(self.free), "options": self.options,
            "parameters": self.parameters, "quorum": self.quorum, "objective": self.objective,
            "costs": self.costs, "constraints": [c.to_dict() for c in self.constraints],
            "binding": list(self.binding), "notes": list(self.notes),
        })

    def _summary_rows(self) -> list[tuple[str, str]]:
        rows = [("scenario", f"{self.scenario.name} ({self.scenario.path or 'derived'})"),
                ("sha256", self.scenario.sha256[:16] + "…"),
                ("status", self.status + ("" if not self.feasible else
                                          " (verified by consensus.solve)" if self.verified else " (NOT verified)"))]
        if self.message:
            rows.append(("why", self.message))
        for k in VARIABLES:
            tag = "designed" if k in self.free else "fixed"
            v = self.parameters.get(k, math.nan)
            text = fmt(v)
            if k == "threshold" and self.feasible:
                text += f" (quorum K = {self.quorum})"
            if k == "agreement_threshold" and self.feasible:
                W = int(self.parameters["window"])
                text += f" (slashed below {consensus.slash_count(W, v)} of {W})"
            rows.append((f"{k} {SYMBOLS[k]} ({tag})", text))
        rows.append(("cost per claim N·r", fmt(self.objective)))
        for k, v in self.costs.items():
            rows.append((f"  {k}", fmt(v)))
        return rows

    def _constraint_rows(self) -> list[tuple[str, ...]]:
        return [(c.name, fmt(c.margin), fmt(c.required), "holds" if c.holds else "FAILS",
                 "binding" if c.binding else "") for c in self.constraints]

    def __str__(self) -> str:
        parts = [f"consensus design: {self.scenario.name}", render_table(self._summary_rows())]
        if self.constraints:
            parts += ["", "constraints at the design (margin ≥ required holds)",
                      render_table(self._constraint_rows(), ("constraint", "margin", "required", "status", ""))]
        if self.suggestions:
            parts += ["", "what would have to change"] + [f"- {x}" for x in self.suggestions]
        if self.notes:
            parts += ["", "notes"] + [f"- {x}" for x in self.notes]
        s = self.search
        parts += ["", f"formulation: {self.formulation}", f"search: {s.get('candidates', 0)} (N, K) candidates, "
                  f"{s.get('rows_all', 0)} pass the linear rows, {s.get('inner_checks', 0)} window searches, "
                  f"{s.get('cuts', 0)} cuts, {s.get('milp_solves', 0)} MILP solve(s) ({self.solver_status}); "
                  f"{self.seconds:.2f} s; mira-theory {self.toolkit_version}"]
        return "\n".join(parts)

    def __repr__(self) -> str:
        p = ", ".join(f"{SYMBOLS[k]}={self.parameters.get(k, math.nan):.6g}" for k in VARIABLES)
        return (f"ConsensusDesignResult(scenario={self.scenario.name!r}, status={self.status!r}, {p}, "
                f"cost={self.objective:.6g}, verified={self.verified})")

    def _repr_html_(self) -> str:
        parts = [html_table(self._summary_rows(), caption=f"consensus design: {self.scenario.name}")]
        if self.constraints:
            parts.append(html_table(self._constraint_rows(), ("constraint", "margin", "required", "status", ""),
                                    caption="constraints at the design"))
        if self.suggestions:
            parts.append(html_table([(x,) for x in self.suggestions], caption="what would have to change"))
        parts.append(html_table([(self.formulation,)], caption="formulation"))
        return "".join(parts)


def _apply(sc: ConsensusScenario, params: Mapping[str, float]) -> ConsensusScenario:
    changes: dict[str, Any] = {}
    for k, v in params.items():
        changes[KEYS[k]] = int(v) if k in ("committee_size", "window") else float(v)
    return sc.replace(changes)  # type: ignore[return-value]


EQUATIONS = {
    "ic": "u_h − u_j = (p_h − p_j)·r − (c − c_j) + L·(P_d,j − P_f)/W  ≥  safety_margin·(c − c_j)⁺",
    "participation": "u_h = p_h·r − c − L·P_f/W ≥ 0",
    "false_slash": "max_false_slash − P(Binomial(W, p_h) < θW)",
    "miss": "max_miss − P(Binomial(W, p_j) ≥ θW)",
    "capture": "max_capture − P(Binomial(N, ρ) ≥ ⌈τN⌉)",
    "collusion": "adversary nodes·L·P(Binomial(W, P(capture)) < θW) − (1 + γ)·V·P(capture)·W·nodes/N",
}


def _verify(sc: ConsensusScenario, params: Mapping[str, float], opts: _Opts
            ) -> tuple[list[ConsensusDesignConstraint], dict[str, float]]:
    """Every constraint at the design, recomputed by consensus.solve on the designed scenario."""
    design_sc = _apply(sc, params)
    sol = consensus.solve(design_sc)
    by = "consensus.solve"
    r, c = sc.committee.reward, sc.verifier.cost
    dcs = {d.name: c - d.cost for d in sc.deviations}
    out: list[ConsensusDesignConstraint] = []
    for mg in sol.margins:
        kind = mg.name.split("[")[0]
        required, scale = 0.0, 1.0
        if kind == "ic":
            dc = dcs[mg.name[3:-1]]
            required = opts.safety_margin * max(dc, 0.0)
            scale = max(r, c, abs(dc), 1e-12)
        elif kind == "false_slash":
            scale = sc.slashing.max_false_slash
        elif kind == "miss":
            scale = sc.slashing.max_miss
        elif kind == "capture":
            scale = sc.network.max_capture
        elif kind == "collusion":
            scale = max(sol.cost_of_corruption, 1e-12)
        holds = mg.holds if required == 0 else mg.value >= required - 1e-12 * max(1.0, abs(required))
        binding = holds and mg.value - required <= 1e-6 * scale
        out.append(ConsensusDesignConstraint(mg.name, kind, mg.value, required, bool(holds), bool(binding),
                                             EQUATIONS[kind], by))
    u_h = sol.honest_payoff
    scale = max(sol.agreement_honest * r, c, 1e-12)
    out.append(ConsensusDesignConstraint("participation", "participation", u_h, 0.0,
                                         bool(u_h >= -1e-12 * scale), bool(-1e-12 * scale <= u_h <= 1e-6 * scale),
                                         EQUATIONS["participation"], by + " (honest payoff)"))
    N, W, L = params["committee_size"], params["window"], params["slash"]
    if "committee_size" in opts.free:
        out.append(ConsensusDesignConstraint("committee size ≤ N_max", "bound", opts.N_max - N, 0.0,
                                             N <= opts.N_max, N == opts.N_max, "N_max − N", "design"))
    if "window" in opts.free:
        out.append(ConsensusDesignConstraint("window ≤ W_max", "bound", opts.W_max - W, 0.0, W <= opts.W_max,
                                             W == opts.W_max, "W_max − W", "design"))
    if "slash" in opts.free and math.isfinite(opts.L_max):
        out.append(ConsensusDesignConstraint("slash ≤ L_max", "bound", opts.L_max - L, 0.0,
                                             L <= opts.L_max * (1 + 1e-12),
                                             opts.L_max - L <= 1e-6 * max(opts.L_max, 1e-12), "L_max − L", "design"))
    P_f = sol.false_slash_per_window
    costs = {"reward_budget": N * r, "expected_rewards_paid": N * sol.agreement_honest * r,
             "honest_false_slash": N * L * P_f / W, "honest_compute": N * c}
    return out, costs


# --------------------------------------------------------------------------------------
# Infeasibility in words
# --------------------------------------------------------------------------------------


def _explain(sc: ConsensusScenario, opts: _Opts, found: _Search) -> tuple[str, list[str]]:
    """Which constraints conflict (message) and what would have to change (suggestions)."""
    rho, target = sc.network.adversary_stake_share, sc.network.max_capture
    a, kappa = sc.verifier.accuracy, sc.verifier.error_correlation
    tau_fixed = None if "threshold" in opts.free else float(sc.committee.threshold)
    N_fixed = None if "committee_size" in opts.free else int(sc.committee.size)
    where = (f"N = {N_fixed}" if N_fixed is not None else f"≤ {opts.N_max} nodes") + \
        (f" at τ = {tau_fixed:g}" if tau_fixed is not None else "")
    parts: list[str] = []
    sugg: list[str] = []
    rows = found.rows
    if found.candidates == 0:
        return "no candidate committee", ["raise N_max"]
    if rows.get("capture", 0) == 0:
        # the least committee that could meet max_capture: unanimity (τ free) or the fixed τ
        tau = tau_fixed if tau_fixed is not None else 1.0
        need = consensus.minimum_committee(tau, rho, target) if rho < tau else None
        parts.append(f"capture: with adversary stake share ρ = {rho:g}, no committee of {where} gets "
                     f"P(capture) ≤ max_capture = {target:g}"
                     + (f"; it needs N ≥ {need}" + (" (unanimous)" if tau_fixed is None else "")
                        if need is not None else "; no committee size does at this threshold (ρ ≥ τ)"))
        if need is not None:
            if need <= sc.network.nodes:
                sugg.append(f"allow committees of N ≥ {need} (N_max, network.nodes = {sc.network.nodes})")
            else:
                sugg.append(f"a network of at least {need} nodes, or a smaller adversary share, or a larger "
                            "max_capture")
        if tau_fixed is not None and N_fixed is not None:
            t_need = consensus.minimum_threshold(N_fixed, rho, target)
            if t_need is not None:
                sugg.append(f"raise the threshold τ to at least {t_need:.6g} at N = {N_fixed}")
    if rows.get("participation", 0) == 0:
        parts.append(f"participation: the reward r = {sc.committee.reward:g} does not cover the honest cost "
                     f"c = {sc.verifier.cost:g} for any committee of {where} (p_h·r < c even with no slash)")
        sugg.append("raise the reward r or lower the verifier cost c")
    if rows.get("separation", 0) == 0:
        parts.append(f"separation: a deviation agrees with the consensus as often as honest nodes (accuracy "
                     f"a = {a:g}, correlation κ = {kappa:g}) for every committee of {where}, so no window "
                     "tells them apart")
        sugg.append("more accurate or less correlated verifier models")
    if not parts and found.rows_all == 0:
        names = [k for k in ("capture", "participation", "separation")]
        parts.append(f"{' and '.join(names)} each hold for some committee of {where} but never together: "
                     f"{rows.get('capture', 0)} of {found.candidates} candidate (N, K) meet capture, "
                     f"{rows.get('participation', 0)} participation, {rows.get('separation', 0)} separation "
                     f"(larger quorums resist capture but reach consensus less often, which lowers p_h·r)")
    if not parts:
        reasons = Counter(f.reason for _, _, f in found.failures)
        N0, K0, f0 = found.failures[0]
        text = {"window": f"no window W ≤ {opts.W_max} meets max_false_slash = {sc.slashing.max_false_slash:g} "
                          f"and max_miss = {sc.slashing.max_miss:g}",
                "slash": "the slash deterrence (IC) and collusion need exceeds L_max"
                         if "slash" in opts.free else f"the fixed slash L = {sc.slashing.slash:g} is outside what "
                                                      "IC, collusion and participation allow",
                "participation-window": "honest members' expected false slashes L·P_f/W exceed p_h·r − c "
                                        "(or a capped IC bound) at every window that meets the targets",
                "participation": "participation fails", "inseparable": "a deviation cannot be separated"}
        parts.append(f"every committee that meets capture, participation and separation fails at the window "
                     f"level ({', '.join(f'{text[k]}: {v} committee(s)' for k, v in reasons.items())}); the "
                     f"cheapest, (N, K) = ({N0}, {K0}): {text[f0.reason]}")
        if f0.reason == "window" and "window" in opts.free:
            pair = _Pair(sc, N0, K0, opts)
            wd = consensus.design_window(pair.p_h, pair.p_j, sc.slashing.max_false_slash, sc.slashing.max_miss)
            if wd.feasible:
                parts[-1] += f" (it needs W ≥ {wd.window})"
                sugg.append(f"raise W_max to at least {wd.window}")
    message = "; ".join(parts)
    return message, sugg


def _diagnose(sc: ConsensusScenario, opts: _Opts) -> list[str]:
    """Relax one bound or fixed value at a time; say which change restores feasibility."""
    out: list[str] = []

    def attempt(o: _Opts) -> _Search:
        return _search(sc, o)

    values = _values(sc)
    if "committee_size" in opts.free and opts.N_max < sc.network.nodes:
        res = attempt(replace(opts, N_max=sc.network.nodes))
        if res.status == "optimal":
            out.append(f"N_max = {opts.N_max} is too small: with N ≤ network.nodes = {sc.network.nodes} the "
                       f"cheapest committee has N = {res.pair.N} (K = {res.pair.K})")
    if "window" in opts.free and opts.W_max < 10**6:
        res = attempt(replace(opts, W_max=10**6))
        if res.status == "optimal":
            out.append(f"W_max = {opts.W_max} is too small: the cheapest design needs W = {res.inner.window}")
    if "slash" in opts.free and math.isfinite(opts.L_max):
        res = attempt(replace(opts, L_max=math.inf))
        if res.status == "optimal":
            out.append(f"L_max = {opts.L_max:g} is too small: without it the cheapest design slashes "
                       f"L = {res.inner.slash:.6g}")
    for name in VARIABLES:
        if name in opts.free:
            continue
        res = attempt(replace(opts, free=opts.free | {name}))
        if res.status == "optimal":
            val = _params(res)[name]
            out.append(f"the fixed {name} {SYMBOLS[name]} = {values[name]:g} cannot work with the rest: designed "
                       f"freely it would be {val:.6g}")
    return out


def _values(sc: ConsensusScenario) -> dict[str, float]:
    return {"committee_size": sc.committee.size, "threshold": sc.committee.threshold,
            "window": sc.slashing.window, "agreement_threshold": sc.slashing.agreement_threshold,
            "slash": sc.slashing.slash}


def _params(res: _Search, sc: ConsensusScenario | None = None, opts: _Opts | None = None) -> dict[str, float]:
    assert res.pair is not None and res.inner is not None
    N, K, W, t = res.pair.N, res.pair.K, res.inner.window, res.inner.count
    p = {"committee_size": N, "threshold": K / N, "window": W, "agreement_threshold": t / W,
         "slash": res.inner.slash}
    if sc is not None and opts is not None:  # fixed values are kept exactly as written
        for k, v in _values(sc).items():
            if k not in opts.free:
                p[k] = v
    return p


# --------------------------------------------------------------------------------------
# The entry point
# --------------------------------------------------------------------------------------


def design_consensus(scenario: ConsensusScenario, *, free: Sequence[str] = VARIABLES,
                     N_max: int | None = None, W_max: int = DEFAULT_W_MAX, L_max: float = math.inf,
                     safety_margin: float = 0.0, explain: bool = True) -> ConsensusDesignResult:
    """The cheapest (N, τ, W, θ, L) for a consensus scenario (model and formulation: module docstring).

    ``free``: the variables to design (the others keep the scenario's values). ``N_max``: the
    largest committee (default and cap: network.nodes). ``W_max``, ``L_max``: the largest window
    and slash. ``safety_margin`` m: IC must hold with the deviation's saving inflated by 1 + m.
    ``explain``: when infeasible, also relax one bound or fixed value at a time for suggestions.
    """
    started = time.perf_counter()
    if not isinstance(scenario, ConsensusScenario):
        raise ScenarioError([Problem(scenario.path or scenario.name, "scenario.game",
                                     "'consensus' (design_consensus covers the consensus game)",
                                     repr(scenario.game))])
    free_set = frozenset(free)
    nodes = scenario.network.nodes
    N_max = nodes if N_max is None else N_max
    bad = []
    if not free_set <= set(VARIABLES):
        bad.append(f"free must be a subset of {VARIABLES}, got {sorted(free_set - set(VARIABLES))}")
    if isinstance(N_max, bool) or not isinstance(N_max, int | np.integer) or not 1 <= N_max:
        bad.append(f"N_max must be an integer ≥ 1, got {N_max!r}")
    if isinstance(W_max, bool) or not isinstance(W_max, int | np.integer) or not 1 <= W_max <= 10**7:
        bad.append(f"W_max must be an integer from 1 to 10,000,000, got {W_max!r}")
    if not (isinstance(L_max, int | float) and L_max >= 0):
        bad.append(f"L_max must be ≥ 0, got {L_max!r}")
    if not (isinstance(safety_margin, int | float) and math.isfinite(safety_margin) and safety_margin >= 0):
        bad.append(f"safety_margin must be a finite number ≥ 0, got {safety_margin!r}")
    if bad:
        raise ValueError("; ".join(bad))
    notes: list[str] = []
    if N_max > nodes:
        notes.append(f"N_max = {N_max} capped at network.nodes = {nodes}")
        N_max = nodes
    opts = _Opts(free_set, int(N_max), int(W_max), float(L_max), float(safety_margin))
    formulation = ("(N, K): MILP over one binary per candidate pair, cvxpy + HiGHS, with linear rows over exact "
                   "precomputed tails (capture, participation at L = 0, separation p_h > p_j) and an integer "
                   "lexicographic objective (N·r, then K); (W, θ, L): exact 1-D search over W with every slash "
                   "count t of the binomial-tail interval and L from its closed-form linear bounds (IC, collusion, "
                   "participation, L_max); coupled by lazy cuts x = 0 on pairs whose window search fails")

    found = _search(scenario, opts)
    options = freeze({"N_max": opts.N_max, "W_max": opts.W_max, "L_max": opts.L_max,
                      "safety_margin": opts.safety_margin})
    search = FrozenDict({"candidates": found.candidates, "rows_all": found.rows_all,
                         "inner_checks": found.inner_checks, "cuts": found.cuts, "milp_solves": found.milp_solves,
                         "milp_binaries": found.milp_binaries,
                         **{f"pass_{k}": v for k, v in found.rows.items()}})
    free_t = tuple(k for k in VARIABLES if k in free_set)
    if found.status != "optimal":
        message, sugg = _explain(scenario, opts, found)
        if explain:
            sugg = list(dict.fromkeys(sugg + _diagnose(scenario, opts)))
        params = {k: (math.nan if k in free_set else float(v)) for k, v in _values(scenario).items()}
        return ConsensusDesignResult(
            scenario=scenario, status="infeasible", message=message, suggestions=tuple(sugg),
            parameters=FrozenDict(params), free=free_t, options=options, objective=math.nan,
            costs=FrozenDict(), constraints=(), binding=(), formulation=formulation,
            solver_status=found.solver_status, search=search, seconds=time.perf_counter() - started,
            notes=tuple(notes + found.notes))
    params = _params(found, scenario, opts)
    constraints, costs = _verify(scenario, params, opts)
    return ConsensusDesignResult(
        scenario=scenario, status="optimal", message="", suggestions=(), parameters=FrozenDict(params),
        free=free_t, options=options, objective=params["committee_size"] * scenario.committee.reward,
        costs=FrozenDict(costs), constraints=tuple(constraints),
        binding=tuple(c.name for c in constraints if c.binding), formulation=formulation,
        solver_status=found.solver_status, search=search, seconds=time.perf_counter() - started,
        notes=tuple(notes + found.notes))
