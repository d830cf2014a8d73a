"""Ed25519 work on a thread pool (the in-process network's other cores).

Signing and verifying are the largest single costs of an in-process task (libsodium: ~23 µs to
sign, ~62 µs to verify on this machine class). PyNaCl's cffi calls release the GIL, so a pool
of threads signs and verifies on other cores while the caller's thread runs the ledger's Python
code. A :class:`CryptoPool` splits a batch into one chunk per worker and joins the results in
order. Ed25519 signatures are deterministic and verification is a pure function of (key,
signature, message), so the results are exactly those of doing the work inline: a seeded run is
reproducible event for event whatever the pool does, and how the work was split leaves no
trace. ``submit_sign`` returns a future, so a caller can sign the next batch while it records
the current one (:class:`reference_node.inprocess.Network` does).
"""

from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from reference_node import crypto

SignJob = tuple[Any, str, list[bytes], str]     # (seed, key name, commitment messages, signing scheme)
VerifyJob = tuple[str, str, bytes]             # (public key hex, commitment signature, message)


def sign_jobs(jobs: list[SignJob], keys: dict[tuple[Any, str], crypto.Key]) -> list[list[str]]:
    out = []
    for seed, name, messages, scheme in jobs:
        key = keys.get((seed, name))
        if key is None:
            key = keys[(seed, name)] = crypto.Key(seed, name)
        out.append(key.sign_commitments(messages, scheme))
    return out


def verify_jobs(jobs: list[VerifyJob], keys: dict[str, Any]) -> list[bool]:
    resolved = []
    for pub, sig, message in jobs:
        key = keys.get(pub)
        if key is None:
            key = keys[pub] = crypto.public_key(pub)
        resolved.append((key, sig, message))
    return crypto.verify_commitments(resolved)


class CryptoPool:
    """Sign and verify Ed25519 batches on ``workers`` threads (default: the machine's CPUs)."""

    def __init__(self, workers: int | None = None, min_batch: int = 64):
        self.workers = max(1, workers or os.cpu_count() or 1)
        self.min_batch = min_batch
        self._pool: ThreadPoolExecutor | None = ThreadPoolExecutor(self.workers, thread_name_prefix="ed25519")
        self._sign_keys: dict[tuple[Any, str], crypto.Key] = {}
        self._verify_keys: dict[str, Any] = {}

    @staticmethod
    def useful() -> bool:
        """A second core to run on (os.cpu_count() ≥ 2)."""
        return (os.cpu_count() or 1) >= 2

    def _chunks(self, n: int) -> list[tuple[int, int]]:
        if n == 0:
            return [(0, 0)]
        k = self.workers if n >= self.min_batch else 1
        step = -(-n // k)
        return [(a, min(n, a + step)) for a in range(0, n, step)]

    def submit_sign(self, jobs: list[SignJob]) -> Future:
        """A future of :meth:`sign`'s result. The work is split between threads in units a signer
        signs alone (a message, or a merkle scheme's run of crypto.MERKLE_LEAVES messages), so the
        signatures are those of signing each job's messages at once."""
        flat = [(i, ms[a:a + step]) for i, (_, _, ms, scheme) in enumerate(jobs)
                for step in [1 if scheme == "single" else crypto.MERKLE_LEAVES] for a in range(0, len(ms), step)]
        parts = []
        for a, b in self._chunks(len(flat)):
            chunk: dict[int, list[bytes]] = {}
            for i, unit in flat[a:b]:
                chunk.setdefault(i, []).extend(unit)
            sub = [(jobs[i][0], jobs[i][1], ms, jobs[i][3]) for i, ms in chunk.items()]
            parts.append((list(chunk), self._submit(sign_jobs, sub, self._sign_keys)))
        out: Future = Future()

        def join() -> list[list[str]]:
            sigs: list[list[str]] = [[] for _ in jobs]
            for idx, fut in parts:
                for i, s in zip(idx, fut.result()):
                    sigs[i] += s
            return sigs
        _chain(out, join, [f for _, f in parts])
        return out

    def sign(self, jobs: list[SignJob]) -> list[list[str]]:
        """Signatures (hex) for each job's messages, in order."""
        return self.submit_sign(jobs).result()

    def submit_verify(self, jobs: list[VerifyJob]) -> Future:
        """A future of :meth:`verify`'s result."""
        parts = [self._submit(verify_jobs, jobs[a:b], self._verify_keys) for a, b in self._chunks(len(jobs))]
        out: Future = Future()
        _chain(out, lambda: [ok for f in parts for ok in f.result()], parts)
        return out

    def verify(self, jobs: list[VerifyJob]) -> list[bool]:
        """Whether each signature verifies, in order."""
        return self.submit_verify(jobs).result()

    def _submit(self, fn: Any, jobs: list, keys: dict) -> Future:
        if self._pool is None:  # closed: do it here
            f: Future = Future()
            f.set_result(fn(jobs, keys))
            return f
        return self._pool.submit(fn, jobs, keys)

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)


def _chain(out: Future, join: Any, parts: list[Future]) -> None:
    """Complete ``out`` with ``join()`` once every part is done (errors propagate)."""
    remaining = [len(parts)]

    def done(_: Future) -> None:
        remaining[0] -= 1
        if remaining[0] == 0:
            try:
                out.set_result(join())
            except BaseException as err:  # a worker's error reaches the caller of result()
                out.set_exception(err)
    if not parts:
        out.set_result(join())
    for p in parts:
        p.add_done_callback(done)
