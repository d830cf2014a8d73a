"""The ledger's batch check of commitments (ledger._check_commits) gives what the per-operation check
gives (ledger._check_commit, the reference: it reads one field at a time and words every error), and
gives up (None: the per-operation check runs) on every kind of malformed batch, so no malformed
commitment is ever judged by the batch path."""

from __future__ import annotations

import pytest

from reference_node import models
from reference_node.ledger import Ledger, _check_commit, _check_commits
from reference_node.params import load
from reference_node.provider import Provider, Task
from reference_node.testing import assert_same_checks as _same
from reference_node.testing import write_params
from reference_node.verifier import Verifier, lead_index, lead_indices


@pytest.fixture(scope="module")
def params(tmp_path_factory):
    return load(write_params(tmp_path_factory.mktemp("p") / "p.json"))


def _commits(params, n=64, strategy="mixed:weaker-model:0.5"):
    prov = Provider("p0", params, strategy, seed=5)
    return [op for _, op in prov.infer([Task(f"bc-{i}", models.task_input("bc", i), "c0", 0.25) for i in range(n)])]


def test_the_batch_check_of_well_formed_commits_is_the_per_operation_check(params):
    ops = _commits(params)
    # commitments whose hashes do not match their input or output are well-formed: judged by both paths
    ops[3] = {**ops[3], "input_hash": "0" * 64}
    ops[7] = {**ops[7], "output": [v + 1 for v in ops[7]["output"]]}
    ops[9] = {**ops[9], "action": None, "cost": float("inf")}
    ops[11] = {**ops[11], "action": 'we"ird', "cost": 10 ** 30}
    batch = _check_commits(ops, set())
    assert batch is not None
    reference = [_check_commit(op, set()) for op in ops]
    _same(batch, reference)
    assert [r[5] is not None for r in batch].count(True) == 2  # the two tampered hashes, and only they


def _malformed(op, how):
    op = dict(op)
    if how == "task id with a newline between two valid ids":
        op["task_id"] = "bc-a\nbc-b"
        op["request_id"] = "commit:" + op["task_id"]
    elif how == "own request id":
        op["request_id"] = "my-own-id"
    elif how == "no request id":
        del op["request_id"]
    elif how == "missing output":
        del op["output"]
    elif how == "boolean score":
        op["output"] = [True] + op["output"][1:]
    elif how == "float score":
        op["output"] = [1.0] + op["output"][1:]
    elif how == "nine scores":
        op["output"] = op["output"][:9]
    elif how == "score beyond the bound":
        op["output"] = [models.OUTPUT_BOUND + 1] + op["output"][1:]
    elif how == "integer fee":
        op["fee"] = 1
    elif how == "NaN fee":
        op["fee"] = float("nan")
    elif how == "negative fee":
        op["fee"] = -0.5
    elif how == "upper-case hex":
        op["signature"] = op["signature"].upper()
    elif how == "short hash":
        op["input_hash"] = op["input_hash"][:63]
    elif how == "provider id with a space":
        op["provider"] = "p 0"
    elif how == "model id not a string":
        op["model_id"] = 7
    elif how == "input too long":
        op["input"] = "x" * 4097
    elif how == "not a commit":
        op["op"] = "audit"
    return op


HOW = ["task id with a newline between two valid ids", "own request id", "no request id", "missing output",
       "boolean score", "float score", "nine scores", "score beyond the bound", "integer fee", "NaN fee",
       "negative fee", "upper-case hex", "short hash", "provider id with a space", "model id not a string",
       "input too long", "not a commit"]


@pytest.mark.parametrize("how", HOW)
def test_the_batch_check_gives_up_on_any_malformed_commit(params, how):
    ops = _commits(params, 12)
    ops[5] = _malformed(ops[5], how)
    assert _check_commits(ops, set()) is None
    assert _check_commits(ops[:5] + ops[6:], set()) is not None  # the rest alone is well-formed


def test_a_list_that_is_not_all_dicts_goes_operation_by_operation(params):
    ops = _commits(params, 4)
    assert _check_commits([*ops, "commit"], set()) is None
    assert _check_commits([], set()) == []


@pytest.mark.parametrize("how", ["task id with a newline between two valid ids", "boolean score", "NaN fee",
                                 "upper-case hex", "provider id with a space"])
def test_the_ledger_rejects_the_malformed_commit_alone(tmp_path, params, how):
    """Through Ledger.execute: the malformed commitment gets its 422, the others of the batch apply."""
    led = Ledger(tmp_path / "l.sqlite", params, clock=lambda: 100.0, verify_signatures=True)
    prov = Provider("p0", params, "honest", seed=5)
    assert all(r["ok"] for r in led.execute(prov.register_ops()))
    ops = _commits(params, 6, "honest")
    ops[2] = _malformed(ops[2], how)
    results = led.execute(ops)
    assert results[2]["ok"] is False and results[2]["status"] == 422, results[2]
    assert all(r["ok"] for i, r in enumerate(results) if i != 2)
    led.close()


@pytest.mark.parametrize("count", [1, 2, 3, 7])
def test_lead_indices_are_the_lead_index_of_each_task(params, count):
    """The batch computation of the public lead (verifier.lead_indices) is models.unit_hash's rule,
    and a verifier given them selects what it selects computing them itself."""
    page = [{"task_id": f"lead-{i}"} for i in range(3000)]
    leads = lead_indices(page, count)
    assert leads == [int(models.unit_hash("lead", c["task_id"]) * count) for c in page]
    assert leads == [lead_index(c["task_id"], count) for c in page]
    assert set(leads) == set(range(count))
    for index in range(count):
        v = Verifier(f"verifier-{index}", params, index, count, seed=2)
        v.rate = 0.3
        assert v.selected(page, leads) == v.selected(page) == [c for c in page if v.selects(c["task_id"])]


@pytest.mark.parametrize("how", [None, "upper-case hex", "NaN fee"])
def test_checks_made_in_another_process_apply_as_the_ledgers_own(tmp_path, params, how):
    """The checks cross a pipe (the in-process network's worker makes check_columns' part): pickled
    and loaded, and expanded in the other process, they are the same results as the per-operation
    check, errors included, and execute(ops, checked=...) with them gives what the ledger's own
    check gives, result for result and event for event."""
    import pickle

    from reference_node.ledger import check_columns, check_ops, expand_columns

    def crossed(value):
        return pickle.loads(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))

    ops = _commits(params, 24, "honest")
    ops[5] = {**ops[5], "input_hash": "0" * 64}  # a hash that does not match (an error the check finds)
    if how is not None:
        ops[9] = _malformed(ops[9], how)  # the batch path gives up: operation by operation
    checked = crossed(check_ops(ops, set()))
    _same(checked, [_check_commit(op, set()) for op in ops])
    columns = crossed(check_columns(ops, set()))
    assert (columns is None) is (how is not None)  # a malformed batch: the worker ships nothing
    if columns is not None:
        ops = crossed(ops)  # the parent's copy of the batch
        _same(expand_columns(ops, columns), [_check_commit(op, set()) for op in ops])
    logs = []
    for name, given in (("own", None), ("given", checked)):
        led = Ledger(tmp_path / f"{name}.sqlite", params, clock=lambda: 100.0, verify_signatures=True)
        assert all(r["ok"] for r in led.execute(Provider("p0", params, "honest", seed=5).register_ops()))
        results = led.execute(ops, checked=given)
        assert results[5]["status"] == 422 and (how is None or results[9]["status"] == 422)
        logs.append((results, led.db.execute("SELECT seq, request_id, kind, data FROM events").fetchall()))
        led.close()
    assert logs[0] == logs[1]
