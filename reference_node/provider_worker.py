"""The in-process network's providers in a second process, so their work runs beside the ledger's.

A :class:`reference_node.inprocess.Network` whose providers do not learn (their choices do not
depend on feedback) hands them to a :class:`ProviderWorker`: a child process (``python -m
reference_node.provider_worker``) that builds the same :class:`~reference_node.provider.Provider`
objects from the same (params, strategies, seed), and for each batch generates the tasks, runs
the models, signs the commitments and returns the commit operations, while the parent records
the previous batch, audits it and settles. Everything a provider does is a deterministic
function of (params, strategy, seed, the task sequence), so the operations are byte for byte
those the parent's own providers would make (tests/test_node_inprocess.py compares the event
logs). Why a process and not threads: the providers' work is mostly Python (task generation,
hashing, building the operations) that holds the GIL, and so is the ledger's; two threads of it
take turns on one core.

Protocol: pickle over the child's stdin/stdout. ``("init", params, strategies, seed)`` → ``("ok", [])``,
then ``("batch", first, count)`` → ``("ok", ops)``; any failure → ``("error", message)``;
``("stop",)`` or the end of its stdin ends it.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from typing import Any

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
    def __init__(self, params: Any, strategies: list[str], seed: int | str):
        # a fresh interpreter running this module (not multiprocessing: its spawn re-imports the
        # caller's __main__, and fork would copy a process holding SQLite connections and threads)
        # its own session: a Ctrl-C reaches the parent, which stops it by closing its stdin
        self._proc = subprocess.Popen([sys.executable, "-m", "reference_node.provider_worker"], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, cwd=_ROOT, start_new_session=True)
        self._outstanding = 0
        _widen(self._proc.stdout)  # the batches the worker runs ahead wait in the pipe, not in the worker
        try:
            self._send(("init", params, list(strategies), seed))
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

    def result(self) -> list[dict]:
        """The commit operations of the oldest submitted batch, in the order the network makes them."""
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
    from reference_node.provider import Provider, signed_commit_ops

    providers: list[Provider] = []
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
                _, params, strategies, seed = message
                providers = [Provider(f"provider-{i}", params, s, seed) for i, s in enumerate(strategies)]
                fee = params.reward
                reply: tuple = ("ok", [])
                pickle.dump(reply, tx, protocol=pickle.HIGHEST_PROTOCOL)
                tx.flush()
                continue
            _, first, count = message
            prepared = [(providers[pi], providers[pi].prepare(tasks))
                        for pi, tasks in make_tasks(len(providers), seed, fee, first, count).items()]
            reply = ("ok", signed_commit_ops(prepared, seed))
        except Exception as err:  # reported to the parent, which raises it
            reply = ("error", f"{type(err).__name__}: {err}")
        pickle.dump(reply, tx, protocol=pickle.HIGHEST_PROTOCOL)
        tx.flush()


if __name__ == "__main__":
    from reference_node.inprocess import rare_young_collections

    with rare_young_collections():
        _serve(sys.stdin.buffer, sys.stdout.buffer)
