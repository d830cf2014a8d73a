r"""Statistical comparison of a prediction with an observation: the primitives of a report.

Every function returns a :class:`Comparison`: the quantity, the predicted and observed
values, a confidence interval for the observed quantity at ``level``, the test used, its
p-value, whether the prediction passed, and the sample size n. A prediction *passes* when the
test does not reject it: p > α = 1 − level (default level 0.99, α = 0.01); the interval is a
description of the observation, not the pass criterion.

Tests
-----
- :func:`binomial` — a rate (detection per task, false-slash rate): x successes in n trials
  against a predicted probability p₀. Exact two-sided p-value of ``scipy.stats.binomtest``:
  the total probability of the outcomes no more likely than x under Binomial(n, p₀),
  p = Σ_{k: P(k) ≤ P(x)} P(k). Interval: Clopper–Pearson (1934), the exact interval
  [B(α/2; x, n − x + 1), B(1 − α/2; x + 1, n − x)] with B(·; a, b) the Beta quantile. The
  "minimum likelihood" p-value is not exactly dual to the equal-tailed Clopper–Pearson
  interval: near the boundary a prediction may pass while lying just outside the interval
  (or the reverse); the p-value decides.
- :func:`zero_event` — a prediction of exactly 0 (an honest provider is never slashed when
  α = 0): any event refutes it, so it passes iff the observed count is 0 (p-value 1 if x = 0,
  else 0). Interval: [0, 1 − (1 − level)^{1/n}], the exact one-sided Clopper–Pearson upper
  bound for x = 0 (≈ −ln(1 − level)/n; the "rule of three" 3/n at level 0.95), and the
  ordinary two-sided Clopper–Pearson interval when x > 0.
- :func:`chi_square` — categorical outcomes (consensus correct / wrong / absent) against
  predicted probabilities π: X² = Σ (O_i − nπ_i)²/(nπ_i). Cells with π_i = 0 are dropped
  when empty and refute the prediction (p = 0) when not. When every expected count nπ_i
  is ≥ 5 (Cochran's rule) p = P(χ²_{k−1} ≥ X²). Otherwise the p-value is exact under the
  null multinomial, p = P_π(X²(N) ≥ X²(O)), by enumerating every outcome when there are at
  most ``max_enumerated`` of them, else by Monte Carlo with ``simulations`` draws and the
  (1 + #{X²_sim ≥ X²})/(1 + B) estimate (Davison & Hinkley 1997, eq. 4.11). ``test`` says
  which was used. Interval: per-category Clopper–Pearson intervals of the observed shares.
- :func:`mean_payoff` — a mean (payoff per task) from samples or from (Σx, Σx², n):
  Student t interval x̄ ± t_{n−1, 1−α/2}·s/√n and the two-sided one-sample t test
  T = (x̄ − μ₀)/(s/√n) (CLT: valid for large n whatever the payoff distribution).
- :func:`monte_carlo` — an observed statistic (a time average of one run, not a count)
  against R simulated runs of the process that is predicted to have produced it: the
  two-sided Monte Carlo p-value p = min(1, 2·min(1 + #{s_r ≤ x}, 1 + #{s_r ≥ x})/(R + 1)),
  exact under the prediction because the observed run and the simulated ones are then
  exchangeable (Davison & Hinkley 1997, eq. 4.11, both tails; ties count against the
  prediction). Interval: the central ``level`` range of the simulated values, where the
  observation is predicted to fall. The smallest attainable p is 2/(R + 1): with m comparisons
  corrected by Holm, R must exceed 2m/α for the test to be able to fail (choose R ≥ 4m/α).
- :func:`monte_carlo_joint` — several observed statistics at once (a run's whole trajectory)
  against R simulated runs: pool the observed vector with the simulated ones, replace each
  coordinate by the normal score Φ⁻¹((mid-rank − ½)/(R + 1)) of its rank in the pool (robust to
  skewed, bounded statistics), and take S = Σ z² per member; p = (1 + #{S_r ≥ S_obs})/(R + 1),
  exact under the prediction by exchangeability. One test for the whole trajectory: more power
  than the per-coordinate tests against a misfit spread over many coordinates.
- :func:`adjust` — multiple comparisons over a report: Holm (1979) step-down by default,
  p̃_(i) = max_{j ≤ i} min(1, (m − j + 1)·p_(j)) over the ascending p-values; or Bonferroni
  p̃ = min(1, m·p). A comparison passes iff p̃ > α; this controls the family-wise error rate
  at α (the chance that any correct prediction in the report is marked failed).

    >>> from mira_theory import stats
    >>> c = stats.binomial("detection per task", 0.015, 160, 10_000)
    >>> c.passed, round(c.p_value, 3), tuple(round(v, 4) for v in c.interval)
    (True, 0.41, (0.0129, 0.0195))
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from mira_theory.results import fmt, jsonable

DEFAULT_LEVEL = 0.99


@dataclass(frozen=True)
class Comparison:
    """A prediction next to an observation, with the test that compared them."""

    quantity: str
    predicted: Any  # a number, or a mapping category -> probability
    observed: Any  # a number, or a mapping category -> observed share
    interval: Any  # (low, high) for the observed quantity, or a mapping category -> (low, high)
    test: str
    level: float
    p_value: float
    passed: bool
    n: int
    p_adjusted: float | None = None  # after a multiple-comparison correction
    correction: str = ""  # "holm" | "bonferroni" | "" (none)
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {f.name: jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}


def _alpha(level: float) -> float:
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    return 1.0 - level


def _count(x: int, n: int) -> tuple[int, int]:
    x, n = int(x), int(n)
    if n <= 0 or not 0 <= x <= n:
        raise ValueError(f"need 0 ≤ successes ≤ trials and trials > 0, got {x} of {n}")
    return x, n


def clopper_pearson(successes: int, trials: int, level: float = DEFAULT_LEVEL) -> tuple[float, float]:
    """The exact (Clopper–Pearson) two-sided interval of a binomial proportion at ``level``."""
    x, n = _count(successes, trials)
    a = _alpha(level)
    lo = 0.0 if x == 0 else float(stats.beta.ppf(a / 2.0, x, n - x + 1))
    hi = 1.0 if x == n else float(stats.beta.ppf(1.0 - a / 2.0, x + 1, n - x))
    return lo, hi


def binomial(quantity: str, predicted: float, successes: int, trials: int,
             level: float = DEFAULT_LEVEL) -> Comparison:
    """Exact binomial test of a predicted rate (scipy ``binomtest``, two-sided) with the
    Clopper–Pearson interval. A predicted rate of exactly 0 or 1 is tested exactly too (any
    contrary event gives p = 0); :func:`zero_event` is the same test, named as such."""
    x, n = _count(successes, trials)
    if not 0.0 <= predicted <= 1.0:
        raise ValueError(f"{quantity}: predicted rate must be in [0, 1], got {predicted}")
    if predicted == 0.0 or predicted == 1.0:
        return zero_event(quantity, x if predicted == 0.0 else n - x, n, level,
                          complement=predicted == 1.0)
    p = float(stats.binomtest(x, n, predicted).pvalue)
    return Comparison(quantity, float(predicted), x / n, clopper_pearson(x, n, level),
                      "exact binomial (two-sided), Clopper–Pearson interval", level, p,
                      p > _alpha(level), n)


def binomial_side(quantity: str, successes: int, trials: int, side: str, predicted: float,
                  level: float = DEFAULT_LEVEL, note: str = "") -> Comparison:
    """Exact one-sided binomial test of the composite null "the share is on ``side`` of 1/2"
    (``side`` "honest": a majority of successes is predicted, the test rejects when too few;
    "deviating": the opposite). p = P(X ≤ x | 1/2) or P(X ≥ x | 1/2)."""
    x, n = _count(successes, trials)
    if side not in ("honest", "deviating"):
        raise ValueError(f"{quantity}: side must be 'honest' or 'deviating', got {side!r}")
    p = float(stats.binom.cdf(x, n, 0.5)) if side == "honest" else float(stats.binom.sf(x - 1, n, 0.5))
    return Comparison(quantity, float(predicted), x / n, clopper_pearson(x, n, level),
                      f"exact one-sided binomial test of an {side} majority "
                      f"(H0: share {'≥' if side == 'honest' else '≤'} 1/2)", level, p, p > _alpha(level), n,
                      note=note)


def predictive(quantity: str, predicted_mean: float, predicted_sd: float, successes: int, trials: int,
               level: float = DEFAULT_LEVEL, note: str = "") -> Comparison:
    """Normal predictive test of an observed share against a predictive distribution (mean, sd)
    (e.g. simulated learners: the prediction's own spread, not only the sampling noise):
    z = (x/n − mean)/sd, two-sided p = 2·(1 − Φ(|z|))."""
    x, n = _count(successes, trials)
    share, m, s = x / n, float(predicted_mean), float(predicted_sd)
    z = (share - m) / s if s > 0 else (0.0 if share == m else math.inf)
    p = float(2.0 * stats.norm.sf(abs(z)))
    return Comparison(quantity, m, share, clopper_pearson(x, n, level),
                      f"normal predictive test, z = {z:.3g}, predictive sd {s:.3g}", level, p,
                      p > _alpha(level), n, note=note)


def monte_carlo(quantity: str, observed: float, simulated: Any, level: float = DEFAULT_LEVEL,
                note: str = "", n: int | None = None) -> Comparison:
    """Two-sided Monte Carlo test of an observed value against simulated draws of it (see the
    module docstring); ``predicted`` is the simulated mean, ``interval`` the simulated central
    ``level`` range, ``n`` the observation's sample size if given (else the simulated runs)."""
    sims = np.asarray(simulated, float).ravel()
    sims = sims[np.isfinite(sims)]
    if sims.size < 2:
        raise ValueError(f"{quantity}: need at least 2 simulated values, got {sims.size}")
    x = float(observed)
    if not math.isfinite(x):
        raise ValueError(f"{quantity}: observed value must be finite, got {observed!r}")
    R = sims.size
    below, above = int((sims <= x).sum()), int((sims >= x).sum())
    p = min(1.0, 2.0 * (1 + min(below, above)) / (R + 1))
    a = _alpha(level)
    lo, hi = (float(v) for v in np.quantile(sims, [a / 2.0, 1.0 - a / 2.0]))
    return Comparison(quantity, float(sims.mean()), x, (lo, hi),
                      f"Monte Carlo test (two-sided rank p-value among {R} simulated runs; interval: their "
                      f"central {level:g} range)", level, p, p > a, R if n is None else int(n), note=note)


def monte_carlo_joint(quantity: str, observed: Any, simulated: Any, level: float = DEFAULT_LEVEL,
                      note: str = "", n: int | None = None) -> Comparison:
    """One-sided Monte Carlo omnibus test of an observed vector against simulated vectors
    (``simulated``: R × d), by rank-normal scores (see the module docstring). ``predicted`` is the
    simulated mean of S, ``observed`` the observed S, ``interval`` (0, the simulated ``level``
    quantile of S)."""
    x = np.asarray(observed, float).ravel()
    sims = np.asarray(simulated, float)
    if sims.ndim != 2 or sims.shape[1] != x.size or sims.shape[0] < 2:
        raise ValueError(f"{quantity}: simulated must be R × {x.size} with R ≥ 2, got {sims.shape}")
    if not np.all(np.isfinite(x)) or not np.all(np.isfinite(sims)):
        raise ValueError(f"{quantity}: observed and simulated values must be finite")
    pool = np.vstack([x, sims])
    R = sims.shape[0]
    ranks = stats.rankdata(pool, axis=0)  # mid-ranks
    z = stats.norm.ppf((ranks - 0.5) / (R + 1))
    S = (z ** 2).sum(axis=1)
    p = float((1 + (S[1:] >= S[0]).sum()) / (R + 1))
    a = _alpha(level)
    return Comparison(quantity, float(S[1:].mean()), float(S[0]), (0.0, float(np.quantile(S[1:], level))),
                      f"Monte Carlo omnibus test (Σ z² of rank-normal scores of {x.size} statistics among "
                      f"{R} simulated runs; one-sided)", level, p, p > a, R if n is None else int(n), note=note)


def zero_event(quantity: str, events: int, trials: int, level: float = DEFAULT_LEVEL,
               complement: bool = False) -> Comparison:
    """A prediction of probability exactly 0: passes iff no event was observed.

    With ``complement`` the prediction is a probability of exactly 1 and ``events`` counts the
    trials that were *not* successes (observed and interval are then of the success rate).
    """
    x, n = _count(events, trials)
    if x == 0:
        interval = (0.0, 1.0 - (1.0 - level) ** (1.0 / n))
    else:
        interval = clopper_pearson(x, n, level)
    p = 1.0 if x == 0 else 0.0
    observed = x / n
    predicted = 0.0
    if complement:
        interval = (1.0 - interval[1], 1.0 - interval[0])
        observed, predicted = 1.0 - observed, 1.0
    return Comparison(quantity, predicted, observed, interval,
                      "zero-event rule (any event refutes a prediction of 0)",
                      level, p, x == 0, n)


def chi_square_statistic(observed: Any, expected: Any) -> np.ndarray:
    """X² = Σ (O − E)²/E along the last axis."""
    obs, exp = np.asarray(observed, float), np.asarray(expected, float)
    return ((obs - exp) ** 2 / exp).sum(axis=-1)


def _compositions(n: int, k: int):
    """Every vector of k nonnegative integers summing to n (stars and bars), as an array."""
    rows = []
    for bars in itertools.combinations(range(n + k - 1), k - 1):
        prev, row = -1, []
        for b in bars:
            row.append(b - prev - 1)
            prev = b
        row.append(n + k - 2 - prev)
        rows.append(row)
    return np.array(rows, dtype=np.int64)


def _exact_multinomial_p(counts: np.ndarray, probs: np.ndarray, stat: float) -> float:
    n, k = int(counts.sum()), len(counts)
    if k == 1:
        return 1.0
    if k == 2:  # a binomial: vectorized over the first count
        a = np.arange(n + 1)
        outcomes = np.stack([a, n - a], axis=1)
    elif k == 3:  # vectorized: every (a, b, n − a − b)
        a, b = np.triu_indices(n + 1)
        outcomes = np.stack([a, b - a, n - b], axis=1)
    else:
        outcomes = _compositions(n, k)
    logp = stats.multinomial.logpmf(outcomes, n, probs)
    x2 = chi_square_statistic(outcomes, n * probs)
    keep = x2 >= stat * (1.0 - 1e-12) - 1e-12  # ties count as at least as extreme
    return float(min(1.0, np.exp(logp[keep]).sum()))


def chi_square(quantity: str, predicted: Mapping[str, float], observed: Mapping[str, int],
               level: float = DEFAULT_LEVEL, min_expected: float = 5.0,
               max_enumerated: int = 2_000_000, simulations: int = 100_000,
               seed: int = 0) -> Comparison:
    """Chi-square goodness of fit of observed category counts to predicted probabilities.

    See the module docstring for the small-expected-count handling (exact multinomial
    enumeration, or a seeded Monte Carlo p-value, instead of the χ² approximation).
    """
    cats = list(predicted)
    if set(observed) - set(cats):
        raise ValueError(f"{quantity}: observed categories {sorted(set(observed) - set(cats))} have no prediction")
    pi = np.array([float(predicted[c]) for c in cats])
    if np.any(pi < 0) or not math.isclose(pi.sum(), 1.0, rel_tol=1e-9, abs_tol=1e-9):
        raise ValueError(f"{quantity}: predicted probabilities must be ≥ 0 and sum to 1, got {pi.sum():.12g}")
    pi = pi / pi.sum()
    counts = np.array([int(observed.get(c, 0)) for c in cats])
    n = int(counts.sum())
    if n <= 0 or np.any(counts < 0):
        raise ValueError(f"{quantity}: need nonnegative counts with a positive total")
    intervals = {c: clopper_pearson(int(o), n, level) for c, o in zip(cats, counts)}
    shares = {c: float(o) / n for c, o in zip(cats, counts)}
    base = dict(quantity=quantity, predicted={c: float(p) for c, p in zip(cats, pi)}, observed=shares,
                interval=intervals, level=level, n=n)
    impossible = (pi == 0) & (counts > 0)
    if impossible.any():
        bad = [c for c, i in zip(cats, impossible) if i]
        return Comparison(**base, test="chi-square: events in categories predicted impossible "
                          f"({', '.join(bad)})", p_value=0.0, passed=False)
    live = pi > 0
    pl, Ol = pi[live], counts[live]
    E = n * pl
    stat = float(chi_square_statistic(Ol, E))
    k = int(live.sum())
    if k <= 1:
        return Comparison(**base, test="chi-square: a single possible category (trivially consistent)",
                          p_value=1.0, passed=True)
    if E.min() >= min_expected:
        p = float(stats.chi2.sf(stat, k - 1))
        test = f"chi-square goodness of fit, X² = {stat:.4g}, {k - 1} df (all expected counts ≥ {min_expected:g})"
    else:
        outcomes = math.comb(n + k - 1, k - 1)
        if outcomes <= max_enumerated:
            p = _exact_multinomial_p(Ol, pl, stat)
            test = (f"exact multinomial test of X² = {stat:.4g} (expected count {E.min():.3g} < "
                    f"{min_expected:g}; all {outcomes} outcomes enumerated)")
        else:
            rng = np.random.default_rng(seed)
            sims = rng.multinomial(n, pl, size=simulations)
            ge = int((chi_square_statistic(sims, E) >= stat * (1.0 - 1e-12) - 1e-12).sum())
            p = (1.0 + ge) / (1.0 + simulations)
            test = (f"Monte Carlo multinomial test of X² = {stat:.4g} (expected count {E.min():.3g} < "
                    f"{min_expected:g}; {simulations} simulations, seed {seed})")
    return Comparison(**base, test=test, p_value=p, passed=p > _alpha(level))


def mean_payoff(quantity: str, predicted: float, samples: Any = None, *, total: float | None = None,
                total_squares: float | None = None, n: int | None = None,
                level: float = DEFAULT_LEVEL) -> Comparison:
    """Student t interval and two-sided one-sample t test of a mean (e.g. payoff per task).

    Give either ``samples`` or the sufficient statistics ``total`` = Σx, ``total_squares`` =
    Σx² and ``n``. With zero sample variance the prediction passes iff it equals the mean
    (to 1e-12 relative).
    """
    if samples is not None:
        x = np.asarray(samples, float).ravel()
        n = int(x.size)
        mean = float(x.mean()) if n else math.nan
        var = float(x.var(ddof=1)) if n > 1 else math.nan
    else:
        if total is None or total_squares is None or n is None:
            raise ValueError(f"{quantity}: give samples, or total, total_squares and n")
        n = int(n)
        mean = total / n if n else math.nan
        var = max(0.0, (total_squares - n * mean * mean) / (n - 1)) if n > 1 else math.nan
    if n < 2:
        raise ValueError(f"{quantity}: a t interval needs at least 2 samples, got {n}")
    a = _alpha(level)
    se = math.sqrt(var / n)
    if se == 0.0:
        same = math.isclose(mean, predicted, rel_tol=1e-12, abs_tol=1e-12)
        return Comparison(quantity, float(predicted), mean, (mean, mean),
                          "t test (zero sample variance: exact comparison)", level,
                          1.0 if same else 0.0, same, n)
    t = float(stats.t.ppf(1.0 - a / 2.0, n - 1))
    T = (mean - predicted) / se
    p = float(2.0 * stats.t.sf(abs(T), n - 1))
    return Comparison(quantity, float(predicted), mean, (mean - t * se, mean + t * se),
                      f"one-sample t test (two-sided), T = {T:.4g}, {n - 1} df", level, p, p > a, n)


def adjust(comparisons: Sequence[Comparison], method: str = "holm",
           level: float = DEFAULT_LEVEL) -> tuple[Comparison, ...]:
    """Family-wise correction across a report: adjusted p-values and pass/fail at ``level``.

    ``method``: ``"holm"`` (step-down, default) or ``"bonferroni"``; see the module docstring.
    Returns the comparisons in their original order with ``p_adjusted``, ``correction`` and
    ``passed`` (iff p̃ > 1 − level) set.
    """
    m = len(comparisons)
    if m == 0:
        return ()
    a = _alpha(level)
    p = np.array([c.p_value for c in comparisons], float)
    if method == "bonferroni":
        adj = np.minimum(1.0, m * p)
    elif method == "holm":
        order = np.argsort(p, kind="stable")
        stepped = np.minimum(1.0, (m - np.arange(m)) * p[order])
        adj = np.empty(m)
        adj[order] = np.maximum.accumulate(stepped)
    else:
        raise ValueError(f"unknown correction {method!r}; expected 'holm' or 'bonferroni'")
    return tuple(dataclasses.replace(c, p_adjusted=float(q), correction=method, passed=bool(q > a),
                                     level=level) for c, q in zip(comparisons, adj))


def _cell(value: Any) -> str:
    if isinstance(value, Mapping):
        return "; ".join(f"{k} {_cell(v)}" for k, v in value.items())
    if isinstance(value, tuple) and len(value) == 2:
        return f"[{fmt(value[0], 4)}, {fmt(value[1], 4)}]"
    return fmt(value, 4) if isinstance(value, float | int) and not isinstance(value, bool) else str(value)


def render_report(comparisons: Sequence[Comparison]) -> str:
    """A markdown table: quantity, predicted, observed, interval, test, p-value, pass."""
    head = "| quantity | predicted | observed | interval | n | test | p-value | pass |"
    lines = [head, "|---|---|---|---|---|---|---|---|"]
    for c in comparisons:
        p = f"{c.p_value:.3g}"
        if c.p_adjusted is not None:
            p += f" ({c.correction} {c.p_adjusted:.3g})"
        row = [c.quantity, _cell(c.predicted), _cell(c.observed), _cell(c.interval), str(c.n),
               c.test, p, "pass" if c.passed else "**FAIL**"]
        lines.append("| " + " | ".join(s.replace("|", "\\|") for s in row) + " |")
    return "\n".join(lines)
