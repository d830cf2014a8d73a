r"""The consensus verification game: multiple-choice claims voted on by committees of verifiers.

Model (symbols as in the scenario file)
---------------------------------------
Content is split into claims, each posed as an m-option question to a committee of N
verifier nodes. The committee reaches consensus on an option iff at least K = ⌈τ·N⌉ of its
members vote for it (τ > 1/2, so at most one option can). Each vote that matches the
consensus earns r; a node's votes are evaluated in windows of W claims and the node is slashed
L when fewer than θ·W of them matched the consensus.

Votes. Option 0 is the right answer. An honest node runs a real model of accuracy a. Honest
errors are correlated across nodes: on each claim a latent accuracy p ~ Beta(a(1−κ)/κ,
(1−a)(1−κ)/κ) is drawn and each honest node is right with probability p, independently
given p. The number of right honest votes is then beta-binomial, the pairwise correlation of
two honest nodes' correctness is exactly κ, and κ = 0 is independence (Binomial(h, a)).
Honest errors go to a single distractor option (the plausible wrong answer models share;
for m = 2 it is the only wrong answer, for m > 2 it is the worst case for wrong consensus).
A deviating node of type j (a random guess, a weaker model) is right with probability a_j
independently and otherwise picks one of the m − 1 wrong options uniformly (a random guess
has a_j = 1/m).

Committee outcomes are computed exactly from these distributions (:func:`committee_outcome`):
with X honest votes right, Y deviator votes right, Z deviator votes on the distractor and O
deviator votes on one other wrong option,
P(correct) = P(X + Y ≥ K), P(wrong) = P(h − X + Z ≥ K) + (m − 2)·P(O ≥ K), and a node's
agreement probability (its vote equals the consensus) conditions on its own vote
(exchangeability gives P(own vote right, X = x) = P(X = x)·x/h).

Windowed slashing is a hypothesis test: a node with agreement probability p matches
Binomial(W, p) times in a window (committees are drawn afresh per claim, so claims are
independent); it is slashed when the count is below θ·W. The false-slash probability of an
honest node and the detection probability of each deviation are exact binomial tails
(scipy's regularised incomplete beta, in log space where they underflow).

Deterrence per claim: an honest node earns p_h·r − c − L·P_false/W, deviation j earns
p_j·r − c_j − L·P_detect_j/W; the minimum slash is
L*_j = W·((c − c_j) − (p_h − p_j)·r) / (P_detect_j − P_false).

The N-player game. Each of the N committee members chooses honest or deviation j; a member's
payoff depends on its own choice and the number k of the other N − 1 who deviate:
u_a(k) = p_a(k)·r − c_a − (L/W)·P(Binomial(W, p_a(k)) < θW). A symmetric mixed profile
(each deviates with probability σ) is an equilibrium iff the payoff difference
D(σ) = Σ_k C(N−1, k) σ^k (1−σ)^(N−1−k) (u_h(k) − u_j(k)) is 0 (interior), ≥ 0 at σ = 0 or
≤ 0 at σ = 1 (the standard reduction of a symmetric anonymous game). An equilibrium is stable
under learning when D′(σ) > 0 (more deviators make honesty relatively better). For N up to
``EXACT_N`` the agreement probabilities are exact; beyond it they are computed given the
latent p by a normal approximation with continuity correction, integrated over p by
Gauss–Jacobi quadrature (tested against the exact form at the crossover).

The N-player game is a fixed committee of N members voting together on every claim of a
window, so the number k of deviating others is the same for the whole window and the slash
term uses P(Binomial(W, p_a(k)) < θW) at that k (the normal form pygambit solves). The
windowed test of item 3 instead describes committees drawn afresh per claim from a large
network; the two differ by Jensen's inequality when deviators are present.

Collusion: an adversary holding stake share ρ holds each seat of a stake-weighted draw with
probability ρ; it captures a committee when it holds ≥ K seats: P(Binomial(N, ρ) ≥ K) with
replacement, or, in a network of ``nodes`` equal-stake nodes of which round(ρ·nodes) are its
own, hypergeometric without replacement (per-node stakes are not modelled).

Cost and profit of corruption over one window: the adversary is assumed to vote its wrong
answer on every claim it sits on (non-selective). It then matches the consensus only where it
captures, each of its nodes is slashed L with the window probability at agreement P(capture),
CoC = adversary nodes·L·P(slash), and PfC = value_at_risk·P(capture)·(claims in the network
per window, W·nodes/N). A selective adversary that deviates only when it holds a quorum
always matches the consensus and is never slashed by windowed agreement: against it the
agreement test gives no cost of corruption at all, and security rests on the capture
probability (reported, with the committee size and threshold that meet ``max_capture``).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import sympy as sp
from scipy import optimize, special, stats

from mira_theory import __version__
from mira_theory.derivation import Derived
from mira_theory.results import (
    FrozenDict,
    Margin,
    Provenance,
    fmt,
    freeze,
    html_table,
    jsonable,
    render_table,
)
from mira_theory.scenario import Problem, Scenario, register_game, spec

EXACT_N = 400  # committee sizes up to this use exact agreement probabilities

# --------------------------------------------------------------------------------------
# Scenario schema
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    options: int = spec("at_least_2", "answer options per claim", "m")
    value_at_risk: float = spec("nonnegative", "what an attacker gains from one corrupted verdict", "V")


@dataclass(frozen=True)
class Committee:
    size: int = spec("count_1e5", "verifiers drawn per claim", "N")
    threshold: float = spec("open_probability", "consensus iff ≥ ceil(τ·N) identical votes", "τ")
    reward: float = spec("nonnegative", "paid per claim to each vote matching the consensus", "r")


@dataclass(frozen=True)
class Verifier:
    cost: float = spec("nonnegative", "cost of honest inference per claim", "c")
    accuracy: float = spec("probability", "probability an honest model answers right", "a")
    error_correlation: float = spec("probability", "correlation of honest models' errors", "κ")


@dataclass(frozen=True)
class ConsensusDeviation:
    name: str = spec("name", "name of the dishonest strategy")
    cost: float = spec("nonnegative", "cost per claim under this deviation", "c_j")
    accuracy: float = spec("probability", "probability its answer is right", "a_j")


@dataclass(frozen=True)
class Slashing:
    window: int = spec("count_1e7", "claims per evaluation window", "W")
    agreement_threshold: float = spec("probability", "slashed if fewer than θ·W votes matched", "θ")
    slash: float = spec("nonnegative", "slash per failed window", "L")
    max_false_slash: float = spec("open_probability", "design target: honest node slashed per window")
    max_miss: float = spec("open_probability", "design target: deviating node escapes per window")


@dataclass(frozen=True)
class Network:
    nodes: int = spec("positive_int", "verifier nodes in the network")
    adversary_stake_share: float = spec("probability", "stake held by one colluding adversary", "ρ")
    security_margin: float = spec("nonnegative", "γ in CoC ≥ (1 + γ)·PfC", "γ")
    max_capture: float = spec("open_probability", "design target: probability a committee is captured",
                              default=1e-6)


@register_game("consensus")
@dataclass(frozen=True)
class ConsensusScenario(Scenario):
    claim: Claim = None  # type: ignore[assignment]
    committee: Committee = None  # type: ignore[assignment]
    verifier: Verifier = None  # type: ignore[assignment]
    deviations: tuple[ConsensusDeviation, ...] = ()
    slashing: Slashing = None  # type: ignore[assignment]
    network: Network = None  # type: ignore[assignment]

    SECTIONS: ClassVar[dict[str, type]] = {"claim": Claim, "committee": Committee, "verifier": Verifier,
                                           "slashing": Slashing, "network": Network}
    ARRAYS: ClassVar[dict[str, tuple[str, type, int]]] = {"deviation": ("deviations", ConsensusDeviation, 1)}

    @classmethod
    def validate_extra(cls, file: str, built: Mapping[str, Any]) -> list[Problem]:
        out = []
        c, net = built.get("committee"), built.get("network")
        if c is not None and c.threshold <= 0.5:
            out.append(Problem(file, "committee.threshold",
                               "a threshold above 1/2 (so at most one option can reach it)", repr(c.threshold)))
        if c is not None and net is not None and c.size > net.nodes:
            out.append(Problem(file, "committee.size", f"at most network.nodes = {net.nodes}", str(c.size)))
        out += [Problem(file, f"deviation[{i}].name", "a name other than 'honest'", "'honest'")
                for i, d in enumerate(built.get("deviations", ())) if d is not None and d.name == "honest"]
        return out

    @property
    def quorum(self) -> int:
        return quorum(self.committee.size, self.committee.threshold)


def quorum(N: int, tau: float) -> int:
    """K = ⌈τ·N⌉, robust to binary rounding (0.6·5 = 3.0000000000000004 must give 3)."""
    return max(1, math.ceil(round(tau * N, 9)))


# --------------------------------------------------------------------------------------
# 1. Guessing
# --------------------------------------------------------------------------------------


def guessing_probability(options: Any, verifications: Any) -> np.ndarray:
    """Probability that random answers pass k independent m-option verifications: (1/m)^k."""
    m = np.asarray(options, float)
    k = np.asarray(verifications, float)
    return np.power(1.0 / m, k)


def guessing_table(options: Sequence[int] = (2, 4, 6, 8, 10),
                   verifications: Sequence[int] = tuple(range(1, 11))) -> pd.DataFrame:
    """The guessing table (rows: options m, columns: verifications k), as in Mira's whitepaper."""
    m = np.asarray(options)[:, None]
    k = np.asarray(verifications)[None, :]
    return pd.DataFrame(guessing_probability(m, k), index=pd.Index(list(options), name="options"),
                        columns=pd.Index(list(verifications), name="verifications"))


# --------------------------------------------------------------------------------------
# 2. Committee outcomes
# --------------------------------------------------------------------------------------


def honest_pmf(h: int, a: float, kappa: float) -> np.ndarray:
    """P(X = x), x = 0..h: right answers among h honest nodes (beta-binomial, correlation κ)."""
    x = np.arange(h + 1)
    a = _snap(a)
    if h == 0:
        return np.ones(1)
    if kappa <= 1e-12 or a in (0.0, 1.0):  # below 1e-12 the Beta is a point mass to double precision
        return stats.binom.pmf(x, h, a)
    if kappa >= 1:  # perfectly correlated: all right or all wrong together
        out = np.zeros(h + 1)
        out[0], out[h] = 1 - a, a
        return out
    s = (1 - kappa) / kappa
    return stats.betabinom.pmf(x, h, a * s, (1 - a) * s)


def _snap(p: float) -> float:
    """Probabilities below 1e-250 are 0: scipy's binomial overflows on subnormal p, and the
    difference is far below double precision of any result."""
    return 0.0 if p < 1e-250 else p


def _sum_pmf(groups: Sequence[tuple[int, float]]) -> np.ndarray:
    """pmf of a sum of independent Binomial(n_i, p_i)."""
    pmf = np.ones(1)
    for n, p in groups:
        p = _snap(p)
        if n > 0:
            pmf = np.convolve(pmf, stats.binom.pmf(np.arange(n + 1), n, p))
    return pmf


def _tail(pmf: np.ndarray, t: np.ndarray) -> np.ndarray:
    """P(V ≥ t) for a pmf on 0..len−1, vectorized over integer t (any range)."""
    sf = np.concatenate([np.cumsum(pmf[::-1])[::-1], [0.0]])  # sf[i] = P(V ≥ i)
    t = np.asarray(t)
    return np.where(t <= 0, 1.0, sf[np.clip(t, 0, len(pmf))])


@dataclass(frozen=True)
class CommitteeOutcome:
    consensus: float
    correct: float
    wrong: float
    none: float
    agree_honest: float  # P(an honest member's vote equals the consensus); nan if none
    agree_deviation: Mapping[str, float]  # per deviation type present

    def to_dict(self) -> dict[str, Any]:
        return jsonable(self.__dict__)


def committee_outcome(honest: int, deviators: Mapping[str, tuple[int, float]], options: int,
                      threshold: float, accuracy: float, correlation: float) -> CommitteeOutcome:
    """Exact outcome probabilities of a committee of ``honest`` honest members and, per
    deviation name, (count, accuracy) deviating members."""
    m = options
    N = honest + sum(c for c, _ in deviators.values())
    K = quorum(N, threshold)

    def probs(count_acc: Sequence[tuple[int, float]]):
        right = _sum_pmf([(c, a) for c, a in count_acc])
        distract = _sum_pmf([(c, (1 - a) / (m - 1)) for c, a in count_acc])
        return right, distract

    devs = list(deviators.values())

    def outcome(h: int, dev_groups: Sequence[tuple[int, float]], need: int):
        """P(right reaches need), P(distractor reaches need), P(one other option reaches need)."""
        X = honest_pmf(h, accuracy, correlation)
        x = np.arange(h + 1)
        right, distract = probs(dev_groups)
        p_right = float(X @ _tail(right, need - x))
        p_dist = float(X @ _tail(distract, need - (h - x)))
        p_other = float(_tail(distract, np.array(need))) if m > 2 else 0.0  # same law as distractor
        return X, x, right, distract, p_right, p_dist, p_other

    X, x, right, distract, p_right, p_dist, p_other = outcome(honest, devs, K)
    wrong = p_dist + (m - 2) * p_other
    agree_h = math.nan
    if honest > 0:
        agree_h = float((X * x / honest) @ _tail(right, K - x)
                        + (X * (honest - x) / honest) @ _tail(distract, K - (honest - x)))
    agree_dev = {}
    for name, (count, a_j) in deviators.items():
        if count == 0:
            continue
        others = [(c - (1 if n == name else 0), a) for n, (c, a) in deviators.items()]
        _, _, _, _, r_, d_, o_ = outcome(honest, others, K - 1)
        w = (1 - a_j) / (m - 1)
        agree_dev[name] = a_j * r_ + w * d_ + (m - 2) * w * o_
    def unit(v: float) -> float:  # sums of rounded terms can leave [0, 1] by an ulp
        return min(1.0, max(0.0, v)) if not math.isnan(v) else v

    p_right, wrong = unit(p_right), unit(wrong)
    return CommitteeOutcome(consensus=unit(p_right + wrong), correct=p_right, wrong=wrong,
                            none=unit(1.0 - p_right - wrong), agree_honest=unit(agree_h),
                            agree_deviation=FrozenDict({k: unit(v) for k, v in agree_dev.items()}))


def ensemble_accuracy(N: int, threshold: float, accuracy: float, correlation: float) -> float:
    """P(the consensus of N honest members is right)."""
    X = honest_pmf(N, accuracy, correlation)
    return float(X[quorum(N, threshold):].sum())


# --------------------------------------------------------------------------------------
# 3. Windowed slashing as a hypothesis test
# --------------------------------------------------------------------------------------


def slash_count(window: int, agreement_threshold: float) -> int:
    """The smallest number of matching votes that avoids a slash: ⌈θ·W⌉."""
    return math.ceil(round(agreement_threshold * window, 9))


def slash_probability(window: Any, agreement_threshold: Any, agreement: Any) -> np.ndarray:
    """P(Binomial(W, p) < θ·W): a node with agreement probability p is slashed in a window."""
    W = np.asarray(window)
    t = np.ceil(np.round(np.asarray(agreement_threshold) * W, 9))
    return stats.binom.cdf(t - 1, W, np.clip(agreement, 0.0, 1.0))


def log_slash_probability(window: Any, agreement_threshold: Any, agreement: Any) -> np.ndarray:
    """log P(Binomial(W, p) < θ·W), finite even where the probability underflows a double:
    there the tail is summed in log space from its largest terms (those nearest θ·W − 1)."""
    W, theta, p = np.broadcast_arrays(np.atleast_1d(window), np.atleast_1d(np.asarray(agreement_threshold, float)),
                                      np.atleast_1d(np.clip(np.asarray(agreement, float), 0.0, 1.0)))
    scalar = all(np.ndim(x) == 0 for x in (window, agreement_threshold, agreement))
    t = np.ceil(np.round(theta * W, 9))
    out = np.array(stats.binom.logcdf(t - 1, W, p), dtype=float)
    for i in zip(*np.nonzero(np.isneginf(out) & (t >= 1) & (p < 1))):
        top = int(t[i]) - 1
        # below the mode the pmf falls geometrically away from t − 1: 20,000 terms are plenty
        j = np.arange(max(0, top - 20_000), top + 1)
        out[i] = float(special.logsumexp(stats.binom.logpmf(j, int(W[i]), float(p[i]))))
    return out[0] if scalar else out


@dataclass(frozen=True)
class WindowDesign:
    feasible: bool
    window: int | None
    agreement_threshold: float | None
    false_slash: float | None
    worst_miss: float | None
    reason: str = ""


def _window_ok(W: int, p_h: float, p_devs: Sequence[float], F: float, M: float) -> tuple[bool, int]:
    """Is there a slash count t with P(B(W,p_h) < t) ≤ F and P(B(W,p_j) ≥ t) ≤ M for all j?
    Returns (ok, smallest such t) — the smallest t slashes honest nodes least."""
    logF, logM = math.log(F), math.log(M)
    # largest t with log P(B(W,p_h) ≤ t−1) ≤ log F  (cdf rises with t)
    lo, hi = 0, W + 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if stats.binom.logcdf(mid - 1, W, p_h) <= logF:
            lo = mid
        else:
            hi = mid - 1
    t_max = lo
    # smallest t with log P(B(W,p_j) ≥ t) ≤ log M for every j (sf falls with t)
    t_min = 0
    for p in p_devs:
        lo, hi = 0, W + 1
        while lo < hi:
            mid = (lo + hi) // 2
            if stats.binom.logsf(mid - 1, W, p) <= logM:
                hi = mid
            else:
                lo = mid + 1
        t_min = max(t_min, lo)
    return t_min <= t_max, t_min


def design_window(p_h: float, p_devs: Sequence[float], max_false: float, max_miss: float,
                  max_window: int = 10**7) -> WindowDesign:
    """The smallest window W (and its θ) meeting both error targets."""
    if not p_devs:
        return WindowDesign(True, 1, 0.0, 0.0, 0.0, "no deviation to detect")
    worst = max(p_devs)
    if worst >= p_h - 1e-12:  # equal up to rounding: the two laws are the same
        return WindowDesign(False, None, None, None, None,
                            f"no window separates them: a deviation agrees with the consensus as often "
                            f"as honest nodes (p_j = {worst:.6g} ≥ p_h = {p_h:.6g})")
    W = 1
    while not _window_ok(W, p_h, p_devs, max_false, max_miss)[0]:
        W *= 2
        if W > max_window:
            return WindowDesign(False, None, None, None, None, f"needs a window above {max_window}")
    lo = W // 2 + 1 if W > 1 else 1
    hi = W
    while lo < hi:  # feasibility is monotone in W up to binomial discreteness; check below
        mid = (lo + hi) // 2
        if _window_ok(mid, p_h, p_devs, max_false, max_miss)[0]:
            hi = mid
        else:
            lo = mid + 1
    # discreteness can make a slightly smaller W feasible too; scan a short stretch below
    for w in range(max(1, lo - 64), lo):
        if _window_ok(w, p_h, p_devs, max_false, max_miss)[0]:
            lo = w
            break
    _, t = _window_ok(lo, p_h, p_devs, max_false, max_miss)
    theta = t / lo
    false = float(stats.binom.cdf(t - 1, lo, p_h))
    miss = max(float(stats.binom.sf(t - 1, lo, p)) for p in p_devs)
    return WindowDesign(True, lo, theta, false, miss)


# --------------------------------------------------------------------------------------
# 5. The N-player verifier game
# --------------------------------------------------------------------------------------


@functools.cache
def _jacobi_nodes(n: int, alpha: float, beta: float) -> tuple[np.ndarray, np.ndarray]:
    """Gauss–Jacobi nodes on (0, 1) and weights normalised to a Beta(α, β) expectation."""
    x, w = special.roots_jacobi(n, beta - 1.0, alpha - 1.0)  # weight (1−x)^(β−1)(1+x)^(α−1)
    return (x + 1) / 2, w / w.sum()


def _latent_nodes(a: float, kappa: float, n: int = 64) -> tuple[np.ndarray, np.ndarray]:
    if kappa <= 1e-12 or a in (0.0, 1.0):
        return np.array([a]), np.array([1.0])
    if kappa >= 1:
        return np.array([0.0, 1.0]), np.array([1 - a, a])
    s = (1 - kappa) / kappa
    return _jacobi_nodes(n, a * s, (1 - a) * s)


def _normal_tail(mean: np.ndarray, var: np.ndarray, t: np.ndarray,
                 third: np.ndarray | float = 0.0) -> np.ndarray:
    """P(V ≥ t) for an integer count V with the given mean, variance and third cumulant:
    continuity-corrected normal law with a one-term Edgeworth (skewness) correction,
    P(V ≥ t) ≈ Φ(−z) + φ(z)·γ/6·(z² − 1), z = (t − ½ − mean)/sd, γ = κ₃/sd³."""
    var = np.asarray(var, float)
    sd = np.sqrt(np.maximum(var, 1e-300))
    z = np.asarray((t - 0.5 - mean) / sd, float)
    out = (z < 0).astype(float)  # |z| ≥ 12: the tail is 0 or 1 to double precision
    band = np.abs(z) < 12
    zb = z[band]
    third = np.broadcast_to(np.asarray(third, float), z.shape)[band]
    vb, sb = np.broadcast_to(var, z.shape)[band], np.broadcast_to(sd, z.shape)[band]
    with np.errstate(divide="ignore", invalid="ignore"):
        gamma = np.where(vb > 1e-12, third / (sb * vb), 0.0)
    out[band] = special.ndtr(-zb) + np.exp(-0.5 * zb * zb) * (gamma / (6 * np.sqrt(2 * np.pi))) * (zb * zb - 1)
    return np.clip(out, 0.0, 1.0)


def _third(n: Any, q: Any) -> Any:
    """Third cumulant of Binomial(n, q)."""
    return n * q * (1 - q) * (1 - 2 * q)


def agreement_curves(N: int, options: int, threshold: float, accuracy: float, correlation: float,
                     dev_accuracy: float, exact: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
    """p_h(k), p_j(k) for k = 0..N−1 other members deviating (one deviation type)."""
    m, K = options, quorum(N, threshold)
    dev_accuracy = _snap(dev_accuracy)
    w = _snap((1 - dev_accuracy) / (m - 1))
    ks = np.arange(N)
    if exact is None:
        exact = N <= EXACT_N
    if exact:
        # the committee_outcome formulas, vectorized over k (tested equal to it)
        def honest_matrix(hs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            x = np.arange(N + 1)[None, :]
            rows = np.array([np.pad(honest_pmf(int(h), accuracy, correlation), (0, N - int(h)))
                             for h in hs])
            return rows, x

        k = ks[:, None]
        # focal honest: h = N − k honest members including it
        h = (N - ks)[:, None]
        X, x = honest_matrix(N - ks)
        valid = x <= h
        right = stats.binom.sf(K - x - 1, k, dev_accuracy)
        dist = stats.binom.sf(K - (h - x) - 1, k, w)
        ph = np.where(valid, X * (x / h * right + (h - x) / h * dist), 0.0).sum(axis=1)
        # focal deviator: h = N − 1 − k honest others, k deviating others
        h = (N - 1 - ks)[:, None]
        X, x = honest_matrix(N - 1 - ks)
        valid = x <= h
        right = stats.binom.sf(K - 1 - x - 1, k, dev_accuracy)
        dist = stats.binom.sf(K - 1 - (h - x) - 1, k, w)
        other = stats.binom.sf(K - 1 - 1, ks, w) if m > 2 else np.zeros(N)
        pj = (dev_accuracy * np.where(valid, X * right, 0.0).sum(axis=1)
              + w * np.where(valid, X * dist, 0.0).sum(axis=1) + (m - 2) * w * other)
        return np.clip(ph, 0.0, 1.0), np.clip(pj, 0.0, 1.0)  # sums of rounded terms can pass 1
    p, wt = _latent_nodes(accuracy, correlation)
    P = p[:, None]
    h = (N - 1 - ks)[None, :]  # honest others (the focal member's type aside)
    k = ks[None, :]
    honest_var = h * P * (1 - P)
    tail_right = _normal_tail(h * P + k * dev_accuracy, honest_var + k * dev_accuracy * (1 - dev_accuracy), K - 1,
                              _third(h, P) + _third(k, dev_accuracy))
    tail_dist = _normal_tail(h * (1 - P) + k * w, honest_var + k * w * (1 - w), K - 1,
                             _third(h, 1 - P) + _third(k, w))
    other = _normal_tail(ks * w, ks * w * (1 - w), K - 1, _third(ks, w)) if m > 2 else np.zeros(N)
    # focal honest: right w.p. p (needs K−1 more right votes), else on the distractor
    ph = wt @ (P * tail_right + (1 - P) * tail_dist)
    # focal deviator: right w.p. a_j, distractor w.p. w, one other wrong option w.p. w each
    pj = wt @ (dev_accuracy * tail_right + w * tail_dist) + (m - 2) * w * other
    return np.clip(ph, 0.0, 1.0), np.clip(pj, 0.0, 1.0)


@dataclass(frozen=True)
class SymmetricEquilibrium:
    deviation_probability: float  # σ
    stable: bool
    kind: str  # "pure" | "mixed"

    @property
    def honest_share(self) -> float:
        return 1.0 - self.deviation_probability

    def to_dict(self) -> dict[str, Any]:
        return {"honest_share": self.honest_share, "deviation_probability": self.deviation_probability,
                "stable": self.stable, "kind": self.kind}


class _BinomialMean:
    """σ ↦ E[Δ(K)], K ~ Binomial(n, σ): the Bernstein polynomial with coefficients Δ.

    Weights are computed in log space over the window mean ± 14 standard deviations only
    (the rest is below 1e-40 of the total), so one evaluation costs O(√n), not O(n).
    """

    def __init__(self, coefficients: np.ndarray):
        self.delta = np.asarray(coefficients, float)
        self.n = len(self.delta) - 1
        k = np.arange(self.n + 1)
        self.k = k
        self.logc = special.gammaln(self.n + 1) - special.gammaln(k + 1) - special.gammaln(self.n - k + 1)

    def many(self, sigmas: np.ndarray) -> np.ndarray:
        """D at many σ: one matrix product while the full weight matrix is small."""
        if self.n > 4096:
            return np.array([self(x) for x in sigmas])
        s = np.clip(np.asarray(sigmas, float)[:, None], 1e-300, 1 - 1e-16)
        w = np.exp(self.logc + self.k * np.log(s) + (self.n - self.k) * np.log1p(-s))
        out = w @ self.delta
        out[np.asarray(sigmas) <= 0] = self.delta[0]
        out[np.asarray(sigmas) >= 1] = self.delta[-1]
        return out

    def __call__(self, sigma: float) -> float:
        n = self.n
        if sigma <= 0:
            return float(self.delta[0])
        if sigma >= 1:
            return float(self.delta[-1])
        sd = math.sqrt(n * sigma * (1 - sigma))
        lo = max(0, int(n * sigma - 14 * sd - 2))
        hi = min(n, int(n * sigma + 14 * sd + 2))
        k = self.k[lo:hi + 1]
        logw = self.logc[lo:hi + 1] + k * math.log(sigma) + (n - k) * math.log1p(-sigma)
        w = np.exp(logw - logw.max())
        return float(w @ self.delta[lo:hi + 1] / w.sum())


def payoff_difference_coefficients(N: int, options: int, threshold: float, reward: float,
                                   cost: float, accuracy: float, correlation: float,
                                   dev_cost: float, dev_accuracy: float, window: int,
                                   agreement_threshold: float, slash: float,
                                   exact: bool | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """u_h(k), u_j(k), k = 0..N−1: a member's per-claim payoff given k deviating others."""
    ph, pj = agreement_curves(N, options, threshold, accuracy, correlation, dev_accuracy, exact)
    uh = ph * reward - cost - slash / window * slash_probability(window, agreement_threshold, ph)
    uj = pj * reward - dev_cost - slash / window * slash_probability(window, agreement_threshold, pj)
    return uh, uj, uh - uj


def symmetric_equilibria(delta: np.ndarray, grid: int = 400, tol: float = 1e-12) -> list[SymmetricEquilibrium]:
    """All symmetric equilibria of a 2-action anonymous game from Δ(k) = u_h(k) − u_j(k).

    σ = 0 is an equilibrium iff D(0) ≥ 0, σ = 1 iff D(1) ≤ 0, interior σ iff D(σ) = 0; interior
    roots are bracketed by sign changes on a grid and refined by Brent's method. A root where D
    touches zero without changing sign between grid points can be missed: the grid is fine
    enough (400 points) for the smooth D of these games, and the tests compare with pygambit.
    """
    D = _BinomialMean(delta)
    scale = max(1.0, float(np.abs(delta).max()))
    zero = tol * scale
    sig = np.linspace(0.0, 1.0, grid + 1)
    vals = D.many(sig)
    out: list[SymmetricEquilibrium] = []
    if vals[0] >= -zero:
        out.append(SymmetricEquilibrium(0.0, bool(vals[0] > zero), "pure"))
    for i in range(grid):
        a, b = vals[i], vals[i + 1]
        if 0 < i and abs(a) <= zero:
            continue  # a grid point that is itself a root was reported with the previous interval
        root = None
        if abs(b) <= zero and i + 1 < grid:
            root = sig[i + 1]
        elif (a < -zero and b > zero) or (a > zero and b < -zero):
            root = optimize.brentq(D, sig[i], sig[i + 1], xtol=1e-13)
        if root is not None and 0 < root < 1:
            h = 1e-6
            slope = D(min(1.0, root + h)) - D(max(0.0, root - h))
            out.append(SymmetricEquilibrium(float(root), bool(slope > 0), "mixed"))
    if vals[-1] <= zero:
        out.append(SymmetricEquilibrium(1.0, bool(vals[-1] < -zero), "pure"))
    return out


# --------------------------------------------------------------------------------------
# 6. Collusion and capture
# --------------------------------------------------------------------------------------


def capture_probability(N: Any, threshold: float, share: Any) -> np.ndarray:
    """P(an adversary with stake share ρ holds ≥ ⌈τN⌉ of N seats), seats drawn with replacement."""
    N = np.asarray(N)
    K = np.ceil(np.round(threshold * N, 9))
    return stats.binom.sf(K - 1, N, share)


def capture_probability_finite(N: int, threshold: float, nodes: int, adversary_nodes: int) -> float:
    """The same without replacement from ``nodes`` equal-stake nodes (hypergeometric, exact)."""
    return float(stats.hypergeom.sf(quorum(N, threshold) - 1, nodes, adversary_nodes, N))


def minimum_committee(threshold: float, share: float, target: float, max_n: int = 100_001) -> int | None:
    """Smallest N with capture probability (with replacement) ≤ target."""
    if share >= threshold:
        return None
    Ns = np.arange(1, max_n + 1)
    ok = np.nonzero(capture_probability(Ns, threshold, share) <= target)[0]
    return int(Ns[ok[0]]) if len(ok) else None


def minimum_threshold(N: int, share: float, target: float) -> float | None:
    """Smallest τ (as K/N, K > N/2) with capture probability (with replacement) ≤ target."""
    for K in range(N // 2 + 1, N + 1):
        if float(stats.binom.sf(K - 1, N, share)) <= target:
            return K / N
    return None


# --------------------------------------------------------------------------------------
# Solving a scenario
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConsensusDeviationResult:
    name: str
    agreement: float  # p_j: its agreement with the consensus among N − 1 honest members
    detection_per_window: float
    minimum_slash: float
    expected_payoff: float  # per claim, at the scenario's values
    profit_over_honest: float
    ic_margin: float
    symmetric_equilibria: tuple[SymmetricEquilibrium, ...]
    note: str

    def to_dict(self) -> dict[str, Any]:
        return jsonable({"name": self.name, "agreement": self.agreement,
                         "detection_per_window": self.detection_per_window,
                         "minimum_slash": self.minimum_slash, "expected_payoff": self.expected_payoff,
                         "profit_over_honest": self.profit_over_honest, "ic_margin": self.ic_margin,
                         "symmetric_equilibria": [e.to_dict() for e in self.symmetric_equilibria],
                         "note": self.note})


@dataclass(frozen=True)
class ConsensusSolution(Provenance):
    scenario: ConsensusScenario
    quorum: int
    outcome_honest: CommitteeOutcome
    outcome_one_deviator: Mapping[str, CommitteeOutcome]
    agreement_honest: float
    false_slash_per_window: float
    deviations: tuple[ConsensusDeviationResult, ...]
    binding_deviation: str
    minimum_slash: float
    honest_payoff: float
    window_design: WindowDesign
    capture_probability: float
    capture_probability_finite: float
    adversary_nodes: int
    minimum_committee: int | None
    minimum_threshold: float | None
    cost_of_corruption: float
    profit_from_corruption: float
    guessing_data: Mapping[int, Mapping[int, float]]  # m -> k -> P (frozen; see .guessing)
    ensemble_data: Mapping[int, Mapping[float, float]]  # N -> κ -> P (frozen; see .ensemble)
    margins: tuple[Margin, ...]
    method: str
    toolkit_version: str = __version__
    game: str = "consensus"

    @property
    def guessing(self) -> pd.DataFrame:
        """The guessing table (a fresh DataFrame: rows options m, columns verifications k)."""
        df = pd.DataFrame(self.guessing_data).T
        df.index.name, df.columns.name = "options", "verifications"
        return df

    @property
    def ensemble(self) -> pd.DataFrame:
        """P(consensus right | all honest) by committee size and error correlation κ."""
        df = pd.DataFrame(self.ensemble_data).T
        df.index.name, df.columns.name = "committee_size", "error_correlation"
        return df

    @property
    def incentive_compatible(self) -> bool:
        return all(m.holds for m in self.margins)

    @property
    def symmetric_equilibria(self) -> tuple[SymmetricEquilibrium, ...]:
        return next(d for d in self.deviations if d.name == self.binding_deviation).symmetric_equilibria

    def to_dict(self) -> dict[str, Any]:
        return jsonable({
            **self.provenance(),
            "quorum": self.quorum,
            "minimum_slash": self.minimum_slash,
            "binding_deviation": self.binding_deviation,
            "agreement_honest": self.agreement_honest,
            "false_slash_per_window": self.false_slash_per_window,
            "detection_per_window": {d.name: d.detection_per_window for d in self.deviations},
            "minimum_window": self.window_design.window,
            "minimum_window_agreement_threshold": self.window_design.agreement_threshold,
            "window_design": self.window_design.__dict__,
            "symmetric_equilibria": [e.to_dict() for e in self.symmetric_equilibria],
            "capture_probability": self.capture_probability,
            "capture_probability_finite_network": self.capture_probability_finite,
            "adversary_nodes": self.adversary_nodes,
            "minimum_committee_size": self.minimum_committee,
            "minimum_threshold": self.minimum_threshold,
            "corruption_ratio": (self.cost_of_corruption / self.profit_from_corruption
                                 if self.profit_from_corruption > 0 else math.inf),
            "cost_of_corruption": self.cost_of_corruption,
            "profit_from_corruption": self.profit_from_corruption,
            "corruption_model": ("non-selective adversary over one window: votes its answer on every "
                                 "claim it sits on; a selective adversary (deviating only with a quorum) "
                                 "is never slashed by windowed agreement"),
            "honest": {"expected_payoff": self.honest_payoff, "agreement": self.agreement_honest},
            "committee_outcome": {"all_honest": self.outcome_honest.to_dict(),
                                  **{f"one_{k}": v.to_dict() for k, v in self.outcome_one_deviator.items()}},
            "deviations": {d.name: d.to_dict() for d in self.deviations},
            "guessing_table": {str(m): {str(k): v for k, v in row.items()}
                               for m, row in self.guessing.iterrows()},
            "ensemble_accuracy": self.ensemble.reset_index().to_dict(orient="records"),
            "margins": [m.to_dict() for m in self.margins],
            "incentive_compatible": self.incentive_compatible,
        })

    def _summary_rows(self) -> list[tuple[str, str]]:
        s = self.scenario
        wd = self.window_design
        return [
            ("scenario", f"{s.name} ({s.path or 'derived'})"),
            ("sha256", s.sha256[:16] + "…"),
            ("committee", f"N = {s.committee.size}, quorum K = {self.quorum} (τ = {s.committee.threshold:g}), "
                          f"m = {s.claim.options} options"),
            ("P(consensus right | all honest)", fmt(self.outcome_honest.correct)),
            ("P(consensus wrong | all honest)", fmt(self.outcome_honest.wrong)),
            ("P(no consensus | all honest)", fmt(self.outcome_honest.none)),
            ("honest agreement p_h", fmt(self.agreement_honest)),
            ("false slash per window", fmt(self.false_slash_per_window)),
            ("binding deviation", self.binding_deviation),
            ("minimum slash L*", fmt(self.minimum_slash)),
            ("slash in force L", fmt(s.slashing.slash)),
            ("minimum window (θ)", f"{wd.window} ({fmt(wd.agreement_threshold)})" if wd.feasible else wd.reason),
            ("capture probability", f"{fmt(self.capture_probability)} (finite network: "
                                    f"{fmt(self.capture_probability_finite)})"),
            ("for max_capture: N at τ / τ at N", f"{fmt(self.minimum_committee)} / "
                                                 f"{fmt(self.minimum_threshold)}"),
            ("cost / profit of corruption", f"{fmt(self.cost_of_corruption)} / {fmt(self.profit_from_corruption)}"),
            ("incentive compatible", fmt(self.incentive_compatible)),
        ]

    def _tables(self) -> list[tuple[str, tuple[str, ...], list[tuple[str, ...]]]]:
        devs = [(d.name, fmt(d.agreement), fmt(d.detection_per_window), fmt(d.minimum_slash),
                 fmt(d.profit_over_honest),
                 "; ".join(f"{'stable' if e.stable else 'unstable'} honest share {fmt(e.honest_share, 4)}"
                           for e in d.symmetric_equilibria), d.note) for d in self.deviations]
        margins = [(m.name, fmt(m.value), "holds" if m.holds else "FAILS", m.equation) for m in self.margins]
        return [("deviations", ("deviation", "p_j", "detect/window", "L*", "profit vs honest",
                                "symmetric equilibria", "note"), devs),
                ("margins (≥ 0 holds)", ("constraint", "margin", "status", "equation"), margins)]

    def __str__(self) -> str:
        parts = [f"consensus game: {self.scenario.name}", render_table(self._summary_rows())]
        for title, header, rows in self._tables():
            parts += ["", title, render_table(rows, header)]
        header, rows = self._ensemble_rows()
        parts += ["", "ensemble accuracy P(consensus right), all honest, by committee size and error correlation κ",
                  render_table(rows, header)]
        parts += ["", f"method: {self.method}; mira-theory {self.toolkit_version}"]
        return "\n".join(parts)

    def __repr__(self) -> str:
        return (f"ConsensusSolution(scenario={self.scenario.name!r}, binding={self.binding_deviation!r}, "
                f"L*={self.minimum_slash:.6g}, minimum_window={self.window_design.window}, "
                f"incentive_compatible={self.incentive_compatible})")

    def _ensemble_rows(self) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
        ens = self.ensemble
        return (("N", *(f"κ={k:g}" for k in ens.columns)),
                [(str(n), *(fmt(v, 4) for v in row)) for n, row in ens.iterrows()])

    def _repr_html_(self) -> str:
        parts = [html_table(self._summary_rows(), caption=f"consensus game: {self.scenario.name}")]
        for title, header, rows in self._tables():
            parts.append(html_table(rows, header, caption=title))
        header, rows = self._ensemble_rows()
        parts.append(html_table(rows, header, caption="ensemble accuracy P(consensus right), all honest"))
        return "".join(parts)


def minimum_slash_per_window(W: int, reward: float, cost: float, p_h: float, false_slash: float,
                             dev_cost: float, p_j: float, detection: float) -> float:
    """L*: the smallest per-window slash making honest inference at least as good as deviating."""
    need = (cost - dev_cost) - (p_h - p_j) * reward  # what the deviation gains per claim, before slashing
    if need <= 0:
        return 0.0
    if detection <= false_slash:
        return math.inf
    return W * need / (detection - false_slash)


def solve(scenario: ConsensusScenario) -> ConsensusSolution:
    s = scenario
    N, tau, m = s.committee.size, s.committee.threshold, s.claim.options
    a, kappa = s.verifier.accuracy, s.verifier.error_correlation
    W, theta, L, r = s.slashing.window, s.slashing.agreement_threshold, s.slashing.slash, s.committee.reward
    K = s.quorum
    honest = committee_outcome(N, {}, m, tau, a, kappa)
    p_h = honest.agree_honest
    false = float(slash_probability(W, theta, p_h))
    u_h = p_h * r - s.verifier.cost - L * false / W
    one = {d.name: committee_outcome(N - 1, {d.name: (1, d.accuracy)}, m, tau, a, kappa) for d in s.deviations}
    devs = []
    for d in s.deviations:
        p_j = one[d.name].agree_deviation[d.name]
        det = float(slash_probability(W, theta, p_j))
        u_j = p_j * r - d.cost - L * det / W
        L_star = minimum_slash_per_window(W, r, s.verifier.cost, p_h, false, d.cost, p_j, det)
        _, _, delta = payoff_difference_coefficients(N, m, tau, r, s.verifier.cost, a, kappa, d.cost,
                                                     d.accuracy, W, theta, L)
        eqs = tuple(symmetric_equilibria(delta))
        note = ""
        if p_j >= p_h - 1e-12:
            note = "agrees with the consensus as often as honest nodes: windowed slashing cannot tell them apart"
        elif math.isinf(L_star):
            note = "detection per window does not exceed the honest false-slash rate: no slash deters"
        devs.append(ConsensusDeviationResult(d.name, p_j, det, L_star, u_j, u_j - u_h, u_h - u_j, eqs, note))
    binding = max(devs, key=lambda d: d.minimum_slash)
    design = design_window(p_h, [d.agreement for d in devs], s.slashing.max_false_slash, s.slashing.max_miss)
    rho = s.network.adversary_stake_share
    cap = float(capture_probability(N, tau, rho))
    adv_nodes = int(round(rho * s.network.nodes))
    cap_finite = capture_probability_finite(N, tau, s.network.nodes, adv_nodes)
    # corruption over one window: the adversary votes its wrong answer on every claim it sits on;
    # it matches the consensus only where it captures, so each of its nodes is slashed with
    # the window probability at agreement = capture probability
    claims_per_window = W * s.network.nodes / N
    pfc = s.claim.value_at_risk * cap * claims_per_window
    adv_slashed = float(slash_probability(W, theta, cap))
    coc = adv_nodes * L * adv_slashed
    gamma = s.network.security_margin
    Ns = sorted({1, 3, 5, 11, 21, 51, 101, 201, 501, N})
    kappas = sorted({0.0, kappa, 0.5})
    ensemble = pd.DataFrame(
        [[ensemble_accuracy(n, tau, a, kk) for kk in kappas] for n in Ns],
        index=pd.Index(Ns, name="committee_size"), columns=pd.Index(kappas, name="error_correlation"))
    margins = [Margin(f"ic[{d.name}]", d.ic_margin, "u_h − u_j per claim", f"honest beats '{d.name}'")
               for d in devs]
    margins.append(Margin("false_slash", s.slashing.max_false_slash - false, "max_false_slash − P_false",
                          "honest nodes are rarely slashed"))
    margins += [Margin(f"miss[{d.name}]", s.slashing.max_miss - (1 - d.detection_per_window),
                       "max_miss − (1 − P_detect)", f"'{d.name}' rarely escapes a window") for d in devs]
    margins.append(Margin("capture", s.network.max_capture - cap, "max_capture − P(capture)",
                          "an adversary rarely captures a committee"))
    margins.append(Margin("collusion", coc - (1 + gamma) * pfc, "CoC − (1 + γ)·PfC",
                          "corruption by a non-selective adversary costs more than it pays "
                          "(a selective one is not slashed by agreement: see capture)"))
    return ConsensusSolution(
        scenario=s, quorum=K, outcome_honest=honest, outcome_one_deviator=FrozenDict(one),
        agreement_honest=p_h, false_slash_per_window=false, deviations=tuple(devs),
        binding_deviation=binding.name, minimum_slash=binding.minimum_slash, honest_payoff=u_h,
        window_design=design, capture_probability=cap, capture_probability_finite=cap_finite,
        adversary_nodes=adv_nodes, minimum_committee=minimum_committee(tau, rho, s.network.max_capture),
        minimum_threshold=minimum_threshold(N, rho, s.network.max_capture),
        cost_of_corruption=coc, profit_from_corruption=pfc,
        guessing_data=freeze({int(mm): {int(k): float(v) for k, v in row.items()}
                              for mm, row in guessing_table((2, 4, 6, 8, 10) if m in (2, 4, 6, 8, 10)
                                                            else sorted({2, 4, m, 10})).iterrows()}),
        ensemble_data=freeze({int(n): {float(k): float(v) for k, v in row.items()}
                              for n, row in ensemble.iterrows()}),
        margins=tuple(margins),
        method=("exact beta-binomial committee outcomes; exact binomial window tails; symmetric "
                f"equilibria of the anonymous N-player game ({'exact' if N <= EXACT_N else 'normal-approximate'} "
                "agreement curves) by sign changes and Brent's method"),
    )


# --------------------------------------------------------------------------------------
# Symbolic forms (for `derive`)
# --------------------------------------------------------------------------------------


@functools.cache
def _syms() -> dict[str, sp.Symbol]:
    names = ["m", "k", "W", "theta", "r", "c", "c_j", "L", "p_h", "p_j", "P_f", "P_d", "N", "rho", "x"]
    return {n: sp.Symbol(n, nonnegative=True) for n in names}


@functools.cache
def derivation() -> tuple[Any, ...]:
    s = _syms()
    m, k, W, theta, r, c, c_j, L = (s[n] for n in ("m", "k", "W", "theta", "r", "c", "c_j", "L"))
    p_h, p_j, P_f, P_d, N, rho, x = (s[n] for n in ("p_h", "p_j", "P_f", "P_d", "N", "rho", "x"))
    j = sp.Symbol("j", integer=True, nonnegative=True)
    t = sp.ceiling(theta * W)
    u_h = p_h * r - c - L * P_f / W
    u_j = p_j * r - c_j - L * P_d / W
    L_star = sp.solve(sp.Eq(u_h, u_j), L)[0]
    return (
        Derived("guessing_probability", "random answers pass k m-option verifications", (1 / m) ** k),
        Derived("false_slash_per_window", "P(Binomial(W, p_h) < θW)",
                sp.Sum(sp.binomial(W, j) * p_h**j * (1 - p_h) ** (W - j), (j, 0, t - 1))),
        Derived("detection_per_window", "P(Binomial(W, p_j) < θW)",
                sp.Sum(sp.binomial(W, j) * p_j**j * (1 - p_j) ** (W - j), (j, 0, t - 1))),
        Derived("payoff_honest", "honest node's payoff per claim, u_h", u_h),
        Derived("payoff_deviation", "deviating node's payoff per claim, u_j", u_j),
        Derived("minimum_slash", "L*: per-window slash making honesty a best response (when P_d > P_f)",
                sp.Max(0, sp.simplify(L_star))),
        Derived("capture_probability", "P(Binomial(N, ρ) ≥ ⌈τN⌉)",
                sp.Sum(sp.binomial(N, j) * rho**j * (1 - rho) ** (N - j), (j, x, N))),
    )


def derived_cases(scenario: ConsensusScenario) -> tuple[list, dict[str, dict[str, float]]]:
    """(substitutions, numeric values) per deviation for ``derive``, from one solve."""
    sol = solve(scenario)
    return substitutions(scenario, sol), derived_values(scenario, sol)


def derived_values(scenario: ConsensusScenario, sol: ConsensusSolution) -> dict[str, dict[str, float]]:
    """Every derived quantity at the scenario, per deviation, from the numeric solution."""
    return {d.name: {"guessing_probability": 1.0 / scenario.claim.options,
                     "false_slash_per_window": sol.false_slash_per_window,
                     "detection_per_window": d.detection_per_window,
                     "payoff_honest": sol.honest_payoff, "payoff_deviation": d.expected_payoff,
                     "minimum_slash": d.minimum_slash, "capture_probability": sol.capture_probability}
            for d in sol.deviations}


def substitutions(scenario: ConsensusScenario, sol: ConsensusSolution) -> list[tuple[str, dict[sp.Symbol, float]]]:
    s = _syms()
    sc = scenario
    base = {s["m"]: sc.claim.options, s["k"]: 1, s["W"]: sc.slashing.window,
            s["theta"]: sc.slashing.agreement_threshold, s["r"]: sc.committee.reward, s["c"]: sc.verifier.cost,
            s["L"]: sc.slashing.slash, s["p_h"]: sol.agreement_honest, s["P_f"]: sol.false_slash_per_window,
            s["N"]: sc.committee.size, s["rho"]: sc.network.adversary_stake_share, s["x"]: sol.quorum}
    out = []
    for d_sc, d in zip(sc.deviations, sol.deviations, strict=True):
        out.append((d.name, {**base, s["c_j"]: d_sc.cost, s["p_j"]: d.agreement,
                             s["P_d"]: d.detection_per_window}))
    return out
