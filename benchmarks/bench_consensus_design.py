"""Consensus mechanism design: the MILP + exact window search against brute-force enumeration.

What is measured: the wall time of one :func:`mira_theory.consensus_design.design_consensus`
call on models/large-committee.toml (max_capture 1e-4, every variable free, W ≤ 2,000) for N_max = 11, 101 and
1001, beside a brute force that runs the same exact window search on *every* (N, K) pair with
N ≤ N_max (no ordering, no early stop) and takes the cheapest feasible one. Best of REPEATS.
The brute force at N_max = 1001 is given a time budget; past it the rate over the pairs it did
check is extrapolated to all pairs (marked "extrapolated"). Correctness rows: the design is
verified by consensus.solve and equals the brute force's choice wherever the brute force ran
to the end.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import mira_theory as mt
from mira_theory import consensus_design as CD

TITLE = "consensus design: cheapest (N, τ, W, θ, L), MILP vs brute force"
ROOT = Path(__file__).resolve().parents[1]
W_MAX = 2000
BUDGET_S = 60.0
MAX_CAPTURE = 1e-4


def brute_force(sc, N_max: int, budget: float) -> tuple[float, tuple | None, bool, int]:
    """(seconds, best (N, K, W, L) or None, complete?, pairs) by checking every pair's window search."""
    opts = CD._Opts(frozenset(CD.VARIABLES), N_max, W_MAX, float("inf"), 0.0)
    t0 = time.perf_counter()
    cand = CD._candidates(sc, opts, list(range(1, N_max + 1)))
    best, checked = None, 0
    for i in range(len(cand)):
        if time.perf_counter() - t0 > budget:
            rate = (time.perf_counter() - t0) / max(checked, 1)
            return rate * len(cand), best, False, len(cand)
        checked += 1
        if cand.capture[i] > sc.network.max_capture or cand.budget[i] < 0:
            continue  # the same rows the design uses; the window search decides the rest
        pair = CD._Pair(sc, int(cand.N[i]), int(cand.K[i]), opts, (cand.p_h[i], cand.p_j[i]))
        res = CD._inner(pair, sc, opts)
        if res.feasible:
            key = (pair.N, pair.K, res.window, res.slash)
            best = key if best is None or key < best else best
    return time.perf_counter() - t0, best, True, len(cand)


def run(quick: bool | None = None) -> list[dict]:
    quick = os.environ.get("BENCH_QUICK") == "1" if quick is None else quick
    repeats = 1 if quick else 3
    sizes = (11, 101) if quick else (11, 101, 1001)
    # max_capture 1e-4 (not the file's 1e-9) so that committees of ≤ 11 can be secure too
    sc = mt.load(ROOT / "models" / "large-committee.toml").replace({"network.max_capture": MAX_CAPTURE})
    CD.design_consensus(sc, N_max=11, W_max=W_MAX)  # warm-up: imports, cvxpy's first compile
    rows, checks = [], []
    for N_max in sizes:
        sc_n = sc.replace({"network.nodes": max(N_max, sc.network.nodes)})
        best, res = float("inf"), None
        for _ in range(repeats):
            t0 = time.perf_counter()
            res = CD.design_consensus(sc_n, N_max=N_max, W_max=W_MAX)
            best = min(best, time.perf_counter() - t0)
        bf_time, bf_best, complete, pairs = brute_force(sc_n, N_max, BUDGET_S / (4 if quick else 1))
        p = res.parameters
        rows.append({"group": "time", "name": f"design, N_max = {N_max}", "value": best, "unit": "s",
                     "baseline": bf_time, "ratio": bf_time / best if best > 0 else None, "target": "", "met": None,
                     "note": (f"{res.status}: N = {p['committee_size']:g}, K = {res.quorum}, W = {p['window']:g}; "
                              f"{res.search['candidates']} pairs generated, {res.search['inner_checks']} window "
                              f"search(es), {res.search['milp_binaries']} MILP binaries; brute force over "
                              f"{pairs} pairs"
                              + ("" if complete else " (extrapolated)"))})
        checks.append({"group": "checks", "name": f"N_max = {N_max}: verified by consensus.solve",
                       "value": res.verified, "unit": "", "baseline": "", "ratio": None, "target": "verified",
                       "met": res.verified, "check": True})
        if complete:
            same = (bf_best is None and not res.feasible) or (
                bf_best is not None and res.feasible
                and bf_best[:3] == (int(p["committee_size"]), res.quorum, int(p["window"])))
            checks.append({"group": "checks", "name": f"N_max = {N_max}: design equals brute force",
                           "value": same, "unit": "", "baseline": "", "ratio": None, "target": "equal",
                           "met": same, "check": True})
    return rows + checks


def describe() -> list[str]:
    return [f"models/large-committee.toml with max_capture = {MAX_CAPTURE:g}, all five variables free, W_max = {W_MAX}; brute force = the same "
            "exact window search on every (N, K) pair, capped at "
            f"{BUDGET_S:g} s and extrapolated beyond"]


if __name__ == "__main__":
    for r in run():
        print(r)
