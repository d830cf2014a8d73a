"""Sweeps: values equal per-point solves of the replaced scenario, labelled grids, zip, errors,
backends, and the sweep/plot command line."""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import mira_theory as mt
from mira_theory.cli import main as cli_main
from mira_theory.results import Margin
from mira_theory.scenario import ScenarioError
from mira_theory.sweep import axis_keys, flat_table, kind_labels, margin_holds, sweep

MODELS = Path(__file__).resolve().parents[1] / "models"
DEFAULT = MODELS / "default.toml"
BINARY = MODELS / "binary-claims.toml"

AUDIT_OVER = {"audit.sampling_rate": [0.0, 0.03, 0.1, 0.6], "stake.slash": [5.0, 20.0],
              "deviation.weaker-model.divergence": [0.3, 0.9]}
CONSENSUS_OVER = {"committee.size": [3, 5], "slashing.slash": [1.0, 10.0]}


@pytest.fixture(scope="module")
def default():
    return mt.load(DEFAULT)


@pytest.fixture(scope="module")
def noisy(default):
    """default.toml with every term of the closed form live (α, β, r, n > 1)."""
    return default.replace({"audit.false_alarm_rate": 0.02, "audit.miss_rate": 0.1, "audit.collusion": 0.3,
                            "audit.verifiers": 2})


@pytest.fixture(scope="module")
def binary():
    return mt.load(BINARY)




def points(over):
    keys = list(over)
    for combo in itertools.product(*(range(len(over[k])) for k in keys)):
        yield {k: i for k, i in zip(keys, combo)}, {k: over[k][i] for k, i in zip(keys, combo)}


def close(a, b):
    a, b = float(a), float(b)
    if math.isnan(b):
        return math.isnan(a)
    if math.isinf(b):
        return a == b
    return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12)


# --------------------------------------------------------------------------------------
# Audit: the vectorized sweep against solve() of each replaced scenario
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def audit_sweep(noisy):
    return sweep(noisy, AUDIT_OVER)


def test_audit_sweep_equals_per_point_solve(noisy, audit_sweep):
    ds = audit_sweep
    checked = 0
    for idx, changes in points(AUDIT_OVER):
        sol = mt.solve(noisy.replace(changes))
        at = ds.isel(idx)
        assert close(at["deterrence_sampling_rate"], sol.deterrence_sampling_rate)
        assert close(at["minimum_slash"], sol.minimum_slash)
        assert close(at["minimum_total_stake"], sol.minimum_total_stake)
        assert ds["deviation"].values[int(at["binding_deviation"])] == sol.binding_deviation
        assert bool(at["deterrable"]) == sol.deterrable
        assert close(at["payoff_honest"], sol.honest_payoff)
        assert close(at["false_slash_per_task"], sol.false_slash_per_task)
        assert bool(at["holds"]) == sol.incentive_compatible
        margins = {m.name: m.value for m in sol.margins}
        assert close(at["participation_margin"], margins["participation"])
        for d in sol.deviations:
            row = at.sel(deviation=d.name)
            assert close(row["deviation_deterrence_sampling_rate"], d.deterrence_sampling_rate)
            assert close(row["deviation_deterrence_upper_rate"], d.deterrence_upper_rate)
            assert bool(row["deviation_deterrable"]) == d.deterrable
            assert close(row["deviation_minimum_slash"], d.minimum_slash)
            assert close(row["deviation_minimum_total_stake"], d.minimum_total_stake)
            assert close(row["detection_per_task"], d.detection_per_task)
            assert close(row["payoff_deviation"], d.expected_payoff)
            assert close(row["ic_margin"], margins[f"ic[{d.name}]"])
            assert close(row["stake_margin"], margins[f"stake[{d.name}]"])
            assert close(row["episode_margin"], margins[f"episode[{d.name}]"])
            assert close(row["mixed_sampling_rate"], d.mixed_sampling_rate)
            assert close(row["mixed_deviation_probability"], d.mixed_deviation_probability)
        checked += 1
    assert checked == 16


def test_audit_sweep_hand_computed_closed_forms(default):
    """default.toml (α = β = r = 0, n = 1): d_j = q·δ_j, q*_j = (c_h − c_j)/(δ_j·(L + R)),
    L*_j(q) = (c_h − c_j)/(q·δ_j) − R, U_h = R − c_h (worked by hand, not by the toolkit)."""
    q = np.array([0.02, 0.05, 0.1])
    L = np.array([5.0, 20.0])
    ds = sweep(default, {"audit.sampling_rate": q, "stake.slash": L}, episode=False)
    R, c_h = 1.0, 0.4
    devs = {"weaker-model": (0.1, 0.3), "random-output": (0.0, 1.0)}
    for i, qi in enumerate(q):
        for k, Lk in enumerate(L):
            q_star = {n: (c_h - c) / (d * (Lk + R)) for n, (c, d) in devs.items()}
            at = ds.isel({"audit.sampling_rate": i, "stake.slash": k})
            assert float(at["deterrence_sampling_rate"]) == pytest.approx(max(q_star.values()), rel=1e-12)
            assert ds["deviation"].values[int(at["binding_deviation"])] == max(q_star, key=q_star.get)
            assert float(at["payoff_honest"]) == pytest.approx(R - c_h)
            for n, (c, d) in devs.items():
                row = at.sel(deviation=n)
                assert float(row["detection_per_task"]) == pytest.approx(qi * d, rel=1e-12)
                assert float(row["deviation_minimum_slash"]) == pytest.approx(max(0.0, (c_h - c) / (qi * d) - R))
                assert float(row["payoff_deviation"]) == pytest.approx(R - c - qi * d * (Lk + R))
                assert float(row["ic_margin"]) == pytest.approx((c - c_h) + qi * d * (Lk + R))
    assert "episode_margin" not in ds
    assert "NOT computed" in ds["holds"].attrs["description"]


def test_equilibrium_kind_matches_the_solver_on_two_by_two_games(default):
    """One deviation: the game is 2×2; 'mixed' iff the exhaustive solver finds a mixed equilibrium."""
    one = default.replace({"audit.false_alarm_rate": 0.05})
    import tomli_w

    raw = one.raw()
    raw["deviation"] = raw["deviation"][:1]
    one = mt.loads(tomli_w.dumps(raw))
    over = {"task.cost_honest": [0.05, 0.2, 0.4, 0.8], "audit.cost": [0.01, 0.4, 3.0]}
    ds = sweep(one, over, episode=False)
    kinds = set()
    for idx, changes in points(over):
        sol = mt.solve(one.replace(changes))
        solver_kinds = {e.kind for e in sol.equilibria}
        kind = kind_labels(ds, "equilibrium_kind").isel(idx).sel(deviation="weaker-model").item()
        kinds.add(kind)
        assert (kind == "mixed") == ("mixed" in solver_kinds), (changes, solver_kinds)
    assert kinds == {"mixed", "pure"}  # the grid covers both


def test_margin_holds_is_margin_holds():
    values = [0.0, 1.0, -1.0, -1e-13, -2e-12, -5e3 * 1e-12 * 0.5, -5e3 * 1e-12 * 2, math.inf, -math.inf,
              math.nan, 1e300, -1e-300]
    expected = [Margin("m", v, "", "").holds for v in values]
    assert margin_holds(np.array(values)).tolist() == expected


def test_dims_coords_and_attrs_are_labelled(audit_sweep, noisy):
    ds = audit_sweep
    assert list(ds["ic_margin"].dims) == [*AUDIT_OVER, "deviation"]
    assert list(ds["holds"].dims) == list(AUDIT_OVER)
    for key, values in AUDIT_OVER.items():
        assert ds[key].values.tolist() == values
        assert ds[key].attrs["scenario_key"] == key
        assert ds[key].attrs["description"]
    assert ds["deviation"].values.tolist() == ["weaker-model", "random-output"]
    assert ds.attrs["scenario_sha256"] == hashlib.sha256(noisy.source.encode()).hexdigest()
    assert mt.loads(ds.attrs["scenario"]).sha256 == noisy.sha256
    assert json.loads(ds.attrs["axes"]) == list(AUDIT_OVER)
    assert ds.attrs["game"] == "audit" and ds.attrs["zip"] == 0
    for name, var in ds.data_vars.items():
        assert "units" in var.attrs and var.attrs["description"], name
    assert ds["detection_per_task"].attrs["units"] == "probability per task"
    # the flat table: one row per point and deviation
    df = ds.to_dataframe()
    assert len(df) == 4 * 2 * 2 * 2 and list(df.index.names) == [*AUDIT_OVER, "deviation"]
    wide = flat_table(ds)
    assert len(wide) == 16 and "ic_margin[random-output]" in wide.columns


def test_file_scenario_sha_is_the_file_hash(default):
    ds = sweep(DEFAULT, {"stake.slash": [10, 20]}, episode=False)
    assert ds.attrs["scenario_sha256"] == hashlib.sha256(DEFAULT.read_bytes()).hexdigest()
    assert ds.attrs["scenario"] == DEFAULT.read_text()


def test_zip_pairs_axes_point_by_point(default):
    q = [0.01, 0.05, 0.2]
    L = [30.0, 10.0, 2.0]
    ds = sweep(default, {"audit.sampling_rate": q, "stake.slash": L}, zip=True)
    assert dict(ds.sizes) == {"point": 3, "deviation": 2}
    assert ds["audit.sampling_rate"].dims == ("point",)
    for i in range(3):
        sol = mt.solve(default.replace({"audit.sampling_rate": q[i], "stake.slash": L[i]}))
        at = ds.isel(point=i)
        assert float(at["audit.sampling_rate"]) == q[i] and float(at["stake.slash"]) == L[i]
        assert close(at["minimum_slash"], sol.minimum_slash)
        assert close(at["deterrence_sampling_rate"], sol.deterrence_sampling_rate)
        assert bool(at["holds"]) == sol.incentive_compatible
    with pytest.raises(ScenarioError, match="equal length"):
        sweep(default, {"audit.sampling_rate": q, "stake.slash": L[:2]}, zip=True)


def test_deviation_axis_by_index_equals_by_name(default):
    by_index = sweep(default, {"deviation.0.cost": [0.0, 0.2]}, episode=False)
    by_name = sweep(default, {"deviation.weaker-model.cost": [0.0, 0.2]}, episode=False)
    assert by_index["deviation.0.cost"].attrs["scenario_key"] == "deviation.weaker-model.cost"
    np.testing.assert_array_equal(by_index["ic_margin"].values, by_name["ic_margin"].values)
    # the other deviation is untouched by the axis
    assert np.unique(by_name["ic_margin"].sel(deviation="random-output").values).size == 1


def test_bad_axis_name_lists_the_valid_ones(default):
    with pytest.raises(ScenarioError) as err:
        sweep(default, {"audit.sampling_rat": [0.1], "deviation.nobody.cost": [1.0]})
    text = str(err.value)
    assert len(err.value.problems) == 2
    assert "did you mean 'audit.sampling_rate'" in text
    for key in ("audit.sampling_rate", "stake.slash", "deviation.weaker-model.cost",
                "deviation.random-output.divergence"):
        assert key in text
    assert err.value.problems[0].key == "audit.sampling_rat"
    # defaulted keys are axes too
    assert "network.max_capture" in axis_keys(mt.load(BINARY))


@pytest.mark.parametrize("over, key, expected", [
    ({"audit.sampling_rate": [0.1, 1.5]}, "audit.sampling_rate", "a probability in [0, 1]"),
    ({"audit.verifiers": [1, 2.5]}, "audit.verifiers", "an integer from 1 to 10,000"),
    ({"stake.slash": [-1.0]}, "stake.slash", "a number ≥ 0"),
    ({"task.reward": [math.nan]}, "task.reward", "a finite number"),
    ({"stake.slash": []}, "stake.slash", "non-empty"),
])
def test_invalid_axis_values_are_reported(default, over, key, expected):
    with pytest.raises(ScenarioError) as err:
        sweep(default, over)
    p = err.value.problems[0]
    assert p.key == key and expected in p.expected


def test_integral_floats_are_accepted_for_integer_keys(default):
    ds = sweep(default, {"audit.verifiers": np.linspace(1, 3, 3)}, episode=False)
    assert ds["audit.verifiers"].dtype.kind == "i" and ds["audit.verifiers"].values.tolist() == [1, 2, 3]


def test_unknown_backend_is_bad_input(default):
    with pytest.raises(ScenarioError, match="backend"):
        sweep(default, {"stake.slash": [1]}, backend="ray")


# --------------------------------------------------------------------------------------
# Consensus: per-point solves on every backend
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def consensus_sweep(binary):
    return sweep(binary, CONSENSUS_OVER)


def test_consensus_sweep_equals_per_point_solve(binary, consensus_sweep):
    from mira_theory.games import consensus

    ds = consensus_sweep
    for idx, changes in points(CONSENSUS_OVER):
        s = binary.replace(changes)
        sol = consensus.solve(s)
        at = ds.isel(idx)
        assert int(at["quorum"]) == math.ceil(0.6 * changes["committee.size"])
        assert close(at["agreement_honest"], sol.agreement_honest)
        assert close(at["false_slash_per_window"], sol.false_slash_per_window)
        assert close(at["minimum_slash"], sol.minimum_slash)
        assert close(at["capture_probability"], sol.capture_probability)
        assert kind_labels(ds, "binding_deviation").isel(idx).item() == sol.binding_deviation
        assert close(at["consensus_correct"], sol.outcome_honest.correct)
        assert bool(at["holds"]) == sol.incentive_compatible
        d = sol.deviations[0]
        row = at.sel(deviation="random-guess")
        assert close(row["agreement"], d.agreement)
        assert close(row["detection_per_window"], d.detection_per_window)
        assert close(row["ic_margin"], d.ic_margin)
        assert int(row["equilibrium_count"]) == len(d.symmetric_equilibria)
        assert bool(row["honest_equilibrium"]) == any(e.deviation_probability == 0 for e in d.symmetric_equilibria)
        # the N-player game's equilibria, independently from its payoff-difference coefficients
        _, _, delta = consensus.payoff_difference_coefficients(
            s.committee.size, 2, 0.6, 0.10, 0.04, 0.95, 0.2, 0.0, 0.5, 100, 0.7, changes["slashing.slash"])
        eqs = consensus.symmetric_equilibria(delta)
        stable = [e.deviation_probability for e in eqs if e.stable]
        assert close(row["max_stable_deviation_probability"], max(stable) if stable else math.nan)


def test_consensus_hand_case(binary):
    """N = 1, τ = 1: the consensus is the one vote, so an honest member always agrees (p_h = 1),
    the consensus is right with probability a, and a guesser agrees with itself too."""
    ds = sweep(binary, {"committee.size": [1], "verifier.accuracy": [0.7, 0.95]})
    assert ds["agreement_honest"].values.tolist() == [[1.0, 1.0]]
    np.testing.assert_allclose(ds["consensus_correct"].values[0], [0.7, 0.95], rtol=1e-12)
    np.testing.assert_allclose(ds["agreement"].values[0, :, 0], [1.0, 1.0], rtol=1e-12)


def test_consensus_cross_key_checks_apply_per_point(binary):
    with pytest.raises(ScenarioError) as err:
        sweep(binary, {"committee.threshold": [0.7, 0.4]})
    p = err.value.problems[0]
    assert p.key == "committee.threshold" and "above 1/2" in p.expected and "0.4" in p.found


def test_backends_give_identical_sweeps(pool, dask_client, binary, consensus_sweep):
    in_processes = sweep(binary, CONSENSUS_OVER, backend="processes", client=pool, chunk_size=1)
    on_dask = sweep(binary, CONSENSUS_OVER, backend="dask", client=dask_client, chunk_size=3)
    xr.testing.assert_identical(consensus_sweep, in_processes)
    xr.testing.assert_identical(consensus_sweep, on_dask)


def test_episode_margins_broadcast_over_axes_they_ignore(noisy):
    """The exact episode margin is evaluated once per combination of the axes it reads
    (not audit.cost or task.damage) and must still equal solve() at every point."""
    over = {"audit.cost": [0.1, 2.0], "stake.total": [100.0, 5000.0], "task.damage": [0.0, 50.0]}
    ds = sweep(noisy, over)
    for idx, changes in points(over):
        sol = mt.solve(noisy.replace(changes))
        margins = {m.name: m.value for m in sol.margins}
        for d in sol.deviations:
            assert close(ds.isel(idx).sel(deviation=d.name)["episode_margin"], margins[f"episode[{d.name}]"])
        assert bool(ds.isel(idx)["holds"]) == sol.incentive_compatible


# --------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------


def run(argv, capsys):
    code = cli_main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("suffix", [".nc", ".csv", ".parquet"])
def test_cli_sweep_round_trips(tmp_path, capsys, default, suffix):
    path = tmp_path / f"out{suffix}"
    code, out, err = run(["sweep", DEFAULT, "--over", "audit.sampling_rate=0:0.2:5", "--over",
                          "stake.slash=5,10,20", "--quiet", "-o", path], capsys)
    assert code == 0, err
    expected = sweep(default, {"audit.sampling_rate": np.linspace(0, 0.2, 5), "stake.slash": [5, 10, 20]},
                     progress=False)
    if suffix == ".nc":
        with xr.open_dataset(path, engine="scipy") as back:
            back = back.load()
        xr.testing.assert_allclose(back, expected)
        assert back.attrs["scenario_sha256"] == expected.attrs["scenario_sha256"]
        assert kind_labels(back, "binding_deviation").values.tolist() == \
            kind_labels(expected, "binding_deviation").values.tolist()
    else:
        back = pd.read_csv(path, index_col=[0, 1, 2]) if suffix == ".csv" else pd.read_parquet(path)
        frame = expected.to_dataframe()
        assert list(back.index.names) == list(frame.index.names)
        pd.testing.assert_frame_equal(back, frame, check_dtype=False, check_index_type=False, atol=1e-12)
        if suffix == ".parquet":
            assert back.attrs["scenario_sha256"] == expected.attrs["scenario_sha256"]


def test_cli_sweep_bad_input_exits_2(tmp_path, capsys):
    out = tmp_path / "x.nc"
    for argv, needle in (
        (["--over", "audit.sampling_rat=0:1:3"], "did you mean 'audit.sampling_rate'"),
        (["--over", "audit.sampling_rate=0:1.5:4"], "expected a probability in [0, 1], found 1.5"),
        (["--over", "audit.sampling_rate=0:0.5"], "--over audit.sampling_rate"),
        (["--over", "audit.sampling_rate"], "KEY=lo:hi:n"),
        (["--over", "stake.slash=1,2", "--over", "audit.sampling_rate=0.1", "--zip"], "equal length"),
    ):
        code, _, err = run(["sweep", DEFAULT, *argv, "-o", out], capsys)
        assert code == 2 and needle in err and "Traceback" not in err, (argv, err)
    code, _, err = run(["sweep", DEFAULT, "--over", "stake.slash=1", "-o", tmp_path / "x.txt"], capsys)
    assert code == 2 and "-o" in err


def test_cli_plot_writes_pngs(tmp_path, capsys):
    sweep_file = tmp_path / "grid.nc"
    assert run(["sweep", DEFAULT, "--over", "audit.sampling_rate=0:0.2:6", "--over", "stake.total=100:3000:5",
                "--quiet", "-o", sweep_file], capsys)[0] == 0
    for argv in (["--y", "deterrence_sampling_rate"],  # heatmap over both axes
                 ["--y", "payoff_deviation", "--x", "audit.sampling_rate", "--sel", "stake.total=3000"]):
        png = tmp_path / f"{argv[1]}.png"
        code, out, err = run(["plot", sweep_file, *argv, "-o", png], capsys)
        assert code == 0, err
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    code, _, err = run(["plot", sweep_file, "--y", "nope", "-o", tmp_path / "n.png"], capsys)
    assert code == 2 and "deterrence_sampling_rate" in err
    code, _, err = run(["plot", sweep_file, "--y", "holds", "--x", "stake.slash", "-o", tmp_path / "n.png"],
                       capsys)
    assert code == 2 and "--x" in err
