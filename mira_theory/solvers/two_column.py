"""Every Nash equilibrium of a bimatrix game whose column player has two pure strategies.

Inspection games have this shape: the inspectee (row player) chooses among m strategies,
the inspector (column player) between "inspect" and "not". Write the column player's mixed
strategy as y = (q, 1 − q). Then

* the row player's payoff of strategy s is linear in q:  U_s(q) = A[s,1] + q·(A[s,0] − A[s,1]);
* the column player's gain from inspecting against row mix x is  x·w,  w_s = B[s,0] − B[s,1].

(x, q) is an equilibrium iff supp(x) ⊆ argmax_s U_s(q) and
x·w = 0 when 0 < q < 1,  x·w ≥ 0 when q = 1,  x·w ≤ 0 when q = 0.

Candidate values of q are 0, 1 and the breakpoints of the upper envelope of the lines U_s;
between candidates the best-response set is constant, so an interval of q is an equilibrium
only if some best response s there has w_s = 0 (a degenerate game: a continuum). At each
candidate the feasible x form a polytope whose vertices are the pure strategies meeting the
sign condition and the two-strategy mixtures on the hyperplane x·w = 0. The result lists
those extreme equilibria, grouped into connected components, and says in words when and why
the game is degenerate. This is exact up to the tolerance ``tol`` used to decide ties; its
answers are cross-checked against nashpy and pygambit in the tests.

Leadership (Stackelberg) with the column player committing to q: the follower best-responds,
breaking ties in the leader's favour (the strong Stackelberg equilibrium of von Stengel &
Zamir 2010, "Leadership games with convex strategy sets"); the leader's payoff is piecewise
linear in q, so its maximum is at a candidate.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class ExtremeEquilibrium:
    row: np.ndarray  # mixed strategy over the row player's m strategies
    q: float  # probability the column player plays its first strategy
    component: int


@dataclass(frozen=True)
class TwoColumnResult:
    equilibria: tuple[ExtremeEquilibrium, ...]
    degenerate: bool
    degeneracies: tuple[str, ...] = field(default=())
    continua: tuple[tuple[float, float, int], ...] = field(default=())  # (q_lo, q_hi, row s)


@dataclass(frozen=True)
class Leadership:
    q: float  # committed probability of the column player's first strategy
    response: int  # the follower's best response (ties broken in the leader's favour)
    leader_payoff: float
    follower_payoff: float
    tie: bool  # the follower is indifferent at q: the leader needs q + ε to make it strict


def _close(a: float, b: float, tol: float) -> bool:
    return abs(a - b) <= tol * max(1.0, abs(a), abs(b))


def row_payoffs(A: np.ndarray, q: float) -> np.ndarray:
    return A[:, 1] + q * (A[:, 0] - A[:, 1])


def best_responses(A: np.ndarray, q: float, tol: float) -> list[int]:
    u = row_payoffs(A, q)
    top = u.max()
    return [s for s in range(len(u)) if _close(u[s], top, tol)]


def candidates(A: np.ndarray, tol: float) -> list[float]:
    """0, 1 and every q in (0, 1) where two of the lines U_s cross on the upper envelope.

    Crossings arbitrarily close to 0 or 1 are kept (a deviation that saves almost nothing has
    q* near 0); only interior crossings closer than ``tol`` to each other are merged.
    """
    m = A.shape[0]
    slope = A[:, 0] - A[:, 1]
    inner: list[float] = []
    for s in range(m):
        for t in range(s + 1, m):
            ds = slope[s] - slope[t]
            if abs(ds) <= tol * max(1.0, abs(slope[s]), abs(slope[t])):
                continue
            q = (A[t, 1] - A[s, 1]) / ds
            if 0.0 < q < 1.0:
                bs = best_responses(A, q, tol)
                if s in bs and t in bs:
                    inner.append(float(q))
    inner.sort()
    out: list[float] = []
    for q in inner:
        if not out or not _close(q, out[-1], tol):
            out.append(q)
    return [0.0, *out, 1.0]


def _vertices(B_set: list[int], w: np.ndarray, sign: int, m: int, tol: float) -> list[np.ndarray]:
    """Vertices of {x ∈ Δ(B_set): x·w = 0 (sign 0), ≥ 0 (sign 1), ≤ 0 (sign −1)}."""
    scale = max(1.0, float(np.abs(w).max()))
    zero = [s for s in B_set if abs(w[s]) <= tol * scale]
    pos = [s for s in B_set if w[s] > tol * scale]
    neg = [s for s in B_set if w[s] < -tol * scale]
    pure = zero + (pos if sign == 1 else []) + (neg if sign == -1 else [])
    out = []
    for s in pure:
        x = np.zeros(m)
        x[s] = 1.0
        out.append(x)
    for s in pos:
        for t in neg:
            x = np.zeros(m)
            x[s] = -w[t] / (w[s] - w[t])
            x[t] = 1.0 - x[s]
            out.append(x)
    return out


def solve(A: np.ndarray, B: np.ndarray, tol: float = 1e-9) -> TwoColumnResult:
    """All extreme Nash equilibria of the m×2 bimatrix game (A, B)."""
    A = np.asarray(A, dtype=float)
    B = np.asarray(B, dtype=float)
    if A.ndim != 2 or A.shape[1] != 2 or A.shape != B.shape:
        raise ValueError(f"expected two m×2 payoff arrays, got {A.shape} and {B.shape}")
    m = A.shape[0]
    w = B[:, 0] - B[:, 1]
    wscale = max(1.0, float(np.abs(w).max()))
    qs = candidates(A, tol)
    reasons: list[str] = []
    points: list[tuple[np.ndarray, float]] = []
    for q in qs:
        br = best_responses(A, q, tol)
        sign = 1 if q == 1.0 else (-1 if q == 0.0 else 0)
        for x in _vertices(br, w, sign, m, tol):
            points.append((x, q))
        if q in (0.0, 1.0) and len(br) > 1:
            reasons.append(f"row strategies {br} tie against the pure column strategy q={q:g}")
        elif len(br) > 2:
            reasons.append(f"{len(br)} row strategies tie at q={q:.6g}")
    continua: list[tuple[float, float, int]] = []
    for lo, hi in zip(qs[:-1], qs[1:], strict=True):
        br = best_responses(A, 0.5 * (lo + hi), tol)
        for s in br:
            if abs(w[s]) <= tol * wscale:
                continua.append((lo, hi, s))
                reasons.append(f"the column player is indifferent against row strategy {s}, "
                               f"so every q in [{lo:.6g}, {hi:.6g}] is an equilibrium with it")
    for s in range(m):
        if abs(w[s]) <= tol * wscale and not any(c[2] == s for c in continua):
            reasons.append(f"the column player is indifferent against row strategy {s}")
    # de-duplicate and group into connected components: two extreme points are connected
    # when they share q and are both on one face, or span a continuum interval
    unique: list[tuple[np.ndarray, float]] = []
    for x, q in points:
        if not any(_close(q, q2, tol) and np.allclose(x, x2, atol=1e-9) for x2, q2 in unique):
            unique.append((x, q))
    parent = list(range(len(unique)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, (x1, q1) in enumerate(unique):
        for j in range(i + 1, len(unique)):
            x2, q2 = unique[j]
            joined = _close(q1, q2, tol)  # same q: the convex hull of both is equilibrium
            for lo, hi, s in continua:
                if x1[s] == 1.0 and x2[s] == 1.0 and {_close(q1, lo, tol) or _close(q1, hi, tol),
                                                      _close(q2, lo, tol) or _close(q2, hi, tol)} == {True}:
                    joined = True
            if joined:
                parent[find(i)] = find(j)
    roots: dict[int, int] = {}
    eqs = []
    for i, (x, q) in enumerate(unique):
        comp = roots.setdefault(find(i), len(roots))
        eqs.append(ExtremeEquilibrium(row=x, q=q, component=comp))
    degenerate = bool(reasons) or any(sum(1 for e in eqs if e.component == c) > 1
                                      for c in range(len(roots)))
    return TwoColumnResult(equilibria=tuple(eqs), degenerate=degenerate,
                           degeneracies=tuple(dict.fromkeys(reasons)), continua=tuple(continua))


def leadership(A: np.ndarray, B: np.ndarray, tol: float = 1e-9) -> Leadership:
    """The column player's optimal commitment (strong Stackelberg equilibrium)."""
    A = np.asarray(A, dtype=float)
    B = np.asarray(B, dtype=float)
    best: Leadership | None = None
    for q in candidates(A, tol):
        br = best_responses(A, q, tol)
        leader = [q * B[s, 0] + (1 - q) * B[s, 1] for s in br]
        i = int(np.argmax(leader))
        s = br[i]
        value = leader[i]
        if best is None or value > best.leader_payoff + tol * max(1.0, abs(value)):
            best = Leadership(q=q, response=s, leader_payoff=float(value),
                              follower_payoff=float(row_payoffs(A, q)[s]), tie=len(br) > 1)
    assert best is not None
    return best


def regrets(A: np.ndarray, B: np.ndarray, x: np.ndarray, q: float) -> tuple[float, float]:
    """Each player's best gain from a unilateral deviation at the profile (x, q)."""
    y = np.array([q, 1 - q])
    row_values = A @ y
    col_values = x @ B
    return float(row_values.max() - x @ row_values), float(col_values.max() - col_values @ y)
