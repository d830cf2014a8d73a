"""The provider: runs the declared model (or deviates, per its strategy) and commits each output.

A commitment is the provider's signature over (task id, input hash, output hash, model id,
provider id), in its signing scheme (:mod:`reference_node.crypto`: one Ed25519 signature per
task, or, by default, per Merkle root of a batch's commitments with each task's inclusion path);
it is recorded on the ledger before the reply goes to the client.
The model id is the sha256 of the declared model's weight file (:data:`MODEL_ID`); an output
is the model's 10 integer class scores. How each deviation realises its divergence δ_j is
documented in :mod:`reference_node.models`. A task whose input is not a valid encoding of an
image is refused: :meth:`Provider.infer` raises :class:`reference_node.models.InvalidInput`
naming the task (the HTTP service answers 422 before the task reaches a batch).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from reference_node import models, strategies
from reference_node.crypto import SCHEMES, Key, commitment_message
from reference_node.params import NodeParams

MODEL_ID = models.DECLARED_ID  # sha256 of reference_node/data/models/declared.npz


@dataclass
class Task:
    task_id: str
    input: str
    client: str
    fee: float


@dataclass
class Prepared:
    """A batch whose outputs are computed and whose commitment messages await signatures."""
    tasks: list[Task]
    actions: list[str]
    outputs: list[list[int]]
    input_hashes: list[str]
    output_hashes: list[str]
    messages: list[bytes]


class Provider:
    def __init__(self, provider_id: str, params: NodeParams, strategy: str = "honest", seed: int | str = 0,
                 model_id: str = MODEL_ID, signing: str = SCHEMES[0]):
        if signing not in SCHEMES:
            raise ValueError(f"signing scheme: expected one of {', '.join(SCHEMES)}, found {signing!r}")
        self.id = provider_id
        self.signing = signing
        self.params = params
        self.model_id = model_id
        self.model = models.model(model_id)
        self.weaker = models.model(models.WEAKER_ID)
        self.key = Key(seed, provider_id)
        self.secret = hashlib.sha256(f"provider-secret|{seed}|{provider_id}".encode()).digest()
        rng_seed = int.from_bytes(hashlib.sha256(f"provider-rng|{seed}|{provider_id}".encode()).digest()[:8], "big")
        self.rng = np.random.default_rng(rng_seed)  # the strategy's own randomness (learners, mixed)
        # outputs (random scores, honest noise) draw from their own stream, so a learner's choices do not
        # depend on how many numbers an output format consumes
        self.output_rng = np.random.default_rng([rng_seed, 1])
        scale = params.slash + params.reward
        self.strategy = strategies.make(strategy, params.deviation_names, self.rng, scale=scale)
        self.spec = strategy
        beta = params.miss_rate
        self.noise_exceed = 0.0 if params.comparison == "exact" else (
            params.false_alarm_rate / (1 - beta) if beta < 1 else 0.0)

    def register_ops(self, stake: float | None = None) -> list[dict]:
        stake = self.params.minimum_stake if stake is None else stake
        ops = [{"op": "register", "request_id": f"register:{self.id}", "account": self.id, "kind": "provider",
                "pubkey": self.key.public_hex, "strategy": self.spec}]
        if stake > 0:
            ops.append({"op": "deposit", "request_id": f"stake:{self.id}", "account": self.id, "amount": stake})
        return ops

    def _run(self, tasks: list[Task]) -> tuple[list[str], list[list[int]]]:
        """Each task's action and output scores (the model, or the deviation, per the strategy)."""
        n = len(tasks)
        try:
            pixels = models.decode([t.input for t in tasks])
        except models.InvalidInput as err:
            tid = tasks[err.index].task_id
            raise models.InvalidInput(f"task {tid!r}: input: {err.problem}", err.index, err.problem) from None
        many = getattr(self.strategy, "choose_many", None)  # the n choices at once (see strategies)
        actions = many(n) if many is not None else [self.strategy.choose() for _ in range(n)]
        # what each task gets: 0 the declared model, 1 the weaker model, 2 random scores
        # (a deviation's divergent set: the tasks whose keyed hash u_j is below its divergence δ_j)
        route = np.zeros(n, dtype=np.int8)
        for action in sorted(set(actions) - {"honest"}):
            rows = [i for i, a in enumerate(actions) if a == action]
            u = models.unit_hashes((self.secret, action), [tasks[i].task_id for i in rows])
            route[np.array(rows)[u < self.params.deviation(action).divergence]] = (
                2 if models.deviation_kind(action) == "random" else 1)
        if route.any():
            honest_rows, cheap_rows, random_rows = (np.flatnonzero(route == k) for k in range(3))
        else:
            honest_rows, cheap_rows, random_rows = np.arange(n), (), ()
        if len(honest_rows) == n:
            outputs = self.model.scores(pixels)
        else:
            outputs = np.empty((n, models.OUT), dtype=np.int64)
            if len(honest_rows):
                outputs[honest_rows] = self.model.scores(pixels[honest_rows])
        if len(honest_rows) and (self.noise_exceed or self.params.comparison == "tolerance"):
            # honest outputs on noisy hardware; a deviator's non-divergent outputs are noise-free so its
            # flag probability per effective audit is exactly δ_j(1 − β), the model's d_j
            noisy = [i for i in honest_rows.tolist() if actions[i] == "honest"]
            if noisy:
                outputs[noisy] += models.honest_noise(self.output_rng, len(noisy), self.noise_exceed)
        if len(cheap_rows):
            outputs[cheap_rows] = self.weaker.scores(pixels[cheap_rows])
        if len(random_rows):
            outputs[random_rows] = models.random_output(self.output_rng, len(random_rows))
        return actions, outputs.tolist()

    def infer(self, tasks: list[Task]) -> list[tuple[dict, dict]]:
        """Run a batch of tasks; returns (reply, commit operation) per task."""
        prepared = self.prepare(tasks)
        return self.finish(prepared, self.key.sign_commitments(prepared.messages, self.signing))

    def prepare(self, tasks: list[Task]) -> Prepared:
        """Run the model on a batch and build the messages to sign (sign them, then :meth:`finish`)."""
        actions, outputs = self._run(tasks)
        model_id, pid = self.model_id, self.id
        sha = hashlib.sha256
        ihs = [sha(t.input.encode()).hexdigest() for t in tasks]
        ohs = models.output_hashes(outputs)
        messages = [commitment_message(t.task_id, ih, oh, model_id, pid) for t, ih, oh in zip(tasks, ihs, ohs)]
        return Prepared(tasks, actions, outputs, ihs, ohs, messages)

    def finish(self, prepared: Prepared, sigs: list[str]) -> list[tuple[dict, dict]]:
        """The (reply, commit operation) pairs of a prepared batch, given the signatures of its messages."""
        return [({"task_id": op["task_id"], "output": op["output"], "output_hash": op["output_hash"],
                  "input_hash": op["input_hash"], "model_id": op["model_id"], "provider": op["provider"],
                  "signature": op["signature"]}, op) for op in self.commit_ops(prepared, sigs)]

    def commit_ops(self, prepared: Prepared, sigs: list[str]) -> list[dict]:
        """The ledger's commit operations of a prepared batch, given the signatures of its messages
        (the in-process network needs no replies)."""
        model_id, pid = self.model_id, self.id
        p = prepared
        costs = {a: self.params.cost_of(a) for a in set(p.actions)}
        return [{"op": "commit", "request_id": f"commit:{task.task_id}", "task_id": task.task_id, "provider": pid,
                 "client": task.client, "fee": task.fee, "input_hash": ih, "output_hash": oh, "model_id": model_id,
                 "signature": sig, "input": task.input, "output": vals, "action": action, "cost": costs[action]}
                for task, action, vals, ih, oh, sig in zip(p.tasks, p.actions, p.outputs, p.input_hashes,
                                                           p.output_hashes, sigs)]

    def committed(self, action: str, fee: float) -> None:
        """A commitment was recorded: the task's payoff is fee − cost unless it is slashed later."""
        self.strategy.observe(action, fee - self.params.cost_of(action))

    def slashed(self, action: str, slash: float, fee: float) -> None:
        self.strategy.observe(action, -(slash + fee))


def signed_commit_ops(prepared: list[tuple[Provider, Prepared]], seed: int | str, pool: Any = None) -> list[dict]:
    """The commit operations of prepared batches (each with the provider that prepared it, all made
    from ``seed``), in order. The messages are signed on ``pool`` (a
    :class:`reference_node.parallel.CryptoPool`, which splits them across its threads; libsodium
    releases the GIL) or here; Ed25519 is deterministic, so the operations are the same either way."""
    if pool is not None:
        sigs = pool.sign([(seed, p.id, pr.messages, p.signing) for p, pr in prepared])
    else:
        sigs = [p.key.sign_commitments(pr.messages, p.signing) for p, pr in prepared]
    ops: list[dict] = []
    for (p, pr), sg in zip(prepared, sigs):
        ops += p.commit_ops(pr, sg)
    return ops
