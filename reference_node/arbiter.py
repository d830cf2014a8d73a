"""The arbiter: judges a verifier's evidence against a commitment and signs the verdict.

Evidence is ``{task_id, verifier, commitment_signature, recomputed_output, signature}`` where
``recomputed_output`` is the verifier's re-executed output (10 integers, the format of
:func:`reference_node.models.parse_output`), or ``null`` when the committed input is not a
valid encoding of an image (the declared model has no output on it), and ``signature`` is the
verifier's Ed25519 signature over (task id, verifier, commitment signature, the hash of the
recomputed output: :func:`reference_node.models.recomputed_hash`). The arbiter rejects with a 4xx, leaving the
ledger unchanged, anything it cannot attribute or that is not a live dispute: malformed
fields, an unknown task, a commitment signature that is not the registered one or does not
verify under the provider's key, a bad verifier signature, a task with no open challenge by
this verifier (replayed or unchallenged evidence). Otherwise it re-executes the declared
model itself (the deployment's, whatever model id the commitment names): if the committed
output disagrees (exact, or beyond the tolerance), or the committed input is not a valid
encoding (no output of the declared model can be committed for it), the verdict is ``upheld``
(the ledger slashes the provider); if it agrees the evidence was false and the verdict is
``rejected`` (the ledger burns the verifier's bond), answered with 409.
"""

from __future__ import annotations

from collections.abc import Callable

from reference_node import crypto, models
from reference_node.crypto import Key
from reference_node.ledger import ID_CHARS, LedgerError
from reference_node.params import NodeParams


class Arbiter:
    def __init__(self, arbiter_id: str, params: NodeParams, seed: int | str = 0, model_id: str | None = None):
        self.id = arbiter_id
        self.model = models.model(model_id or models.DECLARED_ID)
        self.params = params
        self.key = Key(seed, arbiter_id)

    def register_ops(self) -> list[dict]:
        return [{"op": "register", "request_id": f"register:{self.id}", "account": self.id, "kind": "arbiter",
                 "pubkey": self.key.public_hex}]

    def judge(self, evidence: object, task: Callable[[str], dict | None],
              pubkey: Callable[[str], str | None]) -> dict:
        """The resolve operation for a piece of evidence, or LedgerError (4xx) if it is inadmissible.

        ``task(task_id)`` returns the ledger's record of a commitment (with ``status`` and
        ``challenger``), ``pubkey(account)`` an account's registered key.
        """
        if not isinstance(evidence, dict):
            raise LedgerError(422, f"evidence: expected a JSON object, found {type(evidence).__name__}")
        for name in ("task_id", "verifier", "commitment_signature", "signature"):
            value = evidence.get(name)
            if not isinstance(value, str):
                raise LedgerError(422, f"evidence field {name!r}: expected a string, found "
                                       f"{'nothing' if value is None else type(value).__name__}")
        tid, vid = evidence["task_id"], evidence["verifier"]
        if not (1 <= len(tid) <= 128 and set(tid) <= ID_CHARS and 1 <= len(vid) <= 128 and set(vid) <= ID_CHARS):
            raise LedgerError(422, "evidence fields 'task_id'/'verifier': expected ids of [A-Za-z0-9-_.:]")
        raw = evidence.get("recomputed_output")
        recomputed = None if raw is None else models.parse_output(raw)
        if raw is not None and recomputed is None:
            raise LedgerError(422, f"evidence field 'recomputed_output': expected a list of {models.OUT} integers "
                                   f"within ±{models.OUTPUT_BOUND}, or null when the committed input is not a "
                                   "valid encoding")
        record = task(tid)
        if record is None:
            raise LedgerError(404, f"evidence: unknown task id {tid!r}")
        if evidence["commitment_signature"] != record["signature"]:
            raise LedgerError(422, "evidence field 'commitment_signature': expected the signature registered with "
                                   "the commitment, found another (forged evidence)")
        provider_key = crypto.public_key(pubkey(record["provider"]) or "")
        if provider_key is None or not crypto.verify_commitment(provider_key, record["signature"], crypto.commitment_message(
                tid, record["input_hash"], record["output_hash"], record["model_id"], record["provider"])):
            raise LedgerError(422, "evidence: the commitment's signature does not verify under the provider's key")
        verifier_key = crypto.public_key(pubkey(vid) or "")
        if verifier_key is None:
            raise LedgerError(404, f"evidence: unknown verifier {vid!r}")
        if not crypto.verify(verifier_key, evidence["signature"], crypto.evidence_message(
                tid, vid, record["signature"], models.recomputed_hash(recomputed))):
            raise LedgerError(401, "evidence field 'signature': expected the verifier's Ed25519 signature over the "
                                   "evidence, found an invalid one")
        if record.get("status") != "challenged" or record.get("challenger") != vid:
            raise LedgerError(409, f"evidence for task {tid!r}: no open challenge by {vid!r} (task is "
                                   f"{record.get('status')}): challenge it on the ledger first, and only once")
        problem = models.input_problem(record["input"])
        if problem is not None:
            agrees = False
            reason = f"the committed input is not a valid encoding ({problem[:80]}): the declared model has no output"
        else:
            reference = self.model.run([record["input"]])[0].tolist()
            agrees = models.matches(reference, record["output"], self.params.comparison)
            reason = ("the committed output matches the arbiter's re-execution: false evidence" if agrees else
                      "the committed output differs from the arbiter's re-execution")
        verdict = "rejected" if agrees else "upheld"
        return {"op": "resolve", "request_id": f"resolve:{tid}:{vid}", "task_id": tid, "arbiter": self.id,
                "verifier": vid, "verdict": verdict, "reason": reason,
                "signature": self.key.sign(crypto.verdict_message(tid, vid, verdict))}
