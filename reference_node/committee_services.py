"""The consensus game over HTTP: committee-node services, the committee ledger's routes, and the
claims coordinator (the rules are :mod:`reference_node.committee`'s; this module only serves them).

Services (each a process speaking HTTP/JSON on loopback by default; ``mira-node committee-node``,
``mira-node ledger --params <consensus params>``, ``mira-node committee-client``, or all of them
with ``mira-node up --params <consensus params>``):

* **ledger**: :func:`reference_node.services.ledger_app` serving a
  :class:`~reference_node.committee.CommitteeLedger` (group commit, ``/ops``, one contract route
  per operation, ``vote_commit`` and ``claim`` included), plus ``POST /sealed``
  ``{"claim_ids": [...]}`` → ``{"claims": {id: {"status": "sealed", committee, commitments,
  commit_seq} | {"status": "decided"}}}`` (unknown ids left out): what a node checks before it
  reveals. No settle ticks (nothing settles in the consensus game).
* **committee node** (:func:`committee_node_app`): one verifier node, its model (seeded stand-in,
  or the digits verifier model ``verifier-(index mod K)``) and its key. It registers and stakes
  itself on the ledger at start-up (idempotent: a restarted node's replays are no-ops).
  ``POST /seal`` ``{"claims": [{"claim_id", "options"}, ...]}`` → ``{"node", "sealed":
  [{"claim_id", "commitment", "signature", "cost"}]}``: the node answers each claim and seals
  the vote (same claim, same commitment: sealing is idempotent). ``POST /reveal``
  ``{"claim_ids": [...]}`` → ``{"node", "revealed": [{"claim_id", "option", "salt",
  "signature"}], "withheld": [...], "refused": [{"claim_id", "status", "error"}]}``: a claim is
  revealed only once the ledger holds its sealed votes with this node's own commitment in its
  seat (asked at ``/sealed``), so a vote is never disclosed before the whole committee is bound;
  a claim that is not is *refused*, alone (the rest of the request is answered), and when every
  claim of the request is refused the answer is a 409 naming the first; 503 while the ledger is
  unreachable. The option and salt stay in the node until revealed (they are re-derived from
  its secrets after a restart). ``GET /status``.
* **coordinator** (:class:`Coordinator`, the claims client): draws each claim's committee as
  :func:`~reference_node.committee.run_committee` does (same generator, same order), asks the
  members to seal, submits the batch's ``vote_commit`` ops, asks the members to reveal, checks
  every reveal against its commitment and leaves out those that fail, and submits the ``claim``
  ops (signatures are checked once, by the ledger: a seal or reveal whose signature it refuses
  (401, naming the seat) is left out, as an absent seat or an unrevealed vote, and the op is
  submitted again), batch after batch in claim order (several batches in flight; their ``claim``
  ops go to the ledger in order, so windows close on the same claims as in-process). A member
  that does not seal within ``timeout`` is an absent seat; one that does not reveal within
  ``timeout`` stays unrevealed. With every node holding stake (the default stake), the run is
  the in-process run of the same seed and mix, event for event up to ``seq`` order; once a node
  runs out, a draw made while an earlier batch was still open may name it, the ledger refuses
  that commit (409) and the coordinator redraws the claim.

Every endpoint answers malformed JSON with 400, bodies over 1 MiB with 413, wrong types or
missing fields with 422 (naming the field, what was expected and what was found); none of these
change any state.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import numpy as np
from fastapi import FastAPI

from reference_node.committee import (
    CommitteeLedger,
    CommitteeNode,
    CommitteeParams,
    DigitModels,
    SeededModels,
    claim_id,
    client_registration,
    committee_rng,
    draw_committee,
    make_models,
    registration_ops,
    vote_commitment,
)
from reference_node.ledger import HEX_RE, ID_RE, LedgerError
from reference_node.services import BodyLimit, GroupCommit, Http, base_app, ledger_app, retrying

MAX_CLAIMS = 10_000  # per /seal, /reveal or /sealed request
MAX_HELD = 200_000  # sealed options a node keeps in memory (older ones are re-derived when revealed)
MAX_ATTEMPTS = 6  # commits of one claim (after a bad seal signature or a member out of stake)
_ITEM = {name: re.compile(rf"field '{name}\[(\d+)\]\.signature'") for name in ("commitments", "reveals")}


def _bad_item(result: dict, name: str) -> int | None:
    """The seat (commitments) or reveal whose signature the ledger refused, if that was the reason."""
    if result.get("ok") or result.get("status") != 401:
        return None
    m = _ITEM[name].match(result.get("error", ""))
    return int(m.group(1)) if m else None


def _claim_ids(doc: Any, name: str = "claim_ids") -> list[str]:
    if not isinstance(doc, dict):
        raise LedgerError(422, f"request body: expected a JSON object, found {type(doc).__name__}")
    ids = doc.get(name)
    if not isinstance(ids, list) or not 1 <= len(ids) <= MAX_CLAIMS:
        found = "nothing" if ids is None else (f"{len(ids)} items" if isinstance(ids, list) else type(ids).__name__)
        raise LedgerError(422, f"field {name!r}: expected a list of 1-{MAX_CLAIMS:,} claim ids, found {found}")
    for i, cid in enumerate(ids):
        if not isinstance(cid, str) or ID_RE.fullmatch(cid) is None:
            raise LedgerError(422, f"field '{name}[{i}]': expected a claim id of 1-128 characters "
                                   f"[A-Za-z0-9-_.:], found {str(cid)[:40]!r}")
    if len(set(ids)) != len(ids):
        raise LedgerError(422, f"field {name!r}: expected distinct claim ids, found a repeated one")
    return ids


# ----------------------------------------------------------------------------------------
# ledger
# ----------------------------------------------------------------------------------------


def committee_routes(ledger: CommitteeLedger) -> Callable[[FastAPI, GroupCommit], dict]:
    def routes(app: FastAPI, gc: GroupCommit) -> dict:
        async def sealed(doc: Any) -> Any:
            ids = _claim_ids(doc)
            # on the writer's thread, between batches: every answer is a committed state
            claims = await asyncio.get_running_loop().run_in_executor(gc.pool, ledger.sealed_claims, ids)
            return {"claims": claims}

        @app.on_event("shutdown")
        async def _close() -> None:  # after the last batch: checkpoint, so the run leaves one database file
            await asyncio.get_running_loop().run_in_executor(gc.pool, ledger.close)

        return {"/sealed": sealed}

    return routes


def committee_ledger_app(ledger: CommitteeLedger) -> Any:
    _ = ledger.committee.quorum, ledger.committee.required  # the theory's rules, loaded before serving
    return ledger_app(ledger, settle_every=0.0, routes=committee_routes(ledger))


# ----------------------------------------------------------------------------------------
# committee node
# ----------------------------------------------------------------------------------------


def committee_node_app(node: CommitteeNode, models: SeededModels | DigitModels, ledger_url: str,
                       stake: float) -> Any:
    cp = models.p
    app = base_app(f"committee node {node.id}")
    http = Http()
    cost = cp.cost_of(node.strategy)
    secrets: dict[str, int] = {}  # claim id -> the sealed option, until revealed
    state = {"sealed": 0, "revealed": 0, "withheld": 0, "refused": 0}

    def option_of(cid: str) -> int:
        option = secrets.get(cid)
        if option is None:  # sealed before a restart: the answer is a function of the claim and the node
            option = node.answer(models, models.claim(cid), cid)
        return option

    @app.on_event("startup")
    async def _start() -> None:
        status, body = await retrying(lambda: http.post(f"{ledger_url}/ops", registration_ops(node, stake)))
        bad = [r for r in body.get("results", []) if not r["ok"] and r["status"] != 409] if status == 200 else [body]
        if bad:
            raise RuntimeError(f"committee node {node.id}: registration failed: {bad[0]}")

    @app.on_event("shutdown")
    async def _stop() -> None:
        await http.close()

    async def seal(doc: Any) -> Any:
        if not isinstance(doc, dict):
            raise LedgerError(422, f"request body: expected a JSON object, found {type(doc).__name__}")
        items = doc.get("claims")
        if not isinstance(items, list) or not 1 <= len(items) <= MAX_CLAIMS:
            found = "nothing" if items is None else (f"{len(items)} items" if isinstance(items, list)
                                                     else type(items).__name__)
            raise LedgerError(422, f"field 'claims': expected a list of 1-{MAX_CLAIMS:,} claims, found {found}")
        ids = []
        for i, c in enumerate(items):
            if not isinstance(c, dict):
                raise LedgerError(422, f"field 'claims[{i}]': expected an object, found {type(c).__name__}")
            cid = c.get("claim_id")
            if not isinstance(cid, str) or ID_RE.fullmatch(cid) is None:
                raise LedgerError(422, f"field 'claims[{i}].claim_id': expected a claim id of 1-128 characters "
                                       f"[A-Za-z0-9-_.:], found {str(cid)[:40]!r}")
            m = c.get("options")
            if isinstance(m, bool) or m != cp.options:
                raise LedgerError(422, f"field 'claims[{i}].options': expected {cp.options} (the params' claim "
                                       f"options), found {m!r}")
            ids.append(cid)
        if len(set(ids)) != len(ids):
            raise LedgerError(422, "field 'claims': expected distinct claim ids, found a repeated one")
        out = []
        for cid in ids:
            option = option_of(cid)
            secrets[cid] = option
            if len(secrets) > MAX_HELD:  # seals never asked to reveal (redrawn, refused): the oldest go; the
                del secrets[next(iter(secrets))]  # option is re-derived from the claim and the node anyway
            entry = node.seal(cid, option, cost)
            out.append({"claim_id": cid, "commitment": entry["commitment"], "signature": entry["signature"],
                        "cost": cost})
        state["sealed"] += len(out)
        return {"node": node.id, "sealed": out}

    async def reveal(doc: Any) -> Any:
        ids = _claim_ids(doc)
        try:
            status, body = await http.post(f"{ledger_url}/sealed", {"claim_ids": ids})
        except (TimeoutError, aiohttp.ClientError, OSError) as err:
            raise LedgerError(503, f"ledger unreachable ({err or type(err).__name__}): cannot confirm the "
                                   "commitments are recorded, so nothing is revealed") from None
        if status != 200:
            raise LedgerError(503 if status >= 500 else 502, f"ledger answered /sealed with {status}: {body}")
        records = body["claims"]
        out, withheld, refused = [], [], []
        for cid in ids:
            rec = records.get(cid)
            option = None
            if rec is None:
                problem = (f"claim {cid!r}: its sealed votes are not on the ledger: a vote is revealed only after "
                           "the committee's commitments are recorded")
            elif rec["status"] != "sealed":
                problem = f"claim {cid!r} was already decided: nothing to reveal"
            elif node.id not in rec["committee"]:
                problem = f"claim {cid!r}: node {node.id!r} holds no seat on its committee"
            elif (sealed := rec["commitments"][rec["committee"].index(node.id)]) is None:
                problem = f"claim {cid!r}: node {node.id!r} sealed no vote on it (absent seat)"
            elif sealed != node.commitment(cid, option := option_of(cid)):
                problem = (f"claim {cid!r}: the ledger holds a commitment for {node.id!r} that is not this node's "
                           "seal: not revealing")
            else:
                problem = None
            if problem is not None:
                refused.append({"claim_id": cid, "status": 409, "error": problem})
            elif node.withholds(cid):
                withheld.append(cid)
            else:
                out.append({"claim_id": cid, **{k: v for k, v in node.reveal(cid, option).items() if k != "node"}})
        if refused and not out and not withheld:  # nothing in the request could be revealed
            raise LedgerError(409, refused[0]["error"])
        for cid in out:
            secrets.pop(cid["claim_id"], None)
        for cid in withheld:
            secrets.pop(cid, None)
        state["revealed"] += len(out)
        state["withheld"] += len(withheld)
        state["refused"] += len(refused)
        return {"node": node.id, "revealed": out, "withheld": withheld, "refused": refused}

    @app.get("/status")
    async def status() -> dict:
        return {"id": node.id, "strategy": node.strategy, "withhold": node.withhold, "stake": stake,
                "pubkey": node.key.public_hex, **state, "held": len(secrets)}

    return BodyLimit(app, fast={"/seal": seal, "/reveal": reveal})


# ----------------------------------------------------------------------------------------
# coordinator
# ----------------------------------------------------------------------------------------


def truth_of(cp: CommitteeParams, seed: int | str, models: str) -> Callable[[str], int]:
    """A claim's right option (the client's answer key: ground truth for the experiment)."""
    if models == "seeded":
        seeded = SeededModels(cp, seed)
        return lambda cid: int(seeded.claim(cid)[0])
    if models == "digits":
        from reference_node import models as digit_models

        return lambda cid: int(digit_models.digit_claim(seed, cid, cp.options).truth)
    raise ValueError(f"models: expected 'seeded' or 'digits', found {models!r}")


class Coordinator:
    """Draw committees, collect sealed votes, commit them, collect reveals, decide (see the module
    docstring). ``nodes``: the committee-node URLs in network order (node i is ``node-i``'s
    service: the draw is over this order, as in-process)."""

    def __init__(self, params: CommitteeParams, ledger_url: str, nodes: list[str], seed: int | str = 0, *,
                 models: str = "seeded", batch: int = 128, concurrency: int = 3, client: str = "client",
                 timeout: float = 10.0, ids: list[str] | None = None):
        if len(nodes) < params.committee_size:
            raise ValueError(f"coordinator: expected at least committee_size = {params.committee_size} node URLs, "
                             f"found {len(nodes)}")
        if batch < 1 or concurrency < 1 or not timeout > 0:
            raise ValueError("coordinator: batch and concurrency must be ≥ 1 and timeout > 0")
        self.cp, self.ledger, self.urls, self.seed = params, ledger_url.rstrip("/"), [u.rstrip("/") for u in nodes], seed
        # a batch's ops stay well under the services' 1 MiB body limit (~300 bytes a seat)
        self.batch = min(batch, max(1, 2000 // params.committee_size))
        self.concurrency, self.client, self.timeout = concurrency, client, timeout
        self.truth = truth_of(params, seed, models)
        self.http = Http()
        if ids is not None and len(ids) != len(nodes):
            raise ValueError(f"coordinator: expected one node id per URL ({len(nodes)}), found {len(ids)}")
        self.ids: list[str] = list(ids or [])
        self.eligible: list[bool] = []
        self.stats = {"decided": 0, "failed": 0, "absent": 0, "unrevealed": 0, "withheld": 0, "bad_seals": 0,
                      "bad_reveals": 0, "refused": 0, "redraws": 0, "errors": {}}

    # -------------------------------------------------------------------- plumbing
    async def _get(self, url: str) -> tuple[int, Any]:
        return await retrying(lambda: self.http.get(url))

    async def _post(self, url: str, body: Any) -> tuple[int, Any]:
        return await retrying(lambda: self.http.post(url, body))

    async def _post_by(self, url: str, body: Any, deadline: float) -> tuple[int, Any] | None:
        """POST, retried while the peer is unreachable or failing, until ``deadline``; None then."""
        while True:
            try:
                status, reply = await asyncio.wait_for(self.http.post(url, body),
                                                       max(0.05, deadline - time.monotonic()))
                if status < 500:
                    return status, reply
            except (TimeoutError, aiohttp.ClientError, OSError, ValueError):
                pass
            if time.monotonic() >= deadline:
                return None
            await asyncio.sleep(0.1)

    def _error(self, what: str) -> None:
        self.stats["errors"][what] = self.stats["errors"].get(what, 0) + 1

    async def _refresh(self, indices: list[int]) -> None:
        for i in indices:
            status, body = await self._get(f"{self.ledger}/account/{self.ids[i]}")
            self.eligible[i] = status == 200 and body["locked"] > 0

    async def start(self) -> None:
        """Learn the nodes' ids (unless given: a node may be down), register the client, wait for
        every node's stake on the ledger."""
        if not self.ids:
            for url in self.urls:
                status, body = await self._get(f"{url}/status")
                if status != 200:
                    raise RuntimeError(f"committee node {url}: /status answered {status}: {body}")
                self.ids.append(body["id"])
        ids = self.ids
        if len(set(ids)) != len(ids):
            raise RuntimeError(f"coordinator: expected distinct committee nodes, found ids {ids}")
        status, body = await self._post(f"{self.ledger}/ops", [client_registration(self.seed, self.client)])
        res = body.get("results", [{}])[0] if status == 200 else body
        if not res.get("ok") and res.get("status") != 409:
            raise RuntimeError(f"coordinator: client registration failed: {res}")
        self.eligible = [False] * len(ids)
        for i, nid in enumerate(ids):
            for _ in range(600):  # a node registers itself as it starts
                status, body = await self._get(f"{self.ledger}/account/{nid}")
                if status == 200 and body.get("locked", 0) > 0:
                    break
                await asyncio.sleep(0.1)
            else:
                raise RuntimeError(f"coordinator: node {nid} is not registered with stake on the ledger")
            self.eligible[i] = True

    # -------------------------------------------------------------------- one batch
    def _draw(self, rng: np.random.Generator, cid: str) -> list[int]:
        eligible = [i for i, ok in enumerate(self.eligible) if ok]
        if len(eligible) < self.cp.committee_size:
            raise RuntimeError(f"only {len(eligible)} nodes hold stake: no committee for claim {cid}")
        return draw_committee(rng, eligible, self.cp.committee_size)

    async def _seal(self, committees: dict[str, list[int]], deadline: float) -> dict[tuple[str, int], dict]:
        by_node: dict[int, list[str]] = {}
        for cid, seats in committees.items():
            for i in seats:
                by_node.setdefault(i, []).append(cid)

        async def ask(i: int, cids: list[str]) -> dict[tuple[str, int], dict]:
            nid = self.ids[i]
            got = await self._post_by(f"{self.urls[i]}/seal",
                                      {"claims": [{"claim_id": c, "options": self.cp.options} for c in cids]}, deadline)
            if got is None or got[0] != 200:
                self._error(f"seal {nid}: {'no answer' if got is None else got[0]}")
                return {}
            out = {}
            sealed = got[1].get("sealed") if isinstance(got[1], dict) else None
            if not isinstance(sealed, list):  # a malformed reply: the node's seats stay absent
                self._error(f"seal {nid}: expected an object with a 'sealed' list")
                return {}
            for e in sealed:
                if not isinstance(e, dict):
                    self.stats["bad_seals"] += 1
                    continue
                cid, c, sig, cost = e.get("claim_id"), e.get("commitment"), e.get("signature"), e.get("cost", 0.0)
                # a seal the ledger would refuse for its form (it would refuse the whole claim) is an absent seat
                ok = (isinstance(cid, str) and cid in committees and isinstance(c, str)
                      and HEX_RE[64].fullmatch(c) is not None and isinstance(sig, str)
                      and HEX_RE[128].fullmatch(sig) is not None and not isinstance(cost, bool)
                      and isinstance(cost, int | float) and abs(cost) < 1e300 and math.isfinite(cost) and cost >= 0)
                if ok:
                    out[(cid, i)] = {"node": nid, "commitment": c, "signature": sig, "cost": cost}
                else:
                    self.stats["bad_seals"] += 1
            return out

        sealed: dict[tuple[str, int], dict] = {}
        for part in await asyncio.gather(*(ask(i, cids) for i, cids in by_node.items())):
            sealed.update(part)
        return sealed

    async def _reveal(self, commits: dict[str, list[dict]], seats: dict[str, list[int]],
                      deadline: float) -> dict[str, list[dict]]:
        by_node: dict[int, list[str]] = {}
        for cid, entries in commits.items():
            for i, e in zip(seats[cid], entries):
                if e["commitment"] is not None:
                    by_node.setdefault(i, []).append(cid)

        async def ask(i: int, cids: list[str]) -> list[tuple[str, dict]]:
            nid = self.ids[i]
            got = await self._post_by(f"{self.urls[i]}/reveal", {"claim_ids": cids}, deadline)
            if got is None or got[0] != 200:
                self._error(f"reveal {nid}: {'no answer' if got is None else got[0]}")
                return []
            body = got[1] if isinstance(got[1], dict) else {}
            revealed, withheld = body.get("revealed"), body.get("withheld", [])
            if not isinstance(revealed, list) or not isinstance(withheld, list):  # malformed: its votes stay unrevealed
                self._error(f"reveal {nid}: expected an object with 'revealed' and 'withheld' lists")
                return []
            self.stats["withheld"] += len(withheld)
            refused = body.get("refused", [])
            self.stats["refused"] += len(refused) if isinstance(refused, list) else 0
            out = []
            for r in revealed:
                if not isinstance(r, dict):
                    self.stats["bad_reveals"] += 1
                    continue
                cid, option, salt, sig = r.get("claim_id"), r.get("option"), r.get("salt"), r.get("signature")
                entry = commits[cid][seats[cid].index(i)] if isinstance(cid, str) and cid in commits \
                    and i in seats[cid] else None
                ok = (entry is not None and option.__class__ is int and 0 <= option < self.cp.options
                      and isinstance(salt, str) and HEX_RE[64].fullmatch(salt) is not None and isinstance(sig, str)
                      and HEX_RE[128].fullmatch(sig) is not None
                      and vote_commitment(cid, nid, option, bytes.fromhex(salt)) == entry["commitment"])
                if ok:
                    out.append((cid, {"node": nid, "option": option, "salt": salt, "signature": sig}))
                else:
                    self.stats["bad_reveals"] += 1
            return out

        reveals: dict[str, list[dict]] = {cid: [] for cid in commits}
        for part in await asyncio.gather(*(ask(i, cids) for i, cids in by_node.items())):
            for cid, r in part:
                reveals[cid].append(r)
        return reveals

    async def _batch(self, ids: list[str], committees: dict[str, list[int]], rng: np.random.Generator,
                     prev: asyncio.Event | None, done: asyncio.Event, lat: dict[str, float]) -> None:
        t0 = time.perf_counter()
        commits: dict[str, list[dict]] = {}
        entries: dict[str, list[dict]] = {}
        to_seal, pending = list(ids), []
        results: list[tuple[dict, dict]] = []
        try:
            for attempt in range(MAX_ATTEMPTS):
                if to_seal:
                    sealed = await self._seal({c: committees[c] for c in to_seal}, time.monotonic() + self.timeout)
                    for cid in to_seal:
                        entries[cid] = [sealed.get((cid, i)) or self._absent(i) for i in committees[cid]]
                    pending, to_seal = pending + to_seal, []
                if not pending:
                    break
                ops = [{"op": "vote_commit", "request_id": f"vote_commit:{cid}", "claim_id": cid,
                        "client": self.client, "options": self.cp.options, "truth": self.truth(cid),
                        "commitments": entries[cid]} for cid in pending]
                status, body = await self._post(f"{self.ledger}/ops", {"ops": ops, "brief": True})
                if status != 200:
                    raise LedgerError(status, f"ledger refused the sealed votes: {body}")
                retry, redraw = [], []
                last = attempt == MAX_ATTEMPTS - 1
                for cid, res in zip(pending, body["results"]):
                    seat = _bad_item(res, "commitments")
                    if res["ok"]:
                        commits[cid] = entries[cid]
                    elif seat is not None and not last:  # its seal signature: that seat is absent
                        self.stats["bad_seals"] += 1
                        entries[cid][seat] = self._absent(committees[cid][seat])
                        retry.append(cid)
                    elif res["status"] == 409 and "no stake left" in res["error"] and not last:
                        redraw.append(cid)
                    else:
                        self._error(f"vote_commit {res['status']}: {res['error'][:80]}")
                if redraw:  # a member ran out of stake since the draw: refresh and redraw those claims
                    await self._refresh(sorted({i for c in redraw for i in committees[c]}))
                    for cid in redraw:
                        committees[cid] = self._draw(rng, cid)
                    self.stats["redraws"] += len(redraw)
                pending, to_seal = retry, redraw
            reveals = await self._reveal(commits, committees, time.monotonic() + self.timeout)
            ops = [{"op": "claim", "request_id": f"claim:{cid}", "claim_id": cid, "reveals": reveals[cid]}
                   for cid in ids if cid in commits]
            if prev is not None:
                await prev.wait()  # decide in claim order
            for attempt in range(self.cp.committee_size + 1):
                if not ops:
                    break
                status, body = await self._post(f"{self.ledger}/ops", ops)
                if status != 200:
                    raise LedgerError(status, f"ledger refused the reveals: {body}")
                retry = []
                for op, res in zip(ops, body["results"]):
                    k = _bad_item(res, "reveals")
                    if k is not None and attempt < self.cp.committee_size:  # that reveal stays out
                        self.stats["bad_reveals"] += 1
                        op["reveals"].pop(k)
                        retry.append(op)
                    else:
                        results.append((op, res))
                ops = retry
        finally:
            done.set()
        slashed = set()
        for op, res in results:
            if not res["ok"]:
                self._error(f"claim {res['status']}: {res['error'][:80]}")
                continue
            self.stats["decided"] += 1
            seats = res.get("seats", [])
            self.stats["absent"] += seats.count("absent")
            self.stats["unrevealed"] += seats.count("unrevealed")
            lat[op["claim_id"]] = time.perf_counter() - t0
            slashed |= {self.ids.index(w["node"]) for w in res.get("windows", []) if w["slashed"]}
        if slashed:
            await self._refresh(sorted(slashed))

    def _absent(self, i: int) -> dict:
        return {"node": self.ids[i], "commitment": None}

    # -------------------------------------------------------------------- run
    @staticmethod
    def _finished(slots: asyncio.Semaphore, n: int, progress: Callable[[int], None] | None) -> Callable:
        def done(_task: asyncio.Task) -> None:
            slots.release()
            if progress is not None:
                progress(n)
        return done

    async def run(self, claims: int, progress: Callable[[int], None] | None = None) -> dict[str, Any]:
        t0 = time.perf_counter()
        tasks: list[asyncio.Task] = []
        try:
            await self.start()
            rng = committee_rng(self.seed)
            lat: dict[str, float] = {}
            slots = asyncio.Semaphore(self.concurrency)
            prev: asyncio.Event | None = None
            for start in range(0, claims, self.batch):
                await slots.acquire()
                ids = [claim_id(self.seed, i) for i in range(start, min(claims, start + self.batch))]
                committees = {cid: self._draw(rng, cid) for cid in ids}  # in claim order, as in-process
                done = asyncio.Event()
                task = asyncio.create_task(self._batch(ids, committees, rng, prev, done, lat))
                task.add_done_callback(self._finished(slots, len(ids), progress))
                tasks.append(task)
                prev = done
            await asyncio.gather(*tasks)
        finally:  # interrupted or failed: stop the batches in flight before their session closes
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.http.close()
        seconds = time.perf_counter() - t0
        values = np.array(list(lat.values())) if lat else np.zeros(1)
        q = np.percentile(values, [50, 95, 99]) * 1e3
        self.stats["failed"] = claims - self.stats["decided"]
        return {"claims": claims, **self.stats, "seconds": seconds,
                "claims_per_second": self.stats["decided"] / seconds if seconds else None,
                "latency_ms": {"p50": float(q[0]), "p95": float(q[1]), "p99": float(q[2])},
                "batch": self.batch, "concurrency": self.concurrency, "nodes": len(self.urls)}


def node_for(cp: CommitteeParams, seed: int | str, node_id: str, index: int, strategy: str, models: str,
             withhold: float = 0.0) -> tuple[CommitteeNode, SeededModels | DigitModels]:
    """A committee node and its model (node i of the network runs verifier-(i mod K) with digits)."""
    node = CommitteeNode(node_id, strategy, seed, withhold)
    return node, make_models(cp, seed, models, [node_id], {node_id: index})
