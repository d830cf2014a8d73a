"""Adaptive verifiers in the in-process network: a learned common rate q_t per batch.

The rate is fixed before a batch's commitments are made (every audit of the batch is
H(secret ‖ task id) < q_t, checked with the revealed secrets), logged on the batch's settle
event, and replayable from the log (the learner's update uses the batch's actions only).
"""

from __future__ import annotations

import numpy as np

from reference_node import events, models
from reference_node.inprocess import Network
from reference_node.params import load
from reference_node.strategies import VerifierHedge
from reference_node.testing import write_params
from reference_node.verifier import lead_index

ROWS = ["honest", "weaker-model", "random-output"]
B = [[-0.4, 0.0], [2.6, -1.5], [9.6, -5.0]]  # audit.bimatrix(default) verifier payoffs
ETA_V, Q0 = 2e-3, 0.05
MIX = ["hedge:0.02:1", "hedge:0.02:1", "hedge:0.02:1", "honest"]


def _run(tmp_path, name, seed=3, tasks=1536, learner=True):
    path = write_params(tmp_path / "p.json", parameters={"sampling_rate": Q0, "minimum_stake": 1e6})
    vl = VerifierHedge(ROWS, B, ETA_V, Q0) if learner else None
    net = Network(load(path), tmp_path / f"{name}.sqlite", MIX, verifiers=2, seed=seed, verifier_learner=vl)
    net.run(tasks, batch=128)
    net.finish()
    net.close()
    return list(events.iter_events(tmp_path / f"{name}.sqlite"))


def _batches(log):
    """Per batch (commits up to its settle): (q_t, commits, audited task ids)."""
    out, commits, audited = [], [], set()
    for e in log:
        if e["kind"] == "commit":
            commits.append(e)
        elif e["kind"] == "audit":
            audited.add(e["task_id"])
        elif e["kind"] == "settle" and "sampling_rate" in e:
            out.append((e["sampling_rate"], commits, audited))
            commits, audited = [], set()
    return out


def test_rate_is_logged_fixed_per_batch_and_replayable(tmp_path):
    log = _run(tmp_path, "a")
    batches = _batches(log)
    assert len(batches) == 1536 // 128
    secrets = {e["verifier"]: bytes.fromhex(e["secret"]) for e in log if e["kind"] == "reveal"}
    ids = sorted(secrets)
    replay = VerifierHedge(ROWS, B, ETA_V, Q0)
    for q, commits, audited in batches:
        assert q == replay.rate()  # the rate in force was the learner's before the batch
        for c in commits:  # audits of the batch: exactly H(secret ‖ task) < q_t of the lead verifier
            lead = ids[lead_index(c["task_id"], len(ids))]
            assert (models.unit_hash(secrets[lead], "audit", c["task_id"]) < q) == (c["task_id"] in audited)
        counts: dict[str, int] = {}
        for c in commits:
            counts[c["action"]] = counts.get(c["action"], 0) + 1
        replay.observe(counts)
    qs = [b[0] for b in batches]
    assert abs(qs[0] - Q0) < 1e-12 and len(set(qs)) > 5  # the rate moves


def test_same_seed_same_rates_and_off_mode_has_no_rate(tmp_path):
    a = _run(tmp_path, "a")
    b = _run(tmp_path, "b")
    assert a == b
    off = _run(tmp_path, "off", learner=False)
    assert not any("sampling_rate" in e for e in off)


def test_learner_moves_towards_auditing_deviations():
    vl = VerifierHedge(ROWS, B, 1e-3, 0.05)
    vl.observe({"weaker-model": 100})
    assert vl.rate() > 0.05
    vl2 = VerifierHedge(ROWS, B, 1e-3, 0.05)
    vl2.observe({"honest": 100})
    assert vl2.rate() < 0.05
    expected = 1.0 / (1.0 + np.exp(np.log(0.95 / 0.05) - 1e-3 * 100 * (-0.4)))
    assert abs(vl2.rate() - expected) < 1e-12


def test_settle_rejects_a_sampling_rate_outside_0_1_and_changes_nothing(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    from reference_node.ledger import Ledger
    from reference_node.params import load

    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "p.json"
    subprocess.run([str(Path(sys.executable).with_name("mira-theory")), "export", str(root / "models" / "default.toml"),
                    "-o", str(out)], check=True, capture_output=True)
    ledger = Ledger(tmp_path / "l.sqlite", load(out))
    for bad in (1.5, -0.1, True, "0.2"):
        [r] = ledger.execute([{"op": "settle", "request_id": f"s-{bad!r}", "sampling_rate": bad}])
        assert r["status"] == 422 and "sampling_rate" in r["error"]
    assert ledger.seq == 0  # no event written
    [r] = ledger.execute([{"op": "settle", "request_id": "ok", "sampling_rate": 0.25}])
    assert r["ok"] and r["sampling_rate"] == 0.25 and ledger.seq == 1
    ledger.close()
