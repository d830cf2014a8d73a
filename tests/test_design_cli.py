"""Mechanism design from the command line and the scenario file: ``design``, ``export --design``
→ ``check``, ``frontier``, ``[[provider_type]]`` and ``[uncertainty]`` tables.

Expected values are computed here from the scenario's numbers (the audit model's IC,
participation and episode conditions written out by hand), not read from the code.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scenario_texts import audit_scenario
from scipy import stats

import mira_theory as mt
from mira_theory import cli
from mira_theory.scenario import ScenarioError

ROOT = Path(__file__).resolve().parents[1]
POS = str(ROOT / "models" / "proof-of-sampling.toml")
YEAR = 365.25 * 24 * 3600


def run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def by_hand(sc, q, L, S, R, c_h=None, lam=None, kappa=None):
    """IC, participation and exact-episode margins of every deviation, written out here."""
    a, st = sc.audit, sc.stake
    c_h = sc.task.cost_honest if c_h is None else c_h
    lam = st.throughput if lam is None else lam
    kappa = st.capital_cost if kappa is None else kappa
    e = 1 - a.collusion ** a.verifiers
    f = q * e * a.false_alarm_rate
    out = {"participation": R - c_h - f * (L + R) - kappa * S / (lam * YEAR)}
    m = int(round(lam * st.settlement_latency))
    ks = np.arange(m + 1)
    for dev in sc.deviations:
        d = q * e * dev.divergence * (1 - a.miss_rate)
        out[f"ic[{dev.name}]"] = (d - f) * (L + R) - (c_h - dev.cost)
        gain = (1 / d + m) * (c_h - dev.cost - d * R + f * (L + R))
        loss = float(np.sum(stats.binom.pmf(ks, m, d) * np.minimum(S, L * (ks + 1))))
        out[f"episode[{dev.name}]"] = loss - gain
    return out


def test_export_design_then_check_round_trip_and_a_lowered_rate_fails(tmp_path, capsys):
    params = tmp_path / "p.json"
    code, out, err = run(capsys, "export", POS, "--design", "--S-max", "5000", "-o", params)
    assert code == 0, err
    doc = json.loads(params.read_text())
    p = doc["parameters"]
    sc = mt.load(POS)
    assert doc["scenario_sha256"] == sc.sha256  # tied to the file it was designed from
    assert doc["certificate"]["holds"] is True and doc["design"]["binding"]
    margins = by_hand(sc, p["sampling_rate"], p["slash"], p["minimum_stake"], p["reward"])
    scale = {"participation": p["reward"]}
    for name, value in margins.items():
        assert value >= -1e-6 * scale.get(name, max(1.0, p["minimum_stake"])), (name, value)
    assert p["minimum_stake"] <= 5000 * (1 + 1e-9)
    code, out, err = run(capsys, "check", POS, params)
    assert code == 0 and "all constraints hold" in out and "warning" not in err
    # halve the sampling rate by hand: the IC margin q·(L + R) − Δc then falls below zero unless it
    # had slack of Δc at least (it has far less here), and check names it
    assert margins["ic[random-output]"] < 0.49
    doc["parameters"]["sampling_rate"] = p["sampling_rate"] / 2
    params.write_text(json.dumps(doc))
    code, out, err = run(capsys, "check", POS, params)
    assert code == 1
    failed = [line for line in out.splitlines() if line.startswith("FAILED")]
    assert failed and "ic[random-output]" in failed[0]


def test_design_json_satisfies_the_hand_conditions_and_is_no_dearer_than_a_grid(capsys):
    code, out, err = run(capsys, "design", POS, "--free", "sampling_rate", "slash", "--L-max", "200", "--json")
    assert code == 0, err
    doc = json.loads(out)
    sc = mt.load(POS)
    p = doc["parameters"]
    S, R = sc.stake.total, sc.task.reward
    assert p["total_stake"] == S and p["reward"] == R  # fixed variables stay fixed
    assert doc["verified"] is True
    margins = by_hand(sc, p["sampling_rate"], p["slash"], S, R)
    assert min(margins.values()) >= -1e-6
    # cost = R + q·n·k: on a grid of (q, L) no feasible point is cheaper than the design
    best = math.inf
    for q in np.linspace(0.001, 0.2, 200):
        for L in np.linspace(0, 200, 101):
            if min(by_hand(sc, q, L, S, R).values()) >= 0:
                best = min(best, R + q * sc.audit.verifiers * sc.audit.cost)
                break  # larger L only costs the same at this q
    assert doc["objective"] <= best + 1e-9


def test_infeasible_design_exits_1_and_says_why(capsys):
    code, out, err = run(capsys, "design", POS, "--free", "sampling_rate", "--q-max", "0.01")
    assert code == 1
    assert "infeasible" in out and "q_max" in out  # names the bound that must change


def test_frontier_of_a_consensus_scenario_is_bad_input(capsys):
    code, out, err = run(capsys, "frontier", ROOT / "models" / "binary-claims.toml")
    assert code == 2 and "scenario.game" in err and "Traceback" not in err


def test_frontier_trades_stake_for_audit_cost(tmp_path, capsys):
    csv, png = tmp_path / "f.csv", tmp_path / "f.png"
    code, out, err = run(capsys, "frontier", POS, "--points", "3", "--S-range", "1000", "100000",
                         "--csv", csv, "--plot", png)
    assert code == 0, err
    import pandas as pd

    t = pd.read_csv(csv)
    assert len(t) == 3 and png.stat().st_size > 1000
    sc = mt.load(POS)
    front = t[t["pareto"]].sort_values("total_stake")
    assert len(front) >= 2
    # more stake, strictly less auditing along the frontier; every point safe by hand
    assert (np.diff(front["audit_cost"]) < 0).all()
    for r in front.itertuples():
        assert r.total_stake <= r.S_max * (1 + 1e-9)
        assert min(by_hand(sc, r.sampling_rate, r.slash, r.total_stake, r.reward).values()) >= -1e-6 * max(
            1.0, r.total_stake)


PROVIDER_TYPES = """
[[provider_type]]
name = "datacenter"
cost_honest = 0.4
throughput = 100.0
capital_cost = 0.05
share = 0.7

[[provider_type]]
name = "hobbyist"
cost_honest = 0.55
throughput = 1.0
capital_cost = 0.2
share = 0.3
"""


def test_provider_types_from_the_scenario_file(tmp_path, capsys):
    path = tmp_path / "types.toml"
    path.write_text(audit_scenario("types", "two provider types") + PROVIDER_TYPES)
    sc = mt.load(path)
    assert [t.name for t in sc.provider_types] == ["datacenter", "hobbyist"]
    code, out, err = run(capsys, "design", path, "--S-max", "1e5", "--json")
    assert code == 0, err
    doc = json.loads(out)
    p = doc["parameters"]
    assert doc["provider_types"] == 2
    # the costlier type binds IC (its saving c_h − c_j is larger) — by hand for both types
    for t in sc.provider_types:
        m = by_hand(sc, p["sampling_rate"], p["slash"], p["total_stake"], p["reward"], t.cost_honest,
                    t.throughput, t.capital_cost)
        assert min(m.values()) >= -1e-6 * p["total_stake"], (t.name, m)
    # IC is tighter for the hobbyist (larger c_h − c_j), so if IC binds, it binds there
    if "ic[weaker-model]" in doc["binding_types"]:
        assert doc["binding_types"]["ic[weaker-model]"] == "hobbyist"
    assert set(doc["binding_types"].values()) <= {"datacenter", "hobbyist"} and doc["binding"]


@pytest.mark.parametrize("table, key, expected", [
    ('[uncertainty]\n"task.cost_honest" = [0.5, 0.3]\n', "uncertainty.task.cost_honest", "low ≤ high"),
    ('[uncertainty]\n"audit.miss_rate" = [0.1, 1.5]\n', "uncertainty.audit.miss_rate (high)", "probability"),
    ('[uncertainty]\n"audit.costs" = [0.1, 0.2]\n', "uncertainty.audit.costs", "did you mean 'audit.cost'"),
    ('[uncertainty]\n"task.reward" = 0.3\n', "uncertainty.task.reward", "a range [low, high]"),
    ('[uncertainty]\n"deviation.nope.cost" = [0, 1]\n', "uncertainty.deviation.nope.cost", "numeric scenario key"),
    (PROVIDER_TYPES.replace("share = 0.3", "share = 0.2"), "provider_type", "sum to 1"),
    (PROVIDER_TYPES.replace("throughput = 1.0", "throughput = 0.0"), "provider_type[1].throughput", "> 0"),
])
def test_bad_tables_are_reported_with_their_key(table, key, expected):
    with pytest.raises(ScenarioError) as err:
        mt.loads(audit_scenario("bad", "bad tables") + table)
    assert any(p.key == key and expected in f"{p.expected} {p.found}" for p in err.value.problems), \
        [str(p) for p in err.value.problems]


def test_uncertainty_ranges_are_read_and_survive_replace():
    sc = mt.loads(audit_scenario("u", "ranges") + '[uncertainty]\n"task.cost_honest" = [0.3, 0.5]\n'
                  '"deviation.weaker-model.divergence" = [0.2, 0.4]\n')
    assert sc.uncertainty == {"task.cost_honest": (0.3, 0.5), "deviation.weaker-model.divergence": (0.2, 0.4)}
    moved = sc.replace({"audit.sampling_rate": 0.2})
    assert moved.uncertainty == sc.uncertainty and moved.audit.sampling_rate == 0.2
    assert "uncertainty.task.cost_honest" not in sc.parameter_paths()


def test_consensus_export_design_round_trip_and_a_one_node_committee_fails(tmp_path, capsys):
    binary = ROOT / "models" / "binary-claims.toml"
    params = tmp_path / "c.json"
    code, out, err = run(capsys, "export", binary, "--design", "-o", params)
    assert code == 0, err
    doc = json.loads(params.read_text())
    assert doc["game"] == "consensus" and doc["certificate"]["holds"] is True
    assert doc["scenario_sha256"] == mt.load(binary).sha256
    code, out, err = run(capsys, "check", binary, params)
    assert code == 0, out
    # one node decides alone: it is the adversary's with probability adversary_stake_share (0.2),
    # far above max_capture = 1e-6, whatever the threshold
    doc["parameters"]["committee_size"] = 1
    params.write_text(json.dumps(doc))
    code, out, err = run(capsys, "check", binary, params)
    assert code == 1
    assert "capture" in [line for line in out.splitlines() if line.startswith("FAILED")][0]


def test_design_free_names_are_checked_per_game(capsys):
    code, out, err = run(capsys, "design", ROOT / "models" / "binary-claims.toml", "--free", "sampling_rate")
    assert code == 2 and "sampling_rate" in err and "committee_size" in err


UNCERTAIN = audit_scenario("uncertain", "ranges to certify") + """
[uncertainty]
"task.cost_honest" = [{low}, {high}]
"""


def test_certify_and_export_carry_the_range_certificate(tmp_path, capsys):
    sc = mt.loads(UNCERTAIN.format(low=0.3, high=0.4))
    # IC of weaker-model: q·δ·(L + R) − (c_h − c_j), by hand; its root in c_h is 'top'
    a, d = sc.audit, sc.deviations[0]
    ic_at = lambda c_h: a.sampling_rate * d.divergence * (sc.stake.slash + sc.task.reward) - (c_h - d.cost)  # noqa: E731
    top = d.cost + a.sampling_rate * d.divergence * (sc.stake.slash + sc.task.reward)
    ok, bad = tmp_path / "ok.toml", tmp_path / "bad.toml"
    lo, hi = round(top - 0.02, 6), round(top - 0.01, 6)
    ok.write_text(UNCERTAIN.format(low=lo, high=hi))
    bad.write_text(UNCERTAIN.format(low=hi, high=round(top + 0.05, 6)))
    assert ic_at(hi) > 0 and ic_at(top + 0.05) < 0
    code, out, err = run(capsys, "certify", bad, "--json")
    doc = json.loads(out)
    assert code == 1
    ic = next(c for c in doc["constraints"] if c["constraint"] == "ic[weaker-model]")
    assert ic["status"] == "counterexample"
    assert ic_at(ic["worst_point"]["task.cost_honest"]) < 0  # the counterexample really fails, by hand
    code, out, err = run(capsys, "export", ok, "-o", tmp_path / "p.json")
    rc = json.loads((tmp_path / "p.json").read_text())["range_certificate"]
    ic = next(c for c in rc["constraints"] if c["constraint"] == "ic[weaker-model]")
    assert ic["status"] == "proved" and ic["worst_margin"] == pytest.approx(ic_at(hi), rel=1e-9)


def test_certify_without_an_uncertainty_table_is_bad_input(capsys):
    code, out, err = run(capsys, "certify", POS)
    assert code == 2 and "uncertainty" in err


def test_robustness_end_of_the_cost_interval_by_hand(capsys):
    code, out, err = run(capsys, "robustness", POS, "--parameter", "task.cost_honest", "--json")
    assert code == 0, err
    row = json.loads(out)["parameters"][0]
    sc = mt.load(POS)
    # c_h stops being safe where IC of random-output (δ = 1, α = β = r = 0) reaches zero, unless
    # another constraint ends it first: the reported end can only be at or below that root
    root = sc.deviations[0].cost + sc.audit.sampling_rate * (sc.stake.slash + sc.task.reward)
    assert row["high"] <= root * (1 + 1e-9)
    if row["high_limit"].startswith("ic"):
        assert row["high"] == pytest.approx(root, rel=1e-9)


def test_robustness_of_an_unknown_key_is_bad_input(capsys):
    code, out, err = run(capsys, "robustness", POS, "--parameter", "task.cost_hones")
    assert code == 2 and "did you mean 'task.cost_honest'" in err and "internal error" not in err


def test_scenarios_stay_hashable_with_uncertainty_ranges():
    sc = mt.loads(audit_scenario("u", "ranges") + '[uncertainty]\n"task.cost_honest" = [0.3, 0.5]\n')
    assert hash(sc) == hash(mt.loads(sc.source)) and {sc: 1}[sc] == 1  # frozen, so usable as a key
