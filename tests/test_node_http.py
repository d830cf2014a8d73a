"""Real processes on loopback: a small `mira-node up` run, bad input to every endpoint, kill -9."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import threading
import time

import httpx
import pytest
from scipy.stats import binomtest

from reference_node import crypto, events, models
from reference_node.cli import Cluster, free_port
from reference_node.crypto import Key
from reference_node.ledger import Ledger
from reference_node.params import load
from reference_node.testing import ROOT, assert_rejected, write_params
from reference_node.verifier import Verifier

SEED = 7
GOOD, OTHER = models.task_input("http", 0), models.task_input("http", 1)  # valid inputs (two images)


def _invariant_holds(db) -> Ledger:
    led = Ledger(db, load(_invariant_holds.params_path))  # _load() checks the full invariant
    led.close()
    return led


# ----------------------------------------------------------------------------------------
# integration: mira-node up over HTTP
# ----------------------------------------------------------------------------------------


def test_up_runs_a_small_workload_over_http(tmp_path):
    path = write_params(tmp_path / "p.json", parameters={"sampling_rate": 0.3, "minimum_stake": 5000.0})
    out = tmp_path / "run"
    tasks = 600
    proc = subprocess.run([sys.executable, "-m", "reference_node.cli", "up", "--params", str(path), "--providers", "3",
                           "--verifiers", "2", "--tasks", str(tasks), "--out", str(out), "--seed", str(SEED),
                           "--mix", "honest=1,weaker-model=1,random-output=1", "--quiet"],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    s = summary["by_strategy"]
    assert summary["totals"]["tasks"] == tasks and summary["workload"]["ok"] == tasks
    assert {k: v["tasks"] for k, v in s.items()} == {"honest": 200, "weaker-model": 200, "random-output": 200}
    # honest deterministic outputs are never slashed; with δ = 1, β = 0, r = 0 every audit of a
    # random output detects it; a weaker-model output is detected only when it diverged
    assert s["honest"]["detections"] == s["honest"]["false_slashes"] == 0
    assert s["random-output"]["detections"] == s["random-output"]["audits"] > 0
    assert 0 < s["weaker-model"]["detections"] <= s["weaker-model"]["audits"]
    # the audits are exactly the tasks the verifiers' secrets select (independently recomputed)
    params = load(path)
    vs = [Verifier(f"verifier-{i}", params, i, 2, SEED) for i in range(2)]
    ids = [f"t{SEED}-{i:09d}" for i in range(tasks)]
    assert summary["totals"]["audits"] == sum(any(v.selects(t) for v in vs) for t in ids)
    assert binomtest(summary["totals"]["audits"], tasks, 0.3).pvalue > 1e-4
    # every fee is paid to the provider, except the slashed tasks' fees, refunded to the client
    t = summary["totals"]
    assert t["paid_to_providers"] == pytest.approx(tasks - t["slashes"])
    assert t["bounties"] == pytest.approx(t["slashes"] * params.slash * params.bounty_share)
    # the event log: one line per ledger event, gap-free, and the ledger reopens with the invariant
    lines = (out / "events.jsonl").read_text().splitlines()
    assert [json.loads(x)["seq"] for x in lines] == list(range(1, len(lines) + 1))
    _invariant_holds.params_path = path
    _invariant_holds(out / "ledger.sqlite")
    reveals = [json.loads(x) for x in lines if json.loads(x)["kind"] == "reveal"]
    assert len(reveals) == 2
    assert "tasks/s" in proc.stdout
    # the services are gone: their ports refuse connections
    for port_file in (out / "ports").iterdir():
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{port_file.read_text()}/health", timeout=2)


def test_up_rejects_bad_params_and_options(tmp_path):
    bad = tmp_path / "bad.json"
    doc = json.loads(write_params(tmp_path / "p.json").read_text())
    doc["parameters"]["sampling_rate"] = 1.5
    del doc["environment"]["audit"]["miss_rate"]
    bad.write_text(json.dumps(doc))
    cases = [
        (["--params", str(bad)], ["parameters.sampling_rate", "environment.audit.miss_rate"]),
        (["--params", str(tmp_path / "missing.json")], ["no such file"]),
        (["--params", str(tmp_path / "p.json"), "--mix", "honest=1,bogus=2"], ["bogus"]),
    ]
    for extra, needles in cases:
        r = subprocess.run([sys.executable, "-m", "reference_node.cli", "up", "--providers", "3", "--tasks", "10",
                            "--out", str(tmp_path / "o"), *extra], capture_output=True, text=True, cwd=ROOT)
        assert r.returncode == 2, r.stderr
        assert "Traceback" not in r.stderr
        for n in needles:
            assert n in r.stderr


# ----------------------------------------------------------------------------------------
# bad input to every endpoint: 4xx, clear message, ledger unchanged
# ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    path = write_params(d / "p.json")
    c = Cluster(str(path), d, SEED)
    try:
        lp, ap = free_port(), free_port()
        led, arb = f"http://127.0.0.1:{lp}", f"http://127.0.0.1:{ap}"
        _, _, prov, ver = c.start_many([
            ("ledger", ["ledger", "--db", str(d / "l.sqlite"), "--settle-every", "0"], lp),
            ("arbiter", ["arbiter", "--ledger", led], ap),
            ("provider", ["provider", "--ledger", led, "--id", "p0"], 0),
            ("verifier", ["verifier", "--ledger", led, "--arbiter", arb, "--id", "v0"], 0)])
        with httpx.Client(timeout=10) as h:
            for _ in range(200):  # registrations are done
                accounts = h.get(f"{led}/summary").json()["accounts"]
                if {"p0", "v0", "arbiter"} <= set(accounts):
                    break
                time.sleep(0.05)
            good = h.post(f"{prov}/infer", json={"task_id": "ok-1", "input": GOOD, "client": "c", "fee": 1.0})
            assert good.status_code == 200, good.text
        yield {"ledger": led, "arbiter": arb, "provider": prov, "verifier": ver, "commit": good.json(),
               "params": load(path)}
    finally:
        c.stop()


def _events(h, led):
    return h.get(f"{led}/summary").json()["events"]


def _cases(cl):
    led, prov, arb, ver = cl["ledger"], cl["provider"], cl["arbiter"], cl["verifier"]
    c = cl["commit"]
    big = b"[" + b"1," * (600_000) + b"1]"
    commit = {"request_id": "n1", "task_id": "n-1", "provider": "p0", "client": "c", "fee": 1.0,
              "input_hash": c["input_hash"], "output_hash": c["output_hash"], "model_id": c["model_id"],
              "signature": c["signature"], "input": GOOD, "output": c["output"]}
    resolve_sig = Key(SEED, "arbiter").sign(crypto.verdict_message("ok-1", "v0", "upheld"))
    ref = models.run_declared([GOOD])[0].tolist()
    honest_ev = {"task_id": "ok-1", "verifier": "v0", "commitment_signature": c["signature"],
                 "recomputed_output": ref,
                 "signature": Key(SEED, "v0").sign(crypto.evidence_message("ok-1", "v0", c["signature"],
                                                                           models.output_hash(ref)))}
    return [
        # ledger
        ("POST", f"{led}/ops", b"{not json", 400, "JSON"),
        ("POST", f"{led}/ops", big, 413, "bytes"),
        ("POST", f"{led}/ops", {"op": "deposit"}, 422, "list"),
        ("POST", f"{led}/deposit", {"request_id": "a", "account": "p0", "amount": -5}, 422, "amount"),
        ("POST", f"{led}/deposit", b'{"request_id": "a", "account": "p0", "amount": NaN}', 422, "finite"),
        ("POST", f"{led}/deposit", {"request_id": "a", "account": "p0", "amount": "10"}, 422, "amount"),
        ("POST", f"{led}/deposit", {"request_id": "a", "account": "ghost", "amount": 5}, 404, "unknown account"),
        ("POST", f"{led}/withdraw", {"request_id": "a", "account": "p0", "amount": 5}, 409, "exceeds"),
        ("POST", f"{led}/withdraw", {"request_id": "a", "account": "p0", "amount": 1e9, "source": "stake"}, 409,
         "exceeds"),
        ("POST", f"{led}/register", {"request_id": "a", "account": "x", "kind": "provider", "pubkey": "zz"}, 422,
         "pubkey"),
        ("POST", f"{led}/register", {"request_id": "a", "account": "p0", "kind": "provider",
                                     "pubkey": Key(1, "x").public_hex}, 409, "already registered"),
        ("POST", f"{led}/commit", {**commit, "signature": "ab" * 64}, 401, "signature"),
        ("POST", f"{led}/commit", {k: v for k, v in commit.items() if k != "signature"}, 422, "signature"),
        ("POST", f"{led}/commit", {**commit, "task_id": "ok-1"}, 409, "already committed"),
        ("POST", f"{led}/commit", {**commit, "fee": -1}, 422, "fee"),
        ("POST", f"{led}/challenge", {"request_id": "a", "task_id": "nope", "verifier": "v0",
                                      "evidence_hash": "0" * 64}, 404, "unknown task"),
        ("POST", f"{led}/resolve", {"request_id": "a", "task_id": "ok-1", "arbiter": "arbiter", "verifier": "v0",
                                    "verdict": "upheld", "signature": resolve_sig}, 409, "challenge"),
        ("POST", f"{led}/settle", {"request_id": "a", "limit": -3}, 422, "limit"),
        ("POST", f"{led}/advance", b'{"request_id": "a", "seconds": Infinity}', 422, "finite"),
        ("POST", f"{led}/advance", {"request_id": "a", "seconds": -1}, 422, "seconds"),
        ("POST", f"{led}/reveal", {"request_id": "a", "verifier": "v0", "secret": "1" * 64}, 422, "preimage"),
        ("POST", f"{led}/audit", {"task_id": "ok-1", "verifier": "v0", "outcome": "maybe"}, 422, "outcome"),
        ("GET", f"{led}/task/nope", None, 404, "unknown task"),
        ("GET", f"{led}/account/nope", None, 404, "unknown account"),
        ("GET", f"{led}/commitments?after=x", None, 422, "after"),
        ("GET", f"{led}/events?limit=0", None, 422, "limit"),
        # provider
        ("POST", f"{prov}/infer", b"[[[", 400, "JSON"),
        ("POST", f"{prov}/infer", big, 413, "bytes"),
        ("POST", f"{prov}/infer", [1, 2], 422, "object"),
        ("POST", f"{prov}/infer", {"task_id": "t-x", "client": "c", "fee": 1.0}, 422, "input"),
        ("POST", f"{prov}/infer", {"task_id": "t-x", "input": 5, "client": "c", "fee": 1.0}, 422, "input"),
        ("POST", f"{prov}/infer", {"task_id": "t-x", "input": "q", "client": "c", "fee": -1}, 422, "fee"),
        ("POST", f"{prov}/infer", {"task_id": "t-x", "input": "q", "client": "c", "fee": 0.5}, 422, "reward"),
        ("POST", f"{prov}/infer", {"task_id": "bad id!", "input": "q", "client": "c", "fee": 1.0}, 422, "task_id"),
        ("POST", f"{prov}/infer", {"task_id": "ok-1", "input": OTHER, "client": "c", "fee": 1.0}, 409,
         "already committed"),
        ("POST", f"{prov}/infer", {"task_id": "t-y", "input": "hi", "client": "c", "fee": 1.0}, 422, "digits8x8:"),
        ("POST", f"{prov}/infer", {"task_id": "t-y", "input": GOOD[:-1] + "h", "client": "c", "fee": 1.0}, 422,
         "pixel 63"),
        # arbiter
        ("POST", f"{arb}/evidence", b"{", 400, "JSON"),
        ("POST", f"{arb}/evidence", big, 413, "bytes"),
        ("POST", f"{arb}/evidence", {"task_id": "ok-1"}, 422, "verifier"),
        ("POST", f"{arb}/evidence", {**honest_ev, "recomputed_output": [1, 2]}, 422, "recomputed_output"),
        ("POST", f"{arb}/evidence", {**honest_ev, "recomputed_output": [float(v) for v in ref]}, 422,
         "recomputed_output"),
        ("POST", f"{arb}/evidence", {**honest_ev, "task_id": "nope"}, 404, "unknown task"),
        ("POST", f"{arb}/evidence", {**honest_ev, "commitment_signature": "ab" * 64}, 422, "forged"),
        ("POST", f"{arb}/evidence", {**honest_ev, "signature": "ab" * 64}, 401, "signature"),
        ("POST", f"{arb}/evidence", honest_ev, 409, "no open challenge"),
        # verifier
        ("POST", f"{ver}/reveal", big, 413, "bytes"),
        ("GET", f"{ver}/nope", None, 404, ""),
    ]


def test_bad_input_to_every_endpoint_is_rejected_and_changes_nothing(cluster):
    with httpx.Client(timeout=10) as h:
        before = _events(h, cluster["ledger"])
        for method, url, body, status, needle in _cases(cluster):
            r = assert_rejected(h, method, url, body, status, needle)
            assert _events(h, cluster["ledger"]) == before, (url, r.text)
        # a replayed commitment request (same request id) is idempotent, not a new event
        r = h.post(f"{cluster['ledger']}/ops", json=[{"op": "settle", "request_id": "settle-once"}])
        assert r.json()["results"][0]["ok"]
        after = _events(h, cluster["ledger"])
        r = h.post(f"{cluster['ledger']}/ops", json=[{"op": "settle", "request_id": "settle-once"}])
        assert r.json()["results"][0]["replayed"] and _events(h, cluster["ledger"]) == after


# ----------------------------------------------------------------------------------------
# kill -9 mid-run, restart, verify
# ----------------------------------------------------------------------------------------


def test_sigkill_of_ledger_provider_and_verifier_mid_run_loses_nothing(tmp_path):
    path = write_params(tmp_path / "p.json", parameters={"sampling_rate": 0.5, "minimum_stake": 5000.0})
    params = load(path)
    c = Cluster(str(path), tmp_path, SEED)
    db = tmp_path / "l.sqlite"
    n = 900
    try:
        ledger_port, ap = free_port(), free_port()
        led, arb = f"http://127.0.0.1:{ledger_port}", f"http://127.0.0.1:{ap}"
        ver_argv = ["verifier", "--ledger", led, "--arbiter", arb, "--id", "verifier-0"]
        provs = c.start_many([("ledger", ["ledger", "--db", str(db), "--settle-every", "0.2"], ledger_port),
                              ("arbiter", ["arbiter", "--ledger", led], ap), ("verifier-0", ver_argv, 0)] + [
            (f"provider-{i}", ["provider", "--ledger", led, "--id", f"provider-{i}", "--strategy", s], 0)
            for i, s in enumerate(["honest", "random-output"])])[3:]
        from reference_node.client import Client

        client = Client(provs, params.reward, seed=SEED, concurrency=16, rate=450)
        result: dict = {}
        th = threading.Thread(target=lambda: result.update(asyncio.run(client.run(n))))
        th.start()
        time.sleep(0.8)
        c.procs["ledger"].kill()  # SIGKILL
        c.procs["ledger"].wait()
        _invariant_holds.params_path = path
        _invariant_holds(db)  # the on-disk state after the crash is consistent
        c.start("ledger", ["ledger", "--db", str(db), "--settle-every", "0.2"], port=ledger_port)
        time.sleep(0.5)
        prov_port = int(provs[1].rsplit(":", 1)[1])
        for name in ("verifier-0", "provider-1"):  # the random-output provider and the verifier
            c.procs[name].kill()
            c.procs[name].wait()
        c.start_many([("verifier-0", ver_argv, 0),
                      ("provider-1", ["provider", "--ledger", led, "--id", "provider-1", "--strategy",
                                      "random-output"], prov_port)])
        th.join(90)
        assert not th.is_alive()
        assert result["ok"] == n and result["failed"] == 0, result
        with httpx.Client(timeout=10) as h:
            for _ in range(300):
                st = h.get(f"{c.urls['verifier-0']}/status").json()
                if st["idle"] and st["cursor"] >= n:
                    break
                time.sleep(0.1)
    finally:
        c.stop()
    rows = sqlite3.connect(db).execute("SELECT COUNT(*) FROM tasks").fetchone()[0]
    assert rows == n  # every task whose reply the client saw is on the ledger, none twice
    _invariant_holds(db)
    evs = list(events.iter_events(db))
    assert [e["seq"] for e in evs] == list(range(1, len(evs) + 1))
    s = events.summarize(evs)
    v = Verifier("verifier-0", params, 0, 1, SEED)
    expected = sum(v.selects(f"t{SEED}-{i:09d}") for i in range(n))
    assert s["totals"]["audits"] == expected  # each selected task audited exactly once despite the restarts
    assert s["by_strategy"]["honest"]["detections"] == 0
    assert s["by_strategy"]["random-output"]["detections"] == s["by_strategy"]["random-output"]["audits"]
