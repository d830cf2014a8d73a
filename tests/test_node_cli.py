"""mira-node's command line: bad parameters files and options exit 2 with a message, no traceback."""

from __future__ import annotations

import json

import pytest

from reference_node.cli import main
from reference_node.params import load
from reference_node.testing import params_doc, write_params


def _write(tmp_path, doc, name="p.json"):
    path = tmp_path / name
    path.write_text(json.dumps(doc) if not isinstance(doc, str) else doc)
    return str(path)


@pytest.mark.parametrize("mutate, needle", [
    (lambda d: d["parameters"].__setitem__("sampling_rate", -0.1), "parameters.sampling_rate"),
    (lambda d: d["parameters"].pop("slash"), "parameters.slash"),
    (lambda d: d.__setitem__("schema_version", 9), "schema_version"),
    (lambda d: d.pop("environment"), "environment"),
    (lambda d: d["environment"]["audit"].__setitem__("collusion", "high"), "environment.audit.collusion"),
    (lambda d: d["environment"]["stake"].__setitem__("throughput", 0), "environment.stake.throughput"),
    (lambda d: d["environment"]["deviation"][0].__setitem__("divergence", 1.5), "environment.deviation[0].divergence"),
    (lambda d: d["environment"]["deviation"][1].__setitem__("name", "honest"), "environment.deviation[1].name"),
    (lambda d: d["environment"]["audit"].__setitem__("false_alarm_rate", 0.1), "false_alarm_rate"),
    (lambda d: d.__setitem__("game", "consensus"), "game"),
])
def test_bad_params_exit_2_naming_the_key(tmp_path, capsys, mutate, needle):
    doc = params_doc()
    mutate(doc)
    path = _write(tmp_path, doc)
    assert main(["up", "--params", path, "--tasks", "5", "--out", str(tmp_path / "o"), "--inprocess"]) == 2
    err = capsys.readouterr().err
    assert needle in err and path in err and "Traceback" not in err


def test_unreadable_params(tmp_path, capsys):
    for text, needle in (("{", "valid JSON"), ("[1]", "JSON object")):
        path = _write(tmp_path, text)
        assert main(["ledger", "--params", path, "--db", str(tmp_path / "l.sqlite")]) == 2
        assert needle in capsys.readouterr().err


def test_noisy_params_load_with_the_tolerance_rates(tmp_path):
    p = load(write_params(tmp_path / "n.json", "noisy-gpu"))
    assert (p.comparison, p.false_alarm_rate, p.miss_rate, p.verifiers_per_audit) == ("tolerance", 0.02, 0.05, 3)


def test_bad_options(tmp_path, capsys):
    path = str(write_params(tmp_path / "p.json"))
    (tmp_path / "junk.sqlite").write_text("not a database")
    assert main(["ledger", "--params", path, "--db", str(tmp_path / "junk.sqlite")]) == 2
    assert "not a database" in capsys.readouterr().err
    assert main(["ledger", "--params", path, "--db", str(tmp_path / "no" / "dir.sqlite")]) == 2
    assert main(["provider", "--params", path, "--ledger", "http://127.0.0.1:9", "--strategy", "lazy"]) == 2
    assert "lazy" in capsys.readouterr().err
    assert main(["verifier", "--params", path, "--ledger", "http://127.0.0.1:9", "--arbiter", "http://127.0.0.1:9",
                 "--index", "3", "--count", "2"]) == 2
    for argv in (["provider", "--params", path, "--ledger", "ftp://x"],
                 ["up", "--params", path, "--out", "x", "--concurrency", "0"],
                 ["client", "--params", path, "--provider", "http://h:1", "--rate", "-3"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
    assert main(["up", "--params", path, "--providers", "0", "--out", str(tmp_path / "o"), "--inprocess"]) == 2
