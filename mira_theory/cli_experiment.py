"""``mira-theory experiment``: a scenario's predictions against an executed reference-network run.

    mira-theory experiment models/default.toml --tasks 20000 --mix honest=6,weaker-model=2 --seed 1
    mira-theory experiment models/default.toml --params p.json --adaptive hedge --tasks 20000
    mira-theory experiment models/default.toml --threshold --points 7 --adaptive logit
    mira-theory experiment models/default.toml --adaptive hedge --adaptive-verifiers --tasks 200000

Prints the comparison table (quantity, predicted, observed, interval, n, test, p-value, pass)
and writes the run directory (``--out``): params.json, ledger.sqlite, events.jsonl,
report.md, report.json and PNG plots. Exit status: 0 every prediction passed, 1 a prediction
failed (named), 2 bad input (the message names the option or file and key), 3 an internal error.
See :mod:`mira_theory.experiment` for what is compared and how.
"""

from __future__ import annotations

import argparse
import sys

from mira_theory.argtypes import level, positive_finite, positive_int
from mira_theory.scenario import Problem, ScenarioError

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERNAL = 0, 1, 2, 3


def cmd_experiment(args: argparse.Namespace) -> int:
    from mira_theory import experiment, experiment_consensus

    progress = None
    bar = None
    if not args.quiet and sys.stderr.isatty():
        from tqdm import tqdm

        total = args.tasks * (args.points if args.threshold else 1)
        bar = tqdm(total=total, desc="tasks", unit="task", file=sys.stderr)
        progress = bar.update
    try:
        if getattr(args, "adaptive_verifiers", False) and (args.threshold or experiment_consensus.is_consensus(
                args.scenario)):
            what = "--threshold" if args.threshold else "a consensus scenario"
            raise ScenarioError([Problem("<command line>", "--adaptive-verifiers", "an audit scenario without "
                                         "--threshold (the verifiers learn one rate; a sweep fixes it)", what)])
        if experiment_consensus.is_consensus(args.scenario):  # --tasks counts claims, --mix sets the nodes
            result = experiment_consensus.run_from_args(args, progress)
        elif args.threshold:
            result = experiment.run_threshold(
                args.scenario, args.params, points=args.points, adaptive=args.adaptive or "logit",
                tasks=args.tasks, providers=args.providers, seed=args.seed, level=args.level, out=args.out,
                verifiers=args.verifiers, windows=args.windows, eta=args.eta, precision=args.precision,
                gamma=args.gamma, mode=args.mode, progress=progress)
        else:
            result = experiment.run_experiment(
                args.scenario, args.params, tasks=args.tasks, providers=args.providers, mix=args.mix,
                adaptive=args.adaptive, mode=args.mode, seed=args.seed, level=args.level, out=args.out,
                verifiers=args.verifiers, windows=args.windows, eta=args.eta, precision=args.precision,
                gamma=args.gamma, progress=progress, adaptive_verifiers=args.adaptive_verifiers,
                verifier_eta=args.verifier_eta)
    except ScenarioError as err:
        for p in err.problems:
            print(f"error: {p}", file=sys.stderr)
        return EXIT_BAD_INPUT
    finally:
        if bar is not None:
            bar.close()
    print(result.table())
    if result.threshold:
        th = result.threshold
        print(f"\npredicted q* = {th['predicted_q_star']:.6g}; unresolvable band [{th['band'][0]:.6g}, "
              f"{th['band'][1]:.6g}]")
        for p in th["points"]:
            print(f"  q = {p['sampling_rate']:.6g} (q/q* {p['ratio']:.3f}): honest share {p['observed']:.4g} "
                  f"[{p['interval'][0]:.4g}, {p['interval'][1]:.4g}], predicted {p['side']}")
    if result.verifiers:
        v = result.verifiers
        eq = v.get("equilibrium")
        if eq:
            print(f"\nmixed equilibrium (parameters file): q° = {eq[0]:.6g}, t° = {eq[1]:.6g}")
        for h in v["horizons"]:
            p, o = h["predicted"], h.get("observed")
            line = (f"  {h['label']} ({h['tasks']} tasks, η = {h['eta']:.4g}, η_v = {h['verifier_eta']:.4g}): "
                    f"predicted q̄ {p['rate']:.4g} ± {p['rate_sd']:.2g}, t̄ {p['deviation']:.4g} ± "
                    f"{p['deviation_sd']:.2g}")
            if "distance" in p:
                line += f", distance {p['distance']:.4g} ± {p['distance_sd']:.2g}"
            if o:
                line += f"; observed q̄ {o['rate']:.4g}, t̄ {o['deviation']:.4g}"
                if "distance" in o:
                    line += f", distance {o['distance']:.4g}"
            print(line)
    for note in result.notes:
        print(f"note: {note}")
    verdict = "every prediction passed" if result.passed else f"FAILED: {'; '.join(result.failed)}"
    print(f"\n{len(result.comparisons)} comparisons (Holm, level {args.level:g}): {verdict}")
    print(f"report: {result.run_dir / 'report.md'}")
    return EXIT_OK if result.passed else EXIT_FAILED


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``experiment`` subcommand to the ``mira-theory`` parser."""
    p = sub.add_parser("experiment", help="run the reference network and test the scenario's predictions",
                       description="Solve the scenario (or read --params), run the reference network with "
                                   "those parameters and strategy mix, read the run's event log and compare "
                                   "every prediction (detection and false-slash rates, payoff per task, the "
                                   "cheating episode, adaptive providers' learning) with its statistical "
                                   "test, Holm-corrected. Exit 0 if all pass, 1 if any fails, 2 on bad input.")
    p.add_argument("scenario", help="scenario file (TOML): audit game, or consensus game (in-process committees; "
                                    "--tasks counts claims and --mix sets the nodes)")
    p.add_argument("--params", default=None, help="deployment-parameters file (default: export the scenario)")
    p.add_argument("--tasks", type=positive_int, default=4000, help="tasks in the run (per point with --threshold)")
    p.add_argument("--providers", type=positive_int, default=8)
    p.add_argument("--verifiers", type=positive_int, default=2)
    p.add_argument("--mix", default=None,
                   help="strategy=count,...: honest, a deviation, mixed:<deviation>:<t>, adaptive (with "
                        "--adaptive); default: half honest, the rest over the deviations")
    p.add_argument("--adaptive", choices=["hedge", "regret", "logit"], default=None,
                   help="learning providers (every provider unless --mix names adaptive=N)")
    p.add_argument("--eta", type=positive_finite, default=None, help="hedge learning rate (default 5/((L+R)√t); with --adaptive-verifiers see --verifier-eta)")
    p.add_argument("--precision", type=positive_finite, default=None, help="logit precision λ (default 40)")
    p.add_argument("--gamma", type=positive_finite, default=0.05, help="regret matching exploration (default 0.05)")
    p.add_argument("--adaptive-verifiers", action="store_true",
                   help="the verifiers learn their common sampling rate too (Hedge over audit/no-audit, from the "
                        "rate in force); needs --adaptive hedge, no --mix, in-process. Per window the time-averaged "
                        "rate q̄ and deviation share t̄ are tested against simulated runs of the same process "
                        "(mira_theory.dynamics), the whole run's against the mixed equilibrium; the report gives "
                        "the distance to it at this and a 10× longer horizon. The providers' stake is raised (with "
                        "a note) if the simulated slashes could exhaust it")
    p.add_argument("--verifier-eta", type=positive_finite, default=None,
                   help="verifiers' learning rate per task with --adaptive-verifiers (default √(8 ln 2/T)/ρ, ρ the "
                        "range of the verifier's payoff difference; --eta then defaults to √(2 ln m/(V·T/P)): "
                        "see dynamics.hedge_step_sizes)")
    p.add_argument("--windows", type=positive_int, default=10,
                   help="time windows of adaptive providers' tasks (of batches with --adaptive-verifiers)")
    p.add_argument("--threshold", action="store_true",
                   help="sweep q from 0.5·q* to 1.5·q* with adaptive providers (default logit)")
    p.add_argument("--points", type=positive_int, default=7, help="sampling rates of the --threshold sweep")
    p.add_argument("--mode", choices=["inprocess", "processes"], default="inprocess",
                   help="in-process network (default) or the real services (as mira-node up)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--level", type=level, default=0.99, help="confidence level (default 0.99)")
    p.add_argument("--out", default=None, help="run directory (default runs/experiment-<scenario>-seed<S>)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_experiment)
