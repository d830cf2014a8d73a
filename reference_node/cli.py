"""``mira-node``: run the reference network, or one of its services alone.

    mira-node up --params p.json --providers 8 --verifiers 2 --tasks 10000 --out runs/NAME
                 [--mix honest=6,weaker-model=2] [--signing merkle|single] [--seed S] [--inprocess] [--quiet]
    mira-node ledger   --params p.json --db ledger.sqlite [--host 127.0.0.1] [--port 0]
    mira-node provider --params p.json --ledger URL --id provider-0 [--strategy honest] [--signing merkle|single]
    mira-node verifier --params p.json --ledger URL --arbiter URL --id verifier-0 --index 0 --count 2
    mira-node arbiter  --params p.json --ledger URL
    mira-node client   --params p.json --provider URL [--provider URL ...] --tasks N
    mira-node calibrate SCENARIO.toml -o OUT.toml [--name NAME] [--seed S]

The consensus game (a params file exported from a consensus scenario):

    mira-node up --params c.json --nodes 10 --claims 2000 --out runs/NAME
                 [--mix honest=9,random-guess=1] [--models seeded|digits] [--withhold node-3=0.5]
                 [--batch 128] [--inflight 3] [--timeout 10] [--seed S] [--inprocess] [--quiet]
    mira-node ledger         --params c.json --db ledger.sqlite      (serves the CommitteeLedger)
    mira-node committee-node --params c.json --ledger URL --id node-0 --index 0 [--strategy honest]
                             [--models seeded|digits] [--stake X] [--withhold P]
    mira-node committee-client --params c.json --ledger URL --node URL [--node URL ...] --claims N

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
from reference_node.crypto import SCHEMES
from reference_node.params import NodeParams, load

SIGNING_HELP = ("how providers sign commitments: merkle (one Ed25519 signature per Merkle root of up to 16, "
                "each task with its inclusion path; the default) or single (one per task)")


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


def _game(path: str) -> Any:
    from reference_node.params import _peek_game

    return _peek_game(str(path))


def cmd_up(args: argparse.Namespace) -> int:
    if _game(args.params) == "consensus":
        return cmd_up_consensus(args)
    if args.nodes is not None or args.claims is not None:
        raise UsageError("--nodes and --claims are options of a consensus run (a params file of the consensus "
                         "game); this params file is of the audit game: use --providers and --tasks")
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
            "tasks": args.tasks, "seed": args.seed, "mode": "inprocess" if args.inprocess else "http",
            "signing": args.signing}
    workload, interrupted = _interruptible(lambda: _up_inprocess(args, params, specs, db) if args.inprocess
                                           else _up_http(args, params, specs, out, db))
    if not db.exists():
        return 130 if interrupted else 1
    n = events.export_jsonl(db, out / "events.jsonl")
    summary = {"run": meta, "workload": workload, "events": n, **events.summarize(events.iter_events(db))}
    summary["predictions"] = params.predictions.get("deviations"), params.predictions.get("honest")
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    _print_summary(summary, out)
    return 130 if interrupted else 0


def _interruptible(run: Any) -> tuple[dict[str, Any], bool]:
    """(the run's workload, False), or on Ctrl-C ({"interrupted": True}, True): the services are
    already stopped then, and the caller keeps and exports what was committed."""
    try:
        return run(), False
    except KeyboardInterrupt:
        print("mira-node: interrupted; services stopped; exporting the events committed so far", file=sys.stderr)
        return {"interrupted": True}, True


def _up_inprocess(args: argparse.Namespace, params: NodeParams, specs: list[str], db: Path) -> dict[str, Any]:
    from reference_node.inprocess import Network

    net = Network(params, db, specs, args.verifiers, args.seed, signing=args.signing)
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
            + [(f"provider-{i}", ["provider", "--ledger", ledger, "--id", f"provider-{i}", "--strategy", s,
                                  "--signing", args.signing], 0) for i, s in enumerate(specs)])
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
# up: the consensus game
# ----------------------------------------------------------------------------------------


def _committee_params(path: str):
    from mira_theory.scenario import Problem
    from reference_node.committee import CommitteeParams

    try:
        return CommitteeParams.from_doc(path)
    except ScenarioError as err:
        if any(p.key == "game" for p in err.problems):
            raise
        raise ScenarioError([Problem(str(path), "game", "the parameters of the game the file names (game = "
                                     "'consensus': committee_size, threshold, window, agreement_threshold, "
                                     "slash, reward; see below)", "'consensus'"), *err.problems]) from None


def _consensus_mix(text: str | None, deviations: list[str], nodes: int | None, size: int) -> list[str]:
    if not text:
        n = nodes if nodes is not None else 2 * size
        return ["honest"] * n
    out: list[str] = []
    for item in text.split(","):
        name, sep, count = item.strip().partition("=")
        name = name.strip()
        if not sep or not count.strip().isdigit():
            raise UsageError(f"--mix item {item!r}: expected STRATEGY=COUNT with a non-negative integer count")
        if name != "honest" and name not in deviations:
            raise UsageError(f"--mix item {item!r}: expected honest or a deviation of the params file "
                             f"({', '.join(deviations) or 'none'}), found {name!r}")
        out += [name] * int(count)
    if nodes is not None and len(out) != nodes:
        raise UsageError(f"--mix: expected counts summing to --nodes {nodes}, found {len(out)}")
    return out


def _withhold(text: str | None, nodes: int) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        name, sep, value = item.strip().partition("=")
        try:
            p = float(value)
        except ValueError:
            p = float("nan")
        if not sep or not 0 <= p <= 1:
            raise UsageError(f"--withhold item {item!r}: expected NODE=PROBABILITY with a probability in [0, 1]")
        if name not in {f"node-{i}" for i in range(nodes)}:
            raise UsageError(f"--withhold item {item!r}: expected a node among node-0..node-{nodes - 1}, "
                             f"found {name!r}")
        out[name] = p
    return out


def cmd_up_consensus(args: argparse.Namespace) -> int:
    from reference_node.committee import default_stake, summarize_committee

    cp = _committee_params(args.params)
    if args.resume:
        raise UsageError("--resume: not built for consensus runs (start a new --out)")
    if args.nodes is not None and args.nodes < cp.committee_size:
        raise UsageError(f"--nodes: expected at least the committee size {cp.committee_size}, found {args.nodes}")
    specs = _consensus_mix(args.mix, list(cp.deviations), args.nodes, cp.committee_size)
    if len(specs) < cp.committee_size:
        raise UsageError(f"--mix: expected at least the committee size {cp.committee_size} nodes, found {len(specs)}")
    claims = args.claims if args.claims is not None else args.tasks
    if claims < 1:
        raise UsageError(f"--claims: expected a positive number of claims, found {claims}")
    if args.models == "digits" and not 2 <= cp.options <= 10:
        raise UsageError(f"--models digits: claims are built from the 10 digits, so the params' claim options "
                         f"must be 2..10, found {cp.options}")
    withhold = _withhold(args.withhold, len(specs))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    db = out / "ledger.sqlite"
    if db.exists():
        raise UsageError(f"{db} exists: choose a new --out")
    stake = default_stake(cp, claims, len(specs))
    counts: dict[str, int] = {}
    for sp in specs:
        counts[sp] = counts.get(sp, 0) + 1
    meta = {"params": str(args.params), "game": "consensus", "scenario": cp.scenario,
            "scenario_sha256": cp.scenario_sha256, "nodes": {f"node-{i}": sp for i, sp in enumerate(specs)},
            "mix": counts, "claims": claims, "seed": args.seed, "models": args.models, "stake": stake,
            "withhold": withhold, "committee_size": cp.committee_size, "quorum": cp.quorum, "window": cp.window,
            "required": cp.required, "mode": "inprocess" if args.inprocess else "http"}
    workload, interrupted = _interruptible(
        lambda: _up_consensus_inprocess(args, cp, specs, claims, withhold, db) if args.inprocess
        else _up_consensus_http(args, cp, specs, claims, withhold, stake, out, db))
    if not db.exists():
        return 130 if interrupted else 1
    n = events.export_jsonl(db, out / "events.jsonl")
    summary = {"run": meta, "workload": workload, "events": n, **summarize_committee(events.iter_events(db))}
    summary["predictions"] = _consensus_predictions(args.params, cp, counts)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    _print_consensus_summary(summary, out)
    if interrupted:
        return 130
    return 0 if workload.get("failed", 0) == 0 else 1


def _consensus_predictions(path: str, cp: Any, counts: dict[str, int]) -> dict[str, Any]:
    """The exported predictions (committees with at most one deviator) and the model at this run's
    population (:func:`mira_theory.experiment_consensus.population_predictions`)."""
    from mira_theory.experiment_consensus import population_predictions

    doc = json.loads(Path(path).read_text(encoding="utf-8-sig")) if not str(path).endswith(".toml") else None
    if doc is None:
        import tomllib

        doc = tomllib.loads(Path(path).read_text(encoding="utf-8-sig"))
    try:
        population = population_predictions(cp, counts)
    except ScenarioError as err:  # too many committee compositions to average over
        population = {"skipped": str(err)}
    return {"exported": doc.get("predictions"), "population": population}


def _up_consensus_inprocess(args: argparse.Namespace, cp: Any, specs: list[str], claims: int,
                            withhold: dict[str, float], db: Path) -> dict[str, Any]:
    from reference_node.committee import run_committee

    bar, update = _progress(claims, args.quiet, "claims")
    last = [0]

    def progress(done: int) -> None:
        if update is not None:
            update(done - last[0])
            last[0] = done
    try:
        return run_committee(cp, db, specs, claims, args.seed, progress=progress, models=args.models,
                             withhold=withhold)
    finally:
        if bar is not None:
            bar.close()


def _up_consensus_http(args: argparse.Namespace, cp: Any, specs: list[str], claims: int, withhold: dict[str, float],
                       stake: float, out: Path, db: Path) -> dict[str, Any]:
    from reference_node.committee_services import Coordinator

    cluster = Cluster(str(args.params), out, args.seed)
    try:
        # the ledger's free port is picked here; a node that comes up before the ledger retries its
        # registration until the ledger listens
        lp = free_port()
        ledger = f"http://127.0.0.1:{lp}"
        urls = cluster.start_many(
            [("ledger", ["ledger", "--db", str(db)], lp)]
            + [(f"node-{i}", ["committee-node", "--ledger", ledger, "--id", f"node-{i}", "--index", str(i),
                              "--strategy", sp, "--models", args.models, "--stake", repr(stake),
                              "--withhold", repr(withhold.get(f"node-{i}", 0.0))], 0)
               for i, sp in enumerate(specs)])
        coordinator = Coordinator(cp, ledger, urls[1:], args.seed, models=args.models, batch=args.batch,
                                  concurrency=args.inflight, timeout=args.timeout,
                                  ids=[f"node-{i}" for i in range(len(specs))])
        bar, update = _progress(claims, args.quiet, "claims")
        try:
            return asyncio.run(coordinator.run(claims, progress=update))
        finally:
            if bar is not None:
                bar.close()
    finally:
        cluster.stop()


def _print_consensus_summary(summary: dict[str, Any], out: Path) -> None:
    w, o = summary["workload"], summary["outcomes"]
    rate = w.get("claims_per_second")
    slashes = sum(s["slashes"] for s in summary["by_strategy"].values())
    print(f"run {out}: {summary['claims']} claims decided (correct {o['correct']}, wrong {o['wrong']}, "
          f"no consensus {o['none']}), {slashes} slashes" + (f"; {rate:,.0f} claims/s" if rate else ""))
    print(f"{'strategy':<20} {'nodes':>6} {'votes':>8} {'unrevealed':>10} {'agreement':>10} {'windows':>8} "
          f"{'slashes':>8} {'payoff/claim':>13}")
    for name, s in summary["by_strategy"].items():
        ag, pay = s["agreement_rate"], s["payoff_per_claim"]
        print(f"{name:<20} {s['nodes']:>6} {s['votes']:>8} {s['unrevealed']:>10} "
              f"{'-' if ag is None else f'{ag:.4f}':>10} {s['windows']:>8} {s['slashes']:>8} "
              f"{'-' if pay is None else f'{pay:.4f}':>13}")
    print(f"event log {out / 'events.jsonl'} ({summary['events']} events), summary {out / 'summary.json'}")


# ----------------------------------------------------------------------------------------
# single services
# ----------------------------------------------------------------------------------------


def cmd_ledger(args: argparse.Namespace) -> int:
    from reference_node.services import ledger_app, serve

    if _game(args.params) == "consensus":
        from reference_node.committee_services import committee_ledger_app

        cp = _committee_params(args.params)
        serve(committee_ledger_app(_open_ledger(args.db, cp)), args.host, args.port, args.port_file)
        return 0
    params = _params(args.params)
    ledger = _open_ledger(args.db, params)
    serve(ledger_app(ledger, settle_every=args.settle_every), args.host, args.port, args.port_file)
    return 0


def _open_ledger(path: str, params: Any):
    import sqlite3

    from reference_node.committee import CommitteeLedger, CommitteeParams
    from reference_node.ledger import InvariantError, Ledger

    try:
        if isinstance(params, CommitteeParams):
            # every vote is two signatures to check: on a pool of threads (a second core), which
            # GroupCommit's batches keep busy (same results as inline: reference_node.parallel)
            from reference_node.parallel import CryptoPool

            return CommitteeLedger(path, params, crypto_pool=CryptoPool() if CryptoPool.useful() else None)
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
    provider = Provider(args.id, params, args.strategy, args.seed, signing=args.signing)
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


def cmd_committee_node(args: argparse.Namespace) -> int:
    from reference_node.committee_services import committee_node_app, node_for
    from reference_node.services import serve

    cp = _committee_params(args.params)
    if args.strategy != "honest" and args.strategy not in cp.deviations:
        raise UsageError(f"--strategy: expected honest or a deviation of the params file "
                         f"({', '.join(cp.deviations) or 'none'}), found {args.strategy!r}")
    if args.index < 0:
        raise UsageError(f"--index: expected the node's index in the network (≥ 0), found {args.index}")
    if not 0 <= args.withhold <= 1:
        raise UsageError(f"--withhold: expected a probability in [0, 1], found {args.withhold}")
    try:
        node, models = node_for(cp, args.seed, args.id, args.index, args.strategy, args.models, args.withhold)
    except ValueError as err:
        raise UsageError(f"--models {args.models}: {err}") from None
    stake = cp.slash * 10 if args.stake is None else args.stake
    serve(committee_node_app(node, models, args.ledger.rstrip("/"), stake), args.host, args.port, args.port_file)
    return 0


def cmd_committee_client(args: argparse.Namespace) -> int:
    from reference_node.committee_services import Coordinator

    cp = _committee_params(args.params)
    try:
        coordinator = Coordinator(cp, args.ledger, args.node, args.seed, models=args.models, batch=args.batch,
                                  concurrency=args.inflight, timeout=args.timeout)
    except ValueError as err:
        raise UsageError(str(err)) from None
    result = asyncio.run(coordinator.run(args.claims))
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
    up.add_argument("--signing", choices=SCHEMES, default=SCHEMES[0], help=SIGNING_HELP)
    up.add_argument("--resume", action="store_true", help="continue the run in --out")
    up.add_argument("--concurrency", type=_count, default=64)
    up.add_argument("--rate", type=_positive_float, default=None, help="tasks per second (default: flat out)")
    up.add_argument("--quiet", action="store_true")
    cg = up.add_argument_group("consensus game (a params file of game 'consensus')")
    cg.add_argument("--nodes", type=_count, default=None, help="committee nodes (default: the --mix total, else "
                    "twice the committee size)")
    cg.add_argument("--claims", type=_count, default=None, help="claims to decide (default: --tasks)")
    cg.add_argument("--models", choices=("seeded", "digits"), default="seeded",
                    help="the nodes' models: seeded stand-ins (the theory's error law) or the digits verifiers")
    cg.add_argument("--withhold", default=None, help="NODE=P,...: node withholds each reveal with probability P")
    cg.add_argument("--batch", type=_count, default=128, help="claims per coordinator batch")
    cg.add_argument("--inflight", type=_count, default=3, help="coordinator batches in flight")
    cg.add_argument("--timeout", type=_positive_float, default=10.0,
                    help="seconds a member has to seal, and to reveal, before its seat counts as absent/unrevealed")
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
    sp.add_argument("--signing", choices=SCHEMES, default=SCHEMES[0], help=SIGNING_HELP)
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

    sp = sub.add_parser("committee-node", help="a committee verifier node (consensus game)")
    common(sp)
    sp.add_argument("--ledger", required=True, type=_url)
    sp.add_argument("--id", default="node-0")
    sp.add_argument("--index", type=int, default=0, help="the node's index i in the network (digits: verifier-(i mod K))")
    sp.add_argument("--strategy", default="honest", help="honest or a deviation of the params file")
    sp.add_argument("--models", choices=("seeded", "digits"), default="seeded")
    sp.add_argument("--stake", type=_positive_float, default=None, help="default: 10 slashes")
    sp.add_argument("--withhold", type=float, default=0.0, help="probability of withholding each reveal")
    sp.set_defaults(func=cmd_committee_node)

    sp = sub.add_parser("committee-client", help="the claims coordinator (consensus game)")
    common(sp, service=False)
    sp.add_argument("--ledger", required=True, type=_url)
    sp.add_argument("--node", action="append", required=True, type=_url,
                    help="committee-node URL, in network order (repeatable)")
    sp.add_argument("--claims", type=_count, default=1000)
    sp.add_argument("--models", choices=("seeded", "digits"), default="seeded")
    sp.add_argument("--batch", type=_count, default=128)
    sp.add_argument("--inflight", type=_count, default=3)
    sp.add_argument("--timeout", type=_positive_float, default=10.0)
    sp.set_defaults(func=cmd_committee_client)

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
