"""`mira-node calibrate`: the measured numbers against independent recomputations, and the written scenario."""

from __future__ import annotations

import itertools
import tomllib
from fractions import Fraction

import numpy as np
import pytest
from scipy.stats import binomtest

import mira_theory as mt
from reference_node import calibrate, models
from reference_node.cli import main
from reference_node.testing import MODELS

P_MIN = 1e-4


@pytest.fixture(scope="module")
def four():
    return calibrate.calibrate(MODELS / "four-option-claims.toml", "reference-committee")


def test_committed_calibrated_scenario_is_reproduced(tmp_path, capsys):
    out = tmp_path / "reference-committee.toml"
    assert main(["calibrate", str(MODELS / "four-option-claims.toml"), "-o", str(out)]) == 0
    assert out.read_bytes() == (MODELS / "reference-committee.toml").read_bytes()
    assert "verifier.accuracy = " in capsys.readouterr().out
    s = mt.load(out)
    assert s.name == "reference-committee" and s.game == "consensus"


def _enumerated(options: int):
    """Every claim (held-out image × distractor set) voted on explicitly: right[k] per model, as bool arrays."""
    pixels, labels = models.digits()
    held = models.heldout()
    right = []
    for m in models.verifier_models():
        scores = m.scores(pixels[held])
        r = []
        for i, label in enumerate(labels[held]):
            wrong = [d for d in range(10) if d != label]
            for distractors in itertools.combinations(wrong, options - 1):
                opts = sorted([int(label), *distractors])
                r.append(opts[int(np.argmax(scores[i, opts]))] == label)  # argmax: first (lowest digit) on ties
        right.append(np.array(r))
    return right


def test_claim_accuracies_and_correlations_equal_an_explicit_enumeration(four):
    c = four.consensus
    right = _enumerated(4)
    n = len(right[0])
    assert n == len(models.heldout()) * 84  # C(9, 3) distractor sets per image
    for k, r in enumerate(right):
        assert c.claim_accuracy[k] == Fraction(int(r.sum()), n)
    for (k, j), p in c.joint.items():
        assert p == Fraction(int((right[k] & right[j]).sum()), n)
        x, y = right[k].astype(float), right[j].astype(float)
        assert c.correlation(k, j) == pytest.approx(float(np.corrcoef(x, y)[0, 1]), abs=1e-12)
    # the network: node i runs model i mod 5; a random node's accuracy and two distinct random nodes' correlation
    nodes = mt.load(MODELS / "four-option-claims.toml").network.nodes
    node_right = [right[i % len(right)] for i in range(nodes)]
    a = sum(Fraction(int(r.sum()), n) for r in node_right) / nodes
    both = Fraction(0)
    for k in range(len(right)):
        for j in range(len(right)):
            pairs = sum(1 for i in range(nodes) for i2 in range(nodes) if i != i2 and i % 5 == k and i2 % 5 == j)
            both += pairs * Fraction(int((right[k] & right[j]).sum()), n)
    both /= nodes * (nodes - 1)
    assert c.accuracy == a
    kappa = float(both - a * a) / float(a * (1 - a))
    assert c.error_correlation == pytest.approx(kappa, rel=1e-12)
    assert 0 < c.mean_model_correlation < c.error_correlation < 1 and 0.9 < c.accuracy < 1
    # what is written is those numbers, rounded to 6 decimals
    doc = tomllib.loads(four.text)
    assert doc["verifier"]["accuracy"] == round(float(a), 6)
    assert doc["verifier"]["error_correlation"] == round(kappa, 6)


def test_claims_drawn_by_id_follow_the_calibrated_law(four):
    """digit_claim draws the image uniformly from the held-out images and the distractors uniformly: the
    realised accuracy of a model on seeded claims is its calibrated accuracy."""
    c = four.consensus
    pixels, labels = models.digits()
    held = set(models.heldout().tolist())
    m0 = models.verifier_models()[0]
    n = 6000
    claims = [models.digit_claim(3, f"c{i}", 4) for i in range(n)]
    assert all(cl.image in held and len(set(cl.options)) == 4 and cl.options[cl.truth] == labels[cl.image]
               for cl in claims)
    scores = m0.scores(pixels[[cl.image for cl in claims]])
    right = sum(models.answer(s, cl.options) == cl.truth for s, cl in zip(scores, claims))
    assert binomtest(right, n, float(c.claim_accuracy[0])).pvalue > P_MIN
    # each wrong digit is a distractor with probability 3/9
    hits = sum(5 in cl.options for cl in claims if labels[cl.image] != 5)
    trials = sum(labels[cl.image] != 5 for cl in claims)
    assert binomtest(hits, trials, 3 / 9).pvalue > P_MIN
    assert models.digit_claim(3, "c1", 4) == claims[1]
    with pytest.raises(ValueError, match="options"):
        models.digit_claim(3, "c1", 11)


def test_audit_divergences_are_measured_and_written(tmp_path):
    r = calibrate.calibrate(MODELS / "default.toml", "default-calibrated")
    pixels, labels = models.digits()
    # recomputed through the text path (encode → decode → run), not the pixel path calibrate uses
    texts = [models.encode(p) for p in pixels]
    ref = models.run(models.DECLARED_ID, texts)
    weak = models.run(models.WEAKER_ID, texts)
    rnd = np.random.default_rng(0).integers(-models.RANDOM_SCALE, models.RANDOM_SCALE + 1, size=(1797, 10))
    for other, differs in ((weak, r.audit.weaker_differs), (rnd, r.audit.random_differs)):
        assert differs["exact"] == sum(not models.matches(a, b, "exact") for a, b in zip(ref, other)) == 1797
        assert differs["tolerance"] == sum(not models.matches(a, b, "tolerance") for a, b in zip(ref, other))
    assert r.audit.cost_ratio == Fraction(592, 4736)
    assert r.audit.declared.accuracy_all == Fraction(int((models.predict(ref) == labels).sum()), 1797)
    doc = tomllib.loads(r.text)
    source = tomllib.loads((MODELS / "default.toml").read_text())
    assert [d["divergence"] for d in doc["deviation"]] == [d["divergence"] for d in source["deviation"]]
    assert doc["scenario"]["name"] == "default-calibrated"
    # comments of the source are kept; the header names the ids and the measurements
    assert "# δ_j, probability its output differs detectably" in r.text
    assert models.DECLARED_ID in r.text and models.WEAKER_ID in r.text and "1797/1797 exact" in r.text
    mt.scenario.loads(r.text)


def test_a_partial_divergence_scales_the_written_share(monkeypatch):
    """Were the weaker model to differ on only some images, δ_j := share × ρ would be written."""
    real = calibrate.measure_audit

    def half(seed=0):
        m = real(seed)
        return calibrate.AuditMeasures(m.declared, m.weaker, m.images, {"exact": 1000, "tolerance": 900},
                                       m.random_differs, m.seed)

    monkeypatch.setattr(calibrate, "measure_audit", half)
    r = calibrate.calibrate(MODELS / "noisy-gpu.toml", "x")  # tolerance comparison
    doc = tomllib.loads(r.text)
    div = {d["name"]: d["divergence"] for d in doc["deviation"]}
    assert div["weaker-model"] == float(Fraction(0.40) * Fraction(900, 1797))
    assert div["random-output"] == 1.0


def test_bad_input_exits_2_with_a_message(tmp_path, capsys):
    def run(argv):
        rc = main(argv)
        err = capsys.readouterr().err
        assert rc == 2 and "Traceback" not in err
        return err

    assert "nope.toml" in run(["calibrate", str(tmp_path / "nope.toml"), "-o", str(tmp_path / "o.toml")])
    err = run(["calibrate", str(MODELS / "default.toml"), "-o", str(tmp_path / "missing" / "o.toml")])
    assert "-o" in err and "missing" in err
    text = (MODELS / "four-option-claims.toml").read_text().replace("options = 4", "options = 12")
    (tmp_path / "twelve.toml").write_text(text)
    err = run(["calibrate", str(tmp_path / "twelve.toml"), "-o", str(tmp_path / "o.toml")])
    assert "claim.options" in err and "2..10" in err
    (tmp_path / "broken.toml").write_text("[scenario]\nname = 'x'\n")
    assert "scenario.game" in run(["calibrate", str(tmp_path / "broken.toml"), "-o", str(tmp_path / "o.toml")])
    assert not (tmp_path / "o.toml").exists()


def test_a_digits_committee_realises_the_calibrated_accuracy_and_correlation(tmp_path):
    """run_committee(models="digits"): node i runs verifier-(i mod 5) on the claim's image; seat 0 is right with
    the calibrated accuracy a, seats 0 and 1 both right with the calibrated P₁₁ (for this network's 20 nodes)."""
    from mira_theory.deployment import export
    from reference_node import events
    from reference_node.committee import CommitteeParams, run_committee

    cp = CommitteeParams.from_doc(export(mt.load(MODELS / "reference-committee.toml")))
    nodes, claims = 20, 3000
    run_committee(cp, tmp_path / "c.sqlite", ["honest"] * nodes, claims, seed=5, verify_signatures=False,
                  models="digits")
    measured = calibrate.measure_consensus(cp.options, nodes)
    pixels, _ = models.digits()
    vs = models.verifier_models()
    first = both = 0
    for n, e in enumerate(e for e in events.iter_events(tmp_path / "c.sqlite") if e["kind"] == "claim"):
        right = [v == e["truth"] for v in e["votes"]]
        first += right[0]
        both += right[0] and right[1]
        if n < 50:  # each vote is the node's model's answer on the claim
            c = models.digit_claim(5, e["claim_id"], cp.options)
            assert e["truth"] == c.truth
            for node, vote in zip(e["committee"], e["votes"]):
                m = vs[int(node.split("-")[1]) % len(vs)]
                assert vote == models.answer(m.scores(pixels[[c.image]])[0], c.options)
    assert binomtest(first, claims, float(measured.accuracy)).pvalue > P_MIN
    assert binomtest(both, claims, float(measured.both_right)).pvalue > P_MIN
    assert measured.accuracy == calibrate.measure_consensus(cp.options, 200).accuracy  # 5 divides both
    with pytest.raises(ValueError, match="models"):
        run_committee(cp, tmp_path / "d.sqlite", ["honest"] * nodes, 1, models="neural")
