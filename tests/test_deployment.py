"""Export of deployment parameters with a certificate, and the check of a params file."""

import json
import math
import tomllib
from pathlib import Path

import pytest

import mira_theory as mt
from mira_theory import deployment
from mira_theory.cli import main

MODELS = Path(__file__).resolve().parent.parent / "models"
DEFAULT = MODELS / "default.toml"
POS = MODELS / "proof-of-sampling.toml"
BINARY = MODELS / "binary-claims.toml"


def run(argv, capsys):
    capsys.readouterr()  # drop what earlier calls printed
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def export_to(tmp_path, scenario, name="params.json", fmt="json"):
    path = tmp_path / name
    code = main(["export", str(scenario), "-o", str(path), "--format", fmt])
    assert code == 0
    return path


def test_export_schema_and_values_by_hand(tmp_path):
    doc = json.loads(export_to(tmp_path, POS).read_text())
    assert doc["schema_version"] == 1
    assert doc["game"] == "audit" and doc["scenario"] == "proof-of-sampling"
    assert doc["scenario_sha256"] == mt.load(POS).sha256
    # the parameters in force, as written in models/proof-of-sampling.toml
    assert doc["parameters"] == {"sampling_rate": 0.05, "slash": 20.0, "minimum_stake": 1000.0,
                                 "reward": 1.0, "verifiers_per_audit": 1, "audit_comparison": "exact"}
    # predictions by hand: d = q·δ = 0.05; U_j = R − c_j − d(L + R) = 1 − 0.01 − 0.05·21 = −0.06;
    # U_h = R − c_h = 0.5 (α = 0: no false slashes)
    pred = doc["predictions"]
    assert pred["deviations"]["random-output"]["detection_per_task"] == pytest.approx(0.05)
    assert pred["deviations"]["random-output"]["expected_payoff"] == pytest.approx(-0.06)
    assert pred["honest"] == {"false_slash_per_task": 0.0, "expected_payoff": pytest.approx(0.5)}
    # q* = 0.49/21
    assert pred["deterrence_sampling_rate"] == pytest.approx(0.49 / 21)
    cert = doc["certificate"]
    assert cert["holds"] is True
    names = {c["name"] for c in cert["constraints"]}
    assert {"ic[random-output]", "stake[random-output]", "participation"} <= names
    ic = next(c for c in cert["constraints"] if c["name"] == "ic[random-output]")
    # margin = q(L + R) − (c_h − c_j) = 0.05·21 − 0.49 = 0.56
    assert ic["margin"] == pytest.approx(0.56) and ic["holds"] and ic["equation"]


def test_round_trip_passes_then_lowered_rate_fails_naming_the_constraint(tmp_path, capsys):
    path = export_to(tmp_path, POS)
    code, out, _ = run(["check", POS, path], capsys)
    assert code == 0 and "all constraints hold" in out
    doc = json.loads(path.read_text())
    doc["parameters"]["sampling_rate"] = 0.02  # below q* = 0.49/21 ≈ 0.0233
    path.write_text(json.dumps(doc))
    code, out, _ = run(["check", POS, path], capsys)
    assert code == 1
    assert "FAILED: ic[random-output]" in out
    # margin by hand: 0.02·21 − 0.49 = −0.07
    assert "-0.07" in out


def test_toml_format_round_trip(tmp_path, capsys):
    path = export_to(tmp_path, BINARY, "params.toml", "toml")
    doc = tomllib.loads(path.read_text())
    assert doc["parameters"] == {"committee_size": 5, "threshold": 0.6, "window": 100,
                                 "agreement_threshold": 0.7, "slash": 10.0, "reward": 0.1}
    code, out, _ = run(["check", BINARY, path], capsys)
    # binary-claims fails its capture and collusion targets (5 seats, ρ = 0.2: P(≥ 3 of 5) =
    # 10·0.2³·0.8² + 5·0.2⁴·0.8 + 0.2⁵ = 0.05792 > 1e-6)
    assert code == 1 and "capture" in out
    # its margin is max_capture − P(capture) = 1e-6 − 0.05792
    assert "-0.057919" in out


def test_consensus_predictions_match_the_solution(tmp_path):
    doc = json.loads(export_to(tmp_path, BINARY).read_text())
    sol = mt.solve(BINARY)
    pred = doc["predictions"]
    assert pred["agreement"]["honest"] == pytest.approx(sol.agreement_honest)
    assert pred["false_slash_per_window"] == pytest.approx(sol.false_slash_per_window)
    assert pred["detection_per_window"]["random-guess"] == pytest.approx(
        sol.deviations[0].detection_per_window)


def test_sha_mismatch_warns(tmp_path, capsys):
    path = export_to(tmp_path, POS)
    doc = json.loads(path.read_text())
    doc["scenario_sha256"] = "0" * 64
    path.write_text(json.dumps(doc))
    code, _, err = run(["check", POS, path], capsys)
    assert code == 0
    assert "warning" in err and "does not match" in err


@pytest.mark.parametrize("edit, key, found", [
    pytest.param(lambda d: d["parameters"].update(sampling_rate=1.5), "parameters.sampling_rate", "1.5",
                 id="probability-out-of-range"),
    pytest.param(lambda d: d["parameters"].update(slash="big"), "parameters.slash", "string 'big'",
                 id="wrong-type"),
    pytest.param(lambda d: d["parameters"].pop("reward"), "parameters.reward", "missing", id="missing"),
    pytest.param(lambda d: d["parameters"].update(slashh=1), "parameters.slashh", "unknown key",
                 id="unknown-key"),
    pytest.param(lambda d: d.update(schema_version=7), "schema_version", "7", id="schema-version"),
    pytest.param(lambda d: d.update(game="consensus"), "game", "'consensus'", id="wrong-game"),
    pytest.param(lambda d: d["parameters"].update(verifiers_per_audit=0), "parameters.verifiers_per_audit",
                 "integer 0", id="zero-verifiers"),
])
def test_bad_params_exit_2_with_key_and_nothing_lost(tmp_path, capsys, edit, key, found):
    path = export_to(tmp_path, POS)
    doc = json.loads(path.read_text())
    edit(doc)
    text = json.dumps(doc)
    path.write_text(text)
    code, out, err = run(["check", POS, path], capsys)
    assert code == 2 and out == ""
    line = next(ln for ln in err.splitlines() if f": {key}:" in ln)
    assert str(path) in line and found in line
    assert path.read_text() == text  # the file is untouched


def test_malformed_json_names_the_line(tmp_path, capsys):
    path = tmp_path / "p.json"
    path.write_text('{"schema_version": 1,\n  "parameters": {,}\n}')
    code, _, err = run(["check", POS, path], capsys)
    assert code == 2 and "line 2" in err and "Traceback" not in err


def test_missing_params_file(tmp_path, capsys):
    code, _, err = run(["check", POS, tmp_path / "nope.json"], capsys)
    assert code == 2 and "no such file" in err


def test_export_document_is_strict_json_without_nan():
    # a scenario where no q ≤ 1 deters has infinite thresholds: they must become null
    s = mt.load(DEFAULT).replace({"audit.false_alarm_rate": 0.5})
    doc = deployment.export(s)
    text = deployment.dumps(doc)
    parsed = json.loads(text)
    assert parsed["predictions"]["deterrence_sampling_rate"] is None
    assert parsed["certificate"]["holds"] is False
    assert all(c["margin"] is None or math.isfinite(c["margin"]) for c in parsed["certificate"]["constraints"])
