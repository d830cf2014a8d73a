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
from reference_node.testing import write_params


class Clock:
    def __init__(self) -> None:
        self.t = 5000.0

    def __call__(self) -> float:
        return self.t


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
    led = Ledger(tmp_path / "l.sqlite", params, clock=Clock())
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
        clock = Clock()
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
    led = Ledger(tmp_path / "f.sqlite", params, clock=Clock(), background=True)
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
    led = Ledger(tmp_path / "l.sqlite", params, clock=Clock())
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
