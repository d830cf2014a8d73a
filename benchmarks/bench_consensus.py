"""Consensus game benchmarks.

* The anonymous N-player verifier game: the toolkit's symmetric-equilibrium solver (all
  symmetric equilibria, with stability) at N = 3…8 beside pygambit on the same game's full
  normal form (gnm_solve, which may run for minutes or return nothing, and logit_solve, which
  finds one equilibrium), then alone at N = 10², 10³, 10⁴ (target: N = 10⁴ under 100 ms).
* The binomial-tail window design at W ~ 10⁶.

pygambit runs in a child process with a time limit, so a hung or crashing solve (both seen
on this machine class) is reported, not fatal.
"""

from __future__ import annotations

import multiprocessing as mp
import time

import numpy as np

from mira_theory.games import consensus as c

# the large-committee scenario's economics, with a random guesser
GAME = dict(options=2, threshold=0.67, reward=0.02, cost=0.01, accuracy=0.93, correlation=0.1,
            dev_cost=0.0, dev_accuracy=0.5, window=200, agreement_threshold=0.75, slash=20.0)
GAMBIT_TIMEOUT = 20.0


def toolkit_solve(N: int) -> list[c.SymmetricEquilibrium]:
    _, _, delta = c.payoff_difference_coefficients(N, **GAME)
    return c.symmetric_equilibria(delta)


def best_time(fn, repeats: int = 5) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def normal_form(N: int) -> list[np.ndarray]:
    """Payoff arrays of the N-player game: player i's payoff at each pure profile."""
    uh, uj, _ = c.payoff_difference_coefficients(N, **GAME)
    arrays = []
    for i in range(N):
        arr = np.zeros((2,) * N)
        for profile in np.ndindex(*(2,) * N):
            others = sum(profile) - profile[i]  # strategy 1 = deviate
            arr[profile] = uj[others] if profile[i] else uh[others]
        arrays.append(arr)
    return arrays


def _gambit_child(N: int, method: str, queue: mp.Queue) -> None:
    import pygambit as gbt

    t0 = time.perf_counter()
    game = gbt.StrategicGame.from_arrays(*normal_form(N))
    t1 = time.perf_counter()
    solver = {"gnm": gbt.nash.gnm_solve, "logit": gbt.nash.logit_solve}[method]
    result = solver(game)
    t2 = time.perf_counter()
    profiles = list(result.equilibria) if hasattr(result, "equilibria") else (
        [result.equilibrium] if result.equilibrium is not None else [])
    # each player's probability of strategy "2" (deviate)
    sigmas = [[float(eq[str(i + 1)]["2"]) for i in range(N)] for eq in profiles]
    queue.put((t1 - t0, t2 - t1, sigmas))


def gambit_time(N: int, method: str) -> tuple[str, float | None, list | None]:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_gambit_child, args=(N, method, queue))
    proc.start()
    proc.join(GAMBIT_TIMEOUT)
    if proc.is_alive():
        proc.kill()
        proc.join()
        return f"timeout > {GAMBIT_TIMEOUT:.0f} s", None, None
    if proc.exitcode != 0:
        return f"crashed (exit {proc.exitcode})", None, None
    build, solve, sigmas = queue.get()
    return "ok", solve, sigmas


def run() -> list[dict]:
    rows = []
    for N in range(3, 9):
        ours = best_time(lambda N=N: toolkit_solve(N))
        eqs = toolkit_solve(N)
        ours_sigma = [e.deviation_probability for e in eqs]
        for method in ("gnm", "logit"):
            status, t, sigmas = gambit_time(N, method)
            # gambit's symmetric equilibria must be among the toolkit's (logit's limit is only
            # approximately an equilibrium, so it is compared more loosely)
            tol = 1e-5 if method == "gnm" else 1e-3
            symmetric = [s[0] for s in (sigmas or []) if max(s) - min(s) < tol]
            agree = all(any(abs(x - y) < tol for y in ours_sigma) for x in symmetric)
            rows.append({
                "name": f"anonymous game N={N}: toolkit vs pygambit {method}_solve",
                "value": ours * 1e3, "unit": "ms (toolkit)",
                "baseline": t * 1e3 if t is not None else None,
                "note": (f"pygambit: {status}, {len(sigmas)} equilibria, {len(symmetric)} symmetric "
                         f"(σ = {', '.join(f'{x:.4g}' for x in symmetric)}); toolkit: all "
                         f"{len(eqs)} symmetric (σ = {', '.join(f'{x:.4g}' for x in ours_sigma)})"
                         if t is not None else status),
                "ratio": (t / ours) if t is not None else None,
                "target": "pygambit's symmetric equilibria ⊆ toolkit's", "met": agree,
            })
    for N in (100, 1000, 10_000):
        t = best_time(lambda N=N: toolkit_solve(N))
        rows.append({"name": f"anonymous game N={N}: all symmetric equilibria", "value": t * 1e3,
                     "unit": "ms", "baseline": None, "ratio": None,
                     "target": "< 100 ms" if N == 10_000 else "", "met": (t < 0.1) if N == 10_000 else True})
    for p_h, p_j, F, M in ((0.9, 0.899, 1e-3, 1e-2), (0.9, 0.898, 1e-3, 1e-2)):
        t0 = time.perf_counter()
        d = c.design_window(p_h, [p_j], F, M)
        t = time.perf_counter() - t0
        rows.append({"name": f"window design p_h={p_h}, p_j={p_j}, targets {F:g}/{M:g}",
                     "value": t * 1e3, "unit": "ms", "baseline": None, "ratio": None,
                     "target": f"W = {d.window}", "met": d.feasible})
    return rows
