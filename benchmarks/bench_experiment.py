"""An in-process experiment of 100,000 tasks (target: under 60 s).

What is measured: the wall time of one :func:`mira_theory.experiment.run_experiment` on
models/default.toml, 8 providers (honest 3, weaker-model 2, random-output 2,
mixed:weaker-model:0.5 1), 2 verifiers, seed 1, stake raised to 10⁶ so no deviator's stake
runs out: export, the in-process network (signatures verified), the one streaming pass over
the event log, every comparison, events.jsonl, report and plot. The network's own share is
reported separately. Correctness row: every prediction passes.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import mira_theory as mt
from mira_theory.experiment import run_experiment

TITLE = "experiment: predictions against an executed in-process run"
ROOT = Path(__file__).resolve().parents[1]
QUICK = os.environ.get("BENCH_QUICK") == "1"
TASKS = 10_000 if QUICK else 100_000
TARGET_S = 60.0
MIX = "honest=3,weaker-model=2,random-output=2,mixed:weaker-model:0.5=1"


def run() -> list[dict]:
    scenario = mt.load(ROOT / "models" / "default.toml").replace({"stake.total": 1e6})
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        r = run_experiment(scenario, tasks=TASKS, providers=8, mix=MIX, seed=1, out=Path(tmp) / "run")
        total = time.perf_counter() - t0
    network = r.run["workload"]["seconds"]
    target = TASKS == 100_000
    return [
        {"group": "time", "name": f"experiment, {TASKS:,} tasks in-process (total)", "value": total, "unit": "s",
         "baseline": "", "ratio": None, "target": f"< {TARGET_S:g} s" if target else "",
         "met": (total < TARGET_S) if target else None,
         "note": f"network {network:.1f} s ({TASKS / network:,.0f} tasks/s); log, comparisons, report "
                 f"{total - network:.1f} s; {len(r.comparisons)} comparisons"},
        {"group": "time", "name": "of which the network run", "value": network, "unit": "s", "baseline": "",
         "ratio": None, "target": "", "met": None, "note": ""},
        {"group": "checks", "name": "every prediction passes (Holm, 99%)", "value": r.passed, "unit": "",
         "baseline": "", "ratio": None, "target": "pass", "met": r.passed, "check": True},
    ]


def describe() -> list[str]:
    return [f"{TASKS:,} tasks, 8 providers ({MIX}), 2 verifiers, seed 1, signatures verified"]


if __name__ == "__main__":
    for row in run():
        print(row)
