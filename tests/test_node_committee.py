"""The consensus game in the reference network: seeded models, commit-then-reveal votes, the
committee ledger, windowed slashing, and the experiment comparing a run with the exported predictions."""

from __future__ import annotations

import copy
import sqlite3

import numpy as np
import pytest

from mira_theory import deployment, stats
from mira_theory.api import load
from mira_theory.experiment_consensus import population_predictions, run_consensus_experiment
from mira_theory.games import consensus
from reference_node import crypto, events
from reference_node.committee import (
    CommitteeLedger,
    CommitteeNode,
    CommitteeParams,
    SeededModels,
    run_committee,
    seal_message,
    summarize_committee,
    vote_commitment,
    vote_message,
)
from reference_node.ledger import Ledger
from reference_node.params import UNIT

LEVEL = 0.999  # the model tests are deterministic (fixed seed); a wide family level keeps them robust


@pytest.fixture(scope="module")
def binary_doc():
    return deployment.export(load("models/binary-claims.toml"))


@pytest.fixture(scope="module")
def four_doc():
    return deployment.export(load("models/four-option-claims.toml"))


@pytest.mark.parametrize("which", ["binary_doc", "four_doc"])
def test_seeded_models_realise_accuracy_and_correlation(which, request):
    cp = CommitteeParams.from_doc(request.getfixturevalue(which))
    models = SeededModels(cp, 17)
    n, N, a, k, m = 4000, cp.committee_size, cp.accuracy, cp.error_correlation, cp.options
    right = np.zeros((n, N), bool)
    guess_right = np.zeros(n, bool)
    wrong_options = np.zeros(m, int)
    (dev, (_, a_j)), = cp.deviations.items()
    for i in range(n):
        cid = f"claim-{i}"
        c = models.claim(cid)
        right[i] = [models.answer(c, cid, f"node-{j}", "honest") == c[0] for j in range(N)]
        g = models.answer(c, cid, "guesser", dev)
        guess_right[i] = g == c[0]
        if g != c[0]:
            wrong_options[(g - c[0]) % m] += 1
    comps = [
        stats.binomial("honest accuracy (node 0)", a, int(right[:, 0].sum()), n, LEVEL),
        # P(both right) = a² + κ·a(1 − a): the pairwise correlation of correctness is κ
        stats.binomial("both right (nodes 0, 1)", a * a + k * a * (1 - a), int((right[:, 0] & right[:, 1]).sum()),
                       n, LEVEL),
        stats.chi_square("right answers among N honest (beta-binomial)",
                         dict(enumerate(consensus.honest_pmf(N, a, k))),
                         dict(zip(*np.unique(right.sum(1), return_counts=True))), LEVEL),
        stats.binomial("guesser accuracy", a_j, int(guess_right.sum()), n, LEVEL),
    ]
    if m > 2:  # a guess's wrong answers are uniform over the m − 1 wrong options
        comps.append(stats.chi_square("guesser wrong options", {o: 1 / (m - 1) for o in range(1, m)},
                                      {o: int(wrong_options[o]) for o in range(1, m)}, LEVEL))
    adjusted = stats.adjust(comps, "holm", LEVEL)
    assert all(c.passed for c in adjusted), stats.render_report(adjusted)
    # the estimated correlation itself, within a CLT interval (Fisher z) of κ
    r = np.corrcoef(right[:, 0], right[:, 1])[0, 1]
    assert abs(np.arctanh(r) - np.arctanh(k)) < 4 / np.sqrt(n - 3)


def test_protocol_rules_are_the_theory_s(binary_doc):
    cp = CommitteeParams.from_doc(binary_doc)
    assert cp.quorum == consensus.quorum(cp.committee_size, cp.threshold) == 3
    assert cp.required == consensus.slash_count(cp.window, cp.agreement_threshold) == 70


def _events(db):
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT * FROM events ORDER BY seq").fetchall()
    finally:
        con.close()


def test_same_seed_same_run_and_invariant(binary_doc, tmp_path):
    doc = copy.deepcopy(binary_doc)
    doc["parameters"]["window"] = 20  # windows close within a short run
    mix = ["honest"] * 8 + ["random-guess"] * 2
    run_committee(doc, tmp_path / "a.sqlite", mix, 300, seed=5)
    run_committee(doc, tmp_path / "b.sqlite", mix, 300, seed=5)
    run_committee(doc, tmp_path / "c.sqlite", mix, 300, seed=6)
    a, b, c = (_events(tmp_path / f"{x}.sqlite") for x in "abc")
    assert a == b
    assert a != c
    sa = summarize_committee(events.iter_events(tmp_path / "a.sqlite"))
    assert sa == summarize_committee(events.iter_events(tmp_path / "b.sqlite"))
    assert sa["claims"] == 300 and sum(sa["outcomes"].values()) == 300
    assert sa["by_strategy"]["random-guess"]["slashes"] > 0
    # conservation: Σ held + burned = deposits + rewards paid in, checked on reopening (full check)
    cp = CommitteeParams.from_doc(doc)
    led = CommitteeLedger(tmp_path / "a.sqlite", cp)
    try:
        t = led.totals
        held = sum(x.balance + x.locked + x.unbonding for x in led.accounts.values())
        assert held + t["burned"] + t["escrowed"] == t["deposits"] + t["fees"] - t["withdrawn"]
        assert t["burned"] == round(sum(s["slashed"] for s in sa["by_strategy"].values()) * UNIT)
        assert t["fees"] == round(sum(s["paid"] for s in sa["by_strategy"].values()) * UNIT)
        windows = dict(led._windows)
    finally:
        led.close()
    # the window state is rebuilt from the log alone
    assert sum(v[0] * cp.window + v[1] for v in windows.values()) == 300 * cp.committee_size
    # the plain ledger still opens the file (events of the new kinds are ordinary rows)
    Ledger(tmp_path / "a.sqlite", cp.node_params()).close()


# --------------------------------------------------------------------------------------
# commit-then-reveal on the ledger
# --------------------------------------------------------------------------------------

SEED = 1


class Net:
    """A CommitteeLedger with nodes n0..n5 staked, n6 registered without stake, a client account."""

    def __init__(self, path, cp):
        self.cp = cp
        self.led = CommitteeLedger(path, cp)
        self.nodes = {f"n{i}": CommitteeNode(f"n{i}", "honest", SEED) for i in range(7)}
        ops = [{"op": "register", "request_id": f"r{n}", "account": n, "kind": "verifier",
                "pubkey": nd.key.public_hex, "strategy": "honest"} for n, nd in self.nodes.items()]
        ops += [{"op": "deposit", "request_id": f"d{n}", "account": n, "amount": 50.0} for n in list(self.nodes)[:6]]
        ops.append({"op": "register", "request_id": "rcl", "account": "cl", "kind": "client",
                    "pubkey": crypto.Key(SEED, "cl").public_hex})
        assert all(r["ok"] for r in self.led.execute(ops))

    def commit(self, cid, options, members=("n0", "n1", "n2", "n3", "n4"), rid=None, absent=()):
        seats = [{"node": n, "commitment": None} if n in absent else self.nodes[n].seal(cid, o, 0.04)
                 for n, o in zip(members, options)]
        return {"op": "vote_commit", "request_id": rid or f"vote_commit:{cid}", "claim_id": cid, "client": "cl",
                "options": self.cp.options, "truth": 0, "commitments": seats}

    def reveal(self, cid, options, members=("n0", "n1", "n2", "n3", "n4"), rid=None):
        return {"op": "claim", "request_id": rid or f"claim:{cid}", "claim_id": cid,
                "reveals": [self.nodes[n].reveal(cid, o) for n, o in zip(members, options)]}

    def one(self, op):
        """Apply one op; a rejected one must leave no trace (no event, no balance moved)."""
        seq, bal = self.led.seq, {k: (a.balance, a.locked) for k, a in self.led.accounts.items()}
        sealed, windows = dict(self.led._sealed), {k: list(v) for k, v in self.led._windows.items()}
        res, = self.led.execute([op])
        if not res["ok"]:
            assert self.led.seq == seq and {k: (a.balance, a.locked) for k, a in self.led.accounts.items()} == bal
            assert self.led._sealed == sealed and self.led._windows == windows
        return res


@pytest.fixture
def net(binary_doc, tmp_path):
    doc = copy.deepcopy(binary_doc)
    doc["parameters"]["window"] = 2  # windows close within a few claims
    n = Net(tmp_path / "l.sqlite", CommitteeParams.from_doc(doc))
    yield n
    n.led.close()


def test_commit_then_reveal_decides_pays_and_logs(net):
    cp, led = net.cp, net.led
    sealed = net.one(net.commit("c1", [0, 0, 0, 1, 1]))
    assert sealed["ok"] and sealed["committee"] == ["n0", "n1", "n2", "n3", "n4"]
    assert led.accounts["n0"].balance == 0 and "c1" in led._sealed  # sealed: nothing paid or decided yet
    # the commitment hides the vote: it is sha256 over (claim, node, option, salt), salt secret
    salt = net.nodes["n0"].salt("c1")
    assert sealed["commitments"][0] == vote_commitment("c1", "n0", 0, salt) != vote_commitment("c1", "n0", 1, salt)
    assert crypto.verify(crypto.public_key(net.nodes["n0"].key.public_hex), sealed["signatures"][0],
                         seal_message("c1", "n0", sealed["commitments"][0]))
    ok = net.one(net.reveal("c1", [0, 0, 0, 1, 1]))
    assert ok["ok"] and ok["consensus"] == 0 and ok["correct"] and ok["paid"] == pytest.approx(3 * cp.reward)
    assert ok["votes"] == [0, 0, 0, 1, 1] and ok["seats"] == ["revealed"] * 5 and ok["commit_seq"] == sealed["seq"]
    assert ok["salts"][0] == salt.hex() and ok["commitments"] == sealed["commitments"]
    assert ok["costs"] == [0.04] * 5 and ok["truth"] == 0
    assert led.accounts["n0"].balance == round(cp.reward * UNIT) and led.accounts["n3"].balance == 0
    assert "c1" not in led._sealed and "c1" in led._decided
    led.check_invariant(full=True)


def test_reveal_checks_leave_the_ledger_unchanged(net):
    # a reveal before its commit
    r = net.one(net.reveal("c1", [0, 0, 0, 1, 1]))
    assert r["status"] == 409 and "has no sealed votes" in r["error"]
    assert net.one(net.commit("c1", [0, 0, 0, 1, 1]))["ok"]
    good = net.reveal("c1", [0, 0, 0, 1, 1])

    def variant(i, **change):
        op = copy.deepcopy(good)
        op["reveals"][i].update(change)
        return op

    other = net.nodes["n0"].salt("c-other").hex()
    cases = [
        (variant(1, salt=other), 422, "reveals[1]': expected the option and salt that open the commitment"),
        # the wrong option, signed by the node itself: the commitment does not open
        (variant(2, **{k: v for k, v in net.nodes["n2"].reveal("c1", 1).items() if k != "salt"}), 422,
         "another option or salt"),
        # the wrong option under the signature of the sealed one: the signature does not verify
        (variant(2, option=1), 401, "reveals[2].signature"),
        # forged: n5's key signs n3's vote
        (variant(3, signature=net.nodes["n5"].key.sign(vote_message("c1", "n3", 1))), 401, "reveals[3].signature"),
        (variant(0, signature=None), 422, "reveals[0].signature': expected a value"),
        (variant(0, salt="zz"), 422, "reveals[0].salt': expected 64 lowercase hex"),
        (variant(0, option=7), 422, "reveals[0].option': expected 0..1"),
        (variant(0, option=True), 422, "reveals[0].option': expected an integer, found a boolean"),
        (variant(4, node="n5"), 403, "holds no seat"),
        (variant(4, node="bad id!"), 422, "reveals[4].node"),
        ({**good, "reveals": good["reveals"] + [good["reveals"][0]]}, 422, "at most one per seat"),
        ({**good, "reveals": good["reveals"][:2] + [good["reveals"][0]]}, 422, "found 'n0' twice"),
        ({**good, "reveals": "all"}, 422, "field 'reveals': expected a list"),
        ({**good, "reveals": [5]}, 422, "reveals[0]': expected an object"),
        ({**good, "votes": []}, 422, "field 'votes': expected 'reveals'"),
    ]
    for op, status, needle in cases:
        r = net.one(op)
        assert not r["ok"] and r["status"] == status and needle in r["error"], (needle, r)
    assert "c1" in net.led._sealed  # still awaiting its reveals
    ok = net.one(good)
    assert ok["ok"] and ok["consensus"] == 0
    # replayed: the same request returns the first result; a new request for a decided claim is refused
    seq = net.led.seq
    again = net.one(good)
    assert again["ok"] and again["replayed"] and again["consensus"] == 0 and net.led.seq == seq
    r = net.one({**good, "request_id": "claim:c1:again"})
    assert r["status"] == 409 and "already decided" in r["error"]
    r = net.one(net.commit("c1", [0, 0, 0, 1, 1], rid="vote_commit:c1:again"))
    assert r["status"] == 409 and "already decided" in r["error"]


def test_commit_checks_leave_the_ledger_unchanged(net):
    good = net.commit("c1", [0, 1, 0, 1, 0])

    def variant(i, **change):
        op = copy.deepcopy(good)
        op["commitments"][i].update(change)
        return op

    cases = [
        (variant(0, node="ghost"), 404, "unknown account 'ghost'"),
        (variant(0, node="cl"), 403, "is a client, not a verifier"),
        (variant(0, node="n6"), 409, "no stake left"),  # registered, not staked
        (variant(1, **net.nodes["n0"].seal("c1", 0, 0.04)), 422, "repeated node"),
        (variant(2, commitment="12ab"), 422, "commitments[2].commitment': expected 64 lowercase hex"),
        (variant(2, signature=None), 422, "commitments[2].signature': expected a value"),
        (variant(2, signature=net.nodes["n5"].key.sign(seal_message("c1", "n2", good["commitments"][2]["commitment"]))),
         401, "commitments[2].signature"),
        (variant(3, cost=-1), 422, "commitments[3].cost"),
        (variant(3, cost=10 ** 400), 422, "commitments[3].cost"),  # beyond float range: a 422, not an overflow
        (variant(3, cost=True), 422, "commitments[3].cost"),
        ({**good, "commitments": good["commitments"][:4]}, 422, "one per seat, 5, found 4"),
        ({**good, "commitments": [{"node": f"n{i}", "commitment": None} for i in range(5)]}, 422,
         "at least one sealed vote"),
        ({**good, "options": 3}, 422, "field 'options': expected 2"),
        ({**good, "truth": 2}, 422, "field 'truth'"),
        ({**good, "claim_id": "bad id!"}, 422, "field 'claim_id'"),
        ({**good, "op": "vote_commits"}, 422, "vote_commit, claim"),
    ]
    for op, status, needle in cases:
        r = net.one(op)
        assert not r["ok"] and r["status"] == status and needle in r["error"], (needle, r)
    first = net.one(good)
    assert first["ok"]
    # a second commit for the claim: refused whoever sends it (another request id, other seats)
    r = net.one(net.commit("c1", [1, 1, 1, 1, 1], members=("n1", "n2", "n3", "n4", "n5"), rid="vc-2"))
    assert r["status"] == 409 and "already has sealed votes" in r["error"]
    # the same request id with other content is a conflict; the same request is a replay
    r = net.one(net.commit("c1", [1, 1, 1, 1, 1]))
    assert r["status"] == 409 and "different operation" in r["error"]
    again = net.one(good)
    assert again["ok"] and again["replayed"] and again["seq"] == first["seq"]


def test_unrevealed_and_absent_seats_cast_no_vote(net):
    cp, led = net.cp, net.led
    r = cp.reward
    # n4 sealed a vote for 0 but does not reveal it; n3 is absent (sealed nothing)
    assert net.one(net.commit("c1", [0, 0, 0, 1, 0], absent=("n3",)))["ok"]
    bad = net.one(net.reveal("c1", [0, 0, 0, 1], members=("n0", "n1", "n2", "n3")))
    assert bad["status"] == 409 and "sealed no vote" in bad["error"]  # an absent seat has nothing to reveal
    ok = net.one(net.reveal("c1", [0, 0, 0], members=("n0", "n1", "n2")))
    assert ok["ok"] and ok["consensus"] == 0 and ok["seats"] == ["revealed"] * 3 + ["absent", "unrevealed"]
    assert ok["votes"] == [0, 0, 0, None, None] and ok["signatures"][3:] == [None, None]
    assert ok["salts"][3:] == [None, None] and ok["commitments"][3] is None and ok["paid"] == pytest.approx(3 * r)
    assert led.accounts["n4"].balance == 0  # would have matched: an unrevealed vote is not paid
    # below quorum without the missing votes: no consensus, and no seat agrees with "none"
    assert net.one(net.commit("c2", [0, 0, 1, 1, 1]))["ok"]
    ok2 = net.one(net.reveal("c2", [0, 0, 1, 1], members=("n0", "n1", "n2", "n3")))
    assert ok2["consensus"] is None and ok2["correct"] is None and ok2["paid"] == 0
    # the window (W = 2) of n3 and n4: two claims, no match, slashed; n0 matched once of two
    w = {e["node"]: e for e in ok2["windows"]}
    assert set(w) == {"n0", "n1", "n2", "n3", "n4"}
    assert (w["n3"]["matches"], w["n4"]["matches"], w["n0"]["matches"]) == (0, 0, 1)
    assert all(e["slashed"] for e in w.values())  # required = ⌈0.7·2⌉ = 2 matches
    s = summarize_committee(events.iter_events(led.path))
    assert s["by_strategy"]["honest"]["unrevealed"] == 3 and s["by_strategy"]["honest"]["agreements"] == 3
    assert s["outcomes"] == {"correct": 1, "wrong": 0, "none": 1}
    led.check_invariant(full=True)


def test_a_restarted_ledger_takes_the_reveals(net):
    cp, path = net.cp, net.led.path
    assert net.one(net.commit("c1", [0, 0, 0, 1, 1]))["ok"]
    assert net.one(net.commit("c2", [1, 1, 1, 1, 0]))["ok"]
    assert net.one(net.reveal("c2", [1, 1, 1, 1, 0]))["ok"]
    net.led.close()
    net.led = led = CommitteeLedger(path, cp)  # the sealed votes and windows are rebuilt from the log
    assert set(led._sealed) == {"c1"} and led._decided == {"c2"}
    assert led.sealed_claims(["c1", "c2", "c3"]) == {
        "c1": {"status": "sealed", "committee": ["n0", "n1", "n2", "n3", "n4"],
               "commitments": led._sealed["c1"]["commitments"], "commit_seq": led._sealed["c1"]["seq"]},
        "c2": {"status": "decided"}}
    assert led._windows["n4"] == [0, 1, 0] and led._windows["n0"] == [0, 1, 1]
    ok = net.one(net.reveal("c1", [0, 0, 0, 1, 1]))
    assert ok["ok"] and ok["consensus"] == 0 and len(ok["windows"]) == 5
    led.check_invariant(full=True)


def test_withholding_nodes_are_slashed_and_the_pool_changes_nothing(binary_doc, tmp_path):
    doc = copy.deepcopy(binary_doc)
    doc["parameters"]["window"] = 20
    mix = ["honest"] * 8
    kw = dict(withhold={"node-0": 1.0, "node-1": 0.5}, batch=64)
    w = run_committee(doc, tmp_path / "a.sqlite", mix, 400, seed=3, parallel=True, **kw)
    run_committee(doc, tmp_path / "b.sqlite", mix, 400, seed=3, parallel=False, **kw)
    assert _events(tmp_path / "a.sqlite") == _events(tmp_path / "b.sqlite")
    claims = [e for e in events.iter_events(tmp_path / "a.sqlite") if e["kind"] == "claim"]
    seats = {n: [s for e in claims for nd, s in zip(e["committee"], e["seats"]) if nd == n] for n in ("node-0",
                                                                                                        "node-1")}
    assert seats["node-0"] and set(seats["node-0"]) == {"unrevealed"}
    assert stats.binomial("withheld", 0.5, seats["node-1"].count("unrevealed"), len(seats["node-1"]), LEVEL).passed
    assert w["unrevealed"] == len(seats["node-0"]) + seats["node-1"].count("unrevealed")
    wins = [e for e in events.iter_events(tmp_path / "a.sqlite") if e["kind"] == "window"]
    # never revealing: every window closes with 0 matches and is slashed; honest revealers are not
    assert {(e["matches"], e["slashed"]) for e in wins if e["node"] == "node-0"} == {(0, True)}
    assert not any(e["slashed"] for e in wins if e["node"] not in ("node-0", "node-1"))
    # every decided vote opens its commitment
    for e in claims[:50]:
        for nd, v, c, s in zip(e["committee"], e["votes"], e["commitments"], e["salts"]):
            if v is not None:
                assert vote_commitment(e["claim_id"], nd, v, bytes.fromhex(s)) == c


def test_population_predictions_match_export_without_deviators(binary_doc):
    cp = CommitteeParams.from_doc(binary_doc)
    pop = population_predictions(cp, {"honest": 20})
    pr = binary_doc["predictions"]
    assert pop["strategies"]["honest"]["agreement"] == pytest.approx(pr["agreement"]["honest"], rel=1e-12)
    assert pop["strategies"]["honest"]["payoff_per_claim"] == pytest.approx(
        pr["expected_payoff_per_claim"]["honest"], rel=1e-12)
    for k in ("correct", "wrong", "none"):
        assert pop["committee_outcome"][k] == pytest.approx(pr["committee_outcome"][k], abs=1e-12)
    # one deviator in the whole network: it always sits with N − 1 honest members
    pop1 = population_predictions(cp, {"honest": 20, "random-guess": 1})
    assert pop1["strategies"]["random-guess"]["agreement"] == pytest.approx(pr["agreement"]["random-guess"],
                                                                            rel=1e-12)


def test_consensus_experiment_passes(tmp_path):
    r = run_consensus_experiment("models/binary-claims.toml", claims=2000, nodes=40, seed=0, out=tmp_path / "run")
    assert r.passed, r.table()
    names = " ".join(c.quantity for c in r.comparisons)
    for what in ("honest: agreement", "random-guess: agreement", "all-honest committees", "all claims",
                 "false slashes per window", "detections per window", "payoff per claim"):
        assert what in names
    assert all(c.correction == "holm" for c in r.comparisons)
    assert (tmp_path / "run" / "report.md").read_text().startswith("# Consensus experiment")
    assert (tmp_path / "run" / "report.json").exists() and (tmp_path / "run" / "events.jsonl").exists()


def test_consensus_experiment_fails_a_wrong_prediction(binary_doc, tmp_path):
    doc = copy.deepcopy(binary_doc)
    doc["predictions"]["agreement"] = {k: 0.7 * v for k, v in doc["predictions"]["agreement"].items()}
    r = run_consensus_experiment("models/binary-claims.toml", doc, claims=2000, nodes=40, seed=0,
                                 out=tmp_path / "run", events_jsonl=False)
    assert not r.passed
    assert {c.quantity.split(":")[0] for c in r.comparisons if not c.passed} == {"honest", "random-guess"}
    assert all("agreement" in q for q in r.failed)


def test_cli_arguments_map_to_the_consensus_experiment(tmp_path):
    import argparse

    from mira_theory import cli_experiment
    from mira_theory.experiment_consensus import is_consensus, run_from_args
    from mira_theory.scenario import ScenarioError

    parser = argparse.ArgumentParser()
    cli_experiment.register(parser.add_subparsers())
    assert is_consensus("models/binary-claims.toml") and not is_consensus("models/default.toml")
    args = parser.parse_args(["experiment", "models/binary-claims.toml", "--tasks", "300", "--mix",
                              "honest=9,random-guess=1", "--seed", "2", "--out", str(tmp_path / "cli")])
    r = run_from_args(args)
    assert r.run["claims"] == 300 and r.run["nodes"] == 10 and r.run["mix"] == {"honest": 9, "random-guess": 1}
    bad = parser.parse_args(["experiment", "models/binary-claims.toml", "--adaptive", "hedge"])
    with pytest.raises(ScenarioError):
        run_from_args(bad)
    with pytest.raises(ScenarioError):
        run_from_args(parser.parse_args(["experiment", "models/binary-claims.toml", "--mix", "honest=3"]))


def test_a_batch_that_fails_to_commit_leaves_the_claim_state(net, monkeypatch):
    led = net.led
    assert net.one(net.commit("c1", [0, 0, 0, 1, 1]))["ok"]
    before = (dict(led._sealed), set(led._decided), {k: list(v) for k, v in led._windows.items()}, led.seq)
    batch = [net.reveal("c1", [0, 0, 0, 1, 1]), net.commit("c2", [1, 1, 1, 0, 0])]

    def broken(*_):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(led, "_write", broken)
    with pytest.raises(sqlite3.OperationalError):
        led.execute(batch)
    assert (dict(led._sealed), set(led._decided), {k: list(v) for k, v in led._windows.items()}, led.seq) == before
    monkeypatch.undo()
    first, second = led.execute(batch)
    assert first["ok"] and second["ok"] and set(led._sealed) == {"c2"} and led._decided == {"c1"}
    led.check_invariant(full=True)
