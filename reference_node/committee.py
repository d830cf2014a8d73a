r"""The consensus game in the reference network: committees of verifier nodes vote on m-option
claims, commit-then-reveal; consensus by threshold; windowed slashing on the stake ledger.
In-process here (:func:`run_committee`); over HTTP in :mod:`reference_node.committee_services`
(``mira-node up --params <consensus params>``).

What runs
---------
* **Seeded verifier models** (:class:`SeededModels`). A claim ``c`` has a true option and one
  *distractor* (the plausible wrong answer models share), both drawn from
  sha256(seed, claim). Its latent difficulty p_c ~ Beta(a(1−κ)/κ, (1−a)(1−κ)/κ) (the law of
  :mod:`mira_theory.games.consensus`; κ = 0: p_c = a; κ = 1: p_c = 1 with probability a, else
  0) is drawn by numpy from a generator seeded with sha256(seed, claim). An honest node ``i``
  answers right iff u(seed, c, i) < p_c, with u a uniform from sha256(seed, claim, node), and
  otherwise answers the distractor: so its accuracy is a and two honest nodes' correctness has
  correlation exactly κ. A deviating node of type j (accuracy a_j from the environment, e.g.
  a random guess 1/m) answers right iff u < a_j and otherwise a uniformly chosen wrong option.
  These are stand-ins for inference models with the modelled error law, not neural networks;
  they are the default because they realise the theory's law exactly (accuracy a, pairwise
  correlation κ, every honest error on the one shared distractor), which is what the
  experiment tests the predictions against.
* **Digits verifier models** (:class:`DigitModels`, ``run_committee(..., models="digits")``):
  real inference. A claim is :func:`reference_node.models.digit_claim`: a held-out digits
  image, its true digit and m − 1 distinct wrong digits drawn uniformly from sha256(seed,
  claim); honest node i runs the shipped verifier model ``verifier-(i mod K)`` on the image
  and votes for the option with the highest score. A deviating node of type j answers as
  with the seeded models (right with probability a_j, else a uniform wrong option). The
  accuracy a and correlation κ this network realises are what ``mira-node calibrate``
  measures and writes into a consensus scenario (``models/reference-committee.toml``): a is
  exact in expectation for any node count that K divides; κ is the correlation of two
  distinct random nodes of a network of ``network.nodes`` nodes. The theory's single shared
  distractor is a worst case the real models do not follow (their errors spread).
* **Votes: commit, then reveal.** A member first *seals* its vote: it publishes the
  commitment ``sha256(b"mira-vote-commit-v1|claim|node|option|" + salt)`` (:func:`vote_commitment`)
  with a fresh 32-byte salt, signed with its Ed25519 key (:class:`reference_node.crypto.Key`)
  over ``mira-vote-seal-v1|claim|node|commitment`` (:func:`seal_message`). Only once the
  whole committee's commitments are on the ledger does it *reveal* the option and salt, signed
  over ``mira-vote-v1|claim|node|option`` (:func:`vote_message`, the message the clear votes
  were signed over before). So no member can learn another's vote before fixing its own,
  and no member can change its vote after seeing the others'. The salt is
  ``sha256(salt key, claim)`` with the node's salt key derived, as its signing key is, from
  its secret (seed, name) (:class:`CommitteeNode`): unpredictable to everyone else, and a
  restarted node re-derives it, so it can still reveal what it sealed before a crash (a
  deployment would draw both secrets at random and keep them on disk).
* **Committees**: N distinct nodes drawn uniformly per claim (numpy generator seeded with
  ``seed``) from the registered nodes that still hold stake, by the claims' coordinator
  (:func:`run_committee` in-process; :class:`reference_node.committee_services.Coordinator`
  over HTTP). The ledger does not re-derive the draw: it checks what it can (N distinct
  registered verifiers, each holding stake, each seat's commitment signed by that seat's node).
* **The ledger** (:class:`CommitteeLedger`, a subclass of :class:`reference_node.ledger.Ledger`
  that adds the ops ``vote_commit`` and ``claim``; ledger.py itself is unchanged).

  ``vote_commit`` (request id ``vote_commit:<claim_id>``): ``claim_id, client, options, truth,
  commitments`` = one entry per seat, in seat order, ``{node, commitment, signature, cost}``,
  or ``{node, commitment: null}`` for a drawn member that sealed nothing (it was unreachable):
  an *absent* seat. It records the sealed votes (the ``vote_commit`` event; a restarted ledger
  rebuilds the claims awaiting their reveals from these events). Refused, leaving the ledger
  unchanged: a second commit for a claim that has sealed votes or was decided (409); a seat of
  an unknown account (404), of an account that is not a verifier (403), of a node without stake
  (409); repeated nodes, the wrong number of seats, no sealed seat at all, a malformed
  commitment (422); a commitment whose signature does not verify under the seat's key (401).

  ``claim`` (the reveal; request id ``claim:<claim_id>``): ``claim_id, reveals`` = a list of
  ``{node, option, salt, signature}``, at most one per seat, in any order. The ledger checks
  every reveal (the node holds a seat of this claim (403) and sealed a vote (409), the option is
  in range, the salt is 64 hex digits (422), the signature verifies (401), and
  sha256(claim, node, option, salt) equals the seat's commitment (422)); any failed check
  rejects the whole operation and leaves the ledger unchanged (the coordinator checks reveals
  before it submits and leaves out those that fail, so one bad member cannot block a claim).
  A reveal before the commit (no sealed votes) and a reveal of a decided claim are refused
  (409); a replay of the same request returns the first result. When accepted, the claim is
  *decided*: the consensus is the option with ≥ K = ⌈τN⌉ of the revealed votes (K counts all
  N seats, so a missing vote can never help an option reach it), the reward r is paid to every
  revealed vote matching it, and every member's window advances. A member that sealed a vote
  but is not among the reveals (it withheld, did not answer, or its reveal failed the checks),
  and a member with an absent seat, cast no vote: it is paid nothing and the claim counts in
  its window as a claim sat on *without a match* (as a mismatching vote does), so withholding
  a reveal, e.g. after seeing that one's vote would not match, is never better than revealing.
  A member whose window of W claims closes with fewer than ⌈θW⌉ matches is slashed min(L, its
  remaining stake), all of it burned. Every state change is an event in the same transaction
  as the balances (the base class's batch transaction, idempotency by request id, and the
  conservation invariant — rewards enter as ``fees``, slashes leave as ``burned`` — checked
  before every commit). Trust: the coordinator relays the sealed votes and reveals; it cannot
  forge, alter or re-target a vote (every one is signed by its node and bound to the claim),
  but it can leave a member's reveal out, as in any relayed protocol (a node submitting its
  own reveals before a ledger deadline would remove that; not built).

Events added (read by :func:`summarize_committee` and :mod:`mira_theory.experiment_consensus`)
------------------------------------------------------------------------------------------
``vote_commit`` (request id ``vote_commit:<claim_id>``; account = client, task_id = claim_id,
amount 0)::

    claim_id, client, options (m), quorum (K), committee [node ids, in seat order],
    commitments [hex | null (absent seat) per seat], signatures [the seal signature per seat,
    hex | null], costs [the environment's cost of each member's inference], truth

``claim`` (request id ``claim:<claim_id>``; account = client, task_id = claim_id, amount =
rewards paid, micro-units)::

    claim_id, client, options (m), quorum (K), committee [node ids, in seat order],
    votes [option per seat; null for a seat that cast no vote (unrevealed or absent), never
    equal to the consensus, even when there is none], signatures [the reveal's signature per
    seat over mira-vote-v1|claim|node|option, hex | null], costs [the environment's cost of
    each member's inference: ground truth for the experiment, read by no protocol decision],
    consensus (option | null), truth (the right option: ground truth, as commit.action is),
    correct (bool | null when no consensus), reward (r per matching vote), paid (total);
    added with commit-then-reveal: seats ["revealed" | "unrevealed" | "absent" per seat],
    commitments [hex | null per seat], salts [hex | null per seat], commit_seq (seq of the
    claim's vote_commit event)

``window`` (request id ``window:<node>:<index>``, written in the claim's transaction when that
claim is the W-th of the node's window; account = node, task_id = the closing claim, amount =
slash in micro-units)::

    node, window (0, 1, ...), claims (W), matches, required (⌈θW⌉), slashed (bool),
    slash, capped (slash cut to the remaining stake), burned

Nodes register as ledger ``verifier`` accounts (their ``strategy`` field: ``honest`` or a
deviation name) and stake with ``deposit``; the paying client registers as ``client``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from reference_node import crypto
from reference_node import models as digit_models
from reference_node.ledger import HEX_RE, ID_RE, OPS, Ledger, LedgerError, _field, _ident
from reference_node.params import UNIT, NodeParams, to_units

EPOCH = 1_800_000_000.0


def vote_message(claim_id: str, node: str, option: int) -> bytes:
    """What a reveal is signed over (the clear vote)."""
    return "|".join(("mira-vote-v1", claim_id, node, str(int(option)))).encode()


def vote_commitment(claim_id: str, node: str, option: int, salt: bytes) -> str:
    """The sealed vote: sha256 over (claim id, node, option, 32-byte salt), hex."""
    return hashlib.sha256("|".join(("mira-vote-commit-v1", claim_id, node, str(int(option)), "")).encode()
                          + salt).hexdigest()


def seal_message(claim_id: str, node: str, commitment: str) -> bytes:
    """What a commitment is signed over."""
    return "|".join(("mira-vote-seal-v1", claim_id, node, commitment)).encode()


# --------------------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CommitteeParams:
    """The consensus deployment parameters and the environment a network realises."""

    committee_size: int
    threshold: float
    window: int
    agreement_threshold: float
    slash: float
    reward: float
    options: int
    accuracy: float
    error_correlation: float
    cost_honest: float
    deviations: dict[str, tuple[float, float]]  # name -> (cost, accuracy)
    scenario: str = ""
    scenario_sha256: str | None = None

    # the theory's own rules (imported on first use: a node service, which needs neither, starts
    # without loading the solver stack)
    @functools.cached_property
    def quorum(self) -> int:
        from mira_theory.games.consensus import quorum

        return quorum(self.committee_size, self.threshold)

    @functools.cached_property
    def required(self) -> int:
        from mira_theory.games.consensus import slash_count

        return slash_count(self.window, self.agreement_threshold)

    def cost_of(self, strategy: str) -> float:
        return self.cost_honest if strategy == "honest" else self.deviations[strategy][0]

    @classmethod
    def from_doc(cls, doc: dict[str, Any] | str | Path) -> CommitteeParams:
        """From an exported consensus parameters document (dict) or file (validated by
        :func:`mira_theory.deployment.read_params`)."""
        from mira_theory.deployment import PARAMETERS, read_params
        from mira_theory.scenario import Problem, ScenarioError, check_value

        file = "<params>"
        if not isinstance(doc, dict):
            file = str(doc)
            read_params(doc, "consensus")
            text = Path(doc).read_text(encoding="utf-8-sig")
            if str(doc).endswith(".toml"):
                import tomllib

                doc = tomllib.loads(text)
            else:
                doc = json.loads(text)
        problems: list[Problem] = []
        if doc.get("game") != "consensus":
            problems.append(Problem(file, "game", "'consensus'", repr(doc.get("game"))))
        raw = doc.get("parameters") or {}
        p: dict[str, Any] = {}
        for name, (_, tp, check) in PARAMETERS["consensus"].items():
            value, pr = check_value(file, f"parameters.{name}", raw.get(name), tp, check)
            problems += pr
            p[name] = value
        env = doc.get("environment") or {}
        try:
            ver, claim = env["verifier"], env["claim"]
            devs = {d["name"]: (float(d["cost"]), float(d["accuracy"])) for d in env.get("deviation", [])}
            extra = dict(options=int(claim["options"]), accuracy=float(ver["accuracy"]),
                         error_correlation=float(ver["error_correlation"]), cost_honest=float(ver["cost"]))
        except (KeyError, TypeError, ValueError) as err:
            problems.append(Problem(file, "environment", "the consensus scenario values (claim, verifier, "
                                    "deviation): re-export with mira-theory export", f"missing or bad: {err}"))
        else:
            for key, value, ok, want in (
                    ("claim.options", claim["options"], lambda v: isinstance(v, int) and v >= 2, "an integer ≥ 2"),
                    ("verifier.accuracy", extra["accuracy"], lambda v: 0 <= v <= 1, "a probability in [0, 1]"),
                    ("verifier.error_correlation", extra["error_correlation"], lambda v: 0 <= v <= 1,
                     "a correlation in [0, 1]"),
                    ("verifier.cost", extra["cost_honest"], lambda v: 0 <= v < math.inf, "a finite cost ≥ 0"),
                    *((f"deviation.{k}", v, lambda v: 0 <= v[0] < math.inf and 0 <= v[1] <= 1,
                       "a finite cost ≥ 0 and an accuracy in [0, 1]") for k, v in devs.items())):
                if not ok(value):
                    problems.append(Problem(file, f"environment.{key}", want, repr(value)))
        if problems:
            raise ScenarioError(problems)
        return cls(**p, **extra, deviations=devs, scenario=str(doc.get("scenario", "")),
                   scenario_sha256=doc.get("scenario_sha256"))

    def node_params(self) -> NodeParams:
        """The base ledger's parameters (slash L; no audit game, no settlement window)."""
        return NodeParams(path="", scenario=self.scenario, scenario_sha256=self.scenario_sha256, game="consensus",
                          sampling_rate=0.0, slash=self.slash, minimum_stake=0.0, reward=self.reward,
                          verifiers_per_audit=1, comparison="exact", cost_honest=self.cost_honest, deviations=(),
                          miss_rate=0.0, false_alarm_rate=0.0, collusion=0.0, bounty_share=0.0, audit_cost=0.0,
                          throughput=1.0, settlement_latency=0.0)


# --------------------------------------------------------------------------------------
# Seeded verifier models
# --------------------------------------------------------------------------------------


def _u64(*parts: Any) -> int:
    return int.from_bytes(hashlib.sha256("|".join(map(str, parts)).encode()).digest()[:8], "big")


def _uniform(*parts: Any) -> float:
    return (_u64(*parts) >> 11) / float(1 << 53)


class SeededModels:
    """Deterministic answers with accuracy a and pairwise honest error correlation κ."""

    def __init__(self, params: CommitteeParams, seed: int | str):
        self.p = params
        self.seed = seed

    def claim(self, claim_id: str) -> tuple[int, int, float]:
        """(truth, distractor, latent accuracy p_c) of a claim."""
        m, a, k = self.p.options, self.p.accuracy, self.p.error_correlation
        truth = _u64(self.seed, claim_id, "truth") % m
        distractor = (truth + 1 + _u64(self.seed, claim_id, "distractor") % (m - 1)) % m
        if k <= 1e-12 or a in (0.0, 1.0):
            latent = a
        elif k >= 1.0:
            latent = 1.0 if _uniform(self.seed, claim_id, "latent") < a else 0.0
        else:
            s = (1.0 - k) / k
            rng = np.random.default_rng(_u64(self.seed, claim_id, "latent"))
            latent = float(rng.beta(a * s, (1.0 - a) * s))
        return truth, distractor, latent

    def answer(self, claim: tuple[int, int, float], claim_id: str, node: str, strategy: str) -> int:
        truth, distractor, latent = claim
        u = _uniform(self.seed, claim_id, node)
        if strategy == "honest":
            return truth if u < latent else distractor
        acc = self.p.deviations[strategy][1]
        if u < acc:
            return truth
        m = self.p.options
        return (truth + 1 + _u64(self.seed, claim_id, node, "wrong") % (m - 1)) % m


class DigitModels:
    """Real verifier models on digit claims (see the module docstring): node i runs verifier-(i mod K)."""

    def __init__(self, params: CommitteeParams, seed: int | str, nodes: list[str],
                 indices: dict[str, int] | None = None):
        """``indices``: node -> its index i in the network (default: its position in ``nodes``);
        a node-service passes its own alone, and only the models in use are run."""
        if not 2 <= params.options <= digit_models.OUT:
            raise ValueError(f"models='digits': claims are built from the 10 digits, so options must be "
                             f"2..{digit_models.OUT}, found {params.options}")
        self.p = params
        self.seed = seed
        pixels, _ = digit_models.digits()
        verifiers = digit_models.verifier_models()
        index = indices if indices is not None else {node: i for i, node in enumerate(nodes)}
        which = {node: index[node] % len(verifiers) for node in nodes}
        scores = {k: verifiers[k].scores(pixels) for k in sorted(set(which.values()))}  # every image, once per model
        self.scores = {node: scores[k] for node, k in which.items()}
        self.model_of = {node: verifiers[k].name for node, k in which.items()}
        self._seeded = SeededModels(params, seed)

    def claim(self, claim_id: str) -> tuple[int, Any]:
        """(truth, the digit claim) of a claim id."""
        c = digit_models.digit_claim(self.seed, claim_id, self.p.options)
        return c.truth, c

    def answer(self, claim: tuple[int, Any], claim_id: str, node: str, strategy: str) -> int:
        truth, c = claim
        if strategy == "honest":
            return digit_models.answer(self.scores[node][c.image], c.options)
        return self._seeded.answer((truth, -1, 0.0), claim_id, node, strategy)


class CommitteeNode:
    """A committee member: its strategy, its Ed25519 key and its salt key, both derived from its
    secret (seed, name) (see the module docstring), and the probability ``withhold`` that it keeps
    a sealed vote unrevealed (a fault or a deviation, to exercise the non-reveal rule; default 0)."""

    def __init__(self, node_id: str, strategy: str, seed: int | str, withhold: float = 0.0):
        if not 0.0 <= withhold <= 1.0:
            raise ValueError(f"withhold of {node_id}: expected a probability in [0, 1], found {withhold!r}")
        self.id, self.strategy, self.seed, self.withhold = node_id, strategy, seed, float(withhold)
        self.key = crypto.Key(seed, node_id)
        self._salt_key = hashlib.sha256(f"mira-vote-salt|{seed}|{node_id}".encode()).digest()

    def salt(self, claim_id: str) -> bytes:
        """The 32-byte salt of this node's vote on a claim (secret until revealed)."""
        return hashlib.sha256(self._salt_key + claim_id.encode()).digest()

    def answer(self, models: SeededModels | DigitModels, claim: tuple, claim_id: str) -> int:
        return models.answer(claim, claim_id, self.id, self.strategy)

    def commitment(self, claim_id: str, option: int) -> str:
        return vote_commitment(claim_id, self.id, option, self.salt(claim_id))

    def seal(self, claim_id: str, option: int, cost: float) -> dict[str, Any]:
        """The sealed vote (a ``vote_commit`` seat)."""
        c = self.commitment(claim_id, option)
        return {"node": self.id, "commitment": c, "signature": self.key.sign(seal_message(claim_id, self.id, c)),
                "cost": cost}

    def reveal(self, claim_id: str, option: int) -> dict[str, Any]:
        """The opened vote (a ``claim`` reveal)."""
        return {"node": self.id, "option": int(option), "salt": self.salt(claim_id).hex(),
                "signature": self.key.sign(vote_message(claim_id, self.id, option))}

    def withholds(self, claim_id: str) -> bool:
        """Whether this node keeps its vote on the claim unrevealed (seeded by (seed, claim, node))."""
        return self.withhold > 0.0 and _uniform(self.seed, claim_id, self.id, "withhold") < self.withhold


def claim_truth(models: SeededModels | DigitModels, claim_id: str) -> int:
    return int(models.claim(claim_id)[0])


# --------------------------------------------------------------------------------------
# The ledger with the consensus operations
# --------------------------------------------------------------------------------------

REVEALED, UNREVEALED, ABSENT = "revealed", "unrevealed", "absent"


def _item(d: dict, where: str, name: str, kind: type | tuple, required: bool = True, default: Any = None) -> Any:
    """``_field`` of a list item: the message names the item (``commitments[2].node``)."""
    try:
        return _field(d, name, kind, required, default)
    except LedgerError as err:
        raise LedgerError(err.status, err.message.replace(f"field {name!r}", f"field '{where}.{name}'", 1)) from None


def _item_hex(d: dict, where: str, name: str, length: int) -> str:
    value = _item(d, where, name, str)
    if HEX_RE[length].fullmatch(value) is None:
        raise LedgerError(422, f"field '{where}.{name}': expected {length} lowercase hex digits, found {value[:40]!r}")
    return value


def _item_id(d: dict, where: str, name: str) -> str:
    value = _item(d, where, name, str)
    if ID_RE.fullmatch(value) is None:
        raise LedgerError(422, f"field '{where}.{name}': expected an id of 1-128 characters [A-Za-z0-9-_.:], "
                               f"found {value[:40]!r}")
    return value


class CommitteeLedger(Ledger):
    """:class:`Ledger` plus the ``vote_commit`` and ``claim`` operations (see the module docstring)."""

    OPS = (*OPS, "vote_commit", "claim")

    def __init__(self, path: str | Path, params: CommitteeParams, **kwargs: Any):
        self.committee = params
        self._windows: dict[str, list[int]] = {}  # node -> [window index, claims in window, matches]
        self._decided: set[str] = set()  # claim ids decided on the ledger (or in the current batch)
        self._sealed: dict[str, dict[str, Any]] = {}  # claim id -> its sealed votes, awaiting the reveal
        super().__init__(path, params.node_params(), **kwargs)

    def _load(self) -> None:
        super()._load()
        # the claims awaiting reveals and the window state are derived from the log (claims since
        # each node's last closed window)
        self._windows = {}
        self._decided = set()
        self._sealed = {}
        W = self.committee.window
        for kind, data in self.db.execute("SELECT kind, data FROM events WHERE kind IN ('vote_commit', 'claim') "
                                          "ORDER BY seq"):
            d = json.loads(data)
            if kind == "vote_commit":
                self._sealed[d["claim_id"]] = _sealed_state(d)
                continue
            self._sealed.pop(d["claim_id"], None)
            self._decided.add(d["claim_id"])
            cons = d["consensus"]
            for node, option in zip(d["committee"], d["votes"]):
                st = self._windows.setdefault(node, [0, 0, 0])
                st[1] += 1
                st[2] += option is not None and option == cons
                if st[1] == W:
                    st[:] = [st[0] + 1, 0, 0]

    def execute(self, ops: Iterable[dict], verified: list[bool] | None = None,
                checked: list | None = None) -> list[dict]:
        # a batch that fails to commit leaves the claim state as it was: windows copied (one entry per
        # node), the claims sealed and decided in the batch undone (not the whole sets copied)
        windows = {k: list(v) for k, v in self._windows.items()}
        self._undo: list[tuple[str, dict | None]] = []
        try:
            return super().execute(ops, verified, checked)
        except BaseException:
            self._windows = windows
            for cid, sealed in reversed(self._undo):
                self._decided.discard(cid)
                if sealed is None:
                    self._sealed.pop(cid, None)
                else:
                    self._sealed[cid] = sealed
            raise

    def _apply(self, op: dict) -> dict:
        kind = op.get("op")
        if isinstance(kind, str) and kind not in self.OPS:
            raise LedgerError(422, f"field 'op': expected one of {', '.join(self.OPS)}, found {kind[:40]!r}")
        return super()._apply(op)

    def _signature_jobs(self, ops: list) -> tuple[list[tuple[str, str, bytes]], list[tuple[str, str, bytes]]]:
        """The base class's jobs plus the well-formed seal and reveal signatures of registered nodes
        (checked on the crypto pool, if any; the ops look their results up by the same key)."""
        jobs, keys = super()._signature_jobs(ops)
        accounts = self.accounts
        for op in ops:
            if not isinstance(op, dict):
                continue
            kind, cid = op.get("op"), op.get("claim_id")
            if kind not in ("vote_commit", "claim") or not isinstance(cid, str):
                continue
            items = op.get("commitments" if kind == "vote_commit" else "reveals")
            if not isinstance(items, list):
                continue
            for it in items:
                if not isinstance(it, dict):
                    continue
                node, sig = it.get("node"), it.get("signature")
                a = accounts.get(node) if isinstance(node, str) else None
                if a is None or a.kind != "verifier" or not isinstance(sig, str):
                    continue
                if kind == "vote_commit":
                    c = it.get("commitment")
                    if not isinstance(c, str):
                        continue
                    message = seal_message(cid, node, c)
                else:
                    o = it.get("option")
                    if o.__class__ is not int:
                        continue
                    message = vote_message(cid, node, o)
                jobs.append((a.pubkey, sig, message))
                keys.append((a.id, sig, message))
        return jobs, keys

    def _claim_open(self, claim_id: str) -> None:
        """Refuse a commit for a claim that has sealed votes or was decided."""
        s = self._sealed.get(claim_id)
        if s is not None:
            raise LedgerError(409, f"claim {claim_id!r} already has sealed votes (event {s['seq']}): a second "
                                   "commit for one claim is refused")
        if claim_id in self._decided:
            raise LedgerError(409, f"claim {claim_id!r} was already decided")

    def _op_vote_commit(self, op: dict, rid: str, now: float) -> dict:
        cp = self.committee
        claim_id = _ident(op, "claim_id")
        client = _ident(op, "client")
        options = _field(op, "options", int)
        if options != cp.options:
            raise LedgerError(422, f"field 'options': expected {cp.options}, found {options!r}")
        truth = _field(op, "truth", int)
        if not 0 <= truth < options:
            raise LedgerError(422, f"field 'truth': expected an option in 0..{options - 1}, found {truth!r}")
        seats = _field(op, "commitments", list)
        if len(seats) != cp.committee_size:
            raise LedgerError(422, f"field 'commitments': expected one per seat, {cp.committee_size}, found "
                                   f"{len(seats)}")
        self._claim_open(claim_id)
        nodes, commitments, sigs, costs = [], [], [], []
        for i, c in enumerate(seats):
            where = f"commitments[{i}]"
            if not isinstance(c, dict):
                raise LedgerError(422, f"field '{where}': expected an object, found {type(c).__name__}")
            node = _item_id(c, where, "node")
            a = self._account(node, "verifier")
            if a.locked <= 0:
                raise LedgerError(409, f"node {node!r} has no stake left: it cannot sit on a committee")
            commitment = sig = None
            if c.get("commitment") is not None:
                commitment = _item_hex(c, where, "commitment", 64)
                sig = _item_hex(c, where, "signature", 128)
                if self.verify_signatures and not self._signature_ok(a, sig, seal_message(claim_id, node, commitment)):
                    raise LedgerError(401, f"field '{where}.signature': expected the Ed25519 signature of {node!r} "
                                           f"over its commitment on claim {claim_id!r}, found an invalid one")
            cost = _item(c, where, "cost", (int, float), required=False, default=0.0)
            if not (abs(cost) < 1e300 and math.isfinite(cost)) or cost < 0:  # abs first: a huge int overflows isfinite
                raise LedgerError(422, f"field '{where}.cost': expected a finite cost ≥ 0, found {cost!r}")
            nodes.append(node)
            commitments.append(commitment)
            sigs.append(sig)
            costs.append(float(cost))
        if len(set(nodes)) != len(nodes):
            raise LedgerError(422, "field 'commitments': expected distinct committee members, found a repeated node")
        if all(c is None for c in commitments):
            raise LedgerError(422, "field 'commitments': expected at least one sealed vote, found only absent seats")
        # --- validated: state changes from here on
        event = self._event(rid, "vote_commit", client, claim_id, 0,
                            {"claim_id": claim_id, "client": client, "options": options, "quorum": cp.quorum,
                             "committee": nodes, "commitments": commitments, "signatures": sigs, "costs": costs,
                             "truth": truth}, now)
        self._undo.append((claim_id, None))
        self._sealed[claim_id] = _sealed_state(event)
        return event

    def _op_claim(self, op: dict, rid: str, now: float) -> dict:
        cp = self.committee
        claim_id = _ident(op, "claim_id")
        if "votes" in op:
            raise LedgerError(422, "field 'votes': expected 'reveals' of sealed votes (a claim's votes are sealed "
                                   "with vote_commit first, then revealed), found clear votes")
        sealed = self._sealed.get(claim_id)
        if sealed is None:
            if claim_id in self._decided:
                raise LedgerError(409, f"claim {claim_id!r} was already decided")
            raise LedgerError(409, f"claim {claim_id!r} has no sealed votes: a reveal needs the committee's "
                                   "vote_commit first")
        reveals = _field(op, "reveals", list)
        committee, commitments = sealed["committee"], sealed["commitments"]
        N = len(committee)
        if len(reveals) > N:
            raise LedgerError(422, f"field 'reveals': expected at most one per seat, {N}, found {len(reveals)}")
        seat_of = {node: i for i, node in enumerate(committee)}
        votes: list[int | None] = [None] * N
        sigs: list[str | None] = [None] * N
        salts: list[str | None] = [None] * N
        options = sealed["options"]
        for i, r in enumerate(reveals):
            where = f"reveals[{i}]"
            if not isinstance(r, dict):
                raise LedgerError(422, f"field '{where}': expected an object, found {type(r).__name__}")
            node = _item_id(r, where, "node")
            seat = seat_of.get(node)
            if seat is None:
                raise LedgerError(403, f"field '{where}.node': expected a member of the committee of claim "
                                       f"{claim_id!r}, found {node!r}, which holds no seat on it")
            if commitments[seat] is None:
                raise LedgerError(409, f"field '{where}': node {node!r} sealed no vote on claim {claim_id!r} "
                                       "(its seat is absent): it has nothing to reveal")
            if votes[seat] is not None:
                raise LedgerError(422, f"field 'reveals': expected one reveal per member, found {node!r} twice")
            option = _item(r, where, "option", int)
            if not 0 <= option < options:
                raise LedgerError(422, f"field '{where}.option': expected 0..{options - 1}, found {option!r}")
            salt = _item_hex(r, where, "salt", 64)
            sig = _item_hex(r, where, "signature", 128)
            if self.verify_signatures and not self._signature_ok(self.accounts[node], sig,
                                                                 vote_message(claim_id, node, option)):
                raise LedgerError(401, f"field '{where}.signature': expected the Ed25519 signature of {node!r} over "
                                       f"its vote on claim {claim_id!r}, found an invalid one")
            if vote_commitment(claim_id, node, option, bytes.fromhex(salt)) != commitments[seat]:
                raise LedgerError(422, f"field '{where}': expected the option and salt that open the commitment "
                                       f"{commitments[seat][:16]}… of {node!r} on claim {claim_id!r}, found a "
                                       "reveal that does not (another option or salt)")
            votes[seat], sigs[seat], salts[seat] = option, sig, salt
        # --- validated: state changes from here on
        self._undo.append((claim_id, sealed))
        del self._sealed[claim_id]
        self._decided.add(claim_id)
        counts = np.bincount(np.array([v for v in votes if v is not None], dtype=np.int64), minlength=options)
        top = int(np.argmax(counts))
        K = cp.quorum
        consensus = top if counts[top] >= K else None
        matches = [v is not None and v == consensus for v in votes]
        r = to_units(cp.reward)
        paid = 0
        for node, match in zip(committee, matches):
            if match and r:
                self.accounts[node].balance += r
                self._dirty.add(node)
                paid += r
        self.totals["fees"] += paid
        truth = sealed["truth"]
        seats = [REVEALED if v is not None else (ABSENT if c is None else UNREVEALED)
                 for v, c in zip(votes, commitments)]
        event = self._event(rid, "claim", sealed["client"], claim_id, paid,
                            {"claim_id": claim_id, "client": sealed["client"], "options": options, "quorum": K,
                             "committee": committee, "votes": votes, "signatures": sigs, "costs": sealed["costs"],
                             "consensus": consensus, "truth": truth,
                             "correct": None if consensus is None else consensus == truth,
                             "reward": cp.reward, "paid": paid / UNIT, "seats": seats,
                             "commitments": commitments, "salts": salts, "commit_seq": sealed["seq"]}, now)
        windows = []
        for node, match in zip(committee, matches):
            st = self._windows.setdefault(node, [0, 0, 0])
            st[1] += 1
            st[2] += match
            if st[1] == cp.window:
                windows.append(self._close_window(node, st, claim_id, now))
                st[:] = [st[0] + 1, 0, 0]
        return {**event, "windows": windows}

    def _close_window(self, node: str, st: list[int], claim_id: str, now: float) -> dict:
        cp = self.committee
        a = self.accounts[node]
        required = cp.required
        slashed = st[2] < required
        slash = self._take_stake(a, self.slash_units) if slashed else 0
        capped = slashed and slash < self.slash_units
        self.totals["burned"] += slash
        self._dirty.add(node)
        return self._event(f"window:{node}:{st[0]}", "window", node, claim_id, slash,
                           {"node": node, "window": st[0], "claims": st[1], "matches": st[2], "required": required,
                            "slashed": slashed, "slash": slash / UNIT, "capped": capped, "burned": slash / UNIT},
                           now)

    # -------------------------------------------------------------------- reads
    def sealed_claims(self, claim_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """For each known claim id: ``{"status": "sealed", committee, commitments, commit_seq}`` while
        it awaits its reveals, ``{"status": "decided"}`` once decided (unknown ids are left out)."""
        out: dict[str, dict[str, Any]] = {}
        for cid in claim_ids:
            s = self._sealed.get(cid)
            if s is not None:
                out[cid] = {"status": "sealed", "committee": s["committee"], "commitments": s["commitments"],
                            "commit_seq": s["seq"]}
            elif cid in self._decided:
                out[cid] = {"status": "decided"}
        return out


def _sealed_state(d: dict) -> dict[str, Any]:
    """What a reveal needs of a claim's vote_commit event."""
    return {k: d[k] for k in ("client", "options", "truth", "committee", "commitments", "costs", "seq")}


# --------------------------------------------------------------------------------------
# The in-process runner
# --------------------------------------------------------------------------------------


class _Clock:
    def __init__(self) -> None:
        self.t = EPOCH

    def __call__(self) -> float:
        return self.t


def claim_id(seed: int | str, i: int) -> str:
    return f"c{seed}-{i:09d}"


def committee_rng(seed: int | str) -> np.random.Generator:
    """The generator committees are drawn with (in-process and by the HTTP coordinator alike)."""
    return np.random.default_rng([int(seed) if str(seed).isdigit() else _u64(seed), 0xC0])


def draw_committee(rng: np.random.Generator, eligible: list[int], size: int) -> list[int]:
    """``size`` distinct entries of ``eligible`` (node indices holding stake), uniformly."""
    return [eligible[s] for s in rng.choice(len(eligible), size, replace=False)]


def default_stake(cp: CommitteeParams, claims: int, nodes: int) -> float:
    """Enough for every window a node can close in ``claims`` claims (3× its expected share) to be
    slashed in full, so no slash is capped."""
    windows = math.ceil(claims * cp.committee_size / nodes / cp.window * 3) + 2
    return max(1.0, cp.slash * windows)


def make_models(cp: CommitteeParams, seed: int | str, models: str, nodes: list[str],
                indices: dict[str, int] | None = None) -> SeededModels | DigitModels:
    if models == "seeded":
        return SeededModels(cp, seed)
    if models == "digits":
        return DigitModels(cp, seed, nodes, indices)
    raise ValueError(f"models: expected 'seeded' or 'digits', found {models!r}")


def registration_ops(node: CommitteeNode, stake: float) -> list[dict]:
    return [{"op": "register", "request_id": f"register:{node.id}", "account": node.id, "kind": "verifier",
             "pubkey": node.key.public_hex, "strategy": node.strategy},
            {"op": "deposit", "request_id": f"deposit:{node.id}", "account": node.id, "amount": stake}]


def client_registration(seed: int | str, client: str = "client") -> dict:
    return {"op": "register", "request_id": f"register:{client}", "account": client, "kind": "client",
            "pubkey": crypto.Key(seed, client).public_hex}


def run_committee(params: CommitteeParams | dict | str | Path, db_path: str | Path, strategies: list[str],
                  claims: int, seed: int = 0, *, stake: float | None = None, batch: int = 256,
                  verify_signatures: bool = True, progress: Callable[[int], None] | None = None,
                  models: str = "seeded", withhold: dict[str, float] | None = None,
                  parallel: bool | None = None) -> dict[str, Any]:
    """Run ``claims`` claims through committees of the nodes ``strategies`` (one spec per node:
    ``honest`` or a deviation name) on a new ledger at ``db_path``; returns the workload.

    Per batch of ``batch`` claims: committees drawn, every member's vote sealed, the batch's
    ``vote_commit`` ops in one ledger transaction, then the reveals (``claim`` ops) in the next.
    ``stake`` per node defaults to enough for every window to be slashed in full (no capping).
    ``models``: ``"seeded"`` (:class:`SeededModels`, the theory's error law exactly) or
    ``"digits"`` (:class:`DigitModels`, the shipped verifier models on digit claims).
    ``withhold``: node id -> probability that the node keeps a sealed vote unrevealed.
    ``parallel``: Ed25519 on a thread pool (:mod:`reference_node.parallel`; None = when there is
    a second core); signatures are deterministic, so the event log is the same either way."""
    cp = params if isinstance(params, CommitteeParams) else CommitteeParams.from_doc(params)
    n = len(strategies)
    if n < cp.committee_size:
        raise ValueError(f"need at least committee_size = {cp.committee_size} nodes, got {n}")
    bad = [s for s in strategies if s != "honest" and s not in cp.deviations]
    if bad:
        raise ValueError(f"unknown strategies {sorted(set(bad))}: expected honest or one of {sorted(cp.deviations)}")
    if models not in ("seeded", "digits"):
        raise ValueError(f"models: expected 'seeded' or 'digits', found {models!r}")
    ids = [f"node-{i}" for i in range(n)]
    unknown = sorted(set(withhold or {}) - set(ids))
    if unknown:
        raise ValueError(f"withhold: expected node ids among node-0..node-{n - 1}, found {unknown}")
    if Path(db_path).exists():
        raise FileExistsError(f"{db_path} already holds a ledger")
    if stake is None:
        stake = default_stake(cp, claims, n)
    nodes = [CommitteeNode(nid, s, seed, (withhold or {}).get(nid, 0.0)) for nid, s in zip(ids, strategies)]
    answers = make_models(cp, seed, models, ids)
    pool = None
    if verify_signatures and (parallel or (parallel is None and claims >= 1000)):
        from reference_node.parallel import CryptoPool

        pool = CryptoPool() if parallel or CryptoPool.useful() else None
    clock = _Clock()
    ledger = CommitteeLedger(db_path, cp, clock=clock, verify_signatures=verify_signatures, crypto_pool=pool)
    t0 = _wall()
    unrevealed = 0
    try:
        ops: list[dict] = [client_registration(seed)]
        for nd in nodes:
            ops += registration_ops(nd, stake)
        _check(ledger.execute(ops), "registration")
        rng = committee_rng(seed)
        done = 0
        cost = {s: cp.cost_of(s) for s in set(strategies)}
        while done < claims:
            prepared = []
            for i in range(done, min(claims, done + batch)):
                cid = claim_id(seed, i)
                eligible = [j for j, nd in enumerate(nodes) if ledger.accounts[nd.id].locked > 0]
                if len(eligible) < cp.committee_size:
                    raise RuntimeError(f"only {len(eligible)} nodes hold stake: no committee for claim {cid}")
                claim = answers.claim(cid)
                members = [(nodes[j], nodes[j].answer(answers, claim, cid))
                           for j in draw_committee(rng, eligible, cp.committee_size)]
                prepared.append((cid, claim, [(nd, o, nd.commitment(cid, o)) for nd, o in members]))
            # every seat's seal and reveal signature (Ed25519 is deterministic: the pool changes nothing)
            messages = [[seal_message(cid, nd.id, c), vote_message(cid, nd.id, o)]
                        for cid, _, ms in prepared for nd, o, c in ms]
            seats = [nd for _, _, ms in prepared for nd, _, _ in ms]
            if pool is not None:
                sigs = pool.sign([(seed, nd.id, m, "single") for nd, m in zip(seats, messages)])
            else:
                sigs = [nd.key.sign_many(m) for nd, m in zip(seats, messages)]
            commits, reveals, k = [], [], 0
            for cid, claim, ms in prepared:
                entries, opened = [], []
                for nd, o, c in ms:
                    seal_sig, vote_sig = sigs[k]
                    k += 1
                    entries.append({"node": nd.id, "commitment": c, "signature": seal_sig, "cost": cost[nd.strategy]})
                    if nd.withholds(cid):
                        unrevealed += 1
                    else:
                        opened.append({"node": nd.id, "option": o, "salt": nd.salt(cid).hex(), "signature": vote_sig})
                commits.append({"op": "vote_commit", "request_id": f"vote_commit:{cid}", "claim_id": cid,
                                "client": "client", "options": cp.options, "truth": int(claim[0]),
                                "commitments": entries})
                reveals.append({"op": "claim", "request_id": f"claim:{cid}", "claim_id": cid, "reveals": opened})
            _check(ledger.execute(commits), "sealed votes")
            _check(ledger.execute(reveals), "reveals")
            done += len(prepared)
            clock.t += 1.0
            if progress is not None:
                progress(done)
        ledger.check_invariant(full=True)
        seconds = _wall() - t0
        return {"claims": claims, "nodes": n, "events": ledger.seq, "seconds": seconds,
                "claims_per_second": claims / seconds if seconds else None, "stake": stake,
                "burned": ledger.summary()["burned"], "unrevealed": unrevealed, "absent": 0}
    finally:
        ledger.close()
        if pool is not None:
            pool.close()


def _wall() -> float:
    import time

    return time.perf_counter()


def _check(results: list[dict], what: str) -> None:
    bad = [r for r in results if not r.get("ok")]
    if bad:
        raise RuntimeError(f"{what}: the ledger rejected {len(bad)} operation(s), first: {bad[0].get('error')}")


# --------------------------------------------------------------------------------------
# Reading the log
# --------------------------------------------------------------------------------------


def summarize_committee(events: Iterable[dict]) -> dict[str, Any]:
    """Per-strategy and per-committee statistics from an iterable of events (one pass).

    Per strategy: nodes, votes (seats sat on), unrevealed (seats that cast no vote: sealed but
    not revealed, or absent; each counts as a mismatch), agreements (vote = consensus; no
    consensus counts as a mismatch) and agreement_rate; ``designated`` agreement counts (one vote per claim, so
    trials are independent): in all-honest committees the first honest seat, in committees
    with exactly one deviating member that member's vote; windows, slashes, slash_per_window
    (honest: false slashes; deviations: detections), capped slashes; payoff (rewards − the
    environment's costs − slashes) per claim sat on, and per closed window (``window_payoff``:
    n, total, squares of the per-claim payoff of each closed window, for a t test); claims
    each node sat on up to and including the claim that closed its first slashed window
    (``first_slash_claims``; nodes never slashed are not listed, ``never_slashed`` counts them);
    ``claim_payoff``: per claim c, S_c = the strategy's payoff on claim c (rewards − costs of its
    votes, minus the slashes of the windows c closed) and n_c = its votes on c, as the sums
    C (claims), ΣS, Σn, ΣS², ΣSn, Σn² — the sufficient statistics of the claim-clustered
    (ratio) estimate ΣS/Σn of the payoff per claim sat on and of its variance.
    Committees: outcome counts (correct / wrong / none) over all claims and over all-honest
    committees.
    """
    strategy: dict[str, str] = {}
    per_node: dict[str, dict[str, float]] = defaultdict(lambda: {"votes": 0, "paid": 0.0, "cost": 0.0,
                                                                 "win_paid": 0.0, "win_cost": 0.0})
    first_slash: dict[str, int] = {}
    S: dict[str, dict[str, Any]] = {}

    def st(s: str) -> dict[str, Any]:
        if s not in S:
            S[s] = {"nodes": 0, "votes": 0, "unrevealed": 0, "agreements": 0, "designated": {"trials": 0, "agreements": 0},
                    "windows": 0, "slashes": 0, "capped_slashes": 0, "paid": 0.0, "cost": 0.0, "slashed": 0.0,
                    "window_payoff": {"n": 0, "total": 0.0, "squares": 0.0}, "first_slash_claims": [],
                    "claim_payoff": {"C": 0, "S": 0.0, "n": 0, "SS": 0.0, "Sn": 0.0, "nn": 0}}
        return S[s]

    current: dict[str, list[float]] = {}  # strategy -> [S_c, n_c] of the current claim

    def flush() -> None:
        for t, s in S.items():
            c = s["claim_payoff"]
            x, k = current.get(t, (0.0, 0))
            c["C"] += 1
            c["S"] += x
            c["n"] += k
            c["SS"] += x * x
            c["Sn"] += x * k
            c["nn"] += k * k
        current.clear()

    outcomes = {"correct": 0, "wrong": 0, "none": 0}
    honest_outcomes = {"correct": 0, "wrong": 0, "none": 0}
    claims = 0
    for e in events:
        kind = e["kind"]
        if kind == "register" and e.get("account_kind") == "verifier":
            strategy[e["account"]] = e.get("strategy") or "unknown"
            st(strategy[e["account"]])["nodes"] += 1
        elif kind == "claim":
            if claims:
                flush()
            claims += 1
            cons, r = e["consensus"], float(e["reward"])
            key = "none" if cons is None else ("correct" if e["correct"] else "wrong")
            outcomes[key] += 1
            types = [strategy.get(nd, "unknown") for nd in e["committee"]]
            deviators = [i for i, t in enumerate(types) if t != "honest"]
            if not deviators:
                honest_outcomes[key] += 1
                d = st("honest")["designated"]
                d["trials"] += 1
                d["agreements"] += e["votes"][0] is not None and e["votes"][0] == cons
            elif len(deviators) == 1:
                i = deviators[0]
                d = st(types[i])["designated"]
                d["trials"] += 1
                d["agreements"] += e["votes"][i] is not None and e["votes"][i] == cons
            for node, option, cost, t in zip(e["committee"], e["votes"], e["costs"], types):
                s = st(t)
                agree = option is not None and option == cons
                if option is None:
                    s["unrevealed"] += 1
                s["votes"] += 1
                s["agreements"] += agree
                s["paid"] += r * agree
                s["cost"] += cost
                p = per_node[node]
                p["votes"] += 1
                p["win_paid"] += r * agree
                p["win_cost"] += cost
                cur = current.setdefault(t, [0.0, 0])
                cur[0] += r * agree - cost
                cur[1] += 1
        elif kind == "window":
            node = e["node"]
            s = st(strategy.get(node, "unknown"))
            s["windows"] += 1
            s["slashes"] += bool(e["slashed"])
            s["capped_slashes"] += bool(e.get("capped"))
            s["slashed"] += float(e["slash"])
            p = per_node[node]
            x = (p["win_paid"] - p["win_cost"] - float(e["slash"])) / e["claims"]
            wp = s["window_payoff"]
            wp["n"] += 1
            wp["total"] += x
            wp["squares"] += x * x
            p["win_paid"] = p["win_cost"] = 0.0
            current.setdefault(strategy.get(node, "unknown"), [0.0, 0])[0] -= float(e["slash"])
            if e["slashed"] and node not in first_slash:
                first_slash[node] = int(p["votes"])
    if claims:
        flush()
    for node, t in strategy.items():
        if node in first_slash:
            st(t)["first_slash_claims"].append(first_slash[node])
    for t, s in S.items():
        s["never_slashed"] = s["nodes"] - len(s["first_slash_claims"])
        s["agreement_rate"] = s["agreements"] / s["votes"] if s["votes"] else None
        s["slash_per_window"] = s["slashes"] / s["windows"] if s["windows"] else None
        s["payoff_per_claim"] = (s["paid"] - s["cost"] - s["slashed"]) / s["votes"] if s["votes"] else None
        s["kind"] = "honest" if t == "honest" else "deviation"
    return {"claims": claims, "outcomes": outcomes, "outcomes_all_honest": honest_outcomes, "by_strategy": S}
