"""Thin ASGI wrappers: each node class served over HTTP/JSON on loopback.

Why FastAPI under uvicorn: an asyncio server lets one process hold many requests in flight,
which is what group commit needs (concurrent commits wait on one SQLite transaction) and
what a provider's micro-batching needs (concurrent tasks share one model call and one
ledger request); uvicorn with uvloop + httptools (``uvicorn[standard]``) is the fastest
pure-Python-ecosystem HTTP/1.1 server measured on these machines (~2,800 trivial req/s with
an aiohttp client, MEASURED.md), and FastAPI adds routing and OpenAPI docs at no measurable
cost when handlers read the raw body (we validate JSON ourselves, field by field, so every
rejection names the field, what was expected and what was found). Service-to-service calls
use aiohttp with one pooled session per process (httpx measured ~9× slower as a client).

Every service answers malformed JSON with 400, bodies over ``MAX_BODY`` with 413, wrong
types or missing fields with 422, bad signatures with 401, unknown ids with 404 and
conflicts (replays, exhausted stake, closed windows) with 409; none of these change state.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import aiohttp
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from reference_node.arbiter import Arbiter
from reference_node.ledger import OPS, Ledger, LedgerError
from reference_node.provider import Provider, Task
from reference_node.verifier import Verifier

MAX_BODY = 1 << 20  # 1 MiB
BRIEF = ("ok", "status", "error", "replayed", "seq")


FastHandler = Callable[[Any], Awaitable[Any]]


class BodyLimit:
    """ASGI middleware: reject bodies larger than MAX_BODY with 413 before they are buffered.

    It also serves the hot endpoints (``fast``: POST path -> handler of the parsed JSON body)
    directly, without the framework's routing and response objects: the same validation and
    the same error shape, about a third of the per-request CPU.
    """

    def __init__(self, app: Any, limit: int = MAX_BODY, fast: dict[str, FastHandler] | None = None):
        self.app, self.limit, self.fast = app, limit, fast or {}

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        for name, value in scope.get("headers", []):
            if name == b"content-length" and (not value.isdigit() or int(value) > self.limit):
                return await _send_json(send, 413, {"error": f"request body: expected at most {self.limit} "
                                                             f"bytes, found {value.decode(errors='replace')}"})
        handler = self.fast.get(scope["path"]) if scope["method"] == "POST" else None
        if handler is not None:
            return await self._fast(handler, receive, send)
        seen = 0

        async def limited() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge()
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await _send_json(send, 413, {"error": f"request body: expected at most {self.limit} bytes"})


    async def _fast(self, handler: FastHandler, receive: Callable, send: Callable) -> None:
        chunks, seen = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return
            body = message.get("body", b"")
            seen += len(body)
            if seen > self.limit:
                return await _send_json(send, 413, {"error": f"request body: expected at most {self.limit} bytes"})
            chunks.append(body)
            if not message.get("more_body"):
                break
        try:
            doc = parse_json(b"".join(chunks))
            status, result = 200, await handler(doc)
            if isinstance(result, tuple):
                status, result = result
        except LedgerError as err:
            status, result = err.status, {"ok": False, "error": err.message}
        await _send_json(send, status, result)


class _TooLarge(Exception):
    pass


async def _send_json(send: Callable, status: int, body: dict) -> None:
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]})
    await send({"type": "http.response.body", "body": data})


async def read_json(request: Request) -> Any:
    return parse_json(await request.body())


class _NotFinite(Exception):
    pass


def _reject_constant(name: str) -> Any:
    raise _NotFinite(name)


def _finite_float(text: str) -> float:
    value = float(text)
    if value - value != 0.0:  # inf or nan (e.g. 1e999)
        raise _NotFinite(text)
    return value


def parse_json(raw: bytes) -> Any:
    """A JSON body whose numbers are all finite (NaN, Infinity and overflowing literals are rejected while
    parsing, so the document is never walked a second time)."""
    try:
        return json.loads(raw, parse_constant=_reject_constant, parse_float=_finite_float)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise LedgerError(400, f"request body: expected JSON, found a syntax error ({err})") from None
    except _NotFinite:
        raise LedgerError(422, "request body: expected finite numbers, found NaN or Infinity") from None


def error_response(err: LedgerError) -> JSONResponse:
    return JSONResponse({"ok": False, "error": err.message}, status_code=err.status)


def base_app(title: str) -> FastAPI:
    app = FastAPI(title=title, docs_url=None, redoc_url=None)

    @app.exception_handler(LedgerError)
    async def _ledger_error(request: Request, err: LedgerError) -> JSONResponse:
        return error_response(err)

    @app.get("/health")
    async def health() -> dict:
        return {"ok": True, "service": title}

    return app


def _int_query(request: Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise LedgerError(422, f"query {name!r}: expected an integer, found {raw[:40]!r}") from None
    if not lo <= value <= hi:
        raise LedgerError(422, f"query {name!r}: expected an integer in [{lo}, {hi}], found {value}")
    return value


# ----------------------------------------------------------------------------------------
# ledger
# ----------------------------------------------------------------------------------------


class GroupCommit:
    """Queue operations from concurrent requests and apply them in one transaction per batch."""

    def __init__(self, ledger: Ledger, max_batch: int = 2048):
        self.ledger = ledger
        self.max_batch = max_batch
        self.queue: asyncio.Queue = asyncio.Queue()
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="ledger-writer")
        self.task: asyncio.Task | None = None

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._loop())

    async def submit(self, ops: list[Any]) -> list[dict]:
        fut = asyncio.get_running_loop().create_future()
        await self.queue.put((ops, fut))
        return await fut

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            items = [await self.queue.get()]
            count = len(items[0][0])
            while not self.queue.empty() and count < self.max_batch:
                item = self.queue.get_nowait()
                items.append(item)
                count += len(item[0])
            ops = [op for batch, _ in items for op in batch]
            try:
                results = await loop.run_in_executor(self.pool, self.ledger.execute, ops)
            except Exception as err:  # a database failure: fail the requests, keep serving
                for _, fut in items:
                    if not fut.done():
                        fut.set_exception(LedgerError(503, f"ledger write failed: {err}"))
                continue
            k = 0
            for batch, fut in items:
                if not fut.done():
                    fut.set_result(results[k:k + len(batch)])
                k += len(batch)


def ledger_app(ledger: Ledger, settle_every: float = 0.5,
               routes: Callable[[FastAPI, GroupCommit], dict[str, FastHandler] | None] | None = None) -> Any:
    """The ledger over HTTP: ``/ops`` and one contract route per operation of ``ledger.OPS``
    (default :data:`reference_node.ledger.OPS`). ``routes(app, group_commit)`` adds a subclass's
    routes and returns its fast POST handlers, if any (:mod:`reference_node.committee_services`)."""
    app = base_app("ledger")
    gc = GroupCommit(ledger)
    read_lock = asyncio.Lock()

    @app.on_event("startup")
    async def _start() -> None:
        gc.start()
        if settle_every > 0:
            asyncio.get_running_loop().create_task(_settler())

    async def _settler() -> None:
        k = 0
        while True:
            await asyncio.sleep(settle_every)
            k += 1
            await gc.submit([{"op": "settle", "request_id": f"settle:tick:{ledger.seq}:{k}"}])

    async def ops(doc: Any) -> Any:
        """A list of operations, or {"ops": [...], "brief": true} for results without the event data."""
        brief = False
        if isinstance(doc, dict) and set(doc) <= {"ops", "brief"} and isinstance(doc.get("brief", False), bool):
            doc, brief = doc.get("ops"), doc.get("brief", False)
        if not isinstance(doc, list) or not doc or len(doc) > 10_000:
            raise LedgerError(422, "request body: expected a non-empty list of at most 10,000 operations")
        results = await gc.submit(doc)
        if brief:
            results = [{k: r[k] for k in BRIEF if k in r} for r in results]
        return {"results": results}

    def contract_route(name: str) -> None:
        async def handler(request: Request) -> JSONResponse:
            doc = await read_json(request)
            if not isinstance(doc, dict):
                raise LedgerError(422, f"request body: expected a JSON object, found {type(doc).__name__}")
            result = (await gc.submit([{**doc, "op": name}]))[0]
            if not result["ok"]:
                return JSONResponse(result, status_code=result["status"])
            return JSONResponse(result)

        app.post(f"/{name}")(handler)

    for name in getattr(ledger, "OPS", OPS):
        contract_route(name)

    @app.get("/commitments")
    async def commitments(request: Request) -> JSONResponse:
        after = _int_query(request, "after", 0, 0, 1 << 62)
        limit = _int_query(request, "limit", 500, 1, 5000)
        async with read_lock:
            rows = await asyncio.get_running_loop().run_in_executor(None, _read_feed, ledger.path, after, limit)
        return JSONResponse({"commitments": rows, "tasks": None})

    @app.get("/ids")
    async def ids(request: Request) -> JSONResponse:
        from reference_node.ledger import read_ids

        after = _int_query(request, "after", 0, 0, 1 << 62)
        limit = _int_query(request, "limit", 5000, 1, 20_000)
        rows = await asyncio.get_running_loop().run_in_executor(None, read_ids, ledger.path, after, limit)
        return JSONResponse({"ids": rows})

    @app.post("/lookup")
    async def lookup(request: Request) -> JSONResponse:
        from reference_node.ledger import ID_RE, read_tasks

        doc = await read_json(request)
        tids = doc.get("task_ids") if isinstance(doc, dict) else None
        if not isinstance(tids, list) or len(tids) > 20_000 or not all(
                isinstance(t, str) and ID_RE.fullmatch(t) for t in tids):
            raise LedgerError(422, "field 'task_ids': expected a list of at most 20,000 task ids")
        rows = await asyncio.get_running_loop().run_in_executor(None, read_tasks, ledger.path, tids)
        return JSONResponse({"commitments": rows})

    @app.get("/task/{task_id}")
    async def task(task_id: str) -> JSONResponse:
        record = await asyncio.get_running_loop().run_in_executor(gc.pool, ledger.task, task_id)
        if record is None:
            raise LedgerError(404, f"unknown task id {task_id[:60]!r}")
        return JSONResponse(record)

    @app.get("/account/{account}")
    async def account(account: str) -> JSONResponse:
        a = ledger.accounts.get(account)
        if a is None:
            raise LedgerError(404, f"unknown account {account[:60]!r}")
        return JSONResponse({"id": a.id, "pubkey": a.pubkey, **ledger.account_view(a)})

    @app.get("/events")
    async def events(request: Request) -> JSONResponse:
        after = _int_query(request, "after", 0, 0, 1 << 62)
        limit = _int_query(request, "limit", 1000, 1, 10_000)
        kind = request.query_params.get("kind")
        rows, scanned = await asyncio.get_running_loop().run_in_executor(None, _read_events, ledger.path, after,
                                                                          limit, kind)
        return JSONResponse({"events": rows, "next_after": scanned})

    @app.get("/summary")
    async def summary() -> JSONResponse:
        s = await asyncio.get_running_loop().run_in_executor(gc.pool, ledger.summary)
        s["tasks"] = await asyncio.get_running_loop().run_in_executor(
            gc.pool, lambda: ledger.db.execute("SELECT COUNT(*) FROM tasks").fetchone()[0])
        return JSONResponse(s)

    fast = (routes(app, gc) if routes is not None else None) or {}
    return BodyLimit(app, fast={"/ops": ops, **fast})


def _read_feed(path: str, after: int, limit: int) -> list[dict]:
    from reference_node.ledger import read_commitments

    return read_commitments(path, after, limit)


def _read_events(path: str, after: int, limit: int, kind: str | None, span: int = 100_000) -> tuple[list[dict], int]:
    """Events after a cursor (of one kind, if given), scanning at most ``span`` sequence numbers.

    Returns the events and the cursor to continue from (the last sequence number examined),
    so a filtered poll never rescans the log.
    """
    import sqlite3

    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        top = db.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0]
        q = "SELECT seq, kind, account, task_id, data FROM events WHERE seq > ? AND seq <= ?"
        args: list[Any] = [after, min(top, after + span)]
        if kind:
            q += " AND kind = ?"
            args.append(kind)
        rows = db.execute(q + " ORDER BY seq LIMIT ?", (*args, limit)).fetchall()
    finally:
        db.close()
    scanned = rows[-1][0] if len(rows) == limit else min(top, after + span)
    return [{"seq": r[0], "kind": r[1], "account": r[2], "task_id": r[3], **json.loads(r[4])} for r in rows], scanned


# ----------------------------------------------------------------------------------------
# HTTP client helper shared by the services
# ----------------------------------------------------------------------------------------


class Http:
    def __init__(self) -> None:
        self.session: aiohttp.ClientSession | None = None

    async def open(self) -> aiohttp.ClientSession:
        if self.session is None:
            self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64),
                                                 timeout=aiohttp.ClientTimeout(total=60))
        return self.session

    async def post(self, url: str, body: Any) -> tuple[int, Any]:
        s = await self.open()
        async with s.post(url, json=body) as r:
            return r.status, await r.json(content_type=None)

    async def get(self, url: str) -> tuple[int, Any]:
        s = await self.open()
        async with s.get(url) as r:
            return r.status, await r.json(content_type=None)

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()


async def retrying(call: Callable[[], Awaitable[tuple[int, Any]]], attempts: int = 600,
                   delay: float = 0.1) -> tuple[int, Any]:
    """Retry a call while the peer is unreachable or failing (5xx): it may be restarting."""
    last: Exception | None = None
    for _ in range(attempts):
        try:
            status, body = await call()
            if status < 500:
                return status, body
        except (TimeoutError, aiohttp.ClientError, OSError) as err:
            last = err
        await asyncio.sleep(delay)
    raise LedgerError(503, f"peer unreachable after {attempts} attempts: {last}")


# ----------------------------------------------------------------------------------------
# provider
# ----------------------------------------------------------------------------------------


class Batcher:
    """Collect concurrent items and handle them together, with at most ``inflight`` batches in progress.

    When nothing is in progress an item is handled at once (in the next loop turn, with whatever arrived
    in the same turn); while ``inflight`` batches are in progress new items wait and go out together
    when one completes, so a batch grows with the load (up to ``size``) and an idle provider adds no
    delay. (``delay`` is accepted for compatibility; the in-flight bound replaces the timer.)
    """

    def __init__(self, handle: Callable[[list], Awaitable[list]], size: int = 512, delay: float = 0.0,
                 inflight: int = 1):
        self.handle, self.size, self.delay, self.inflight = handle, size, delay, inflight
        self.pending: list[tuple[Any, asyncio.Future]] = []
        self.running = 0
        self.scheduled = False

    async def submit(self, item: Any) -> Any:
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self.pending.append((item, fut))
        if self.running < self.inflight and not self.scheduled:
            self.scheduled = True
            loop.call_soon(self._fire)
        return await fut

    def _fire(self) -> None:
        self.scheduled = False
        while self.pending and self.running < self.inflight:
            batch, self.pending = self.pending[:self.size], self.pending[self.size:]
            self.running += 1
            asyncio.get_running_loop().create_task(self._run(batch))

    async def _run(self, batch: list) -> None:
        try:
            results = await self.handle([item for item, _ in batch])
            for (_, fut), res in zip(batch, results):
                if not fut.done():
                    fut.set_result(res)
        except Exception as err:
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(err if isinstance(err, LedgerError) else LedgerError(503, str(err)))
        finally:
            self.running -= 1
            if self.pending and not self.scheduled:
                self.scheduled = True
                asyncio.get_running_loop().call_soon(self._fire)


def provider_app(provider: Provider, ledger_url: str, stake: float | None = None) -> Any:
    app = base_app(f"provider {provider.id}")
    http = Http()
    state = {"events_after": 0}

    async def handle(tasks: list[Task]) -> list[Any]:
        done = provider.infer(tasks)
        status, body = await retrying(lambda: http.post(f"{ledger_url}/ops", {"ops": [op for _, op in done],
                                                                              "brief": True}))
        if status != 200:
            raise LedgerError(502, f"ledger refused the commitments: {body}")
        out: list[Any] = []
        for (reply, op), res in zip(done, body["results"]):
            if res["ok"]:
                if not res.get("replayed"):
                    provider.committed(op["action"], op["fee"])
                out.append(reply)
            elif res["status"] == 409 and "already committed" in res["error"]:
                out.append(await recover(op, res))
            else:
                out.append(LedgerError(res["status"], f"ledger: {res['error']}"))
        return out

    async def recover(op: dict, res: dict) -> Any:
        """A task this provider committed before a crash (its reply was lost): answer with the commitment
        on the ledger, so a client's retry is idempotent even when a re-run would differ (noise, random)."""
        status, record = await retrying(lambda: http.get(f"{ledger_url}/task/{op['task_id']}"))
        if status == 200 and record["provider"] == provider.id and record["input"] == op["input"]:
            return {"task_id": record["task_id"], "output": record["output"], "output_hash": record["output_hash"],
                    "input_hash": record["input_hash"], "model_id": record["model_id"], "provider": provider.id,
                    "signature": record["signature"], "recovered": True}
        return LedgerError(409, f"ledger: {res['error']}")

    batcher = Batcher(handle, size=512)

    @app.on_event("startup")
    async def _start() -> None:
        status, body = await retrying(lambda: http.post(f"{ledger_url}/ops", provider.register_ops(stake)))
        bad = [r for r in body.get("results", []) if not r["ok"] and r["status"] != 409] if status == 200 else [body]
        if bad:
            raise RuntimeError(f"provider {provider.id}: registration failed: {bad[0]}")
        asyncio.get_running_loop().create_task(_watch_slashes())

    async def _watch_slashes() -> None:
        """Feed the strategy its slashes (payoff corrections) from the ledger's resolve events."""
        while True:
            await asyncio.sleep(0.5)
            try:
                status, body = await http.get(f"{ledger_url}/events?kind=resolve&after={state['events_after']}")
            except (TimeoutError, aiohttp.ClientError, OSError):
                continue
            if status != 200:
                continue
            state["events_after"] = body["next_after"]
            for e in body["events"]:
                if e.get("provider") == provider.id and e.get("verdict") == "upheld":
                    provider.slashed(e.get("action") or "honest", e["slash"], e["refund"])

    @app.on_event("shutdown")
    async def _stop() -> None:
        await http.close()

    async def infer(doc: Any) -> Any:
        if not isinstance(doc, dict):
            raise LedgerError(422, f"request body: expected a JSON object, found {type(doc).__name__}")
        from reference_node.ledger import _amount, _field, _ident
        from reference_node.models import input_problem

        task_id = _ident(doc, "task_id")
        text = _field(doc, "input", str)
        if len(text) > 4096:
            raise LedgerError(422, f"field 'input': expected at most 4096 characters, found {len(text)}")
        client = _ident(doc, "client")
        fee = _amount(doc, "fee", allow_zero=True) / 1_000_000
        if fee < provider.params.reward:
            raise LedgerError(422, f"field 'fee': expected at least the reward {provider.params.reward:g}, found {fee:g}")
        problem = input_problem(text)
        if problem is not None:  # not an image of the declared model (see reference_node.models)
            raise LedgerError(422, f"field 'input': {problem}")
        result = await batcher.submit(Task(task_id, text, client, fee))
        if isinstance(result, LedgerError):
            raise result
        return result

    return BodyLimit(app, fast={"/infer": infer})


# ----------------------------------------------------------------------------------------
# verifier
# ----------------------------------------------------------------------------------------


def verifier_app(verifier: Verifier, ledger_url: str, arbiter_url: str, bond: float, poll: float = 0.05) -> Any:
    app = base_app(f"verifier {verifier.id}")
    http = Http()
    state: dict[str, Any] = {"cursor": 0, "audits": 0, "evidence": 0, "upheld": 0, "idle": False}

    @app.on_event("startup")
    async def _start() -> None:
        status, body = await retrying(lambda: http.post(f"{ledger_url}/ops", verifier.register_ops(bond)))
        bad = [r for r in body.get("results", []) if not r["ok"] and r["status"] != 409] if status == 200 else [body]
        if bad:
            raise RuntimeError(f"verifier {verifier.id}: registration failed: {bad[0]}")
        asyncio.get_running_loop().create_task(_loop())

    async def _loop() -> None:
        while True:
            try:
                status, body = await http.get(f"{ledger_url}/ids?after={state['cursor']}&limit=5000")
                ids = body.get("ids", []) if status == 200 else []
                chosen = [tid for _, tid in ids if verifier.selects(tid)]
                rows = []
                if chosen:
                    status, body = await http.post(f"{ledger_url}/lookup", {"task_ids": chosen})
                    if status != 200:
                        raise aiohttp.ClientError(f"lookup failed: {status}")
                    rows = body["commitments"]
            except (TimeoutError, aiohttp.ClientError, OSError):
                await asyncio.sleep(0.2)
                continue
            if not ids:
                state["idle"] = True
                await asyncio.sleep(poll)
                continue
            state["idle"] = False
            ops, evidence = verifier.audit(rows)
            if ops:
                status, res = await retrying(lambda o=ops: http.post(f"{ledger_url}/ops", o))
                state["audits"] += sum(1 for o in ops if o["op"] == "audit")
                ok = {o["task_id"] for o, r in zip(ops, res["results"]) if o["op"] == "challenge" and r["ok"]}
                for ev in evidence:
                    if ev["task_id"] in ok:
                        status, r = await retrying(lambda e=ev: http.post(f"{arbiter_url}/evidence", e))
                        state["evidence"] += 1
                        state["upheld"] += status == 200 and r.get("verdict") == "upheld"
            state["cursor"] = ids[-1][0]

    @app.get("/status")
    async def status() -> dict:
        return {"id": verifier.id, **state}

    @app.post("/reveal")
    async def reveal() -> JSONResponse:
        status, body = await retrying(lambda: http.post(f"{ledger_url}/reveal", verifier.reveal_op()))
        return JSONResponse(body, status_code=status)

    @app.on_event("shutdown")
    async def _stop() -> None:
        await http.close()

    return BodyLimit(app)


# ----------------------------------------------------------------------------------------
# arbiter
# ----------------------------------------------------------------------------------------


def arbiter_app(arbiter: Arbiter, ledger_url: str) -> Any:
    app = base_app("arbiter")
    http = Http()

    @app.on_event("startup")
    async def _start() -> None:
        status, body = await retrying(lambda: http.post(f"{ledger_url}/ops", arbiter.register_ops()))
        bad = [r for r in body.get("results", []) if not r["ok"] and r["status"] != 409] if status == 200 else [body]
        if bad:
            raise RuntimeError(f"arbiter: registration failed: {bad[0]}")

    @app.post("/evidence")
    async def evidence(request: Request) -> JSONResponse:
        doc = await read_json(request)
        record, keys = None, {}
        if isinstance(doc, dict) and isinstance(doc.get("task_id"), str) and isinstance(doc.get("verifier"), str):
            from reference_node.ledger import ID_RE

            if ID_RE.fullmatch(doc["task_id"]) and ID_RE.fullmatch(doc["verifier"]):
                status, body = await retrying(lambda: http.get(f"{ledger_url}/task/{doc['task_id']}"))
                record = body if status == 200 else None
                for acc in {doc["verifier"], (record or {}).get("provider")} - {None}:
                    status, body = await retrying(lambda a=acc: http.get(f"{ledger_url}/account/{a}"))
                    keys[acc] = body.get("pubkey") if status == 200 else None
        op = arbiter.judge(doc, lambda _tid: record, keys.get)
        status, body = await retrying(lambda: http.post(f"{ledger_url}/resolve", op))
        if status != 200:
            return JSONResponse(body, status_code=status)
        if body.get("verdict") == "rejected":
            return JSONResponse({**body, "error": f"evidence rejected: {op['reason']}; the verifier's bond is "
                                                  "burned"}, status_code=409)
        return JSONResponse(body)

    @app.on_event("shutdown")
    async def _stop() -> None:
        await http.close()

    return BodyLimit(app)


# ----------------------------------------------------------------------------------------
# serving
# ----------------------------------------------------------------------------------------


def serve(app: Any, host: str, port: int, port_file: str | None = None) -> None:
    """Serve an ASGI app with uvicorn (uvloop + httptools); port 0 picks a free port."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    actual = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", loop="uvloop", http="httptools", access_log=False,
                            lifespan="on", backlog=2048)
    server = uvicorn.Server(config)

    async def main() -> None:
        started = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
        while not server.started:
            if started.done():
                started.result()
                return
            await asyncio.sleep(0.01)
        if port_file:
            tmp = Path(port_file + ".tmp")
            tmp.write_text(str(actual))
            tmp.replace(port_file)
        print(f"listening on http://{host}:{actual}", flush=True)
        await started

    import uvloop

    uvloop.run(main())
