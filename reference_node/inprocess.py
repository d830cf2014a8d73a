"""The whole network in one process: the same classes as the services, called directly.

Tasks flow in batches: providers infer and sign, the ledger records the commitments (one
transaction per batch), verifiers audit the batch's commitments, challenges and the
arbiter's verdicts go back to the ledger, and expired windows are settled. The ledger clock
is simulated (it advances by batch / (λ · providers) seconds per batch, the scenario's
throughput), so a seeded run is reproducible event for event and windows of T seconds
close during the run, which keeps memory flat.

Using the other cores. libsodium (:mod:`reference_node.crypto`) releases the GIL, and so does
SQLite while it writes, so on a machine with a second core a run of at least ``PARALLEL_MIN``
tasks signs on a thread pool (:mod:`reference_node.parallel`), and when no node learns from
feedback it is pipelined: a stage thread signs batch k+1, builds its commitments and checks their
signatures as the ledger would, while this thread records batch k (its SQLite transaction written
by the ledger's writer thread, ``Ledger(background=True)``), infers batch k+1 and audits batch k.
With ``worker`` (the default for such runs) the providers run in a child process instead
(:mod:`reference_node.provider_worker`), which also makes the verifiers' audits of each batch and
the ledger's stateless checks of it (``Ledger.check``), while this process applies the batch to
the ledger's state. The operations reach the ledger in the same order as in the sequential run,
and signatures are deterministic, so the event log is identical with and without the pool, the
pipeline and the worker (tests check it); the ledger still verifies every commitment it accepts
when ``verify_signatures`` is on. The run holds OpenBLAS to one thread
(:func:`reference_node.models.one_blas_thread`), which matters when numpy was imported before
this package (``mira-theory experiment``).
"""

from __future__ import annotations

import contextlib
import gc
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from reference_node.arbiter import Arbiter
from reference_node.crypto import SCHEMES
from reference_node.ledger import Ledger, LedgerError, expand_columns
from reference_node.models import one_blas_thread, task_inputs
from reference_node.parallel import CryptoPool
from reference_node.params import NodeParams
from reference_node.provider import Provider, Task, signed_commit_ops
from reference_node.provider_worker import ProviderWorker
from reference_node.verifier import Verifier, audit_batch

EPOCH = 1_800_000_000.0
PARALLEL_MIN = 4096
WORKER_AHEAD = 4  # batches the providers' process may work ahead of the ledger
SWITCH_INTERVAL = 0.0002  # seconds: the thread switch interval during a run (see prompt_thread_switches)
YOUNG_THRESHOLD = 100_000  # the garbage collector's first threshold during a run (see rare_young_collections)


@contextlib.contextmanager
def rare_young_collections(threshold: int = YOUNG_THRESHOLD) -> Iterator[None]:
    """Run the block with the cyclic garbage collector's first threshold raised to ``threshold``
    (restored afterwards). A batch allocates tens of thousands of short-lived dicts and lists that
    reference counting frees; at the default threshold (700) each batch triggers dozens of young
    collections and, through them, full ones over every object the process holds, about 5 % of a
    run's CPU here. Cyclic garbage is still collected, only less often."""
    before = gc.get_threshold()
    gc.set_threshold(max(before[0], threshold), *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


@contextlib.contextmanager
def prompt_thread_switches(interval: float = SWITCH_INTERVAL) -> Iterator[None]:
    """Run the block with the interpreter's thread switch interval at most ``interval`` seconds
    (restored afterwards). The ledger's writer thread needs the GIL for a moment between its SQLite
    statements; while this thread runs Python it waits for the switch interval each time (5 ms by
    default: tens of ms per batch, which this thread then waits for at the next batch's transaction).
    Measured on the 2-core machine: the wait for the writer fell from about 10 to 3 µs per task."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(min(before, interval))
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def make_tasks(providers: int, seed: int | str, fee: float, first: int, count: int) -> dict[int, list[Task]]:
    """Tasks first..first+count of a seeded workload, grouped by the provider that serves each
    (task k goes to provider k mod providers)."""
    inputs = task_inputs(seed, first, count)
    tasks = [Task(task_id(seed, k), x, "client-0", fee) for k, x in zip(range(first, first + count), inputs)]
    return {(first + j) % providers: tasks[j::providers] for j in range(min(providers, count))}


class SimClock:
    def __init__(self, start: float = EPOCH):
        self.t = start

    def __call__(self) -> float:
        return self.t


def task_id(seed: int | str, i: int) -> str:
    return f"t{seed}-{i:09d}"


class Network:
    """Ledger, providers, verifiers and an arbiter wired together in one process."""

    def __init__(self, params: NodeParams, db_path: str | Path, strategies: list[str], verifiers: int = 2,
                 seed: int = 0, verify_signatures: bool = True, bond: float | None = None,
                 parallel: bool | None = None, verifier_learner: Any = None, worker: bool | None = None,
                 signing: str = SCHEMES[0]):
        self.params = params
        self.signing = signing  # the providers' commitment signing scheme (reference_node.crypto)
        # adaptive verifiers (strategies.VerifierHedge): the common q_t is the learner's, set before a
        # batch's commitments are made and updated after its audits; logged on the batch's settle event
        self.verifier_learner = verifier_learner
        self.seed = seed
        self.clock = SimClock()
        self.ledger = Ledger(db_path, params, clock=self.clock, verify_signatures=verify_signatures, background=True)
        # Ed25519 on a thread pool (reference_node.parallel): None = when there is a second
        # core and a run of at least PARALLEL_MIN tasks; the results are identical either way
        self.parallel = parallel
        self.pool: CryptoPool | None = None
        self._stage: ThreadPoolExecutor | None = None  # pipelined runs: signs batch k+1 while k is recorded
        # pipelined runs with a second core: the providers run in a child process (reference_node.
        # provider_worker); None = when it helps (≥ 2 CPUs, a run of at least PARALLEL_MIN tasks)
        self.worker = worker
        self._worker: Any = None
        self._parent_prepared = False  # this process's providers have made tasks (then no worker)
        self.providers = [Provider(f"provider-{i}", params, s, seed, signing=signing) for i, s in enumerate(strategies)]
        self.verifiers = [Verifier(f"verifier-{i}", params, i, verifiers, seed) for i in range(verifiers)]
        self.arbiter = Arbiter("arbiter", params, seed)
        self.by_id = {p.id: p for p in self.providers}
        # the providers whose strategies learn from their payoffs (the others' observe() changes nothing)
        self._learners = {p.id: p for p in self.providers if getattr(p.strategy, "learns", True)}
        bond = params.slash if bond is None else bond
        ops = self.arbiter.register_ops()
        for p in self.providers:
            ops += p.register_ops()
        for v in self.verifiers:
            ops += v.register_ops(bond)
        self._check(self.ledger.execute(ops), "registration")
        self.step = 1.0 / (params.throughput * max(1, len(self.providers)))
        self.committed = self.ledger.task_count()

    @staticmethod
    def _check(results: list[dict], what: str) -> None:
        bad = [r for r in results if not r["ok"] and r.get("status") != 409]
        if bad:
            raise LedgerError(bad[0]["status"], f"{what}: {bad[0]['error']}")

    def run(self, tasks: int, batch: int = 512, progress: Callable[[int], None] | None = None) -> dict[str, Any]:
        with one_blas_thread(), rare_young_collections(), prompt_thread_switches():
            return self._run(tasks, batch, progress)

    def _pipelined(self) -> bool:
        """Can batch k+1 be inferred and signed before batch k is recorded? Only when no node learns:
        then nothing batch k's outcome changes is read by batch k+1's preparation, and the event log
        is the same as in the sequential order (tests/test_node_inprocess.py checks it)."""
        return self.pool is not None and self.verifier_learner is None and \
            not any(getattr(p.strategy, "learns", True) for p in self.providers)

    def _run(self, tasks: int, batch: int, progress: Callable[[int], None] | None) -> dict[str, Any]:
        start = time.perf_counter()
        i = self.committed
        end = self.committed + tasks
        if self.pool is None and (self.parallel or (self.parallel is None and tasks >= PARALLEL_MIN
                                                    and CryptoPool.useful())):
            self.pool = CryptoPool()
        pipelined = self._pipelined()
        # the worker's providers start from the seed: only while this object's own providers have made
        # nothing (their random state would be ahead of the worker's otherwise)
        if pipelined and self._worker is None and not self._parent_prepared and \
                (self.worker or (self.worker is None and tasks >= PARALLEL_MIN)):
            self._worker = ProviderWorker(self.params, [p.spec for p in self.providers], self.seed, self.signing,
                                          len(self.verifiers))
        if pipelined and self._worker is None and self._stage is None:
            self._stage = ThreadPoolExecutor(1, thread_name_prefix="sign-stage")
        # One ledger transaction per batch k: the audits of batch k−1, the arbiter's verdicts, the
        # settlement, and batch k's commitments (the operations in the order a transaction per step
        # would apply them). While the writer thread writes it, this thread audits batch k (the
        # verifiers' selection and re-execution do not read the ledger) and receives batch k+1.
        ahead: Any = None  # pipelined: the future of the next batch's signed commits and signature checks
        fed: list[dict] | None = None  # the previous batch's recorded commitments, not yet audited
        audit: tuple[list[dict], list[dict]] = ([], [])
        previous, previous_n = 0, 0  # the previous batch's first task and its size
        submitted = i  # the worker's batches are submitted up to this task
        while i < end or fed is not None:
            n = min(batch, end - i)
            more = i + n < end
            ready: Any = None  # this batch's commit operations and their signature checks, if made already
            audited: Any = None  # the worker's audits of this batch's commitments (when all are recorded)
            if n > 0 and self._worker is not None:
                # the providers' process works up to WORKER_AHEAD batches ahead (its pipe holds them), and
                # the pool checks batch k+1's signatures while batch k is recorded and audited here
                submitted = max(submitted, i)
                while submitted < min(end, i + WORKER_AHEAD * batch):
                    self._worker.submit(submitted, min(batch, end - submitted))
                    submitted += min(batch, end - submitted)
                if ahead is None:
                    ahead = self._received()
                ops, checks, audited, columns = ahead
                ready = (ops, checks.result() if checks is not None else None,
                         expand_columns(ops, columns) if columns is not None else self.ledger.check(ops))
                ahead = self._received() if more else None
            elif n > 0 and pipelined:
                if ahead is None:
                    ahead = self._stage.submit(self._complete, self._prepare(i, n))
                ready = ahead.result()
                ahead = None
                if more:  # this thread infers the batch after, and the stage signs it
                    ahead = self._stage.submit(self._complete, self._prepare(i + n, min(batch, end - i - n)))
                ready = (*ready, self.ledger.check(ready[0]))  # the ledger's stateless checks, beside the writer
            with self.ledger.transaction():
                if fed is not None:
                    self._settle(previous, previous_n, fed, *audit)
                fed = None
                if n > 0:
                    rate = None
                    if self.verifier_learner is not None:
                        rate = float(self.verifier_learner.rate())
                        for v in self.verifiers:
                            v.rate = rate
                    if ready is None:  # learning nodes: made now, after the feedback of the batch before
                        ready = self._complete(self._prepare(i, n))
                    fed = self._record(*ready)
                    self._rate = rate
            if fed is not None:
                # beside the writer thread; the worker's audits are those of the batch it made, so they
                # serve when the ledger recorded every commitment of it
                audit = audited if audited is not None and len(fed) == len(ready[0]) else self._audit_ops(fed)
                previous, previous_n = i, n
                i += n
                if progress:
                    progress(n)
        self.committed = end  # a further run continues the workload after these tasks
        elapsed = time.perf_counter() - start
        return {"tasks": tasks, "seconds": elapsed, "tasks_per_second": tasks / elapsed if elapsed else None}

    def _received(self) -> tuple[list[dict], Any, tuple[list[dict], list[dict]], list]:
        """The worker's next batch, the future of the ledger's signature checks of it (or None), the
        verifiers' audits of it, and the costly part of the ledger's stateless checks of it
        (ledger.check_columns, or None)."""
        ops, audited, columns = self._worker.result()
        if not self.ledger.verify_signatures:
            return ops, None, audited, columns
        return ops, self.pool.submit_verify(self.ledger.verify_jobs(ops)), audited, columns

    def _prepare(self, i: int, n: int) -> list[tuple[Provider, Any]]:
        """Every provider runs its share of tasks i..i+n (outputs and the messages to sign)."""
        self._parent_prepared = True
        groups = make_tasks(len(self.providers), self.seed, self.params.reward, i, n)
        return [(self.providers[pi], self.providers[pi].prepare(ts)) for pi, ts in groups.items()]

    def _complete(self, prepared: list[tuple[Provider, Any]]) -> tuple[list[dict], list[bool] | None]:
        """Sign a prepared batch (on the pool, if any), and check its signatures as the ledger would
        (None: the ledger checks them inline). Pipelined runs call this on the stage thread."""
        ops = signed_commit_ops(prepared, self.seed, self.pool)
        verified = None
        if self.pool is not None and self.ledger.verify_signatures:
            verified = self.pool.verify(self.ledger.verify_jobs(ops))
        return ops, verified

    def _record(self, ops: list[dict], verified: list[bool] | None, checked: list | None = None) -> list[dict]:
        results = self.ledger.execute(ops, verified=verified, checked=checked)
        fed = []
        learners = self._learners
        for op, res in zip(ops, results):
            if res["ok"]:
                if learners and not res.get("replayed") and (p := learners.get(op["provider"])) is not None:
                    p.committed(op["action"], op["fee"])
                fed.append(op)
        return fed

    def _audit_ops(self, commitments: list[dict]) -> tuple[list[dict], list[dict]]:
        """The verifiers' audit records and challenges of a batch's commitments, and their evidence
        (the verifiers re-execute here; nothing is read from the ledger)."""
        return audit_batch(self.verifiers, commitments)

    def _settle(self, first: int, n: int, fed: list[dict], ops: list[dict], evidence: list[dict]) -> None:
        """A batch's audits and challenges, the arbiter's verdicts, then (the clock moved on by the
        batch's duration) the settlement of the windows that closed."""
        if ops:
            results = self.ledger.execute(ops)
            challenged = {op["task_id"] for op, r in zip(ops, results) if op["op"] == "challenge" and r["ok"]}
            resolves = []
            for ev in evidence:
                if ev["task_id"] not in challenged:
                    continue
                try:
                    resolves.append(self.arbiter.judge(ev, self.ledger.task, self.ledger.pubkey))
                except LedgerError:
                    continue
            if resolves:
                for r in self.ledger.execute(resolves):
                    if r["ok"] and not r.get("replayed") and r.get("verdict") == "upheld":
                        p = self.by_id.get(r["provider"])
                        if p is not None:
                            p.slashed(r.get("action") or "honest", r["slash"], r["refund"])
        settle: dict[str, Any] = {"op": "settle", "request_id": f"settle:{self.seed}:{first}"}
        if self.verifier_learner is not None:
            counts: dict[str, int] = {}
            for op in fed:
                counts[op["action"]] = counts.get(op["action"], 0) + 1
            self.verifier_learner.observe(counts)
            settle["sampling_rate"] = self._rate
        self.clock.t += n * self.step  # the batch's duration at the scenario's throughput
        self.ledger.execute([settle])

    def finish(self) -> None:
        """Close every window and release matured withdrawals; verifiers reveal their secrets."""
        self.ledger.execute([{"op": "advance", "request_id": f"advance:final:{self.seed}:{self.ledger.seq}",
                              "seconds": self.ledger.window + self.ledger.unbonding + 1.0}])
        self.clock.t += 0.0
        k = 0
        while True:
            r = self.ledger.execute([{"op": "settle", "request_id": f"settle:final:{self.seed}:{self.ledger.seq}:{k}",
                                      "limit": 50_000}])[0]
            k += 1
            if not r.get("more"):
                break
        self.ledger.execute([v.reveal_op() for v in self.verifiers])
        self.ledger.check_invariant(full=True)

    def close(self) -> None:
        if self._worker is not None:
            self._worker.close()
            self._worker = None
        if self._stage is not None:
            self._stage.shutdown(wait=True)
            self._stage = None
        if self.pool is not None:
            self.pool.close()
            self.pool = None
        self.ledger.close()
