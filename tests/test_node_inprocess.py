"""The in-process network: reproducible by seed, realised detection against the predictions."""

from __future__ import annotations

import json

import pytest
from scipy.stats import binomtest

from reference_node import events
from reference_node.cli import main
from reference_node.inprocess import Network
from reference_node.params import load
from reference_node.testing import write_params

MIX = ["honest", "honest", "weaker-model", "random-output", "mixed:weaker-model:0.5", "hedge"]


def _run(tmp_path, name, params_path, seed, tasks=600):
    net = Network(load(params_path), tmp_path / f"{name}.sqlite", MIX, verifiers=2, seed=seed)
    net.run(tasks, batch=256)
    net.finish()
    net.close()
    return [{k: v for k, v in e.items()} for e in events.iter_events(tmp_path / f"{name}.sqlite")]


def test_same_seed_same_event_log(tmp_path):
    path = write_params(tmp_path / "p.json", parameters={"sampling_rate": 0.2, "minimum_stake": 5000.0})
    a = _run(tmp_path, "a", path, seed=5)
    b = _run(tmp_path, "b", path, seed=5)
    c = _run(tmp_path, "c", path, seed=6, tasks=200)
    assert a == b
    assert len(a) > 600 + 20  # commits, audits, slashes, settles: not a trivial log
    assert a[:len(c)] != c


def test_realised_detection_matches_q_e_delta_one_minus_beta(tmp_path):
    """Detections per task of each fixed deviation against the exported prediction d_j."""
    path = write_params(tmp_path / "p.json", parameters={"sampling_rate": 0.5, "minimum_stake": 1e6})
    params = load(path)
    net = Network(params, tmp_path / "l.sqlite", ["honest", "weaker-model", "random-output"], verifiers=2, seed=9)
    net.run(3000, batch=512)
    net.finish()
    net.close()
    s = events.summarize(events.iter_events(tmp_path / "l.sqlite"))["by_strategy"]
    q, r, n, beta = params.sampling_rate, params.collusion, params.verifiers_per_audit, params.miss_rate
    for dev in ("weaker-model", "random-output"):
        d = q * (1 - r ** n) * params.deviation(dev).divergence * (1 - beta)
        k, tasks = s[dev]["detections"], s[dev]["tasks"]
        assert tasks == 1000
        assert binomtest(k, tasks, d).pvalue > 1e-4, (dev, k, tasks, d)
    assert s["honest"]["false_slashes"] == 0
    # realised payoff per task of the honest provider: R − c_h exactly (never slashed, all fees paid)
    assert s["honest"]["payoff_per_task"] == pytest.approx(params.reward - params.cost_honest)


def test_mira_node_up_inprocess_writes_the_run_directory(tmp_path, capsys):
    path = write_params(tmp_path / "p.json")
    out = tmp_path / "run"
    assert main(["up", "--params", str(path), "--providers", "3", "--verifiers", "1", "--tasks", "600",
                 "--out", str(out), "--mix", "honest=2,random-output=1", "--inprocess", "--quiet"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["totals"]["tasks"] == 600
    assert sum(1 for _ in open(out / "events.jsonl")) == summary["events"]
    assert "honest" in capsys.readouterr().out
    # a second run into the same directory is refused (exit 2) unless --resume
    assert main(["up", "--params", str(path), "--tasks", "10", "--out", str(out), "--inprocess", "--quiet"]) == 2


@pytest.mark.parametrize("learner", [False, True])
def test_crypto_pool_and_pipeline_leave_no_trace(tmp_path, learner):
    """Signing and verifying on the thread pool, batch k+1 made (by a stage thread, or by the
    providers' own process) while batch k is recorded: the same event log, event for event, as the
    sequential run without a pool. Two runs on one network, so the worker's state carries over."""
    path = write_params(tmp_path / "p.json", parameters={"sampling_rate": 0.2, "minimum_stake": 5000.0})
    logs = []
    for parallel, worker in ((False, False), (True, False), (True, True)):
        name = f"par-{parallel}-{worker}"
        mix = MIX if learner else MIX[:-1]  # a learning provider turns the pipeline off
        net = Network(load(path), tmp_path / f"{name}.sqlite", mix, verifiers=2, seed=5, parallel=parallel,
                      worker=worker)
        net.run(700, batch=256)
        net.run(500, batch=128)
        if parallel:
            assert net.pool is not None and net._pipelined() != learner  # the pool (and pipeline) really ran
            assert (net._worker is not None) == (worker and not learner)
        net.finish()
        net.close()
        logs.append(list(events.iter_events(tmp_path / f"{name}.sqlite")))
    assert logs[0] == logs[1] == logs[2]
    assert len(logs[0]) > 1200


def test_batch_preverification_rejects_a_bad_signature(tmp_path):
    """The ledger's up-front (pooled) verification rejects exactly the forged commitment of a batch."""
    from reference_node.models import task_input
    from reference_node.parallel import CryptoPool
    from reference_node.provider import Task

    path = write_params(tmp_path / "p.json")
    net = Network(load(path), tmp_path / "v.sqlite", ["honest"], verifiers=1, seed=2, parallel=False)
    pool = net.ledger.crypto_pool = CryptoPool(min_batch=8)
    try:
        ops = [op for _, op in net.providers[0].infer([Task(f"t-{i}", task_input(2, i), "client-0", 1.0) for i in range(100)])]
        ops[37] = {**ops[37], "signature": ops[36]["signature"]}
        results = net.ledger.execute(ops)
        assert net.ledger._verified == {}  # every commitment used its pooled result
        assert [i for i, r in enumerate(results) if not r["ok"]] == [37]
        assert results[37]["status"] == 401
        # results computed elsewhere are taken as given: the jobs of a fresh batch, one marked false
        ops = [op for _, op in net.providers[0].infer([Task(f"u-{i}", task_input(3, i), "client-0", 1.0)
                                                       for i in range(10)])]
        verified = pool.verify(net.ledger.verify_jobs(ops))
        assert verified == [True] * 10
        verified[4] = False
        results = net.ledger.execute(ops, verified=verified)
        assert [i for i, r in enumerate(results) if not r["ok"]] == [4]
    finally:
        pool.close()
        net.close()


def test_no_worker_once_this_process_made_tasks(tmp_path):
    """The providers' process starts from the seed, so it is not started for a network whose own
    providers already made tasks (their random state is ahead): a later run keeps them, and the log
    equals the sequential run's."""
    path = write_params(tmp_path / "p.json", parameters={"sampling_rate": 0.2, "minimum_stake": 5000.0})
    logs = []
    for name, parallel in (("seq", False), ("late", True)):
        net = Network(load(path), tmp_path / f"{name}.sqlite", MIX[:-1], verifiers=2, seed=9, parallel=parallel)
        net.run(300, batch=128)
        net.worker = True  # asked for, too late: the parent's providers have moved on
        net.run(300, batch=128)
        assert net._worker is None
        net.finish()
        net.close()
        logs.append(list(events.iter_events(tmp_path / f"{name}.sqlite")))
    assert logs[0] == logs[1]
