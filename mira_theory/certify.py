r"""Robustness intervals and range certificates: do the constraints keep holding when the
scenario's uncertain values move?

Two questions, two functions.

:func:`robustness` — one parameter at a time, every other value (and the deployment
parameters) at the value in force: the interval containing the value in force over which
every constraint (every margin of ``solve``) keeps holding, and which constraint ends it at
each side ("stays safe while task.cost_honest ≤ 0.85"). Methods, per margin:

* audit margins with a sympy closed form (``ic``, ``stake``, ``participation``): the margin
  restricted to the parameter is a rational function of it (nominal values substituted as
  exact rationals); the real roots of its numerator and denominator are isolated exactly
  (``Poly.real_roots``), the sign on each segment between them is read from the numeric
  margin at the segment's midpoint, and the end is the root where the sign turns negative:
  exact, whatever the monotonicity. The stake margin's derived form S − E[M]·net has the
  sign of the reported margin S − E[M]·net⁺ wherever d_j > 0 (where net ≤ 0 both are ≥ 0).
* the audit episode margin: where a monotonicity lemma below holds on the side scanned, the
  crossing is unique and found by bisection to machine precision (or there is none: the
  interval reaches the domain's end); otherwise, and for every consensus margin: a scan of
  the side (a linear grid on bounded domains, a geometric one up to 10³·max(|value|, 1) on
  unbounded ones), then Brent's method (``scipy.optimize.brentq``) between the last grid
  point that holds and the first that fails. A scan is not a proof: a failure narrower than
  the grid spacing can be missed (the row's ``method`` says which was used).

:func:`certify` — the scenario's ``[uncertainty]`` table is a box of ranges; for every
constraint the certificate says **proved** (holds at every point of the box, by a sound
argument), **counterexample** (a point of the box where ``solve(scenario.replace(point))``
reports the margin failing — always re-solved before it is reported) or **undecided** (no
proof within the budget; nothing is claimed). Sound methods:

(a) *Monotonicity.* For a sympy-derived audit margin g, ∂g/∂p is derived by sympy and
    bounded over the whole box by interval arithmetic; a derivative of proven sign moves p
    to its worst end without raising g (the segment stays in the box). If every dimension
    is monotone the minimum is the worst corner, evaluated exactly (rational arithmetic).
(b) *Interval branch and bound.* A small interval evaluator over sympy trees (Add, Mul,
    Pow with integer, rational or symbolic exponents, exp, log, Abs, Max, Min, Piecewise as
    the hull of its branches) with outward rounding (``math.nextafter`` after every
    correctly rounded operation, four ulps after ``pow``/``exp``/``log``) bounds g over a
    sub-box; lower bound ≥ 0 proves the sub-box. Sub-boxes are taken worst bound first,
    dimensions monotone on the sub-box are collapsed to their worst end (a), the midpoint is
    tried as a counterexample, and the widest dimension (relative to the box) is split, until
    every sub-box is proved, a counterexample is confirmed, or the budget ends (undecided).
    Integer dimensions are split at integers (a single integer is a point).
(c) *The audit episode margin* E[min(S, L·K)] − G, K = 1 + Binomial(m, d), m = round(λT),
    G = (1/d + m)·(s + f·(L + R)) − R·(1 + m·d), s = c_h − c_j (``audit.episode_margin``),
    is not a closed form. By hand (d = q·e·δ(1 − β), f = q·e·α, e = 1 − rⁿ):

    1. E[min(S, L·K)] is nondecreasing in S and L (min(S, L·k) is), nondecreasing in d (K
       is stochastically increasing in d, min(S, L·k) nondecreasing in k), and does not
       depend on c_h, c_j, α or R.
    2. ∂G/∂c_h = 1/d + m > 0 and ∂G/∂c_j < 0: the margin is nonincreasing in c_h and
       nondecreasing in c_j. ∂G/∂S = 0: nondecreasing in S. ∂G/∂α = (1/d + m)·q·e·(L + R)
       ≥ 0: nonincreasing in α.
    3. ∂G/∂R = (1/d + m)·f − (1 + m·d) = (1 + m·d)·(f/d − 1) ≤ 0 when f ≤ d on the box:
       the margin is then nondecreasing in R.
    4. δ and β move d only: ∂G/∂d = −(s + f(L + R))/d² − R·m ≤ 0 when s ≥ 0 on the box (f,
       L, R ≥ 0); with 1. the margin is nondecreasing in δ, nonincreasing in β.
    5. q, r, n scale d and f together by q·e: with x = q·e, x·∂G/∂x = −s/d + m·(f(L + R)
       − d·R) ≤ 0 when s ≥ 0 and (m = 0 or f(L + R) ≤ d·R) on the box; with 1. the margin
       is nondecreasing in q and n (e grows with n for r ≤ 1), nonincreasing in r.
    6. L: when f = 0 on the box G does not depend on L and with 1. the margin is
       nondecreasing in L.
    7. λ and T enter only through the integer m = round(λT), nondecreasing in each, so over
       the box m takes exactly the integers between round(λ_lo·T_lo) and round(λ_hi·T_hi):
       each is checked (a finite case split).

    Lemmas 3–5 need d > 0 on the box (at d = 0 the margin jumps to ±∞); their conditions are
    checked by interval arithmetic on sympy forms from ``audit.derivation``. When every
    dimension is covered the worst case is a corner, evaluated by ``episode_margin``
    (floating point: a worst margin within 10⁻⁹ of 0 is reported undecided); D, k, b and
    the capital cost do not enter the margin. Otherwise: undecided, unless a corner, the
    centre or a seeded random point of the box fails when re-solved (counterexample).
(d) *Consensus* (no closed forms, ``consensus.solve`` only): if the margin is monotone in
    each box dimension separately (direction may depend on the others), its minimum over
    the box is at a vertex (move one coordinate at a time to its lower end), so all 2^k
    vertices are solved (k ≤ ``max_vertices_log2``). Monotone by the model's structure:
    ``ic[j]`` = (p_h − p_j)·r − (c − c_j) − (L/W)·(P_f − P_d) is affine in c, c_j, r and L,
    and monotone in a_j (the deviator's vote is independent of the others', so p_j is
    affine in a_j, and u_j is nondecreasing in p_j since P_d = P(Bin(W, p_j) < θW) is
    nonincreasing in it); ``false_slash`` = F − P(Bin(W, p_h) < ⌈θW⌉) in F and θ;
    ``miss[j]`` in M, θ, a_j; ``capture`` in its target and ρ (P(Bin(N, ρ) ≥ K) grows with
    ρ); ``collusion`` = CoC − (1 + γ)·PfC in γ, V, L, θ. Dimensions a margin does not read
    (e.g. the network's size for ``ic``) are constant, hence monotone. Honest accuracy a,
    correlation κ, committee size and threshold, the window and m are not covered (honest
    agreement is not monotone in a: an all-wrong committee also agrees): undecided unless
    a vertex or a seeded random point fails.

Both results are frozen records with provenance, ``to_dict()`` (JSON-ready, for
``deployment.export``), ``to_frame()`` (pandas) and a readable ``__str__``.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np
import pandas as pd
import sympy as sp
from scipy import optimize

from mira_theory import __version__
from mira_theory.results import Provenance, fmt, jsonable, render_table
from mira_theory.scenario import CHECKS, Scenario, ScenarioError, field_spec

INF = math.inf
Interval = tuple[float, float]

# --------------------------------------------------------------------------------------
# Interval arithmetic over sympy expression trees (outward rounded)
# --------------------------------------------------------------------------------------


class Unsupported(ValueError):
    """The expression holds a node the interval evaluator does not bound."""


ENTIRE: Interval = (-INF, INF)


def _down(x: float, ulps: int = 1) -> float:
    for _ in range(ulps):
        x = math.nextafter(x, -INF)
    return x


def _up(x: float, ulps: int = 1) -> float:
    for _ in range(ulps):
        x = math.nextafter(x, INF)
    return x


def _const(value: Any) -> Interval:
    """An interval holding an exact sympy number (integers and rationals exactly)."""
    if isinstance(value, sp.Integer) or isinstance(value, int):
        v = int(value)
        f = float(v)
        return (f, f) if Fraction(f) == v else (_down(f), _up(f))
    if isinstance(value, sp.Rational | Fraction):
        fr = Fraction(int(value.p), int(value.q)) if isinstance(value, sp.Rational) else value
        f = float(fr)
        return (f, f) if Fraction(f) == fr else (_down(f), _up(f))
    if isinstance(value, sp.Float):
        fr = Fraction(str(value))
        f = float(fr)
        return (f, f) if Fraction(f) == fr else (_down(f), _up(f))
    if isinstance(value, float):
        return (value, value)
    f = float(sp.N(value, 30))
    return (_down(f, 2), _up(f, 2))


def _clean(iv: Interval) -> Interval:
    lo, hi = iv
    if math.isnan(lo) or math.isnan(hi):
        return ENTIRE
    return iv


def _sum(a: float, b: float, up: bool) -> float:
    """a + b rounded outward unless exact (TwoSum error term zero)."""
    s = a + b
    if not math.isfinite(s):
        return s
    bb = s - a
    err = (a - (s - bb)) + (b - bb)
    if err == 0:
        return s
    return _up(s) if up else _down(s)


def iv_add(a: Interval, b: Interval) -> Interval:
    return _clean((_sum(a[0], b[0], False), _sum(a[1], b[1], True)))


def _mul1(x: float, y: float) -> float:
    return 0.0 if x == 0.0 or y == 0.0 else x * y  # the points are finite reals: 0·∞ means 0


def iv_mul(a: Interval, b: Interval) -> Interval:
    p = [(_mul1(x, y), x == 0.0 or y == 0.0 or abs(x) == 1.0 or abs(y) == 1.0) for x in a for y in b]
    if any(math.isnan(v) for v, _ in p):
        return ENTIRE
    return (min(v if exact else _down(v) for v, exact in p), max(v if exact else _up(v) for v, exact in p))


def iv_recip(a: Interval) -> Interval:
    lo, hi = a
    if lo > 0 or hi < 0:
        return _down(1.0 / hi) if math.isfinite(hi) else 0.0, _up(1.0 / lo) if math.isfinite(lo) else 0.0
    if lo == 0 and hi > 0:
        return (_down(1.0 / hi) if math.isfinite(hi) else 0.0, INF)
    if hi == 0 and lo < 0:
        return (-INF, _up(1.0 / lo) if math.isfinite(lo) else 0.0)
    return ENTIRE


def _pow_nonneg_int(x: float, k: int, up: bool) -> float:
    """x**k for x ≥ 0 by square-and-multiply, rounded in one direction at every step."""
    step = _up if up else _down
    result, base = 1.0, x
    while k:
        if k & 1:
            result = _step_prod(result, base, step)
        k >>= 1
        if k:
            base = _step_prod(base, base, step)
    return result


def _step_prod(x: float, y: float, step: Callable[[float], float]) -> float:
    if x == 0.0 or y == 0.0 or x == 1.0 or y == 1.0:
        return x * y  # exact
    return max(0.0, step(x * y))


def iv_pow_int(a: Interval, k: int) -> Interval:
    if k == 0:
        return (1.0, 1.0)
    if k < 0:
        return iv_recip(iv_pow_int(a, -k))
    lo, hi = a
    if lo >= 0:
        return _pow_nonneg_int(lo, k, False), _pow_nonneg_int(hi, k, True)
    if hi <= 0:
        mag = (_pow_nonneg_int(-hi, k, False), _pow_nonneg_int(-lo, k, True))
        return mag if k % 2 == 0 else (-mag[1], -mag[0])
    top = max(-lo, hi)
    if k % 2 == 0:
        return 0.0, _pow_nonneg_int(top, k, True)
    return -_pow_nonneg_int(-lo, k, True), _pow_nonneg_int(hi, k, True)


def _fpow(x: float, y: float) -> float:
    if x == 0.0:
        return 1.0 if y == 0 else (0.0 if y > 0 else INF)
    try:
        return math.pow(x, y)
    except OverflowError:
        return INF


def iv_pow(a: Interval, b: Interval) -> Interval:
    """x**y for x ≥ 0: monotone in x for fixed y and in y for fixed x, so extreme at corners."""
    if a[0] < 0:
        return ENTIRE
    vals = [_fpow(x, y) for x in a for y in b]
    if any(math.isnan(v) for v in vals):
        return ENTIRE
    return max(0.0, min(_down(v, 4) for v in vals)), max(_up(v, 4) for v in vals)


def iv_exp(a: Interval) -> Interval:
    def e(x: float) -> float:
        try:
            return math.exp(x)
        except OverflowError:
            return INF
    return max(0.0, _down(e(a[0]), 4)), _up(e(a[1]), 4)


def iv_log(a: Interval) -> Interval:
    lo, hi = a
    if hi < 0:
        return ENTIRE
    return (_down(math.log(lo), 4) if lo > 0 else -INF), (_up(math.log(hi), 4) if hi > 0 else -INF)


def compile_interval(expr: sp.Expr) -> Callable[[Mapping[sp.Symbol, Interval]], Interval]:
    """A function env -> interval enclosing expr over every point of the box ``env``
    (symbol -> (low, high)). Raises :class:`Unsupported` at compile time for unknown nodes."""
    if expr.is_Symbol:
        return lambda env: env[expr]
    if expr.is_Number or isinstance(expr, sp.NumberSymbol):
        if expr in (sp.zoo, sp.nan, sp.oo, -sp.oo):
            raise Unsupported(f"non-finite constant {expr}")
        c = _const(expr)
        return lambda env: c
    args = [compile_interval(a) for a in expr.args] if not isinstance(expr, sp.Piecewise) else []
    if isinstance(expr, sp.Add):
        def add(env):
            out = (0.0, 0.0)
            for f in args:
                out = iv_add(out, f(env))
            return out
        return add
    if isinstance(expr, sp.Mul):
        def mul(env):
            out = (1.0, 1.0)
            for f in args:
                out = iv_mul(out, f(env))
            return out
        return mul
    if isinstance(expr, sp.Pow):
        base, ex = args
        e = expr.exp
        if e.is_Integer:
            k = int(e)
            return lambda env: iv_pow_int(base(env), k)
        if e.is_Rational:
            ev = _const(e)
            return lambda env: iv_pow(base(env), ev)
        return lambda env: iv_pow(base(env), ex(env))
    if isinstance(expr, sp.exp):
        return lambda env: iv_exp(args[0](env))
    if isinstance(expr, sp.log) and len(args) == 1:
        return lambda env: iv_log(args[0](env))
    if isinstance(expr, sp.Abs):
        def ab(env):
            lo, hi = args[0](env)
            if lo >= 0:
                return lo, hi
            if hi <= 0:
                return -hi, -lo
            return 0.0, max(-lo, hi)
        return ab
    if isinstance(expr, sp.Max | sp.Min):
        pick = max if isinstance(expr, sp.Max) else min

        def mm(env):
            ivs = [f(env) for f in args]
            return pick(i[0] for i in ivs), pick(i[1] for i in ivs)
        return mm
    if isinstance(expr, sp.Piecewise):  # the hull of every branch: sound whatever the conditions
        branches = [compile_interval(e) for e, _ in expr.args]

        def pw(env):
            ivs = [f(env) for f in branches]
            return min(i[0] for i in ivs), max(i[1] for i in ivs)
        return pw
    raise Unsupported(f"no interval rule for {type(expr).__name__}: {expr}")


def interval(expr: sp.Expr, env: Mapping[sp.Symbol, Interval | float]) -> Interval:
    """Enclosure of ``expr`` over the box ``env`` (a number stands for a point)."""
    box = {s: (v, v) if not isinstance(v, tuple) else v for s, v in env.items()}
    box = {s: (float(a), float(b)) for s, (a, b) in box.items()}
    return compile_interval(expr)(box)


def exact_value(expr: sp.Expr, point: Mapping[sp.Symbol, float]) -> float | None:
    """expr at a point of floats, evaluated in exact rational arithmetic (None if undefined).

    The float returned has the exact value's sign (0 only when the exact value is 0)."""
    val = expr.xreplace({s: sp.Rational(Fraction(float(v))) for s, v in point.items()})
    if val.has(sp.zoo, sp.nan, sp.oo, -sp.oo) or not val.is_number:
        return None
    if val.is_Rational:
        f = float(val)
        if f == 0 and val != 0:
            return math.copysign(5e-324, float(val.p))
        return f
    num = val.evalf(60)
    if not num.is_real:
        return None
    f = float(num)
    if f == 0 and num != 0:
        return math.copysign(5e-324, float(sp.sign(num)))
    return f


# --------------------------------------------------------------------------------------
# Scenario parameters: domains and the fast margins of each game
# --------------------------------------------------------------------------------------


def _domain(scenario: Scenario, path: str) -> tuple[float, float, bool, str]:
    """(low, high, integer, description) of a numeric key's valid values."""
    found = field_spec(type(scenario), scenario.raw(), path)
    if found is None:
        raise ScenarioError([_problem(scenario, path)])
    tp, f = found
    check = f.metadata["check"]
    lows = {"probability": (0.0, 1.0), "nonnegative": (0.0, INF), "positive": (0.0, INF),
            "positive_int": (1.0, INF), "count_1e4": (1.0, 1e4), "count_1e5": (1.0, 1e5),
            "count_1e7": (1.0, 1e7), "at_least_2": (2.0, INF), "open_probability": (0.0, 1.0)}
    lo, hi = lows.get(check, (-INF, INF))
    return lo, hi, tp is int, CHECKS[check][0]


def _problem(scenario: Scenario, path: str):
    from mira_theory.scenario import Problem, _suggest

    valid = scenario.replace({}).parameter_paths()
    return Problem(scenario.path or scenario.name, path, "a numeric scenario key path (one of "
                   f"{', '.join(valid)})", f"{path!r}{_suggest(path, valid)}")


def _normalise(scenario: Scenario, path: str) -> str:
    """``deviation.0.cost`` -> ``deviation.<name>.cost`` (one name per parameter)."""
    parts = path.split(".")
    if len(parts) == 3 and parts[1].isdigit():
        tables = scenario.raw().get(parts[0], [])
        i = int(parts[1])
        if i < len(tables) and isinstance(tables[i], dict) and "name" in tables[i]:
            return f"{parts[0]}.{tables[i]['name']}.{parts[2]}"
    return path


def _value(scenario: Scenario, path: str) -> float:
    node: Any = scenario.replace({}).raw()
    for part in path.split("."):
        if isinstance(node, list):
            names = [t.get("name") for t in node]
            node = node[names.index(part)] if part in names else node[int(part)]
        else:
            node = node[part]
    return float(node)


def _deployment_paths(game: str) -> set[str]:
    from mira_theory.deployment import PARAMETERS

    return {key for key, _, _ in PARAMETERS.get(game, {}).values()}


def _solve_margins(scenario: Scenario, point: Mapping[str, float]) -> dict[str, Any]:
    """The authoritative margins: ``solve(scenario.replace(point))`` (Margin objects)."""
    from mira_theory.api import solve

    changes = {p: (int(round(v)) if _domain(scenario, p)[2] else float(v)) for p, v in point.items()}
    sol = solve(scenario.replace(changes) if changes else scenario)
    return {m.name: m for m in sol.margins}


class _AuditModel:
    """Audit margins at a point, from ``audit.closed_form`` and ``audit.episode_margin``
    (tested equal to ``audit.solve``'s margins), and their sympy forms."""

    EXPRESSIONS = {"ic": "ic_margin", "stake": "stake_margin", "participation": "participation_margin"}
    # closed-form arguments that the episode margin does not read
    EPISODE_FREE = {"damage", "audit_cost", "bounty_share", "capital_cost"}

    def __init__(self, scenario: Scenario):
        from mira_theory.games import audit

        self.audit = audit
        self.scenario = scenario
        self.devs = [d.name for d in scenario.deviations]
        self.base = {d.name: audit.arguments(scenario, d) for d in scenario.deviations}
        self.arg_of: dict[str, tuple[str, str | None]] = {}
        for arg, (_, path) in audit.PARAMETERS.items():
            if path.startswith("deviation."):
                field_ = path.split(".")[-1]
                for name in self.devs:
                    self.arg_of[f"deviation.{name}.{field_}"] = (arg, name)
            else:
                self.arg_of[path] = (arg, None)
        self.names = ([f"ic[{j}]" for j in self.devs]
                      + [x for j in self.devs for x in (f"stake[{j}]", f"episode[{j}]")] + ["participation"])

    def affects(self, path: str) -> bool:
        return path in self.arg_of

    def args(self, dev: str, point: Mapping[str, float]) -> dict[str, float]:
        out = dict(self.base[dev])
        for path, v in point.items():
            arg, owner = self.arg_of.get(path, (None, None))
            if arg is not None and owner in (None, dev):
                out[arg] = int(round(v)) if arg == "verifiers" else float(v)
        return out

    @staticmethod
    def split(name: str) -> tuple[str, str | None]:
        if "[" in name:
            kind, dev = name[:-1].split("[", 1)
            return kind, dev
        return name, None

    def margins(self, point: Mapping[str, float]) -> dict[str, float]:
        out: dict[str, float] = {}
        with np.errstate(all="ignore"):
            for j in self.devs:
                args = self.args(j, point)
                cf = self.audit.closed_form(**args)
                out[f"ic[{j}]"] = float(cf["ic_margin"])
                out[f"stake[{j}]"] = float(cf["stake_margin"])
                out[f"episode[{j}]"] = float(self.audit.episode_margin(args))
            cf = self.audit.closed_form(**self.args(self.devs[0], point))
            out["participation"] = float(cf["participation_margin"])
        return {n: out[n] for n in self.names}

    def expression(self, name: str) -> sp.Expr | None:
        kind, _ = self.split(name)
        return self.audit.derived(self.EXPRESSIONS[kind]).expr if kind in self.EXPRESSIONS else None

    def symbol(self, path: str) -> sp.Symbol:
        return self.audit.symbols()[self.arg_of[path][0]]

    def owner(self, name: str) -> str:
        _, dev = self.split(name)
        return dev or self.devs[0]

    def relevant(self, name: str, path: str) -> bool:
        """Whether ``path`` moves an argument of constraint ``name``."""
        if path not in self.arg_of:
            return False
        arg, owner = self.arg_of[path]
        kind, dev = self.split(name)
        if owner is not None and owner != dev:
            return False
        expr = self.expression(name)
        if expr is not None:
            return self.audit.symbols()[arg] in expr.free_symbols
        return arg not in self.EPISODE_FREE

    def nominal_env(self, name: str) -> dict[sp.Symbol, float]:
        s = self.audit.symbols()
        return {s[a]: float(v) for a, v in self.base[self.owner(name)].items()}


class _ConsensusModel:
    """Consensus margins at a point: ``consensus.solve(scenario.replace(point))``."""

    def __init__(self, scenario: Scenario):
        self.scenario = scenario
        self.devs = [d.name for d in scenario.deviations]
        self.names = list(_solve_margins(scenario, {}))
        self.cache: dict[tuple, dict[str, float] | None] = {}

    def margins(self, point: Mapping[str, float]) -> dict[str, float]:
        key = tuple(sorted(point.items()))
        if key not in self.cache:
            try:
                self.cache[key] = {n: m.value for n, m in _solve_margins(self.scenario, point).items()}
            except ScenarioError:
                self.cache[key] = None
        got = self.cache[key]
        if got is None:
            raise ScenarioError([])
        return got

    # margin kind -> scenario keys (deviation keys as "deviation.*.<field>", meaning the
    # constraint's own deviation) in which the margin is monotone or constant, by the
    # model's structure (see the module docstring, method (d))
    READS = {
        "ic": {"verifier.cost", "deviation.*.cost", "committee.reward", "slashing.slash",
               "deviation.*.accuracy"},
        "false_slash": {"slashing.max_false_slash", "slashing.agreement_threshold"},
        "miss": {"slashing.max_miss", "slashing.agreement_threshold", "deviation.*.accuracy"},
        "capture": {"network.max_capture", "network.adversary_stake_share"},
        "collusion": {"network.security_margin", "claim.value_at_risk", "slashing.slash",
                      "slashing.agreement_threshold"},
    }
    # keys each margin reads at all (anything else leaves it constant)
    DEPENDS = {
        "ic": {"verifier.cost", "verifier.accuracy", "verifier.error_correlation", "deviation.*.cost",
               "deviation.*.accuracy", "committee.reward", "committee.size", "committee.threshold",
               "claim.options", "slashing.slash", "slashing.window", "slashing.agreement_threshold"},
        "false_slash": {"slashing.max_false_slash", "slashing.agreement_threshold", "slashing.window",
                        "verifier.accuracy", "verifier.error_correlation", "committee.size",
                        "committee.threshold", "claim.options"},
        "miss": {"slashing.max_miss", "slashing.agreement_threshold", "slashing.window",
                 "verifier.accuracy", "verifier.error_correlation", "committee.size",
                 "committee.threshold", "claim.options", "deviation.*.accuracy"},
        "capture": {"network.max_capture", "network.adversary_stake_share", "committee.size",
                    "committee.threshold"},
        "collusion": {"network.security_margin", "claim.value_at_risk", "slashing.slash",
                      "slashing.agreement_threshold", "slashing.window", "network.nodes",
                      "network.adversary_stake_share", "committee.size", "committee.threshold"},
    }

    @staticmethod
    def _generic(name: str, path: str) -> str | None:
        kind, _, dev = name.partition("[")
        dev = dev.rstrip("]")
        parts = path.split(".")
        if parts[0] == "deviation" and len(parts) == 3:
            return f"deviation.*.{parts[2]}" if parts[1] == dev else None
        return path

    def monotone(self, name: str, path: str) -> bool:
        kind = name.partition("[")[0]
        g = self._generic(name, path)
        return g is None or g in self.READS.get(kind, set()) or g not in self.DEPENDS.get(kind, {g})


def _model(scenario: Scenario):
    if scenario.game == "audit":
        return _AuditModel(scenario)
    if scenario.game == "consensus":
        return _ConsensusModel(scenario)
    raise ValueError(f"certify: no model for game {scenario.game!r}")


def _holds(value: float) -> bool:
    if not math.isfinite(value):
        return bool(value > 0)
    return bool(value >= -1e-12 * max(1.0, abs(value)))


# --------------------------------------------------------------------------------------
# Robustness intervals
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RobustnessRow:
    parameter: str
    value: float
    low: float  # nan when a constraint fails at the value in force
    high: float
    low_limit: str  # the constraint that fails just below ``low`` (or "domain ...", "scan limit")
    high_limit: str
    method: str

    def describe(self) -> str:
        if math.isnan(self.low):
            return f"{self.parameter}: fails at the value in force ({self.low_limit})"
        parts = []
        if not self.low_limit.startswith("domain"):
            parts.append(f"{self.parameter} ≥ {self.low:.6g} ({self.low_limit})")
        if not self.high_limit.startswith("domain"):
            parts.append(f"{self.parameter} ≤ {self.high:.6g} ({self.high_limit})")
        return "; ".join(parts) if parts else f"{self.parameter}: holds over its whole domain"

    def to_dict(self) -> dict[str, Any]:
        return jsonable({"parameter": self.parameter, "value": self.value, "low": self.low,
                         "high": self.high, "low_limit": self.low_limit, "high_limit": self.high_limit,
                         "method": self.method, "statement": self.describe()})


@dataclass(frozen=True)
class Robustness(Provenance):
    """Per parameter, the interval around the value in force where every constraint holds."""

    scenario: Scenario
    rows: tuple[RobustnessRow, ...]
    method: str = ("one parameter at a time, others at their values in force; exact roots of "
                   "sympy-derived margins, monotone bisection or scan + Brent for the others")
    toolkit_version: str = __version__

    @property
    def game(self) -> str:
        return self.scenario.game

    def row(self, parameter: str) -> RobustnessRow:
        return next(r for r in self.rows if r.parameter == parameter)

    def to_dict(self) -> dict[str, Any]:
        return {**self.provenance(), "parameters": [r.to_dict() for r in self.rows]}

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([{k: getattr(r, k) for k in ("parameter", "value", "low", "high", "low_limit",
                                                         "high_limit", "method")} for r in self.rows]
                            ).set_index("parameter")

    def __str__(self) -> str:
        rows = [(r.parameter, fmt(r.value), fmt(r.low), fmt(r.high), r.low_limit, r.high_limit)
                for r in self.rows]
        head = f"robustness of {self.scenario.name}: every constraint holds on [low, high]"
        return "\n".join([head, render_table(rows, ("parameter", "value", "low", "high", "limited below by",
                                                    "limited above by"))])


def _poly_roots(expr: sp.Expr, x: sp.Symbol, lo: float, hi: float) -> list[float] | None:
    """Real roots in (lo, hi) of the numerator and denominator of a univariate rational expr."""
    num, den = sp.together(expr).as_numer_denom()
    out: list[float] = []
    for part in (num, den):
        if not part.has(x):
            continue
        try:
            poly = sp.Poly(sp.expand(part), x)
        except sp.PolynomialError:
            return None
        if not poly.is_univariate or any(not c.is_Rational for c in poly.all_coeffs()):
            return None
        for r in poly.real_roots():
            v = float(r.evalf(30))
            if lo < v < hi:
                out.append(v)
    return sorted(set(out))


def _first_failure_symbolic(model: _AuditModel, name: str, path: str, v0: float, lo: float, hi: float,
                            upward: bool) -> tuple[float, str] | None:
    """Exact end of constraint ``name`` along ``path`` (None: no sympy form usable)."""
    expr = model.expression(name)
    if expr is None:
        return None
    x = model.symbol(path)
    if x not in expr.free_symbols:
        return (hi if upward else lo), "domain"
    env = model.nominal_env(name)
    env.pop(x)
    uni = expr.xreplace({s: sp.Rational(Fraction(v)) for s, v in env.items()})
    roots = _poly_roots(uni, x, lo, hi)
    if roots is None:
        return None

    def value(t: float) -> float:
        return model.margins({path: t})[name]

    ends = [r for r in roots if (r > v0 if upward else r < v0)]
    ends = ends if upward else ends[::-1]
    prev = v0
    for r in ends:
        mid = 0.5 * (prev + r)
        if not _holds(value(mid)):
            return prev, "root"
        if not _holds(value(r)):
            return r, "root"
        prev = r
    far = hi if upward else lo
    if math.isfinite(far):
        if not _holds(value(0.5 * (prev + far))):
            return prev, "root"
        return far, "domain"
    probe = prev + (1.0 if upward else -1.0) * max(abs(prev), 1.0)
    if not _holds(value(probe)):
        return prev, "root"
    return far, "domain"


def _bracket_end(f: Callable[[float], float | None], a: float, b: float, exact: bool) -> float:
    """The crossing between a (holds) and b (fails): Brent on the margin where both ends are
    finite, bisection on the holds/fails predicate otherwise (or when ``exact``)."""
    fa, fb = f(a), f(b)
    if not exact and fa is not None and fb is not None and math.isfinite(fa) and math.isfinite(fb) \
            and fa > 0 > fb:
        xtol = 1e-12 * max(1.0, abs(a), abs(b))
        try:
            root = float(optimize.brentq(lambda t: f(t) if f(t) is not None else -1e300, a, b,
                                         xtol=xtol, rtol=4 * np.finfo(float).eps))
        except (ValueError, RuntimeError):
            root = None
        if root is not None:  # return a point that holds, within a few tolerances of the crossing
            step = xtol
            direction = 1.0 if b > a else -1.0
            t = root
            for _ in range(40):
                ft = f(t)
                if ft is not None and _holds(ft) and (t - a) * direction >= 0:
                    return t
                t, step = root - direction * step, step * 2
                if (t - a) * direction <= 0:
                    break
    for _ in range(200):
        m = 0.5 * (a + b)
        if m in (a, b):
            break
        fm = f(m)
        if fm is not None and _holds(fm):
            a = m
        else:
            b = m
    return a


@functools.cache
def _episode_conditions() -> dict[str, sp.Expr]:
    """Sympy forms (from ``audit.derivation``, factored so that interval bounds keep their
    sign) of the quantities whose sign the episode lemmas need."""
    from mira_theory.games import audit

    s = audit.symbols()
    d = audit.derived("detection_per_task").expr
    f = audit.derived("false_slash_per_task").expr
    LR = s["slash"] + s["reward"]
    rate = sp.factor(f * LR - d * s["reward"])
    return {"d": d, "f": f, "f_minus_d": sp.factor(f - d), "rate": rate,
            "saving": s["cost_honest"] - s["deviation_cost"],
            "net": s["cost_honest"] - s["deviation_cost"] + rate}


def _episode_direction(model: _AuditModel, dev: str, box: Mapping[str, Interval], path: str) -> int | None:
    """+1 nondecreasing, −1 nonincreasing, 0 constant, None unknown: the episode margin of
    ``dev`` along ``path`` over ``box`` (every key of box, others nominal), lemmas 2–7."""
    if not model.relevant(f"episode[{dev}]", path):
        return 0
    arg = model.arg_of[path][0]
    fixed = {"cost_honest": -1, "deviation_cost": 1, "total_stake": 1, "false_alarm_rate": -1}
    if arg in fixed:
        return fixed[arg]
    env = _episode_env(model, dev, box)
    c = _episode_conditions()

    def sup(name: str) -> float:
        return interval(c[name], env)[1]

    if arg in ("throughput", "settlement_latency"):
        return 1 if sup("net") <= 0 else None  # lemma 7: G(m) has slope net; else a case split on m
    if arg == "slash":
        return 1 if sup("f") <= 0 else None
    if interval(c["d"], env)[0] <= 0:
        return None
    if arg == "reward":
        return 1 if sup("f_minus_d") <= 0 else None
    if interval(c["saving"], env)[0] < 0:
        return None
    if arg in ("divergence", "miss_rate"):
        return 1 if arg == "divergence" else -1
    if arg in ("sampling_rate", "collusion", "verifiers"):
        if _m_range(model, dev, box)[1] == 0 or sup("rate") <= 0:
            return {"sampling_rate": 1, "verifiers": 1, "collusion": -1}[arg]
    return None


def _episode_env(model: _AuditModel, dev: str, box: Mapping[str, Interval]) -> dict[sp.Symbol, Interval]:
    env = {k: (v, v) for k, v in model.nominal_env(f"episode[{dev}]").items()}
    for path, iv in box.items():
        if model.relevant(f"episode[{dev}]", path):
            env[model.symbol(path)] = iv
    return env


def _m_range(model: _AuditModel, dev: str, box: Mapping[str, Interval]) -> tuple[int, int]:
    a = model.base[dev]
    lam = box.get("stake.throughput", (a["throughput"],) * 2)
    T = box.get("stake.settlement_latency", (a["settlement_latency"],) * 2)
    return int(round(lam[0] * T[0])), int(round(lam[1] * T[1]))


def _scan_side(values: Callable[[float], dict[str, float] | None], names: Sequence[str], v0: float,
               far: float, integer: bool, points: int, direction: int) -> tuple[float, str, str]:
    """Walk from v0 towards ``far``; (end, limiting constraint, method)."""
    limit = far if math.isfinite(far) else v0 + direction * 1e3 * max(abs(v0), 1.0)
    if integer:
        grid = []
        k, step = 1, 1
        while True:
            t = v0 + direction * k
            if (t - limit) * direction > 0:
                break
            grid.append(float(t))
            k += step
            if k > 32:
                step *= 2
        if not grid or grid[-1] != limit and (limit - v0) * direction >= 1:
            grid.append(float(math.floor(limit) if direction > 0 else math.ceil(limit)))
    elif math.isfinite(far):
        grid = list(np.linspace(v0, limit, points + 1)[1:])
    else:
        scale = max(abs(v0), 1.0)
        grid = [v0 + direction * scale * 10 ** (-3 + 6 * i / points) for i in range(points + 1)]
    prev = v0
    for t in grid:
        got = values(t)
        failing = [n for n in names if got is None or not _holds(got[n])]
        if not failing:
            prev = t
            continue
        if got is None:
            def valid(u: float) -> float | None:
                r = values(u)
                return 1.0 if r is not None else None
            if integer:
                return prev, "invalid scenario beyond", "integer scan"
            return _bracket_end(valid, prev, t, True), "invalid scenario beyond", "scan + bisection"
        best, who = t, failing[0]
        for n in failing:
            if integer:
                end = prev
            else:
                def one(u: float, n: str = n) -> float | None:
                    r = values(u)
                    return None if r is None else r[n]
                end = _bracket_end(one, prev, t, False)
            if (end - best) * direction < 0 or best == t:
                best, who = end, n
        return best, who, "integer scan" if integer else "scan + Brent"
    if math.isfinite(far):
        return far, "domain", "scan"
    return limit, "scan limit (no failure found up to here)", "scan"


def robustness(scenario: Scenario, parameters: Iterable[str] | None = None,
               scan_points: int | None = None, constraints: Iterable[str] | None = None) -> Robustness:
    """For each parameter (default: every numeric key except the deployment parameters and,
    for audit, the provider types, which ``solve`` does not read), the interval around the
    value in force over which every constraint of ``solve`` (or those named in
    ``constraints``) keeps holding."""
    model = _model(scenario)
    names = list(model.names) if constraints is None else list(constraints)
    unknown = [n for n in names if n not in model.names]
    if unknown:
        raise ValueError(f"unknown constraints {unknown}; the scenario's are {model.names}")
    if parameters is None:
        skip = _deployment_paths(scenario.game)
        parameters = [p for p in scenario.replace({}).parameter_paths()
                      if p not in skip and not p.startswith("provider_type.")]
    points = scan_points or (60 if scenario.game == "audit" else 10)
    rows = []
    for raw_path in parameters:
        path = _normalise(scenario, raw_path)
        dlo, dhi, integer, rule = _domain(scenario, path)  # an unknown key path: ScenarioError
        v0 = _value(scenario, path)
        at0 = model.margins({})
        failing = [n for n in names if not _holds(at0[n])]
        if failing:
            rows.append(RobustnessRow(path, v0, math.nan, math.nan, ", ".join(failing), ", ".join(failing),
                                      "fails at the value in force"))
            continue

        def values(t: float, path: str = path) -> dict[str, float] | None:
            try:
                return model.margins({path: t})
            except ScenarioError:
                return None

        ends = []
        methods = set()
        for direction in (-1, 1):
            far = dlo if direction < 0 else dhi
            best, who = far, f"domain ({rule})"
            if (far - v0) * direction <= 0:
                ends.append((v0, who))
                continue
            scanned = list(names)
            if isinstance(model, _AuditModel):
                scanned = []
                for n in names:
                    if not model.relevant(n, path):
                        continue
                    got = None if integer else _first_failure_symbolic(
                        model, n, path, v0, dlo, dhi, direction > 0)
                    if got is not None:
                        methods.add("exact roots")
                        end, how = got
                        if how != "domain" and (end - best) * direction < 0:
                            best, who = end, n
                        continue
                    kind, dev = model.split(n)
                    if kind == "episode" and not integer and path not in ("stake.throughput",
                                                                          "stake.settlement_latency"):
                        side = (min(v0, far), max(v0, far))
                        dirn = _episode_direction(model, dev, {path: side}, path)
                        if dirn is not None:
                            methods.add("monotone bisection")
                            if dirn * direction >= 0:
                                continue  # the margin does not fall along this side
                            end, who_ = _monotone_end(values, n, v0, far, direction)
                            if (end - best) * direction < 0:
                                best, who = end, who_
                            continue
                    scanned.append(n)
            if scanned:
                end, who_, how = _scan_side(values, scanned, v0, far, integer, points, direction)
                methods.add(how)
                if (end - best) * direction < 0 or (who_.startswith("scan limit") and best == far):
                    best, who = end, who_
            ends.append((best, who))
        (low, low_by), (high, high_by) = ends
        rows.append(RobustnessRow(path, v0, low, high, low_by, high_by, ", ".join(sorted(methods)) or "none"))
    return Robustness(scenario, tuple(rows))


def _monotone_end(values: Callable[[float], dict[str, float] | None], name: str, v0: float, far: float,
                  direction: int) -> tuple[float, str]:
    """The single crossing of a margin monotone along the side (falling towards ``far``)."""
    def val(t: float) -> float | None:
        r = values(t)
        return None if r is None else r[name]

    if math.isfinite(far):
        fv = val(far)
        if fv is not None and _holds(fv):
            return far, "domain"
        return _bracket_end(val, v0, far, True), name
    step = max(abs(v0), 1.0)
    prev = v0
    for _ in range(60):
        t = prev + direction * step
        fv = val(t)
        if fv is None or not _holds(fv):
            return _bracket_end(val, prev, t, True), name
        prev, step = t, step * 2
    return prev, "scan limit (no failure found up to here)"


# --------------------------------------------------------------------------------------
# Range certificates
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConstraintCertificate:
    constraint: str
    status: str  # "proved" | "counterexample" | "undecided"
    method: str
    worst_point: Mapping[str, float] | None  # a point of the box (the counterexample, or the minimiser)
    worst_margin: float | None  # the margin there (exact where stated)
    argument: str
    evaluations: int = 0

    def to_dict(self) -> dict[str, Any]:
        return jsonable({"constraint": self.constraint, "status": self.status, "method": self.method,
                         "worst_point": dict(self.worst_point) if self.worst_point is not None else None,
                         "worst_margin": self.worst_margin, "argument": self.argument,
                         "evaluations": self.evaluations})


@dataclass(frozen=True)
class Certificate(Provenance):
    """Per constraint: proved over the box, refuted by a point of it, or undecided."""

    scenario: Scenario
    box: Mapping[str, Interval]
    constraints: tuple[ConstraintCertificate, ...]
    method: str = ("monotonicity (interval-bounded sympy derivatives, hand lemmas) with exact corner "
                   "evaluation; interval branch and bound; counterexamples re-solved")
    toolkit_version: str = __version__
    elapsed: float = field(default=0.0, compare=False)

    @property
    def game(self) -> str:
        return self.scenario.game

    @property
    def holds(self) -> bool | None:
        """True: every constraint proved; False: some counterexample; None: undecided."""
        statuses = {c.status for c in self.constraints}
        if "counterexample" in statuses:
            return False
        return True if statuses <= {"proved"} else None

    def constraint(self, name: str) -> ConstraintCertificate:
        return next(c for c in self.constraints if c.constraint == name)

    def to_dict(self) -> dict[str, Any]:
        return {**self.provenance(), "box": {k: list(v) for k, v in self.box.items()},
                "holds": self.holds, "constraints": [c.to_dict() for c in self.constraints]}

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([{"constraint": c.constraint, "status": c.status, "method": c.method,
                              "worst_margin": c.worst_margin, "worst_point": c.worst_point,
                              "argument": c.argument} for c in self.constraints]).set_index("constraint")

    def __str__(self) -> str:
        box = [(k, fmt(lo), fmt(hi)) for k, (lo, hi) in self.box.items()]
        rows = [(c.constraint, c.status, c.method, fmt(c.worst_margin),
                 ", ".join(f"{k}={fmt(v)}" for k, v in (c.worst_point or {}).items())) for c in self.constraints]
        verdict = {True: "every constraint proved over the box", False: "a constraint fails in the box",
                   None: "not every constraint could be decided"}[self.holds]
        parts = [f"range certificate of {self.scenario.name}: {verdict}", "",
                 render_table(box, ("uncertain parameter", "low", "high")) if box else "(no uncertainty: the "
                 "box is the point in force)", "",
                 render_table(rows, ("constraint", "status", "method", "worst margin", "at")), ""]
        parts += [f"- {c.constraint}: {c.argument}" for c in self.constraints]
        return "\n".join(parts)


class _Budget:
    def __init__(self, max_boxes: int, seconds: float):
        self.max_boxes = max_boxes
        self.deadline = time.monotonic() + seconds

    def over(self, used: int) -> bool:
        return used >= self.max_boxes or time.monotonic() > self.deadline


def _confirm(scenario: Scenario, name: str, point: Mapping[str, float]) -> float | None:
    """The margin re-solved by ``solve(scenario.replace(point))`` if it fails there, else None."""
    try:
        m = _solve_margins(scenario, point)[name]
    except ScenarioError:
        return None
    return None if m.holds else m.value


def _fmt_point(point: Mapping[str, float]) -> str:
    return ", ".join(f"{k} = {v:.6g}" for k, v in point.items()) or "the values in force"


def _corners(box: Mapping[str, Interval], limit: int = 256) -> list[dict[str, float]]:
    keys = list(box)
    if 2 ** len(keys) > limit:
        return []
    return [dict(zip(keys, c)) for c in itertools.product(*[sorted(set(box[k])) for k in keys])]


def _sample_points(box: Mapping[str, Interval], integer: Mapping[str, bool], count: int,
                   seed: int = 0) -> list[dict[str, float]]:
    rng = np.random.default_rng(seed)
    pts = [{k: (0.5 * (lo + hi)) for k, (lo, hi) in box.items()}]
    for _ in range(count):
        pts.append({k: float(rng.uniform(lo, hi)) for k, (lo, hi) in box.items()})
    return [{k: (float(round(v)) if integer[k] else v) for k, v in p.items()} for p in pts]


def _search_counterexample(scenario: Scenario, name: str, margins: Callable[[dict], float],
                           box: Mapping[str, Interval], integer: Mapping[str, bool],
                           samples: int) -> tuple[dict | None, float | None, int]:
    """Corners, centre and seeded random points; a failing one is re-solved before it counts."""
    n = 0
    for p in _corners(box) + _sample_points(box, integer, samples):
        n += 1
        try:
            v = margins(p)
        except ScenarioError:
            continue
        if not _holds(v):
            confirmed = _confirm(scenario, name, p)
            if confirmed is not None:
                return p, confirmed, n
    return None, None, n


def _certify_sympy(model: _AuditModel, name: str, box: Mapping[str, Interval], integer: Mapping[str, bool],
                   budget: _Budget) -> ConstraintCertificate:
    expr = model.expression(name)
    dims = [p for p in box if model.relevant(name, p)]
    syms = {p: model.symbol(p) for p in dims}
    const = {s: (v, v) for s, v in model.nominal_env(name).items()}
    f = compile_interval(expr)
    derivs = {p: compile_interval(sp.diff(expr, syms[p])) for p in dims}
    nominal = model.nominal_env(name)

    def env_of(b: Mapping[str, Interval]) -> dict[sp.Symbol, Interval]:
        env = dict(const)
        for p in dims:
            env[syms[p]] = b[p]
        return env

    def collapse(b: dict[str, Interval]) -> tuple[dict[str, Interval], dict[str, int]]:
        env = env_of(b)
        signs = {}
        for p in dims:
            lo, hi = b[p]
            if lo == hi:
                continue
            dl, dh = derivs[p](env)
            if dl >= 0:
                b[p], signs[p] = (lo, lo), 1
            elif dh <= 0:
                b[p], signs[p] = (hi, hi), -1
            else:
                continue
            env[syms[p]] = b[p]
        return b, signs

    def point_of(b: Mapping[str, Interval]) -> dict[str, float]:
        return {p: (float(round(0.5 * (lo + hi))) if integer[p] else 0.5 * (lo + hi)) for p, (lo, hi) in b.items()
                if p in dims}

    def exact(point: Mapping[str, float]) -> float | None:
        env = dict(nominal)
        for p, v in point.items():
            env[syms[p]] = v
        return exact_value(expr, env)

    def fast(point: Mapping[str, float]) -> float:
        return model.margins(point)[name]

    # the stake margin's sympy form has the reported margin's sign where d > 0 (module docstring)
    note = (" The derived form S − E[M]·net is bounded; where net ≤ 0 the reported margin is S ≥ 0."
            if name.startswith("stake[") else "")
    top, signs = collapse({p: box[p] for p in dims})
    evaluations = 0
    if all(lo == hi for lo, hi in top.values()):
        point = {p: lo for p, (lo, _) in top.items()}
        value = exact(point)
        evaluations += 1
        mono = ", ".join(f"{p} {'↑' if s > 0 else '↓'}" for p, s in signs.items())
        why = (f"∂margin/∂p has one sign over the box for every uncertain parameter ({mono or 'none move it'}); "
               f"the worst corner {_fmt_point(point)} gives the exact margin {fmt(value)}.{note}")
        if value is not None and value >= 0:
            return ConstraintCertificate(name, "proved", "monotonicity + exact corner", point, value, why, evaluations)
        failed = _confirm(model.scenario, name, point)
        if failed is not None:
            return ConstraintCertificate(name, "counterexample", "monotonicity + exact corner", point, failed,
                                         why + " Re-solved there: the margin fails.", evaluations)
        return ConstraintCertificate(name, "undecided", "monotonicity + exact corner", point, value,
                                     why + " The solver's tolerance accepts it: not claimed either way.",
                                     evaluations)
    # branch and bound on the dimensions left
    widths = {p: (box[p][1] - box[p][0]) or 1.0 for p in dims}
    counter = itertools.count()
    heap = [(f(env_of(top))[0], next(counter), top)]
    proved = 0
    worst_lb = INF
    worst_point = point_of(top)
    worst_val = fast(worst_point)
    while heap:
        if budget.over(evaluations):
            lb = min(h[0] for h in heap)
            return ConstraintCertificate(
                name, "undecided", "interval branch and bound", worst_point, worst_val,
                f"budget ended after {evaluations} sub-boxes ({proved} proved); the margin's interval lower "
                f"bound over the unproved part is {fmt(lb)} and no point tried fails (smallest margin seen "
                f"{fmt(worst_val)}).{note}", evaluations)
        lb, _, b = heapq.heappop(heap)
        evaluations += 1
        b, _ = collapse(dict(b))
        lb = f(env_of(b))[0]
        worst_lb = min(worst_lb, lb)
        if lb >= 0:
            proved += 1
            continue
        point = point_of(b)
        v = fast(point)
        if v < worst_val:
            worst_val, worst_point = v, point
        if not _holds(v):
            failed = _confirm(model.scenario, name, point)
            if failed is not None:
                return ConstraintCertificate(
                    name, "counterexample", "interval branch and bound", point, failed,
                    f"the sub-box search found {_fmt_point(point)}, where the re-solved margin is {fmt(failed)}.",
                    evaluations)
        if all(lo == hi for lo, hi in b.values()):
            ex = exact(point)
            if ex is not None and ex >= 0:
                proved += 1
                continue
            heap_lb = lb
            return ConstraintCertificate(
                name, "undecided", "interval branch and bound", point, ex,
                f"at {_fmt_point(point)} the exact margin is {fmt(ex)} but the solver's tolerance accepts it "
                f"(interval bound {fmt(heap_lb)}).", evaluations)
        # split the widest dimension (relative to the box)
        p = max((q for q in b if b[q][0] != b[q][1]), key=lambda q: (b[q][1] - b[q][0]) / widths[q])
        lo, hi = b[p]
        if integer[p]:
            mid = math.floor(0.5 * (lo + hi))
            halves = [(lo, float(mid)), (float(mid + 1), hi)]
        else:
            mid = 0.5 * (lo + hi)
            if mid in (lo, hi):  # cannot split further in floating point
                return ConstraintCertificate(
                    name, "undecided", "interval branch and bound", point, worst_val,
                    f"sub-boxes shrank to floating-point width near {_fmt_point(point)} without a proof.",
                    evaluations)
            halves = [(lo, mid), (mid, hi)]
        for h in halves:
            child = dict(b)
            child[p] = h
            heapq.heappush(heap, (f(env_of(child))[0], next(counter), child))
    mono = "; dimensions of one derivative sign collapsed to their worst end" if signs else ""
    return ConstraintCertificate(
        name, "proved", "interval branch and bound", worst_point, worst_val,
        f"{proved} sub-boxes, each with an outward-rounded interval lower bound ≥ 0{mono} "
        f"(smallest margin seen at a sub-box centre {fmt(worst_val)}).{note}", evaluations)


def _lambda_T_for(m: int, lam: Interval, T: Interval) -> tuple[float, float] | None:
    """A point (λ, T) of the box with round(λ·T) = m."""
    for t in np.linspace(0.0, 1.0, 2001):
        a, b = lam[0] + t * (lam[1] - lam[0]), T[0] + t * (T[1] - T[0])
        if int(round(a * b)) == m:
            return float(a), float(b)
    lo_p, hi_p = lam[0] * T[0], lam[1] * T[1]
    target = min(max(float(m), lo_p), hi_p)

    def g(t: float) -> float:
        return (lam[0] + t * (lam[1] - lam[0])) * (T[0] + t * (T[1] - T[0])) - target

    try:
        t = optimize.brentq(g, 0.0, 1.0)
    except ValueError:
        return None
    a, b = lam[0] + t * (lam[1] - lam[0]), T[0] + t * (T[1] - T[0])
    return (float(a), float(b)) if int(round(a * b)) == m else None


def _certify_episode(model: _AuditModel, name: str, box: Mapping[str, Interval], integer: Mapping[str, bool],
                     samples: int, max_cases: int) -> ConstraintCertificate:
    _, dev = model.split(name)
    dims = [p for p in box if model.relevant(name, p)]
    sub = {q: box[q] for q in dims}
    mdims = [p for p in dims if p in ("stake.throughput", "stake.settlement_latency")]
    if mdims and _episode_direction(model, dev, sub, mdims[0]) == 1:
        mdims = []  # lemma 7: nondecreasing in m, so in λ and T: treated as ordinary monotone dims
    dirs = {p: _episode_direction(model, dev, sub, p) for p in dims if p not in mdims}
    unknown = [p for p, d in dirs.items() if d is None]
    m_lo, m_hi = _m_range(model, dev, box) if mdims else (0, 0)
    too_many = m_hi - m_lo + 1 > max_cases
    if unknown or too_many:
        def fast(p: dict) -> float:
            return model.margins(p)[name]
        point, failed, n = _search_counterexample(model.scenario, name, fast, {p: box[p] for p in dims},
                                                  integer, samples)
        why = (f"no monotonicity lemma covers {', '.join(unknown)} over the box (their conditions fail or do "
               "not apply)" if unknown else f"m = round(λT) takes {m_hi - m_lo + 1} values over the box, more "
               f"than the {max_cases} cases checked")
        if point is not None:
            return ConstraintCertificate(name, "counterexample", "corner/sample search + re-solve", point, failed,
                                         f"{why}; but at {_fmt_point(point)} the re-solved margin is {fmt(failed)}.",
                                         n)
        return ConstraintCertificate(name, "undecided", "episode lemmas (incomplete)", None, None,
                                     f"{why}; {n} corners and sampled points hold, which proves nothing.", n)
    corner = {p: (box[p][0] if d >= 0 else box[p][1]) for p, d in dirs.items()}
    worst_v, worst_m = INF, None
    for m in range(m_lo, m_hi + 1):
        pt = dict(corner)
        if mdims:
            pt["stake.throughput"], pt["stake.settlement_latency"] = float(m), 1.0
        v = model.margins(pt)[name]
        if v < worst_v:
            worst_v, worst_m = v, m
    point = dict(corner)
    if mdims:
        lam = box.get("stake.throughput", (model.base[dev]["throughput"],) * 2)
        T = box.get("stake.settlement_latency", (model.base[dev]["settlement_latency"],) * 2)
        got = _lambda_T_for(worst_m, lam, T)
        if got is not None:
            point["stake.throughput"], point["stake.settlement_latency"] = got
    lemmas = ", ".join(f"{p} {'↑' if d > 0 else '↓' if d < 0 else '(not read)'}" for p, d in dirs.items())
    cases = f"; m = round(λT) takes {m_lo}..{m_hi}, each checked (worst m = {worst_m})" if mdims else ""
    why = (f"episode lemmas (module docstring, (c)) give the margin's direction in every uncertain parameter "
           f"({lemmas or 'none is read'}){cases}; the worst corner's margin is {fmt(worst_v)} (episode_margin, "
           f"floating point).")
    scale = max(1.0, model.scenario.stake.total)
    if worst_v >= 1e-9 * scale:
        return ConstraintCertificate(name, "proved", "episode lemmas + worst corner", point, worst_v, why,
                                     m_hi - m_lo + 1)
    failed = _confirm(model.scenario, name, point)
    if failed is not None:
        return ConstraintCertificate(name, "counterexample", "episode lemmas + worst corner", point, failed,
                                     why + " Re-solved there: the margin fails.", m_hi - m_lo + 1)
    return ConstraintCertificate(name, "undecided", "episode lemmas + worst corner", point, worst_v,
                                 why + " It is within rounding of 0: not claimed.", m_hi - m_lo + 1)


def _certify_consensus(model: _ConsensusModel, box: Mapping[str, Interval], integer: Mapping[str, bool],
                       max_vertices_log2: int, samples: int) -> list[ConstraintCertificate]:
    keys = list(box)
    out = []
    vertices = _corners(box, 2 ** max_vertices_log2)
    values: list[tuple[dict, dict | None]] = []
    for v in vertices:
        pt = {k: (float(round(x)) if integer[k] else x) for k, x in v.items()}
        try:
            values.append((pt, model.margins(pt)))
        except ScenarioError:
            values.append((pt, None))
    extra: list[tuple[dict, dict | None]] | None = None
    for name in model.names:
        covered = [k for k in keys if model.monotone(name, k)]
        missing = [k for k in keys if k not in covered]
        valid = [(p, m) for p, m in values if m is not None]
        if not missing and vertices and len(valid) == len(values):
            p, m = min(valid, key=lambda pm: pm[1][name])
            v = m[name]
            why = (f"the margin is monotone in each uncertain parameter ({', '.join(covered) or 'none'}), so its "
                   f"minimum over the box is at one of the {len(vertices)} vertices, each solved; the smallest "
                   f"is {fmt(v)} at {_fmt_point(p)} (floating point).")
            if v >= 1e-9 * max(1.0, abs(v)) or (math.isinf(v) and v > 0):
                out.append(ConstraintCertificate(name, "proved", "coordinatewise monotonicity + vertices", p, v,
                                                 why, len(vertices)))
            elif not _holds(v):
                out.append(ConstraintCertificate(name, "counterexample", "coordinatewise monotonicity + vertices",
                                                 p, v, why + " It fails there (solved).", len(vertices)))
            else:
                out.append(ConstraintCertificate(name, "undecided", "coordinatewise monotonicity + vertices", p, v,
                                                 why + " It is within rounding of 0: not claimed.", len(vertices)))
            continue
        bad = [(p, m) for p, m in valid if not _holds(m[name])]
        if not bad:
            if extra is None:
                extra = []
                for p in _sample_points(box, integer, samples):
                    try:
                        extra.append((p, model.margins(p)))
                    except ScenarioError:
                        pass
            bad = [(p, m) for p, m in extra if not _holds(m[name])]
        why = (f"no monotonicity argument covers {', '.join(missing) or 'the box'}"
               + ("" if vertices else f" (too many vertices for {len(keys)} parameters)"))
        if bad:
            p, m = min(bad, key=lambda pm: pm[1][name])
            out.append(ConstraintCertificate(name, "counterexample", "vertex/sample search", p, m[name],
                                             f"{why}; but at {_fmt_point(p)} the solved margin is {fmt(m[name])}.",
                                             len(values)))
        else:
            out.append(ConstraintCertificate(name, "undecided", "vertex/sample search", None, None,
                                             f"{why}; every vertex and sampled point tried holds, which proves "
                                             "nothing.", len(values)))
    return out


def certify(scenario: Scenario, box: Mapping[str, Sequence[float]] | None = None, *, max_boxes: int = 20_000,
            seconds: float = 20.0, samples: int = 16, max_vertices_log2: int = 6,
            max_cases: int = 2000) -> Certificate:
    """Range certificate of every constraint over the box (default: ``scenario.uncertainty``).

    ``max_boxes`` and ``seconds`` bound the branch and bound of each constraint (past them:
    undecided); ``samples`` seeded random points are tried as counterexamples where no proof
    method applies; consensus vertices are enumerated for at most 2**max_vertices_log2.
    """
    start = time.monotonic()
    model = _model(scenario)
    raw_box = dict(scenario.uncertainty if box is None else box)
    boxes: dict[str, Interval] = {}
    integer: dict[str, bool] = {}
    for path, (lo, hi) in raw_box.items():
        p = _normalise(scenario, path)
        dlo, dhi, is_int, rule = _domain(scenario, p)
        if not (dlo <= lo <= hi <= dhi):
            raise ScenarioError([_range_problem(scenario, p, lo, hi, rule)])
        boxes[p] = (float(lo), float(hi))
        integer[p] = is_int
    certs: list[ConstraintCertificate] = []
    if isinstance(model, _AuditModel):
        for name in model.names:
            budget = _Budget(max_boxes, seconds)
            if model.expression(name) is not None:
                try:
                    certs.append(_certify_sympy(model, name, boxes, integer, budget))
                    continue
                except Unsupported as err:
                    certs.append(ConstraintCertificate(name, "undecided", "interval arithmetic", None, None,
                                                       f"the interval evaluator cannot bound it: {err}"))
                    continue
            certs.append(_certify_episode(model, name, boxes, integer, samples, max_cases))
    else:
        certs = _certify_consensus(model, boxes, integer, max_vertices_log2, samples)
    return Certificate(scenario, boxes, tuple(certs), elapsed=time.monotonic() - start)


def _range_problem(scenario: Scenario, path: str, lo: float, hi: float, rule: str):
    from mira_theory.scenario import Problem

    return Problem(scenario.path or scenario.name, f"uncertainty.{path}", f"a range within {rule}, low ≤ high",
                   repr([lo, hi]))
