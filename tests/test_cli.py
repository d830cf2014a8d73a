"""The command line: exit status, messages without tracebacks, JSON and LaTeX output, help.

Most checks call ``mira_theory.cli.main`` in-process (the game modules take ~2 s to import,
so each process pays that once). The end-to-end checks, last in the file, run the installed
``mira-theory`` script in subprocesses that one module-scoped fixture starts together.
"""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import sys
import tomllib
import traceback
from collections.abc import Callable
from pathlib import Path

import pytest
from scenario_texts import audit_scenario

import mira_theory.games  # noqa: F401  (pay the import at collection, not in a test)
from mira_theory import cli

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"
_SCRIPT = Path(sys.executable).with_name("mira-theory")
CLI = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "mira_theory.cli"]

VALID = audit_scenario("cli-test", "a scenario written for the command-line tests")


def sub(old: str, new: str, text: str = VALID) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)


def _without_deviations(text: str) -> str:
    return "\n\n".join(b for b in text.split("\n\n") if not b.startswith("[[deviation]]"))


# name -> (file content, or None for "no such file", or "<dir>"; a fragment stderr must show)
BAD_FILES: dict[str, tuple[str | bytes | None, str]] = {
    "missing-key": (sub("cost_honest = 0.4\n", ""), "task.cost_honest: expected"),
    "missing-scenario-table": (VALID.split("\n\n", 1)[1], "scenario: expected"),
    "unknown-key": (sub("sampling_rate = 0.05", "samplng_rate = 0.05"), "did you mean 'sampling_rate'?"),
    "wrong-type": (sub("damage = 5.0", 'damage = "5"'), "task.damage: expected"),
    "bool-for-number": (sub("reward = 1.0", "reward = true"), "found boolean true"),
    "nan": (sub("divergence = 1.0", "divergence = nan"), "deviation[1].divergence: expected a finite"),
    "inf": (sub("slash = 20.0", "slash = inf"), "stake.slash: expected a finite"),
    "probability-above-1": (sub("sampling_rate = 0.05", "sampling_rate = 1.5"), "audit.sampling_rate:"),
    "negative-cost": (sub("cost = 0.1\n", "cost = -0.1\n"), "deviation[0].cost:"),
    "negative-reward": (sub("reward = 1.0", "reward = -1.0"), "task.reward:"),
    "negative-stake": (sub("total = 1000.0", "total = -1.0"), "stake.total:"),
    "zero-verifiers": (sub("verifiers = 1", "verifiers = 0"), "audit.verifiers:"),
    "float-verifiers": (sub("verifiers = 1", "verifiers = 1.0"), "audit.verifiers:"),
    "unknown-game": (sub('game = "audit"', 'game = "audti"'), "scenario.game:"),
    "malformed-toml": (sub("damage = 5.0", "damage = = 5.0"), "line 9"),
    "zero-deviations": (_without_deviations(VALID), "deviation: expected at least 1"),
    "deviation-named-honest": (sub('name = "random-output"', 'name = "honest"'), "deviation[1].name:"),
    "duplicate-deviation": (sub('name = "random-output"', 'name = "weaker-model"'), "already has"),
    "not-utf8": (VALID.replace("cli-test", "cli-t\xe9st").encode("latin-1"), "UTF-8"),
    "no-such-file": (None, "no such file"),
    "directory": ("<dir>", "a directory"),
}


def make_bad(directory: Path, name: str) -> Path:
    content, _ = BAD_FILES[name]
    path = directory / f"{name}.toml"
    if content == "<dir>":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content, encoding="utf-8")
    return path


def no_deterrence(text: str = VALID) -> str:
    """False alarms as likely as detecting 'weaker-model' (α = δ(1 − β)), which saves cost:
    no sampling rate deters it."""
    return sub("false_alarm_rate = 0.0", "false_alarm_rate = 0.3", text)


# --------------------------------------------------------------------------------------
# In-process
# --------------------------------------------------------------------------------------


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    """cli.main as the script runs it; an exception escaping it would be a traceback."""
    try:
        rc = cli.main(argv)
    except SystemExit as e:  # argparse
        rc = e.code
    except Exception:
        pytest.fail(f"mira-theory {' '.join(argv)} raised (a traceback for the user):\n"
                    f"{traceback.format_exc()}")
    out, err = capsys.readouterr()
    return rc, out, err


COMMANDS: list[Callable[[str], list[str]]] = [
    lambda p: ["solve", p], lambda p: ["solve", p, "--json"], lambda p: ["derive", p],
    lambda p: ["derive", p, "--latex"], lambda p: ["validate", p],
]


@pytest.mark.parametrize("name", [pytest.param(n, id=n) for n in BAD_FILES])
def test_bad_file_exits_2_with_a_message(tmp_path, capsys, name):
    path = str(make_bad(tmp_path, name))
    fragment = BAD_FILES[name][1]
    for command in COMMANDS:
        argv = command(path)
        rc, out, err = run(argv, capsys)
        assert rc == 2, argv
        assert out == "", argv
        lines = err.splitlines()
        assert lines and all(line.startswith(f"error: {path}: ") for line in lines), err
        assert fragment in err, (argv, err)
        assert "Traceback" not in err


def test_too_large_integer_exits_2_without_traceback(tmp_path, capsys):
    """`reward = 1000…0` (400 digits) is valid TOML; scenario.check_value's float() raises
    OverflowError, which escapes main() as a traceback instead of exit 2."""
    path = tmp_path / "huge.toml"
    path.write_text(sub("reward = 1.0", "reward = 1" + "0" * 400), encoding="utf-8")
    rc, out, err = run(["validate", str(path)], capsys)
    assert rc == 2 and f"error: {path}: task.reward: expected" in err


def test_validate_prints_every_problem_of_a_file(tmp_path, capsys):
    path = tmp_path / "three.toml"
    path.write_text(sub("verifiers = 1", "verifiers = 0",
                        sub("reward = 1.0", "reward = -1.0", sub("slash = 20.0", "slash = nan"))))
    rc, out, err = run(["validate", str(path)], capsys)
    assert rc == 2 and out == ""
    keys = [line.split(": ")[2] for line in err.splitlines()]
    assert sorted(keys) == ["audit.verifiers", "stake.slash", "task.reward"]


def test_validate_good_files_exit_0(tmp_path, capsys):
    good = tmp_path / "good.toml"
    good.write_text(VALID, encoding="utf-8")
    files = [str(good), *map(str, sorted(MODELS.glob("*.toml")))]
    rc, out, err = run(["validate", *files], capsys)
    assert (rc, err) == (0, "")
    assert [line.split(" ")[1] for line in out.splitlines()] == files
    assert all(line.startswith("ok: ") for line in out.splitlines())


@pytest.mark.parametrize("argv", [
    pytest.param([], id="no-command"),
    pytest.param(["solve"], id="no-scenario"),
    pytest.param(["validate"], id="validate-nothing"),
    pytest.param(["solve", "models/default.toml", "--jsn"], id="unknown-option"),
    pytest.param(["sovle", "models/default.toml"], id="unknown-command"),
])
def test_usage_errors_exit_2(capsys, argv):
    rc, out, err = run(argv, capsys)
    assert rc == 2 and out == ""
    assert "usage: mira-theory" in err and "Traceback" not in err


REQUIRED = ("deterrence_sampling_rate", "minimum_slash", "minimum_total_stake")


def strict_json(text: str):
    def refuse(constant):
        raise ValueError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def solve_json(tmp_path: Path, text: str, capsys) -> dict:
    path = tmp_path / "s.toml"
    path.write_text(text, encoding="utf-8")
    rc, out, err = run(["solve", str(path), "--json"], capsys)
    assert (rc, err) == (0, "")
    return strict_json(out)


AUDIT_MODELS = [p for p in sorted(MODELS.glob("*.toml"))
                if tomllib.loads(p.read_text(encoding="utf-8")).get("scenario", {}).get("game") == "audit"]


@pytest.mark.parametrize("path", AUDIT_MODELS, ids=lambda p: p.name)
def test_solve_json_has_the_required_keys(capsys, path):
    rc, out, err = run(["solve", str(path), "--json"], capsys)
    assert (rc, err) == (0, "")
    d = strict_json(out)
    for key in (*REQUIRED, "binding_deviation", "deviations"):
        assert key in d, key
    assert d["binding_deviation"] in d["deviations"]
    for name, dev in d["deviations"].items():
        for key in REQUIRED:
            assert key in dev, (name, key)
            assert dev[key] is None or isinstance(dev[key], int | float)


def test_solve_json_values(tmp_path, capsys):
    # q*_j = (c_h − c_j) / (δ_j·(L + R)): weaker-model 0.3/(0.3·21) = 1/21, random-output 0.4/21
    # L*_j(q) = (c_h − c_j)/(q·δ_j) − R: weaker-model 0.3/(0.05·0.3) − 1 = 19, random-output 7
    d = solve_json(tmp_path, VALID, capsys)
    assert d["binding_deviation"] == "weaker-model"
    assert d["deterrence_sampling_rate"] == pytest.approx(1 / 21)
    assert d["deviations"]["weaker-model"]["deterrence_sampling_rate"] == pytest.approx(1 / 21)
    assert d["deviations"]["random-output"]["deterrence_sampling_rate"] == pytest.approx(0.4 / 21)
    assert d["deviations"]["weaker-model"]["minimum_slash"] == pytest.approx(19)
    assert d["deviations"]["random-output"]["minimum_slash"] == pytest.approx(7)
    for key in REQUIRED:  # the top level is the binding (largest) requirement
        assert d[key] == pytest.approx(max(v[key] for v in d["deviations"].values()))


@pytest.mark.parametrize("text, unbounded", [
    pytest.param(no_deterrence(), None, id="false-alarms-equal-detection"),
    pytest.param(sub("false_alarm_rate = 0.0", "false_alarm_rate = 0.5"), None,
                 id="false-alarms-above-detection"),
    pytest.param(sub("miss_rate = 0.0", "miss_rate = 0.4", sub("divergence = 0.3", "divergence = 0.5",
                 sub("false_alarm_rate = 0.0", "false_alarm_rate = 0.3"))), None,
                 id="false-alarms-equal-detection-with-misses"),
    # L + R = 0.5: q* = 0.3/(0.3·0.5) = 2 for weaker-model, 0.4/(1·0.5) = 0.8 for random-output
    pytest.param(sub("slash = 20.0", "slash = 0.0", sub("reward = 1.0", "reward = 0.5")), 2.0,
                 id="finite-above-1"),
])
def test_solve_json_null_when_no_rate_deters(tmp_path, capsys, text, unbounded):
    d = solve_json(tmp_path, text, capsys)
    assert d["deterrence_sampling_rate"] is None
    assert d["binding_deviation"] == "weaker-model"
    weaker = d["deviations"]["weaker-model"]
    assert weaker["deterrence_sampling_rate"] is None
    assert weaker["deterrable"] is False and weaker["reason"]
    if unbounded is None:
        assert weaker["minimum_slash"] is None  # no slash deters either
    else:
        assert d["deterrence_sampling_rate_unbounded"] == pytest.approx(unbounded)
    assert isinstance(d["deviations"]["random-output"]["deterrence_sampling_rate"], float)


def test_solve_prints_a_summary(tmp_path, capsys):
    path = tmp_path / "s.toml"
    path.write_text(VALID, encoding="utf-8")
    rc, out, err = run(["solve", str(path)], capsys)
    assert (rc, err) == (0, "")
    assert "deterrence sampling rate" in out and "weaker-model" in out and "0.047619" in out


def test_derive_latex(tmp_path, capsys):
    path = tmp_path / "s.toml"
    path.write_text(VALID, encoding="utf-8")
    rc, out, err = run(["derive", str(path), "--latex"], capsys)
    assert (rc, err) == (0, "")
    assert "\\frac" in out and "\\delta_{j}" in out
    for name in REQUIRED:
        assert f"{name}:" in out
    assert "─" not in out  # no pretty-printed fraction bars in LaTeX mode


HELP_TEXT = {
    # command -> (words of its description, its options)
    "top": (["scenario files", "Exit status"], ["--version", "solve", "derive", "validate"]),
    "solve": (["deterrence sampling rate", "minimum slash", "minimum total stake", "binding deviation"],
              ["--json"]),
    "derive": (["closed form", "sympy"], ["--latex", "--json"]),
    "validate": (["Validate", "expected", "found", "Exit 2"], ["SCENARIO"]),
}


@pytest.mark.parametrize("command", list(HELP_TEXT))
def test_help_says_what_each_command_does(capsys, command):
    argv = [] if command == "top" else [command]
    rc, out, err = run([*argv, "--help"], capsys)
    assert (rc, err) == (0, "")
    assert out.startswith(f"usage: mira-theory{'' if command == 'top' else ' ' + command}")
    flat = " ".join(out.split())
    words, options = HELP_TEXT[command]
    for w in words:
        assert w in flat, w
    for opt in options:  # each option is listed with a description after it
        assert re.search(rf"^\s+{re.escape(opt)}(\s+[A-Z]+)?\s+\S", out, re.M), opt


# --------------------------------------------------------------------------------------
# End to end: the installed script in subprocesses, all started together by one fixture
# --------------------------------------------------------------------------------------


class Run:
    def __init__(self, args: list[str]):
        self.args = args
        env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
        self.proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, encoding="utf-8")

    @functools.cached_property
    def result(self) -> tuple[int, str, str]:
        out, err = self.proc.communicate(timeout=120)
        return self.proc.returncode, out, err


GOOD_E2E = ("good.toml", "models/default.toml")


@pytest.fixture(scope="module")
def e2e(tmp_path_factory):
    """One validate run over every bad file (the only subprocess that imports the game
    modules, ~2.5 s of CPU), plus two cheap runs that fail or exit before that import."""
    d = tmp_path_factory.mktemp("e2e")
    (d / "good.toml").write_text(VALID, encoding="utf-8")
    bad = [make_bad(d, name) for name in BAD_FILES]
    runs = {
        "validate": Run([*CLI, "validate", str(d / GOOD_E2E[0]), *map(str, bad), GOOD_E2E[1]]),
        # the module entry point, on a file that fails before the game modules are imported
        "module": Run([sys.executable, "-m", "mira_theory.cli", "solve", str(d / "malformed-toml.toml")]),
        "help": Run([*CLI, "--help"]),
    }
    yield d, runs
    for r in runs.values():
        if r.proc.poll() is None:
            r.proc.kill()
            r.proc.communicate()


def test_e2e_help(e2e):
    _, runs = e2e
    rc, out, err = runs["help"].result
    assert (rc, err) == (0, "")
    assert out.startswith("usage: mira-theory") and "validate" in out


def test_e2e_validate_several_files_one_bad(e2e):
    d, runs = e2e
    rc, out, err = runs["validate"].result
    assert rc == 2
    assert "Traceback" not in err
    good = [str(d / GOOD_E2E[0]), GOOD_E2E[1]]
    assert [line.split(" ")[1] for line in out.splitlines()] == good
    for name, (_, fragment) in BAD_FILES.items():
        path = str(d / f"{name}.toml")
        mine = [line for line in err.splitlines() if line.startswith(f"error: {path}: ")]
        assert mine, f"no error line for {name}"
        assert fragment in "\n".join(mine), name
    assert all(line.startswith("error: ") for line in err.splitlines())


def test_e2e_module_entry_point_exits_2(e2e):
    rc, out, err = e2e[1]["module"].result
    assert rc == 2 and out == ""
    assert "Traceback" not in err and "line 9" in err
