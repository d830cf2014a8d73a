"""The event log: what a run leaves behind, and the statistics read from it.

Every state change of the ledger is one row of the SQLite table ``events`` (append-only,
written in the same transaction as the balances it moves); ``events.jsonl`` in the run
directory is the same rows exported one JSON object a line, in ``seq`` order. Amounts are in
the scenario's currency (the ledger stores integer micro-units). Every line has

    seq          int     position in the log (1, 2, ...; gap-free)
    request_id   str     the idempotency key of the operation
    kind         str     register | deposit | withdraw | commit | audit | challenge | resolve |
                         settle | advance | reveal; a committee ledger (consensus game) adds
                         vote_commit | claim | window, documented in reference_node.committee
    time         float   ledger clock (seconds since the epoch, plus any ``advance``)
    account      str?    the account the event is about (provider for commit/resolve-upheld)
    task_id      str?

    request_digest str   sha256 prefix of the operation as submitted (a replay must match it)

and the fields of its kind:

    register   account, account_kind (provider|verifier|client|arbiter), pubkey, secret_commitment,
               strategy (provider's strategy spec: honest, a deviation name,
               mixed:<deviation>:<t>, hedge; experiment metadata)
    deposit    account, amount, locked (stake/bond after the deposit)
    withdraw   account, amount, source (balance|stake), released (bool), release_at
    commit     task_id, provider, client, fee, model_id, input_hash, output_hash, signature (the
               provider's commitment signature, either scheme of reference_node.crypto),
               window_close, action (what the provider actually did: honest or a deviation
               name: ground truth logged for the experiment, read by no protocol decision),
               cost (the environment's cost of that action)
    audit      task_id, provider, action, verifier, outcome (pass|fail|inconclusive|colluded),
               panel (n), effective (false iff every seat colluded)
    challenge  task_id, provider, verifier, evidence_hash
    resolve    task_id, provider, verifier, verdict (upheld|rejected);
               upheld: action, slash, capped (slash cut to the remaining stake), bounty,
               burned, refund, client; rejected: bond_burned. A resolve-upheld is a *settled
               slash*: final when written.
    settle     settled {provider: {tasks, paid}}, tasks, released [{withdrawal, account,
               amount}], more (another settle is due); sampling_rate (only with adaptive
               verifiers, ``Network(verifier_learner=...)``: the common rate q_t the verifiers
               audited the batch just settled with, fixed before its commitments were made;
               one per batch, so the task-weighted q̄ is read from these events)
    advance    seconds (ledger clock moved forward)
    reveal     verifier, secret (preimage of its secret_commitment)

Per provider strategy a statistics module computes (:func:`summarize` does, streaming, in
memory independent of the number of tasks):

* tasks, and tasks per action: ``commit`` events by ``action``;
* audits (effective audits): ``audit`` events (``effective``);
* detections: ``resolve`` with verdict ``upheld`` whose action is a deviation; honest false
  slashes: ``resolve`` upheld with action ``honest``;
* realised payoff per task: (Σ ``settle.paid`` − Σ commit ``cost`` − Σ resolve ``slash``) /
  tasks, after the final settle of the run (every window closed);
* the cheating episode: per provider, deviating commits with ``seq`` below the ``seq`` of its
  first upheld ``resolve`` (the first settled slash); ``None`` if it was never slashed.
"""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from pathlib import Path
from typing import Any

from reference_node.params import UNIT

COLUMNS = "seq, request_id, kind, time, account, task_id, amount, data"


def iter_events(db_path: str | Path, chunk: int = 10_000):
    """Yield events as dicts in seq order, reading ``chunk`` rows at a time (flat memory)."""
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        last = 0
        while True:
            rows = db.execute(f"SELECT {COLUMNS} FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
                              (last, chunk)).fetchall()
            if not rows:
                return
            for seq, rid, kind, t, account, task_id, _amount, data in rows:
                d = json.loads(data)
                d.pop("seq", None)
                yield {"seq": seq, "request_id": rid, "kind": kind, "time": t, "account": account,
                       "task_id": task_id, **d}
            last = rows[-1][0]
    finally:
        db.close()


def export_jsonl(db_path: str | Path, out: str | Path) -> int:
    n = 0
    with open(out, "w", encoding="utf-8") as fh:
        for event in iter_events(db_path):
            fh.write(json.dumps(event, separators=(",", ":")) + "\n")
            n += 1
    return n


def summarize(events) -> dict[str, Any]:
    """Per-strategy statistics from an iterable of events (see the module docstring)."""
    strategy: dict[str, str] = {}
    prov: dict[str, dict[str, Any]] = defaultdict(lambda: {
        "tasks": 0, "actions": defaultdict(int), "audits": 0, "effective_audits": 0, "audits_by_action":
        defaultdict(int), "detections": 0, "false_slashes": 0, "slashed": 0.0, "capped": 0, "cost": 0.0,
        "paid": 0.0, "episode": 0, "first_slash_seq": None})
    totals = {"tasks": 0, "audits": 0, "challenges": 0, "slashes": 0, "rejected_evidence": 0, "bounties": 0.0,
              "burned": 0.0, "paid_to_providers": 0.0, "refunds": 0.0}
    for e in events:
        kind = e["kind"]
        if kind == "register":
            if e.get("strategy") is not None:
                strategy[e["account"]] = e["strategy"]
        elif kind == "commit":
            p = prov[e["provider"]]
            p["tasks"] += 1
            totals["tasks"] += 1
            action = e.get("action") or "unknown"
            p["actions"][action] += 1
            p["cost"] += e.get("cost") or 0.0
            if action != "honest" and p["first_slash_seq"] is None:
                p["episode"] += 1
        elif kind == "audit":
            p = prov[e["provider"]]
            p["audits"] += 1
            totals["audits"] += 1
            p["audits_by_action"][e.get("action") or "unknown"] += 1
            p["effective_audits"] += bool(e.get("effective"))
        elif kind == "challenge":
            totals["challenges"] += 1
        elif kind == "resolve":
            if e.get("verdict") == "upheld":
                p = prov[e["provider"]]
                totals["slashes"] += 1
                totals["bounties"] += e["bounty"]
                totals["burned"] += e["burned"]
                totals["refunds"] += e["refund"]
                p["slashed"] += e["slash"]
                p["capped"] += bool(e.get("capped"))
                if e.get("action") == "honest":
                    p["false_slashes"] += 1
                else:
                    p["detections"] += 1
                if p["first_slash_seq"] is None:
                    p["first_slash_seq"] = e["seq"]
            else:
                totals["rejected_evidence"] += 1
                totals["burned"] += e.get("bond_burned", 0.0)
        elif kind == "settle":
            for provider, v in (e.get("settled") or {}).items():
                prov[provider]["paid"] += v["paid"]
                totals["paid_to_providers"] += v["paid"]
    by_strategy: dict[str, dict[str, Any]] = {}
    for pid, p in sorted(prov.items()):
        s = by_strategy.setdefault(strategy.get(pid, "unknown"), {
            "providers": 0, "tasks": 0, "actions": defaultdict(int), "audits": 0, "effective_audits": 0,
            "detections": 0, "false_slashes": 0, "capped_slashes": 0, "slashed": 0.0, "paid": 0.0, "cost": 0.0,
            "episodes": []})
        s["providers"] += 1
        for k in ("tasks", "audits", "effective_audits", "detections", "false_slashes", "slashed", "paid", "cost"):
            s[k] += p[k]
        s["capped_slashes"] += p["capped"]
        for a, n in p["actions"].items():
            s["actions"][a] += n
        s["episodes"].append({"provider": pid, "deviating_tasks_before_first_slash":
                              p["episode"] if p["first_slash_seq"] is not None else None,
                              "deviating_tasks": sum(n for a, n in p["actions"].items() if a != "honest")})
    for s in by_strategy.values():
        s["actions"] = dict(s["actions"])
        s["payoff_per_task"] = (s["paid"] - s["cost"] - s["slashed"]) / s["tasks"] if s["tasks"] else None
        s["detection_per_task"] = s["detections"] / s["tasks"] if s["tasks"] else None
    return {"totals": totals, "by_strategy": by_strategy}


def units(x: int) -> float:
    return x / UNIT
