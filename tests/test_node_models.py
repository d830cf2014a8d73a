"""Deterministic models and the realised error rates (exact binomial tests against the params)."""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest
from scipy.stats import binomtest

from reference_node import models, strategies
from reference_node.params import load
from reference_node.provider import Provider, Task
from reference_node.testing import write_params
from reference_node.verifier import Verifier

N = 4000
P_MIN = 1e-4  # two-sided exact binomial test; each test fails by chance with probability 1e-4


@pytest.fixture(scope="module")
def default(tmp_path_factory):
    return load(write_params(tmp_path_factory.mktemp("p") / "d.json"))


@pytest.fixture(scope="module")
def noisy(tmp_path_factory):
    return load(write_params(tmp_path_factory.mktemp("p") / "n.json", "noisy-gpu"))


def _tasks(n, tag="x"):
    return [Task(f"{tag}-{i}", f"question {tag} {i}", "c", 1.0) for i in range(n)]


def _consistent(k, n, p):
    return binomtest(k, n, p).pvalue > P_MIN


def test_weights_are_deterministic_and_model_specific():
    a = models.run_declared("m1", ["hello", "world"])
    assert np.array_equal(a, models.run_declared("m1", ["hello", "world"]))
    assert not np.array_equal(a, models.run_declared("m2", ["hello", "world"]))
    assert a.shape == (2, models.OUT)


def test_truncated_model_differs_by_exactly_one_and_is_cheaper():
    x = models.embed([f"q{i}" for i in range(512)])
    gap = np.abs(models.declared("m", x) - models.truncated("m", x)).max(axis=1)
    assert np.allclose(gap, 1.0)
    # work: 64·32 + 32·8 = 2,304 multiply-adds against 2,304 + 64·256 + 256·256 + 256·8 = 86,272
    assert models.multiply_adds("truncated") == 2304 and models.multiply_adds("declared") == 86272

    def best(f):
        times = []
        for _ in range(7):
            t0 = time.perf_counter()
            f("m", x)
            times.append(time.perf_counter() - t0)
        return min(times)

    assert best(models.truncated) < best(models.declared)


@pytest.mark.parametrize("deviation", ["weaker-model", "random-output"])
def test_realised_divergence_equals_delta(default, deviation):
    """Exact comparison: the fraction of outputs differing from the declared model is δ_j."""
    prov = Provider("p", default, deviation, seed=11)
    tasks = _tasks(N, deviation)
    out = prov.infer(tasks)
    ref = models.run_declared(prov.model_id, [t.input for t in tasks])
    differ = sum(not models.matches(r, reply["output"], "exact") for (reply, _), r in zip(out, ref))
    delta = default.deviation(deviation).divergence
    if delta == 1.0:
        assert differ == N
    else:
        assert _consistent(differ, N, delta)
    # differ exactly on the keyed-hash divergent set, agree elsewhere
    for t, ((reply, _), r) in zip(tasks[:300], zip(out[:300], ref[:300])):
        divergent = models.unit_hash(prov.secret, deviation, t.task_id) < delta
        assert divergent == (not models.matches(r, reply["output"], "exact"))


def test_honest_exact_outputs_always_match(default):
    prov = Provider("p", default, "honest", seed=2)
    tasks = _tasks(500, "h")
    ref = models.run_declared(prov.model_id, [t.input for t in tasks])
    assert all(models.matches(r, reply["output"], "exact") for (reply, _), r in zip(prov.infer(tasks), ref))


def _audit_outcomes(params, strategy, n=N, seed=5):
    p = dataclasses.replace(params, sampling_rate=1.0)
    prov = Provider("p", p, strategy, seed=seed)
    ops = [op for _, op in prov.infer(_tasks(n, strategy))]
    ver = Verifier("v", p, 0, 1, seed=seed)
    records, _ = ver.audit(ops)
    outcomes = [o["outcome"] for o in records if o["op"] == "audit"]
    assert len(outcomes) == n
    return outcomes


def test_tolerance_false_alarm_rate_is_alpha(noisy):
    """Honest noisy outputs are flagged by an effective audit with probability α."""
    p = dataclasses.replace(noisy, collusion=0.0)
    outcomes = _audit_outcomes(p, "honest")
    assert _consistent(outcomes.count("fail"), N, p.false_alarm_rate)
    assert outcomes.count("fail") > 0  # the noise is real: some honest outputs exceed the tolerance


def test_tolerance_miss_rate_is_beta(noisy):
    """A divergent output (random-output, δ = 1) escapes an effective audit with probability β."""
    p = dataclasses.replace(noisy, collusion=0.0)
    outcomes = _audit_outcomes(p, "random-output")
    assert outcomes.count("pass") == 0
    assert _consistent(outcomes.count("inconclusive"), N, p.miss_rate)


def test_weaker_model_flag_rate_in_tolerance_mode(noisy):
    """Per effective audit a weaker-model output is flagged with probability δ(1 − β)."""
    p = dataclasses.replace(noisy, collusion=0.0)
    outcomes = _audit_outcomes(p, "weaker-model")
    d = p.deviation("weaker-model").divergence
    assert _consistent(outcomes.count("fail"), N, d * (1 - p.miss_rate))


def test_collusion_makes_an_audit_ineffective_with_probability_r_to_the_n(noisy):
    p = dataclasses.replace(noisy, collusion=0.5, verifiers_per_audit=2)
    outcomes = _audit_outcomes(p, "honest")
    assert _consistent(outcomes.count("colluded"), N, 0.25)


def test_sampling_rate_and_lead_split(default):
    """Each task is audited by exactly its lead verifier with probability q."""
    q = default.sampling_rate
    vs = [Verifier(f"v{i}", default, i, 3, seed=4) for i in range(3)]
    ids = [f"s-{i}" for i in range(20_000)]
    picks = [sum(v.selects(t) for v in vs) for t in ids]
    assert max(picks) <= 1
    assert _consistent(sum(picks), len(ids), q)


def test_selection_depends_on_the_secret(default):
    a = Verifier("v", default, 0, 1, seed=1)
    b = Verifier("v", default, 0, 1, seed=2)
    ids = [f"k{i}" for i in range(5000)]
    assert [a.selects(t) for t in ids] != [b.selects(t) for t in ids]


def test_hedge_learns_to_avoid_a_dominated_action():
    rng = np.random.default_rng(0)
    h = strategies.Hedge(["honest", "cheat"], rng, eta=0.05, scale=21)
    for _ in range(3000):
        a = h.choose()
        h.observe(a, 0.6 if a == "honest" else -1.0)
    assert h.probabilities()[0] > 0.9


def test_mixed_deviates_with_probability_t():
    m = strategies.Mixed("cheat", 0.3, np.random.default_rng(1))
    k = sum(m.choose() == "cheat" for _ in range(N))
    assert _consistent(k, N, 0.3)


def test_parse_mix_errors():
    assert strategies.parse_mix("honest=1,weaker-model=2", ("weaker-model",), 3) == \
        ["honest", "weaker-model", "weaker-model"]
    for bad in ("honest=2", "nope=3", "honest=x", "mixed:weaker-model:2=3", "honest"):
        with pytest.raises(ValueError):
            strategies.parse_mix(bad, ("weaker-model",), 3)
