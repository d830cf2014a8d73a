"""The in-process network's nodes in a second process, so their work runs beside the ledger's.

A :class:`reference_node.inprocess.Network` whose nodes do not learn (their choices do not
depend on feedback) hands them to a :class:`ProviderWorker`: a child process (``python -m
reference_node.provider_worker``) that builds the same :class:`~reference_node.provider.Provider`
and :class:`~reference_node.verifier.Verifier` objects from the same (params, strategies, seed),
and for each batch generates the tasks, runs the models, signs the commitments and returns the
commit operations, with the verifiers' audits of them (:func:`reference_node.verifier.audit_batch`)
and the costly part of the ledger's stateless checks of them
(:func:`reference_node.ledger.check_columns`: the forms, the request digests, the hashes;
:meth:`~reference_node.ledger.Ledger.check` is a pure function of the operations, and the ledger
accepts it computed elsewhere as ``execute(ops, checked=...)``), while the parent records the
previous batch and settles. The parent uses the audits when the ledger recorded the whole batch
(a task's audit depends on that task alone), and otherwise audits what it recorded itself. Everything that reads
or changes the ledger's state (replays, accounts, stake, signatures when it verifies them, the
invariant) stays in the parent; the in-process network is one trust domain (its sequential mode
runs all of it in one process), and this process only spreads its work over a second core. Everything a node does is a deterministic function of (params,
strategies, seed, the task sequence), so the operations are byte for byte those the parent's own
nodes would make (tests/test_node_inprocess.py compares the event logs). The verifiers' secrets
are in this process as they are in the parent's: the providers' code never reads them, and what
a verifier audited is checkable against its revealed secret. Why a process and not threads: the
nodes' work is mostly Python (task generation, hashing, building the operations) that holds the
GIL, and so is the ledger's; two threads of it take turns on one core.

Protocol: pickle over the child's stdin/stdout. ``("init", params, strategies, seed, signing,
verifiers)`` → ``("ok", [])``, then ``("batch", first, count)`` → ``("ok", (ops, (audit operations,
evidence), columns))`` (``columns``: check_columns' result, None when the batch needs the
operation-by-operation check); any failure → ``("error", message)``; ``("stop",)`` or the end of
its stdin ends it.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from typing import Any

from reference_node.crypto import SCHEMES

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


PIPE_BYTES = 1 << 20  # the pipe from the worker: several batches of operations (≈ 220 kB each)


def _widen(pipe: Any) -> None:
    """Enlarge a pipe's kernel buffer to PIPE_BYTES where the system allows it (Linux; else as it is)."""
    try:
        import fcntl

        fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    except (ImportError, AttributeError, OSError):
        pass


class WorkerError(RuntimeError):
    """The provider worker failed or died; the message says how."""


class ProviderWorker:
    def __init__(self, params: Any, strategies: list[str], seed: int | str, signing: str = SCHEMES[0],
                 verifiers: int = 0):
        # a fresh interpreter running this module (not multiprocessing: its spawn re-imports the
        # caller's __main__, and fork would copy a process holding SQLite connections and threads)
        # its own session: a Ctrl-C reaches the parent, which stops it by closing its stdin
        self._proc = subprocess.Popen([sys.executable, "-m", "reference_node.provider_worker"], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, cwd=_ROOT, start_new_session=True)
        self._outstanding = 0
        _widen(self._proc.stdout)  # the batches the worker runs ahead wait in the pipe, not in the worker
        try:
            self._send(("init", params, list(strategies), seed, signing, verifiers))
            self._outstanding = 1
            self.result()  # the providers are built (or their error is raised here)
        except BaseException:
            self._proc.kill()
            self._proc.wait()
            raise

    def _send(self, message: tuple) -> None:
        try:
            pickle.dump(message, self._proc.stdin, protocol=pickle.HIGHEST_PROTOCOL)
            self._proc.stdin.flush()
        except (OSError, ValueError) as err:
            raise WorkerError(f"provider worker: cannot send ({err})") from err

    def submit(self, first: int, count: int) -> None:
        """Start batch [first, first + count) (results come back in submission order)."""
        self._send(("batch", first, count))
        self._outstanding += 1

    def result(self) -> Any:
        """The oldest submitted batch's commit operations, in the order the network makes them, the
        verifiers' audits of them (audit operations, evidence), and the ledger's check_columns of them."""
        try:
            status, payload = pickle.load(self._proc.stdout)
        except (EOFError, OSError, pickle.UnpicklingError) as err:
            raise WorkerError(f"provider worker died (exit status {self._proc.poll()})") from err
        self._outstanding -= 1
        if status != "ok":
            raise WorkerError(f"provider worker: {payload}")
        return payload

    def close(self) -> None:
        proc = self._proc
        try:
            while self._outstanding > 0:
                self.result()
            self._send(("stop",))
        except WorkerError:
            pass
        for f in (proc.stdin, proc.stdout):
            try:
                f.close()
            except OSError:
                pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _serve(rx: Any, tx: Any) -> None:
    from reference_node.inprocess import make_tasks
    from reference_node.ledger import check_columns
    from reference_node.provider import Provider, signed_commit_ops
    from reference_node.verifier import Verifier, audit_batch

    providers: list[Provider] = []
    verifiers: list[Verifier] = []
    known: set[str] = set()  # check_columns' cache of well-formed ids
    seed: Any = None
    fee = 0.0
    while True:
        try:
            message = pickle.load(rx)
        except EOFError:
            return
        kind = message[0]
        if kind == "stop":
            return
        try:
            if kind == "init":
                _, params, strategies, seed, signing, count = message
                providers = [Provider(f"provider-{i}", params, s, seed, signing=signing)
                             for i, s in enumerate(strategies)]
                verifiers = [Verifier(f"verifier-{i}", params, i, count, seed) for i in range(count)]
                fee = params.reward
                reply: tuple = ("ok", [])
                pickle.dump(reply, tx, protocol=pickle.HIGHEST_PROTOCOL)
                tx.flush()
                continue
            _, first, count = message
            prepared = [(providers[pi], providers[pi].prepare(tasks))
                        for pi, tasks in make_tasks(len(providers), seed, fee, first, count).items()]
            ops = signed_commit_ops(prepared, seed)
            reply = ("ok", (ops, audit_batch(verifiers, ops), check_columns(ops, known)))
        except Exception as err:  # reported to the parent, which raises it
            reply = ("error", f"{type(err).__name__}: {err}")
        pickle.dump(reply, tx, protocol=pickle.HIGHEST_PROTOCOL)
        tx.flush()


if __name__ == "__main__":
    from reference_node.inprocess import rare_young_collections

    with rare_young_collections():
        _serve(sys.stdin.buffer, sys.stdout.buffer)
