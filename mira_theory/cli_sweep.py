"""Command-line subcommands for sweeps, Monte Carlo simulation and plots.

``register(subparsers)`` adds three subcommands to the ``mira-theory`` parser:

    mira-theory sweep models/default.toml --over audit.sampling_rate=0:0.2:101 \\
        --over stake.slash=5,10,20 -o sweep.nc          # or .csv / .parquet
    mira-theory simulate models/default.toml --rounds 100000 --mix honest=6,weaker-model=2 \\
        --seed 1 --replicates 8 -o sim.nc
    mira-theory plot sweep.nc --y deterrence_sampling_rate --x stake.slash -o fig.png

``--over KEY=SPEC``: SPEC is ``lo:hi:n`` (n evenly spaced values from lo to hi), a
comma-separated list ``v1,v2,...``, or one value. ``--backend dask --scheduler
tcp://host:8786`` runs per-point work on a Dask cluster (see :mod:`mira_theory.backends`).

Exit status as ``mira-theory``: 0 success, 2 bad input (the message names the option or the
key, what was expected and what was found), 3 an internal error.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mira_theory.argtypes import nonnegative_int, positive_int
from mira_theory.backends import BACKENDS
from mira_theory.scenario import Problem, ScenarioError

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERNAL = 0, 1, 2, 3
FORMATS = (".nc", ".csv", ".parquet")


def _bad(option: str, expected: str, found: str) -> ScenarioError:
    return ScenarioError([Problem("<command line>", option, expected, found)])


def _number(text: str) -> int | float:
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        return float(text)


def parse_over(items: Sequence[str]) -> dict[str, Any]:
    """['audit.sampling_rate=0:0.2:101', 'stake.slash=5,10,20'] -> {key: values}."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, spec = item.partition("=")
        key = key.strip()
        if not sep or not key or not spec.strip():
            raise _bad("--over", "KEY=lo:hi:n or KEY=v1,v2,... (e.g. audit.sampling_rate=0:0.2:101)", repr(item))
        if key in out:
            raise _bad(f"--over {key}", "each key once", "the key twice")
        try:
            if ":" in spec:
                parts = spec.split(":")
                if len(parts) != 3:
                    raise ValueError
                lo, hi, n = _number(parts[0]), _number(parts[1]), _number(parts[2])
                if not isinstance(n, int) or n < 1:
                    raise _bad(f"--over {key}", "a number of points n ≥ 1 in lo:hi:n", repr(parts[2]))
                if n > 10**8:
                    raise _bad(f"--over {key}", "at most 10^8 points per axis", str(n))
                values: Any = np.linspace(lo, hi, n)
                if isinstance(lo, int) and isinstance(hi, int) and np.all(values == np.round(values)):
                    values = values.astype(np.int64)
            else:
                values = [_number(v) for v in spec.split(",")]
        except ValueError:
            raise _bad(f"--over {key}", "numbers as lo:hi:n or v1,v2,...", repr(spec)) from None
        out[key] = values
    return out


def parse_mix(text: str | None) -> dict[str, int] | None:
    """'honest=6,weaker-model=2' -> {'honest': 6, 'weaker-model': 2}."""
    if text is None:
        return None
    out: dict[str, int] = {}
    for part in text.split(","):
        name, sep, count = part.partition("=")
        try:
            n = int(count)
        except ValueError:
            n = -1
        if not sep or not name.strip() or n < 0:
            raise _bad("--mix", "STRATEGY=COUNT,... (e.g. honest=6,weaker-model=2)", repr(part))
        out[name.strip()] = out.get(name.strip(), 0) + n
    return out


def parse_sel(items: Sequence[str] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise _bad("--sel", "KEY=VALUE (e.g. stake.slash=20)", repr(item))
        try:
            out[key.strip()] = _number(value)
        except ValueError:
            raise _bad(f"--sel {key}", "a number", repr(value)) from None
    return out


def _output(path: str) -> Path:
    p = Path(path)
    if p.suffix.lower() not in FORMATS:
        raise _bad("-o", "a file ending in " + ", ".join(FORMATS), repr(path))
    if p.parent and not p.parent.exists():
        raise _bad("-o", "a file in an existing directory", f"{path!r} (no directory {str(p.parent)!r})")
    return p


def write_dataset(ds: Any, path: Path, table: Any = None) -> None:
    """.nc: the whole Dataset (NetCDF 3, attrs included); .csv/.parquet: ``table`` (default
    ``ds.to_dataframe()``), with the Dataset's attrs as parquet metadata."""
    suffix = path.suffix.lower()
    if suffix == ".nc":
        ds.to_netcdf(path, engine="scipy")
        return
    df = ds.to_dataframe() if table is None else table
    if suffix == ".csv":
        df.to_csv(path)
    else:
        df.attrs = {k: (v.item() if hasattr(v, "item") else v) for k, v in ds.attrs.items()}
        df.to_parquet(path)


def _backend(args: argparse.Namespace) -> tuple[str, Any]:
    if args.scheduler:
        if args.backend not in (None, "dask"):
            raise _bad("--scheduler", "--backend dask (or no --backend)", f"--backend {args.backend}")
        if not args.scheduler.startswith(("tcp://", "tls://", "inproc://", "ucx://")):
            raise _bad("--scheduler", "a scheduler address such as tcp://host:8786", repr(args.scheduler))
        return "dask", args.scheduler
    return args.backend or "inprocess", None


def cmd_sweep(args: argparse.Namespace) -> int:
    from mira_theory.api import load
    from mira_theory.sweep import sweep

    out = _output(args.output)
    over = parse_over(args.over)
    backend, client = _backend(args)
    scenario = load(args.scenario)
    ds = sweep(scenario, over, zip=args.zip, backend=backend, client=client, workers=args.workers,
               progress=False if args.quiet else None, episode=not args.no_episode)
    try:
        write_dataset(ds, out)
    except OSError as err:
        raise _bad("-o", "a writable file", f"{args.output}: {err.strerror or err}") from None
    points = int(np.prod([ds.sizes[d] for d in ds["holds"].dims]))
    holds = int(ds["holds"].values.sum())
    if not args.quiet:
        print(f"wrote {out} ({points:,} points of {scenario.game} scenario '{scenario.name}', "
              f"{len(ds.data_vars)} quantities; every margin holds at {holds:,} of them)")
    return EXIT_OK


def cmd_simulate(args: argparse.Namespace) -> int:
    from mira_theory.api import load
    from mira_theory.montecarlo import simulate
    from mira_theory.results import render_table

    out = _output(args.output) if args.output else None
    backend, client = _backend(args)
    scenario = load(args.scenario)
    ds = simulate(scenario, agents=args.providers, rounds=args.rounds, mix=parse_mix(args.mix), seed=args.seed,
                  replicates=args.replicates, confidence=args.confidence, backend=backend, client=client,
                  workers=args.workers, chunk_size=args.chunk_size, progress=False if args.quiet else None)
    if out is not None:
        agent = "provider" if "provider" in ds.dims else "node"
        per_agent = [v for v in ds.data_vars if set(ds[v].dims) == {"replicate", agent}]
        try:
            write_dataset(ds, out, ds[per_agent].to_dataframe())
        except OSError as err:
            raise _bad("-o", "a writable file", f"{args.output}: {err.strerror or err}") from None
    if args.quiet:
        return EXIT_OK
    from mira_theory.results import fmt

    rate = "flag_rate" if scenario.game == "audit" else "agreement_rate"
    names = [rate, "slash_rate"] if scenario.game == "consensus" else [rate, "audit_rate"]
    rows = []
    for name in names:
        for a in ds["action"].values:
            r = ds.sel(action=a)
            pred = float(r[f"{name}_predicted"]) if f"{name}_predicted" in ds else (
                float(r["agreement_predicted"]) if name == "agreement_rate" else float("nan"))
            rows.append((name, str(a), fmt(float(r[name])), f"[{fmt(float(r[f'{name}_low']))}, "
                         f"{fmt(float(r[f'{name}_high']))}]", fmt(pred)))
    print(f"{scenario.game} simulation of '{scenario.name}': seed {args.seed}, {args.replicates} replicate(s), "
          f"{int(ds.sizes.get('provider', ds.sizes.get('node', 0)))} agents, {args.rounds:,} "
          f"{'rounds' if scenario.game == 'audit' else 'claims'}")
    print(render_table(rows, ("quantity", "strategy", "simulated", f"{args.confidence:g} interval",
                              "closed form")))
    if out is not None:
        print(f"wrote {out}")
    return EXIT_OK


def cmd_plot(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    from mira_theory.plotting import plot_sweep, read_sweep

    out = Path(args.output)
    if out.suffix.lower() not in (".png", ".pdf", ".svg"):
        raise _bad("-o", "a .png, .pdf or .svg file", repr(args.output))
    ds = read_sweep(args.sweep)
    fig = plot_sweep(ds, args.y, args.x, args.deviation, parse_sel(args.sel))
    try:
        fig.savefig(out, dpi=120)
    except OSError as err:
        raise _bad("-o", "a writable file", f"{args.output}: {err.strerror or err}") from None
    if not args.quiet:
        print(f"wrote {out}")
    return EXIT_OK


def _backend_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", choices=BACKENDS, default=None,
                   help="where per-point / per-replicate work runs (default inprocess)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="a Dask scheduler address, e.g. tcp://host:8786 (implies --backend dask)")
    p.add_argument("--workers", type=positive_int, help="worker processes (processes, or a local Dask cluster)")
    p.add_argument("--quiet", action="store_true", help="no progress bar, no summary")


def register(subparsers: Any) -> None:
    """Add the ``sweep``, ``simulate`` and ``plot`` subcommands to a subparsers object."""
    p = subparsers.add_parser(
        "sweep", help="solve a scenario over a grid of its parameters (xarray; .nc/.csv/.parquet)",
        description="Solve a scenario at every point of a grid of its parameters and write the result: "
                    "one variable per quantity (q*, L*, S*, margins, payoffs, detection, equilibria, holds, "
                    "...), one dimension per --over key (Cartesian; --zip pairs them). Audit closed forms "
                    "are evaluated in one vectorized call; per-point work (consensus solves, exact episode "
                    "margins) runs on the chosen backend.")
    p.add_argument("scenario", help="scenario file (TOML)")
    p.add_argument("--over", action="append", required=True, metavar="KEY=SPEC",
                   help="an axis: KEY=lo:hi:n (n values from lo to hi) or KEY=v1,v2,...; repeat for more "
                        "axes; keys as in the scenario file, e.g. deviation.weaker-model.cost")
    p.add_argument("--zip", action="store_true", help="pair the axes point by point (equal lengths)")
    p.add_argument("--no-episode", action="store_true",
                   help="audit: skip the exact episode margins (per point); holds then covers the rest")
    p.add_argument("-o", "--output", required=True, help="output file: .nc (NetCDF), .csv or .parquet")
    _backend_options(p)
    p.set_defaults(func=cmd_sweep)

    p = subparsers.add_parser(
        "simulate", help="Monte Carlo simulation of the scenario's game beside its closed forms",
        description="Simulate the audit game task by task (providers, rounds) or the consensus game claim "
                    "by claim (nodes, claims), seeded and reproducible on every backend; print the simulated "
                    "rates with exact confidence intervals next to the closed forms.")
    p.add_argument("scenario", help="scenario file (TOML)")
    p.add_argument("--rounds", type=positive_int, default=10_000,
                   help="rounds (audit: one task per provider per round) or claims (consensus); default 10000")
    p.add_argument("--providers", type=positive_int,
                   help="providers (audit) or nodes (consensus); default: the --mix total, else one per "
                        "strategy (audit) or network.nodes honest nodes (consensus)")
    p.add_argument("--mix", metavar="STRATEGY=COUNT,...",
                   help="agents per strategy, e.g. honest=6,weaker-model=2")
    p.add_argument("--seed", type=nonnegative_int, default=0, help="random seed (default 0)")
    p.add_argument("--replicates", type=positive_int, default=1, help="independent replicates (default 1)")
    p.add_argument("--confidence", type=float, default=0.99, help="interval confidence (default 0.99)")
    p.add_argument("--chunk-size", type=positive_int, help="units of work per chunk (results do not depend on it)")
    p.add_argument("-o", "--output", help=".nc (everything) or .csv/.parquet (per replicate and agent)")
    _backend_options(p)
    p.set_defaults(func=cmd_simulate)

    p = subparsers.add_parser(
        "plot", help="plot a sweep: a quantity against an axis, or a heatmap over two",
        description="Plot a quantity of a sweep file against one axis (one line per deviation / other "
                    "axis value), or as a heatmap over two axes, with the feasible region (every margin "
                    "holds) marked.")
    p.add_argument("sweep", help="a sweep file written by 'mira-theory sweep' (.nc, .csv, .parquet)")
    p.add_argument("--y", required=True, help="the quantity, e.g. deterrence_sampling_rate")
    p.add_argument("--x", help="the axis for a line plot (default: a heatmap if two axes, else the axis)")
    p.add_argument("--deviation", help="the deviation for per-deviation quantities (heatmap default: first)")
    p.add_argument("--sel", action="append", metavar="KEY=VALUE", help="fix an axis at its nearest value")
    p.add_argument("-o", "--output", required=True, help="figure file (.png, .pdf, .svg)")
    p.add_argument("--quiet", action="store_true", help="print nothing")
    p.set_defaults(func=cmd_plot)
