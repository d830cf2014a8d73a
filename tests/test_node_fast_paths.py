"""The ledger's fast paths give what the plain paths give: the hand-built commit event is the JSON
of its dict, a batch written on the writer thread is the batch written inline, and a failed
background write is not hidden."""

from __future__ import annotations

import json
import sqlite3

import pytest

from reference_node import models
from reference_node.ledger import Ledger
from reference_node.params import load
from reference_node.provider import Provider, Task
from reference_node.testing import Clock, write_params

T0 = 5000.0  # this module's ledger clocks start here


@pytest.fixture(scope="module")
def params(tmp_path_factory):
    return load(write_params(tmp_path_factory.mktemp("p") / "p.json"))


def _ops(params, n=40):
    prov = Provider("p0", params, "mixed:weaker-model:0.5", seed=3)
    ops = prov.register_ops()
    ops += [op for _, op in prov.infer([Task(f"fp-{i}", models.task_input("fp", i), "c0", 1.0) for i in range(n)])]
    return ops


def _events(path):
    db = sqlite3.connect(path)
    try:
        return db.execute("SELECT seq, request_id, kind, time, account, task_id, amount, data FROM events "
                          "ORDER BY seq").fetchall()
    finally:
        db.close()


@pytest.mark.parametrize("action, cost", [("honest", 0.4), ('we"ird\\ act\u00efon\n', 3), (None, None),
                                          (7, True), ("x", float("nan")), ("y", 10 ** 400), ("z", -0.0)])
def test_commit_event_is_the_json_of_its_dict(tmp_path, params, action, cost):
    led = Ledger(tmp_path / "l.sqlite", params, clock=Clock(T0))
    ops = _ops(params, 3)
    ops[-1] = {**ops[-1], "action": action, "cost": cost}
    results = led.execute(ops)
    assert all(r["ok"] for r in results), results
    led.close()
    data = _events(tmp_path / "l.sqlite")[-1][-1]
    parsed = json.loads(data)
    assert data == json.dumps(parsed, separators=(",", ":"))  # what json.dumps writes, byte for byte
    expected_action = action if isinstance(action, str) else None
    expected_cost = {True: None, 10 ** 400: None}.get(cost, cost) if not isinstance(cost, float) or cost == cost \
        else None
    assert parsed["action"] == expected_action
    assert parsed["cost"] == expected_cost
    assert {k: v for k, v in results[-1].items() if k != "ok"} == parsed


def test_background_writes_equal_inline_writes(tmp_path, params):
    ops = _ops(params)
    logs = []
    for background in (False, True):
        path = tmp_path / f"b{background}.sqlite"
        clock = Clock(T0)
        led = Ledger(path, params, clock=clock, background=background)
        first = led.execute(ops[:20])
        assert led.task("fp-3") is not None  # a read waits for the batch being written
        second = led.execute(ops[20:])
        clock.t += params.settlement_latency + 1
        settle = led.execute([{"op": "settle", "request_id": "s1"}])
        assert settle[0]["tasks"] == 40
        assert led.task_count() == 40
        led.check_invariant(full=True)
        led.close()
        logs.append((first, second, settle, _events(path)))
    assert logs[0] == logs[1]


def test_a_failed_background_write_is_raised_and_stops_the_ledger(tmp_path, params):
    led = Ledger(tmp_path / "f.sqlite", params, clock=Clock(T0), background=True)
    ops = _ops(params, 4)
    led.execute(ops[:3])
    led._sync()
    # another writer holds the database's write lock: the background BEGIN IMMEDIATE fails (busy)
    other = sqlite3.connect(tmp_path / "f.sqlite", timeout=0)
    other.execute("BEGIN IMMEDIATE")
    led.db.execute("PRAGMA busy_timeout = 0")
    led.execute(ops[3:])
    with pytest.raises(sqlite3.OperationalError):
        led.task_count()
    other.rollback()
    other.close()
    with pytest.raises(RuntimeError, match="background write"):
        led.execute([{"op": "settle", "request_id": "s2"}])


@pytest.mark.parametrize("rate", [None, 0.0, 1e-9, 0.05, 0.5, 0.999999, 1.0])
def test_verifier_batch_selection_equals_the_per_task_rule(params, rate):
    """Verifier.selected (one pass, integer comparison) takes exactly the tasks Verifier.selects takes."""
    from reference_node.verifier import Verifier

    ids = [{"task_id": f"sel-{i}"} for i in range(4000)]
    taken = 0
    for index in range(3):
        v = Verifier(f"verifier-{index}", params, index, 3, seed=11)
        v.rate = rate
        chosen = v.selected(ids)
        assert chosen == [c for c in ids if v.selects(c["task_id"])]
        taken += len(chosen)
    q = params.sampling_rate if rate is None else rate
    assert abs(taken - q * len(ids)) <= 5 * (len(ids) * q * (1 - q)) ** 0.5 + 1  # each task has one lead


@pytest.mark.parametrize("field", ["provider", "client", "model_id", "task_id"])
@pytest.mark.parametrize("value", [["p0"], {"a": 1}, 7, None])
def test_a_commit_with_a_non_string_id_is_a_422_and_leaves_the_batch(tmp_path, params, field, value):
    """A malformed commit is rejected alone (the ids are type-checked before the remembered-ids set is
    consulted); the well-formed operations of the same batch are applied."""
    led = Ledger(tmp_path / "l.sqlite", params, clock=Clock(T0))
    ops = _ops(params, 3)
    ops[-2] = {**ops[-2], field: value}
    results = led.execute(ops)
    assert results[-2]["ok"] is False and results[-2]["status"] == 422 and field in results[-2]["error"]
    assert all(r["ok"] for i, r in enumerate(results) if i != len(ops) - 2)
    led.close()


def test_verify_without_a_usable_key_is_false():
    from reference_node import crypto

    key = crypto.Key(1, "k")
    assert crypto.public_key("00" * 32) is None  # a small-order point: refused as a key
    assert crypto.verify(None, key.sign(b"m"), b"m") is False
    assert crypto.verify(crypto.public_key(key.public_hex), key.sign(b"m"), b"m") is True


def test_signatures_and_verdicts_are_pynacls():
    """Key.sign / sign_many (libsodium's crypto_sign called directly, one output buffer per batch) give
    the signatures of PyNaCl's public API, and verify (crypto_sign_open called directly) accepts and
    rejects what PyNaCl's VerifyKey does; also from several threads at once with one key."""
    import hashlib
    from concurrent.futures import ThreadPoolExecutor

    from nacl.exceptions import BadSignatureError
    from nacl.signing import SigningKey, VerifyKey

    from reference_node import crypto

    key = crypto.Key(5, "k")
    reference = SigningKey(hashlib.sha256(b"mira-key|5|k").digest())
    assert key.public_hex == reference.verify_key.encode().hex()
    # lengths up and down, so a short message follows a long one in the same buffer
    messages = [b"", b"m", bytes(range(256)) * 3, b"x" * 63, b"y" * 64, b"z" * 65,
                crypto.commitment_message("t0-000000001", "a" * 64, "b" * 64, "c" * 64, "provider-0"), b"\x00"]
    expected = [reference.sign(m).signature.hex() for m in messages]
    assert key.sign_many(messages) == expected
    assert [key.sign(m) for m in messages] == expected
    assert key.sign_many([]) == []
    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(lambda _: key.sign_many(messages), range(32))) == [expected] * 32

    pub, vk = crypto.public_key(key.public_hex), VerifyKey(reference.verify_key.encode())
    other = crypto.Key(6, "k").sign(messages[6])

    def flip(hex_sig, byte):
        raw = bytearray.fromhex(hex_sig)
        raw[byte] ^= 1
        return raw.hex()

    order = 2**252 + 27742317777372353535851937790883648493  # ℓ: S + ℓ is the non-canonical twin of S
    s = int.from_bytes(bytes.fromhex(expected[6])[32:], "little")
    non_canonical = bytes.fromhex(expected[6])[:32].hex() + (s + order).to_bytes(32, "little").hex()
    cases = [(sig, m) for sig, m in zip(expected, messages)] + [
        (expected[6], messages[6] + b"!"), (expected[6], messages[5]), (flip(expected[6], 0), messages[6]),
        (flip(expected[6], 40), messages[6]), (other, messages[6]), (non_canonical, messages[6]),
        ("00" * 64, b""), ("ff" * 64, messages[6])]

    def pynacl(sig, m):
        try:
            vk.verify(m, bytes.fromhex(sig))
        except BadSignatureError:
            return False
        return True

    verdicts = [crypto.verify(pub, sig, m) for sig, m in cases]
    assert verdicts == [pynacl(sig, m) for sig, m in cases]
    assert verdicts[:len(messages)] == [True] * len(messages) and not any(verdicts[len(messages):])
    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(lambda c: crypto.verify(pub, *c), cases * 8)) == verdicts * 8
    # no usable key, bad hex, wrong lengths: False, not an error
    sig = expected[6]
    for k, sg in ((None, sig), (pub, "zz" * 64), (pub, sig[:-2]), (pub, sig + "00"), (pub, None),
                  (pub, ""), (bytes(pub)[:31], sig), (bytes(pub) + b"\x00", sig)):
        assert crypto.verify(k, sg, messages[6]) is False


def test_batch_hashes_are_the_per_item_rules():
    """models.unit_hashes, models.task_inputs and models.output_hashes (a batch at once) give unit_hash,
    task_input and output_hash of each item."""
    import numpy as np

    ids = [f"t7-{i:09d}" for i in range(300)] + ["", "é-ü", "x" * 200]
    for parts in ((b"\x00secret\x1f", "weaker-model"), ("audit",), ()):
        assert models.unit_hashes(parts, ids).tolist() == [models.unit_hash(*parts, x) for x in ids]
    assert models.unit_hashes(("a",), []).tolist() == []
    outputs = np.random.default_rng(3).integers(-2**31 + 1, 2**31, size=(50, models.OUT)).tolist() + [
        [0] * models.OUT, [-1] * models.OUT, [True, False] * 5, list(np.arange(10)), [1, 2, 3], []]
    assert models.output_hashes(outputs) == [models.output_hash(v) for v in outputs]
    for seed, first, count in ((0, 0, 1), (7, 123_456, 500), ("abc", 10**12, 40), (3, 5, 0)):
        assert models.task_inputs(seed, first, count) == [models.task_input(seed, i)
                                                          for i in range(first, first + count)]


@pytest.mark.parametrize("spec", ["honest", "weaker-model", "mixed:weaker-model:0.3", "mixed:random-output:1",
                                  "hedge", "hedge:0.1:0.5", "hedge:2:-1", "regret:0.1", "logit:5", "logit:0"])
def test_choose_many_is_n_calls_of_choose(spec):
    """A strategy's choose_many(n) (what a provider calls for a batch) gives the actions, the random
    numbers consumed and the state of n calls of choose(), batch after batch, with observations
    (some large, some of unknown actions) between batches."""
    import numpy as np

    from reference_node import strategies

    devs = ("weaker-model", "random-output")
    rngs = np.random.default_rng(11), np.random.default_rng(11)
    one, many = (strategies.make(spec, devs, rng, scale=21.0) for rng in rngs)
    feedback = np.random.default_rng(12)
    for n in (0, 1, 5, 64, 0, 300, 2, 512):
        expected = [one.choose() for _ in range(n)]
        assert many.choose_many(n) == expected
        for a in expected[: n // 2] + ["not-an-action"]:
            payoff = float(feedback.normal(0, 40))
            for s in (one, many):
                s.observe(a, payoff)
        for attr in ("z", "p", "count", "gain", "regret", "total"):
            if hasattr(one, attr):
                assert np.array_equal(getattr(one, attr), getattr(many, attr)), attr
        assert rngs[0].bit_generator.state == rngs[1].bit_generator.state


@pytest.mark.parametrize("scenario", ["default", "noisy-gpu"])
def test_each_task_takes_the_path_its_keyed_hash_says(tmp_path, scenario):
    """Provider outputs against the per-task rule of reference_node.models: a deviation's task is
    divergent iff unit_hash(secret, deviation, task id) < δ_j, and gets the weaker model's scores or
    random scores (never the declared ones); every other task gets the declared model's scores, plus
    noise within 2τ if the action was honest in tolerance mode."""
    import numpy as np

    params = load(write_params(tmp_path / "p.json", scenario))
    tasks = [Task(f"r-{i}", models.task_input("route", i), "c0", 1.0) for i in range(400)]
    pixels = models.decode([t.input for t in tasks])
    declared = models.model(models.DECLARED_ID).scores(pixels)
    weaker = models.model(models.WEAKER_ID).scores(pixels)
    for spec in ("honest", "weaker-model", "random-output", "mixed:weaker-model:0.5", "hedge:0.5:0"):
        prov = Provider("p0", params, spec, seed=5)
        actions, outputs = prov._run(tasks)
        out = np.array(outputs)
        for i, (task, action) in enumerate(zip(tasks, actions)):
            divergent = action != "honest" and (
                models.unit_hash(prov.secret, action, task.task_id) < params.deviation(action).divergence)
            if not divergent:
                diff = np.abs(out[i] - declared[i]).max()
                assert diff == 0 if action != "honest" or params.comparison == "exact" else diff <= 2 * models.TOLERANCE
            elif models.deviation_kind(action) == "random":
                assert np.abs(out[i]).max() <= models.RANDOM_SCALE and not np.array_equal(out[i], declared[i])
            else:
                assert np.array_equal(out[i], weaker[i])


def _tables(path):
    """Every row of every ledger table (tasks with their rowid), for comparing two databases."""
    db = sqlite3.connect(path)
    try:
        return {t: db.execute(f"SELECT {'rowid, ' if t == 'tasks' else ''}* FROM {t} ORDER BY 1, 2").fetchall()
                for t in ("events", "tasks", "accounts", "withdrawals", "totals")}
    finally:
        db.close()


def _script(led, clock, params, ops, transaction):
    """Commits, an audit, a challenge, a settlement and more commits, as separate executes or in one
    transaction; what each execute answered."""
    import contextlib

    out = []
    with led.transaction() if transaction else contextlib.nullcontext():
        out.append(led.execute(ops[:25]))
        t = led.task("fp-22")
        out.append((t["status"], t["challenger"], t["audited"]))
        out.append(led.execute([{"op": "register", "request_id": "rv", "account": "v0", "kind": "verifier",
                                 "pubkey": ops[0]["pubkey"]},
                                {"op": "deposit", "request_id": "dv", "account": "v0", "amount": 5.0},
                                {"op": "audit", "task_id": "fp-22", "verifier": "v0", "outcome": "fail"},
                                {"op": "challenge", "task_id": "fp-22", "verifier": "v0", "evidence_hash": "e" * 64}]))
        t = led.task("fp-22")  # inside the block: the challenge is seen before it is written
        out.append((t["status"], t["challenger"], t["audited"]))
        clock.t += params.settlement_latency + 1
        out.append(led.execute([{"op": "settle", "request_id": "s1"}]))
        out.append(led.execute(ops[25:] + ops[3:4]))  # ops[3] replays a commit of this block
    return out


@pytest.mark.parametrize("background", [False, True])
def test_a_transaction_block_applies_and_writes_what_separate_executes_do(tmp_path, params, background):
    ops = _ops(params)
    runs = []
    for transaction in (False, True):
        path = tmp_path / f"t{transaction}.sqlite"
        clock = Clock(T0)
        led = Ledger(path, params, clock=clock, background=background)
        out = _script(led, clock, params, ops, transaction)
        led.check_invariant(full=True)
        led.close()
        runs.append((out, _tables(path)))
    assert runs[0] == runs[1]
    out = runs[1][0]
    assert out[1] == ("open", None, False)
    assert out[3] == ("challenged", "v0", True)
    assert out[4][0]["tasks"] == 22  # the first execute's 23 commits (after 2 registration ops) but the challenged one
    assert out[5][-1]["ok"] and out[5][-1]["replayed"]


def test_a_transaction_block_that_raises_writes_nothing_and_restores_memory(tmp_path, params):
    ops = _ops(params, 10)
    led = Ledger(tmp_path / "r.sqlite", params, clock=Clock(T0), background=True)
    led.execute(ops[:6])
    led._sync()  # written (a background ledger writes on its own thread)
    before = (_tables(tmp_path / "r.sqlite"), led.summary(), led.seq)
    with pytest.raises(KeyError):
        with led.transaction():
            assert all(r["ok"] for r in led.execute(ops[6:]))
            assert led.task("fp-7")["status"] == "open"  # seen inside the block
            raise KeyError("the caller failed")
    assert (_tables(tmp_path / "r.sqlite"), led.summary(), led.seq) == before
    assert led.task("fp-7") is None
    with led.transaction(), pytest.raises(RuntimeError, match="nest"):
        with led.transaction():
            pass
    assert [r["ok"] for r in led.execute(ops[6:])] == [True] * 6  # the same commits apply afterwards
    led.check_invariant(full=True)
    led.close()


def test_multi_row_statements_write_what_executemany_writes(tmp_path, params):
    """Pieces of every size (SQLite's bound-value limit set low forces many) give the rows and the
    last status per task that one statement per row gives."""
    from reference_node import ledger as L

    rows = [(f"k{i:03d}", "p", "c", i, "m", "in", "[1]", 1.5 + i / 7, 9.25 / (i + 1), 0, i,
             None if i % 3 else "honest") for i in range(300)]
    changes = [(2, f"k{i:03d}") for i in range(0, 300, 2)] + [(1, "k004"), (1, "k005"), (3, "k004"), (2, "k005"),
                                                              (0, "k010")]
    dbs = []
    for limit in (None, 40, 15):
        db = sqlite3.connect(":memory:")
        db.executescript(L.SCHEMA)
        if limit is not None:
            db.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, limit)
            L._insert_many(db, L.TASK_COLUMNS, rows)
            L._update_status(db, changes)
        else:  # the plain way
            db.executemany("INSERT INTO tasks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, NULL, ?)", rows)
            db.executemany("UPDATE tasks SET status = ? WHERE task_id = ?", changes)
        dbs.append(db.execute("SELECT rowid, * FROM tasks ORDER BY rowid").fetchall())
    assert dbs[0] == dbs[1] == dbs[2]
    status = {r[1]: r[10] for r in dbs[0]}
    assert (status["k004"], status["k005"], status["k010"], status["k002"], status["k003"]) == (3, 2, 0, 2, 0)


def test_a_background_ledger_checkpoints_its_wal_beside_the_writer(tmp_path, params):
    """Automatic checkpoints are off on the writer's connection; the checkpointer thread keeps the WAL
    from growing with the run."""
    import os

    from reference_node import ledger as L

    path = tmp_path / "c.sqlite"
    prov = Provider("p0", params, "honest", seed=3)
    led = Ledger(path, params, clock=Clock(T0), background=True)
    led.execute(prov.register_ops())
    sizes = []
    for b in range(40):
        tasks = [Task(f"c{b}-{i}", models.task_input("c", b * 100 + i), "c0", 1.0) for i in range(100)]
        assert all(r["ok"] for r in led.execute([op for _, op in prov.infer(tasks)]))
        led._sync()
        sizes.append(os.path.getsize(f"{path}-wal"))
    assert led.db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    assert led._checkpointer is not None
    # without checkpoints the WAL holds every batch's frames: about 40 × the first batch's (measured: 6.6 MB
    # against 1.3 MB with them); the first batch is written before any checkpoint (CHECKPOINT_EVERY > 1)
    assert 1 < L.CHECKPOINT_EVERY < 10
    assert max(sizes) < 20 * sizes[0], sizes
    led.check_invariant(full=True)
    led.close()
    db = sqlite3.connect(path)
    assert db.execute("SELECT COUNT(*) FROM tasks").fetchone()[0] == 4000
    db.close()


def test_young_collections_are_rarer_inside_a_run_and_restored_after():
    import gc

    from reference_node.inprocess import YOUNG_THRESHOLD, rare_young_collections

    before = gc.get_threshold()
    with pytest.raises(ZeroDivisionError):
        with rare_young_collections():
            assert gc.get_threshold() == (max(before[0], YOUNG_THRESHOLD), *before[1:])
            raise ZeroDivisionError("the block failed")
    assert gc.get_threshold() == before


def test_checked_commits_fail_in_the_ledgers_order_and_apply_as_unchecked(tmp_path, params):
    """check() runs the stateless part of a commit ahead; each error still comes where the ledger meets
    it: the request id, then a replayed request id, then the task's and provider's form, the provider's
    registration, the other fields, the stake, the signature, a repeated task. Expected statuses are
    read off that order by hand."""
    ops = _ops(params, 6)
    reg, good = ops[:2], ops[2:]
    g0, g1, g2, g3 = good[:4]
    cases = [
        ({**g1, "request_id": ""}, 422, "request_id"),
        ({**g1, "request_id": "commit:fp-0", "fee": -1}, 409, "different content"),  # replay check first
        ({**g1, "task_id": "bad id!", "provider": "nobody", "request_id": "x1"}, 422, "task_id"),
        ({**g1, "provider": "nobody", "fee": -1}, 404, "nobody"),  # the provider before the fee
        ({**g1, "provider": "p0", "fee": -1}, 422, "fee"),
        ({**g2, "output": [1] * 3}, 422, "output"),
        ({**g2, "input": g3["input"]}, 422, "input_hash"),
        ({**g2, "signature": "0" * 128}, 401, "signature"),
        ({**g0, "request_id": "again"}, 409, "already committed"),
    ]
    batch = reg + [g0] + [c for c, _, _ in cases] + [g2]
    outs = []
    for checked_ahead in (False, True):
        led = Ledger(tmp_path / f"c{checked_ahead}.sqlite", params, clock=Clock(T0))
        res = led.execute(batch, checked=led.check(batch) if checked_ahead else None)
        led.close()
        outs.append((res, _tables(tmp_path / f"c{checked_ahead}.sqlite")))
    assert outs[0] == outs[1]
    res = outs[0][0]
    assert res[2]["ok"] and res[-1]["ok"]
    for r, (_, status, needle) in zip(res[3:-1], cases):
        assert not r["ok"] and r["status"] == status and needle in r["error"], (status, needle, r)
    led = Ledger(tmp_path / "x.sqlite", params, clock=Clock(T0))
    with pytest.raises(ValueError, match="checked"):
        led.execute(batch, checked=[None])
    led.close()


def test_a_database_of_the_older_table_layout_is_refused_with_a_message(tmp_path, params):
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE tasks (task_id TEXT PRIMARY KEY, input_hash TEXT NOT NULL)")  # layout 0: no version
    db.commit()
    db.close()
    with pytest.raises(sqlite3.DatabaseError, match="layout 0.*start a new run directory"):
        Ledger(path, params)
    led = Ledger(tmp_path / "new.sqlite", params)  # a new database gets the current layout
    led.close()
    db = sqlite3.connect(tmp_path / "new.sqlite")
    from reference_node.ledger import SCHEMA_VERSION

    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
    db.close()
    Ledger(tmp_path / "new.sqlite", params).close()  # and reopens


def test_commitments_read_their_hashes_and_signature_from_the_commit_event(tmp_path, params):
    """The tasks table no longer repeats the hashes and the signature; every reader gets them, equal to
    what the provider committed, written or still in an open transaction."""
    from reference_node.ledger import read_commitments, read_tasks

    ops = _ops(params, 5)
    led = Ledger(tmp_path / "h.sqlite", params, clock=Clock(T0))
    led.execute(ops[:5])
    with led.transaction():
        led.execute(ops[5:])
        inside = led.task("fp-4")
    fields = ("task_id", "provider", "input", "output", "output_hash", "model_id", "signature", "input_hash")
    want = {op["task_id"]: {k: op[k] for k in fields} for op in ops[2:]}
    assert {k: inside[k] for k in fields} == want["fp-4"]
    got = [led.task(t) for t in want] + led.commitments(0) + read_tasks(led.path, list(want)) + \
        read_commitments(led.path, 0, 100)
    led.close()
    assert len(got) == 4 * len(want)
    for c in got:
        assert {k: c[k] for k in fields} == want[c["task_id"]]


def test_the_switch_interval_is_shorter_inside_a_run_and_restored_after():
    import sys

    from reference_node.inprocess import SWITCH_INTERVAL, prompt_thread_switches

    before = sys.getswitchinterval()
    with pytest.raises(ZeroDivisionError):
        with prompt_thread_switches():
            assert sys.getswitchinterval() == pytest.approx(min(before, SWITCH_INTERVAL))
            raise ZeroDivisionError("the block failed")
    assert sys.getswitchinterval() == before


def test_the_network_clock_moves_by_every_batch_even_when_commits_are_refused(tmp_path, params):
    """The simulated clock advances by the batch's duration at the scenario's throughput, whatever the
    ledger refused (here every commit of provider-1, whose signatures are made with another key)."""
    from reference_node import crypto
    from reference_node.inprocess import EPOCH, Network

    net = Network(params, tmp_path / "n.sqlite", ["honest", "honest"], 1, seed=4, parallel=False, worker=False)
    net.providers[1].key = crypto.Key(4, "someone-else")  # registered under the old key: every signature fails
    expected = EPOCH
    for n in (512, 512, 176):
        expected += n * net.step
    net.run(1200)
    assert net.ledger.task_count() == 600  # provider-1's 600 commits were refused
    assert net.clock.t == expected
    net.close()
