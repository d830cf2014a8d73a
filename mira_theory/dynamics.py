r"""Predictions for adaptive providers: evolutionary, bounded-rational and learning dynamics.

Model
-----
A bimatrix game (A, B): the row player (provider) has m strategies, the column player
(verifier) k; x ∈ Δ_m and y ∈ Δ_k are mixed strategies (population shares). The provider's
expected payoff vector is u(y) = A·y, the verifier's v(x) = Bᵀ·x. In the audit game
``A, B, rows = audit.bimatrix(scenario)`` (rows honest + deviations, columns audit /
no-audit), and a verifier that audits at a fixed sampling rate q plays y = (q, 1 − q), so

    u(q) = A·(q, 1 − q) = (U_h(q), U_1(q), …, U_J(q))

with U_h, U_j the closed forms of :mod:`mira_theory.games.audit` (linear in q; built here by
:func:`provider_payoffs` from ``audit.closed_form``, never re-derived). σ(z)_i = e^{z_i}/Σ_l e^{z_l}
is the softmax.

1. Replicator dynamics (Taylor & Jonker 1978; Hofbauer & Sigmund 1998, "Evolutionary Games
   and Population Dynamics", ch. 7 and 10).
   Against a fixed q (one population):   ẋ_i = x_i·(u_i − x·u),
   whose solution is x(t) = σ(log x(0) + t·u): the share of every strategy but the best
   decays exponentially, at rate u_best − u_i.
   Provider against verifier (two populations):
       ẋ_i = x_i·((A y)_i − xᵀA y),      ẏ_l = y_l·((Bᵀx)_l − xᵀB y).
   Rest points are the profiles at which every strategy in use earns the same; with equal
   support sizes |supp x| = |supp y| (the generic case) they solve the indifference
   equations on the supports (:func:`rest_points`). The Nash equilibria are the rest points
   where no unused strategy earns more. An interior rest point of an inspection game is a
   centre: orbits cycle around it and do not converge, but their time averages converge to
   it (Hofbauer & Sigmund 1998, Thm 7.6.4 for two-population games with an interior rest
   point); :func:`replicator` integrates in log-shares z = log x (ż_i = u_i − σ(z)·u), so
   shares stay positive and normalised over long horizons.

2. Logit quantal response equilibrium (McKelvey & Palfrey 1995, "Quantal response
   equilibria for normal form games"). With precision λ ≥ 0 (in 1/payoff units):
       x = σ(λ·A y),      y = σ(λ·Bᵀx).
   At λ = 0 both are uniform; the principal branch starting there converges, as λ → ∞, to
   a Nash equilibrium (the limiting logit equilibrium). :func:`logit_qre` follows it by
   continuation in λ (Euler predictor, Newton corrector on the log-probabilities with the
   analytic Jacobian, adaptive step); :func:`qre_branch` tabulates it. Against a fixed q the
   provider's logit response is closed form: x = σ(λ·u(q)) (:func:`logit_response`).

3. Learning rules (their expected, "mean-field", dynamics).
   Hedge / exponential weights with learning rate η (Freund & Schapire 1997):
       x_{t+1,i} ∝ x_{t,i}·exp(η·û_{t,i}),
   where û_t is the payoff feedback of round t. With full information of the expected
   payoff vector (û_t = u(y_t)) the dynamics is deterministic; against a fixed q it is
   x_t = σ(log x_0 + η·t·u(q)): exactly the replicator at time η·t, and (from uniform x_0)
   exactly the logit response with precision λ = η·t. As t → ∞ it converges to the best
   response (split among tied best responses in proportion to x_0). As η → 0 with η·t fixed,
   the two-population Hedge dynamics is the two-population replicator.
   Realised feedback (:func:`simulate_hedge`, a Monte Carlo): "full" — after each task the
   provider learns whether it was audited and the expected payoff of every strategy given
   that (û_t = A[:, column_t]); its exact expectation over the audit draws is the binomial
   mixture E[x_t] = Σ_k Bin(k; t, q)·σ(log x_0 + η(k·A[:,0] + (t − k)·A[:,1]))
   (:func:`hedge_full_information_mean`); "bandit" — the provider only sees the realised payoff
   r_t of the strategy i_t it played (slashed L + R when an audit flags it) and uses the
   importance-weighted estimate û_{t,i} = b + 1{i = i_t}·(r_t − b)/x_{t,i} (Exp3, Auer et al.
   2002; unbiased for any baseline b; the default b = max payoff makes every update a loss).
   Both have mean E[û_t] = u, so the mean-field path is their first-order prediction; the
   error is O(η²·t·Var û) (Jensen), small when η·(payoff range) ≪ 1.
   Regret matching (Hart & Mas-Colell 2000, unconditional form): cumulative regrets
   R_{t,i} = Σ_{s≤t} (û_{s,i} − û_{s,a_s}); play x_{t+1} = R_t⁺/ΣR_t⁺ (uniform when no
   regret is positive). :func:`simulate_bandit_learners` is a Monte Carlo of the reference
   network's bandit-feedback regret-matching and logit-response providers, batch by batch.
   Its mean-field replaces the increment by its expectation
   u(y_t) − x_t·u(y_t). The empirical distribution of play converges to the set of coarse
   correlated equilibria (Hannan set); against a fixed q that set is the best responses,
   so the provider's (time-averaged) play converges to the best response. The conditional
   variant, whose play converges to the correlated equilibria, is not implemented.

5. Two learning populations as the reference network runs them (verifiers adapt too).
   The in-process network with ``VerifierHedge`` runs, batch by batch: a common sampling rate
   q = σ(z_v)_audit fixed before the batch; P bandit-Hedge providers (task k to provider
   k mod P) playing from their frozen x_j = σ(z_j) and updating z_{j,i} += η·(r − b)/x_{j,i} per
   task (r = A[i, no-audit] − [flagged]·(L + R), flagged with probability q·f_i); then the
   verifier's full-information update z_v += η_v·Σ_tasks B[action, :].
   :func:`simulate_hedge_two_population` is a Monte Carlo of exactly this process (the
   predicted distribution of the per-window time averages q̄_w, t̄_w of a run);
   :func:`hedge_two_population_mean_field` replaces every increment by its expectation. The
   mean field is the first-order prediction only: with bandit feedback the noise of the
   importance-weighted estimates raises a rarely played deviation's mean share at a given q
   (an Itô drift, O(η)), so the process's mean departs from the mean-field path and its time
   averages from the equilibrium. As η, η_v → 0 with η·T fixed the mean field tends to the
   two-population replicator with speeds η/P and η_v per task; in the 2 × 2 sub-game with an
   interior equilibrium (q°, t°) that flow conserves
       H = η_v κ_v [t° ln t + (1 − t°) ln(1 − t)] + (η/P) κ_p [q° ln q + (1 − q°) ln(1 − q)]
   (κ_p, κ_v the slopes of the payoff differences in q and t), so orbits are closed and the time
   averages over each cycle are exactly (q°, t°) (Hofbauer & Sigmund 1998, §7.6; the tests
   check both); discrete simultaneous Hedge steps drift outward, H falling by O(η²) per step
   (Bailey & Piliouras 2018). :func:`hedge_step_sizes` chooses (η, η_v) for a horizon T so
   that the simulated time averages approach (q°, t°) at the O(1/√T) rate of the regret bound.
   :func:`mixed_equilibrium` gives (q°, x°).

4. Threshold prediction (:func:`threshold_prediction`): the long-run honest share against a
   sampling rate q swept around the deterrence rate q* — a step at q* for best response
   (and for Hedge as t → ∞), the sigmoid σ(λ·u(q))_honest for logit providers, and
   σ(log x_0 + η·t·u(q))_honest after t rounds of Hedge. :func:`resolvable_interval` gives the
   band of q around q* in which a run cannot tell which side of q* it is on.

    >>> import mira_theory as mt
    >>> from mira_theory import dynamics
    >>> scenario = mt.load("models/default.toml")
    >>> dynamics.provider_payoffs(scenario, 0.05).round(3)  # honest, weaker-model, random-output
    array([ 0.6  ,  0.585, -0.05 ])
    >>> path = dynamics.predicted_learning_path("hedge", dynamics.provider_payoffs(scenario), eta=0.1,
    ...                                         rounds=1000, names=dynamics.strategies(scenario))
    >>> round(float(path["honest"].iloc[-1]), 3), path.attrs["limit"]
    (0.818, (1.0, 0.0, 0.0))
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd
from scipy import integrate, optimize, special, stats

from mira_theory.results import jsonable

RULES = ("hedge", "regret-matching", "replicator")

# --------------------------------------------------------------------------------------
# Payoffs of the audit game (from audit.py, never re-derived)
# --------------------------------------------------------------------------------------


def softmax(z: Any) -> np.ndarray:
    """σ(z) along the last axis, overflow-safe (scipy.special.softmax)."""
    return special.softmax(np.asarray(z, float), axis=-1)


def strategies(scenario: Any) -> tuple[str, ...]:
    """The provider's strategies of an audit scenario: honest, then the deviations."""
    return ("honest", *(d.name for d in scenario.deviations))


def provider_payoffs(scenario: Any, sampling_rate: Any = None) -> np.ndarray:
    """u(q): the provider's expected payoff per task of each strategy at sampling rate(s) q.

    Shape ``np.shape(q) + (1 + J,)``, columns in :func:`strategies` order; values are
    ``payoff_honest`` and ``payoff_deviation`` of ``audit.closed_form`` (vectorized over q).
    ``sampling_rate=None`` uses the rate in force.
    """
    from mira_theory.games import audit

    q = scenario.audit.sampling_rate if sampling_rate is None else sampling_rate
    q = np.asarray(q, float)
    cols = []
    for i, dev in enumerate(scenario.deviations):
        cf = audit.closed_form(**{**audit.arguments(scenario, dev), "sampling_rate": q})
        if i == 0:
            cols.append(np.broadcast_to(cf["payoff_honest"], q.shape))
        cols.append(np.broadcast_to(cf["payoff_deviation"], q.shape))
    return np.stack(cols, axis=-1)


def detection_per_audit(scenario: Any) -> np.ndarray:
    """Probability that one audit flags each strategy: (e·α, e·δ_1(1 − β), …) from closed_form."""
    from mira_theory.games import audit

    out = []
    for i, dev in enumerate(scenario.deviations):
        cf = audit.closed_form(**{**audit.arguments(scenario, dev), "sampling_rate": 1.0})
        if i == 0:
            out.append(float(cf["false_slash_per_task"]))
        out.append(float(cf["detection_per_task"]))
    return np.array(out)


def audit_feedback(scenario: Any) -> dict[str, Any]:
    """What a provider's realised payoff per task depends on, for Monte Carlo learners.

    ``flag_probability``: :func:`detection_per_audit`; ``slash_cost`` = L + R (a flagged task
    is slashed L and forfeits R, per the audit model). With these, E[realised payoff | strategy
    i, audited] = A[i, 1] − flag_i·(L + R) = A[i, 0] of ``audit.bimatrix`` (tested).
    """
    return {"flag_probability": detection_per_audit(scenario),
            "slash_cost": float(scenario.stake.slash + scenario.task.reward)}


def _payoff_vector(payoffs: Any, sampling_rate: float | None) -> np.ndarray:
    """u from a payoff vector, or A·(q, 1 − q) from a two-column matrix A at ``sampling_rate``."""
    u = np.asarray(payoffs, float)
    if u.ndim == 2:
        if sampling_rate is None or u.shape[1] != 2:
            raise ValueError("a payoff matrix needs a sampling_rate and two columns (audit, no-audit)")
        u = u @ np.array([sampling_rate, 1.0 - sampling_rate])
    if u.ndim != 1:
        raise ValueError(f"expected a payoff vector, got shape {u.shape}")
    return u


def _initial(initial: Any, m: int) -> np.ndarray:
    if initial is None:
        return np.full(m, 1.0 / m)
    x = np.asarray(initial, float)
    if x.shape != (m,) or np.any(x < 0) or not math.isclose(x.sum(), 1.0, rel_tol=1e-9):
        raise ValueError(f"initial shares must be {m} nonnegative numbers summing to 1, got {initial!r}")
    return x / x.sum()


def _names(names: Sequence[str] | None, m: int, prefix: str) -> list[str]:
    if names is None:
        return [f"{prefix}{i}" for i in range(m)]
    if len(names) != m:
        raise ValueError(f"expected {m} strategy names, got {len(names)}")
    return list(names)


def _log(x: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log(x)


# --------------------------------------------------------------------------------------
# 1. Replicator dynamics
# --------------------------------------------------------------------------------------


def replicator_field(x: Any, u: Any) -> np.ndarray:
    """ẋ_i = x_i·(u_i − x·u): the one-population replicator against a fixed payoff vector u."""
    x, u = np.asarray(x, float), np.asarray(u, float)
    return x * (u - x @ u)


def replicator_field_two(x: Any, y: Any, A: Any, B: Any) -> tuple[np.ndarray, np.ndarray]:
    """(ẋ, ẏ) of the two-population replicator: ẋ_i = x_i((Ay)_i − xᵀAy), ẏ_l = y_l((Bᵀx)_l − xᵀBy)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    A, B = np.asarray(A, float), np.asarray(B, float)
    u, v = A @ y, B.T @ x
    return x * (u - x @ u), y * (v - y @ v)


def replicator(payoffs: Any, initial: Any = None, t_max: float = 100.0, points: int = 201,
               sampling_rate: float | None = None, names: Sequence[str] | None = None,
               verifier_names: Sequence[str] = ("audit", "no-audit"),
               rtol: float = 1e-9, atol: float = 1e-11) -> pd.DataFrame:
    """Integrate the replicator dynamics (scipy ``solve_ivp``, DOP853) and tabulate the path.

    ``payoffs`` is a payoff vector u (one population against a fixed opponent), a two-column
    matrix A with ``sampling_rate`` q (u = A·(q, 1 − q)), or a pair (A, B) (two populations;
    then ``initial`` is a pair (x_0, y_0)). Returns a DataFrame with column ``time`` and one
    column of shares per strategy (verifier columns prefixed ``verifier:``).
    Integrates ż = u(y) − σ(z)·u(y) in log-shares z = log x (the replicator written for z).
    """
    times = np.linspace(0.0, t_max, points)
    if _is_pair(payoffs):
        A, B = (np.asarray(p, float) for p in payoffs)
        m, k = A.shape
        x0, y0 = (None, None) if initial is None else initial
        z0 = np.concatenate([_log(_initial(x0, m)), _log(_initial(y0, k))])

        def field(z):
            x, y = softmax(z[:m]), softmax(z[m:])
            u, v = A @ y, B.T @ x
            return np.concatenate([u - x @ u, v - y @ v])

        labels = [*_names(names, m, "s"), *(f"verifier:{n}" for n in _names(verifier_names, k, "v"))]
        splits = [m]
    else:
        u = _payoff_vector(payoffs, sampling_rate)
        m = len(u)
        z0 = _log(_initial(initial, m))

        def field(z):
            x = softmax(z)
            return u - x @ u

        labels = _names(names, m, "s")
        splits = []
    # strategies absent at t = 0 stay absent: integrate the others, keep −∞ for them
    live = np.isfinite(z0)

    def rhs(_t, zl):
        full = np.where(live, 0.0, -np.inf)
        full[live] = zl
        return field(full)[live]

    sol = integrate.solve_ivp(rhs, (0.0, t_max), z0[live], method="DOP853", t_eval=times,
                              rtol=rtol, atol=atol)
    _check(sol)
    z = np.full((len(z0), len(sol.t)), -np.inf)
    z[live] = sol.y
    shares = np.concatenate([softmax(part.T) for part in np.split(z, splits)], axis=1)
    return pd.DataFrame({"time": sol.t, **{n: shares[:, i] for i, n in enumerate(labels)}})


def _is_pair(payoffs: Any) -> bool:
    """(A, B): two payoff matrices (two learning populations), not a payoff vector."""
    return (isinstance(payoffs, tuple | list) and len(payoffs) == 2
            and all(np.ndim(p) == 2 for p in payoffs))


def _check(sol: Any) -> None:
    if not sol.success:
        raise RuntimeError(f"replicator integration failed: {sol.message}")


def replicator_exact(u: Any, initial: Any, times: Any) -> np.ndarray:
    """Closed-form solution of ẋ_i = x_i(u_i − x·u) for constant u: x(t) = σ(log x_0 + t·u)."""
    u = np.asarray(u, float)
    x0 = _initial(initial, len(u))
    t = np.asarray(times, float)[..., None]
    return softmax(_log(x0) + t * u)


@dataclass(frozen=True)
class RestPoint:
    """A rest point of the replicator dynamics, with its linear stability."""

    provider: tuple[float, ...]
    verifier: tuple[float, ...] | None  # None for one population against a fixed opponent
    nash: bool  # no unused strategy earns more (a Nash equilibrium / best response)
    eigenvalues: tuple[complex, ...]  # of the Jacobian restricted to the simplex (product)
    stability: str  # "asymptotically stable" | "unstable" | "neutral (centre or degenerate)"

    def to_dict(self) -> dict[str, Any]:
        return {"provider": jsonable(self.provider), "verifier": jsonable(self.verifier),
                "nash": self.nash, "stability": self.stability,
                "eigenvalues": [[jsonable(float(e.real)), jsonable(float(e.imag))] for e in self.eigenvalues]}


def _tangent_basis(n: int) -> np.ndarray:
    """Orthonormal basis (n × (n − 1)) of {d ∈ ℝⁿ: Σ d = 0}."""
    q, _ = np.linalg.qr(np.eye(n) - 1.0 / n)
    return q[:, : n - 1]


def _classify(eig: np.ndarray, scale: float, tol: float = 1e-9) -> str:
    if eig.size == 0:
        return "asymptotically stable"
    top = float(np.max(eig.real))
    if top < -tol * scale:
        return "asymptotically stable"
    if top > tol * scale:
        return "unstable"
    return "neutral (centre or degenerate)"


def replicator_jacobian(x: Any, y: Any, A: Any, B: Any) -> np.ndarray:
    """Jacobian of the two-population replicator field at (x, y), in ℝ^{m+k} coordinates."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    A, B = np.asarray(A, float), np.asarray(B, float)
    m, k = A.shape
    u, v = A @ y, B.T @ x
    J = np.zeros((m + k, m + k))
    J[:m, :m] = np.diag(u - x @ u) - np.outer(x, u)
    J[:m, m:] = x[:, None] * (A - x @ A)
    J[m:, m:] = np.diag(v - y @ v) - np.outer(y, v)
    J[m:, :m] = y[:, None] * (B.T - y @ B.T)
    return J


def rest_points(payoffs: Any, sampling_rate: float | None = None, tol: float = 1e-9) -> tuple[RestPoint, ...]:
    """The rest points of the replicator dynamics, with stability and whether each is Nash.

    One population (``payoffs`` a vector u, or a two-column A with ``sampling_rate``): the
    vertices e_i (stable iff u_i is the unique maximum; eigenvalues u_l − u_i, l ≠ i); faces
    of tied strategies are continua of rest points and are represented by their vertices.
    Two populations (``payoffs`` = (A, B)): for every pair of supports I, J with |I| = |J|,
    the profile with x on I making the verifier's strategies in J indifferent and y on J
    making the provider's strategies in I indifferent, kept when strictly positive on its
    supports (the generic, nondegenerate case: a degenerate game has continua not listed).
    """
    if _is_pair(payoffs):
        return _rest_points_two(*(np.asarray(p, float) for p in payoffs), tol)
    u = _payoff_vector(payoffs, sampling_rate)
    m = len(u)
    scale = max(1.0, float(np.abs(u).max()))
    out = []
    for i in range(m):
        x = np.zeros(m)
        x[i] = 1.0
        eig = np.delete(u - u[i], i).astype(complex)
        out.append(RestPoint(tuple(map(float, x)), None, bool(u[i] >= u.max() - tol * scale), tuple(map(complex, eig)),
                             _classify(eig, scale, tol)))
    return tuple(out)


def _indifferent(M: np.ndarray, tol: float) -> np.ndarray | None:
    """The p ∈ Δ with M·p constant (rows of M are the opponent's payoffs), or None."""
    s = M.shape[1]
    lhs = np.zeros((M.shape[0] + 1, s + 1))
    lhs[:-1, :s] = M
    lhs[:-1, s] = -1.0
    lhs[-1, :s] = 1.0
    rhs = np.zeros(M.shape[0] + 1)
    rhs[-1] = 1.0
    try:
        sol = np.linalg.solve(lhs, rhs)
    except np.linalg.LinAlgError:
        return None
    p = sol[:s]
    return p if np.all(p > tol) else None


def _rest_points_two(A: np.ndarray, B: np.ndarray, tol: float) -> tuple[RestPoint, ...]:
    m, k = A.shape
    scale = max(1.0, float(np.abs(A).max()), float(np.abs(B).max()))
    basis = np.zeros((m + k, m + k - 2))
    basis[:m, : m - 1] = _tangent_basis(m)
    basis[m:, m - 1:] = _tangent_basis(k)
    out = []
    for s in range(1, min(m, k) + 1):
        for rows_ in combinations(range(m), s):
            for cols_ in combinations(range(k), s):
                yJ = _indifferent(A[np.ix_(rows_, cols_)], tol)
                xI = _indifferent(B[np.ix_(rows_, cols_)].T, tol)
                if yJ is None or xI is None:
                    continue
                x, y = np.zeros(m), np.zeros(k)
                x[list(rows_)], y[list(cols_)] = xI, yJ
                u, v = A @ y, B.T @ x
                nash = bool(u.max() <= x @ u + tol * scale and v.max() <= y @ v + tol * scale)
                J = replicator_jacobian(x, y, A, B)
                eig = np.linalg.eigvals(basis.T @ J @ basis)
                out.append(RestPoint(tuple(map(float, x)), tuple(map(float, y)), nash, tuple(map(complex, eig)), _classify(eig, scale, tol)))
    return tuple(out)


# --------------------------------------------------------------------------------------
# 2. Logit quantal response equilibrium
# --------------------------------------------------------------------------------------


def logit_response(payoffs: Any, precision: Any, sampling_rate: float | None = None) -> np.ndarray:
    """The provider's logit choice against a fixed opponent: x = σ(λ·u) (closed form).

    ``precision`` λ may be an array (result shape ``np.shape(λ) + (m,)``).
    """
    u = _payoff_vector(payoffs, sampling_rate)
    lam = np.asarray(precision, float)[..., None]
    return softmax(lam * u)


@dataclass(frozen=True)
class QRE:
    """A logit quantal response equilibrium at precision λ."""

    precision: float
    provider: tuple[float, ...]
    verifier: tuple[float, ...]
    residual: float  # max |log x − log σ(λAy)|, |log y − log σ(λBᵀx)|
    steps: int  # continuation steps taken from λ = 0

    def to_dict(self) -> dict[str, Any]:
        return jsonable({"precision": self.precision, "provider": self.provider,
                         "verifier": self.verifier, "residual": self.residual, "steps": self.steps})


def _qre_parts(z: np.ndarray, lam: float, A: np.ndarray, B: np.ndarray):
    m = A.shape[0]
    x, y = np.exp(z[:m]), np.exp(z[m:])
    u, v = A @ y, B.T @ x
    lx = lam * u - special.logsumexp(lam * u)
    ly = lam * v - special.logsumexp(lam * v)
    G = z - np.concatenate([lx, ly])
    sx, sy = np.exp(lx), np.exp(ly)
    J = np.eye(len(z))
    J[:m, m:] -= lam * (A - sx @ A) * y[None, :]
    J[m:, :m] -= lam * (B.T - sy @ B.T) * x[None, :]
    G_lam = -np.concatenate([u - sx @ u, v - sy @ v])
    return G, J, G_lam


def qre_residual(A: Any, B: Any, provider: Any, verifier: Any, precision: float) -> float:
    """max |x − σ(λAy)|, |y − σ(λBᵀx)|: zero exactly at a logit QRE."""
    A, B = np.asarray(A, float), np.asarray(B, float)
    x, y = np.asarray(provider, float), np.asarray(verifier, float)
    return float(max(np.abs(x - softmax(precision * (A @ y))).max(),
                     np.abs(y - softmax(precision * (B.T @ x))).max()))


def _newton(z: np.ndarray, lam: float, A: np.ndarray, B: np.ndarray, tol: float = 1e-12,
            iterations: int = 30) -> tuple[np.ndarray, bool, int]:
    for it in range(iterations):
        G, J, _ = _qre_parts(z, lam, A, B)
        if not np.all(np.isfinite(G)):
            return z, False, it
        if np.abs(G).max() <= tol:
            return z, True, it
        try:
            step = np.linalg.solve(J, G)
        except np.linalg.LinAlgError:
            return z, False, it
        z = z - step
    G, _, _ = _qre_parts(z, lam, A, B)
    return z, bool(np.abs(G).max() <= tol * 100), iterations


def _follow(A: np.ndarray, B: np.ndarray, targets: Sequence[float], first_step: float = 1e-3,
            max_steps: int = 100_000) -> list[tuple[float, np.ndarray, int]]:
    """Follow the principal branch from λ = 0 through the sorted ``targets``."""
    m, k = A.shape
    z = np.concatenate([np.full(m, -math.log(m)), np.full(k, -math.log(k))])
    scale = max(1e-12, float(np.abs(A).max()), float(np.abs(B).max()))
    lam, h, steps = 0.0, first_step / scale, 0
    out = []
    for target in targets:
        while lam < target:
            step = min(h, target - lam)
            _, J, G_lam = _qre_parts(z, lam, A, B)
            try:
                dz = -np.linalg.solve(J, G_lam)  # Euler predictor: dz/dλ = −G_z⁻¹·G_λ
            except np.linalg.LinAlgError:
                dz = np.zeros_like(z)
            new, ok, its = _newton(z + step * dz, lam + step, A, B)
            steps += 1
            if steps > max_steps:
                raise RuntimeError(f"QRE continuation did not reach λ = {target:g} in {max_steps} steps")
            if not ok or np.abs(new - z).max() > 2.0 + np.abs(step * dz).max():
                h = step / 4.0
                if h < 1e-14 * max(1.0, lam):
                    raise RuntimeError(f"QRE continuation stalled at λ = {lam:.6g}: the branch "
                                       "may turn back (a fold), which this λ-continuation cannot follow")
                continue
            z, lam = new, lam + step
            h = step * (2.0 if its <= 3 else 1.0)
        out.append((float(target), z.copy(), steps))
    return out


def _as_qre(A: np.ndarray, B: np.ndarray, lam: float, z: np.ndarray, steps: int) -> QRE:
    m = A.shape[0]
    x, y = softmax(z[:m]), softmax(z[m:])
    return QRE(float(lam), tuple(map(float, x)), tuple(map(float, y)),
               qre_residual(A, B, x, y, lam), steps)


def logit_qre(A: Any, B: Any, precision: float) -> QRE:
    """The logit QRE at precision λ on the principal branch (continuation from λ = 0)."""
    A, B = np.asarray(A, float), np.asarray(B, float)
    if precision < 0:
        raise ValueError(f"precision λ must be ≥ 0, got {precision}")
    (lam, z, steps), = _follow(A, B, [float(precision)])
    return _as_qre(A, B, lam, z, steps)


def qre_branch(A: Any, B: Any, precisions: Sequence[float], names: Sequence[str] | None = None,
               verifier_names: Sequence[str] = ("audit", "no-audit")) -> pd.DataFrame:
    """The principal logit-QRE branch at the given precisions: one row per λ (sorted).

    Columns: ``precision``, the provider's shares, ``verifier:<name>`` shares, ``residual``.
    """
    A, B = np.asarray(A, float), np.asarray(B, float)
    m, k = A.shape
    lams = sorted(float(v) for v in precisions)
    rows = []
    pn, vn = _names(names, m, "s"), _names(verifier_names, k, "v")
    for lam, z, _ in _follow(A, B, lams):
        e = _as_qre(A, B, lam, z, 0)
        rows.append({"precision": lam, **dict(zip(pn, e.provider)),
                     **{f"verifier:{n}": p for n, p in zip(vn, e.verifier)}, "residual": e.residual})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------
# 3. Learning rules: expected dynamics and Monte Carlo of the realised-payoff versions
# --------------------------------------------------------------------------------------


def hedge_path(u: Any, eta: float, rounds: int, initial: Any = None) -> np.ndarray:
    """Mean-field Hedge against a fixed opponent: x_t = σ(log x_0 + η·t·u), t = 0..rounds."""
    u = np.asarray(u, float)
    x0 = _initial(initial, len(u))
    t = np.arange(rounds + 1)[:, None]
    return softmax(_log(x0) + eta * t * u)


def hedge_path_two(A: Any, B: Any, eta: float, rounds: int, initial: Any = None,
                   verifier_eta: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mean-field Hedge for both players: x_{t+1} ∝ x_t e^{η·A y_t}, y_{t+1} ∝ y_t e^{η_v·Bᵀx_t}."""
    A, B = np.asarray(A, float), np.asarray(B, float)
    m, k = A.shape
    x0, y0 = (None, None) if initial is None else initial
    zx, zy = _log(_initial(x0, m)), _log(_initial(y0, k))
    ev = eta if verifier_eta is None else verifier_eta
    xs, ys = np.empty((rounds + 1, m)), np.empty((rounds + 1, k))
    for t in range(rounds + 1):
        x, y = softmax(zx), softmax(zy)
        xs[t], ys[t] = x, y
        zx = zx + eta * (A @ y)
        zy = zy + ev * (B.T @ x)
        zx, zy = zx - zx.max(), zy - zy.max()  # only differences matter
    return xs, ys


def _rm_strategy(R: np.ndarray) -> np.ndarray:
    pos = np.maximum(R, 0.0)
    s = pos.sum()
    return pos / s if s > 0 else np.full(len(R), 1.0 / len(R))


def regret_matching_path(u: Any, rounds: int, initial: Any = None) -> np.ndarray:
    """Mean-field regret matching against a fixed opponent (rows t = 0..rounds).

    x_0 = ``initial``; R_{t+1} = R_t + (u − x_t·u); x_{t+1} = R_{t+1}⁺/ΣR_{t+1}⁺ (uniform if none
    is positive). Converges to the best response in finite time when it is unique.
    """
    u = np.asarray(u, float)
    x = _initial(initial, len(u))
    R = np.zeros(len(u))
    out = np.empty((rounds + 1, len(u)))
    for t in range(rounds + 1):
        out[t] = x
        R = R + (u - x @ u)
        x = _rm_strategy(R)
    return out


def regret_matching_path_two(A: Any, B: Any, rounds: int, initial: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Mean-field regret matching for both players (expected regret increments)."""
    A, B = np.asarray(A, float), np.asarray(B, float)
    m, k = A.shape
    x0, y0 = (None, None) if initial is None else initial
    x, y = _initial(x0, m), _initial(y0, k)
    Rx, Ry = np.zeros(m), np.zeros(k)
    xs, ys = np.empty((rounds + 1, m)), np.empty((rounds + 1, k))
    for t in range(rounds + 1):
        xs[t], ys[t] = x, y
        u, v = A @ y, B.T @ x
        Rx, Ry = Rx + (u - x @ u), Ry + (v - y @ v)
        x, y = _rm_strategy(Rx), _rm_strategy(Ry)
    return xs, ys


def predicted_learning_path(rule: str, payoffs: Any, eta: float, rounds: int, initial: Any = None,
                            sampling_rate: float | None = None, names: Sequence[str] | None = None,
                            verifier_names: Sequence[str] = ("audit", "no-audit"),
                            feedback: str = "expected", runs: int = 2000, seed: int = 0,
                            flag_probability: Any = None, slash_cost: float = 0.0) -> pd.DataFrame:
    """The expected (mean-field) trajectory of a learning rule over ``rounds`` rounds.

    ``rule``: ``"hedge"`` (exponential weights, learning rate η), ``"regret-matching"`` (η
    unused), or ``"replicator"`` (the continuous-time limit, evaluated at times η·t).
    ``payoffs``: a payoff vector u (the provider against a fixed sampling rate), a two-column
    matrix A with ``sampling_rate``, or a pair (A, B) (provider and verifier both learn;
    ``initial`` is then a pair). Assumes full information of the expected payoff vector each
    round (see the module docstring for the realised-feedback versions and their error).

    ``feedback`` (provider against a fixed q given as a two-column A with ``sampling_rate``):
    ``"expected"`` (default) the deterministic mean-field above; ``"full"`` the exact
    expectation over the audit draws of Hedge fed A[:, column_t]
    (:func:`hedge_full_information_mean`; Monte Carlo for regret matching); ``"bandit"`` the
    Monte Carlo mean over ``runs`` providers of importance-weighted Hedge
    (:func:`simulate_hedge`, needs ``flag_probability`` and ``slash_cost``; see
    :func:`audit_feedback`). Monte Carlo predictions add ``<name>:se`` columns (standard errors).
    The mean-field is accurate for realised feedback only when η·(payoff range) is small: its
    error is O(η) at fixed η·t.

    Returns a DataFrame: ``round``, one share column per provider strategy (and
    ``verifier:<name>`` columns for two populations). ``df.attrs`` holds the rule, η, the
    feedback and the long-run prediction from :func:`learning_limit` (``limit``: shares or None).
    """
    if rule not in RULES:
        raise ValueError(f"unknown learning rule {rule!r}; expected one of {', '.join(RULES)}")
    if eta <= 0 and rule != "regret-matching":
        raise ValueError(f"learning rate η must be > 0, got {eta}")
    t = np.arange(rounds + 1)
    if _is_pair(payoffs):
        A, B = (np.asarray(p, float) for p in payoffs)
        m, k = A.shape
        if rule == "hedge":
            xs, ys = hedge_path_two(A, B, eta, rounds, initial)
        elif rule == "regret-matching":
            xs, ys = regret_matching_path_two(A, B, rounds, initial)
        else:
            df = replicator((A, B), initial, t_max=eta * rounds, points=rounds + 1,
                            names=names, verifier_names=verifier_names)
            xs = df[_names(names, m, "s")].to_numpy()
            ys = df[[f"verifier:{n}" for n in _names(verifier_names, k, "v")]].to_numpy()
        cols = {"round": t, **{n: xs[:, i] for i, n in enumerate(_names(names, m, "s"))},
                **{f"verifier:{n}": ys[:, j] for j, n in enumerate(_names(verifier_names, k, "v"))}}
    elif feedback != "expected":
        A = np.asarray(payoffs, float)
        if A.ndim != 2 or sampling_rate is None:
            raise ValueError(f"feedback={feedback!r} needs the two-column matrix A and a sampling_rate")
        pn = _names(names, A.shape[0], "s")
        se = None
        if rule == "hedge" and feedback == "full":
            xs = hedge_full_information_mean(A, sampling_rate, eta, rounds, initial)
        elif rule == "hedge" and feedback == "bandit":
            mc = simulate_hedge(A, sampling_rate, eta, rounds, runs, "bandit", flag_probability,
                                slash_cost, initial, seed=seed)
            xs, se = mc.mean(axis=1), mc.std(axis=1, ddof=1) / math.sqrt(runs)
        elif rule == "regret-matching" and feedback == "full":
            mc = simulate_regret_matching(A, sampling_rate, rounds, runs, initial, seed=seed)
            xs, se = mc.mean(axis=1), mc.std(axis=1, ddof=1) / math.sqrt(runs)
        else:
            raise ValueError(f"no {feedback!r} feedback prediction for rule {rule!r}")
        cols = {"round": t, **{n: xs[:, i] for i, n in enumerate(pn)}}
        if se is not None:
            cols.update({f"{n}:se": se[:, i] for i, n in enumerate(pn)})
    else:
        u = _payoff_vector(payoffs, sampling_rate)
        if rule == "regret-matching":
            xs = regret_matching_path(u, rounds, initial)
        else:  # the replicator at time η·t and mean-field Hedge coincide for constant u
            xs = hedge_path(u, eta, rounds, initial)
        cols = {"round": t, **{n: xs[:, i] for i, n in enumerate(_names(names, len(u), "s"))}}
    df = pd.DataFrame(cols)
    df.attrs.update({"rule": rule, "eta": eta, "feedback": feedback,
                     "limit": learning_limit(rule, payoffs, initial, sampling_rate)})
    return df


def learning_limit(rule: str, payoffs: Any, initial: Any = None, sampling_rate: float | None = None,
                   tol: float = 1e-9) -> tuple[float, ...] | None:
    """The long-run provider shares a learning rule converges to, or None if it has no limit.

    Against a fixed opponent, Hedge and the replicator converge to the best responses,
    weighted by the initial shares among ties (x_t = σ(log x_0 + η t u)); regret matching's
    play converges to the best response (ties: not determined, returns None). With two
    learning populations none of the three converges pointwise in general (inspection games
    cycle around the mixed equilibrium); the time averages of the replicator converge to it.
    """
    if _is_pair(payoffs):
        return None
    u = _payoff_vector(payoffs, sampling_rate)
    x0 = _initial(initial, len(u))
    best = u >= u.max() - tol * max(1.0, float(np.abs(u).max()))
    live = best & (x0 > 0)
    if rule == "regret-matching":
        if best.sum() > 1:
            return None
        return tuple(map(float, best.astype(float)))
    if not live.any():
        return None
    w = np.where(live, x0, 0.0)
    return tuple(map(float, w / w.sum()))


def hedge_full_information_mean(A: Any, sampling_rate: float, eta: float, rounds: int,
                                initial: Any = None) -> np.ndarray:
    """Exact E[x_t] of Hedge fed A[:, column_t] with column_t = audit w.p. q (t = 0..rounds).

    x_t = σ(log x_0 + η(K·A[:,0] + (t − K)·A[:,1])), K ~ Binomial(t, q), so
    E[x_t] = Σ_k Bin(k; t, q)·σ(log x_0 + η(k·A[:,0] + (t − k)·A[:,1])).
    """
    A = np.asarray(A, float)
    m = A.shape[0]
    z0 = _log(_initial(initial, m))
    out = np.empty((rounds + 1, m))
    for t in range(rounds + 1):
        k = np.arange(t + 1)
        w = stats.binom.pmf(k, t, sampling_rate)
        x = softmax(z0 + eta * (k[:, None] * A[:, 0] + (t - k)[:, None] * A[:, 1]))
        out[t] = w @ x
    return out


def simulate_hedge(A: Any, sampling_rate: float, eta: float, rounds: int, runs: int,
                   feedback: str = "bandit", flag_probability: Any = None, slash_cost: float = 0.0,
                   initial: Any = None, baseline: float | None = None,
                   seed: int | np.random.Generator | None = 0) -> np.ndarray:
    """Monte Carlo of Hedge with realised feedback: the shares x_t of ``runs`` independent
    providers, shape (rounds + 1, runs, m).

    Each round the task is audited with probability q. ``feedback="full"``: the provider sees
    A[:, column] (every strategy's expected payoff given the audit decision). ``"bandit"``:
    it plays i ~ x_t; if audited, the audit flags it with probability ``flag_probability[i]``
    (:func:`detection_per_audit`), and a flagged task pays A[i, 1] − ``slash_cost`` (L + R),
    an unflagged one A[i, 1] — so E[r | i, audit] = A[i, 0] when A comes from
    ``audit.bimatrix`` — and it updates with û_i = b + 1{i = i_t}(r − b)/x_{t,i}.
    """
    A = np.asarray(A, float)
    m = A.shape[0]
    rng = np.random.default_rng(seed)
    z = np.tile(_log(_initial(initial, m)), (runs, 1))
    out = np.empty((rounds + 1, runs, m))
    q = sampling_rate
    if feedback == "bandit":
        if flag_probability is None:
            raise ValueError("bandit feedback needs flag_probability (detection per audit per strategy)")
        flag = np.asarray(flag_probability, float)
        b = float(A[:, 1].max()) if baseline is None else baseline
    elif feedback != "full":
        raise ValueError(f"feedback must be 'full' or 'bandit', got {feedback!r}")
    idx = np.arange(runs)
    for t in range(rounds + 1):
        x = softmax(z)
        out[t] = x
        if t == rounds:
            break
        audited = rng.random(runs) < q
        if feedback == "full":
            z = z + eta * np.where(audited[:, None], A[:, 0], A[:, 1])
        else:
            cum = np.cumsum(x, axis=1)
            i = np.minimum((rng.random(runs)[:, None] > cum).sum(axis=1), m - 1)
            flagged = audited & (rng.random(runs) < flag[i])
            r = A[i, 1] - np.where(flagged, slash_cost, 0.0)
            est = np.full((runs, m), b)
            est[idx, i] += (r - b) / x[idx, i]
            z = z + eta * est
        z = z - z.max(axis=1, keepdims=True)
    return out


def simulate_regret_matching(A: Any, sampling_rate: float, rounds: int, runs: int, initial: Any = None,
                             seed: int | np.random.Generator | None = 0) -> np.ndarray:
    """Monte Carlo of regret matching with full-information realised feedback A[:, column_t]
    and sampled actions: the mixed strategies x_t, shape (rounds + 1, runs, m)."""
    A = np.asarray(A, float)
    m = A.shape[0]
    rng = np.random.default_rng(seed)
    x = np.tile(_initial(initial, m), (runs, 1))
    R = np.zeros((runs, m))
    out = np.empty((rounds + 1, runs, m))
    idx = np.arange(runs)
    for t in range(rounds + 1):
        out[t] = x
        if t == rounds:
            break
        cols = np.where((rng.random(runs) < sampling_rate)[:, None], A[:, 0], A[:, 1])
        i = np.minimum((rng.random(runs)[:, None] > np.cumsum(x, axis=1)).sum(axis=1), m - 1)
        R = R + cols - cols[idx, i][:, None]
        pos = np.maximum(R, 0.0)
        s = pos.sum(axis=1, keepdims=True)
        x = np.where(s > 0, pos / np.where(s > 0, s, 1.0), 1.0 / m)
    return out


# --------------------------------------------------------------------------------------
# 4. The threshold prediction: honest share against the sampling rate
# --------------------------------------------------------------------------------------


def threshold_prediction(scenario: Any, precision: float | None = None, eta: float | None = None,
                         rounds: int | None = None, sampling_rates: Any = None, points: int = 101,
                         span: tuple[float, float] = (0.5, 1.5), initial: Any = None) -> pd.DataFrame:
    """Predicted long-run honest share of adaptive providers against a fixed sampling rate q.

    q runs over ``sampling_rates`` or ``points`` values from span[0]·q* to span[1]·q* (q* the
    scenario's deterrence rate). Columns: ``sampling_rate``, ``ratio`` (q/q*),
    ``best_response`` (1 if honest is the unique best response to q, 0 if it is not a best
    response, NaN at a tie — any share is then a best response), ``logit`` (σ(λ·u(q))_honest,
    when ``precision`` λ is given) and ``hedge`` (σ(log x_0 + η·t·u(q))_honest after t =
    ``rounds`` rounds, when ``eta`` and ``rounds`` are given; its t → ∞ limit is the step).
    """
    from mira_theory.games import audit

    q_star = audit.solve(scenario).deterrence_sampling_rate
    if sampling_rates is None:
        if not math.isfinite(q_star) or q_star <= 0:
            raise ValueError(f"no finite positive q* to sweep around (q* = {q_star}); pass sampling_rates")
        sampling_rates = np.linspace(span[0] * q_star, min(1.0, span[1] * q_star), points)
    q = np.asarray(sampling_rates, float)
    U = provider_payoffs(scenario, q)
    scale = max(1.0, float(np.abs(U).max()))
    others = U[:, 1:].max(axis=1)
    gap = U[:, 0] - others
    step = np.where(gap > 1e-12 * scale, 1.0, np.where(gap < -1e-12 * scale, 0.0, np.nan))
    cols: dict[str, Any] = {"sampling_rate": q, "ratio": q / q_star if q_star > 0 else np.nan,
                            "best_response": step}
    if precision is not None:
        cols["logit"] = softmax(precision * U)[:, 0]
    if eta is not None and rounds is not None:
        z0 = _log(_initial(initial, U.shape[1]))
        cols["hedge"] = softmax(z0 + eta * rounds * U)[:, 0]
    df = pd.DataFrame(cols)
    df.attrs.update({"deterrence_sampling_rate": q_star, "precision": precision, "eta": eta,
                     "rounds": rounds})
    return df


@dataclass(frozen=True)
class ResolvableInterval:
    """The band of sampling rates around q* that a run cannot place on either side of q*."""

    deterrence_sampling_rate: float
    lower: float  # below: the run shows a deviating majority
    upper: float  # above: the run shows an honest majority
    share_low: float  # predicted honest share at ``lower``
    share_high: float  # predicted honest share at ``upper``
    precision: float  # λ (η·t for Hedge after t rounds)
    tasks: int
    level: float
    approach: str

    @property
    def width(self) -> float:
        return self.upper - self.lower

    def to_dict(self) -> dict[str, Any]:
        return jsonable({k: getattr(self, k) for k in self.__dataclass_fields__} | {"width": self.width})


def resolvable_interval(scenario: Any, precision: float, tasks: int, level: float = 0.99,
                        initial: Any = None) -> ResolvableInterval:
    """The q band around q* a run of ``tasks`` observed tasks cannot resolve.

    Approach: providers respond with x(q) = σ(log x_0 + λ·u(q)) (logit with precision λ; for
    Hedge after t rounds λ = η·t). A run estimates the honest share p(q) from ``tasks``
    tasks; it places q on a side of q* when the two-sided level-confidence interval of the
    share excludes 1/2, i.e. |p − 1/2| > z·√(p(1 − p)/n) (normal approximation, z the
    two-sided quantile). The band is the set of q whose predicted p(q) does not satisfy
    this; with p increasing in q (true when every deviation has δ_j(1 − β) > α) its ends solve
    p(q) = p_low and p(q) = p_high by Brent's method on [0, 1]. As λ, n → ∞ it shrinks to q*.
    """
    from mira_theory.games import audit

    q_star = audit.solve(scenario).deterrence_sampling_rate
    z = stats.norm.ppf(0.5 + level / 2.0)
    n = float(tasks)

    def excess(p):  # > 0 iff a share p is distinguishable from 1/2
        return abs(p - 0.5) - z * math.sqrt(p * (1.0 - p) / n)

    p_high = optimize.brentq(excess, 0.5, 1.0 - 1e-15, xtol=1e-15)
    p_low = 1.0 - p_high
    z0 = _log(_initial(initial, len(scenario.deviations) + 1))

    def share(q):
        return float(softmax(z0 + precision * provider_payoffs(scenario, q))[0])

    def solve_for(target):
        f0, f1 = share(0.0) - target, share(1.0) - target
        if f0 >= 0:
            return 0.0
        if f1 <= 0:
            return 1.0
        return optimize.brentq(lambda q: share(q) - target, 0.0, 1.0, xtol=1e-14)

    return ResolvableInterval(
        deterrence_sampling_rate=q_star, lower=solve_for(p_low), upper=solve_for(p_high),
        share_low=p_low, share_high=p_high, precision=precision, tasks=int(tasks), level=level,
        approach="logit providers σ(log x0 + λ·u(q)); a run resolves q when the normal-approximation "
                 "confidence interval of the honest share over n tasks excludes 1/2")


# --------------------------------------------------------------------------------------
# 5. Two learning populations as the reference network runs them
# --------------------------------------------------------------------------------------


def round_robin(start: int, n: int, providers: int) -> np.ndarray:
    """Tasks of each provider among the global tasks start, …, start + n − 1 (task k goes to k mod P)."""
    j = np.arange(providers)
    return (start + n - j + providers - 1) // providers - (start - j + providers - 1) // providers


def batch_sizes(tasks: int, batch: int) -> np.ndarray:
    """The batch sizes of a run of ``tasks`` tasks in batches of ``batch`` (the last may be short)."""
    if tasks < 1 or batch < 1:
        raise ValueError(f"need tasks ≥ 1 and batch ≥ 1, got {tasks} and {batch}")
    sizes = np.full(tasks // batch, batch, dtype=np.int64)
    return np.append(sizes, tasks % batch) if tasks % batch else sizes


def window_edges(batches: int, windows: int) -> np.ndarray:
    """Batch indices e_0 = 0 < … < e_W = batches: window w is batches e_w, …, e_{w+1} − 1."""
    if not 1 <= windows <= batches:
        raise ValueError(f"need 1 ≤ windows ≤ batches, got {windows} windows of {batches} batches")
    return (np.arange(windows + 1) * batches) // windows


def mixed_equilibrium(A: Any, B: Any) -> tuple[float, np.ndarray] | None:
    """(q°, x°): the Nash equilibrium of the bimatrix (A, B) with an interior sampling rate
    0 < q° < 1 (the verifier mixes), from :func:`rest_points`; None if there is none."""
    for r in rest_points((np.asarray(A, float), np.asarray(B, float))):
        if r.nash and r.verifier is not None and 0.0 < r.verifier[0] < 1.0:
            return float(r.verifier[0]), np.asarray(r.provider)
    return None


def hedge_step_sizes(A: Any, B: Any, flag_probability: Any, slash_cost: float, providers: int, tasks: int,
                     baseline: float | None = None, sampling_rate: float = 0.5) -> tuple[float, float]:
    r"""Default learning rates (η, η_v) of bandit-Hedge providers and a full-information Hedge
    verifier for a run of ``tasks`` tasks shared by ``providers`` providers.

    Why these: with constant step sizes the time averages of two Hedge populations miss the
    mixed equilibrium by two terms — a transient O(1/(η·T)) (the first cycles of the orbit,
    which the continuous-time flow averages out only over whole cycles) and a bias O(η) (the
    regret bound's second term; for bandit feedback it is the Itô drift of the noisy
    importance-weighted log-weights, which raises the rarely played deviation's mean share at
    a given q, so the verifier must audit above q*: by about η(L+R)·q*(1 − 2t*)/(2t*) for one
    deviation). Balancing them gives η ∝ 1/√T and time averages within O(1/√T) of the
    equilibrium, the rate of the regret bound (the time-averaged play of no-regret learners in
    a 2 × 2 game with an interior equilibrium, which is strategically zero-sum, is an
    ε-equilibrium with ε the average regret; decreasing steps η_t ∝ 1/√t give the same rate
    without knowing T, with a worse constant). The constants are the regret-bound minimisers:

    * provider (Exp3 with baseline b): E[regret] ≤ ln m/η + (η/2)·Σ_t Σ_i E[(r_{t,i} − b)²], so
      η = √(2 ln m/(V·T_p)), T_p = T/P its tasks, V = Σ_i E[(r_i − b)²] at the equilibrium
      rate q° over the strategies the equilibrium uses (a strategy it does not use is soon
      rarely played; counting its variance, e.g. random-output's (L + R)²·q°, would make η
      several times smaller: the simulations of :func:`simulate_hedge_two_population` on
      models/default.toml put the best constant within 10% of this one and the all-strategy
      one 30% worse at 10⁶ tasks);
    * verifier (full-information Hedge over audit / no-audit): regret ≤ ln 2/η_v + η_v·T·ρ²/8
      with ρ = max_i |B[i, audit] − B[i, no-audit]| the range of its payoff difference per task,
      so η_v = √(8 ln 2/T)/ρ.

    Without a mixed equilibrium (q° ∉ (0, 1)), V is taken over every strategy at ``sampling_rate``.
    """
    A, B = np.asarray(A, float), np.asarray(B, float)
    m = A.shape[0]
    f = np.asarray(flag_probability, float)
    b = float(A[:, 1].max()) if baseline is None else float(baseline)
    eq = mixed_equilibrium(A, B)
    if eq is None:
        q, use = float(sampling_rate), np.ones(m, bool)
    else:
        q, use = eq[0], eq[1] > 1e-12
    p = q * f
    second = (1.0 - p) * (A[:, 1] - b) ** 2 + p * (A[:, 1] - b - slash_cost) ** 2
    V = float(second[use].sum())
    tp = max(1.0, tasks / providers)
    eta = math.sqrt(2.0 * math.log(m) / (max(V, 1e-12) * tp))
    rho = float(np.abs(B[:, 0] - B[:, 1]).max())
    eta_v = math.sqrt(8.0 * math.log(2.0) / max(1, tasks)) / max(rho, 1e-12)
    return eta, eta_v


@dataclass(frozen=True)
class TwoPopulationRuns:
    """Simulated runs of two learning populations: per-window time averages of each run."""

    rate: np.ndarray  # (W, runs): task-weighted mean sampling rate q_t over each window's batches
    deviation: np.ndarray  # (W, runs): share of the window's tasks on which a deviation was taken
    rate_total: np.ndarray  # (runs,): over the whole run
    deviation_total: np.ndarray  # (runs,)
    slashes: np.ndarray  # (runs,): the most slashes any one provider took in the run
    path_rate: np.ndarray  # (batches,): mean over runs of q_t in each batch
    path_deviation: np.ndarray  # (batches,): mean over runs of each batch's deviation share
    edges: np.ndarray  # window edges in batches (window_edges)
    window_tasks: np.ndarray  # (W,): tasks per window
    params: dict[str, Any]

    @property
    def runs(self) -> int:
        return int(self.rate.shape[1])


def _network_setup(A: Any, B: Any, providers: int, tasks: int, batch: int, initial_rate: float):
    A, B = np.asarray(A, float), np.asarray(B, float)
    if A.shape != B.shape or A.ndim != 2 or A.shape[1] != 2:
        raise ValueError(f"A and B must both be m × 2 (audit, no-audit), got {A.shape} and {B.shape}")
    if not 0.0 < initial_rate < 1.0:
        raise ValueError(f"initial sampling rate must be in (0, 1), got {initial_rate}")
    if providers < 1:
        raise ValueError(f"need at least one provider, got {providers}")
    sizes = batch_sizes(tasks, batch)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    share = np.stack([round_robin(int(s), int(n), providers) for s, n in zip(starts, sizes)])  # (nb, P)
    return A, B, sizes, share


def simulate_hedge_two_population(A: Any, B: Any, *, eta: float, verifier_eta: float, providers: int,
                                  tasks: int, batch: int, initial_rate: float, flag_probability: Any,
                                  slash_cost: float, baseline: float | None = None, runs: int = 1000,
                                  windows: int = 1, seed: Any = 0) -> TwoPopulationRuns:
    r"""Monte Carlo of adaptive providers and an adaptive verifier exactly as the in-process
    network runs them (``Network(..., verifier_learner=VerifierHedge(...))`` with ``hedge:η:b``
    providers), ``runs`` independent runs.

    The process, batch by batch (global tasks i, …, i + n − 1; task k goes to provider k mod P):

    1. q = σ(z_v)_audit, fixed for the batch (``VerifierHedge.rate``; z_v = log(q_0, 1 − q_0) at
       the start);
    2. provider j (n_j tasks) plays its n_j actions from x_j = σ(z_j), frozen for the batch
       (counts ~ Multinomial(n_j, x_j)); each task is audited with probability q and an audited
       task with action i is flagged with probability ``flag_probability[i]`` (f_i, per audit);
    3. its realised payoffs update z_{j,i} += η·Σ_{its tasks with action i} (r − b)/x_{j,i}, r =
       A[i, no-audit] − [flagged]·(L + R) (``BanditHedge``: −b/x at the choice, R − c at the
       commit, −(L + R)/x when slashed in the batch's audit), so E[Δz_{j,i}] = η·n_j·(u_i(q) − b);
    4. the verifier updates z_v += η_v·Σ_{tasks} B[action, :] (``VerifierHedge.observe``).

    Records per run the task-weighted mean of q and the deviation share of each window of
    batches (:func:`window_edges`), the totals, the most slashes one provider took, and the
    per-batch means over runs (the predicted path). Flags, actions and the audit draw are
    sampled exactly (multinomial / binomial), so this is the run's distribution, not an
    approximation of it; the network's hashes play the role of the uniform draws.
    """
    A, B, sizes, share = _network_setup(A, B, providers, tasks, batch, initial_rate)
    m = A.shape[0]
    f = np.asarray(flag_probability, float)
    if f.shape != (m,):
        raise ValueError(f"flag_probability must have {m} entries, got {f.shape}")
    b = float(A[:, 1].max()) if baseline is None else float(baseline)
    rng = np.random.default_rng(seed)
    nb = len(sizes)
    edges = window_edges(nb, windows)
    win = np.repeat(np.arange(windows), np.diff(edges))
    zp = np.zeros((runs, providers, m))
    zv = np.tile(np.log([initial_rate, 1.0 - initial_rate]), (runs, 1))
    gain = A[:, 1] - b
    qsum = np.zeros((windows, runs))
    dsum = np.zeros((windows, runs))
    slashes = np.zeros((runs, providers))
    path_q, path_d = np.empty(nb), np.empty(nb)
    dev_rows = np.arange(m) > 0
    for k in range(nb):
        n = int(sizes[k])
        q = special.softmax(zv, axis=1)[:, 0]
        x = special.softmax(zp, axis=2)
        counts = rng.multinomial(np.broadcast_to(share[k], (runs, providers)), x)
        flagged = rng.binomial(counts, q[:, None, None] * f)
        with np.errstate(divide="ignore", invalid="ignore"):
            step = np.where(counts > 0, (counts * gain - flagged * slash_cost) / x, 0.0)
        zp += eta * step
        zp -= zp.max(axis=2, keepdims=True)
        total = counts.sum(axis=1)  # (runs, m)
        zv += verifier_eta * (total @ B)
        zv -= zv.max(axis=1, keepdims=True)
        dev = total[:, dev_rows].sum(axis=1)
        w = win[k]
        qsum[w] += n * q
        dsum[w] += dev
        slashes += flagged.sum(axis=2)
        path_q[k], path_d[k] = q.mean(), dev.mean() / n
    wt = np.add.reduceat(sizes, edges[:-1]).astype(float)
    return TwoPopulationRuns(
        rate=qsum / wt[:, None], deviation=dsum / wt[:, None], rate_total=qsum.sum(0) / tasks,
        deviation_total=dsum.sum(0) / tasks, slashes=slashes.max(axis=1), path_rate=path_q,
        path_deviation=path_d, edges=edges, window_tasks=wt.astype(np.int64),
        params={"eta": eta, "verifier_eta": verifier_eta, "providers": providers, "tasks": tasks,
                "batch": batch, "initial_rate": initial_rate, "baseline": b, "runs": runs,
                "windows": windows, "seed": jsonable(seed) if not isinstance(seed, np.random.Generator) else None})


def hedge_two_population_mean_field(A: Any, B: Any, *, eta: float, verifier_eta: float, providers: int,
                                    tasks: int, batch: int, initial_rate: float,
                                    names: Sequence[str] | None = None) -> pd.DataFrame:
    """The expected dynamics of :func:`simulate_hedge_two_population`: the same batches, with
    every update replaced by its expectation — z_j += η·n_j·A·(q, 1 − q) (the bandit estimate is
    unbiased; the baseline shifts every z_{j,i} alike), z_v += η_v·Σ_j n_j·Bᵀx_j.

    One row per batch: ``tasks`` (tasks committed after it), ``sampling_rate`` (q in force
    during it), ``deviation`` (expected deviation share of its tasks) and the providers' mean
    shares per strategy. With η, η_v → 0 at fixed η·T this is the two-population replicator
    with speeds η/P (provider, per global task) and η_v (verifier): see the tests.
    """
    A, B, sizes, share = _network_setup(A, B, providers, tasks, batch, initial_rate)
    m = A.shape[0]
    zp = np.zeros((providers, m))
    zv = np.log([initial_rate, 1.0 - initial_rate])
    rows = []
    labels = _names(names, m, "s")
    done = 0
    for k, n in enumerate(sizes):
        y = special.softmax(zv)
        x = special.softmax(zp, axis=1)
        nj = share[k].astype(float)
        mean_x = nj @ x / n
        done += int(n)
        rows.append({"tasks": done, "sampling_rate": float(y[0]), "deviation": float(1.0 - mean_x[0]),
                     **{s: float(v) for s, v in zip(labels, mean_x)}})
        zp = zp + eta * nj[:, None] * (A @ y)[None, :]
        zp -= zp.max(axis=1, keepdims=True)
        zv = zv + verifier_eta * (nj @ x) @ B
        zv -= zv.max()
    return pd.DataFrame(rows)


def simulate_bandit_learners(rule: str, A: Any, sampling_rate: float, *, flag_probability: Any,
                             slash_cost: float, share: Any, window: int, windows: int, runs: int,
                             gamma: float = 0.05, precision: float = 10.0, seed: Any = 0) -> np.ndarray:
    r"""Monte Carlo of the network's regret-matching or logit-response providers against a fixed
    sampling rate q, batch by batch as the in-process network runs them; returns the honest
    actions of the K providers pooled per window of their own tasks, shape (windows, runs).

    ``share``: (batches, K) tasks of each adaptive provider in each batch (``round_robin``); a
    provider's window k is its tasks k·w, …, (k + 1)·w − 1 (``window`` = w). In a batch a provider
    plays its tasks from probabilities p frozen at the batch's start (counts ~ Multinomial); a
    task with action i is audited with probability q and flagged with probability f_i; its
    realised payoff is r = A[i, no-audit] − [flagged]·(L + R). Let S_i be the batch's total
    payoff of action i. Then, as ``reference_node.strategies``:

    * ``rule="regret"`` (``RegretMatching``, unconditional regret matching from bandit feedback
      with exploration γ): p = (1 − γ)·R⁺/ΣR⁺ + γ/m (uniform when no regret is positive) and
      R_k += S_k/p_k − Σ_i S_i (the importance-weighted payoff estimate minus the realised one);
    * ``rule="logit"`` (``LogitResponse``): p = σ(λ·û), û_i = (Σ payoffs of i)/max(1, tasks of i)
      — the running mean realised payoff of each action, 0 before its first play.

    The mean-field paths (:func:`regret_matching_path`, :func:`logit_response`) describe where
    these go; this is the distribution of what a run shows on the way (the experiment tests the
    observed window shares against it).
    """
    if rule not in ("regret", "logit"):
        raise ValueError(f"rule must be 'regret' or 'logit', got {rule!r}")
    A = np.asarray(A, float)
    m = A.shape[0]
    f = np.asarray(flag_probability, float)
    share = np.asarray(share, np.int64)
    if share.ndim != 2:
        raise ValueError(f"share must be (batches, providers), got shape {share.shape}")
    K = share.shape[1]
    rng = np.random.default_rng(seed)
    state_a = np.zeros((K, runs, m))  # regrets, or payoff totals
    state_b = np.zeros((K, runs, m))  # task counts (logit)
    done = np.zeros(K, np.int64)  # tasks of each provider so far
    honest = np.zeros((windows, runs))
    q = float(sampling_rate)
    end = windows * window
    for nb_k in share:
        for j in range(K):
            n = int(nb_k[j])
            if n == 0:
                continue
            if rule == "regret":
                pos = np.maximum(state_a[j], 0.0)
                s = pos.sum(axis=1, keepdims=True)
                x = np.where(s > 0, pos / np.where(s > 0, s, 1.0), 1.0 / m)
                p = (1.0 - gamma) * x + gamma / m
            else:
                p = softmax(precision * state_a[j] / np.maximum(state_b[j], 1.0))
            counts = np.zeros((runs, m), np.int64)
            t0 = int(done[j])
            while n > 0:  # split the batch at window edges: each piece's counts are drawn separately
                k = t0 // window if window > 0 else windows
                piece = n if k >= windows else min(n, (k + 1) * window - t0)
                c = rng.multinomial(piece, p)
                if t0 < end:
                    honest[k] += c[:, 0]
                counts += c
                t0 += piece
                n -= piece
            done[j] = t0
            flagged = rng.binomial(counts, q * f)
            S = counts * A[:, 1] - flagged * slash_cost
            if rule == "regret":
                state_a[j] += S / p - S.sum(axis=1, keepdims=True)
            else:
                state_a[j] += S
                state_b[j] += counts
    return honest
