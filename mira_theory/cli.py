"""The ``mira-theory`` command line.

Exit status: 0 success, 1 a check failed (commands that check), 2 bad input (the message
names the file, the key, what was expected and what was found), 3 an internal error.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from mira_theory import __version__
from mira_theory.argtypes import nonnegative
from mira_theory.results import dumps
from mira_theory.scenario import ScenarioError

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERNAL = 0, 1, 2, 3


def _error(problems: Sequence[object]) -> int:
    for p in problems:
        print(f"error: {p}", file=sys.stderr)
    return EXIT_BAD_INPUT


def cmd_solve(args: argparse.Namespace) -> int:
    from mira_theory.api import load, solve

    solution = solve(load(args.scenario))
    print(dumps(solution.to_dict()) if args.json else str(solution))
    return EXIT_OK


def cmd_derive(args: argparse.Namespace) -> int:
    from mira_theory.api import derive, load

    derivation = derive(load(args.scenario))
    if args.json:
        print(dumps(derivation.to_dict()))
    else:
        print(derivation.render(latex=args.latex))
    return EXIT_OK


def cmd_incentives(args: argparse.Namespace) -> int:
    from mira_theory import incentives
    from mira_theory.api import load

    result = incentives.solve(load(args.scenario))
    print(dumps(result.to_dict()) if args.json else str(result))
    return EXIT_OK


def cmd_validate(args: argparse.Namespace) -> int:
    from mira_theory.api import load

    status = EXIT_OK
    for path in args.scenarios:
        try:
            s = load(path)
        except ScenarioError as err:
            _error(err.problems)
            status = EXIT_BAD_INPUT
        else:
            print(f"ok: {path} ({s.game} game '{s.name}', sha256 {s.sha256[:16]}…)")
    return status


def _design_options(args: argparse.Namespace, game: str = "audit") -> dict:
    if game == "consensus":
        opts = {"safety_margin": args.safety_margin, "L_max": args.L_max, "W_max": args.W_max}
        if args.N_max is not None:
            opts["N_max"] = args.N_max
    else:
        opts = {"safety_margin": args.safety_margin, "q_max": args.q_max, "S_max": args.S_max, "L_max": args.L_max}
        if args.verifier_remedy:
            opts["verifier_remedy"] = True
    if args.free is not None:
        opts["free"] = tuple(args.free)
    return opts


def _design(scenario, args: argparse.Namespace):
    """The cheapest design of a scenario (options from the command line)."""
    from mira_theory.consensus_design import VARIABLES as CONSENSUS
    from mira_theory.consensus_design import design_consensus
    from mira_theory.design import VARIABLES as AUDIT
    from mira_theory.design import design

    valid = {"audit": AUDIT, "consensus": CONSENSUS}[scenario.game]
    bad = sorted(set(args.free or ()) - set(valid))
    if bad:
        raise ValueError(f"--free: {', '.join(bad)} not a design variable of the {scenario.game} game; "
                         f"expected some of {', '.join(valid)}")
    if scenario.game == "consensus":
        return design_consensus(scenario, **_design_options(args, "consensus"))
    return design(scenario, **_design_options(args))


def _game_problem(scenario, expected: str):
    from mira_theory.scenario import Problem

    return Problem(scenario.path or scenario.name, "scenario.game", expected, repr(scenario.game))


def cmd_design(args: argparse.Namespace) -> int:
    from mira_theory.api import load

    try:
        result = _design(load(args.scenario), args)
    except ValueError as err:
        if isinstance(err, ScenarioError):
            raise
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(dumps(result.to_dict()) if args.json else str(result))
    return EXIT_OK if result.verified else EXIT_FAILED


def cmd_frontier(args: argparse.Namespace) -> int:
    from mira_theory.api import load
    from mira_theory.design import frontier

    scenario = load(args.scenario)
    if scenario.game != "audit":
        raise ScenarioError([_game_problem(scenario, "audit (the stake frontier is of the audit game)")])
    options = _design_options(args)
    options.pop("S_max")
    try:
        result = frontier(scenario, against=args.against, points=args.points,
                          S_range=tuple(args.S_range) if args.S_range else None, **options)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(dumps(result.to_dict()) if args.json else str(result))
    for path, write in ((args.csv, lambda f: result.table.to_csv(f, index=False)),
                        (args.plot, lambda f: result.plot(path=f))):
        if path:
            try:
                write(path)
            except OSError as err:
                print(f"error: {path}: expected a writable file, found {err.strerror}", file=sys.stderr)
                return EXIT_BAD_INPUT
            print(f"wrote {path}", file=sys.stderr)
    return EXIT_OK


def cmd_robustness(args: argparse.Namespace) -> int:
    from mira_theory.api import load
    from mira_theory.certify import robustness

    result = robustness(load(args.scenario), parameters=args.parameter or None)
    print(dumps(result.to_dict()) if args.json else str(result))
    return EXIT_OK


def cmd_certify(args: argparse.Namespace) -> int:
    from mira_theory.api import load
    from mira_theory.certify import certify
    from mira_theory.scenario import Problem

    scenario = load(args.scenario)
    if not scenario.uncertainty:
        raise ScenarioError([Problem(args.scenario, "uncertainty", 'an [uncertainty] table of "key.path" = '
                                     "[low, high] ranges to certify", "nothing: the table is missing")])
    result = certify(scenario, seconds=args.seconds)
    print(dumps(result.to_dict()) if args.json else str(result))
    return EXIT_OK if result.holds else EXIT_FAILED


def cmd_export(args: argparse.Namespace) -> int:
    from mira_theory import deployment
    from mira_theory.api import load

    scenario = load(args.scenario)
    if args.design:
        try:
            result = _design(scenario, args)
        except ValueError as err:
            if isinstance(err, ScenarioError):
                raise
            print(f"error: {err}", file=sys.stderr)
            return EXIT_BAD_INPUT
        if not result.verified:
            print(f"error: no verified design to export: {result.status}"
                  + (f": {result.message}" if result.message else ""), file=sys.stderr)
            for s in result.suggestions:
                print(f"  - {s}", file=sys.stderr)
            return EXIT_FAILED
        document = deployment.export(result.scenario_with_design())
        # the designed parameters belong to the scenario file they were designed from
        document["scenario_sha256"] = scenario.sha256
        document["design"] = {"objective": result.objective, "formulation": result.formulation,
                              "binding": list(result.binding), "free": list(result.free),
                              "options": result.to_dict()["options"]}
    else:
        document = deployment.export(scenario)
    text = deployment.dumps(document, args.format)
    if args.output in (None, "-"):
        print(text, end="")
    else:
        try:
            with open(args.output, "w", encoding="utf-8") as fh:
                fh.write(text)
        except OSError as err:
            print(f"error: {args.output}: expected a writable file, found {err.strerror}", file=sys.stderr)
            return EXIT_BAD_INPUT
        status = "all constraints hold" if document["certificate"]["holds"] else "some constraints FAIL"
        print(f"wrote {args.output} ({document['game']} parameters of '{document['scenario']}'; {status})")
    return EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    from mira_theory import deployment
    from mira_theory.api import load
    from mira_theory.results import render_table

    scenario = load(args.scenario)
    params = deployment.read_params(args.params, scenario.game)
    result = deployment.check(scenario, params)
    if result.sha_matches is False:
        print(f"warning: {args.params}: scenario_sha256 {params.scenario_sha256[:16]}… does not match "
              f"{args.scenario} ({scenario.sha256[:16]}…): the parameters were made for another "
              "version of the scenario", file=sys.stderr)
    print(f"check of {args.params} against {args.scenario} ({scenario.game} game)")
    print(render_table(deployment.margin_rows(result), ("constraint", "margin", "status", "equation")))
    if result.failed:
        print(f"FAILED: {', '.join(result.failed)}")
        return EXIT_FAILED
    print("all constraints hold")
    return EXIT_OK


def int_list(text: str) -> list[int]:
    """'2,4,6' or '1-10' or '1-3,8' -> a list of positive integers."""
    out: list[int] = []
    try:
        for part in text.split(","):
            part = part.strip()
            if "-" in part:
                lo, hi = (int(x) for x in part.split("-", 1))
                if hi < lo:
                    raise ValueError
                out += range(lo, hi + 1)
            else:
                out.append(int(part))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected integers like '2,4,6' or '1-10', found {text!r}") from None
    if not out or min(out) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, found {text!r}")
    return out


def cmd_table(args: argparse.Namespace) -> int:
    from mira_theory.games.consensus import guessing_table

    if min(args.options) < 2:
        print(f"error: --options: expected option counts ≥ 2, found {min(args.options)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    table = guessing_table(args.options, args.verifications)
    if args.json:
        print(dumps({str(m): {str(k): v for k, v in row.items()} for m, row in table.iterrows()}))
    elif args.csv:
        print(table.to_csv(), end="")
    elif args.exact:
        print("probability that random answers pass k independent m-option verifications: (1/m)^k")
        exact = table.copy().astype(object)
        for m in exact.index:
            for k in exact.columns:
                exact.loc[m, k] = f"1/{m ** k}"
        print(exact.to_string())
    else:
        print("probability that random answers pass k independent m-option verifications: (1/m)^k")
        print(table.map(lambda v: f"{v:.3g}").to_string())
    return EXIT_OK


def _design_arguments(p: argparse.ArgumentParser) -> None:
    from mira_theory.consensus_design import VARIABLES as CONSENSUS
    from mira_theory.design import VARIABLES

    g = p.add_argument_group("design options")
    g.add_argument("--free", nargs="+", metavar="VAR",
                   help=f"variables to design (default all; audit: {', '.join(VARIABLES)}; consensus: "
                        f"{', '.join(CONSENSUS)}); the others keep the scenario's values")
    g.add_argument("--safety-margin", type=nonnegative, default=0.0,
                   help="IC must hold with the deviation's saving inflated by 1 + m (default 0)")
    g.add_argument("--q-max", type=nonnegative, default=1.0, help="largest sampling rate (default 1)")
    g.add_argument("--S-max", type=nonnegative, default=float("inf"), help="largest stake (default none)")
    g.add_argument("--L-max", type=nonnegative, default=float("inf"), help="largest slash (default none)")
    g.add_argument("--verifier-remedy", action="store_true",
                   help="audit: add the cheapest verifier's-dilemma remedy's cost (see `incentives`)")
    g.add_argument("--N-max", type=int, help="consensus: largest committee (default: the network's nodes)")
    g.add_argument("--W-max", type=int, default=10_000, help="consensus: longest slashing window (default 10000)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mira-theory",
        description="Game-theoretic analysis of staked AI inference: equilibrium sampling "
                    "rates, slashes and stakes derived from scenario files (models/*.toml).",
        epilog="Exit status: 0 success, 1 a check failed, 2 bad input, 3 internal error.")
    parser.add_argument("--version", action="version", version=f"mira-theory {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("solve", help="solve a scenario: thresholds, equilibria, stake, margins",
                       description="Solve a scenario file. Audit game: the deterrence sampling rate "
                                   "q*, the minimum slash L*, the minimum total stake S*, the "
                                   "equilibria (simultaneous and leadership), every incentive "
                                   "constraint's margin and the binding deviation. Consensus game: "
                                   "committee outcome probabilities, agreement rates, false-slash and "
                                   "detection per window, the minimum window and slash, the symmetric "
                                   "equilibria of the N-player game, capture probability and the "
                                   "cost/profit of corruption.")
    p.add_argument("scenario", help="scenario file (TOML), e.g. models/default.toml")
    p.add_argument("--json", action="store_true",
                   help="print the result object as JSON (null where no finite value exists)")
    p.set_defaults(func=cmd_solve)

    p = sub.add_parser("derive", help="print the symbolic closed forms of the scenario's game",
                       description="Print every closed form of the scenario's game as derived by "
                                   "sympy, with its value at the scenario (one per deviation).")
    p.add_argument("scenario", help="scenario file (TOML)")
    p.add_argument("--latex", action="store_true", help="print the expressions as LaTeX")
    p.add_argument("--json", action="store_true", help="print expressions, LaTeX and values as JSON")
    p.set_defaults(func=cmd_derive)

    p = sub.add_parser("incentives", help="the verifier's dilemma: checker game and remedies",
                       description="Solve the checker game between a verifier (check/skip) and a "
                                   "provider (cheat/honest) of an audit scenario: the mixed equilibrium "
                                   "(cheating rate X*, check probability y*) and, for three remedies "
                                   "(per-audit fee, forced errors with a jackpot, attention challenges "
                                   "with a bond), the threshold and the cost per task, cheapest first.")
    p.add_argument("scenario", help="audit scenario file (TOML), e.g. models/default.toml")
    p.add_argument("--json", action="store_true",
                   help="print the result object as JSON (null where no finite value exists)")
    p.set_defaults(func=cmd_incentives)

    p = sub.add_parser("validate", help="check scenario files and print every problem",
                       description="Validate scenario files; print each problem with its file, key, "
                                   "what was expected and what was found. Exit 2 if any.")
    p.add_argument("scenarios", nargs="+", metavar="SCENARIO", help="scenario files (TOML)")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("export", help="export the scenario's deployment parameters with a certificate",
                       description="Write the deployment parameters in force in the scenario (sampling "
                                   "rate, slash, stake, reward, ...; committee size, thresholds and "
                                   "window for consensus), a certificate (every constraint with its "
                                   "margin, equation and pass/fail) and the predictions a network run "
                                   "with them should show. The reference network reads this file.")
    p.add_argument("scenario", help="scenario file (TOML)")
    p.add_argument("-o", "--output", help="output file (default: standard output)")
    p.add_argument("--format", choices=["json", "toml"], default="json", help="file format (default json)")
    p.add_argument("--design", action="store_true",
                   help="export the cheapest safe parameters (as `mira-theory design`) instead of those in force")
    _design_arguments(p)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("robustness", help="per uncertain parameter, the interval where every constraint holds",
                       description="With the deployment parameters in force, find for each other numeric "
                                   "scenario value the interval around its value over which every "
                                   "constraint keeps holding, and the constraint that ends it on each side.")
    p.add_argument("scenario", help="scenario file (TOML)")
    p.add_argument("--parameter", action="append", metavar="KEY", help="only this key path (repeatable)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_robustness)

    p = sub.add_parser("certify", help="prove every constraint over the scenario's [uncertainty] box",
                       description="For every constraint: proved over the whole [uncertainty] box (by a "
                                   "sound argument: monotonicity, interval arithmetic with branch and "
                                   "bound, or proved lemmas for the episode check), a counterexample point "
                                   "(re-solved), or undecided. Exit 0 if all are proved, 1 otherwise.")
    p.add_argument("scenario", help="scenario file (TOML) with an [uncertainty] table")
    p.add_argument("--seconds", type=nonnegative, default=20.0, help="time budget per constraint (default 20)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_certify)

    p = sub.add_parser("design", help="the cheapest incentive-compatible parameters (q, L, S, R)",
                       description="Choose the audit sampling rate q, slash L, stake S and reward R (each "
                                   "free or fixed) that minimise the network's cost per task (reward + "
                                   "audits) subject to incentive compatibility against every deviation, "
                                   "participation (capital cost included), stake exhaustion and the exact "
                                   "episode check, and the bounds; provider types from the scenario's "
                                   "[[provider_type]] tables. Exit 0 with a verified design, 1 if none "
                                   "exists (the reason and what would have to change are printed).")
    p.add_argument("scenario", help="scenario file (TOML)")
    p.add_argument("--json", action="store_true", help="print JSON")
    _design_arguments(p)
    p.set_defaults(func=cmd_design)

    p = sub.add_parser("frontier", help="the Pareto frontier of stake against audit cost (or reward)",
                       description="Design under a geometric grid of stake caps and print the Pareto "
                                   "frontier of locked stake against audit cost per task (or reward).")
    p.add_argument("scenario", help="scenario file (TOML)")
    p.add_argument("--against", choices=["audit_cost", "reward"], default="audit_cost")
    p.add_argument("--points", type=int, default=12, help="stake caps on the grid (default 12)")
    p.add_argument("--S-range", nargs=2, type=nonnegative, metavar=("LOW", "HIGH"),
                   help="the stake caps' range (default: from the least stake the constraints allow to the "
                        "uncapped design's stake)")
    p.add_argument("--csv", help="write every point as CSV")
    p.add_argument("--plot", help="write the plot (PNG, PDF, SVG by extension)")
    p.add_argument("--json", action="store_true", help="print JSON")
    _design_arguments(p)
    p.set_defaults(func=cmd_frontier)

    p = sub.add_parser("check", help="recompute every constraint for given deployment parameters",
                       description="Apply a deployment-parameters file (exported, hand-edited or read "
                                   "from a live network) to the scenario and print every constraint "
                                   "with its margin. Exit 0 if all hold, 1 if any fails (named), 2 on "
                                   "bad input. Warns when the file's scenario_sha256 does not match.")
    p.add_argument("scenario", help="scenario file (TOML)")
    p.add_argument("params", help="deployment-parameters file (JSON, or TOML by its .toml extension)")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("table", help="print a reference table (guessing)",
                       description="Print a reference table. 'guessing': the probability that random "
                                   "answers pass k independent verifications of m-option claims, "
                                   "(1/m)^k, exact (the shape of the table in Mira's whitepaper).")
    p.add_argument("which", choices=["guessing"], help="which table")
    p.add_argument("--options", type=int_list, default=[2, 4, 6, 8, 10],
                   help="answer options per claim, e.g. 2,4,6,8,10 (default) or 2-10")
    p.add_argument("--verifications", type=int_list, default=list(range(1, 11)),
                   help="numbers of independent verifications, e.g. 1-10 (default)")
    fmt_group = p.add_mutually_exclusive_group()
    fmt_group.add_argument("--json", action="store_true", help="print as JSON {m: {k: p}}")
    fmt_group.add_argument("--csv", action="store_true", help="print as CSV")
    fmt_group.add_argument("--exact", action="store_true", help="print exact fractions 1/m^k")
    p.set_defaults(func=cmd_table)

    from mira_theory import cli_experiment, cli_sweep

    cli_sweep.register(sub)
    cli_experiment.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ScenarioError as err:
        return _error(err.problems)
    except BrokenPipeError:  # e.g. piped into `head`
        return EXIT_OK
    except KeyboardInterrupt:
        return 130
    except Exception as err:  # a bug, not bad input: say so, keep the traceback behind a switch
        if os.environ.get("MIRA_DEBUG"):
            raise
        print(f"internal error (please report it; MIRA_DEBUG=1 shows the traceback): "
              f"{type(err).__name__}: {err}", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
