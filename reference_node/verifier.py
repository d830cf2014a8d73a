"""The verifier: samples commitments with the exported rate, re-executes, and files evidence.

Which tasks are audited is unpredictable to the provider at commit time: every verifier
holds a 32-byte secret whose sha256 it posts to the ledger when it registers (and reveals at
the end of the run, so anyone can check that it audited exactly the tasks it should have).
A task's *lead* verifier is public (sha256 of the task id picks one of the registered
verifiers); the lead audits the task iff H(secret ‖ task id) < q. The audit panel has n seats
(``verifiers_per_audit``); each seat colludes with the provider with probability r (keyed
hash of the secret), and the audit is effective iff some seat does not collude (e = 1 − rⁿ).
The lead then re-executes the declared model as the panel's effective verifier (so the
panel's decision is taken once, as the model assumes: one miss probability per audit). An
effective audit is inconclusive with probability β (see :mod:`reference_node.models`).

The reference is always the deployment's declared model (``model_id``, by default
:data:`reference_node.models.DECLARED_ID`), whatever model id a commitment names: the client
pays for the declared model, so an output of another model is judged against it. A committed
input that is not a valid encoding has no output under the declared model: the audit fails
and the evidence's ``recomputed_output`` is ``null``.
On a mismatch the verifier challenges the task on the ledger and sends signed evidence to
the arbiter; the bounty of an upheld slash is paid to it.
"""

from __future__ import annotations

import functools
import hashlib

import numpy as np

from reference_node import models
from reference_node.crypto import Key, evidence_message
from reference_node.params import NodeParams


@functools.lru_cache(maxsize=8192)  # every verifier asks about the same feed page
def lead_index(task_id: str, count: int) -> int:
    return int(models.unit_hash("lead", task_id) * count)


def lead_indices(commitments: list[dict], count: int) -> list[int]:
    """:func:`lead_index` of every commitment of a page, in one pass (the same float operations:
    float64 products, truncated)."""
    u = models.unit_hashes(("lead",), [c["task_id"] for c in commitments])
    return (u * count).astype(np.int64).tolist()


def audit_batch(verifiers: list[Verifier], commitments: list[dict]) -> tuple[list[dict], list[dict]]:
    """Every verifier's audit of a batch of recorded commitments: (ledger operations, evidence), the
    verifiers in order. A task's audit depends on that task alone (its lead, the verifier's keyed
    draws, the declared model's output on its input), so auditing a batch equals auditing its tasks
    one by one; the lead of each is computed once for every verifier."""
    evidence: list[dict] = []
    ops: list[dict] = []
    leads = lead_indices(commitments, len(verifiers))
    for v in verifiers:
        o, ev = v.audit(commitments, leads)
        ops += o
        evidence += ev
    return ops, evidence


class Verifier:
    def __init__(self, verifier_id: str, params: NodeParams, index: int, count: int, seed: int | str = 0,
                 model_id: str | None = None):
        self.id = verifier_id
        self.model = models.model(model_id or models.DECLARED_ID)
        self.params = params
        self.index, self.count = index, count
        self.key = Key(seed, verifier_id)
        self.secret = hashlib.sha256(f"verifier-secret|{seed}|{verifier_id}".encode()).digest()
        self.commitment = hashlib.sha256(self.secret).hexdigest()
        self.rate: float | None = None  # adaptive verifiers: q_t set between batches (None: the params' q)

    def register_ops(self, bond: float) -> list[dict]:
        return [{"op": "register", "request_id": f"register:{self.id}", "account": self.id, "kind": "verifier",
                 "pubkey": self.key.public_hex, "secret_commitment": self.commitment},
                {"op": "deposit", "request_id": f"bond:{self.id}", "account": self.id, "amount": bond}]

    def reveal_op(self) -> dict:
        return {"op": "reveal", "request_id": f"reveal:{self.id}", "verifier": self.id, "secret": self.secret.hex()}

    def selects(self, task_id: str) -> bool:
        return lead_index(task_id, self.count) == self.index and \
            models.unit_hash(self.secret, "audit", task_id) < (self.params.sampling_rate if self.rate is None
                                                               else self.rate)

    def selected(self, commitments: list[dict], leads: list[int] | None = None) -> list[dict]:
        """The commitments :meth:`selects` takes, computed in one pass (the leads are
        :func:`lead_indices`, given when the caller computed them once for every verifier; the
        audit draws are :func:`reference_node.models.unit_hashes`, the same numbers as unit_hash)."""
        q = self.params.sampling_rate if self.rate is None else self.rate
        if leads is None:
            leads = lead_indices(commitments, self.count)
        led = [c for c, lead in zip(commitments, leads) if lead == self.index]
        u = models.unit_hashes((self.secret, "audit"), [c["task_id"] for c in led])
        return [c for c, x in zip(led, (u < q).tolist()) if x]

    def audit(self, commitments: list[dict], leads: list[int] | None = None) -> tuple[list[dict], list[dict]]:
        """Audit the selected commitments of a feed page (``leads``: their :func:`lead_indices`, if known).

        Returns (ledger operations: audit records and challenges, evidence for the arbiter).
        """
        p = self.params
        chosen = self.selected(commitments, leads)
        ops: list[dict] = []
        evidence: list[dict] = []
        rerun = []
        for c in chosen:
            tid = c["task_id"]
            seats = p.verifiers_per_audit
            effective = any(models.unit_hash(self.secret, "collude", tid, str(k)) >= p.collusion
                            for k in range(seats))
            if not effective:
                ops.append(self._record(tid, "colluded", False))
            elif models.unit_hash(self.secret, "inconclusive", tid) < p.miss_rate:
                ops.append(self._record(tid, "inconclusive", True))
            else:
                rerun.append(c)
        if rerun:
            inputs = [c["input"] for c in rerun]
            refs: list[list[int] | None]
            try:
                refs = self.model.run(inputs).tolist()
            except models.InvalidInput:  # a commitment to a text that is not an image: no reference output
                valid = [models.input_problem(t) is None for t in inputs]
                rows = iter(self.model.run([t for t, ok in zip(inputs, valid) if ok]).tolist())
                refs = [next(rows) if ok else None for ok in valid]
            for c, ref in zip(rerun, refs):
                claimed = c["output"]
                if ref is not None and models.matches(ref, claimed, p.comparison):
                    ops.append(self._record(c["task_id"], "pass", True))
                else:
                    ops.append(self._record(c["task_id"], "fail", True))
                    ev = self.evidence(c, ref)
                    ops.append({"op": "challenge", "request_id": f"challenge:{c['task_id']}:{self.id}",
                                "task_id": c["task_id"], "verifier": self.id,
                                "evidence_hash": hashlib.sha256(ev["signature"].encode()).hexdigest()})
                    evidence.append(ev)
        return ops, evidence

    def _record(self, task_id: str, outcome: str, effective: bool) -> dict:
        return {"op": "audit", "request_id": f"audit:{task_id}", "task_id": task_id, "verifier": self.id,
                "outcome": outcome, "effective": effective, "panel": self.params.verifiers_per_audit}

    def evidence(self, commitment: dict, recomputed: list[int] | None) -> dict:
        """Signed evidence: the re-executed output (None when the committed input is not a valid encoding)."""
        claimed = models.recomputed_hash(recomputed)
        sig = self.key.sign(evidence_message(commitment["task_id"], self.id, commitment["signature"], claimed))
        return {"task_id": commitment["task_id"], "verifier": self.id,
                "commitment_signature": commitment["signature"], "recomputed_output": recomputed,
                "signature": sig}
