"""Audit game: throughput of the vectorized closed form against general solvers per point.

What is measured
----------------
* ``audit.closed_form`` over a Cartesian grid of ``PER_AXIS**4`` (57⁴ = 10,556,001) parameter
  points: slash L × honest cost c_h × divergence δ × audit cost k, built by broadcasting
  (the other 13 parameters scalar). Evaluated in one call, and in chunks on 1 thread,
  2 threads and 2 processes.
* The same points with every one of the 17 parameters materialised as a full-length float64
  array (no broadcasting shortcut: every operation runs over every point), evaluated in
  chunks on 1 thread, 2 threads and 2 processes.
* The same 2×2 games (honest vs the one deviation, ``audit.bimatrix`` of the scenario at a
  grid point made by ``Scenario.replace``) solved point by point by nashpy
  ``support_enumeration`` and ``vertex_enumeration`` and by pygambit ``enummixed`` (exact
  rationals, as the project cross-checks, and floats), and ``closed_form`` called once per
  point on scalars.
* Ratios: closed-form points/s ÷ solver points/s, single thread against single thread.
* Correctness: on every sampled point, the closed form's mixed equilibrium (read from the
  benchmarked grid output) against each solver's equilibria; and the number of interior
  equilibria found by every closed-form run (all variants, threads, processes) is the same.

The axes are the game's own parameters: the sampling rate in force does not enter the normal
form (``bimatrix`` is built at q = 1 and the verifier's mix *is* the sampling rate), so a grid
over it would give the solvers the same game many times over.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import statistics
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from mira_theory.games import audit

TITLE = "audit game: vectorized closed form vs general bimatrix solvers"

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "models" / "default.toml"
QUICK = os.environ.get("BENCH_QUICK") == "1"  # smoke run (benchmarks/run.py --quick)

# The base point: models/default.toml, first deviation only (a 2×2 game), with false alarms,
# misses, collusion and two verifiers switched on so every term of the closed form is live and
# the verifier's gain against an honest provider takes both signs on the grid.
BASE_CHANGES = {"audit.false_alarm_rate": 0.05, "audit.miss_rate": 0.1,
                "audit.collusion": 0.2, "audit.verifiers": 2}
# closed-form argument -> (scenario key path, low, high). Ranges chosen so no grid point is
# exactly degenerate (c_h never equals c_j = 0.10, δ(1 − β) never equals α).
AXES: dict[str, tuple[str, float, float]] = {
    "slash": ("stake.slash", 0.0, 100.0),
    "cost_honest": ("task.cost_honest", 0.05, 1.05),
    "divergence": ("deviation.0.divergence", 0.02, 1.0),
    "audit_cost": ("audit.cost", 0.01, 2.0),
}
PER_AXIS = 24 if QUICK else 57          # 57**4 = 10,556,001 points
REPEATS = 2 if QUICK else 5             # closed form: best of REPEATS
CHUNK = 1 << 15                         # points per call when the 17 arrays are chunked
WORKERS = 2
SAMPLE = 40 if QUICK else 300           # 2×2 games solved point by point
SOLVER_REPEATS = 2 if QUICK else 3      # solvers: best of SOLVER_REPEATS passes over SAMPLE
TOL = 1e-8                              # agreement tolerance on probabilities
POINTS_TARGET = 1e7
RATIO_TARGET = 1e4
SEED = 20261125

_CHUNKS: list[dict[str, np.ndarray]] = []  # the work of a parallel run; inherited by fork
_NOTES: list[str] = []


# --------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------


def base_scenario() -> audit.AuditScenario:
    import tomli_w

    from mira_theory.scenario import load, loads

    raw = load(SCENARIO).raw()
    raw["deviation"] = raw["deviation"][:1]  # honest vs one deviation: a 2×2 game
    raw["scenario"]["name"] = "bench-audit"
    one = loads(tomli_w.dumps(raw), origin=f"{SCENARIO.name} (first deviation only)")
    return one.replace(BASE_CHANGES)  # type: ignore[return-value]


def axis_values() -> dict[str, np.ndarray]:
    return {name: np.linspace(lo, hi, PER_AXIS) for name, (_, lo, hi) in AXES.items()}


def grid_arguments(base: dict[str, float], values: dict[str, np.ndarray]) -> dict[str, Any]:
    """Closed-form arguments: the axes as broadcastable arrays, everything else scalar."""
    out: dict[str, Any] = dict(base)
    for i, (name, v) in enumerate(values.items()):
        shape = [1] * len(values)
        shape[i] = v.size
        out[name] = v.reshape(shape)
    return out


def full_arguments(grid: dict[str, Any], shape: tuple[int, ...]) -> dict[str, np.ndarray]:
    """The same points with every one of the 17 arguments a contiguous full-length array."""
    n = int(np.prod(shape))
    return {k: np.broadcast_to(np.asarray(v, float), shape).reshape(n).copy()
            for k, v in grid.items()}


def grid_chunks(grid: dict[str, Any]) -> list[dict[str, Any]]:
    """The broadcast grid split along its first axis (one slash value per chunk)."""
    first = next(iter(AXES))
    return [{**grid, first: grid[first][i:i + 1]} for i in range(grid[first].shape[0])]


def flat_chunks(full: dict[str, np.ndarray], size: int) -> list[dict[str, np.ndarray]]:
    n = next(iter(full.values())).size
    return [{k: v[s:s + size] for k, v in full.items()} for s in range(0, n, size)]


# --------------------------------------------------------------------------------------
# Closed-form runs (each returns the number of points with an interior mixed equilibrium,
# so every run does the same observable work and the runs can be checked against each other)
# --------------------------------------------------------------------------------------


def _interior(out: dict[str, np.ndarray]) -> int:
    return int(np.count_nonzero(np.isfinite(out["mixed_sampling_rate"])))


def _eval(chunks: list[dict[str, Any]]) -> int:
    return sum(_interior(audit.closed_form(**c)) for c in chunks)


def _eval_shared(lo: int, hi: int) -> int:  # process worker: chunks inherited by fork
    return _eval(_CHUNKS[lo:hi])


def _halves(n: int, parts: int) -> list[tuple[int, int]]:
    bounds = np.linspace(0, n, parts + 1).round().astype(int)
    return list(zip(bounds[:-1].tolist(), bounds[1:].tolist()))


def _timed(fn: Callable[[], int], repeats: int) -> tuple[float, float, set[int], float]:
    """Best and median wall time, the distinct results, and this process's CPU time ÷ wall
    time over all repeats (≈ 1 per busy thread; less when the machine is shared)."""
    times, results = [], set()
    cpu0 = time.process_time()
    for _ in range(repeats):
        t0 = time.perf_counter()
        results.add(fn())
        times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times), results, (time.process_time() - cpu0) / sum(times)


def _run_variants(label: str, chunks: list[dict[str, Any]], npoints: int,
                  counts: dict[str, set[int]]) -> list[dict[str, Any]]:
    rows = []

    def row(how: str, best: float, med: float, cpu: float | None, extra: str = "") -> dict[str, Any]:
        rate = npoints / best
        if cpu is not None:
            extra = f"; CPU/wall of this process {cpu:.2f}" + extra
        return {"group": "closed-form throughput", "name": f"closed_form, {label}, {how}",
                "value": rate, "unit": "points/s", "baseline": "", "ratio": None,
                "target": f"≥ {POINTS_TARGET:.0e} points/s".replace("e+0", "e"),
                "met": rate >= POINTS_TARGET,
                "note": f"best of {REPEATS}: {best:.3f} s for {npoints:,} points; "
                        f"median {npoints / med:.3g} points/s{extra}"}

    best, med, res, cpu = _timed(lambda: _eval(chunks), REPEATS)
    counts[f"{label}, chunked, 1 thread"] = res
    rows.append(row(f"{len(chunks)} chunks, 1 thread", best, med, cpu))

    with ThreadPoolExecutor(WORKERS) as ex:
        parts = [chunks[lo:hi] for lo, hi in _halves(len(chunks), WORKERS)]

        def threaded() -> int:
            return sum(f.result() for f in [ex.submit(_eval, p) for p in parts])

        threaded()  # start the threads outside the timing
        best, med, res, cpu = _timed(threaded, REPEATS)
    counts[f"{label}, chunked, {WORKERS} threads"] = res
    rows.append(row(f"{len(chunks)} chunks, {WORKERS} threads", best, med, cpu))

    global _CHUNKS
    _CHUNKS = chunks
    try:
        with ProcessPoolExecutor(WORKERS, mp_context=mp.get_context("fork")) as ex:
            spans = _halves(len(chunks), WORKERS)
            list(ex.map(_eval_shared, [0] * WORKERS, [1] * WORKERS))  # fork + warm up

            def processes() -> int:
                return sum(f.result() for f in [ex.submit(_eval_shared, lo, hi) for lo, hi in spans])

            best, med, res, _ = _timed(processes, REPEATS)
    finally:
        _CHUNKS = []
    counts[f"{label}, chunked, {WORKERS} processes"] = res
    rows.append(row(f"{len(chunks)} chunks, {WORKERS} processes", best, med, None,
                    "; inputs inherited by fork, each worker returns only its count"))
    return rows


# --------------------------------------------------------------------------------------
# Point-by-point solvers on the same games
# --------------------------------------------------------------------------------------


def _solvers() -> dict[str, Callable[[np.ndarray, np.ndarray], list]]:
    import nashpy

    from mira_theory.solvers import external

    return {
        "nashpy support_enumeration": lambda A, B: list(nashpy.Game(A, B).support_enumeration()),
        "nashpy vertex_enumeration": lambda A, B: list(nashpy.Game(A, B).vertex_enumeration()),
        "pygambit enummixed (exact rationals)":
            lambda A, B: external.pygambit_equilibria(A, B, "enummixed", exact=True),
        "pygambit enummixed (floats)":
            lambda A, B: external.pygambit_equilibria(A, B, "enummixed", exact=False),
    }


def _sample(interior: np.ndarray, contested: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Flat grid indices for the point-by-point solvers: up to a tenth where the closed form
    and the whole-grid 2×2 test disagree (so the solvers adjudicate), the rest half with an
    interior mixed equilibrium by the closed form, half without."""
    picks: list[np.ndarray] = []
    pools = (np.flatnonzero(contested), np.flatnonzero(interior & ~contested),
             np.flatnonzero(~interior & ~contested))
    wants = (SAMPLE // 10, None, None)
    left = SAMPLE
    for i, (pool, want) in enumerate(zip(pools, wants)):
        k = want if want is not None else (left + 1) // 2 if i == 1 else left
        k = min(k, pool.size)
        picks.append(rng.choice(pool, k, replace=False))
        left -= k
    return np.sort(np.concatenate(picks))


def _two_by_two_mixed(grid: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An independent equilibrium test over the whole grid: the 2×2 game's entries as
    ``audit.bimatrix`` builds them (closed_form payoffs at q = 1), and its fully mixed
    equilibrium from the two indifference conditions alone (no closed-form case analysis).

    Returns (fully mixed exists, audit probability q, deviation probability t), broadcast.
    """
    at1 = audit.closed_form(**{**grid, "sampling_rate": 1.0})
    with np.errstate(divide="ignore", invalid="ignore"):
        audited = at1["payoff_honest"] - at1["payoff_deviation"]             # A[0,0] − A[1,0]
        unaudited = np.asarray(grid["deviation_cost"]) - grid["cost_honest"]  # A[0,1] − A[1,1]
        q = unaudited / (unaudited - audited)  # provider indifferent between its rows
        w_h, w_j = at1["verifier_gain_honest"], at1["verifier_gain_deviation"]  # B[i,0] − B[i,1]
        t = w_h / (w_h - w_j)  # verifier indifferent between its columns
        mixed = (q > 0) & (q < 1) & (t > 0) & (t < 1)
    return mixed, q, t


def _fully_mixed(eqs: list) -> list[tuple[float, float]]:
    """(audit probability, deviation probability) of the equilibria where both players mix."""
    out = []
    for x, y in eqs:
        x, y = np.asarray(x, float), np.asarray(y, float)
        if TOL < y[0] < 1 - TOL and TOL < x[1] < 1 - TOL:
            out.append((float(y[0]), float(x[1])))
    return out


def _agrees(q: float, t: float, eqs: list) -> bool:
    if not eqs:
        return False
    mixed = _fully_mixed(eqs)
    if not np.isfinite(q):
        return not mixed
    return len(mixed) == 1 and abs(mixed[0][0] - q) <= TOL and abs(mixed[0][1] - t) <= TOL


# --------------------------------------------------------------------------------------
# The benchmark
# --------------------------------------------------------------------------------------


def run() -> list[dict[str, Any]]:
    _NOTES.clear()
    rng = np.random.default_rng(SEED)
    scenario = base_scenario()
    dev = scenario.deviations[0]
    base = audit.arguments(scenario, dev)
    values = axis_values()
    grid = grid_arguments(base, values)
    shape = tuple(v.size for v in values.values())
    npoints = int(np.prod(shape))
    counts: dict[str, set[int]] = {}
    rows: list[dict[str, Any]] = []

    # 1. the grid in one call: the 20 output arrays of npoints each are returned
    keep: dict[str, np.ndarray] = {}

    def one_call() -> int:
        out = audit.closed_form(**grid)
        keep.update(out)
        return _interior(out)

    best, med, res, cpu = _timed(one_call, REPEATS)
    counts["grid, one call"] = res
    grid_rate = npoints / best
    rows.append({"group": "closed-form throughput",
                 "name": "closed_form, broadcast grid, one call, 1 thread",
                 "value": grid_rate, "unit": "points/s", "baseline": "", "ratio": None,
                 "target": "≥ 1e7 points/s", "met": grid_rate >= POINTS_TARGET,
                 "note": f"best of {REPEATS}: {best:.3f} s for {npoints:,} points "
                         f"({' × '.join(map(str, shape))}); median {npoints / med:.3g} points/s; "
                         f"returns all {len(keep)} output arrays; CPU/wall of this process {cpu:.2f}"})
    interior = np.isfinite(keep["mixed_sampling_rate"]).reshape(-1)
    mixed2, q2, t2 = _two_by_two_mixed(grid)
    mixed2 = np.broadcast_to(mixed2, shape).reshape(-1)
    contested = mixed2 != interior
    both = mixed2 & interior
    q_err = float(np.max(np.abs(np.broadcast_to(q2, shape).reshape(-1)[both]
                                - keep["mixed_sampling_rate"].reshape(-1)[both]), initial=0.0))
    t_err = float(np.max(np.abs(np.broadcast_to(t2, shape).reshape(-1)[both]
                                - keep["mixed_deviation_probability"].reshape(-1)[both]), initial=0.0))
    saving = np.broadcast_to(np.asarray(grid["cost_honest"]) - grid["deviation_cost"], shape).reshape(-1)
    idx = _sample(interior, contested, rng)
    q_cf = keep["mixed_sampling_rate"].reshape(-1)[idx]
    t_cf = keep["mixed_deviation_probability"].reshape(-1)[idx]
    keep.clear()
    del q2, t2

    # 2. the grid in chunks, 1 thread / threads / processes
    rows += _run_variants("broadcast grid", grid_chunks(grid), npoints, counts)

    # 3. every argument a full-length array, in chunks
    full = full_arguments(grid, shape)
    flat = flat_chunks(full, CHUNK)
    full_rows = _run_variants("17 full-length arrays", flat, npoints, counts)
    rows += full_rows
    full_rate = full_rows[0]["value"]  # chunked, 1 thread
    del full, flat

    # 4. the same games, point by point
    coords = np.unravel_index(idx, shape)
    games, point_args = [], []
    for i in range(idx.size):
        changes = {AXES[name][0]: float(values[name][coords[a][i]]) for a, name in enumerate(AXES)}
        s = scenario.replace(changes)
        A, B, labels = audit.bimatrix(s)  # type: ignore[arg-type]
        assert A.shape == (2, 2) and labels == ["honest", dev.name], (A.shape, labels)
        games.append((A, B))
        point_args.append(audit.arguments(s, s.deviations[0]))  # type: ignore[attr-defined]

    def per_point(fn: Callable[[], None]) -> tuple[float, float]:
        best, med, _, _ = _timed(lambda: fn() or 0, SOLVER_REPEATS)
        return best / len(games), med / len(games)

    def scalar_cf() -> None:
        for a in point_args:
            audit.closed_form(**a)

    best_pp, med_pp = per_point(scalar_cf)
    rows.append({"group": "point by point (1 thread)", "name": "closed_form, one point per call (scalars)",
                 "value": 1 / best_pp, "unit": "points/s", "baseline": "", "ratio": None,
                 "target": "", "met": None,
                 "note": f"{best_pp * 1e3:.4f} ms/point (median {med_pp * 1e3:.4f}); no vectorization"})

    solved: dict[str, list] = {}
    rates: dict[str, float] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nashpy warns on degenerate games; answers are compared below
        for name, solve in _solvers().items():
            results: list = []

            def everything(solve=solve, results=results) -> None:
                results.clear()
                results.extend(solve(A, B) for A, B in games)

            best_pp, med_pp = per_point(everything)
            solved[name] = list(results)
            rates[name] = 1 / best_pp
            rows.append({"group": "point by point (1 thread)", "name": name,
                         "value": rates[name], "unit": "points/s", "baseline": "", "ratio": None,
                         "target": "", "met": None,
                         "note": f"{best_pp * 1e3:.4f} ms/point (median {med_pp * 1e3:.4f}), "
                                 f"best of {SOLVER_REPEATS} passes over {len(games)} games; "
                                 "game construction + solve, bimatrix() not included"})

    # 5. ratios, single thread against single thread
    for label, rate in (("broadcast grid, one call", grid_rate),
                        ("17 full-length arrays, chunked", full_rate)):
        for name, base_rate in rates.items():
            ratio = rate / base_rate
            targeted = name.startswith("nashpy")  # the target is against nashpy
            rows.append({"group": "ratio: closed form ÷ solver, per point", "name": f"{label} ÷ {name}",
                         "value": rate, "unit": "points/s",
                         "baseline": f"{base_rate:.4g} points/s", "ratio": ratio,
                         "target": "ratio ≥ 1e4" if targeted else "",
                         "met": ratio >= RATIO_TARGET if targeted else None,
                         "note": "" if targeted else "no target: the issue's target is against nashpy"})

    # 6. correctness
    n_int = int(np.isfinite(q_cf).sum())
    for name, eqs in solved.items():
        ok = [_agrees(q, t, e) for q, t, e in zip(q_cf, t_cf, eqs)]
        bad = [i for i, good in enumerate(ok) if not good]
        note = (f"{n_int} sampled points with an interior mixed equilibrium (q°, t° within {TOL:g}), "
                f"{len(ok) - n_int} without (solver must find no fully mixed one)")
        if bad:
            i = bad[0]
            found = [(np.asarray(x).tolist(), np.asarray(y).tolist()) for x, y in eqs[i]]
            note += (f"; first mismatch: grid point {int(idx[i])}, closed form q° = {q_cf[i]!r}, "
                     f"t° = {t_cf[i]!r}, solver {found}")
        rows.append({"group": "correctness", "check": True,
                     "name": f"mixed equilibrium: closed form vs {name}",
                     "value": f"{sum(ok)}/{len(ok)}", "unit": "points agree", "baseline": "",
                     "ratio": None, "target": "all", "met": not bad, "note": note})
    n_bad = int(contested.sum())
    missed_cf = int((contested & mixed2).sum())
    neg = int((contested & (saving < 0)).sum())
    sample_ok = all(bool(_fully_mixed(e)) == bool(mixed2[i]) for i, e in
                    zip(idx, solved["nashpy support_enumeration"]))
    rows.append({"group": "correctness", "check": True,
                 "name": "mixed equilibrium: closed form vs 2×2 indifference test, whole grid",
                 "value": n_bad, "unit": f"of {npoints:,} points disagree", "baseline": "",
                 "ratio": None, "target": "0", "met": n_bad == 0 and sample_ok,
                 "note": f"{missed_cf} where only the 2×2 test finds a fully mixed equilibrium, "
                         f"{n_bad - missed_cf} where only the closed form does; {neg} of the {n_bad} "
                         f"have c_h < c_j. Where both find one: max |Δq°| = {q_err:.2g}, max |Δt°| = "
                         f"{t_err:.2g}. The test itself agrees with nashpy support_enumeration on "
                         f"every sampled point: {'yes' if sample_ok else 'NO'}"})
    distinct = set().union(*counts.values())
    rows.append({"group": "correctness", "check": True,
                 "name": "interior-equilibrium count, every closed-form run",
                 "value": f"{len(distinct)} distinct", "unit": "value(s)", "baseline": "", "ratio": None,
                 "target": "1", "met": len(distinct) == 1,
                 "note": f"{sorted(distinct)} of {npoints:,} points, over "
                         f"{sum(REPEATS for _ in counts)} runs in {len(counts)} variants"})

    _NOTES.extend([
        f"Base point: `{SCENARIO.relative_to(ROOT)}` with only its first deviation "
        f"(`{dev.name}`, c_j = {dev.cost:g}) so each game is 2×2, and {BASE_CHANGES}.",
        "Grid axes (np.linspace, " + ", ".join(
            f"{name} `{path}` {lo:g}…{hi:g}" for name, (path, lo, hi) in AXES.items())
        + f"), {PER_AXIS} values each: {npoints:,} points; the other 13 arguments scalar.",
        "Every closed-form run also counts the points with an interior mixed equilibrium "
        "(`isfinite(mixed_sampling_rate)`), inside the timing, so all variants do the same "
        "observable work and can be checked against each other. Chunked runs drop each chunk's "
        "output arrays after counting; the one-call run returns all of them.",
        f"Chunks: the broadcast grid is split along its first axis ({PER_AXIS} chunks of "
        f"{npoints // PER_AXIS:,} points); the 17 full-length arrays ({npoints:,} float64 each, "
        f"{17 * npoints * 8 / 2**30:.2f} GiB) into chunks of {CHUNK:,} points. Threads and "
        f"processes ({WORKERS} each) take contiguous halves; pools are started and warmed "
        "before timing; processes are forked and return only their count.",
        f"Point-by-point games: {len(games)} grid points sampled with seed {SEED}: "
        f"{int(contested[idx].sum())} where the closed form and the whole-grid 2×2 indifference "
        "test disagree (up to a tenth of the sample, so the solvers adjudicate), the rest half "
        "with an interior mixed equilibrium by the closed form, half without; each turned into a "
        "scenario by `Scenario.replace` and a 2×2 normal form by `audit.bimatrix`. Solver "
        "timings include building the solver's game object and solving, not `bimatrix`. "
        "nashpy is called directly; pygambit through `mira_theory.solvers.external`.",
        "Ratios compare single-thread figures only (a per-point solver could be spread over "
        "cores just as well).",
    ])
    return rows


def describe() -> list[str]:
    """Markdown notes on the last run (how the figures were obtained)."""
    return list(_NOTES)
