"""The consensus game in the reference network: seeded models, signed votes, the committee
ledger, windowed slashing, and the experiment comparing a run with the exported predictions."""

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
    CommitteeParams,
    SeededModels,
    run_committee,
    summarize_committee,
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


def test_ledger_checks_votes(binary_doc, tmp_path):
    cp = CommitteeParams.from_doc(binary_doc)
    led = CommitteeLedger(tmp_path / "l.sqlite", cp)
    try:
        keys = {f"n{i}": crypto.Key(1, f"n{i}") for i in range(6)}
        ops = [{"op": "register", "request_id": f"r{n}", "account": n, "kind": "verifier", "pubkey": k.public_hex}
               for n, k in keys.items()]
        ops += [{"op": "deposit", "request_id": f"d{n}", "account": n, "amount": 50.0} for n in keys]
        assert all(r["ok"] for r in led.execute(ops))

        def claim(cid, options, signer=None):
            votes = [{"node": n, "option": o, "signature": (signer or keys[n]).sign(vote_message(cid, n, o))}
                     for n, o in zip(list(keys)[:5], options)]
            return {"op": "claim", "request_id": f"claim:{cid}", "claim_id": cid, "client": "cl", "options": 2,
                    "truth": 0, "votes": votes}

        ok, = led.execute([claim("c1", [0, 0, 0, 1, 1])])
        assert ok["ok"] and ok["consensus"] == 0 and ok["correct"] and ok["paid"] == pytest.approx(3 * cp.reward)
        assert led.accounts["n0"].balance == round(cp.reward * UNIT) and led.accounts["n3"].balance == 0
        forged, = led.execute([claim("c2", [0, 0, 0, 1, 1], signer=keys["n5"])])
        assert not forged["ok"] and forged["status"] == 401
        replay, = led.execute([claim("c1", [0, 0, 0, 1, 1])])
        assert replay["ok"] and replay["replayed"]
        again = claim("c1", [0, 0, 0, 1, 1])
        again["request_id"] = "other"
        dup, = led.execute([again])
        assert not dup["ok"] and dup["status"] == 409
        seq = led.seq
        short, = led.execute([{**claim("c3", [0, 0, 0, 1, 1]), "votes": claim("c3", [0] * 5)["votes"][:4]}])
        assert not short["ok"] and led.seq == seq  # a rejected operation leaves no trace
        led.check_invariant(full=True)
    finally:
        led.close()


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
