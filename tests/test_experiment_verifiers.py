"""Experiments with adaptive verifiers (``mira-theory experiment --adaptive hedge --adaptive-verifiers``):
bandit-Hedge providers and a Hedge verifier learn together in the in-process network, and the run's
per-window time averages are tested against simulated runs of the same process.

One seeded run of 16,384 tasks (16 providers, 4 windows) passes its predictions; the same log fails
against deliberately wrong predictions — the game with q* off by 30% either way, the verifiers' learning
rate off by a factor 2; the CLI runs end to end with the same numbers for the same seed; bad option
combinations exit 2 naming the option.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import mira_theory as mt
from mira_theory import stats
from mira_theory.cli import main as _cli  # the mira-theory command itself
from mira_theory.deployment import dumps, export
from mira_theory.experiment import (
    predict_two_population,
    read_rate_batches,
    run_experiment,
    two_population_comparisons,
)
from mira_theory.games import audit
from reference_node.testing import MODELS

RUN = dict(tasks=16_384, providers=16, windows=4)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("verifiers") / "run"
    r = run_experiment(MODELS / "default.toml", adaptive="hedge", adaptive_verifiers=True, seed=3, out=out,
                       events_jsonl=False, **RUN)
    return r, out


def test_small_run_passes_its_predictions_and_reports_the_equilibrium(run):
    r, out = run
    assert r.passed, r.table()
    names = [c.quantity for c in r.comparisons]
    assert sum(n.startswith("sampling rate q̄, tasks") for n in names) == 4
    assert sum(n.startswith("deviation share t̄, tasks") for n in names) == 4
    for n in ("weaker-model: detection per audit", "random-output: detection per audit",
              "honest: false slashes per audit", "whole trajectory: q̄ and t̄ of all 4 windows jointly"):
        assert n in names
    assert sum(n.startswith("whole run: q̄ − q°") or n.startswith("whole run: t̄ − t°") for n in names) == 2
    assert all(c.correction == "holm" for c in r.comparisons)
    # the Monte Carlo tests can fail after Holm: the smallest p, 2/(R + 1), is below α/m
    assert 2 / (r.run["simulations"] + 1) * len(r.comparisons) < 0.01
    v = r.verifiers
    assert v["equilibrium"] == pytest.approx([1 / 21, 4 / 45])  # the parameters file's (q°, t°), by hand
    here, far = v["horizons"]
    assert far["tasks"] == 10 * RUN["tasks"] and far["predicted"]["distance"] < here["predicted"]["distance"] / 2
    assert here["observed"]["distance"] == pytest.approx(
        np.hypot(here["observed"]["rate"] - 1 / 21, here["observed"]["deviation"] - 4 / 45))
    # the log alone: one rate per batch, fixed before it (the first is the rate in force), all tasks counted
    batches = read_rate_batches(out / "ledger.sqlite")
    assert len(batches) == RUN["tasks"] // r.run["batch"] and batches[0, 0] == pytest.approx(0.05, abs=1e-15)
    assert batches[:, 1].sum() == RUN["tasks"] and np.all((batches[:, 0] > 0) & (batches[:, 0] < 1))
    first = batches[: len(batches) // 4]
    assert v["windows"][0]["rate"]["observed"] == pytest.approx((first[:, 0] * first[:, 1]).sum() / first[:, 1].sum())
    assert v["windows"][0]["deviation"]["observed"] == pytest.approx(first[:, 2].sum() / first[:, 1].sum())
    for f in ("report.md", "report.json", "verifiers.png", "params.json"):
        assert (out / f).exists(), f
    assert "## Approach to the mixed equilibrium" in (out / "report.md").read_text()
    assert json.loads((out / "report.json").read_text())["verifiers"]["horizons"][1]["tasks"] == far["tasks"]


def test_the_same_log_fails_against_wrong_predictions(run):
    r, out = run
    batches = read_rate_batches(out / "ledger.sqlite")
    v = r.verifiers
    sc = mt.load(MODELS / "default.toml")
    common = dict(providers=RUN["providers"], tasks=RUN["tasks"], batch=r.run["batch"], windows=RUN["windows"],
                  runs=r.run["simulations"], longer=None, eta=v["eta"])

    def passes(scenario, **kw):
        pred = predict_two_population(scenario, **{**common, "verifier_eta": v["verifier_eta"], **kw})
        comps, _ = two_population_comparisons(batches, pred, tuple(v["equilibrium"]), 0.99)
        return all(c.passed for c in stats.adjust(comps, "holm", 0.99))

    assert passes(sc, seed=[99])  # the right prediction, simulated afresh
    for factor in (1.3, 0.7):  # q* = (c_h − c_j)/(δ(L + R)) = 0.3/(0.3·(L + R)): scale L + R = 21 by 1/factor
        wrong = sc.replace({"stake.slash": 21.0 / factor - 1.0})
        assert audit.solve(wrong).deterrence_sampling_rate == pytest.approx(factor / 21)
        assert not passes(wrong, seed=[99]), factor
    assert not passes(sc, seed=[99], verifier_eta=2 * v["verifier_eta"])
    assert not passes(sc, seed=[99], verifier_eta=0.5 * v["verifier_eta"])


def test_cli_end_to_end_same_seed_same_numbers(tmp_path, capsys):
    argv = ["experiment", str(MODELS / "default.toml"), "--adaptive", "hedge", "--adaptive-verifiers",
            "--tasks", "4096", "--providers", "8", "--windows", "2", "--seed", "5", "--quiet"]
    assert _cli([*argv, "--out", str(tmp_path / "a")]) == 0
    text = capsys.readouterr().out
    assert "mixed equilibrium (parameters file): q° = 0.047619" in text and "10× longer" in text
    assert _cli([*argv, "--out", str(tmp_path / "b")]) == 0
    a, b = (json.loads((tmp_path / d / "report.json").read_text()) for d in ("a", "b"))
    assert a["comparisons"] == b["comparisons"] and a["verifiers"]["windows"] == b["verifiers"]["windows"]
    assert np.array_equal(read_rate_batches(tmp_path / "a" / "ledger.sqlite"),
                          read_rate_batches(tmp_path / "b" / "ledger.sqlite"))
    assert a["run"]["adaptive_verifiers"]["initial_rate"] == 0.05


@pytest.mark.parametrize("extra, option", [
    (["--adaptive-verifiers"], "--adaptive-verifiers"),
    (["--adaptive", "logit", "--adaptive-verifiers"], "--adaptive hedge"),
    (["--adaptive", "hedge", "--adaptive-verifiers", "--mix", "adaptive=8"], "--mix"),
    (["--adaptive", "hedge", "--adaptive-verifiers", "--mode", "processes"], "--mode"),
    (["--adaptive", "hedge", "--adaptive-verifiers", "--threshold"], "--threshold"),
    (["--verifier-eta", "0.001"], "--verifier-eta"),
    (["--adaptive", "hedge", "--adaptive-verifiers", "--tasks", "1000", "--windows", "10"], "--tasks"),
])
def test_bad_option_combinations_exit_2(tmp_path, capsys, extra, option):
    assert _cli(["experiment", str(MODELS / "default.toml"), *extra, "--out", str(tmp_path / "x")]) == 2
    assert option in capsys.readouterr().err
    assert not (tmp_path / "x" / "ledger.sqlite").exists()


def test_bad_inputs_exit_2(tmp_path, capsys):
    common = ["--adaptive", "hedge", "--adaptive-verifiers", "--tasks", "4096", "--quiet"]
    # a consensus scenario has no verifier learner
    assert _cli(["experiment", str(MODELS / "binary-claims.toml"), *common, "--out", str(tmp_path / "c")]) == 2
    assert "consensus" in capsys.readouterr().err
    # a parameters file whose stake the simulated slashes could exhaust: refused before the run
    (tmp_path / "p.json").write_text(dumps(export(mt.load(MODELS / "default.toml").replace({"stake.total": 30.0}))))
    assert _cli(["experiment", str(MODELS / "default.toml"), *common, "--params", str(tmp_path / "p.json"),
                 "--out", str(tmp_path / "s")]) == 2
    assert "minimum_stake" in capsys.readouterr().err
    assert not (tmp_path / "s" / "ledger.sqlite").exists()
    # no initial rate to learn from
    (tmp_path / "z.json").write_text(dumps(export(mt.load(MODELS / "default.toml").replace(
        {"audit.sampling_rate": 0.0}))))
    assert _cli(["experiment", str(MODELS / "default.toml"), *common, "--params", str(tmp_path / "z.json"),
                 "--out", str(tmp_path / "z")]) == 2
    assert "strictly between 0 and 1" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        _cli(["experiment", str(MODELS / "default.toml"), *common, "--verifier-eta", "-1"])
    assert exc.value.code == 2
