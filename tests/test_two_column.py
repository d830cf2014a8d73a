"""The exact m×2 enumerator (mira_theory.solvers.two_column) against hand-solved games,
nashpy and pygambit, on generic and on degenerate games, including the audit game's
normal forms (audit.bimatrix) at hypothesis-generated scenarios and at its degenerate
boundaries (δ(1 − β) = α, r = 1, w_h = 0, Δc = 0).

Notation as in two_column: the column player plays y = (q, 1 − q); the row player's payoff
from strategy s is the line U_s(q) = A[s,1] + q·(A[s,0] − A[s,1]); the column player's gain
from its first strategy against row s is w_s = B[s,0] − B[s,1].
"""

from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from mira_theory.games import audit
from mira_theory.solvers import external, two_column

TOL = 1e-7  # agreement between solvers
REGRET = 1e-9  # "no profitable deviation"
# nashpy's vertex enumeration works in floating point through qhull and returns spurious
# vertices when payoff differences are small (e.g. A = I, B = [[0, 2⁻¹⁴], [−7, 0]] gives
# three "equilibria", only one of them real), so it is compared on games that are
# nondegenerate by a wider margin; pygambit (exact rationals) is compared on all of them.
NASHPY_MARGIN = 1e-3

SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
# nashpy's vertex enumeration takes ~25 ms a game: fewer examples keep these tests < 2 s
NASHPY_SETTINGS = settings(SETTINGS, max_examples=40)


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------


def toolkit_pairs(res: two_column.TwoColumnResult) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(e.row, np.array([e.q, 1.0 - e.q])) for e in res.equilibria]


def _match(a, b, tol=TOL) -> bool:
    return (a[0].shape == b[0].shape and np.abs(a[0] - b[0]).max() <= tol
            and np.abs(a[1] - b[1]).max() <= tol)


def dedupe(pairs, tol=TOL):
    out = []
    for p in pairs:
        if not any(_match(p, o, tol) for o in out):
            out.append(p)
    return out


def same_set(p1, p2, tol=TOL) -> bool:
    p1, p2 = dedupe(p1, tol), dedupe(p2, tol)
    return (len(p1) == len(p2) and all(any(_match(a, b, tol) for b in p2) for a in p1)
            and all(any(_match(b, a, tol) for a in p1) for b in p2))


def contained(pairs, res: two_column.TwoColumnResult, tol=TOL) -> list:
    """The pairs that are neither an extreme equilibrium of res nor in one of its continua."""
    mine = toolkit_pairs(res)
    missing = []
    for x, y in pairs:
        if any(_match((x, y), p, tol) for p in mine):
            continue
        in_continuum = any(abs(x[s] - 1.0) <= tol and lo - tol <= y[0] <= hi + tol
                           for lo, hi, s in res.continua)
        if not in_continuum:
            missing.append((x, y))
    return missing


def regret(A, B, x, y) -> tuple[float, float]:
    """Independent of two_column.regrets: best unilateral gain of each player at (x, y)."""
    A, B = np.asarray(A, float), np.asarray(B, float)
    return float((A @ y).max() - x @ A @ y), float((x @ B).max() - x @ B @ y)


def generic(A, B, margin=1e-6) -> bool:
    """Nondegenerate with a margin (independent of two_column): for an m×2 game that means
    no w_s = 0 (a pure row strategy with two best replies), no tie among the best rows
    against a pure column strategy, and no three lines U_s meeting on the upper envelope
    (checked conservatively: the interior crossings of all pairs of lines are distinct)."""
    A, B = np.asarray(A, float), np.asarray(B, float)
    scale = max(1.0, float(np.abs(A).max()), float(np.abs(B).max()))
    w = B[:, 0] - B[:, 1]
    if np.any(np.abs(w) <= margin * scale):
        return False
    for col in (0, 1):
        top = np.sort(A[:, col])[::-1]
        if len(top) > 1 and top[0] - top[1] <= margin * scale:
            return False
    slope = A[:, 0] - A[:, 1]
    crossings = []
    for s, t in itertools.combinations(range(len(A)), 2):
        ds = slope[s] - slope[t]
        if abs(ds) <= margin * scale:
            if abs(A[s, 1] - A[t, 1]) <= margin * scale:
                return False  # (nearly) identical lines
            continue
        q = (A[t, 1] - A[s, 1]) / ds
        if -margin <= q <= 1 + margin:
            crossings.append(q)
    crossings.sort()
    if any(b - a <= margin for a, b in itertools.pairwise(crossings)):
        return False
    return not any(abs(q) <= margin or abs(q - 1) <= margin for q in crossings)


def exactly_degenerate(A, B) -> bool:
    """Exact (Fraction) test of degeneracy: some w_s = 0, a tie among the best rows at q = 0
    or q = 1, or three or more lines U_s meeting at an interior point of the envelope."""
    A = [[Fraction(v) for v in row] for row in np.asarray(A, float)]
    B = [[Fraction(v) for v in row] for row in np.asarray(B, float)]
    m = len(A)
    if any(B[s][0] == B[s][1] for s in range(m)):
        return True
    for col in (0, 1):
        values = sorted((A[s][col] for s in range(m)), reverse=True)
        if m > 1 and values[0] == values[1]:
            return True
    for s, t in itertools.combinations(range(m), 2):
        ds = (A[s][0] - A[s][1]) - (A[t][0] - A[t][1])
        if ds == 0:
            continue
        q = (A[t][1] - A[s][1]) / ds
        if 0 < q < 1:
            u = [A[i][1] + q * (A[i][0] - A[i][1]) for i in range(m)]
            if sum(1 for v in u if v == max(u)) >= 3:
                return True
    return False


def check_regrets(A, B, res):
    for e in res.equilibria:
        y = np.array([e.q, 1 - e.q])
        assert np.all(e.row >= -1e-12) and abs(e.row.sum() - 1) <= 1e-12
        assert 0.0 <= e.q <= 1.0
        r_row, r_col = regret(A, B, e.row, y)
        assert r_row <= REGRET * max(1.0, np.abs(A).max()), (e, r_row)
        assert r_col <= REGRET * max(1.0, np.abs(B).max()), (e, r_col)


# --------------------------------------------------------------------------------------
# games solved by hand
# --------------------------------------------------------------------------------------


def test_inspection_game_by_hand():
    # rows: honest, cheat; columns: inspect, not.
    # Row: honest gets 0 either way; cheat gets −1 if inspected, +1 if not: U_cheat(q) = 1 − 2q.
    # Column: w_honest = −1 − 0 = −1, w_cheat = 1 − (−4) = 5.
    # The lines cross at 1 − 2q = 0, q = 1/2 (a column pure strategy is never part of an
    # equilibrium: at q = 0 the row cheats and then w = 5 > 0; at q = 1 it is honest, w = −1).
    # Column indifference: x_h·(−1) + x_c·5 = 0 with x_h + x_c = 1 gives x_c = 1/6.
    A = np.array([[0.0, 0.0], [-1.0, 1.0]])
    B = np.array([[-1.0, 0.0], [1.0, -4.0]])
    res = two_column.solve(A, B)
    assert not res.degenerate and res.degeneracies == ()
    assert len(res.equilibria) == 1
    (e,) = res.equilibria
    assert e.q == pytest.approx(0.5)
    np.testing.assert_allclose(e.row, [5 / 6, 1 / 6])
    # payoffs: row 0 (honest is a best reply); column = x·B[:,1] = (1/6)(−4) = −2/3
    y = np.array([e.q, 1 - e.q])
    assert e.row @ A @ y == pytest.approx(0.0, abs=1e-12)
    assert e.row @ B @ y == pytest.approx(-2 / 3)
    # leadership: candidates q = 0 (the row cheats: the column gets B[1,1] = −4),
    # q = 1/2 (tie; honest gives (1/2)(−1) = −1/2, cheat gives 1/2 − 2 = −3/2: honest),
    # q = 1 (honest: −1). Best: commit to 1/2, honest, −1/2; gain −1/2 − (−2/3) = 1/6.
    lead = two_column.leadership(A, B)
    assert lead.q == pytest.approx(0.5) and lead.response == 0 and lead.tie
    assert lead.leader_payoff == pytest.approx(-0.5)
    assert lead.follower_payoff == pytest.approx(0.0, abs=1e-12)


def test_three_row_game_by_hand():
    # U_0 = 0, U_1 = 2 − 4q, U_2 = 3 − 9q; w = (−1, 3, 6).
    # Envelope: U_2 = U_1 at 3 − 9q = 2 − 4q, q = 1/5 (value 6/5 > 0, on the envelope);
    # U_1 = U_0 at q = 1/2 (U_2(1/2) = −3/2 < 0, on the envelope).
    # q = 0: best row 2 with w = 6 > 0, no; q = 1/5: rows {1, 2}, both w > 0, no;
    # q = 1/2: rows {0, 1}: x_1·3 − x_0 = 0 → x = (3/4, 1/4, 0); q = 1: row 0, w = −1 < 0, no.
    A = np.array([[0.0, 0.0], [-2.0, 2.0], [-6.0, 3.0]])
    B = np.array([[-1.0, 0.0], [2.0, -1.0], [4.0, -2.0]])
    assert two_column.candidates(A, 1e-9) == pytest.approx([0.0, 0.2, 0.5, 1.0])
    res = two_column.solve(A, B)
    assert not res.degenerate
    assert same_set(toolkit_pairs(res), [(np.array([0.75, 0.25, 0.0]), np.array([0.5, 0.5]))])
    # leadership (ties broken for the leader): q = 0 → row 2: −2; q = 1/5 → row 1:
    # 2/5 − 4/5 = −2/5 (row 2: 4/5 − 8/5 = −4/5); q = 1/2 → row 1: 1 − 1/2 = 1/2
    # (row 0: −1/2); q = 1 → row 0: −1. Best: q = 1/2 with the follower on row 1, 1/2,
    # above the simultaneous equilibrium's x·B[:,1] = (1/4)(−1) = −1/4.
    lead = two_column.leadership(A, B)
    assert (lead.q, lead.response, lead.tie) == (pytest.approx(0.5), 1, True)
    assert lead.leader_payoff == pytest.approx(0.5)
    assert lead.follower_payoff == pytest.approx(0.0, abs=1e-12)


def test_degenerate_continuum_by_hand():
    # U_0 = 1, U_1 = 2 − 2q (cross at q = 1/2); w = (0, 2): the column player is indifferent
    # against row 0, so (row 0, q) is an equilibrium for every q where row 0 is a best
    # reply: q ∈ [1/2, 1]. q = 0: row 1 with w = 2 > 0, no.
    A = np.array([[1.0, 1.0], [0.0, 2.0]])
    B = np.array([[0.0, 0.0], [1.0, -1.0]])
    res = two_column.solve(A, B)
    assert res.degenerate and any("indifferent" in r for r in res.degeneracies)
    assert res.continua == ((0.5, 1.0, 0),)
    e0 = np.array([1.0, 0.0])
    assert same_set(toolkit_pairs(res), [(e0, np.array([0.5, 0.5])), (e0, np.array([1.0, 0.0]))])
    assert len({e.component for e in res.equilibria}) == 1  # one connected component
    assert contained(external.pygambit_equilibria(A, B), res) == []


def test_tie_against_pure_column_by_hand():
    # U_0 = 1, U_1 = q: they tie at q = 1 (a pure column strategy with two best replies).
    # w = (−1, 1). q = 0: row 0, w = −1 ≤ 0: equilibrium (row 0, 0).
    # q = 1: rows {0, 1} with x·w ≥ 0: row 1 (w = 1), and the mixture x·w = 0: (1/2, 1/2).
    A = np.array([[1.0, 1.0], [1.0, 0.0]])
    B = np.array([[0.0, 1.0], [1.0, 0.0]])
    res = two_column.solve(A, B)
    assert res.degenerate and any("q=1" in r for r in res.degeneracies)
    expected = [(np.array([1.0, 0.0]), np.array([0.0, 1.0])),
                (np.array([0.0, 1.0]), np.array([1.0, 0.0])),
                (np.array([0.5, 0.5]), np.array([1.0, 0.0]))]
    assert same_set(toolkit_pairs(res), expected)
    comps = {tuple(e.row): e.component for e in res.equilibria}
    assert comps[(0.0, 1.0)] == comps[(0.5, 0.5)] != comps[(1.0, 0.0)]
    assert same_set(external.pygambit_equilibria(A, B), expected)


def test_rejects_bad_shapes():
    with pytest.raises(ValueError):
        two_column.solve(np.zeros((2, 3)), np.zeros((2, 3)))
    with pytest.raises(ValueError):
        two_column.solve(np.zeros((2, 2)), np.zeros((3, 2)))


# --------------------------------------------------------------------------------------
# random games: toolkit = nashpy = pygambit
# --------------------------------------------------------------------------------------


@st.composite
def float_games(draw, max_rows=4):
    m = draw(st.integers(2, max_rows))  # nashpy's qhull cannot take a 1×2 game
    # six decimals: no payoff differences near the enumerator's tolerance, where it has a
    # known bug (test_bug_crossing_near_q_one_is_dropped)
    cell = st.floats(-10, 10, allow_nan=False, allow_infinity=False).map(lambda v: round(v, 6))
    A = np.array([[draw(cell) for _ in range(2)] for _ in range(m)])
    B = np.array([[draw(cell) for _ in range(2)] for _ in range(m)])
    return A, B


@st.composite
def integer_games(draw, max_rows=4):
    """Small integer payoffs: ties (degeneracy) are common and exact."""
    m = draw(st.integers(1, max_rows))
    cell = st.integers(-2, 2)
    A = np.array([[draw(cell) for _ in range(2)] for _ in range(m)], float)
    B = np.array([[draw(cell) for _ in range(2)] for _ in range(m)], float)
    return A, B


@NASHPY_SETTINGS
@given(float_games())
def test_generic_games_agree_with_nashpy_and_pygambit(game):
    A, B = game
    assume(generic(A, B))
    res = two_column.solve(A, B)
    assert not res.degenerate, res.degeneracies
    assert len(res.equilibria) % 2 == 1  # nondegenerate games have an odd number
    check_regrets(A, B, res)
    mine = toolkit_pairs(res)
    assert same_set(mine, external.pygambit_equilibria(A, B))
    if generic(A, B, NASHPY_MARGIN):
        event("compared with nashpy")
        assert same_set(mine, external.nashpy_equilibria(A, B))


@SETTINGS
@given(integer_games())
def test_integer_games_degeneracy_reported_and_gambit_contained(game):
    A, B = game
    res = two_column.solve(A, B)
    assert res.equilibria, "every finite game has an equilibrium"
    check_regrets(A, B, res)
    assert res.degenerate == exactly_degenerate(A, B), res.degeneracies
    if res.degenerate:
        assert res.degeneracies or any(
            sum(1 for e in res.equilibria if e.component == c) > 1
            for c in {e.component for e in res.equilibria})
    gambit = external.pygambit_equilibria(A, B)
    assert contained(gambit, res) == []
    # conversely every extreme point the toolkit reports is one pygambit finds
    assert all(any(_match(p, g) for g in gambit) for p in toolkit_pairs(res))
    if not res.degenerate:
        assert same_set(toolkit_pairs(res), gambit)
        if len(A) > 1:  # nashpy's qhull cannot take a 1×2 game
            assert same_set(toolkit_pairs(res), external.nashpy_equilibria(A, B))


@SETTINGS
@given(st.one_of(float_games(), integer_games()))
def test_leadership_is_optimal_commitment(game):
    A, B = game
    res = two_column.solve(A, B)
    lead = two_column.leadership(A, B)
    # the follower's response is a best reply at the committed rate
    u = two_column.row_payoffs(A, lead.q)
    assert u.max() - u[lead.response] <= 1e-9 * max(1.0, np.abs(A).max())
    assert lead.leader_payoff == pytest.approx(lead.q * B[lead.response, 0]
                                               + (1 - lead.q) * B[lead.response, 1], abs=1e-12)
    # commitment is worth at least every simultaneous equilibrium (von Stengel & Zamir)
    for e in res.equilibria:
        value = e.row @ B @ np.array([e.q, 1 - e.q])
        assert lead.leader_payoff >= value - 1e-9 * max(1.0, np.abs(B).max())
    # and no committed q on a fine grid does better (ties there broken for the leader)
    grid = np.linspace(0, 1, 2001)
    U = A[:, 1][None, :] + grid[:, None] * (A[:, 0] - A[:, 1])[None, :]
    V = B[:, 1][None, :] + grid[:, None] * (B[:, 0] - B[:, 1])[None, :]
    best = U >= U.max(axis=1, keepdims=True) - 1e-12
    value = np.where(best, V, -np.inf).max(axis=1)
    assert value.max() <= lead.leader_payoff + 1e-9 * max(1.0, np.abs(B).max())


# --------------------------------------------------------------------------------------
# the audit game's normal form at hypothesis-generated scenarios
# --------------------------------------------------------------------------------------


@st.composite
def audit_changes(draw, max_deviations=3, saving=False, typical=False):
    """Parameters of a default.toml variant: (deviations, changes). ``typical`` keeps them
    in the usual region (detection well above false alarms, positive costs and slash), where
    the interior mixed equilibrium exists often; otherwise every boundary value is fair."""
    def f(lo, hi, typical_lo=None, typical_hi=None):
        if typical:
            lo, hi = typical_lo if typical_lo is not None else lo, typical_hi or hi
            return st.floats(lo, hi, allow_nan=False, allow_infinity=False)
        # no tiny nonzero values: a slash of 1e-310 crashes audit.solve (see the bug test
        # in test_audit_game.py), and an audit cost of 1e-9 makes a gain w_s that the
        # enumerator (ties decided at 1e-9) rounds to 0, moving an extreme mixture by
        # |w_s|/|w_t| ≫ TOL: such games are ill-conditioned, not wrongly solved
        inner = st.floats(max(lo, 1e-6), hi, allow_nan=False, allow_infinity=False)
        return st.one_of(st.just(lo), inner) if lo == 0 else inner

    c_h = draw(f(0.05, 2.0))
    count = draw(st.integers(1, max_deviations))
    devs = []
    for i in range(count):
        cost = draw(f(0.0, c_h * 0.99)) if saving else draw(f(0.0, 2.5))
        devs.append((f"dev-{i}", cost, draw(f(0.0, 1.0, 0.2))))
    changes = {
        "task.reward": draw(f(0.0, 3.0, 0.1)),
        "task.cost_honest": c_h,
        "task.damage": draw(f(0.0, 20.0, 1.0)),
        "audit.cost": draw(f(0.0, 2.0, 0.05, 1.0)),
        "audit.verifiers": draw(st.integers(1, 5)),
        "audit.miss_rate": draw(f(0.0, 0.6, 0.0, 0.3)),
        "audit.false_alarm_rate": draw(f(0.0, 0.3, 0.0, 0.05)),
        "audit.collusion": draw(f(0.0, 0.95, 0.0, 0.5)),
        "audit.bounty_share": draw(f(0.0, 1.0)),
        "audit.sampling_rate": draw(f(0.0, 1.0)),
        "stake.slash": draw(f(0.0, 100.0, 5.0)),
    }
    return devs, changes


@NASHPY_SETTINGS
@given(st.one_of(audit_changes(), audit_changes(typical=True)))
def test_audit_bimatrix_generic_agrees_with_nashpy_and_pygambit(build, params):
    scenario = build(*params)
    A, B, rows = audit.bimatrix(scenario)
    assert rows == ["honest", *(d.name for d in scenario.deviations)]
    assume(generic(A, B))
    res = two_column.solve(A, B)
    assert not res.degenerate, res.degeneracies
    check_regrets(A, B, res)
    mine = toolkit_pairs(res)
    assert same_set(mine, external.pygambit_equilibria(A, B))
    if generic(A, B, NASHPY_MARGIN):
        event("compared with nashpy")
        assert same_set(mine, external.nashpy_equilibria(A, B))
    # and audit.solve reports exactly these equilibria
    solution = audit.solve(scenario)
    reported = [(np.array([e.strategies["provider"][r] for r in rows]),
                 np.array([e.strategies["verifier"]["audit"], e.strategies["verifier"]["no-audit"]]))
                for e in solution.equilibria]
    assert same_set(reported, mine)


@SETTINGS
@given(audit_changes())
def test_audit_bimatrix_any_point_gambit_contained(build, params):
    scenario = build(*params)
    A, B, _ = audit.bimatrix(scenario)
    res = two_column.solve(A, B)
    assert res.equilibria
    check_regrets(A, B, res)
    assert contained(external.pygambit_equilibria(A, B), res) == []


def test_audit_bimatrix_default_by_hand(default):
    # default.toml: R = 1, c_h = 0.4, D = 5, k = 0.4, n = 1, α = β = r = 0, b = 0.5, L = 20.
    # e = 1. Rows: honest, weaker-model (c = 0.1, δ = 0.3), random-output (c = 0, δ = 1).
    # A[honest]   = [R − c_h − α(L+R), R − c_h] = [0.6, 0.6]
    # A[weaker]   = [1 − 0.1 − 0.3·21, 0.9]      = [−5.4, 0.9]
    # A[random]   = [1 − 0 − 1·21, 1.0]          = [−20, 1]
    # B[honest]   = [w_h, 0] = [α·b·L − n·k, 0]  = [−0.4, 0]
    # B[weaker]   = [−δD + δ(D + bL) − nk, −δD]  = [−1.5 + 0.3·15 − 0.4, −1.5] = [2.6, −1.5]
    # B[random]   = [−5 + 15 − 0.4, −5]          = [9.6, −5]
    A, B, rows = audit.bimatrix(default)
    assert rows == ["honest", "weaker-model", "random-output"]
    np.testing.assert_allclose(A, [[0.6, 0.6], [-5.4, 0.9], [-20.0, 1.0]], atol=1e-12)
    np.testing.assert_allclose(B, [[-0.4, 0.0], [2.6, -1.5], [9.6, -5.0]], atol=1e-12)
    # candidates: 0; random = weaker at 1 − 21q = 0.9 − 6.3q → q = 0.1/14.7 = 1/147;
    # weaker = honest at 0.9 − 6.3q = 0.6 → q = 1/21; 1. (random = honest at 0.4/21 is
    # below the envelope: weaker there is 0.9 − 0.12 = 0.78 > 0.6.)
    np.testing.assert_allclose(two_column.candidates(A, 1e-9), [0, 1 / 147, 1 / 21, 1])


# --------------------------------------------------------------------------------------
# the audit game's degenerate boundaries, constructed exactly
# --------------------------------------------------------------------------------------

# dyadic values: products and differences of these are exact in binary floating point
DYADIC = st.sampled_from([0.0, 0.125, 0.25, 0.5, 0.75, 1.0])


def _check_degenerate_solution(scenario, needle: str):
    """The toolkit flags the game as degenerate with a reason, gives a nonempty answer of
    true equilibria, and every extreme equilibrium pygambit finds is in it."""
    solution = audit.solve(scenario)
    assert solution.degenerate
    assert any(needle in r for r in solution.degeneracies), solution.degeneracies
    assert solution.equilibria
    A, B, _ = audit.bimatrix(scenario)
    scale = max(1.0, np.abs(A).max(), np.abs(B).max())
    for e in solution.equilibria:
        # the enumerator decides ties up to tol·max(1, |payoff|), so regret is relative
        assert max(e.regret.values()) <= REGRET * scale
    res = two_column.solve(A, B)
    check_regrets(A, B, res)
    assert contained(external.pygambit_equilibria(A, B), res) == []
    return solution


@SETTINGS
@given(audit_changes(max_deviations=2, saving=True),
       st.sampled_from([0.25, 0.5, 1.0]), st.sampled_from([0.0, 0.5, 0.75]),
       st.sampled_from([0.0, 0.5, 0.9]))
def test_boundary_divergence_equals_false_alarm(build, params, delta, one_minus_beta, r):
    # δ(1 − β) = α exactly: with δ a power of two, e·δ·(1 − β) and e·α round identically,
    # so audits separate nothing and no sampling rate deters.
    devs, changes = params
    alpha = delta * one_minus_beta
    devs = [(devs[0][0], devs[0][1], delta), *devs[1:]]
    changes |= {"audit.miss_rate": 1.0 - one_minus_beta, "audit.false_alarm_rate": alpha,
                "audit.collusion": r}
    scenario = build(devs, changes)
    solution = _check_degenerate_solution(scenario, "no sampling rate deters")
    first = solution.deviations[0]
    assert not first.deterrable and not solution.deterrable
    assert first.deterrence_sampling_rate == np.inf
    assert "no sampling rate deters" in first.reason
    assert solution.to_dict()["deterrence_sampling_rate"] is None
    _check_honest_dominated(scenario)


def _check_honest_dominated(scenario):
    """The first deviation beats honesty at every q: the closed form reports no mixed
    equilibrium with it (NaN, not a number that looks like an answer), and no equilibrium
    pygambit or nashpy finds, nor the toolkit, plays honest."""
    cf = audit.closed_form(**audit.arguments(scenario, scenario.deviations[0]))
    assert np.isnan(cf["mixed_sampling_rate"]) and np.isnan(cf["mixed_deviation_probability"])
    A, B, _ = audit.bimatrix(scenario)
    assert np.all(A[1] > A[0])  # strictly dominated, against both columns
    for x, _ in external.pygambit_equilibria(A, B):
        assert x[0] == 0.0
    for e in two_column.solve(A, B).equilibria:
        assert e.row[0] == 0.0


@SETTINGS
@given(audit_changes(max_deviations=2, saving=True), st.integers(1, 5))
def test_boundary_full_collusion(build, params, n):
    # r = 1: e = 1 − 1ⁿ = 0, no audit ever detects; the provider's rows are constant.
    devs, changes = params
    changes |= {"audit.collusion": 1.0, "audit.verifiers": n}
    solution = _check_degenerate_solution(build(devs, changes), "r = 1")
    assert not solution.deterrable
    for d in solution.deviations:
        assert "no sampling rate deters" in d.reason and d.detection_per_task == 0.0
    A, _, _ = audit.bimatrix(build(devs, changes))
    np.testing.assert_array_equal(A[:, 0], A[:, 1])
    _check_honest_dominated(build(devs, changes))


@SETTINGS
@given(audit_changes(max_deviations=2, saving=True), st.sampled_from([0.125, 0.25, 0.5]),
       st.sampled_from([0.25, 0.5, 1.0]), st.sampled_from([4.0, 8.0, 16.0]),
       st.sampled_from([1, 2, 4]))
def test_boundary_verifier_indifferent_against_honest(build, params, alpha, b, L, n):
    # w_h = e·α·b·L − n·k = 0 exactly with r = 0 (e = 1) and k = α·b·L/n (dyadic):
    # the verifier is indifferent against honesty, so (honest, q) is an equilibrium for
    # every q ≥ q* — a continuum.
    devs, changes = params
    devs = [(name, cost, 1.0) for name, cost, _ in devs]  # δ(1 − β) = 1 > α: deterrable
    changes |= {"audit.false_alarm_rate": alpha, "audit.miss_rate": 0.0, "audit.collusion": 0.0,
                "audit.bounty_share": b, "stake.slash": L, "audit.verifiers": n,
                "audit.cost": alpha * b * L / n}
    scenario = build(devs, changes)
    A, B, _ = audit.bimatrix(scenario)
    assert B[0, 0] == 0.0 == B[0, 1]
    _check_degenerate_solution(scenario, "indifferent against row strategy 0")
    res = two_column.solve(A, B)
    q_star = max(d.deterrence_sampling_rate for d in audit.solve(scenario).deviations)
    if q_star < 1:
        assert any(s == 0 and lo == pytest.approx(q_star) and hi == 1.0 for lo, hi, s in res.continua)


@SETTINGS
@given(audit_changes(max_deviations=1, saving=True))
def test_boundary_no_saving(build, params):
    # Δc = 0: the deviation costs what honesty costs, so against q = 0 (no audit) honest
    # and the deviation tie — a degenerate game; q* = 0.
    devs, changes = params
    devs = [(devs[0][0], changes["task.cost_honest"], devs[0][2]), *devs[1:]]
    solution = _check_degenerate_solution(build(devs, changes), "tie")
    first = solution.deviations[0]
    assert first.deterrence_sampling_rate == 0.0 and first.deterrable
    # honesty is a best response at q = 0; when audits separate the two (δ(1 − β) ≥ α) at
    # every q, otherwise (false alarms exceed detection) only at q = 0
    assert "saves nothing" in first.reason or "deters only while q ≤" in first.reason


# --------------------------------------------------------------------------------------
# the 2-strategy closed forms against the enumerator (single deviation)
# --------------------------------------------------------------------------------------


def _single(build, params):
    devs, changes = params
    return build(devs[:1], changes)


@SETTINGS
@given(st.one_of(audit_changes(max_deviations=1, saving=True),
                 audit_changes(max_deviations=1, saving=True, typical=True),
                 audit_changes(max_deviations=1)))  # c_j may exceed c_h
def test_two_strategy_closed_form_equals_enumerator(build, params):
    scenario = _single(build, params)
    dev = scenario.deviations[0]
    cf = {k: float(v) for k, v in audit.closed_form(**audit.arguments(scenario, dev)).items()}
    A, B, _ = audit.bimatrix(scenario)
    res = two_column.solve(A, B)
    lead = two_column.leadership(A, B)
    scale = max(1.0, np.abs(B).max())
    assert cf["verifier_payoff_leadership"] == pytest.approx(lead.leader_payoff, rel=1e-9, abs=1e-9 * scale)
    interior = [e for e in res.equilibria if 0 < e.q < 1 and 0 < e.row[1] < 1]
    if np.isfinite(cf["mixed_sampling_rate"]):
        event("interior mixed equilibrium compared")
        q, t = cf["mixed_sampling_rate"], cf["mixed_deviation_probability"]
        # (within TOL of an enumerated point: when |w_h| is below the enumerator's tie
        # tolerance it reports the pure profile t = 0, and t° = w_h/(w_h − w_j) ≈ 0)
        assert any(abs(e.q - q) <= TOL and abs(e.row[1] - t) <= TOL for e in res.equilibria)
        pair = (np.array([1 - t, t]), np.array([q, 1 - q]))
        assert any(_match(pair, g) for g in external.pygambit_equilibria(A, B))
        assert any(_match(pair, g) for g in external.nashpy_equilibria(A, B))
        value = pair[0] @ B @ pair[1]
        assert cf["verifier_payoff_mixed"] == pytest.approx(value, rel=1e-9, abs=1e-9 * scale)
    elif generic(A, B):
        assert interior == []  # nan means "no interior mixed equilibrium"


def test_closed_form_leadership_when_deviation_costs_more(build):
    # (a regression test: closed_form once assumed honesty is a best response at q = 1
    # whenever c_h − c_j ≤ 0, and reported 9 here)
    # c_h = 0.4, c_j = 0.5 (saving −0.1 ≤ 0, so closed_form sets q* = 0); δ = 0.3, β = 0,
    # α = 0.5 > δ(1 − β): audits flag the honest provider more than the deviator.
    # U_h(q) = 0.6 − 0.5·21q,  U_j(q) = 0.5 − 0.3·21q: U_j > U_h iff 4.2q > 0.1, q > 1/42.
    # Verifier (b = 1, L = 20, k = 1, n = 1, D = 5): w_h = 0.5·20 − 1 = 9,
    # w_j = 0.3·(5 + 20) − 1 = 6.5, harm −δD = −1.5.
    # Commitments: q ≤ 1/42 (honest): q·9, best 9/42 ≈ 0.214 (tie at 1/42, broken for the
    # leader: max(9/42, −1.5 + 6.5/42) = 9/42); q > 1/42 (deviation): −1.5 + 6.5q, best at
    # q = 1: 5. So the optimal commitment is worth 5 — closed_form says max(0, w_h) = 9,
    # a payoff (honest at q = 1) the verifier cannot get since the provider deviates there.
    scenario = build([("costly", 0.5, 0.3)], {
        "task.cost_honest": 0.4, "audit.false_alarm_rate": 0.5, "audit.miss_rate": 0.0,
        "audit.bounty_share": 1.0, "stake.slash": 20.0, "audit.cost": 1.0})
    A, B, _ = audit.bimatrix(scenario)
    assert two_column.leadership(A, B).leader_payoff == pytest.approx(5.0)
    cf = audit.closed_form(**audit.arguments(scenario, scenario.deviations[0]))
    assert float(cf["verifier_payoff_leadership"]) == pytest.approx(5.0)


def test_crossing_near_q_one_is_kept():
    # Regression: crossings within tol of q = 1 used to be dropped, leaving no equilibrium.
    # U_0 = 0, U_1 = 1 − q, U_2 = (5.005e-7 − 1000) + 1000q; w = (−1, 1, −1).
    # U_2 = U_1 at 1001q = 1001 − 5.005e-7, q_c = 1 − 5e-10, where U_1 = 5e-10 > U_0.
    # q_c: rows {1, 2}, x_1·1 − x_2 = 0 → x = (0, 1/2, 1/2): pygambit's only equilibrium.
    # At q_c, U_0 = 0 is within the tie tolerance (1e-9) of U_1 = 5e-10, so the toolkit also
    # reports row 0 as tied there and flags the game degenerate: it must still contain
    # pygambit's equilibrium, never return nothing.
    A = np.array([[0.0, 0.0], [0.0, 1.0], [5.005e-7, 5.005e-7 - 1000.0]])
    B = np.array([[-1.0, 0.0], [1.0, 0.0], [-1.0, 0.0]])
    expected = [(np.array([0.0, 0.5, 0.5]), np.array([1 - 5e-10, 5e-10]))]
    assert same_set(external.pygambit_equilibria(A, B), expected)
    res = two_column.solve(A, B)
    found = toolkit_pairs(res)
    assert any(np.allclose(x, expected[0][0], atol=1e-7) and np.allclose(y, expected[0][1], atol=1e-7)
               for x, y in found)
    assert res.degenerate and res.degeneracies
    # leadership: for q ≤ q_c the follower plays row 1 and the leader gets q·1: ≈ 1 at q_c
    lead = two_column.leadership(A, B)
    assert lead.leader_payoff == pytest.approx(1.0, abs=1e-6)


def test_regression_tiny_saving_crashes_audit_solve(build):
    # one deviation saving c_h − c_j = 3.15e-9 (δ = 0.3, default otherwise):
    # q* = 3.15e-9/(0.3·21) = 5e-10 < 1e-9. The equilibrium is the usual mixture
    # t° = 0.4/4.5 = 4/45 at q = 5e-10 (pygambit finds it).
    scenario = build([("almost-honest", 0.4 - 3.15e-9, 0.3)])
    A, B, _ = audit.bimatrix(scenario)
    (x, y), = external.pygambit_equilibria(A, B)
    np.testing.assert_allclose(x, [41 / 45, 4 / 45], atol=1e-7)
    assert y[0] == pytest.approx(5e-10, rel=1e-3)
    sol = audit.solve(scenario)
    assert sol.equilibria
