"""The consensus game over HTTP: real processes on loopback (`mira-node up` with consensus params,
bad input to every new endpoint, kill -9 of the ledger and a node mid-run, Ctrl-C)."""

from __future__ import annotations

import asyncio
import copy
import json
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import defaultdict

import httpx
import pytest

from mira_theory import deployment
from mira_theory.api import load
from reference_node import crypto, events
from reference_node.cli import Cluster, free_port, main
from reference_node.committee import (
    CommitteeLedger,
    CommitteeNode,
    CommitteeParams,
    run_committee,
    summarize_committee,
    vote_commitment,
    vote_message,
)
from reference_node.committee_services import Coordinator
from reference_node.testing import ROOT, assert_rejected

SEED = 7


@pytest.fixture(scope="module")
def params_path(tmp_path_factory):
    doc = copy.deepcopy(deployment.export(load(ROOT / "models" / "binary-claims.toml")))
    doc["parameters"]["window"] = 20  # windows close within a short run
    doc["environment"]["slashing"]["window"] = 20
    path = tmp_path_factory.mktemp("params") / "binary.json"
    path.write_text(json.dumps(doc))
    return path


def _comparable(db) -> dict:
    """The decision events (sealed votes, decided claims, windows) without log positions and times."""
    out = {}
    for e in events.iter_events(db):
        if e["kind"] in ("vote_commit", "claim", "window"):
            for k in ("seq", "time", "request_digest", "commit_seq"):
                e.pop(k, None)
            out[e["request_id"]] = e
    return out


def _check_rules(evs: list[dict], cp: CommitteeParams, complete: bool = True) -> None:
    """Every decision in the log follows the consensus rules, recomputed from the log alone."""
    keys = {e["account"]: crypto.public_key(e["pubkey"]) for e in evs if e["kind"] == "register"}
    committed = {e["claim_id"]: e for e in evs if e["kind"] == "vote_commit"}
    history: dict[str, list[bool]] = defaultdict(list)
    windows = {(e["node"], e["window"]): e for e in evs if e["kind"] == "window"}
    seen = set()
    for e in evs:
        if e["kind"] != "claim":
            continue
        cid = e["claim_id"]
        assert cid not in seen and committed[cid]["seq"] < e["seq"]  # decided once, after its commit
        seen.add(cid)
        c = committed[cid]
        assert e["committee"] == c["committee"] and e["commitments"] == c["commitments"]
        for node, v, com, salt, sig in zip(e["committee"], e["votes"], e["commitments"], e["salts"],
                                           e["signatures"]):
            if v is not None:
                assert vote_commitment(cid, node, v, bytes.fromhex(salt)) == com
                assert crypto.verify(keys[node], sig, vote_message(cid, node, v))
        counts = [sum(v == o for v in e["votes"]) for o in range(cp.options)]
        top = max(range(cp.options), key=lambda o: (counts[o], -o))
        consensus = top if counts[top] >= cp.quorum else None
        assert e["consensus"] == consensus and e["correct"] == (None if consensus is None else consensus == e["truth"])
        matches = [v is not None and v == consensus for v in e["votes"]]
        assert e["paid"] == pytest.approx(cp.reward * sum(matches))
        for node, m in zip(e["committee"], matches):
            history[node].append(m)
            if len(history[node]) % cp.window == 0:
                w = windows.pop((node, len(history[node]) // cp.window - 1))
                assert w["task_id"] == cid and w["matches"] == sum(history[node][-cp.window:])
                assert w["slashed"] == (w["matches"] < cp.required)
    assert not windows  # no window event without its claims
    assert len(seen) == len(committed) or not complete  # an interrupted run may leave claims sealed


# ----------------------------------------------------------------------------------------
# integration: mira-node up with consensus params
# ----------------------------------------------------------------------------------------


def test_up_runs_a_committee_workload_over_http(params_path, tmp_path):
    out = tmp_path / "run"
    claims = 400
    proc = subprocess.run([sys.executable, "-m", "reference_node.cli", "up", "--params", str(params_path),
                           "--nodes", "6", "--claims", str(claims), "--mix", "honest=5,random-guess=1",
                           "--withhold", "node-0=0.5", "--out", str(out), "--seed", str(SEED), "--quiet"],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "claims/s" in proc.stdout
    summary = json.loads((out / "summary.json").read_text())
    cp = CommitteeParams.from_doc(params_path)
    w = summary["workload"]
    assert w["decided"] == claims and w["failed"] == 0 and w["bad_seals"] == w["bad_reveals"] == 0
    assert summary["claims"] == claims and sum(summary["outcomes"].values()) == claims
    lines = [json.loads(x) for x in (out / "events.jsonl").read_text().splitlines()]
    assert [e["seq"] for e in lines] == list(range(1, len(lines) + 1))
    assert summarize_committee(lines) == {k: summary[k] for k in ("claims", "outcomes", "outcomes_all_honest",
                                                                  "by_strategy")}
    _check_rules(lines, cp)
    # node-0 withholds about half its reveals; those seats cast no vote and are the only unrevealed ones
    seats = [(nd, s) for e in lines if e["kind"] == "claim" for nd, s in zip(e["committee"], e["seats"])]
    mine = [s for nd, s in seats if nd == "node-0"]
    assert {s for nd, s in seats if nd != "node-0"} == {"revealed"}
    assert 0.3 < mine.count("unrevealed") / len(mine) < 0.7 and w["unrevealed"] == w["withheld"] == mine.count(
        "unrevealed")
    by = summary["by_strategy"]
    assert by["random-guess"]["slashes"] > 0 and by["random-guess"]["slashes"] == by["random-guess"]["windows"]
    # the same seed, mix and withholding in-process: the same decisions, event for event
    run_committee(cp, tmp_path / "inproc.sqlite", ["honest"] * 5 + ["random-guess"], claims, SEED,
                  withhold={"node-0": 0.5})
    assert _comparable(out / "ledger.sqlite") == _comparable(tmp_path / "inproc.sqlite")
    CommitteeLedger(out / "ledger.sqlite", cp).close()  # reopens: the full invariant holds
    # the services are gone: their ports refuse connections
    for port_file in (out / "ports").iterdir():
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{port_file.read_text()}/health", timeout=2)


def test_up_with_the_digits_verifier_models(tmp_path):
    """Each node process runs its own real model (node i: verifier-(i mod 5)); the run decides what the
    in-process digits run decides."""
    params = tmp_path / "reference-committee.json"
    params.write_text(json.dumps(deployment.export(load(ROOT / "models" / "reference-committee.toml"))))
    out, claims = tmp_path / "run", 140
    proc = subprocess.run([sys.executable, "-m", "reference_node.cli", "up", "--params", str(params), "--nodes",
                           "7", "--claims", str(claims), "--models", "digits", "--out", str(out), "--seed",
                           str(SEED), "--quiet"], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    cp = CommitteeParams.from_doc(params)
    run_committee(cp, tmp_path / "inproc.sqlite", ["honest"] * 7, claims, SEED, models="digits")
    assert _comparable(out / "ledger.sqlite") == _comparable(tmp_path / "inproc.sqlite")
    evs = list(events.iter_events(out / "ledger.sqlite"))
    _check_rules(evs, cp)
    # the real models are right on most claims, not all
    votes = [(v, e["truth"]) for e in evs if e["kind"] == "claim" for v in e["votes"]]
    assert 0.9 < sum(v == t for v, t in votes) / len(votes) < 1.0


def test_up_rejects_bad_consensus_options(params_path, tmp_path, capsys):
    base = ["up", "--params", str(params_path), "--out", str(tmp_path / "o"), "--inprocess", "--claims", "10"]
    for extra, needle in [(["--mix", "honest=5,bogus=1"], "bogus"),
                          (["--nodes", "3"], "committee size 5"),
                          (["--nodes", "6", "--mix", "honest=5"], "summing to --nodes 6"),
                          (["--withhold", "node-19=0.5"], "node-19"),
                          (["--withhold", "node-0=2"], "probability in [0, 1]"),
                          (["--resume"], "--resume")]:
        assert main(base + extra) == 2, extra
        err = capsys.readouterr().err
        assert needle in err and "Traceback" not in err, (extra, err)
    bad = json.loads(params_path.read_text())
    del bad["parameters"]["window"]
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    assert main(["up", "--params", str(tmp_path / "bad.json"), "--out", str(tmp_path / "o2"), "--inprocess"]) == 2
    assert "parameters.window" in capsys.readouterr().err
    from reference_node.testing import write_params

    audit = write_params(tmp_path / "audit.json")
    assert main(["up", "--params", str(audit), "--claims", "5", "--out", str(tmp_path / "o3"), "--inprocess"]) == 2
    assert "consensus run" in capsys.readouterr().err
    for argv, needle in [
            (["committee-node", "--ledger", "http://127.0.0.1:9", "--strategy", "lazy"], "lazy"),
            (["committee-node", "--ledger", "http://127.0.0.1:9", "--withhold", "1.5"], "--withhold"),
            (["committee-node", "--ledger", "http://127.0.0.1:9", "--index", "-1"], "--index"),
            (["committee-client", "--ledger", "http://127.0.0.1:9", "--node", "http://127.0.0.1:10"],
             "at least committee_size = 5 node URLs"),
            (["ledger", "--db", str(tmp_path / "no" / "dir.sqlite")], "--db")]:
        assert main([argv[0], "--params", str(params_path), *argv[1:]]) == 2, argv
        err = capsys.readouterr().err
        assert needle in err and "Traceback" not in err, (argv, err)


# ----------------------------------------------------------------------------------------
# bad input to every new endpoint: 4xx, a clear message, the ledger unchanged
# ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster(params_path, tmp_path_factory):
    d = tmp_path_factory.mktemp("committee-bad")
    c = Cluster(str(params_path), d, SEED)
    try:
        lp = free_port()
        led = f"http://127.0.0.1:{lp}"
        _, node = c.start_many([("ledger", ["ledger", "--db", str(d / "l.sqlite")], lp),
                                ("node-0", ["committee-node", "--ledger", led, "--id", "node-0"], 0)])
        others = {f"node-{i}": CommitteeNode(f"node-{i}", "honest", SEED) for i in range(1, 6)}
        ops = [{"op": "register", "request_id": "register:client", "account": "client", "kind": "client",
                "pubkey": crypto.Key(SEED, "client").public_hex}]
        for nid, nd in others.items():
            ops += [{"op": "register", "request_id": f"register:{nid}", "account": nid, "kind": "verifier",
                     "pubkey": nd.key.public_hex, "strategy": "honest"},
                    {"op": "deposit", "request_id": f"deposit:{nid}", "account": nid, "amount": 100.0}]
        with httpx.Client(timeout=10) as h:
            r = h.post(f"{led}/ops", json=ops)
            assert all(x["ok"] for x in r.json()["results"]), r.text
        yield {"ledger": led, "node": node, "others": others, "me": CommitteeNode("node-0", "honest", SEED)}
    finally:
        c.stop()


def _events(h, led):
    return h.get(f"{led}/summary").json()["events"]


def _commit(cl, cid, members, sealed_by_service=None):
    seats = []
    for nid in members:
        if nid == "node-0":
            seats.append({"node": nid, **sealed_by_service})
        else:
            seats.append(cl["others"][nid].seal(cid, 0, 0.04))
    return {"request_id": f"vote_commit:{cid}", "claim_id": cid, "client": "client", "options": 2, "truth": 0,
            "commitments": seats}


def test_bad_input_to_every_new_endpoint_is_rejected_and_changes_nothing(cluster):
    led, node = cluster["ledger"], cluster["node"]
    big = b"[" + b"1," * 600_000 + b"1]"
    commit = _commit(cluster, "bad-1", ["node-1", "node-2", "node-3", "node-4", "node-5"])
    forged = copy.deepcopy(commit)
    forged["commitments"][0]["signature"] = cluster["others"]["node-2"].key.sign(b"something else")
    cases = [
        # ledger: the new contract routes
        ("POST", f"{led}/vote_commit", b"{not json", 400, "JSON"),
        ("POST", f"{led}/vote_commit", big, 413, "bytes"),
        ("POST", f"{led}/vote_commit", [1, 2], 422, "JSON object"),
        ("POST", f"{led}/vote_commit", {**commit, "commitments": commit["commitments"][:4]}, 422, "one per seat"),
        ("POST", f"{led}/vote_commit", {**commit, "commitments": [{"node": "ghost"}] + commit["commitments"][1:]},
         404, "unknown account 'ghost'"),
        ("POST", f"{led}/vote_commit", forged, 401, "commitments[0].signature"),
        ("POST", f"{led}/vote_commit", {**commit, "truth": "yes"}, 422, "field 'truth'"),
        ("POST", f"{led}/vote_commit", {k: v for k, v in commit.items() if k != "request_id"}, 422, "request_id"),
        ("POST", f"{led}/claim", {"request_id": "x", "claim_id": "never", "reveals": []}, 409, "no sealed votes"),
        ("POST", f"{led}/claim", {"request_id": "x", "claim_id": "never", "votes": []}, 422, "field 'votes'"),
        ("POST", f"{led}/claim", b"[[", 400, "JSON"),
        ("POST", f"{led}/claim", big, 413, "bytes"),
        ("POST", f"{led}/sealed", b"{", 400, "JSON"),
        ("POST", f"{led}/sealed", big, 413, "bytes"),
        ("POST", f"{led}/sealed", [1], 422, "JSON object"),
        ("POST", f"{led}/sealed", {}, 422, "field 'claim_ids': expected a list"),
        ("POST", f"{led}/sealed", {"claim_ids": []}, 422, "found 0 items"),
        ("POST", f"{led}/sealed", {"claim_ids": ["ok", "bad id!"]}, 422, "claim_ids[1]"),
        ("POST", f"{led}/sealed", {"claim_ids": ["a", "a"]}, 422, "distinct"),
        ("POST", f"{led}/sealed", {"claim_ids": [f"c{i}" for i in range(10_001)]}, 422, "1-10,000"),
        # the committee node
        ("POST", f"{node}/seal", b"[[", 400, "JSON"),
        ("POST", f"{node}/seal", big, 413, "bytes"),
        ("POST", f"{node}/seal", [1], 422, "JSON object"),
        ("POST", f"{node}/seal", {}, 422, "field 'claims'"),
        ("POST", f"{node}/seal", {"claims": [5]}, 422, "claims[0]': expected an object"),
        ("POST", f"{node}/seal", {"claims": [{"claim_id": "bad id!", "options": 2}]}, 422, "claims[0].claim_id"),
        ("POST", f"{node}/seal", {"claims": [{"claim_id": "x"}]}, 422, "claims[0].options': expected 2"),
        ("POST", f"{node}/seal", {"claims": [{"claim_id": "x", "options": 4}]}, 422, "found 4"),
        ("POST", f"{node}/seal", {"claims": [{"claim_id": "x", "options": 2}] * 2}, 422, "distinct"),
        ("POST", f"{node}/reveal", b"{", 400, "JSON"),
        ("POST", f"{node}/reveal", big, 413, "bytes"),
        ("POST", f"{node}/reveal", {"claim_ids": "c1"}, 422, "field 'claim_ids'"),
        ("POST", f"{node}/reveal", {"claim_ids": ["never-sealed"]}, 409, "not on the ledger"),
        ("GET", f"{node}/nope", None, 404, ""),
    ]
    with httpx.Client(timeout=20) as h:
        before = _events(h, led)
        status_before = h.get(f"{node}/status").json()
        for method, url, body, status, needle in cases:
            r = assert_rejected(h, method, url, body, status, needle)
            assert _events(h, led) == before, (url, r.text)
        after = h.get(f"{node}/status").json()
        assert (after["sealed"], after["revealed"]) == (status_before["sealed"], status_before["revealed"])


def test_commit_then_reveal_through_the_services(cluster):
    """The node reveals only what the ledger holds as its own seal, and the ledger checks every reveal."""
    led, node, me = cluster["ledger"], cluster["node"], cluster["me"]
    with httpx.Client(timeout=20) as h:
        r = h.post(f"{node}/seal", json={"claims": [{"claim_id": "ok-1", "options": 2},
                                                    {"claim_id": "fake-1", "options": 2}]})
        assert r.status_code == 200, r.text
        sealed = {e["claim_id"]: e for e in r.json()["sealed"]}
        again = h.post(f"{node}/seal", json={"claims": [{"claim_id": "ok-1", "options": 2}]}).json()["sealed"][0]
        assert again == sealed["ok-1"]  # sealing is idempotent
        s = sealed["ok-1"]
        assert crypto.verify(crypto.public_key(me.key.public_hex), s["signature"],
                             b"|".join([b"mira-vote-seal-v1", b"ok-1", b"node-0", s["commitment"].encode()]))
        members = ["node-0", "node-1", "node-2", "node-3", "node-4"]
        r = h.post(f"{led}/vote_commit", json=_commit(cluster, "ok-1", members, {k: s[k] for k in (
            "commitment", "signature", "cost")}))
        assert r.status_code == 200 and r.json()["commitments"][0] == s["commitment"], r.text
        # node-0 holds no seat on this claim
        r = h.post(f"{led}/vote_commit", json=_commit(cluster, "out-1", ["node-1", "node-2", "node-3", "node-4",
                                                                           "node-5"]))
        assert r.status_code == 200, r.text
        # a seat of node-0 with a commitment it never made (signed with its key, as a thief could)
        option = h.post(f"{node}/reveal", json={"claim_ids": ["ok-1"]})  # (reveal later; first the refusals)
        assert option.status_code == 200
        fake = vote_commitment("fake-1", "node-0", 0, b"\x01" * 32)
        r = h.post(f"{led}/vote_commit", json=_commit(cluster, "fake-1", members, {
            "commitment": fake, "signature": me.key.sign(b"|".join([b"mira-vote-seal-v1", b"fake-1", b"node-0",
                                                                     fake.encode()])), "cost": 0.0}))
        assert r.status_code == 200, r.text
        before = _events(h, led)
        for cid, needle in (("out-1", "holds no seat"), ("fake-1", "not this node's seal")):
            r = h.post(f"{node}/reveal", json={"claim_ids": [cid]})
            assert r.status_code == 409 and needle in r.json()["error"], r.text
        mine = option.json()["revealed"][0]
        assert vote_commitment("ok-1", "node-0", mine["option"], bytes.fromhex(mine["salt"])) == s["commitment"]
        # in one request, the refused claims are refused alone: the revealable one is answered
        r = h.post(f"{node}/reveal", json={"claim_ids": ["out-1", "ok-1", "fake-1"]})
        assert r.status_code == 200, r.text
        assert r.json()["revealed"] == [mine] and r.json()["withheld"] == []
        refused = r.json()["refused"]
        assert [(x["claim_id"], x["status"]) for x in refused] == [("out-1", 409), ("fake-1", 409)]
        assert "holds no seat" in refused[0]["error"] and "not this node's seal" in refused[1]["error"]
        assert _events(h, led) == before
        reveals = [{"node": "node-0", **{k: mine[k] for k in ("option", "salt", "signature")}}] + [
            cluster["others"][n].reveal("ok-1", 0) for n in members[1:]]
        wrong = copy.deepcopy(reveals)
        wrong[0]["salt"] = "00" * 32
        r = h.post(f"{led}/claim", json={"request_id": "claim:ok-1", "claim_id": "ok-1", "reveals": wrong})
        assert r.status_code == 422 and "another option or salt" in r.json()["error"] and _events(h, led) == before, r.text
        r = h.post(f"{led}/claim", json={"request_id": "claim:ok-1", "claim_id": "ok-1", "reveals": reveals})
        assert r.status_code == 200 and r.json()["seats"] == ["revealed"] * 5, r.text
        assert r.json()["votes"] == [mine["option"], 0, 0, 0, 0] and r.json()["consensus"] == 0
        r = h.post(f"{node}/reveal", json={"claim_ids": ["ok-1"]})
        assert r.status_code == 409 and "already decided" in r.json()["error"]
        r = h.post(f"{led}/sealed", json={"claim_ids": ["ok-1", "out-1", "zzz"]}).json()["claims"]
        assert set(r) == {"ok-1", "out-1"} and r["ok-1"] == {"status": "decided"} and r["out-1"]["status"] == "sealed"


# ----------------------------------------------------------------------------------------
# members that cannot vote: a node whose signatures are not its account's, a node that is down
# ----------------------------------------------------------------------------------------


def test_bad_signers_and_dead_nodes_get_absent_seats(params_path, tmp_path):
    cp = CommitteeParams.from_doc(params_path)
    c = Cluster(str(params_path), tmp_path, SEED)
    db = tmp_path / "l.sqlite"
    claims = 96
    try:
        lp = free_port()
        led = f"http://127.0.0.1:{lp}"
        urls = c.start_many([("ledger", ["ledger", "--db", str(db)], lp)])
        # node-4's account holds another key (an impostor service, or a misconfigured one): its
        # registration is refused (409) and its seals do not verify on the ledger
        with httpx.Client(timeout=10) as h:
            r = h.post(f"{led}/ops", json=[
                {"op": "register", "request_id": "register:node-4", "account": "node-4", "kind": "verifier",
                 "pubkey": crypto.Key("other", "node-4").public_hex, "strategy": "honest"},
                {"op": "deposit", "request_id": "deposit:node-4", "account": "node-4", "amount": 500.0}])
            assert all(x["ok"] for x in r.json()["results"])
        urls += c.start_many([(f"node-{i}", ["committee-node", "--ledger", led, "--id", f"node-{i}", "--index",
                                             str(i)], 0) for i in range(6)])
        c.procs["node-5"].kill()  # registered and staked, then down for good
        c.procs["node-5"].wait()
        coordinator = Coordinator(cp, led, urls[1:], SEED, batch=32, concurrency=3, timeout=1.5,
                                  ids=[f"node-{i}" for i in range(6)])
        result = asyncio.run(coordinator.run(claims))
    finally:
        c.stop()
    assert result["decided"] == claims and result["failed"] == 0, result
    evs = list(events.iter_events(db))
    _check_rules(evs, cp)
    seats = [(nd, st) for e in evs if e["kind"] == "claim" for nd, st in zip(e["committee"], e["seats"])]
    for bad in ("node-4", "node-5"):
        mine = [st for nd, st in seats if nd == bad]
        assert mine and set(mine) == {"absent"}, (bad, mine)
    assert {st for nd, st in seats if nd not in ("node-4", "node-5")} == {"revealed"}
    assert result["absent"] == sum(st == "absent" for _, st in seats)
    assert result["bad_seals"] == sum(nd == "node-4" for nd, _ in seats)
    assert any("seal node-5: no answer" in k for k in result["errors"])


# ----------------------------------------------------------------------------------------
# kill -9 of the ledger and of a node mid-run
# ----------------------------------------------------------------------------------------


def _decided(db) -> int:
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            return con.execute("SELECT COUNT(*) FROM events WHERE kind = 'claim'").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:  # not created yet, or being created
        return 0


def test_sigkill_of_ledger_and_node_mid_run_loses_nothing(params_path, tmp_path):
    cp = CommitteeParams.from_doc(params_path)
    claims, specs = 1200, ["honest"] * 5 + ["random-guess"]
    c = Cluster(str(params_path), tmp_path, SEED)
    db = tmp_path / "l.sqlite"
    from reference_node.committee import default_stake

    stake = repr(default_stake(cp, claims, len(specs)))
    try:
        lp = free_port()
        led = f"http://127.0.0.1:{lp}"
        argv = {f"node-{i}": ["committee-node", "--ledger", led, "--id", f"node-{i}", "--index", str(i),
                              "--strategy", s, "--stake", stake] for i, s in enumerate(specs)}
        urls = c.start_many([("ledger", ["ledger", "--db", str(db)], lp)] + [(n, a, 0) for n, a in argv.items()])
        coordinator = Coordinator(cp, led, urls[1:], SEED, batch=32, concurrency=3, timeout=60.0)
        result: dict = {}
        th = threading.Thread(target=lambda: result.update(asyncio.run(coordinator.run(claims))))
        th.start()
        while _decided(db) < 100 and th.is_alive():  # mid-run
            time.sleep(0.05)
        c.procs["ledger"].kill()  # SIGKILL
        c.procs["ledger"].wait()
        assert 100 <= _decided(db) < claims
        CommitteeLedger(db, cp).close()  # the state on disk after the crash is consistent (full invariant)
        c.procs["node-2"].kill()
        c.procs["node-2"].wait()
        c.start_many([("ledger", ["ledger", "--db", str(db)], lp),
                      ("node-2", argv["node-2"], int(urls[3].rsplit(":", 1)[1]))])
        th.join(120)
        assert not th.is_alive()
    finally:
        c.stop()
    assert result["decided"] == claims and result["failed"] == 0, result
    assert result["absent"] == result["unrevealed"] == 0, result  # the restarted node sealed and revealed in time
    evs = list(events.iter_events(db))
    assert [e["seq"] for e in evs] == list(range(1, len(evs) + 1))
    _check_rules(evs, cp)
    # every claim decided exactly once, and the decisions are those of the in-process run of the seed
    run_committee(cp, tmp_path / "inproc.sqlite", specs, claims, SEED)
    assert _comparable(db) == _comparable(tmp_path / "inproc.sqlite")
    CommitteeLedger(db, cp).close()


# ----------------------------------------------------------------------------------------
# Ctrl-C
# ----------------------------------------------------------------------------------------


def test_ctrl_c_stops_every_service_and_leaves_the_run(params_path, tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "reference_node.cli", "up", "--params", str(params_path),
                             "--nodes", "5", "--claims", "1000000", "--out", str(out), "--seed", str(SEED),
                             "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # wait for claims to be decided
            if (out / "ledger.sqlite").exists() and _decided(out / "ledger.sqlite") > 20:
                break
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["workload"] == {"interrupted": True} and summary["claims"] > 20
    lines = (out / "events.jsonl").read_text().splitlines()
    assert len(lines) == summary["events"]
    _check_rules([json.loads(x) for x in lines], CommitteeParams.from_doc(params_path), complete=False)
    for port_file in (out / "ports").iterdir():
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{port_file.read_text()}/health", timeout=2)


def test_consensus_experiment_over_processes_decides_as_in_process(tmp_path):
    """``mira-theory experiment --mode processes`` on a consensus scenario: the committee services on
    loopback decide every claim as the in-process run with the same seed, and the predictions pass."""
    from mira_theory.experiment_consensus import run_consensus_experiment

    runs = {}
    for mode in ("inprocess", "processes"):
        r = run_consensus_experiment("models/binary-claims.toml", claims=600, nodes=12, seed=4, mode=mode,
                                     out=tmp_path / mode, events_jsonl=False)
        assert r.passed, r.table()
        assert r.run["mode"] == mode
        runs[mode] = [(e["claim_id"], e["consensus"], e["committee"])
                      for e in events.iter_events(tmp_path / mode / "ledger.sqlite") if e["kind"] == "claim"]
    assert len(runs["inprocess"]) == 600
    assert runs["inprocess"] == runs["processes"]
