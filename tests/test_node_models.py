"""The digits models (integer inference, ids, accuracy, inputs, outputs) and the realised error rates
(exact binomial tests against the params)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math

import numpy as np
import pytest
from scipy.stats import binomtest

from reference_node import crypto, models, strategies, train_models
from reference_node.arbiter import Arbiter
from reference_node.ledger import Ledger
from reference_node.params import load
from reference_node.provider import MODEL_ID, Provider, Task
from reference_node.testing import write_params
from reference_node.verifier import Verifier

N = 4000
P_MIN = 1e-4  # two-sided exact binomial test; each test fails by chance with probability 1e-4
NAMES = ["declared", "weaker"] + [f"verifier-{k}" for k in range(5)]


@pytest.fixture(scope="module")
def default(tmp_path_factory):
    return load(write_params(tmp_path_factory.mktemp("p") / "d.json"))


@pytest.fixture(scope="module")
def noisy(tmp_path_factory):
    return load(write_params(tmp_path_factory.mktemp("p") / "n.json", "noisy-gpu"))


def _tasks(n, tag="x"):
    return [Task(f"{tag}-{i}", models.task_input(tag, i), "c", 1.0) for i in range(n)]


def _consistent(k, n, p):
    return binomtest(k, n, p).pvalue > P_MIN


# ----------------------------------------------------------------------------------------
# data, files, ids
# ----------------------------------------------------------------------------------------


def test_shipped_digits_equal_scikit_learns():
    from sklearn.datasets import load_digits

    d = load_digits()
    pixels, labels = models.digits()
    assert pixels.dtype == np.uint8 and pixels.shape == (1797, 64)
    assert np.array_equal(pixels, d.data) and np.array_equal(labels, d.target)


def test_model_ids_are_the_sha256_of_the_committed_files():
    files = sorted(models.MODEL_DIR.glob("*.npz"))
    assert [f.stem for f in files] == sorted(NAMES)
    reg = models.registry()
    for f in files:
        digest = hashlib.sha256(f.read_bytes()).hexdigest()
        assert digest in reg and reg[digest].name == f.stem
    assert MODEL_ID == models.DECLARED_ID == hashlib.sha256(
        (models.MODEL_DIR / "declared.npz").read_bytes()).hexdigest()
    assert models.WEAKER_ID == hashlib.sha256((models.MODEL_DIR / "weaker.npz").read_bytes()).hexdigest()
    assert [m.name for m in models.verifier_models()] == NAMES[2:]
    with pytest.raises(models.UnknownModel, match="unknown model id"):
        models.model("0" * 64)


def test_training_script_reproduces_the_committed_files(tmp_path):
    assert train_models.main(["--out", str(tmp_path), "--data-from-package"]) == 0
    for name in NAMES:
        assert (tmp_path / f"{name}.npz").read_bytes() == (models.MODEL_DIR / f"{name}.npz").read_bytes(), name


def test_split_is_a_third_held_out_and_disjoint():
    held, train = set(models.heldout().tolist()), set(models.training().tolist())
    assert not held & train and len(held | train) == 1797
    # independent recomputation of the rule
    assert held == {i for i in range(1797) if hashlib.sha256(f"mira-digits-split|{i}".encode()).digest()[0] < 86}
    assert 0.28 < len(held) / 1797 < 0.39


# ----------------------------------------------------------------------------------------
# integer inference
# ----------------------------------------------------------------------------------------


def _python_scores(name: str, pixels: list[int]) -> list[int]:
    """A pure-Python integer implementation (Python ints, loops) read straight from the file."""
    with np.load(models.MODEL_DIR / f"{name}.npz", allow_pickle=False) as z:
        shifts = [int(s) for s in z["shifts"]]
        layers = [(z[f"w{k}"].tolist(), z[f"b{k}"].tolist(), s) for k, s in enumerate(shifts)]
    h = list(pixels)
    for k, (w, b, s) in enumerate(layers):
        out = []
        for j in range(len(b)):
            acc = b[j]
            for i, x in enumerate(h):
                acc += x * w[i][j]
            if s:
                acc = (acc + (1 << (s - 1))) >> s  # Python's >> floors: an arithmetic shift
            if k < len(layers) - 1:
                acc = min(max(acc, 0), 255)
            out.append(acc)
        h = out
    return h


@pytest.mark.parametrize("name", NAMES)
def test_inference_equals_a_pure_python_integer_implementation(name):
    m = models.by_name(name)
    pixels, _ = models.digits()
    rng = np.random.default_rng(3)
    rows = [pixels[i] for i in (0, 1, 977, 1796)]
    rows += [rng.integers(0, 17, 64).astype(np.uint8), np.full(64, 16, np.uint8), np.zeros(64, np.uint8)]
    got = m.run([models.encode(r) for r in rows])
    assert got.dtype == np.int64 and got.shape == (len(rows), models.OUT)
    for r, g in zip(rows, got):
        assert g.tolist() == _python_scores(name, r.tolist())


@pytest.mark.parametrize("name", NAMES)
def test_float_path_is_exact(name):
    """The BLAS path equals int64 arithmetic on every image, and its premise holds: every partial
    sum is an integer below 2^53 (recomputed here from the weights)."""
    m = models.by_name(name)
    top, bound = 16, 0
    for w, b, s in zip(m.weights, m.biases, m.shifts):
        bound = max(bound, int(max(sum(abs(int(v)) for v in w[:, j]) * top + abs(int(b[j])) for j in range(w.shape[1])))
                    + (1 << s) // 2)
        top = 255
    assert bound == max(m.bounds) < 2**53 and m.float_exact
    pixels, _ = models.digits()
    assert np.array_equal(m.scores(pixels), m.scores_int64(pixels))
    assert int(np.abs(m.scores(pixels)).max()) <= m.score_bound < models.OUTPUT_BOUND


def test_accuracy_cost_and_divergence_of_declared_and_weaker():
    pixels, labels = models.digits()
    held = models.heldout()
    declared, weaker = models.by_name("declared"), models.by_name("weaker")

    def accuracy(m, idx):
        return float((models.predict(m.scores(pixels[idx])) == labels[idx]).mean())

    # measured at training: declared 0.972 held-out, weaker 0.919; the floors leave a little room
    assert accuracy(declared, held) >= 0.96
    assert 0.85 <= accuracy(weaker, held) < accuracy(declared, held) - 0.03
    assert accuracy(declared, models.training()) >= 0.99
    # 64·64 + 64·10 = 4,736 multiply-adds against 64·8 + 8·10 = 592
    assert declared.multiply_adds == 4736 and weaker.multiply_adds == 592
    # the weaker model differs detectably (beyond the tolerance, hence also exactly) on every image
    gap = np.abs(declared.scores(pixels) - weaker.scores(pixels)).max(axis=1)
    assert gap.min() > models.TOLERANCE


def test_verifier_models_are_diverse_and_accurate():
    pixels, labels = models.digits()
    held = models.heldout()
    vs = models.verifier_models()
    assert len(vs) >= 4 and len({m.id for m in vs}) == len(vs)
    wrong = [models.predict(m.scores(pixels[held])) != labels[held] for m in vs]
    for m, w in zip(vs, wrong):
        assert 0.85 <= 1 - w.mean() < 1.0, m.name
    # correlated but not identical errors
    for a in range(len(vs)):
        for b in range(a + 1, len(vs)):
            assert (wrong[a] != wrong[b]).any() and (wrong[a] & wrong[b]).any()


# ----------------------------------------------------------------------------------------
# inputs
# ----------------------------------------------------------------------------------------


def test_task_inputs_encode_a_seeded_image():
    pixels, _ = models.digits()
    for seed, i in (("a", 0), (7, 123), ("x", 10**6)):
        k = int.from_bytes(hashlib.sha256(f"mira-task|{seed}|{i}".encode()).digest()[:8], "big") % 1797
        text = models.task_input(seed, i)
        assert text == "digits8x8:" + "".join("0123456789abcdefg"[v] for v in pixels[k])
        assert np.array_equal(models.decode([text])[0], pixels[k])
    assert models.task_input(1, 5) == models.task_input(1, 5)
    assert len({models.task_input(1, i) for i in range(200)}) > 150


@pytest.mark.parametrize("text, needle", [
    ("hello", "prefix"),
    ("digits8x8:" + "0" * 63, "found 63"),
    ("digits8x8:" + "0" * 65, "found 65"),
    ("digits8x8:" + "0" * 40 + "G" + "0" * 23, "pixel 40"),
    ("digits8x8:" + "0" * 10 + "h" + "0" * 53, "pixel 10"),
    ("digits8x8:" + "0" * 63 + "é", "pixel 63"),
    ("DIGITS8X8:" + "0" * 64, "prefix"),
    ("", "prefix"),
])
def test_invalid_inputs_are_rejected_with_a_message(text, needle):
    assert needle in models.input_problem(text)
    good = models.task_input(0, 0)
    with pytest.raises(models.InvalidInput, match="input 2: ") as err:
        models.decode([good, good, text, good])
    assert err.value.index == 2 and needle in err.value.problem


def test_length_compensating_inputs_are_each_checked():
    """Two wrong-length inputs whose lengths add up (a joined buffer would look valid) are still rejected."""
    body = "1" * 64
    a, b = "digits8x8:" + body[:-1], "5digits8x8:" + body
    with pytest.raises(models.InvalidInput, match="input 0"):
        models.decode([a, b])


def test_provider_refuses_an_invalid_input(default):
    prov = Provider("p", default, "honest", seed=1)
    with pytest.raises(models.InvalidInput, match="task 'bad-1': input: expected the prefix"):
        prov.infer([Task("ok-0", models.task_input(0, 0), "c", 1.0), Task("bad-1", "hi", "c", 1.0)])


def test_a_commitment_to_an_invalid_input_is_detected_and_upheld(tmp_path, default):
    """A provider that commits a text that is not an image is slashed: the declared model has no output."""
    p = dataclasses.replace(default, sampling_rate=1.0)
    led = Ledger(tmp_path / "l.sqlite", p)
    prov, ver, arb = Provider("p0", p, seed=1), Verifier("v0", p, 0, 1, seed=1), Arbiter("arb", p, seed=1)
    try:
        assert all(r["ok"] for r in led.execute(prov.register_ops() + ver.register_ops(20.0) + arb.register_ops()))
        text, out = "not an image", [1] * models.OUT
        ih, oh = models.sha256_hex(text), models.output_hash(out)
        sig = prov.key.sign(crypto.commitment_message("t-bad", ih, oh, MODEL_ID, "p0"))
        op = {"op": "commit", "request_id": "commit:t-bad", "task_id": "t-bad", "provider": "p0", "client": "c",
              "fee": 1.0, "input_hash": ih, "output_hash": oh, "model_id": MODEL_ID, "signature": sig,
              "input": text, "output": out}
        assert led.execute([op])[0]["ok"]
        ops, evidence = ver.audit(led.commitments(0))
        assert [o["outcome"] for o in ops if o["op"] == "audit"] == ["fail"]
        assert len(evidence) == 1 and evidence[0]["recomputed_output"] is None
        assert all(r["ok"] for r in led.execute(ops))
        verdict = arb.judge(json.loads(json.dumps(evidence[0])), led.task, led.pubkey)
        assert verdict["verdict"] == "upheld" and "not a valid encoding" in verdict["reason"]
        assert led.execute([verdict])[0]["ok"]
    finally:
        led.close()


# ----------------------------------------------------------------------------------------
# outputs
# ----------------------------------------------------------------------------------------


def test_output_format():
    v = [3, -12, 0, 2**31 - 1, -(2**31 - 1), 7, 8, 9, 10, -1]
    assert models.canonical(v) == "3,-12,0,2147483647,-2147483647,7,8,9,10,-1"
    assert models.canonical(np.array(v)) == models.canonical(v)
    assert json.loads(models.canonical_json(v)) == v
    assert models.output_hash(v) == hashlib.sha256(b"3,-12,0,2147483647,-2147483647,7,8,9,10,-1").hexdigest()
    assert models.parse_output(v) == v
    assert models.parse_output(json.loads(models.canonical_json(v))) == v


@pytest.mark.parametrize("bad", [
    [1] * 9, [1] * 11, [1] * 9 + [True], [1] * 9 + [1.0], [1] * 9 + [math.nan], [1] * 9 + [math.inf],
    [1] * 9 + [2**31], [1] * 9 + [-(2**31)], [1] * 9 + [10**400], [1] * 9 + ["1"], [1] * 9 + [None],
    [1] * 9 + [[1]], (1,) * 10, "1,2,3", None, {"a": 1},
])
def test_parse_output_rejects(bad):
    assert models.parse_output(bad) is None


def test_matches_exact_and_tolerance():
    ref = [100] * 10
    tau = models.TOLERANCE
    assert models.matches(ref, list(ref), "exact") and models.matches(np.array(ref), ref, "exact")
    assert not models.matches(ref, [100] * 9 + [101], "exact")
    assert models.matches(ref, [100 + tau] * 5 + [100 - tau] * 5, "tolerance")
    assert not models.matches(ref, [100] * 9 + [100 + tau + 1], "tolerance")
    assert not models.matches(ref, [100] * 9, "tolerance")


def test_noise_and_random_output_laws():
    rng = np.random.default_rng(4)
    noise = models.honest_noise(rng, N, 0.1)
    norm = np.abs(noise).max(axis=1)
    assert noise.dtype == np.int64 and norm.max() <= 2 * models.TOLERANCE
    assert (np.abs(noise) == norm[:, None]).all()  # s·v with v = ±1: every entry has the row's magnitude
    assert _consistent(int((norm > models.TOLERANCE).sum()), N, 0.1)
    r = models.random_output(rng, N)
    assert r.min() >= -models.RANDOM_SCALE and r.max() <= models.RANDOM_SCALE
    assert models.deviation_kind("random-output") == "random" and models.deviation_kind("weaker-model") == "weaker"


# ----------------------------------------------------------------------------------------
# realised error rates
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("deviation", ["weaker-model", "random-output"])
def test_realised_divergence_equals_delta(default, deviation):
    """Exact comparison: the fraction of outputs differing from the declared model is δ_j."""
    prov = Provider("p", default, deviation, seed=11)
    tasks = _tasks(N, deviation)
    out = prov.infer(tasks)
    ref = models.run_declared([t.input for t in tasks])
    differ = sum(not models.matches(r, reply["output"], "exact") for (reply, _), r in zip(out, ref))
    delta = default.deviation(deviation).divergence
    if delta == 1.0:
        assert differ == N
    else:
        assert _consistent(differ, N, delta)
    # differ exactly on the keyed-hash divergent set, agree elsewhere (also beyond the tolerance)
    for t, ((reply, _), r) in zip(tasks, zip(out, ref)):
        divergent = models.unit_hash(prov.secret, deviation, t.task_id) < delta
        assert divergent == (not models.matches(r, reply["output"], "exact"))
        assert divergent == (not models.matches(r, reply["output"], "tolerance"))


def test_honest_exact_outputs_always_match(default):
    prov = Provider("p", default, "honest", seed=2)
    tasks = _tasks(500, "h")
    ref = models.run_declared([t.input for t in tasks])
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
