"""Monte Carlo: the simulated games agree with hand-worked closed forms within exact/CLT
intervals, the same seed gives identical results on every backend and chunking, bad input is
reported, and the simulate command writes its file."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from scipy import stats

import mira_theory as mt
from mira_theory.cli import main as cli_main
from mira_theory.montecarlo import (
    BLOCK_TASKS,
    SEGMENT_BLOCKS,
    clopper_pearson,
    simulate,
    simulate_audit,
    simulate_consensus,
)
from mira_theory.scenario import ScenarioError

MODELS = Path(__file__).resolve().parents[1] / "models"
CONF = 0.999  # fixed seeds make every check deterministic; the level only sets the width

# the audit scenario: every term live, a stake that never runs out
NOISY = {"audit.sampling_rate": 0.1, "audit.false_alarm_rate": 0.02, "audit.miss_rate": 0.1,
         "audit.collusion": 0.3, "audit.verifiers": 2, "stake.total": 1e9}


@pytest.fixture(scope="module")
def noisy():
    return mt.load(MODELS / "default.toml").replace(NOISY)




# --------------------------------------------------------------------------------------
# Audit game against the closed forms (worked by hand here)
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def audit_run(noisy):
    return simulate_audit(noisy, mix={"honest": 4, "weaker-model": 2, "random-output": 2}, rounds=40_000,
                          replicates=6, seed=11, confidence=CONF)


def test_audit_rates_match_hand_worked_closed_forms(audit_run):
    ds = audit_run
    q, alpha, beta, r, n = 0.1, 0.02, 0.1, 0.3, 2
    e = 1 - r**n  # an audit is effective unless both verifiers collude
    expected = {"honest": q * e * alpha, "weaker-model": q * e * 0.3 * (1 - beta),
                "random-output": q * e * 1.0 * (1 - beta)}
    for action, rate in expected.items():
        row = ds.sel(action=action)
        assert float(row["flag_rate_low"]) <= rate <= float(row["flag_rate_high"]), action
        assert float(row["flag_rate_predicted"]) == pytest.approx(rate, rel=1e-12)
        assert float(row["audit_rate_low"]) <= q <= float(row["audit_rate_high"])
    # effective audits among audits: 1 − r^n, exact interval from the counts
    eff, aud = int(ds["effective_audits"].sum()), int(ds["audits"].sum())
    lo, hi = clopper_pearson(eff, aud, CONF)
    assert lo <= e <= hi
    # divergent outputs: δ_j of the deviation's tasks, honest never
    tasks = ds["tasks"].sum(("replicate", "provider"))
    div = ds["divergent"].sum(("replicate", "provider"))
    assert int(div.sel(action="honest")) == 0
    assert int(div.sel(action="random-output")) == int(tasks.sel(action="random-output"))
    lo, hi = clopper_pearson(int(div.sel(action="weaker-model")), int(tasks.sel(action="weaker-model")), CONF)
    assert lo <= 0.3 <= hi


def test_audit_payoffs_match_hand_worked_closed_forms(audit_run):
    """U_a = R − c_a − P(flag | a)·(L + R) per task, R = 1, L = 20 (no stake runs out)."""
    ds = audit_run
    R, L = 1.0, 20.0
    e = 1 - 0.3**2
    flag = {"honest": 0.1 * e * 0.02, "weaker-model": 0.1 * e * 0.3 * 0.9, "random-output": 0.1 * e * 0.9}
    cost = {"honest": 0.4, "weaker-model": 0.1, "random-output": 0.0}
    assert not bool(ds["exhausted"].any())
    for action in flag:
        expected = R - cost[action] - flag[action] * (L + R)
        row = ds.sel(action=action)
        assert float(row["payoff_per_task_low"]) <= expected <= float(row["payoff_per_task_high"]), action
        assert float(row["payoff_per_task_predicted"]) == pytest.approx(expected, rel=1e-12)
    # money is accounted from the counts: reward R per unflagged task, L per flag
    flags = ds["flagged"].sum("action")
    tasks = ds["tasks"].sum("action")
    np.testing.assert_array_equal(ds["reward"], R * (tasks - flags))
    np.testing.assert_array_equal(ds["slashed"], L * flags)


def test_audit_verifier_payoff_matches_its_expectation(noisy):
    """Against a lone weaker-model provider: per task −q·n·k + d·b·L − δ·D·(1 − q·e·(1 − β))."""
    ds = simulate_audit(noisy, mix={"weaker-model": 1}, rounds=200_000, replicates=8, seed=5)
    q, n, k, b, L, D, delta = 0.1, 2, 0.4, 0.5, 20.0, 5.0, 0.3
    e = 1 - 0.3**2
    d = q * e * delta * 0.9
    expected = -q * n * k + d * b * L - delta * D * (1 - q * e * 0.9)
    per_task = ds["verifier_payoff"].sel(provider=0).values / 200_000
    half = stats.norm.ppf(0.9995) * per_task.std(ddof=1) / math.sqrt(per_task.size)
    assert abs(per_task.mean() - expected) <= half


def test_slashes_are_capped_by_the_stake(noisy):
    s = noisy.replace({"stake.total": 50.0})
    ds = simulate_audit(s, mix={"honest": 1, "random-output": 1}, rounds=5_000, seed=2)
    guesser = ds.sel(provider=1, replicate=0)
    assert int(guesser["flagged"].sum()) > 3  # more flags than the stake covers at L = 20
    assert float(guesser["slashed"]) == 50.0 and float(guesser["stake_remaining"]) == 0.0
    assert bool(guesser["exhausted"])


def test_mixed_strategies_play_their_probabilities(noisy):
    ds = simulate_audit(noisy, mix=[{"honest": 0.75, "weaker-model": 0.25}] * 3, rounds=30_000, seed=4,
                        confidence=CONF)
    tasks = ds["tasks"].sum(("replicate", "provider"))
    lo, hi = clopper_pearson(int(tasks.sel(action="weaker-model")), 90_000, CONF)
    assert lo <= 0.25 <= hi and int(tasks.sel(action="random-output")) == 0
    assert ds["strategy"].values.tolist() == ["honest:0.75+weaker-model:0.25"] * 3


# --------------------------------------------------------------------------------------
# Reproducibility: one seed, one result, whatever the backend and chunking
# --------------------------------------------------------------------------------------


def test_same_seed_identical_on_every_backend_and_chunking(pool, dask_client, noisy):
    P = 4
    rounds = (BLOCK_TASKS // P) * SEGMENT_BLOCKS + 1_000  # two segments per replicate
    kw = dict(mix={"honest": 2, "weaker-model": 1, "random-output": 1}, rounds=rounds, replicates=2, seed=7)
    base = simulate_audit(noisy, **kw)
    runs = [simulate_audit(noisy, **kw, chunk_size=3),
            simulate_audit(noisy, **kw, backend="processes", client=pool, chunk_size=1),
            simulate_audit(noisy, **kw, backend="dask", client=dask_client, chunk_size=2)]
    for other in runs:
        xr.testing.assert_identical(base, other)
    other_seed = simulate_audit(noisy, **{**kw, "seed": 8})
    assert not np.array_equal(base["flagged"].values, other_seed["flagged"].values)
    # replicates are independent streams, not copies
    assert not np.array_equal(base["flagged"].values[0], base["flagged"].values[1])


def test_consensus_same_seed_identical_on_every_backend(pool, dask_client):
    s = mt.load(MODELS / "binary-claims.toml")
    kw = dict(nodes=20, mix={"honest": 18, "random-guess": 2}, claims=2_000, replicates=3, seed=3)
    base = simulate_consensus(s, **kw)
    for other in (simulate_consensus(s, **kw, backend="processes", client=pool),
                  simulate_consensus(s, **kw, backend="dask", client=dask_client, chunk_size=2)):
        xr.testing.assert_identical(base, other)


# --------------------------------------------------------------------------------------
# Consensus game against the closed forms
# --------------------------------------------------------------------------------------


def test_consensus_three_member_hand_case():
    """N = 3, τ = 0.6 (K = 2), m = 2, κ = 0: consensus right iff ≥ 2 of 3 right,
    a³ + 3a²(1 − a); an honest member agrees iff the majority votes as it does."""
    a = 0.8
    s = mt.load(MODELS / "binary-claims.toml").replace({"committee.size": 3, "verifier.error_correlation": 0.0,
                                                         "verifier.accuracy": a})
    ds = simulate_consensus(s, nodes=3, claims=60_000, seed=9, confidence=CONF)
    right = a**3 + 3 * a**2 * (1 - a)
    row = ds.sel(outcome="correct")
    assert float(row["outcome_rate_low"]) <= right <= float(row["outcome_rate_high"])
    assert int(ds["claims_none"].sum()) == 0  # two options, three votes: always a majority of 2
    # agreement: own vote right and ≥ 1 of the other 2 right, or own wrong and ≥ 1 other wrong
    agree = a * (1 - (1 - a) ** 2) + (1 - a) * (1 - a**2)
    row = ds.sel(action="honest")
    assert float(row["agreement_rate_low"]) <= agree <= float(row["agreement_rate_high"])


def test_consensus_false_slash_per_window_within_interval():
    """An all-honest network with correlated errors: the slashed share of windows against
    P(Binomial(W, p_h) < θW), p_h from the exact beta-binomial committee outcome."""
    from mira_theory.games import consensus

    s = mt.load(MODELS / "binary-claims.toml").replace({"slashing.agreement_threshold": 0.93})
    ds = simulate_consensus(s, claims=40_000, replicates=2, seed=21, confidence=CONF)
    p_h = consensus.committee_outcome(5, {}, 2, 0.6, 0.95, 0.2).agree_honest
    false = float(stats.binom.cdf(math.ceil(0.93 * 100) - 1, 100, p_h))
    assert 0.02 < false < 0.2  # the check has power
    row = ds.sel(action="honest")
    assert float(row["slash_rate_low"]) <= false <= float(row["slash_rate_high"])
    assert float(row["agreement_rate_low"]) <= p_h <= float(row["agreement_rate_high"])
    # payoff per claim of an honest node: p_h·r − c − L·P_false/W
    expected = p_h * 0.10 - 0.04 - 10.0 * false / 100
    per_node = (ds["payoff"] / ds["votes"]).values.ravel()
    half = stats.norm.ppf(0.9995) * per_node.std(ddof=1) / math.sqrt(per_node.size)
    assert abs(per_node.mean() - expected) <= half


def test_consensus_lone_deviator_detection_within_interval():
    """Committee = network (5 of 5): the deviator always sits with 4 honest members, so its
    agreement is p_j of committee_outcome and its windows fail with P(Binomial(W, p_j) < θW)."""
    from mira_theory.games import consensus

    s = mt.load(MODELS / "binary-claims.toml").replace({"deviation.random-guess.accuracy": 0.85,
                                                         "slashing.window": 40,
                                                         "slashing.agreement_threshold": 0.85})
    ds = simulate_consensus(s, nodes=5, mix={"honest": 4, "random-guess": 1}, claims=40_000, seed=13,
                            confidence=CONF)
    p_j = consensus.committee_outcome(4, {"g": (1, 0.85)}, 2, 0.6, 0.95, 0.2).agree_deviation["g"]
    detect = float(stats.binom.cdf(math.ceil(0.85 * 40) - 1, 40, p_j))
    assert 0.01 < detect < 0.99
    row = ds.sel(action="random-guess")
    assert float(row["agreement_rate_low"]) <= p_j <= float(row["agreement_rate_high"])
    assert float(row["slash_rate_low"]) <= detect <= float(row["slash_rate_high"])
    assert int(ds["windows"].sel(node=4).sum()) == 40_000 // 40


def test_clopper_pearson_against_scipy():
    lo, hi = clopper_pearson(7, 50, 0.95)
    ci = stats.binomtest(7, 50).proportion_ci(0.95, method="exact")
    assert lo == pytest.approx(ci.low, rel=1e-9) and hi == pytest.approx(ci.high, rel=1e-9)
    lo, hi = clopper_pearson(0, 10, 0.9)
    assert lo == 0.0 and hi == pytest.approx(1 - 0.05 ** (1 / 10), rel=1e-9)


# --------------------------------------------------------------------------------------
# Input errors and the command line
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, key", [
    ({"mix": {"honest": 2, "swapped": 1}}, "mix"),
    ({"mix": {"honest": -1}}, "mix.honest"),
    ({"providers": 5, "mix": {"honest": 2}}, "providers"),
    ({"rounds": 0}, "rounds"),
    ({"replicates": 0}, "replicates"),
    ({"seed": -1}, "seed"),
    ({"mix": [{"honest": 0.5, "weaker-model": 0.4}]}, "mix[0]"),
    ({"backend": "ray"}, "backend"),
])
def test_bad_simulation_input_is_reported(noisy, kwargs, key):
    with pytest.raises(ScenarioError) as err:
        simulate_audit(noisy, **kwargs)
    assert err.value.problems[0].key == key


def test_consensus_needs_enough_nodes():
    with pytest.raises(ScenarioError, match="committee.size"):
        simulate(MODELS / "binary-claims.toml", agents=3)


def test_cli_simulate_writes_and_reports(tmp_path, capsys):
    out = tmp_path / "sim.nc"
    code = cli_main(["simulate", str(MODELS / "default.toml"), "--rounds", "20000", "--mix",
                     "honest=3,weaker-model=1", "--seed", "4", "--replicates", "2", "-o", str(out)])
    text, err = capsys.readouterr()
    assert code == 0, err
    assert "flag_rate" in text and "weaker-model" in text
    with xr.open_dataset(out, engine="scipy") as back:
        back = back.load()
    direct = simulate_audit(mt.load(MODELS / "default.toml"), mix={"honest": 3, "weaker-model": 1},
                            rounds=20_000, replicates=2, seed=4)
    np.testing.assert_array_equal(back["flagged"].values, direct["flagged"].values)
    csv = tmp_path / "sim.csv"
    assert cli_main(["simulate", str(MODELS / "default.toml"), "--rounds", "1000", "--quiet", "-o",
                     str(csv)]) == 0
    assert capsys.readouterr().out == "" and csv.stat().st_size > 0
    code = cli_main(["simulate", str(MODELS / "default.toml"), "--mix", "honest=2,nobody=1"])
    assert code == 2 and "nobody" in capsys.readouterr().err
