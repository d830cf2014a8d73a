"""Ed25519 work split between this process and a helper process (the in-process network's second core).

Signing and verifying are the bulk of an in-process task's CPU (MEASURED.md: ~37 µs to sign,
~120 µs to verify), and ``cryptography`` holds the GIL while it computes, so threads do not
help. A :class:`CryptoPool` owns one helper process (``python -m reference_node.parallel``: it imports only this
module and ``cryptography``) and splits each batch: the helper takes a share of the messages while
this process does the rest, then the halves are joined in order. Ed25519 signatures are
deterministic and verification is a pure function of (key, signature, message), so the
results are exactly those of doing all the work here: a seeded run is reproducible event for
event whether or not the helper is used, and how the work was split leaves no trace.

The helper is started lazily and used only for batches of at least ``min_batch`` messages;
if it cannot start or dies, the work is done here (correctness never depends on it).
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import time
from typing import Any

from reference_node import crypto

SignJob = tuple[str, str, list[bytes]]          # (seed, key name, messages)
VerifyJob = tuple[str, str, bytes]             # (public key hex, signature hex, message)


def sign_jobs(jobs: list[SignJob], keys: dict[tuple[str, str], crypto.Key]) -> list[list[str]]:
    out = []
    for seed, name, messages in jobs:
        key = keys.get((seed, name))
        if key is None:
            key = keys[(seed, name)] = crypto.Key(seed, name)
        out.append(key.sign_many(messages))
    return out


def verify_jobs(jobs: list[VerifyJob], keys: dict[str, Any]) -> list[bool]:
    out = []
    verify = crypto.verify
    for pub, sig, message in jobs:
        key = keys.get(pub)
        if key is None:
            key = keys[pub] = crypto.public_key(pub)
        out.append(key is not None and verify(key, sig, message))
    return out


def _serve(rx: Any, tx: Any) -> None:
    sign_keys: dict[tuple[str, str], crypto.Key] = {}
    verify_keys: dict[str, Any] = {}
    while True:
        try:
            kind, jobs = pickle.load(rx)
        except EOFError:
            return
        if kind == "stop":
            return
        try:
            reply = ("ok", sign_jobs(jobs, sign_keys) if kind == "sign" else verify_jobs(jobs, verify_keys))
        except Exception as err:  # report, keep serving; the caller redoes the work itself
            reply = ("error", repr(err))
        pickle.dump(reply, tx, protocol=pickle.HIGHEST_PROTOCOL)
        tx.flush()


class _Conn:
    """pickle over the helper's stdin/stdout."""

    def __init__(self, proc: subprocess.Popen):
        self.proc = proc

    def send(self, obj: Any) -> None:
        pickle.dump(obj, self.proc.stdin, protocol=pickle.HIGHEST_PROTOCOL)
        self.proc.stdin.flush()

    def recv(self) -> Any:
        return pickle.load(self.proc.stdout)

    def close(self) -> None:
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except OSError:
                pass


class CryptoPool:
    """Split Ed25519 batches with one helper process; ``share`` is the helper's fraction of the work."""

    def __init__(self, share: float = 0.5, min_batch: int = 64):
        self.share, self.min_batch = share, min_batch
        self._conn: Any = None
        self._proc: Any = None
        self._failed = False
        self._sign_keys: dict[tuple[str, str], crypto.Key] = {}
        self._verify_keys: dict[str, Any] = {}

    @staticmethod
    def useful() -> bool:
        """A second core to run on (os.cpu_count() ≥ 2)."""
        return (os.cpu_count() or 1) >= 2

    def _start(self) -> bool:
        if self._conn is not None:
            return True
        if self._failed:
            return False
        try:
            # a fresh interpreter running only this module (not multiprocessing: its spawn re-imports the
            # caller's __main__, and fork would copy a process holding SQLite connections and threads)
            self._proc = subprocess.Popen([sys.executable, "-m", "reference_node.parallel"], stdin=subprocess.PIPE,
                                          stdout=subprocess.PIPE, cwd=_ROOT)
            self._conn = _Conn(self._proc)
            return True
        except Exception:
            self._failed = True
            return False

    def _split(self, n: int) -> int:
        """How many leading items go to the helper (0: do everything here)."""
        if n < self.min_batch or not self._start():
            return 0
        return int(n * self.share)

    def _exchange(self, kind: str, remote: list, local: Any, n_remote: int, n_local: int) -> tuple[list | None, Any]:
        try:
            self._conn.send((kind, remote))
        except (OSError, EOFError, BrokenPipeError, ValueError):
            self._broken()
            return None, local()
        t0 = time.perf_counter()
        mine = local()
        t1 = time.perf_counter()
        try:
            status, result = self._conn.recv()
            self._adapt(n_remote, n_local, t1 - t0, time.perf_counter() - t1)
        except (OSError, EOFError, pickle.UnpicklingError, ValueError):
            self._broken()
            return None, mine
        return (result if status == "ok" else None), mine

    def _adapt(self, n_remote: int, n_local: int, t_local: float, t_wait: float) -> None:
        """Move the split towards equal finishing times (the helper's core may be busy with other work)."""
        if n_remote <= 0 or n_local <= 0 or t_local <= 0:
            return
        if t_wait > 1e-4:
            local_rate, remote_rate = n_local / t_local, n_remote / (t_local + t_wait)
            target = remote_rate / (remote_rate + local_rate)
        else:  # the helper was done first: give it more
            target = min(0.9, self.share + 0.05)
        self.share = min(0.9, max(0.1, 0.7 * self.share + 0.3 * target))

    def _broken(self) -> None:
        self._failed = True
        self.close()

    def sign(self, jobs: list[SignJob]) -> list[list[str]]:
        """Signatures (hex) for each job's messages, in order."""
        total = sum(len(m) for _, _, m in jobs)
        k = self._split(total)
        if k == 0:
            return sign_jobs(jobs, self._sign_keys)
        remote, local, seen = [], [], 0
        for seed, name, messages in jobs:
            take = max(0, min(len(messages), k - seen))
            seen += len(messages)
            remote.append((seed, name, messages[:take]))
            local.append((seed, name, messages[take:]))
        theirs, mine = self._exchange("sign", remote, lambda: sign_jobs(local, self._sign_keys), k, total - k)
        if theirs is None:
            theirs = sign_jobs(remote, self._sign_keys)
        return [a + b for a, b in zip(theirs, mine)]

    def verify(self, jobs: list[VerifyJob]) -> list[bool]:
        """Whether each signature verifies, in order."""
        k = self._split(len(jobs))
        if k == 0:
            return verify_jobs(jobs, self._verify_keys)
        theirs, mine = self._exchange("verify", jobs[:k], lambda: verify_jobs(jobs[k:], self._verify_keys), k,
                                      len(jobs) - k)
        if theirs is None:
            theirs = verify_jobs(jobs[:k], self._verify_keys)
        return theirs + mine

    def close(self) -> None:
        conn, proc, self._conn, self._proc = self._conn, self._proc, None, None
        if conn is not None:
            try:
                conn.send(("stop", None))
            except (OSError, EOFError, BrokenPipeError, ValueError):
                pass
            conn.close()
        if proc is not None:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

if __name__ == "__main__":
    _serve(sys.stdin.buffer, sys.stdout.buffer)
