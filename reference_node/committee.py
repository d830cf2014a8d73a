r"""The consensus game in the reference network (in-process): committees of verifier nodes
vote on m-option claims; consensus by threshold; windowed slashing on the stake ledger.

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
* **Votes** are signed with the node's Ed25519 key (:class:`reference_node.crypto.Key`) over
  ``mira-vote-v1|claim|node|option``; the ledger verifies every signature.
* **Committees**: N distinct nodes drawn uniformly per claim (numpy generator seeded with
  ``seed``) from the registered nodes that still hold stake.
* **The ledger** (:class:`CommitteeLedger`, a subclass of :class:`reference_node.ledger.Ledger`
  that adds the op ``claim``; ledger.py itself is unchanged). One ``claim`` operation carries
  the committee's signed votes; the ledger checks them, finds the consensus (the option with
  ≥ K = ⌈τN⌉ votes, if any), pays the reward r to every vote matching it, and advances every
  member's window; a member whose window of W claims closes with fewer than ⌈θW⌉ matches is
  slashed min(L, its remaining stake), all of it burned. Every state change is an event in
  the same transaction as the balances (the base class's batch transaction, idempotency by
  request id, and the conservation invariant — rewards enter as ``fees``, slashes leave as
  ``burned`` — checked before every commit).

Events added (read by :func:`summarize_committee` and :mod:`mira_theory.experiment_consensus`)
------------------------------------------------------------------------------------------
``claim`` (request id ``claim:<claim_id>``; account = client, task_id = claim_id, amount =
rewards paid, micro-units)::

    claim_id, client, options (m), quorum (K), committee [node ids, in seat order],
    votes [option per seat], signatures [hex per seat], costs [the environment's cost of each
    member's inference: ground truth for the experiment, read by no protocol decision],
    consensus (option | null), truth (the right option: ground truth, as commit.action is),
    correct (bool | null when no consensus), reward (r per matching vote), paid (total)

``window`` (request id ``window:<node>:<index>``, written in the claim's transaction when that
claim is the W-th of the node's window; account = node, task_id = the closing claim, amount =
slash in micro-units)::

    node, window (0, 1, ...), claims (W), matches, required (⌈θW⌉), slashed (bool),
    slash, capped (slash cut to the remaining stake), burned

Nodes register as ledger ``verifier`` accounts (their ``strategy`` field: ``honest`` or a
deviation name) and stake with ``deposit``; the paying client registers as ``client``.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mira_theory.games.consensus import quorum, slash_count
from reference_node import crypto
from reference_node import models as digit_models
from reference_node.ledger import ID_RE, Ledger, LedgerError, _field, _ident
from reference_node.params import UNIT, NodeParams, to_units

EPOCH = 1_800_000_000.0


def vote_message(claim_id: str, node: str, option: int) -> bytes:
    return "|".join(("mira-vote-v1", claim_id, node, str(int(option)))).encode()


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

    @property
    def quorum(self) -> int:
        return quorum(self.committee_size, self.threshold)

    @property
    def required(self) -> int:
        return slash_count(self.window, self.agreement_threshold)

    def cost_of(self, strategy: str) -> float:
        return self.cost_honest if strategy == "honest" else self.deviations[strategy][0]

    @classmethod
    def from_doc(cls, doc: dict[str, Any] | str | Path) -> CommitteeParams:
        """From an exported consensus parameters document (dict) or file (validated by
        :func:`mira_theory.deployment.read_params`)."""
        from mira_theory.deployment import PARAMETERS, read_params
        from mira_theory.scenario import Problem, ScenarioError, check_value

        if not isinstance(doc, dict):
            read_params(doc, "consensus")
            text = Path(doc).read_text(encoding="utf-8-sig")
            if str(doc).endswith(".toml"):
                import tomllib

                doc = tomllib.loads(text)
            else:
                doc = json.loads(text)
        problems: list[Problem] = []
        if doc.get("game") != "consensus":
            problems.append(Problem("<params>", "game", "'consensus'", repr(doc.get("game"))))
        raw = doc.get("parameters") or {}
        p: dict[str, Any] = {}
        for name, (_, tp, check) in PARAMETERS["consensus"].items():
            value, pr = check_value("<params>", f"parameters.{name}", raw.get(name), tp, check)
            problems += pr
            p[name] = value
        env = doc.get("environment") or {}
        try:
            ver, claim = env["verifier"], env["claim"]
            devs = {d["name"]: (float(d["cost"]), float(d["accuracy"])) for d in env.get("deviation", [])}
            extra = dict(options=int(claim["options"]), accuracy=float(ver["accuracy"]),
                         error_correlation=float(ver["error_correlation"]), cost_honest=float(ver["cost"]))
        except (KeyError, TypeError, ValueError) as err:
            problems.append(Problem("<params>", "environment", "the consensus scenario values (claim, verifier, "
                                    "deviation): re-export with mira-theory export", f"missing or bad: {err}"))
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

    def __init__(self, params: CommitteeParams, seed: int | str, nodes: list[str]):
        if not 2 <= params.options <= digit_models.OUT:
            raise ValueError(f"models='digits': claims are built from the 10 digits, so options must be "
                             f"2..{digit_models.OUT}, found {params.options}")
        self.p = params
        self.seed = seed
        pixels, _ = digit_models.digits()
        verifiers = digit_models.verifier_models()
        scores = [m.scores(pixels) for m in verifiers]  # every image, once per model
        self.scores = {node: scores[i % len(verifiers)] for i, node in enumerate(nodes)}
        self.model_of = {node: verifiers[i % len(verifiers)].name for i, node in enumerate(nodes)}
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


@dataclass
class CommitteeNode:
    id: str
    strategy: str
    key: crypto.Key

    def vote(self, models: SeededModels | DigitModels, claim: tuple, claim_id: str) -> dict[str, Any]:
        option = models.answer(claim, claim_id, self.id, self.strategy)
        return {"node": self.id, "option": option, "signature": self.key.sign(vote_message(claim_id, self.id, option)),
                "cost": models.p.cost_of(self.strategy)}


# --------------------------------------------------------------------------------------
# The ledger with the consensus operation
# --------------------------------------------------------------------------------------


class CommitteeLedger(Ledger):
    """:class:`Ledger` plus the ``claim`` operation (see the module docstring)."""

    def __init__(self, path: str | Path, params: CommitteeParams, **kwargs: Any):
        self.committee = params
        self._windows: dict[str, list[int]] = {}  # node -> [window index, claims in window, matches]
        self._decided: set[str] = set()  # claim ids on the ledger (or in the current batch)
        super().__init__(path, params.node_params(), **kwargs)

    def _load(self) -> None:
        super()._load()
        # window state is derived from the log (claims since each node's last closed window)
        self._windows = {}
        self._decided = set()
        W = self.committee.window
        for (data,) in self.db.execute("SELECT data FROM events WHERE kind = 'claim' ORDER BY seq"):
            d = json.loads(data)
            self._decided.add(d["claim_id"])
            for node, option in zip(d["committee"], d["votes"]):
                st = self._windows.setdefault(node, [0, 0, 0])
                st[1] += 1
                st[2] += option == d["consensus"]
                if st[1] == W:
                    st[:] = [st[0] + 1, 0, 0]

    def execute(self, ops: Iterable[dict]) -> list[dict]:
        saved = ({k: list(v) for k, v in self._windows.items()}, set(self._decided))
        try:
            return super().execute(ops)
        except BaseException:
            self._windows, self._decided = saved
            raise

    def _op_claim(self, op: dict, rid: str, now: float) -> dict:
        cp = self.committee
        claim_id = _ident(op, "claim_id")
        client = _ident(op, "client")
        options = _field(op, "options", int)
        if options != cp.options:
            raise LedgerError(422, f"field 'options': expected {cp.options}, found {options!r}")
        truth = _field(op, "truth", int)
        if not 0 <= truth < options:
            raise LedgerError(422, f"field 'truth': expected an option in 0..{options - 1}, found {truth!r}")
        votes = _field(op, "votes", list)
        if len(votes) != cp.committee_size:
            raise LedgerError(422, f"field 'votes': expected {cp.committee_size} votes, found {len(votes)}")
        nodes, opts, sigs, costs = [], [], [], []
        for i, v in enumerate(votes):
            if not isinstance(v, dict):
                raise LedgerError(422, f"field 'votes[{i}]': expected an object, found {type(v).__name__}")
            node = _field(v, "node", str)
            if ID_RE.fullmatch(node) is None:
                raise LedgerError(422, f"field 'votes[{i}].node': expected an id, found {node[:40]!r}")
            a = self._account(node, "verifier")
            if a.locked <= 0:
                raise LedgerError(409, f"node {node!r} has no stake left: it cannot sit on a committee")
            option = _field(v, "option", int)
            if not 0 <= option < options:
                raise LedgerError(422, f"field 'votes[{i}].option': expected 0..{options - 1}, found {option!r}")
            sig = _field(v, "signature", str)
            if self.verify_signatures and not crypto.verify(a.key, sig, vote_message(claim_id, node, option)):
                raise LedgerError(401, f"vote of {node!r} on claim {claim_id!r}: expected its Ed25519 signature, "
                                       "found an invalid one")
            cost = _field(v, "cost", (int, float), required=False, default=0.0)
            if not math.isfinite(cost) or cost < 0:
                raise LedgerError(422, f"field 'votes[{i}].cost': expected a finite cost ≥ 0, found {cost!r}")
            nodes.append(node)
            opts.append(option)
            sigs.append(sig)
            costs.append(float(cost))
        if len(set(nodes)) != len(nodes):
            raise LedgerError(422, "field 'votes': expected distinct committee members, found a repeated node")
        if claim_id in self._decided:
            raise LedgerError(409, f"claim {claim_id!r} was already decided")
        # --- validated: state changes from here on
        self._decided.add(claim_id)
        K = cp.quorum
        counts = np.bincount(opts, minlength=options)
        top = int(np.argmax(counts))
        consensus = top if counts[top] >= K else None
        r = to_units(cp.reward)
        paid = 0
        for node, option in zip(nodes, opts):
            if option == consensus and r:
                self.accounts[node].balance += r
                self._dirty.add(node)
                paid += r
        self.totals["fees"] += paid
        event = self._event(rid, "claim", client, claim_id, paid,
                            {"claim_id": claim_id, "client": client, "options": options, "quorum": K,
                             "committee": nodes, "votes": opts, "signatures": sigs, "costs": costs,
                             "consensus": consensus, "truth": truth,
                             "correct": None if consensus is None else consensus == truth,
                             "reward": cp.reward, "paid": paid / UNIT}, now)
        windows = []
        for node, option in zip(nodes, opts):
            st = self._windows.setdefault(node, [0, 0, 0])
            st[1] += 1
            st[2] += option == consensus
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


def run_committee(params: CommitteeParams | dict | str | Path, db_path: str | Path, strategies: list[str],
                  claims: int, seed: int = 0, *, stake: float | None = None, batch: int = 256,
                  verify_signatures: bool = True, progress: Callable[[int], None] | None = None,
                  models: str = "seeded") -> dict[str, Any]:
    """Run ``claims`` claims through committees of the nodes ``strategies`` (one spec per node:
    ``honest`` or a deviation name) on a new ledger at ``db_path``; returns the workload.

    ``stake`` per node defaults to enough for every window to be slashed in full (no capping).
    ``models``: ``"seeded"`` (:class:`SeededModels`, the theory's error law exactly) or
    ``"digits"`` (:class:`DigitModels`, the shipped verifier models on digit claims)."""
    cp = params if isinstance(params, CommitteeParams) else CommitteeParams.from_doc(params)
    n = len(strategies)
    if n < cp.committee_size:
        raise ValueError(f"need at least committee_size = {cp.committee_size} nodes, got {n}")
    bad = [s for s in strategies if s != "honest" and s not in cp.deviations]
    if bad:
        raise ValueError(f"unknown strategies {sorted(set(bad))}: expected honest or one of {sorted(cp.deviations)}")
    if models not in ("seeded", "digits"):
        raise ValueError(f"models: expected 'seeded' or 'digits', found {models!r}")
    if Path(db_path).exists():
        raise FileExistsError(f"{db_path} already holds a ledger")
    if stake is None:
        windows = math.ceil(claims * cp.committee_size / n / cp.window * 3) + 2
        stake = max(1.0, cp.slash * windows)
    clock = _Clock()
    ledger = CommitteeLedger(db_path, cp, clock=clock, verify_signatures=verify_signatures)
    nodes = [CommitteeNode(f"node-{i}", s, crypto.Key(seed, f"node-{i}")) for i, s in enumerate(strategies)]
    answers: SeededModels | DigitModels = (SeededModels(cp, seed) if models == "seeded"
                                           else DigitModels(cp, seed, [nd.id for nd in nodes]))
    client = crypto.Key(seed, "client")
    t0 = _wall()
    try:
        ops: list[dict] = [{"op": "register", "request_id": "register:client", "account": "client", "kind": "client",
                            "pubkey": client.public_hex}]
        for nd in nodes:
            ops.append({"op": "register", "request_id": f"register:{nd.id}", "account": nd.id, "kind": "verifier",
                        "pubkey": nd.key.public_hex, "strategy": nd.strategy})
            ops.append({"op": "deposit", "request_id": f"deposit:{nd.id}", "account": nd.id, "amount": stake})
        _check(ledger.execute(ops), "registration")
        rng = np.random.default_rng([int(seed) if str(seed).isdigit() else _u64(seed), 0xC0])
        done = 0
        while done < claims:
            ops = []
            for i in range(done, min(claims, done + batch)):
                cid = claim_id(seed, i)
                eligible = [j for j, nd in enumerate(nodes) if ledger.accounts[nd.id].locked > 0]
                if len(eligible) < cp.committee_size:
                    raise RuntimeError(f"only {len(eligible)} nodes hold stake: no committee for claim {cid}")
                seats = rng.choice(len(eligible), cp.committee_size, replace=False)
                claim = answers.claim(cid)
                votes = [nodes[eligible[s]].vote(answers, claim, cid) for s in seats]
                ops.append({"op": "claim", "request_id": f"claim:{cid}", "claim_id": cid, "client": "client",
                            "options": cp.options, "truth": claim[0], "votes": votes})
            _check(ledger.execute(ops), "claims")
            done += len(ops)
            clock.t += 1.0
            if progress is not None:
                progress(done)
        ledger.check_invariant(full=True)
        seconds = _wall() - t0
        return {"claims": claims, "nodes": n, "events": ledger.seq, "seconds": seconds,
                "claims_per_second": claims / seconds if seconds else None, "stake": stake,
                "burned": ledger.summary()["burned"]}
    finally:
        ledger.close()


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

    Per strategy: nodes, votes, agreements (vote = consensus; no consensus counts as a
    mismatch) and agreement_rate; ``designated`` agreement counts (one vote per claim, so
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
            S[s] = {"nodes": 0, "votes": 0, "agreements": 0, "designated": {"trials": 0, "agreements": 0},
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
                d["agreements"] += e["votes"][0] == cons
            elif len(deviators) == 1:
                i = deviators[0]
                d = st(types[i])["designated"]
                d["trials"] += 1
                d["agreements"] += e["votes"][i] == cons
            for node, option, cost, t in zip(e["committee"], e["votes"], e["costs"], types):
                s = st(t)
                agree = option == cons
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
