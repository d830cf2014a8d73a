"""Sweeps, Monte Carlo and backends: end-to-end throughput against what a user would run instead.

What is measured (``bench_audit.py`` already measures the raw ``audit.closed_form``; this
module measures :func:`mira_theory.sweep.sweep` end to end, xarray assembly included)
----------------------------------------------------------------------------------------
* ``sweep()`` of ``models/default.toml`` over a 4-axis Cartesian grid (sampling rate q,
  slash L, honest cost c_h, audit cost k), closed forms only (``episode=False``), with its
  first deviation only (2×2 games) and with both (3×2 games): points/s, best of a few runs.
  The baseline is nashpy ``support_enumeration`` solving the same normal forms
  (``audit.bimatrix`` of ``Scenario.replace`` at sampled grid points) one by one.
  Target: sweep ≥ 1e7 points/s and ≥ 1e4 × nashpy. Correctness: at the sampled points the
  sweep's interior mixed equilibrium (2×2) equals nashpy's fully mixed one.
* Monte Carlo: ``simulate_audit`` tasks/s (8 providers) against numpy's raw
  ``default_rng().random(n)`` uniforms/s for the same n, in the same run. Target ≥ 0.5×.
  Consensus claims/s for reference.
* Consensus sweeps: ``consensus.solve`` per point through ``sweep()`` in this process and on a
  Dask LocalCluster of 2 single-threaded worker processes, at growing grid sizes, with the
  crossover size (warm cluster, and counting the cluster's start-up). The N-player solver
  against pygambit (N = 3…8, child processes with a time limit) and alone at N = 10⁴ is
  ``bench_consensus.py``'s; it is not repeated here.
"""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import tomli_w

import mira_theory as mt
from mira_theory.games import audit
from mira_theory.montecarlo import simulate_audit, simulate_consensus
from mira_theory.sweep import sweep

TITLE = "sweeps, Monte Carlo and backends: end to end"
ROOT = Path(__file__).resolve().parents[1]
SEED = 20261125
POINTS_TARGET = 1e7
RATIO_TARGET = 1e4
MC_TARGET = 0.5
_NOTES: list[str] = []


def _best(fn, repeats: int) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def _scenarios() -> tuple[Any, Any]:
    base = mt.load(ROOT / "models" / "default.toml").replace(
        {"audit.false_alarm_rate": 0.05, "audit.miss_rate": 0.1, "audit.collusion": 0.2, "audit.verifiers": 2})
    raw = base.raw()
    raw["deviation"] = raw["deviation"][:1]
    return mt.loads(tomli_w.dumps(raw)), base


def _axes(per_axis: int) -> dict[str, np.ndarray]:
    # ranges avoid exact degeneracies (c_h never equals c_j = 0.10 or 0)
    return {"audit.sampling_rate": np.linspace(0.005, 0.5, per_axis), "stake.slash": np.linspace(0, 100, per_axis),
            "task.cost_honest": np.linspace(0.05, 1.05, per_axis), "audit.cost": np.linspace(0.01, 2, per_axis)}


def _nashpy_rate(scenario: Any, over: dict[str, np.ndarray], sample: int, rng) -> tuple[float, list, list]:
    import nashpy

    keys = list(over)
    picks = [{k: float(rng.choice(over[k])) for k in keys} for _ in range(sample)]
    games = []
    for changes in picks:
        A, B, _ = audit.bimatrix(scenario.replace(changes))
        games.append((A, B))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        best, eqs = _best(lambda: [list(nashpy.Game(A, B).support_enumeration()) for A, B in games], 2)
    return sample / best, picks, eqs


def _sweep_rows(quick: bool, rng) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    one, two = _scenarios()
    per_axis = 16 if quick else 32
    over = _axes(per_axis)
    npoints = per_axis**4
    sample = 30 if quick else 150
    for label, scenario in (("2×2 games (1 deviation)", one), ("3×2 games (2 deviations)", two)):
        sweep(scenario, {k: v[:2] for k, v in over.items()}, episode=False, progress=False)  # warm
        best, ds = _best(lambda s=scenario: sweep(s, over, episode=False, progress=False), 2 if quick else 3)
        rate = npoints / best
        nash_rate, picks, eqs = _nashpy_rate(scenario, over, sample, rng)
        ratio = rate / nash_rate
        rows.append({"group": "closed-form sweep, end to end", "name": f"sweep() {label}, episode=False",
                     "value": rate, "unit": "points/s", "baseline": "", "ratio": None,
                     "target": "≥ 1e7 points/s", "met": rate >= POINTS_TARGET,
                     "note": f"best {best:.3f} s for {npoints:,} points ({per_axis}⁴), {len(ds.data_vars)} "
                             f"variables, Dataset assembled"})
        rows.append({"group": "closed-form sweep, end to end", "name": f"sweep() ÷ nashpy support_enumeration, "
                     f"{label}", "value": rate, "unit": "points/s", "baseline": f"{nash_rate:.4g} points/s",
                     "ratio": ratio, "target": "ratio ≥ 1e4", "met": ratio >= RATIO_TARGET,
                     "note": f"nashpy: best of 2 passes over {sample} sampled points (game construction + "
                             f"solve; bimatrix() not timed)"})
        if scenario is one:
            best_ep, _ = _best(lambda s=scenario: sweep(s, over, progress=False), 2)
            rows.append({"group": "closed-form sweep, end to end", "name": f"sweep() {label}, exact episode "
                         "margins (episode=True)", "value": npoints / best_ep, "unit": "points/s", "baseline": "",
                         "ratio": None, "target": "", "met": None,
                         "note": f"best {best_ep:.3f} s; audit.episode_margin (binomial tails) evaluated once "
                                 "per combination of the axes it reads (here q, L, c_h: audit.cost is not one)"})
            bad = 0
            for changes, found in zip(picks, eqs):
                at = ds.sel(changes).sel(deviation=scenario.deviations[0].name)
                q, t = float(at["mixed_sampling_rate"]), float(at["mixed_deviation_probability"])
                mixed = [(float(y[0]), float(x[1])) for x, y in found
                         if 1e-9 < y[0] < 1 - 1e-9 and 1e-9 < x[1] < 1 - 1e-9]
                ok = (not mixed) if not np.isfinite(q) else (
                    len(mixed) == 1 and abs(mixed[0][0] - q) < 1e-8 and abs(mixed[0][1] - t) < 1e-8)
                bad += not ok
            rows.append({"group": "correctness", "check": True,
                         "name": "sweep's interior mixed equilibrium vs nashpy, sampled 2×2 points",
                         "value": f"{sample - bad}/{sample}", "unit": "points agree", "baseline": "",
                         "ratio": None, "target": "all", "met": bad == 0, "note": "q° and t° within 1e-8"})
    return rows


def _mc_rows(quick: bool) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    s = mt.load(ROOT / "models" / "default.toml")
    P = 8
    rounds = (250_000 if quick else 2_000_000)
    n = P * rounds
    mix = {"honest": 6, "weaker-model": 1, "random-output": 1}
    simulate_audit(s, mix=mix, rounds=1000, seed=1, progress=False)  # warm
    best, _ = _best(lambda: simulate_audit(s, mix=mix, rounds=rounds, seed=1, progress=False), 3)
    rng = np.random.default_rng(SEED)
    raw, _ = _best(lambda: rng.random(n), 3)
    rate, raw_rate = n / best, n / raw
    rows.append({"group": "Monte Carlo", "name": "simulate_audit tasks/s ÷ default_rng().random(n) uniforms/s",
                 "value": rate, "unit": "tasks/s", "baseline": f"{raw_rate:.4g} uniforms/s",
                 "ratio": rate / raw_rate, "target": "ratio ≥ 0.5", "met": rate / raw_rate >= MC_TARGET,
                 "note": f"{P} providers × {rounds:,} rounds (default.toml, q = 0.05), best of 3; baseline "
                         f"one call for the same n = {n:,}, best of 3; same process, same run"})
    c = mt.load(ROOT / "models" / "binary-claims.toml")
    claims = 20_000 if quick else 200_000
    best, _ = _best(lambda: simulate_consensus(c, claims=claims, seed=1, progress=False), 2)
    rows.append({"group": "Monte Carlo", "name": "simulate_consensus claims/s (100 nodes, N = 5, W = 100)",
                 "value": claims / best, "unit": "claims/s", "baseline": "", "ratio": None, "target": "",
                 "met": None, "note": f"{claims:,} claims, committees drawn per claim, windows per node"})
    return rows


def _dask_rows(quick: bool) -> list[dict[str, Any]]:
    from dask.distributed import Client, LocalCluster

    rows: list[dict[str, Any]] = []
    c = mt.load(ROOT / "models" / "binary-claims.toml")
    sizes = (4, 16) if quick else (8, 32, 96)

    def grid(n: int) -> dict[str, np.ndarray]:
        return {"slashing.slash": np.linspace(1, 50, n)}

    sweep(c, grid(1), progress=False)  # warm this process
    t0 = time.perf_counter()
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    client = Client(cluster)
    startup = time.perf_counter() - t0
    try:
        sweep(c, grid(2), backend="dask", client=client, progress=False)  # warm the workers
        times = {}
        for n in sizes:
            t_in, _ = _best(lambda n=n: sweep(c, grid(n), progress=False), 1)
            t_dk, _ = _best(lambda n=n: sweep(c, grid(n), backend="dask", client=client, progress=False), 1)
            times[n] = (t_in, t_dk)
            rows.append({"group": "backends: consensus sweep (consensus.solve per point)",
                         "name": f"{n} points: Dask LocalCluster (2 workers) vs in-process",
                         "value": n / t_dk, "unit": "points/s", "baseline": f"{n / t_in:.4g} points/s",
                         "ratio": t_in / t_dk, "target": "", "met": None,
                         "note": f"in-process {t_in:.3f} s, Dask {t_dk:.3f} s (warm cluster)"})
    finally:
        client.close()
        cluster.close()
    per_in = sum(times[n][0] for n in sizes) / sum(sizes)
    big = sizes[-1]
    per_dk = times[big][1] / big
    warm = next((n for n in sizes if times[n][1] < times[n][0]), None)
    load = os.getloadavg()[0]
    if per_dk < per_in:
        cold = f"counting the cluster's start-up ({startup:.1f} s) from ≈ {startup / (per_in - per_dk):.0f} points"
    else:
        cold = "never, at this load"
    found = f"{warm} points" if warm else f"none up to {big} points"
    rows.append({"group": "backends: consensus sweep (consensus.solve per point)",
                 "name": "crossover: smallest grid where Dask beats in-process (warm cluster)",
                 "value": warm if warm else float("nan"), "unit": "points", "baseline": "", "ratio": None,
                 "target": "", "met": None,
                 "note": f"{found}; per point: in-process {per_in * 1e3:.0f} ms, Dask {per_dk * 1e3:.0f} ms "
                         f"(at {big} points); {cold}; 1-min load average {load:.1f} on "
                         f"{os.cpu_count()} cores"})
    _NOTES.append(f"Dask crossover (consensus sweeps of binary-claims.toml, one solve ≈ {per_in * 1e3:.0f} ms "
                  f"in-process): warm cluster: {found}; {cold}. With 2 workers on a 2-core machine the "
                  "best case is 2× and only when the machine is otherwise idle. Closed-form audit sweeps are "
                  "one vectorized call: no backend helps them.")
    return rows


def run(quick: bool | None = None) -> list[dict[str, Any]]:
    if quick is None:
        quick = os.environ.get("BENCH_QUICK") == "1"
    _NOTES.clear()
    rng = np.random.default_rng(SEED)
    rows = _sweep_rows(quick, rng) + _mc_rows(quick) + _dask_rows(quick)
    _NOTES.append("Sweep grids: models/default.toml with α = 0.05, β = 0.1, r = 0.2, n = 2 (every term live); "
                  "axes q 0.005…0.5, L 0…100, c_h 0.05…1.05, k 0.01…2. The N-player consensus solver against "
                  "pygambit is in bench_consensus.py.")
    return rows


def describe() -> list[str]:
    return list(_NOTES)
