"""The stake ledger: rules, idempotency, the conservation invariant, durability."""

from __future__ import annotations

import math
import sqlite3

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from reference_node import crypto, models
from reference_node.arbiter import Arbiter
from reference_node.crypto import Key
from reference_node.ledger import Ledger
from reference_node.params import load
from reference_node.provider import Provider, Task
from reference_node.testing import Clock, write_params
from reference_node.verifier import Verifier


@pytest.fixture(scope="module")
def params(tmp_path_factory):
    return load(write_params(tmp_path_factory.mktemp("p") / "p.json"))


def _ledger(tmp_path, params, clock=None):
    return Ledger(tmp_path / "l.sqlite", params, clock=clock or Clock())


def _ok(results):
    for r in results:
        assert r["ok"], r
    return results


def _setup(tmp_path, params, strategy="honest", stake=None):
    clock = Clock()
    led = _ledger(tmp_path, params, clock)
    prov = Provider("p0", params, strategy, seed=1)
    ver = Verifier("v0", params, 0, 1, seed=1)
    arb = Arbiter("arb", params, seed=1)
    _ok(led.execute(prov.register_ops(stake) + ver.register_ops(20.0) + arb.register_ops()))
    return led, prov, ver, arb, clock


def _commit(led, prov, i, fee=1.0):
    (_, op), = prov.infer([Task(f"task-{i}", models.task_input("ledger", i), "c0", fee)])
    return op, led.execute([op])[0]


def test_commit_escrows_fee_and_settles_after_the_window(tmp_path, params):
    led, prov, _, _, clock = _setup(tmp_path, params)
    op, r = _commit(led, prov, 1)
    assert r["ok"]
    assert led.totals["escrowed"] == 1_000_000 and led.totals["fees"] == 1_000_000
    clock.t += params.settlement_latency - 1  # window still open
    assert led.execute([{"op": "settle", "request_id": "s1"}])[0]["tasks"] == 0
    clock.t += 2
    assert led.execute([{"op": "settle", "request_id": "s2"}])[0]["tasks"] == 1
    assert led.accounts["p0"].balance == 1_000_000 and led.totals["escrowed"] == 0
    led.check_invariant(full=True)


def test_commit_rejects_bad_signature_replay_and_wrong_hashes(tmp_path, params):
    led, prov, _, _, _ = _setup(tmp_path, params)
    op, r = _commit(led, prov, 1)
    before = led.seq
    forged = {**op, "request_id": "x1", "task_id": "task-2"}  # signature is over task-1
    assert led.execute([forged])[0]["status"] == 401
    replay = {**op, "request_id": "x2"}  # same task id, new request id
    assert led.execute([replay])[0]["status"] == 409
    same = led.execute([op])[0]  # same request: idempotent replay, no new event
    assert same["ok"] and same["replayed"] and same["seq"] == r["seq"]
    bad_hash = {**op, "request_id": "x3", "task_id": "task-3", "output": [0] * models.OUT}
    assert led.execute([bad_hash])[0]["status"] == 422
    assert led.seq == before
    led.check_invariant(full=True)


@pytest.mark.parametrize("amount", [-1.0, 0.0, math.inf, -math.inf, math.nan, "10", True, None, 1e13])
def test_deposit_rejects_bad_amounts(tmp_path, params, amount):
    led, _, _, _, _ = _setup(tmp_path, params)
    before = (led.seq, dict(led.totals))
    r = led.execute([{"op": "deposit", "request_id": "d", "account": "p0", "amount": amount}])[0]
    assert not r["ok"] and r["status"] == 422 and "amount" in r["error"]
    assert (led.seq, led.totals) == before


def test_withdrawals_beyond_balance_and_unbonding(tmp_path, params):
    led, prov, _, _, clock = _setup(tmp_path, params)
    assert led.execute([{"op": "withdraw", "request_id": "w0", "account": "p0", "amount": 1.0}])[0]["status"] == 409
    assert led.execute([{"op": "withdraw", "request_id": "w1", "account": "p0", "amount": 1000.01,
                         "source": "stake"}])[0]["status"] == 409
    _commit(led, prov, 1)
    clock.t += 10
    r = led.execute([{"op": "withdraw", "request_id": "w2", "account": "p0", "amount": 400.0, "source": "stake"}])[0]
    assert r["ok"] and not r["released"]
    # unbonding ≥ T from the request, and not before the task's window (commit + T) closed
    assert r["release_at"] == pytest.approx(1000.0 + 10 + params.settlement_latency)
    clock.t = r["release_at"] - 0.5
    assert led.execute([{"op": "settle", "request_id": "s1"}])[0]["released"] == []
    clock.t = r["release_at"] + 0.5
    released = led.execute([{"op": "settle", "request_id": "s2"}])[0]["released"]
    assert [w["amount"] for w in released] == [400.0]
    assert led.accounts["p0"].locked == 600_000_000 and led.totals["withdrawn"] == 400_000_000
    led.check_invariant(full=True)


def test_withdrawal_waits_for_a_later_tasks_window(tmp_path, params):
    led, prov, _, _, clock = _setup(tmp_path, params)
    r = led.execute([{"op": "withdraw", "request_id": "w", "account": "p0", "amount": 1.0, "source": "stake"}])[0]
    clock.t += params.settlement_latency - 1
    _commit(led, prov, 1)  # its window closes at now + T, after the unbonding period
    clock.t = r["release_at"] + 1
    assert led.execute([{"op": "settle", "request_id": "s"}])[0]["released"] == []
    clock.t += params.settlement_latency
    assert len(led.execute([{"op": "settle", "request_id": "s2"}])[0]["released"]) == 1


def _challenge_and_resolve(led, ver, arb, op):
    commitment = led.task(op["task_id"])
    ref = models.run_declared([commitment["input"]])[0].tolist()
    ev = ver.evidence(commitment, ref)
    ch = {"op": "challenge", "request_id": f"ch-{op['task_id']}", "task_id": op["task_id"], "verifier": ver.id,
          "evidence_hash": "0" * 64}
    assert led.execute([ch])[0]["ok"]
    verdict = arb.judge(ev, led.task, led.pubkey)
    return led.execute([verdict])[0]


def test_slash_bounty_burn_and_refund(tmp_path, params):
    led, prov, ver, arb, _ = _setup(tmp_path, params, strategy="random-output")
    op, _ = _commit(led, prov, 1)
    r = _challenge_and_resolve(led, ver, arb, op)
    assert r["verdict"] == "upheld" and r["slash"] == params.slash and not r["capped"]
    assert r["bounty"] == params.bounty_share * params.slash
    assert led.accounts["v0"].balance == int(params.bounty_share * params.slash * 1e6)
    assert led.totals["burned"] == int((1 - params.bounty_share) * params.slash * 1e6)
    assert led.accounts["c0"].balance == 1_000_000 and led.totals["escrowed"] == 0
    # replayed evidence: the task is no longer challengeable, a second verdict has no challenge
    again = {"op": "challenge", "request_id": "ch2", "task_id": op["task_id"], "verifier": "v0",
             "evidence_hash": "0" * 64}
    assert led.execute([again])[0]["status"] == 409
    led.check_invariant(full=True)


def test_slash_is_capped_at_the_remaining_stake(tmp_path, params):
    led, prov, ver, arb, _ = _setup(tmp_path, params, strategy="random-output", stake=25.0)
    op1, _ = _commit(led, prov, 1)
    op2, _ = _commit(led, prov, 2)
    assert not _challenge_and_resolve(led, ver, arb, op1)["capped"]
    r = _challenge_and_resolve(led, ver, arb, op2)
    assert r["capped"] and r["slash"] == 5.0
    assert led.accounts["p0"].locked == 0
    assert _commit(led, prov, 3)[1]["status"] == 409  # stake exhausted
    led.check_invariant(full=True)


def test_false_evidence_burns_the_verifier_bond_and_honest_is_not_slashed(tmp_path, params):
    led, prov, ver, arb, _ = _setup(tmp_path, params)
    op, _ = _commit(led, prov, 1)
    r = _challenge_and_resolve(led, ver, arb, op)
    assert r["verdict"] == "rejected" and r["bond_burned"] == 20.0
    assert led.accounts["p0"].locked == 1000 * 1_000_000
    assert led.task(op["task_id"])["status"] == "open"
    led.check_invariant(full=True)


def test_resolve_without_challenge_or_with_a_forged_verdict(tmp_path, params):
    led, prov, ver, arb, _ = _setup(tmp_path, params, strategy="random-output")
    op, _ = _commit(led, prov, 1)
    before = led.seq
    sig = arb.key.sign(crypto.verdict_message(op["task_id"], "v0", "upheld"))
    verdict = {"op": "resolve", "request_id": "r", "task_id": op["task_id"], "arbiter": "arb", "verifier": "v0",
               "verdict": "upheld", "signature": sig}
    assert led.execute([verdict])[0]["status"] == 409  # no evidence submitted
    forged = {**verdict, "request_id": "r2", "signature": Key(9, "mallory").sign(b"x")}
    assert led.execute([forged])[0]["status"] == 401
    assert led.seq == before


def test_group_commit_applies_each_op_or_none(tmp_path, params):
    led, prov, _, _, _ = _setup(tmp_path, params)
    ops = [op for _, op in prov.infer([Task(f"g{i}", models.task_input("g", i), "c", 1.0) for i in range(5)])]
    ops[2] = {**ops[2], "fee": -1}
    res = led.execute(ops)
    assert [r["ok"] for r in res] == [True, True, False, True, True]
    n = led.db.execute("SELECT COUNT(*) FROM tasks").fetchone()[0]
    assert n == 4 and led.totals["escrowed"] == 4_000_000


def test_state_survives_reopening(tmp_path, params):
    led, prov, ver, arb, _ = _setup(tmp_path, params, strategy="random-output")
    op, _ = _commit(led, prov, 1)
    _challenge_and_resolve(led, ver, arb, op)
    snapshot = led.summary()
    led.close()
    again = Ledger(tmp_path / "l.sqlite", params, clock=Clock())
    assert again.summary() == snapshot


# ----------------------------------------------------------------------------------------
# hypothesis: random operation sequences keep the invariant and never lose an event
# ----------------------------------------------------------------------------------------

AMOUNTS = st.one_of(st.floats(min_value=-5, max_value=2000), st.sampled_from([math.nan, math.inf, -math.inf]),
                    st.integers(min_value=-3, max_value=3000))


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        import tempfile
        from pathlib import Path

        self.dir = tempfile.TemporaryDirectory()
        p = Path(self.dir.name)
        self.params = load(write_params(p / "p.json"))
        self.clock = Clock()
        self.path = p / "l.sqlite"
        self.ledger = Ledger(self.path, self.params, clock=self.clock)
        self.providers = {s: Provider(f"p-{s}", self.params, s, seed=3) for s in ("honest", "random-output")}
        self.verifier = Verifier("v0", self.params, 0, 1, seed=3)
        self.arbiter = Arbiter("arb", self.params, seed=3)
        self.accepted = 0  # operations accepted (not replays): each must be exactly one event
        self.n = 0
        self.committed: list[dict] = []
        self.history: list[dict] = []
        self._run(self.arbiter.register_ops() + self.verifier.register_ops(20.0)
                  + [op for p in self.providers.values() for op in p.register_ops(60.0)])

    def _run(self, ops):
        results = self.ledger.execute(ops)
        for op, r in zip(ops, results):
            if r["ok"] and not r.get("replayed"):
                self.accepted += 1
                self.history.append(op)
        return results

    def teardown(self) -> None:
        self.ledger.close()
        self.dir.cleanup()

    @rule(who=st.sampled_from(["p-honest", "p-random-output", "v0", "c0", "nobody"]), amount=AMOUNTS)
    def deposit(self, who, amount):
        self.n += 1
        self._run([{"op": "deposit", "request_id": f"d{self.n}", "account": who, "amount": amount}])

    @rule(who=st.sampled_from(["p-honest", "p-random-output", "v0"]), amount=AMOUNTS,
          source=st.sampled_from(["balance", "stake"]))
    def withdraw(self, who, amount, source):
        self.n += 1
        self._run([{"op": "withdraw", "request_id": f"w{self.n}", "account": who, "amount": amount,
                    "source": source}])

    @rule(which=st.sampled_from(["honest", "random-output"]), k=st.integers(1, 4), fee=AMOUNTS)
    def commit(self, which, k, fee):
        prov = self.providers[which]
        tasks = []
        for _ in range(k):
            self.n += 1
            tasks.append(Task(f"t{self.n}", models.task_input("t", self.n), "c0", fee if isinstance(fee, float) and
                              math.isfinite(fee) and fee >= 0 else 1.0))
        ops = [op for _, op in prov.infer(tasks)]
        if not (isinstance(fee, float) and math.isfinite(fee) and fee >= 0):
            ops[0] = {**ops[0], "fee": fee}
        for op, r in zip(ops, self._run(ops)):
            if r["ok"]:
                self.committed.append(op)

    @precondition(lambda self: self.committed)
    @rule(i=st.integers(0, 10_000), truthful=st.booleans())
    def dispute(self, i, truthful):
        op = self.committed[i % len(self.committed)]
        self.n += 1
        res = self._run([{"op": "challenge", "request_id": f"c{self.n}", "task_id": op["task_id"], "verifier": "v0",
                          "evidence_hash": "1" * 64}])
        if not res[0]["ok"]:
            return
        record = self.ledger.task(op["task_id"])
        ref = models.run_declared([record["input"]])[0].tolist()
        verdict = self.arbiter.judge(self.verifier.evidence(record, ref), self.ledger.task, self.ledger.pubkey)
        if not truthful:
            verdict = {**verdict, "verdict": "upheld"}  # a verdict the arbiter did not sign
        self._run([verdict])

    @rule(dt=st.floats(0.1, 200))
    def advance_and_settle(self, dt):
        self.clock.t += dt
        self.n += 1
        self._run([{"op": "settle", "request_id": f"s{self.n}"}])

    @precondition(lambda self: self.history)
    @rule(i=st.integers(0, 10_000))
    def replay(self, i):
        before = self.ledger.seq
        self.ledger.execute([self.history[i % len(self.history)]])
        assert self.ledger.seq == before

    @rule()
    def reopen(self):
        snapshot = self.ledger.summary()
        self.ledger.close()
        self.ledger = Ledger(self.path, self.params, clock=self.clock)
        assert self.ledger.summary() == snapshot

    @invariant()
    def conserved_and_complete(self):
        self.ledger.check_invariant(full=True)
        db = sqlite3.connect(self.path)
        try:
            count, top = db.execute("SELECT COUNT(*), COALESCE(MAX(seq), 0) FROM events").fetchone()
        finally:
            db.close()
        assert count == top == self.accepted
        for a in self.ledger.accounts.values():
            assert min(a.balance, a.locked, a.unbonding) >= 0


LedgerMachine.TestCase.settings = settings(max_examples=25, stateful_step_count=25, deadline=None,
                                           suppress_health_check=list(HealthCheck))
test_ledger_state_machine = LedgerMachine.TestCase
