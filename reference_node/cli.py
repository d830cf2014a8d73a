"""``mira-node``: run the reference network, or one of its services alone.

    mira-node up --params p.json --providers 8 --verifiers 2 --tasks 10000 --out runs/NAME
                 [--mix honest=6,weaker-model=2] [--seed S] [--inprocess] [--quiet]
    mira-node ledger   --params p.json --db ledger.sqlite [--host 127.0.0.1] [--port 0]
    mira-node provider --params p.json --ledger URL --id provider-0 [--strategy honest]
    mira-node verifier --params p.json --ledger URL --arbiter URL --id verifier-0 --index 0 --count 2
    mira-node arbiter  --params p.json --ledger URL
    mira-node client   --params p.json --provider URL [--provider URL ...] --tasks N
    mira-node calibrate SCENARIO.toml -o OUT.toml [--name NAME] [--seed S]

Bad input (params file, options) exits 2 with a message naming what is wrong; no traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from mira_theory.scenario import ScenarioError
from reference_node import events, strategies
from reference_node.params import NodeParams, load


class UsageError(Exception):
    pass


def _params(path: str) -> NodeParams:
    return load(path)


def _progress(total: int, quiet: bool, desc: str):
    if quiet or not sys.stderr.isatty():
        return None, None
    from tqdm import tqdm

    bar = tqdm(total=total, desc=desc, unit="task", file=sys.stderr)
    return bar, bar.update


# ----------------------------------------------------------------------------------------
# up
# ----------------------------------------------------------------------------------------


def cmd_up(args: argparse.Namespace) -> int:
    params = _params(args.params)
    if args.providers < 1 or args.verifiers < 1 or args.tasks < 0:
        raise UsageError("--providers and --verifiers must be ≥ 1 and --tasks ≥ 0")
    try:
        specs = strategies.parse_mix(args.mix, params.deviation_names, args.providers)
    except ValueError as err:
        raise UsageError(str(err)) from None
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    db = out / "ledger.sqlite"
    if db.exists() and not args.resume:
        raise UsageError(f"{db} exists: choose a new --out, or pass --resume to continue that run")
    meta = {"params": str(args.params), "scenario": params.scenario, "scenario_sha256": params.scenario_sha256,
            "providers": {f"provider-{i}": s for i, s in enumerate(specs)}, "verifiers": args.verifiers,
            "tasks": args.tasks, "seed": args.seed, "mode": "inprocess" if args.inprocess else "http"}
    interrupted = False
    try:
        if args.inprocess:
            workload = _up_inprocess(args, params, specs, db)
        else:
            workload = _up_http(args, params, specs, out, db)
    except KeyboardInterrupt:  # the services are already stopped; keep what was committed
        interrupted, workload = True, {"interrupted": True}
        print("mira-node: interrupted; services stopped; exporting the events committed so far", file=sys.stderr)
    if not db.exists():
        return 130 if interrupted else 1
    n = events.export_jsonl(db, out / "events.jsonl")
    summary = {"run": meta, "workload": workload, "events": n, **events.summarize(events.iter_events(db))}
    summary["predictions"] = params.predictions.get("deviations"), params.predictions.get("honest")
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    _print_summary(summary, out)
    return 130 if interrupted else 0


def _up_inprocess(args: argparse.Namespace, params: NodeParams, specs: list[str], db: Path) -> dict[str, Any]:
    from reference_node.inprocess import Network

    net = Network(params, db, specs, args.verifiers, args.seed)
    bar, update = _progress(args.tasks, args.quiet, "tasks")
    try:
        result = net.run(args.tasks, progress=update)
        net.finish()
    finally:
        if bar is not None:
            bar.close()
        net.close()
    return result


def _spawn(name: str, argv: list[str], out: Path) -> subprocess.Popen:
    log = open(out / "logs" / f"{name}.log", "ab")
    return subprocess.Popen([sys.executable, "-m", "reference_node.cli", *argv], stdout=log, stderr=log,
                            stdin=subprocess.DEVNULL, start_new_session=True)


def _wait_port(path: Path, proc: subprocess.Popen, name: str, timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            return f"http://127.0.0.1:{path.read_text().strip()}"
        if proc.poll() is not None:
            raise UsageError(f"{name} exited with status {proc.returncode} during start-up (see its log)")
        time.sleep(0.02)
    raise UsageError(f"{name} did not start within {timeout:.0f} s")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """The service processes of one HTTP run; stop() terminates exactly the processes it started."""

    def __init__(self, params_path: str, out: Path, seed: int):
        self.params_path, self.out, self.seed = params_path, out, seed
        self.procs: dict[str, subprocess.Popen] = {}
        self.urls: dict[str, str] = {}
        (out / "logs").mkdir(exist_ok=True)
        (out / "ports").mkdir(exist_ok=True)

    def start(self, name: str, argv: list[str], port: int = 0) -> str:
        return self.start_many([(name, argv, port)])[0]

    def start_many(self, services: list[tuple[str, list[str], int]]) -> list[str]:
        """Spawn the services together, then wait for each to listen (start-up runs in parallel)."""
        files = []
        for name, argv, port in services:
            port_file = self.out / "ports" / name
            port_file.unlink(missing_ok=True)
            self.procs[name] = _spawn(name, [*argv, "--params", self.params_path, "--seed", str(self.seed),
                                             "--port", str(port), "--port-file", str(port_file)], self.out)
            files.append(port_file)
        for (name, _, _), port_file in zip(services, files):
            self.urls[name] = _wait_port(port_file, self.procs[name], name)
        return [self.urls[name] for name, _, _ in services]

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        for proc in self.procs.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _up_http(args: argparse.Namespace, params: NodeParams, specs: list[str], out: Path, db: Path) -> dict[str, Any]:
    import aiohttp

    from reference_node.client import Client

    cluster = Cluster(str(args.params), out, args.seed)
    try:
        # every service starts at once: the ledger's and arbiter's free ports are picked here, and a
        # service that comes up before the ledger retries its registration until the ledger listens
        lp, ap = free_port(), free_port()
        ledger, arbiter = f"http://127.0.0.1:{lp}", f"http://127.0.0.1:{ap}"
        urls = cluster.start_many(
            [("ledger", ["ledger", "--db", str(db)], lp), ("arbiter", ["arbiter", "--ledger", ledger], ap)]
            + [(f"verifier-{i}", ["verifier", "--ledger", ledger, "--arbiter", arbiter, "--id", f"verifier-{i}",
                                "--index", str(i), "--count", str(args.verifiers)], 0) for i in range(args.verifiers)]
            + [(f"provider-{i}", ["provider", "--ledger", ledger, "--id", f"provider-{i}", "--strategy", s], 0)
               for i, s in enumerate(specs)])
        verifier_urls, provider_urls = urls[2:2 + args.verifiers], urls[2 + args.verifiers:]

        async def drive() -> dict[str, Any]:
            async with aiohttp.ClientSession() as s:
                async with s.get(f"{ledger}/summary") as r:
                    start = (await r.json())["tasks"] if args.resume else 0
            client = Client(provider_urls, params.reward, seed=args.seed, concurrency=args.concurrency,
                            rate=args.rate)
            bar, update = _progress(args.tasks, args.quiet, "tasks")
            try:
                result = await client.run(args.tasks, start=start, progress=update)
            finally:
                if bar is not None:
                    bar.close()
            async with aiohttp.ClientSession() as s:
                async with s.get(f"{ledger}/summary") as r:
                    committed = (await r.json())["tasks"]
                # wait until every verifier has read the whole feed and is idle
                deadline = time.monotonic() + 300
                while time.monotonic() < deadline:
                    states = []
                    for url in verifier_urls:
                        async with s.get(f"{url}/status") as r:
                            states.append(await r.json())
                    if all(st["idle"] for st in states) and all(
                            st["cursor"] >= committed for st in states):
                        break
                    await asyncio.sleep(0.1)
                window = params.settlement_latency
                async with s.post(f"{ledger}/advance", json={"request_id": f"advance:final:{time.time_ns()}",
                                                             "seconds": window * 2 + 1.0}) as r:
                    await r.read()
                k = 0
                while True:
                    async with s.post(f"{ledger}/settle", json={"request_id": f"settle:final:{time.time_ns()}:{k}",
                                                                "limit": 50_000}) as r:
                        body = await r.json()
                    k += 1
                    if not body.get("more"):
                        break
                for url in verifier_urls:
                    async with s.post(f"{url}/reveal") as r:
                        await r.read()
            return result

        return asyncio.run(drive())
    finally:
        cluster.stop()


def _print_summary(summary: dict[str, Any], out: Path) -> None:
    w = summary["workload"]
    t = summary["totals"]
    rate = w.get("tasks_per_second")
    print(f"run {out}: {t['tasks']} tasks committed, {t['audits']} audits, {t['slashes']} slashes, "
          f"{t['rejected_evidence']} rejected evidence; {rate:,.0f} tasks/s" if rate else f"run {out}")
    print(f"{'strategy':<28} {'tasks':>8} {'audits':>7} {'detect':>7} {'false':>6} {'payoff/task':>12}")
    for name, s in summary["by_strategy"].items():
        pay = s["payoff_per_task"]
        print(f"{name:<28} {s['tasks']:>8} {s['audits']:>7} {s['detections']:>7} {s['false_slashes']:>6} "
              f"{pay if pay is None else f'{pay:.4f}':>12}")
    print(f"paid to providers {t['paid_to_providers']:.2f}, bounties {t['bounties']:.2f}, burned {t['burned']:.2f}; "
          f"event log {out / 'events.jsonl'} ({summary['events']} events), summary {out / 'summary.json'}")


# ----------------------------------------------------------------------------------------
# single services
# ----------------------------------------------------------------------------------------


def cmd_ledger(args: argparse.Namespace) -> int:
    from reference_node.services import ledger_app, serve

    params = _params(args.params)
    ledger = _open_ledger(args.db, params)
    serve(ledger_app(ledger, settle_every=args.settle_every), args.host, args.port, args.port_file)
    return 0


def _open_ledger(path: str, params: NodeParams):
    import sqlite3

    from reference_node.ledger import InvariantError, Ledger

    try:
        return Ledger(path, params)
    except sqlite3.Error as err:
        raise UsageError(f"--db {path}: expected an SQLite ledger database (or a new path in an existing "
                         f"directory), found: {err}") from None
    except InvariantError as err:
        raise UsageError(f"--db {path}: the ledger's state is inconsistent: {err}") from None


def _url(text: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(f"expected an http:// URL, found {text!r}")
    try:
        _ = parts.port
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a valid port in {text!r}") from None
    return text.rstrip("/")


def _nonnegative_float(text: str) -> float:
    if text.strip() in ("0", "0.0"):
        return 0.0
    return _positive_float(text)


def cmd_provider(args: argparse.Namespace) -> int:
    from reference_node.provider import Provider
    from reference_node.services import provider_app, serve

    params = _params(args.params)
    try:
        strategies.check_spec(args.strategy, params.deviation_names)
    except ValueError as err:
        raise UsageError(str(err)) from None
    provider = Provider(args.id, params, args.strategy, args.seed)
    serve(provider_app(provider, args.ledger.rstrip("/"), args.stake), args.host, args.port, args.port_file)
    return 0


def cmd_verifier(args: argparse.Namespace) -> int:
    from reference_node.services import serve, verifier_app
    from reference_node.verifier import Verifier

    params = _params(args.params)
    if not 0 <= args.index < args.count:
        raise UsageError(f"--index: expected 0 ≤ index < --count {args.count}, found {args.index}")
    verifier = Verifier(args.id, params, args.index, args.count, args.seed)
    bond = params.slash if args.bond is None else args.bond
    serve(verifier_app(verifier, args.ledger.rstrip("/"), args.arbiter.rstrip("/"), bond), args.host, args.port,
          args.port_file)
    return 0


def cmd_arbiter(args: argparse.Namespace) -> int:
    from reference_node.arbiter import Arbiter
    from reference_node.services import arbiter_app, serve

    params = _params(args.params)
    serve(arbiter_app(Arbiter(args.id, params, args.seed), args.ledger.rstrip("/")), args.host, args.port,
          args.port_file)
    return 0


def cmd_client(args: argparse.Namespace) -> int:
    from reference_node.client import Client

    params = _params(args.params)
    client = Client([u.rstrip("/") for u in args.provider], params.reward, seed=args.seed,
                    concurrency=args.concurrency, rate=args.rate)
    result = asyncio.run(client.run(args.tasks, start=args.start))
    print(json.dumps(result, indent=2))
    return 0 if result["failed"] == 0 else 1


def cmd_calibrate(args: argparse.Namespace) -> int:
    """Measure the digits models and write the scenario with the measured numbers (reference_node.calibrate)."""
    from reference_node.calibrate import CalibrationError, calibrate

    out = Path(args.out)
    try:
        result = calibrate(args.scenario, args.name or out.stem, args.seed)
    except ScenarioError as err:
        raise UsageError(f"invalid scenario file\n{err}") from None
    except CalibrationError as err:
        raise UsageError(f"{args.scenario}: {err}") from None
    try:
        out.write_text(result.text, encoding="utf-8")
    except OSError as err:
        raise UsageError(f"-o {out}: cannot write the calibrated scenario: {err.strerror or err}") from None
    print(f"wrote {out}: " + "; ".join(f"{k} = {v!r}" for k, v in result.written.items()))
    return 0


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, found {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, found {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, found {text!r}") from None
    if not value > 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive finite number, found {text!r}")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mira-node", description="The mira-theory reference network.")
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp: argparse.ArgumentParser, service: bool = True) -> None:
        sp.add_argument("--params", required=True, help="deployment parameters file (mira-theory export)")
        sp.add_argument("--seed", type=int, default=0)
        if service:
            sp.add_argument("--host", default="127.0.0.1")
            sp.add_argument("--port", type=int, default=0, help="0 picks a free port")
            sp.add_argument("--port-file", default=None, help="write the bound port here once serving")

    up = sub.add_parser("up", help="start every service on loopback, run a workload, shut down")
    common(up, service=False)
    up.add_argument("--providers", type=int, default=8)
    up.add_argument("--verifiers", type=int, default=2)
    up.add_argument("--tasks", type=int, default=10_000)
    up.add_argument("--out", required=True, help="run directory")
    up.add_argument("--mix", default=None, help="strategy=count,... (honest, a deviation, mixed:<dev>:<t>, hedge)")
    up.add_argument("--inprocess", action="store_true", help="same classes in one process, no HTTP")
    up.add_argument("--resume", action="store_true", help="continue the run in --out")
    up.add_argument("--concurrency", type=_count, default=64)
    up.add_argument("--rate", type=_positive_float, default=None, help="tasks per second (default: flat out)")
    up.add_argument("--quiet", action="store_true")
    up.set_defaults(func=cmd_up)

    sp = sub.add_parser("ledger", help="the stake ledger")
    common(sp)
    sp.add_argument("--db", required=True)
    sp.add_argument("--settle-every", type=float, default=0.5)
    sp.set_defaults(func=cmd_ledger)

    sp = sub.add_parser("provider", help="a provider node")
    common(sp)
    sp.add_argument("--ledger", required=True, type=_url)
    sp.add_argument("--id", default="provider-0")
    sp.add_argument("--strategy", default="honest")
    sp.add_argument("--stake", type=_nonnegative_float, default=None, help="default: the exported minimum stake")
    sp.set_defaults(func=cmd_provider)

    sp = sub.add_parser("verifier", help="a verifier node")
    common(sp)
    sp.add_argument("--ledger", required=True, type=_url)
    sp.add_argument("--arbiter", required=True, type=_url)
    sp.add_argument("--id", default="verifier-0")
    sp.add_argument("--index", type=int, default=0)
    sp.add_argument("--count", type=int, default=1)
    sp.add_argument("--bond", type=_positive_float, default=None, help="default: the exported slash")
    sp.set_defaults(func=cmd_verifier)

    sp = sub.add_parser("arbiter", help="the arbiter")
    common(sp)
    sp.add_argument("--ledger", required=True, type=_url)
    sp.add_argument("--id", default="arbiter")
    sp.set_defaults(func=cmd_arbiter)

    sp = sub.add_parser("client", help="a load generator")
    common(sp, service=False)
    sp.add_argument("--provider", action="append", required=True, type=_url, help="provider URL (repeatable)")
    sp.add_argument("--tasks", type=int, default=1000)
    sp.add_argument("--start", type=int, default=0)
    sp.add_argument("--concurrency", type=_count, default=64)
    sp.add_argument("--rate", type=_positive_float, default=None)
    sp.set_defaults(func=cmd_client)

    sp = sub.add_parser("calibrate", help="measure the digits models; write their numbers into a scenario")
    sp.add_argument("scenario", help="an audit or consensus scenario file (TOML)")
    sp.add_argument("-o", "--out", required=True, help="the calibrated scenario file to write")
    sp.add_argument("--name", default=None, help="scenario.name of the output (default: the output file's stem)")
    sp.add_argument("--seed", type=int, default=0, help="seed of the random-output draws")
    sp.set_defaults(func=cmd_calibrate)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except ScenarioError as err:
        print(f"mira-node: invalid parameters file\n{err}", file=sys.stderr)
        return 2
    except UsageError as err:
        print(f"mira-node: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        if isinstance(err, BrokenPipeError):  # output piped into a pager or head that closed early
            return 0
        print(f"mira-node: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mira-node: interrupted; services stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
