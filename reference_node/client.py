"""The client: a load generator that submits tasks to providers and records latency.

It uses one aiohttp session with connection reuse; ``concurrency`` requests are in flight
(or, with ``rate``, tasks are released at that many per second). The fee paid with each
task is the exported reward; the provider escrows it on the ledger with the commitment.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import numpy as np

from reference_node.inprocess import task_id
from reference_node.models import task_input


class Client:
    def __init__(self, providers: list[str], fee: float, client_id: str = "client-0", seed: int | str = 0,
                 concurrency: int = 64, rate: float | None = None):
        if not providers:
            raise ValueError("client: expected at least one provider URL")
        self.providers, self.fee, self.id, self.seed = providers, fee, client_id, seed
        self.concurrency, self.rate = concurrency, rate
        self.latencies = np.zeros(0)
        self.ok = self.rejected = self.failed = 0
        self.errors: dict[str, int] = {}

    async def run(self, tasks: int, start: int = 0, progress: Callable[[int], None] | None = None) -> dict[str, Any]:
        lat = np.zeros(tasks)
        next_index = [start]
        end = start + tasks
        t0 = time.perf_counter()
        connector = aiohttp.TCPConnector(limit=self.concurrency, limit_per_host=0)
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=120)) as s:
            async def worker() -> None:
                while next_index[0] < end:
                    i = next_index[0]
                    next_index[0] += 1
                    if self.rate:
                        delay = t0 + (i - start) / self.rate - time.perf_counter()
                        if delay > 0:
                            await asyncio.sleep(delay)
                    url = self.providers[i % len(self.providers)]
                    body = {"task_id": task_id(self.seed, i), "input": task_input(self.seed, i),
                            "client": self.id, "fee": self.fee}
                    t = time.perf_counter()
                    for attempt in range(100):
                        try:
                            async with s.post(f"{url}/infer", json=body) as r:
                                await r.read()
                                status = r.status
                        except (aiohttp.ClientError, OSError, TimeoutError):
                            status = 599
                        if status < 500:
                            break
                        await asyncio.sleep(min(0.05 * (attempt + 1), 1.0))  # provider restarting
                    lat[i - start] = time.perf_counter() - t
                    if status == 200:
                        self.ok += 1
                    elif status < 500:
                        self.rejected += 1
                        self.errors[str(status)] = self.errors.get(str(status), 0) + 1
                    else:
                        self.failed += 1
                    if progress:
                        progress(1)

            await asyncio.gather(*(worker() for _ in range(self.concurrency)))
        elapsed = time.perf_counter() - t0
        self.latencies = lat
        q = np.percentile(lat, [50, 95, 99]) * 1e3 if tasks else [0, 0, 0]
        return {"tasks": tasks, "ok": self.ok, "rejected": self.rejected, "failed": self.failed,
                "errors": self.errors, "seconds": elapsed, "tasks_per_second": tasks / elapsed if elapsed else None,
                "latency_ms": {"p50": float(q[0]), "p95": float(q[1]), "p99": float(q[2])}}
