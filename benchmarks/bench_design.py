"""Audit-game design with K heterogeneous provider types (target: K = 10,000 under 5 s).

What is measured: the wall time of one :func:`mira_theory.design.design` call on
models/default.toml (throughput 0.01 tasks/s so the capital cost of the stake matters, S ≤ 10⁵)
with K random provider types (c_h ~ U(0.2, 0.6), λ ~ U(0.001, 0.1), κ ~ U(0.01, 0.2)), all four
variables free: validation, pruning, the sequential GP with constraint generation, and the
verification (audit.closed_form over all K types, audit.solve for the binding types). Best of
REPEATS. Correctness rows: the design is verified by the toolkit at every K.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

import mira_theory as mt
from mira_theory.design import design

TITLE = "audit design: cheapest (q, L, S, R) for K provider types"
ROOT = Path(__file__).resolve().parents[1]
QUICK = os.environ.get("BENCH_QUICK") == "1"
SIZES = (10, 100, 1000) if QUICK else (10, 100, 1000, 10_000)
REPEATS = 1 if QUICK else 3
TARGET_K, TARGET_S = 10_000, 5.0
SEED = 20261125


def _types(K: int, rng: np.random.Generator) -> list[dict]:
    c, lam, kap = rng.uniform(0.2, 0.6, K), rng.uniform(0.001, 0.1, K), rng.uniform(0.01, 0.2, K)
    return [{"name": f"t{i}", "cost_honest": float(c[i]), "throughput": float(lam[i]),
             "capital_cost": float(kap[i]), "share": 1.0 / K} for i in range(K)]


def run() -> list[dict]:
    scenario = mt.load(ROOT / "models" / "default.toml").replace({"stake.throughput": 0.01})
    design(scenario, S_max=1e5)  # warm-up: imports, cvxpy's first compile
    rng = np.random.default_rng(SEED)
    rows, checks = [], []
    for K in SIZES:
        types = _types(K, rng)
        best, res = float("inf"), None
        for _ in range(REPEATS):
            t0 = time.perf_counter()
            res = design(scenario, provider_types=types, S_max=1e5)
            best = min(best, time.perf_counter() - t0)
        target = K == TARGET_K
        rows.append({"group": "time", "name": f"design, K = {K:,} types", "value": best, "unit": "s",
                     "baseline": "", "ratio": None, "target": f"< {TARGET_S:g} s" if target else "",
                     "met": (best < TARGET_S) if target else None,
                     "note": f"{res.solves} GP solves; types after pruning: participation "
                             f"{res.pruned['participation']}, stake {res.pruned['stake']}; cost {res.objective:.6g}"})
        checks.append({"group": "checks", "name": f"K = {K:,}: design verified by the toolkit", "value": res.verified,
                     "unit": "", "baseline": "", "ratio": None, "target": "verified", "met": res.verified,
                     "check": True})
    return rows + checks


def describe() -> list[str]:
    return [f"types drawn with seed {SEED}; best of {REPEATS} run(s) per K; S_max = 1e5; all of q, L, S, R free"]


if __name__ == "__main__":
    for r in run():
        print(r)
