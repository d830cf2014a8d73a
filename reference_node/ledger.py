"""The stake ledger: a staking contract's state machine on SQLite.

Accounts (providers, verifiers, clients, the arbiter) register an Ed25519 public key.
Amounts are integers in micro-units (``params.UNIT``), so the conservation invariant is exact:

    Σ balance + Σ locked + Σ unbonding + escrowed + burned  =  deposits + fees − withdrawn

(`fees` are client fees paid in with each commitment; `escrowed` holds the fees of tasks
whose challenge window is open.) It is checked before every database commit; a violation
rolls the transaction back.

Operations (the contract's API; each is a dict with ``op`` and an optional ``request_id``):
``register, deposit, withdraw, commit, audit, challenge, resolve, settle, advance, reveal``.
Every state change is one append-only row of ``events`` written in the same SQLite
transaction as the balances it moves (see :mod:`reference_node.events` for the schema).
Operations are idempotent by request id: a replay returns the first result, a reused id
with a different operation is rejected. A batch of operations is applied in one transaction
(group commit); a rejected operation leaves no trace and does not affect the others.

Rules
-----
* commit: the provider is registered, its stake is not exhausted, its signature over (task id,
  input hash, output hash, model id, provider id) verifies (an Ed25519 signature of the tuple, or
  of the Merkle root of a batch of them with the tuple's inclusion path: :mod:`reference_node.crypto`;
  a batch's root signature is verified once), the task id is new, the
  fee is finite and ≥ 0; the fee is escrowed until the challenge window (the scenario's
  settlement latency T, in ledger seconds) closes.
* challenge: a registered, bonded verifier freezes a task inside its window, naming the
  evidence digest. resolve: the arbiter (its signature over the verdict) upholds it: the
  provider is slashed min(L, remaining stake) (``capped`` when the stake ran short), the
  verifier gets bounty_share of the slash, the rest is burned, the fee is refunded to the
  client; or rejects it: the verifier's bond is burned and the task settles normally.
* withdraw: free balance leaves at once; stake enters unbonding and is released only after
  the unbonding period (≥ T) and after the window of every task of that provider has closed
  with no challenge pending. Unbonding stake stays slashable.
* settle: closes the windows that have expired (pays escrowed fees to providers) and
  releases matured withdrawals; ``advance`` moves the ledger clock (a test network's
  ``evm_increaseTime``).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import itertools
import json
import math
import operator
import re
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reference_node import crypto
from reference_node.models import OUT, OUTPUT_BOUND, parse_output, stored_and_hash
from reference_node.params import UNIT, NodeParams, to_units

KINDS = ("provider", "verifier", "client", "arbiter")
MAX_AMOUNT = 1e12
ID_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:")
ID_RE = re.compile(r"[A-Za-z0-9\-_.:]{1,128}")
HEX_RE = {n: re.compile(f"[0-9a-f]{{{n}}}") for n in (64, 128)}
OPEN, CHALLENGED, SETTLED, SLASHED = 0, 1, 2, 3
_id_ok, _hex64 = ID_RE.fullmatch, HEX_RE[64].fullmatch
STATUS = {OPEN: "open", CHALLENGED: "challenged", SETTLED: "settled", SLASHED: "slashed"}

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY, request_id TEXT NOT NULL UNIQUE, kind TEXT NOT NULL, time REAL NOT NULL,
    account TEXT, task_id TEXT, amount INTEGER NOT NULL DEFAULT 0, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS accounts (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, pubkey TEXT NOT NULL, balance INTEGER NOT NULL,
    locked INTEGER NOT NULL, unbonding INTEGER NOT NULL, last_close REAL NOT NULL,
    secret_commitment TEXT, revealed TEXT);
CREATE TABLE IF NOT EXISTS tasks (
    task_id TEXT PRIMARY KEY, provider TEXT NOT NULL, client TEXT NOT NULL, fee INTEGER NOT NULL,
    model_id TEXT NOT NULL, input TEXT NOT NULL, output TEXT NOT NULL, commit_time REAL NOT NULL,
    window_close REAL NOT NULL,
    status INTEGER NOT NULL, audited INTEGER NOT NULL DEFAULT 0, seq INTEGER NOT NULL, challenger TEXT,
    action TEXT);
CREATE INDEX IF NOT EXISTS open_tasks ON tasks(window_close) WHERE status = 0;
CREATE TABLE IF NOT EXISTS withdrawals (
    id TEXT PRIMARY KEY, account TEXT NOT NULL, amount INTEGER NOT NULL, release_at REAL NOT NULL,
    status TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS totals (name TEXT PRIMARY KEY, value REAL NOT NULL);
"""
_dumps = json.JSONEncoder(separators=(",", ":")).encode  # json.dumps(..., separators=(",", ":")), reused
_sha256 = hashlib.sha256
TOTALS = ("deposits", "fees", "withdrawn", "burned", "escrowed", "clock_offset")
# a commitment's row: the hashes and the signature are read from its commit event (tasks.seq), not
# stored twice (a quarter of the bytes a commitment writes)
TASK_COLUMNS = "tasks (task_id, provider, client, fee, model_id, input, output, commit_time, window_close, status, seq, action)"
SCHEMA_VERSION = 2  # PRAGMA user_version of a ledger database; 0 (and no version) before this layout
# a commitment as the verifiers' feed and the arbiter read it (see commitment_row)
COMMITMENT_SELECT = ("SELECT t.rowid, t.task_id, t.provider, t.input, t.output, e.data, t.model_id "
                     "FROM tasks t JOIN events e ON e.seq = t.seq")
TASK_SELECT = ("SELECT t.rowid, t.task_id, t.provider, t.input, t.output, e.data, t.model_id, t.status, "
               "t.window_close, t.challenger, t.audited FROM tasks t JOIN events e ON e.seq = t.seq")
CHECKPOINT_EVERY = 4  # background ledgers: transactions between WAL checkpoints (a batch is ≈ 130 pages)
STATEMENT_ROWS = 256  # rows per multi-row statement (fewer if SQLite's limit on bound values is lower)


def _pieces(rows: list, db: sqlite3.Connection, width: int, extra: int = 0) -> Iterator[list]:
    """``rows`` in pieces of at most STATEMENT_ROWS, then halves: a few statement shapes, all cached
    (a piece binds ``width`` values per row and ``extra`` more)."""
    i, n = 0, len(rows)
    top = max(1, min(STATEMENT_ROWS, (db.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) - extra) // width))
    while i < n:
        k = top
        while k > n - i:
            k //= 2
        yield rows[i:i + k]
        i += k


def _insert_many(db: sqlite3.Connection, into: str, rows: list[tuple]) -> None:
    """INSERT the rows with multi-row VALUES statements. Same rows as ``executemany``, but each statement
    binds all its values at once and then runs in SQLite with the GIL released throughout, where
    ``executemany`` takes the GIL back after every row (a writer thread then waits for the other
    threads' Python at each row)."""
    if not rows:
        return
    width = len(rows[0])
    one = "(" + ",".join("?" * width) + ")"
    for piece in _pieces(rows, db, width):
        db.execute(f"INSERT INTO {into} VALUES {','.join([one] * len(piece))}", [v for row in piece for v in row])


def _update_status(db: sqlite3.Connection, changes: list[tuple[int, str]]) -> None:
    """Apply (status, task id) changes in order, a run of equal statuses per statement (a task changed
    twice in a transaction ends with its last status, as with one UPDATE per change)."""
    i, n = 0, len(changes)
    while i < n:
        j = i
        status = changes[i][0]
        while j < n and changes[j][0] == status:
            j += 1
        for piece in _pieces([tid for _, tid in changes[i:j]], db, 1, 1):
            db.execute(f"UPDATE tasks SET status = ? WHERE task_id IN ({','.join('?' * len(piece))})", [status, *piece])
        i = j


class LedgerError(Exception):
    """A rejected operation: ``status`` is the HTTP status a service answers with."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message

    def __reduce__(self) -> tuple:  # pickled as it was made (an error can cross a process boundary)
        return LedgerError, (self.status, self.message)


class InvariantError(RuntimeError):
    pass


@dataclass
class Account:
    id: str
    kind: str
    pubkey: str
    key: Any
    balance: int = 0
    locked: int = 0
    unbonding: int = 0
    last_close: float = 0.0
    secret_commitment: str | None = None
    revealed: str | None = None
    challenged: int = 0  # tasks of this provider with a pending challenge (derived on load)


# ----------------------------------------------------------------------------------------
# validation helpers (every message names the field, what was expected, what was found)
# ----------------------------------------------------------------------------------------


def _field(op: dict, name: str, kind: type | tuple, required: bool = True, default: Any = None) -> Any:
    if name not in op or op[name] is None:
        if required:
            raise LedgerError(422, f"field {name!r}: expected a value, found nothing")
        return default
    value = op[name]
    if isinstance(value, bool) and kind is not bool:
        raise LedgerError(422, f"field {name!r}: expected {_kname(kind)}, found a boolean")
    if not isinstance(value, kind):
        raise LedgerError(422, f"field {name!r}: expected {_kname(kind)}, found {type(value).__name__}")
    return value


def _remember(known: set, value: str) -> bool:
    """Add a checked id to ``known`` (bounded: cleared when it grows past 4096); True."""
    if len(known) > 4096:
        known.clear()
    known.add(value)
    return True


def _kname(kind: Any) -> str:
    return {str: "a string", int: "an integer", float: "a number", bool: "a boolean",
            dict: "an object", list: "a list"}.get(kind, "a number")


def _ident(op: dict, name: str) -> str:
    value = _field(op, name, str)
    if ID_RE.fullmatch(value) is None:
        raise LedgerError(422, f"field {name!r}: expected an id of 1-128 characters [A-Za-z0-9-_.:], "
                               f"found {value[:40]!r}")
    return value


def _hex(op: dict, name: str, length: int) -> str:
    value = _field(op, name, str)
    if HEX_RE[length].fullmatch(value) is None:
        raise LedgerError(422, f"field {name!r}: expected {length} lowercase hex digits, found {value[:40]!r}")
    return value


def _commitment_signature(op: dict) -> str:
    value = _field(op, "signature", str)
    if crypto.signature_form(value) is None:
        raise LedgerError(422, "field 'signature': expected an Ed25519 signature (128 lowercase hex digits), or a "
                               "merkle commitment signature (128 hex digits '.' leaf index '.' leaves '.' path of "
                               f"64 hex digits per node), found {value[:40]!r}")
    return value


def _amount(op: dict, name: str, allow_zero: bool = False) -> int:
    value = _field(op, name, (int, float))
    if not math.isfinite(value):
        raise LedgerError(422, f"field {name!r}: expected a finite amount, found {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise LedgerError(422, f"field {name!r}: expected a {'non-negative' if allow_zero else 'positive'} "
                               f"amount, found {value!r}")
    if value > MAX_AMOUNT:
        raise LedgerError(422, f"field {name!r}: expected at most {MAX_AMOUNT:g}, found {value!r}")
    units = to_units(value)
    if units == 0 and not allow_zero:
        raise LedgerError(422, f"field {name!r}: expected at least {1 / UNIT:g}, found {value!r}")
    return units


def _request_id(op: dict, kind: str) -> str:
    """The operation's request id (given, or the default of a task's commit/audit/challenge/resolve)."""
    request_id = op.get("request_id")
    if request_id is None:
        if isinstance(op.get("task_id"), str) and kind in ("commit", "audit"):
            request_id = f"{kind}:{op['task_id']}"
        elif isinstance(op.get("task_id"), str) and isinstance(op.get("verifier"), str) and \
                kind in ("challenge", "resolve"):
            request_id = f"{kind}:{op['task_id']}:{op['verifier']}"
    if request_id is None:
        raise LedgerError(422, "field 'request_id': expected a unique request id, found nothing")
    if not isinstance(request_id, str) or not 1 <= len(request_id) <= 200:
        raise LedgerError(422, f"field 'request_id': expected a string of 1-200 characters, found {request_id!r}")
    return request_id


def _check_commit(op: dict, known: set) -> tuple:
    """The checks of a commit operation that read no ledger state (see :meth:`Ledger.check`):
    ``(early error, request id, digest, default request id?, stage of the late error, late error,
    values)``. An early error (the request id) comes before the replay check; a late error of stage 0
    (the task id's or the provider id's form) before the provider is looked up, of stage 1 (every
    other field) after it. ``values`` are what the ledger records, and the commit event's JSON text
    but for its seq and window close."""
    g = op.get
    task, provider, client, fee, input_hash, output_hash, model_id, signature, action, cost = (
        g("task_id"), g("provider"), g("client"), g("fee"), g("input_hash"), g("output_hash"), g("model_id"),
        g("signature"), g("action"), g("cost"))
    rid = g("request_id")
    if rid is None and task.__class__ is str and len(task) <= 193:  # the default id fits 200 characters
        rid = f"commit:{task}"
        default = True
    else:
        try:
            rid = _request_id(op, "commit")
        except LedgerError as err:
            return err, None, None, False, 0, None, None
        default = task.__class__ is str and rid == f"commit:{task}"
    # the request as submitted: a replay must repeat it exactly. The input and output enter through
    # their hashes (a fresh commit is rejected unless they match). The string fields are joined by a
    # separator none of them holds (counted: unambiguous), the others by repr; any other shape by repr
    try:
        text = "\x1f".join((rid, task, provider, client, input_hash, output_hash, model_id, signature))
    except TypeError:
        text = None
    if text is not None and text.count("\x1f") == 7:
        digest = _commit_digest(text, fee, action, cost)
    else:
        digest = _sha256(repr((rid, task, provider, client, fee, input_hash, output_hash, model_id, signature, action,
                               cost)).encode("utf-8", "surrogatepass")).hexdigest()[:32]
    stage = 0
    try:
        # the same checks as _ident/_hex/_field, inline for the well-formed case; those raise the messages
        task_id = task if task.__class__ is str and _id_ok(task) else _ident(op, "task_id")
        if not (provider.__class__ is str and (provider in known or (_id_ok(provider) and _remember(known, provider)))):
            _ident(op, "provider")
        stage = 1
        if not (client.__class__ is str and (client in known or (_id_ok(client) and _remember(known, client)))):
            _ident(op, "client")
        fee = to_units(fee) if fee.__class__ is float and 0.0 <= fee <= MAX_AMOUNT else _amount(op, "fee", True)
        if not (input_hash.__class__ is str and _hex64(input_hash)):
            _hex(op, "input_hash", 64)
        if not (output_hash.__class__ is str and _hex64(output_hash)):
            _hex(op, "output_hash", 64)
        if not (model_id.__class__ is str and (model_id in known or (_id_ok(model_id) and _remember(known, model_id)))):
            _ident(op, "model_id")
        if not (signature.__class__ is str and crypto.signature_form(signature)):
            _commitment_signature(op)
        text = v if (v := g("input")).__class__ is str else _field(op, "input", str)
        output = v if (v := g("output")).__class__ is list else _field(op, "output", list)
        if len(text) > 4096:
            raise LedgerError(422, f"field 'input': expected at most 4096 characters, found {len(text)}")
        parsed = parse_output(output)
        if parsed is None:
            raise LedgerError(422, f"field 'output': expected a list of {OUT} integers within ±{OUTPUT_BOUND}, "
                                   f"found {str(output)[:60]}")
        stored, recomputed = stored_and_hash(parsed)
        if _sha256(_utf8(text)).hexdigest() != input_hash or recomputed != output_hash:
            raise _digests_differ()
    except LedgerError as err:
        return None, rid, digest, default, stage, err, None
    return None, rid, digest, default, stage, None, _commit_values(task_id, provider, client, fee, input_hash,
                                                                   output_hash, model_id, signature, text, stored,
                                                                   action, cost, digest)


def _commit_digest(joined: str, fee: Any, action: Any, cost: Any) -> str:
    """A commit request's digest when its eight string fields (request id, task, provider, client,
    input hash, output hash, model id, signature) hold no separator: ``joined`` is them joined by
    \\x1f; the other fields follow by repr."""
    return _sha256((joined + "\x1e" + repr((fee, action, cost))).encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _unicode(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _utf8(text: str) -> bytes:
    """A commitment's input as the bytes its hash is of (text that is not Unicode, such as a lone
    surrogate of a JSON "\\ud800", has none: 422)."""
    try:
        return text.encode()
    except UnicodeEncodeError:
        raise LedgerError(422, "field 'input': expected Unicode text, found a lone surrogate") from None


def _digests_differ() -> LedgerError:
    return LedgerError(422, "fields 'input_hash'/'output_hash': expected the sha256 of the input and output, "
                            "found different digests")


def _commit_values(task_id: str, provider: str, client: str, fee: int, input_hash: str, output_hash: str,
                   model_id: str, signature: str, text: str, stored: str, action: Any, cost: Any,
                   digest: str) -> tuple:
    """What the ledger records of a commitment whose fields passed the checks: the values, and the
    commit event's JSON text but for its seq and window close (``fee`` in units; ``action`` and
    ``cost`` as submitted, normalised here)."""
    if action.__class__ is not str or not (action.isascii() or _unicode(action)):
        action = None  # (a text that is not Unicode could not be stored either)
    # ground-truth metadata for experiments: a finite number, else dropped
    if cost.__class__ is float:
        cost = cost if math.isfinite(cost) else None
    elif cost.__class__ is not int or abs(cost) > MAX_AMOUNT:
        cost = None
    # every string but the action is an id or hex digits, which JSON needs no escaping for
    middle = (f',"task_id":"{task_id}","provider":"{provider}","client":"{client}","fee":{fee / UNIT!r},'
              f'"model_id":"{model_id}","input_hash":"{input_hash}","output_hash":"{output_hash}",'
              f'"signature":"{signature}","window_close":')
    tail = (f',"action":{"null" if action is None else _json_text(action)},'
            f'"cost":{"null" if cost is None else repr(cost)},"request_digest":"{digest}"}}')
    return (task_id, client, fee, input_hash, output_hash, model_id, signature, text, stored, action, cost,
            middle, tail)


# the fields of a commit operation, in the order _check_commits reads them
_COMMIT_FIELDS = operator.itemgetter("request_id", "task_id", "provider", "client", "fee", "input_hash",
                                     "output_hash", "model_id", "signature", "input", "output", "action", "cost")
_ID_BYTES = "".join(sorted(ID_CHARS)).encode()
_HEX_BYTES = b"0123456789abcdef"


def _only(text: str, allowed: bytes) -> bool:
    """Is every character of ``text`` one of ``allowed`` (ASCII)? One C pass that deletes them; a
    quarter of the time of a regular expression over a batch's joined fields (a non-ASCII character
    encodes to bytes outside ``allowed`` and remains)."""
    return not text.encode("utf-8", "surrogatepass").translate(None, allowed)


def _check_commits(ops: list, known: set) -> list[tuple] | None:
    """:func:`_check_commit` of every operation of a batch at once, when every one of them is a
    well-formed commit with its default request id (the in-process network's and a provider's
    batches): the form of each field is checked column by column (a few C-level passes over the
    batch instead of a dozen Python checks per operation), then each commitment is hashed. The
    same results as ``[_check_commit(op, known) for op in ops]``; None as soon as one operation is
    not of that shape (a missing key, a wrong type, a malformed id, hex or amount, an oversized
    input, a malformed output), and then the caller checks operation by operation, which finds
    and words the error. A hash that does not match is reported here, as _check_commit does.
    In two steps, which may run in two processes: :func:`check_columns`, :func:`expand_columns`."""
    columns = check_columns(ops, known)
    return None if columns is None else expand_columns(ops, columns)


def check_columns(ops: list, known: set) -> tuple[list[str], list[str], list[bool]] | None:
    """The costly part of :func:`_check_commits`: the forms, and per commitment its request digest,
    its stored output and whether both hashes match (or None: not a batch of that shape)."""
    try:
        if any(op.__class__ is not dict or op.get("op") != "commit" for op in ops):
            return None
        cols = list(zip(*map(_COMMIT_FIELDS, ops)))
    except KeyError:
        return None
    if not cols:
        return [], [], []
    rids, tasks, providers, clients, fees, ihs, ohs, mids, sigs, inputs, outputs, actions, costs = cols
    if set(map(type, tasks + providers + clients + ihs + ohs + mids + sigs + inputs)) != {str}:
        return None
    if min(map(len, tasks)) < 1 or max(map(len, tasks)) > 128 or not _only("".join(tasks), _ID_BYTES) or \
            any(r != "commit:" + t for r, t in zip(rids, tasks)):
        return None
    for name in {*providers, *clients, *mids} - known:
        if not _id_ok(name):
            return None
        _remember(known, name)
    hexes = ihs + ohs
    if set(map(len, hexes)) != {64} or not _only("".join(hexes), _HEX_BYTES):
        return None
    if not crypto.signature_forms(sigs):
        return None
    if set(map(type, fees)) != {float} or not all(0.0 <= f <= MAX_AMOUNT for f in fees) or \
            max(map(len, inputs)) > 4096 or not "".join(inputs).isascii():
        return None
    if set(map(type, outputs)) != {list} or set(map(len, outputs)) != {OUT}:
        return None
    flat = list(itertools.chain.from_iterable(outputs))
    if set(map(type, flat)) != {int} or min(flat) < -OUTPUT_BOUND or max(flat) > OUTPUT_BOUND:
        return None
    digests, stored_outputs, hashes_ok = [], [], []
    for rid, task, provider, client, fee, ih, oh, mid, sig, text, output, action, cost in zip(*cols):
        # every string field is an id or hex: no separator in them
        digests.append(_commit_digest("\x1f".join((rid, task, provider, client, ih, oh, mid, sig)), fee, action,
                                      cost))
        stored, recomputed = stored_and_hash(output)
        stored_outputs.append(stored)
        hashes_ok.append(_sha256(text.encode()).hexdigest() == ih and recomputed == oh)
    return digests, stored_outputs, hashes_ok


def expand_columns(ops: list, columns: tuple[list[str], list[str], list[bool]]) -> list[tuple]:
    """:func:`check_columns`' result for ``ops`` as :func:`_check_commit`'s, operation by operation
    (what the ledger records of each). Cheap: the costly checks are done, possibly in another
    process (the in-process network's worker ships the columns, a few short strings per
    commitment, instead of these results)."""
    out = []
    for (rid, task, provider, client, fee, ih, oh, mid, sig, text, _, action, cost), digest, stored, ok in zip(
            map(_COMMIT_FIELDS, ops), *columns):
        if not ok:
            out.append((None, rid, digest, True, 1, _digests_differ(), None))
            continue
        out.append((None, rid, digest, True, 1, None, _commit_values(
            task, provider, client, to_units(fee), ih, oh, mid, sig, text, stored, action, cost, digest)))
    return out


def check_ops(ops: list, known: set) -> list[Any]:
    """:meth:`Ledger.check`, which reads nothing of a ledger: ``known`` is a cache of ids found
    well-formed (any set; it changes no result)."""
    fast = _check_commits(ops, known)
    if fast is not None:
        return fast
    return [_check_commit(op, known) if op.__class__ is dict and op.get("op") == "commit" else None for op in ops]


@functools.lru_cache(maxsize=256)
def _json_text(value: str) -> str:
    """A string as JSON (the few action names recur)."""
    return _dumps(value)


class Ledger:
    """The contract state: in-memory mirror of the accounts plus SQLite for everything else."""

    def __init__(self, path: str | Path, params: NodeParams, *, clock: Callable[[], float] = time.time,
                 verify_signatures: bool = True, unbonding: float | None = None, window: float | None = None,
                 synchronous: str = "NORMAL", crypto_pool: Any = None, background: bool = False):
        self.params = params
        # background=True: a batch's SQLite transaction is written by a writer thread (SQLite's C code
        # releases the GIL) while the caller goes on; every later read or batch waits for it first
        # (``_sync``), so no read sees a state the database does not hold. The in-process network uses
        # it; the HTTP ledger answers only after its transaction is durable (background=False).
        self.background = background
        self._writer: Any = None
        self._checkpointer: Any = None  # background=True: WAL checkpoints on their own thread and connection
        self._checkpoint_db: Any = None
        self._checkpoint_job: Any = None
        self._since_checkpoint = 0
        self._pending: Any = None
        self._failed: BaseException | None = None
        # with a pool (reference_node.parallel.CryptoPool) the commitment signatures of a batch are
        # verified up front on its threads; the same check, the same outcome per operation
        self.crypto_pool = crypto_pool
        self._verified: dict[tuple[str, str, bytes], bool] = {}
        self._roots: dict[tuple, bool] = {}  # merkle roots verified inline: (key, root signature, root message)
        self.path = str(path)
        self._wall = clock
        self.verify_signatures = verify_signatures
        self.window = params.settlement_latency if window is None else float(window)
        self.unbonding = max(params.settlement_latency, unbonding or 0.0)
        self.slash_units = to_units(params.slash)
        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(f"PRAGMA synchronous={synchronous}")
        if background:
            self.db.execute("PRAGMA wal_autocheckpoint=0")  # checkpoints run beside the writer (below)
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version != SCHEMA_VERSION and self.db.execute(
                "SELECT COUNT(*) FROM sqlite_master WHERE name = 'tasks'").fetchone()[0]:
            self.db.close()
            raise sqlite3.DatabaseError(f"this ledger database has table layout {version}, an older mira-node's; "
                                        f"this one reads layout {SCHEMA_VERSION}: start a new run directory")
        self.db.executescript(SCHEMA)
        self.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        self._seen_commits: dict[str, dict] = {}
        self._prefetched: set[str] = set()
        self._seen_requests: dict[str, dict] = {}
        self._prefetched_requests: set[str] = set()
        self._known_ids: set[str] = set()
        self._open: tuple | None = None  # inside transaction(): the state its block began with
        self._load()

    # -------------------------------------------------------------------- state
    def _load(self) -> None:
        db = self.db
        self.accounts: dict[str, Account] = {}
        for row in db.execute("SELECT id, kind, pubkey, balance, locked, unbonding, last_close, "
                              "secret_commitment, revealed FROM accounts"):
            self.accounts[row[0]] = Account(row[0], row[1], row[2], crypto.public_key(row[2]), row[3], row[4],
                                            row[5], row[6], row[7], row[8])
        for provider, n in db.execute("SELECT provider, COUNT(*) FROM tasks WHERE status = 1 GROUP BY provider"):
            self.accounts[provider].challenged = n
        totals = dict(db.execute("SELECT name, value FROM totals"))
        self.totals = {k: totals.get(k, 0) for k in TOTALS}
        for k in TOTALS[:-1]:
            self.totals[k] = int(self.totals[k])
        self.withdrawals = {r[0]: [r[1], r[2], r[3]] for r in
                            db.execute("SELECT id, account, amount, release_at FROM withdrawals "
                                       "WHERE status = 'pending'")}
        seq = db.execute("SELECT MAX(seq) FROM events").fetchone()[0]
        self.seq = seq or 0
        self.check_invariant(full=True)

    def now(self) -> float:
        return self._wall() + self.totals["clock_offset"]

    def check_invariant(self, full: bool = False) -> None:
        t = self.totals
        held = sum(a.balance + a.locked + a.unbonding for a in self.accounts.values())
        if held + t["escrowed"] + t["burned"] != t["deposits"] + t["fees"] - t["withdrawn"]:
            raise InvariantError(f"ledger invariant broken: held {held} + escrowed {t['escrowed']} + burned "
                                 f"{t['burned']} != deposits {t['deposits']} + fees {t['fees']} - withdrawn "
                                 f"{t['withdrawn']}")
        if full:
            self._sync()
            escrow = self.db.execute("SELECT COALESCE(SUM(fee), 0) FROM tasks WHERE status IN (0, 1)").fetchone()[0]
            if escrow != t["escrowed"]:
                raise InvariantError(f"escrow {t['escrowed']} != open tasks' fees {escrow}")
            unb = self.db.execute("SELECT account, SUM(amount) FROM withdrawals WHERE status = 'pending' "
                                  "GROUP BY account").fetchall()
            for acc, amount in unb:
                if self.accounts[acc].unbonding != amount:
                    raise InvariantError(f"{acc}: unbonding {self.accounts[acc].unbonding} != pending {amount}")

    def summary(self) -> dict[str, Any]:
        t = self.totals
        return {"deposits": t["deposits"] / UNIT, "fees": t["fees"] / UNIT, "withdrawn": t["withdrawn"] / UNIT,
                "burned": t["burned"] / UNIT, "escrowed": t["escrowed"] / UNIT, "events": self.seq,
                "accounts": {a.id: self.account_view(a) for a in self.accounts.values()}}

    @staticmethod
    def account_view(a: Account) -> dict[str, Any]:
        return {"kind": a.kind, "balance": a.balance / UNIT, "locked": a.locked / UNIT,
                "unbonding": a.unbonding / UNIT}

    def close(self) -> None:
        try:
            self._sync()
        finally:
            if self._writer is not None:
                self._writer.shutdown(wait=True)
                self._writer = None
            if self._checkpointer is not None:
                self._checkpointer.shutdown(wait=True)
                self._checkpointer = None
                self._checkpoint_db.close()
            self.db.close()

    def _sync(self) -> None:
        """Wait for the batch being written in the background; its failure is raised here."""
        if self._failed is not None:
            raise RuntimeError(f"a background write of this ledger failed ({self._failed!r}): its memory is ahead of "
                               "the database; reopen the ledger from the database")
        pending, self._pending = self._pending, None
        if pending is not None:
            try:
                pending.result()
            except BaseException as err:
                self._failed = err
                raise

    # -------------------------------------------------------------------- execution
    def execute(self, ops: Iterable[dict], verified: list[bool] | None = None,
                checked: list | None = None) -> list[dict]:
        """Apply a batch of operations in one transaction; one result per operation.

        A result is ``{"ok": True, ...}`` or ``{"ok": False, "status": 4xx, "error": message}``.
        ``verified``: the results of :meth:`verify_jobs` for these ops, checked elsewhere (a pool).
        ``checked``: :meth:`check` of these ops, computed beforehand (else here).
        Inside :meth:`transaction` the operations join that block's transaction instead.
        """
        ops = list(ops)
        if self._open is not None:
            return self._apply_all(ops, verified, checked)
        self._sync()
        self._begin()
        saved = self._snapshot()
        results = self._apply_all(ops, verified, checked)
        self._commit(saved)
        return results

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Every :meth:`execute` inside the block joins one SQLite transaction, written when the block
        ends (on the writer thread with ``background=True``). The operations apply in the order they are
        executed, exactly as one ``execute`` of all of them would apply them, and each call's results
        are final when it returns; the in-memory state and reads see them at once. If the block raises,
        nothing of it is written and the ledger's memory is restored to where the block began (the
        caller's results of the block's calls are void). The in-process network writes one
        transaction per batch this way: a batch's audits, verdicts, settlement and the next batch's
        commitments."""
        if self._open is not None:
            raise RuntimeError("ledger transactions do not nest")
        self._sync()
        self._begin()
        saved = self._open = self._snapshot()
        try:
            yield
        except BaseException:
            self._open = None
            self._restore(saved)
            raise
        self._open = None
        self._commit(saved)

    def _begin(self) -> None:
        """Start a transaction's rows (written by :meth:`_write`) and its replay bookkeeping."""
        self._rows: dict[str, list] = {"events": [], "tasks": [], "task_status": [], "audited": [],
                                       "withdrawals": [], "withdrawal_status": [], "challenger": []}
        self._dirty: set[str] = set()
        self._pending_ids: dict[str, dict] = {}
        self._pending_tasks: dict[str, dict] = {}  # task id → commit event data, of this transaction

    def _snapshot(self) -> tuple:
        return (dict(self.totals), {k: (a.balance, a.locked, a.unbonding, a.last_close, a.challenged,
                                        a.secret_commitment, a.revealed)
                                    for k, a in self.accounts.items()},
                {k: list(v) for k, v in self.withdrawals.items()}, self.seq)

    def _apply_all(self, ops: list, verified: list[bool] | None, checked: list | None = None) -> list[dict]:
        if checked is None:
            checked = self.check(ops)
        elif len(checked) != len(ops):
            raise ValueError(f"checked: expected {len(ops)} results of check(ops), found {len(checked)}")
        self._prefetch_commits(ops, checked)
        self._verified = {}
        if self.verify_signatures and (verified is not None or self.crypto_pool is not None):
            self._preverify(ops, verified)
        results = []
        for op, pre in zip(ops, checked):
            try:
                if pre is not None:
                    results.append(self._apply_commit(op, pre))
                    continue
                if not isinstance(op, dict):
                    raise LedgerError(422, f"an operation must be a JSON object, found {type(op).__name__}")
                results.append(self._apply(op))
            except LedgerError as err:
                results.append({"ok": False, "status": err.status, "error": err.message})
        if self._open is not None:
            try:
                self.check_invariant()
            except BaseException:
                self._restore(self._open)
                self._begin()  # the block's rows are void; its end writes nothing
                raise
        return results

    def _commit(self, saved: tuple) -> None:
        """Check the invariant and write the transaction (or hand it to the writer thread)."""
        try:
            self.check_invariant()
            if self.background and self._rows["events"]:
                self._flush_background()
            else:
                self._flush()
        except BaseException:
            self._restore(saved)
            raise

    def _flush_background(self) -> None:
        """Hand the batch's rows, and the account and total values they leave, to the writer thread."""
        from concurrent.futures import ThreadPoolExecutor

        if self._writer is None:
            self._writer = ThreadPoolExecutor(1, thread_name_prefix="ledger-writer")
        self._pending = self._writer.submit(self._write_and_checkpoint, *self._batch())

    def _write_and_checkpoint(self, *batch: Any) -> None:
        """The writer thread's job: the transaction, then (every CHECKPOINT_EVERY transactions) a WAL
        checkpoint started on the checkpointer thread, unless one is running. SQLite's automatic
        checkpoint is off for a background ledger: it would run inside the writer's COMMIT and stall
        the next batch on the checkpoint's copying and fsync, while a passive checkpoint on its own
        connection runs beside the writer (WAL allows it) and never blocks it."""
        self._write(*batch)
        self._since_checkpoint += 1
        running = self._checkpoint_job is not None and not self._checkpoint_job.done()
        if self._since_checkpoint >= CHECKPOINT_EVERY and not running:
            from concurrent.futures import ThreadPoolExecutor

            self._since_checkpoint = 0
            try:
                if self._checkpointer is None:
                    self._checkpoint_db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
                    self._checkpointer = ThreadPoolExecutor(1, thread_name_prefix="ledger-checkpoint")
            except sqlite3.Error:  # the batch is written: checkpoint as SQLite would by itself instead
                self.db.execute("PRAGMA wal_autocheckpoint=1000")
                self._since_checkpoint = -(1 << 62)
                return
            self._checkpoint_job = self._checkpointer.submit(self._checkpoint_db.execute,
                                                             "PRAGMA wal_checkpoint(PASSIVE)")

    def _prefetch_commits(self, ops: list, checked: list) -> None:
        """One query for the batch: which of its commits (default request ids) are already on the ledger.
        ``checked``: :meth:`check` of the ops, which says which commits have their default request id
        (a commit left out here, or any other operation, is looked up alone if it needs to be)."""
        tids = [op["task_id"] for op, pre in zip(ops, checked) if pre is not None and pre[0] is None and pre[3]]
        self._seen_commits = {}
        for i in range(0, len(tids), 500):
            chunk = tids[i:i + 500]
            for tid, kind, data in self.db.execute(
                    "SELECT t.task_id, e.kind, e.data FROM tasks t JOIN events e ON e.seq = t.seq "
                    f"WHERE t.task_id IN ({','.join('?' * len(chunk))})", chunk):
                self._seen_commits[tid] = {"kind": kind, "data": json.loads(data)}
        self._prefetched = set(tids)
        # and which of its other operations' request ids were used before (one query, not one per op)
        rids = [op["request_id"] for op, pre in zip(ops, checked) if pre is None and isinstance(op, dict)
                and op.get("op") != "commit" and isinstance(op.get("request_id"), str)]
        self._seen_requests: dict[str, dict] = {}
        for i in range(0, len(rids), 500):
            chunk = rids[i:i + 500]
            for rid, kind, data in self.db.execute(
                    f"SELECT request_id, kind, data FROM events WHERE request_id IN ({','.join('?' * len(chunk))})",
                    chunk):
                self._seen_requests[rid] = {"kind": kind, "data": json.loads(data)}
        self._prefetched_requests = set(rids)

    def _signature_jobs(self, ops: list) -> tuple[list[tuple[str, str, bytes]], list[tuple[str, str, bytes]]]:
        """The batch's well-formed commitments of registered providers: (pubkey hex, signature, message)
        jobs to verify, and the (provider, signature, message) keys ``_op_commit`` looks them up by."""
        jobs, keys = [], []
        accounts = self.accounts
        for op in ops:
            if not isinstance(op, dict) or op.get("op") != "commit":
                continue
            fields = [op.get(k) for k in ("task_id", "input_hash", "output_hash", "model_id", "provider", "signature")]
            if not all(isinstance(f, str) for f in fields):
                continue
            a = accounts.get(fields[4])
            if a is None or a.kind != "provider":
                continue
            message = crypto.commitment_message(*fields[:5])
            jobs.append((a.pubkey, fields[5], message))
            keys.append((a.id, fields[5], message))
        return jobs, keys

    def verify_jobs(self, ops: list) -> list[tuple[str, str, bytes]]:
        """The signature checks ``execute(ops)`` needs, to run elsewhere (a pool) and pass back as
        ``execute(ops, verified=...)``: one bool per job, in order."""
        return self._signature_jobs(ops)[0]

    def _preverify(self, ops: list, verified: list[bool] | None) -> None:
        """The batch's commitment signatures checked up front (``_op_commit`` uses these results);
        a commitment without a result here is verified inline."""
        jobs, keys = self._signature_jobs(ops)
        if verified is None:
            verified = self.crypto_pool.verify(jobs) if jobs else []
        if len(verified) != len(keys):
            raise ValueError(f"verified: expected {len(keys)} results, found {len(verified)}")
        self._verified = dict(zip(keys, verified))

    def _restore(self, saved) -> None:
        totals, accs, withdrawals, seq = saved
        self.totals = totals
        for k in list(self.accounts):
            if k not in accs:
                del self.accounts[k]
        for k, v in accs.items():
            a = self.accounts[k]
            (a.balance, a.locked, a.unbonding, a.last_close, a.challenged, a.secret_commitment, a.revealed) = v
        self.withdrawals = withdrawals
        self.seq = seq

    def _flush(self) -> None:
        if self._rows["events"]:
            self._write(*self._batch())

    def _batch(self) -> tuple[dict[str, list], list[tuple], list[tuple]]:
        """What the batch's transaction writes: its rows, and the values of the accounts it touched and
        of the totals as they are now (a snapshot: the writer thread may run while the next batch applies)."""
        accounts = [(a.id, a.kind, a.pubkey, a.balance, a.locked, a.unbonding, a.last_close, a.secret_commitment,
                     a.revealed) for a in (self.accounts[k] for k in self._dirty)]
        return self._rows, accounts, list(self.totals.items())

    def _write(self, r: dict[str, list], accounts: list[tuple], totals: list[tuple]) -> None:
        """One SQLite transaction: the batch's events and rows, the accounts it touched, the totals."""
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            _insert_many(db, "events (seq, request_id, kind, time, account, task_id, amount, data)", r["events"])
            _insert_many(db, TASK_COLUMNS, r["tasks"])
            _update_status(db, r["task_status"])
            if r["challenger"]:
                db.executemany("UPDATE tasks SET challenger = ? WHERE task_id = ?", r["challenger"])
            if r["audited"]:
                db.executemany("UPDATE tasks SET audited = 1 WHERE task_id = ?", r["audited"])
            if r["withdrawals"]:
                db.executemany("INSERT INTO withdrawals VALUES (?, ?, ?, ?, 'pending')", r["withdrawals"])
            if r["withdrawal_status"]:
                db.executemany("UPDATE withdrawals SET status = ?, amount = ? WHERE id = ?", r["withdrawal_status"])
            db.executemany("INSERT INTO accounts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET "
                           "balance = excluded.balance, locked = excluded.locked, unbonding = excluded.unbonding, "
                           "last_close = excluded.last_close, secret_commitment = excluded.secret_commitment, "
                           "revealed = excluded.revealed", accounts)
            db.executemany("INSERT INTO totals VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                           totals)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _event(self, request_id: str, kind: str, account: str | None, task_id: str | None, amount: int,
               data: dict, now: float) -> dict:
        self.seq += 1
        data = {"seq": self.seq, **data, "request_digest": self._digest}
        self._rows["events"].append((self.seq, request_id, kind, now, account, task_id, amount,
                                     _dumps(data)))
        self._pending_ids[request_id] = {"kind": kind, "data": data}
        return data

    def _replayed(self, request_id: str, kind: str, digest: str, task_id: str | None = None) -> dict | None:
        hit = self._pending_ids.get(request_id)
        if hit is None and task_id is not None and task_id in self._prefetched:
            hit = self._seen_commits.get(task_id)
            if hit is None:
                return None
        elif hit is None and task_id is not None:
            # a commit with its default request id: the task's own row says whether it was seen
            row = self.db.execute("SELECT e.kind, e.data FROM tasks t JOIN events e ON e.seq = t.seq "
                                  "WHERE t.task_id = ?", (task_id,)).fetchone()
            if row is None:
                return None
            hit = {"kind": row[0], "data": json.loads(row[1])}
        if hit is None and request_id in self._prefetched_requests:
            hit = self._seen_requests.get(request_id)
            if hit is None:
                return None
        if hit is None:
            row = self.db.execute("SELECT kind, data FROM events WHERE request_id = ?", (request_id,)).fetchone()
            if row is None:
                return None
            hit = {"kind": row[0], "data": json.loads(row[1])}
        if hit["kind"] == kind == "commit" and hit["data"].get("request_digest") != digest:
            raise LedgerError(409, f"task {hit['data'].get('task_id')!r} is already committed with different "
                                   "content (replayed commitment)")
        if hit["kind"] != kind or hit["data"].get("request_digest") != digest:
            raise LedgerError(409, f"request id {request_id!r} was already used for a different operation "
                                   f"({hit['kind']}): a replay must repeat the request exactly")
        return {"ok": True, "replayed": True, **hit["data"]}

    def _account(self, account_id: str, kind: str | None = None) -> Account:
        a = self.accounts.get(account_id)
        if a is None:
            raise LedgerError(404, f"unknown account {account_id!r}: register it first")
        if kind is not None and a.kind != kind:
            raise LedgerError(403, f"account {account_id!r} is a {a.kind}, not a {kind}")
        return a

    def _apply(self, op: dict) -> dict:
        kind = _field(op, "op", str)
        if kind == "commit":
            return self._apply_commit(op, _check_commit(op, self._known_ids))
        handler = getattr(self, f"_op_{kind}", None)
        if handler is None:
            raise LedgerError(422, f"field 'op': expected one of {', '.join(OPS)}, found {kind[:40]!r}")
        request_id = _request_id(op, kind)
        # the request as submitted (key order included): a replay must repeat it exactly
        digest = _sha256(repr(op).encode()).hexdigest()[:32]
        replay = self._replayed(request_id, kind, digest)
        if replay is not None:
            return replay
        self._digest = digest
        return {"ok": True, **handler(op, request_id, self.now())}

    def check(self, ops: list) -> list[Any]:
        """The checks of the batch's commitments that read nothing of the ledger's state: the request
        id, the digest, every field's form, the output, the input and output hashes. A pure function
        of the operations, so a caller can run it before the ledger is free (the in-process network
        does while the previous batch is written) and pass the result as ``execute(ops,
        checked=...)``; errors found here are reported in the order the ledger checks them, among
        the checks that need its state (the replay first, then the provider, its stake, the
        signature, a repeated task id)."""
        return check_ops(ops, self._known_ids)

    # -------------------------------------------------------------------- operations
    def _op_register(self, op: dict, rid: str, now: float) -> dict:
        account = _ident(op, "account")
        kind = _field(op, "kind", str)
        if kind not in KINDS:
            raise LedgerError(422, f"field 'kind': expected one of {', '.join(KINDS)}, found {kind[:40]!r}")
        pub = _hex(op, "pubkey", 64)
        key = crypto.public_key(pub)
        if key is None:
            raise LedgerError(422, "field 'pubkey': expected an Ed25519 public key, found an invalid point")
        commitment = op.get("secret_commitment")
        if commitment is not None:
            commitment = _hex(op, "secret_commitment", 64)
        strategy = op.get("strategy")
        if strategy is not None and (not isinstance(strategy, str) or len(strategy) > 100):
            raise LedgerError(422, f"field 'strategy': expected a short string, found {strategy!r:.40}")
        if account in self.accounts:
            raise LedgerError(409, f"account {account!r} is already registered")
        self.accounts[account] = Account(account, kind, pub, key, secret_commitment=commitment)
        self._dirty.add(account)
        return self._event(rid, "register", account, None, 0,
                           {"account": account, "account_kind": kind, "pubkey": pub, "secret_commitment": commitment,
                            "strategy": strategy}, now)

    def _op_deposit(self, op: dict, rid: str, now: float) -> dict:
        a = self._account(_ident(op, "account"))
        amount = _amount(op, "amount")
        if a.kind in ("provider", "verifier"):
            a.locked += amount
        else:
            a.balance += amount
        self.totals["deposits"] += amount
        self._dirty.add(a.id)
        return self._event(rid, "deposit", a.id, None, amount,
                           {"account": a.id, "amount": amount / UNIT, "locked": a.locked / UNIT}, now)

    def _op_withdraw(self, op: dict, rid: str, now: float) -> dict:
        a = self._account(_ident(op, "account"))
        amount = _amount(op, "amount")
        source = _field(op, "source", str, required=False, default="balance")
        if source not in ("balance", "stake"):
            raise LedgerError(422, f"field 'source': expected 'balance' or 'stake', found {source[:40]!r}")
        if source == "balance":
            if amount > a.balance:
                raise LedgerError(409, f"withdrawal of {amount / UNIT:g} exceeds the free balance "
                                       f"{a.balance / UNIT:g} of {a.id!r}")
            a.balance -= amount
            self.totals["withdrawn"] += amount
            self._dirty.add(a.id)
            return self._event(rid, "withdraw", a.id, None, amount,
                               {"account": a.id, "amount": amount / UNIT, "source": "balance",
                                "released": True}, now)
        if amount > a.locked:
            raise LedgerError(409, f"withdrawal of {amount / UNIT:g} exceeds the locked stake "
                                   f"{a.locked / UNIT:g} of {a.id!r}")
        a.locked -= amount
        a.unbonding += amount
        release_at = max(now + self.unbonding, a.last_close)
        self.withdrawals[rid] = [a.id, amount, release_at]
        self._rows["withdrawals"].append((rid, a.id, amount, release_at))
        self._dirty.add(a.id)
        return self._event(rid, "withdraw", a.id, None, amount,
                           {"account": a.id, "amount": amount / UNIT, "source": "stake", "released": False,
                            "release_at": release_at}, now)

    def _apply_commit(self, op: dict, pre: tuple) -> dict:
        """A commitment whose stateless checks are ``pre`` (:func:`_check_commit`): the checks that read
        the ledger's state, then its effects."""
        early, rid, digest, default, late_stage, late, values = pre
        if early is not None:
            raise early
        replay = self._replayed(rid, "commit", digest, op["task_id"] if default else None)
        if replay is not None:
            return replay
        if late is not None and late_stage == 0:
            raise late
        provider = self._account(op["provider"], "provider")
        if late is not None:
            raise late
        (task_id, client, fee, input_hash, output_hash, model_id, signature, text, stored, action, cost,
         middle, tail) = values
        if provider.locked <= 0:
            raise LedgerError(409, f"provider {provider.id!r} has no stake left: deposit before committing")
        if self.verify_signatures and not self._commitment_ok(provider, signature, crypto.commitment_message(
                task_id, input_hash, output_hash, model_id, provider.id)):
            raise LedgerError(401, f"signature of task {task_id!r}: expected the provider's signature over the "
                                   "commitment (Ed25519, of it or of its Merkle root), found an invalid one")
        if task_id in self._pending_tasks or (not default and self.db.execute(
                "SELECT 1 FROM tasks WHERE task_id = ?", (task_id,)).fetchone() is not None):
            raise LedgerError(409, f"task {task_id!r} is already committed (replayed commitment)")
        now = self.now()
        close = now + self.window
        provider.last_close = max(provider.last_close, close)
        self.totals["fees"] += fee
        self.totals["escrowed"] += fee
        self._dirty.add(provider.id)
        self.seq += 1
        seq, pid = self.seq, provider.id
        data = {"seq": seq, "task_id": task_id, "provider": pid, "client": client, "fee": fee / UNIT,
                "model_id": model_id, "input_hash": input_hash, "output_hash": output_hash, "signature": signature,
                "window_close": close, "action": action, "cost": cost, "request_digest": digest}
        # the event as _event writes it (json.dumps of the same dict, compact), from the parts
        # _check_commit built
        self._rows["events"].append((seq, rid, "commit", now, pid, task_id, fee,
                                     f'{{"seq":{seq}{middle}{close!r}{tail}'))
        self._pending_ids[rid] = {"kind": "commit", "data": data}
        self._pending_tasks[task_id] = data
        self._rows["tasks"].append((task_id, pid, client, fee, model_id, text, stored, now, close, OPEN, seq, action))
        return {"ok": True, **data}

    def _signature_ok(self, provider: Account, signature: str, message: bytes) -> bool:
        ok = self._verified.pop((provider.id, signature, message), None)
        if ok is None:
            ok = crypto.verify(provider.key, signature, message)
        return ok

    def _commitment_ok(self, provider: Account, signature: str, message: bytes) -> bool:
        """A commitment's signature verifies (checked up front by :meth:`_preverify`, else here; a
        merkle batch's root signature is verified once while its commitments arrive one by one)."""
        ok = self._verified.pop((provider.id, signature, message), None)
        if ok is None:
            if len(self._roots) >= 256:  # a few batches' roots: memory stays flat
                self._roots.clear()
            ok = crypto.verify_commitments([(provider.key, signature, message)], self._roots)[0]
        return ok

    def _task(self, task_id: str) -> dict:
        if task_id in self._pending_tasks:
            for row in reversed(self._rows["tasks"]):
                if row[0] == task_id:
                    return {"task_id": row[0], "provider": row[1], "client": row[2], "fee": row[3],
                            "window_close": row[8], "status": self._status(task_id, row[9]), "audited": 0,
                            "action": row[11]}
        row = self.db.execute("SELECT provider, client, fee, window_close, status, audited, action "
                              "FROM tasks WHERE task_id = ?", (task_id,)).fetchone()
        if row is None:
            raise LedgerError(404, f"unknown task id {task_id!r}")
        return {"task_id": task_id, "provider": row[0], "client": row[1], "fee": row[2], "window_close": row[3],
                "status": self._status(task_id, row[4]), "audited": row[5], "action": row[6]}

    def _status(self, task_id: str, stored: int) -> int:
        for status, tid in reversed(self._rows["task_status"]):
            if tid == task_id:
                return status
        return stored

    def _set_status(self, task_id: str, status: int) -> None:
        self._rows["task_status"].append((status, task_id))

    def _op_audit(self, op: dict, rid: str, now: float) -> dict:
        task_id = _ident(op, "task_id")
        verifier = self._account(_ident(op, "verifier"), "verifier")
        outcome = _field(op, "outcome", str)
        if outcome not in ("pass", "fail", "inconclusive", "colluded"):
            raise LedgerError(422, f"field 'outcome': expected pass, fail, inconclusive or colluded, found "
                                   f"{outcome[:40]!r}")
        task = self._task(task_id)
        if task["audited"] or any(t == (task_id,) for t in self._rows["audited"]):
            raise LedgerError(409, f"task {task_id!r} already has an audit record")
        panel = op.get("panel") if isinstance(op.get("panel"), int) and not isinstance(op.get("panel"), bool) else 1
        effective = bool(op.get("effective", outcome != "colluded"))
        self._rows["audited"].append((task_id,))
        return self._event(rid, "audit", verifier.id, task_id, 0,
                           {"task_id": task_id, "provider": task["provider"], "action": task["action"],
                            "verifier": verifier.id, "outcome": outcome, "panel": panel, "effective": effective}, now)

    def _op_challenge(self, op: dict, rid: str, now: float) -> dict:
        task_id = _ident(op, "task_id")
        verifier = self._account(_ident(op, "verifier"), "verifier")
        digest = _hex(op, "evidence_hash", 64)
        if verifier.locked <= 0:
            raise LedgerError(409, f"verifier {verifier.id!r} has no bond: deposit a bond before challenging")
        task = self._task(task_id)
        if task["status"] != OPEN:
            raise LedgerError(409, f"task {task_id!r} is {STATUS[task['status']]}: only an open task can be "
                                   "challenged (replayed evidence?)")
        if now > task["window_close"]:
            raise LedgerError(409, f"the challenge window of task {task_id!r} closed at {task['window_close']:.3f}")
        self._set_status(task_id, CHALLENGED)
        self._rows["challenger"].append((verifier.id, task_id))
        self.accounts[task["provider"]].challenged += 1
        return self._event(rid, "challenge", verifier.id, task_id, 0,
                           {"task_id": task_id, "provider": task["provider"], "verifier": verifier.id,
                            "evidence_hash": digest}, now)

    def _take_stake(self, account: Account, amount: int) -> int:
        """Take up to ``amount`` of an account's stake, locked first, then unbonding (stake being
        withdrawn stays slashable until released): the amount taken (less when capped)."""
        slash = min(amount, account.locked + account.unbonding)
        from_locked = min(slash, account.locked)
        account.locked -= from_locked
        rest = slash - from_locked
        if rest:
            account.unbonding -= rest
            for wid, w in sorted(self.withdrawals.items(), key=lambda kv: -kv[1][2]):
                if w[0] != account.id or not rest:
                    continue
                take = min(rest, w[1])
                w[1] -= take
                rest -= take
                self._rows["withdrawal_status"].append(("pending" if w[1] else "slashed", w[1], wid))
                if not w[1]:
                    del self.withdrawals[wid]
        return slash

    def _op_resolve(self, op: dict, rid: str, now: float) -> dict:
        task_id = _ident(op, "task_id")
        arbiter = self._account(_ident(op, "arbiter"), "arbiter")
        verifier = self._account(_ident(op, "verifier"), "verifier")
        verdict = _field(op, "verdict", str)
        if verdict not in ("upheld", "rejected"):
            raise LedgerError(422, f"field 'verdict': expected 'upheld' or 'rejected', found {verdict[:40]!r}")
        signature = _hex(op, "signature", 128)
        reason = str(op.get("reason", ""))[:200]
        if not crypto.verify(arbiter.key, signature, crypto.verdict_message(task_id, verifier.id, verdict)):
            raise LedgerError(401, "signature: expected the arbiter's Ed25519 signature over the verdict, "
                                   "found an invalid one")
        task = self._task(task_id)
        if task["status"] != CHALLENGED:
            raise LedgerError(409, f"task {task_id!r} is {STATUS[task['status']]}: a verdict needs an open "
                                   "challenge (no evidence was submitted, or it was already resolved)")
        provider = self.accounts[task["provider"]]
        provider.challenged -= 1
        self._dirty.update((provider.id, verifier.id))
        if verdict == "rejected":
            bond = verifier.locked
            verifier.locked = 0
            self.totals["burned"] += bond
            self._set_status(task_id, OPEN)
            return self._event(rid, "resolve", verifier.id, task_id, bond,
                               {"task_id": task_id, "provider": provider.id, "verifier": verifier.id,
                                "verdict": verdict, "bond_burned": bond / UNIT, "reason": reason}, now)
        slash = self._take_stake(provider, self.slash_units)
        capped = slash < self.slash_units
        bounty = int(slash * self.params.bounty_share)
        verifier.balance += bounty
        self.totals["burned"] += slash - bounty
        fee = task["fee"]
        client = self.accounts.get(task["client"])
        if client is None:
            client = self.accounts[task["client"]] = Account(task["client"], "client", "", None)
        client.balance += fee
        self._dirty.add(client.id)
        self.totals["escrowed"] -= fee
        self._set_status(task_id, SLASHED)
        return self._event(rid, "resolve", provider.id, task_id, slash,
                           {"task_id": task_id, "provider": provider.id, "verifier": verifier.id,
                            "action": task["action"], "verdict": verdict, "slash": slash / UNIT, "capped": capped, "bounty": bounty / UNIT,
                            "burned": (slash - bounty) / UNIT, "refund": fee / UNIT, "client": client.id,
                            "reason": reason}, now)

    def _op_settle(self, op: dict, rid: str, now: float) -> dict:
        """Close expired windows (pay providers) and release matured withdrawals."""
        limit = op.get("limit", 5000)
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise LedgerError(422, f"field 'limit': expected a positive integer, found {limit!r}")
        rate = op.get("sampling_rate")  # adaptive verifiers: the batch's q_t, recorded as given
        if rate is not None and (isinstance(rate, bool) or not isinstance(rate, int | float)
                                 or not 0.0 <= rate <= 1.0):
            raise LedgerError(422, f"field 'sampling_rate': expected a probability in [0, 1], found {rate!r}")
        rows = self.db.execute("SELECT task_id, provider, fee, window_close FROM tasks WHERE status = 0 AND "
                               "window_close <= ? ORDER BY window_close LIMIT ?", (now, limit)).fetchall()
        if self._rows["tasks"]:  # this transaction's own commitments whose windows closed already
            rows = sorted(rows + [(t[0], t[1], t[3], t[8]) for t in self._rows["tasks"] if t[8] <= now],
                          key=lambda r: r[3])[:limit]
        pending = {tid for _, tid in self._rows["task_status"]}
        paid: dict[str, list] = {}
        changes = self._rows["task_status"]
        for task_id, provider, fee, _ in rows:
            if task_id in pending:
                continue
            changes.append((SETTLED, task_id))
            entry = paid.get(provider)
            if entry is None:
                entry = paid[provider] = [0, 0.0, 0]
            entry[0] += 1
            entry[1] += fee / UNIT  # the event's figure, summed in the order the windows closed
            entry[2] += fee
        for provider, (_, _, fees) in paid.items():
            self.accounts[provider].balance += fees
            self.totals["escrowed"] -= fees
            self._dirty.add(provider)
        released = []
        for wid, (acc, amount, release_at) in list(self.withdrawals.items()):
            a = self.accounts[acc]
            if now >= max(release_at, a.last_close) and a.challenged == 0:
                a.unbonding -= amount
                self.totals["withdrawn"] += amount
                self._dirty.add(acc)
                del self.withdrawals[wid]
                self._rows["withdrawal_status"].append(("released", amount, wid))
                released.append({"withdrawal": wid, "account": acc, "amount": amount / UNIT})
        data = {"settled": {p: {"tasks": v[0], "paid": v[1]} for p, v in paid.items()},
                "tasks": sum(v[0] for v in paid.values()), "released": released, "more": len(rows) == limit}
        if rate is not None:
            data["sampling_rate"] = float(rate)
        return self._event(rid, "settle", None, None, 0, data, now)

    def _op_advance(self, op: dict, rid: str, now: float) -> dict:
        seconds = _field(op, "seconds", (int, float))
        if not math.isfinite(seconds) or seconds <= 0 or seconds > 1e9:
            raise LedgerError(422, f"field 'seconds': expected a positive finite number ≤ 1e9, found {seconds!r}")
        self.totals["clock_offset"] += float(seconds)
        return self._event(rid, "advance", None, None, 0, {"seconds": float(seconds)}, now)

    def _op_reveal(self, op: dict, rid: str, now: float) -> dict:
        verifier = self._account(_ident(op, "verifier"), "verifier")
        secret = _hex(op, "secret", 64)
        if verifier.secret_commitment is None:
            raise LedgerError(409, f"verifier {verifier.id!r} committed no secret")
        if verifier.revealed is not None:
            raise LedgerError(409, f"verifier {verifier.id!r} already revealed its secret")
        if hashlib.sha256(bytes.fromhex(secret)).hexdigest() != verifier.secret_commitment:
            raise LedgerError(422, "field 'secret': expected the preimage of the committed sha256, found another "
                                   "value")
        verifier.revealed = secret
        self._dirty.add(verifier.id)
        return self._event(rid, "reveal", verifier.id, None, 0, {"verifier": verifier.id, "secret": secret}, now)

    # -------------------------------------------------------------------- reads
    def pubkey(self, account: str) -> str | None:
        a = self.accounts.get(account)
        return a.pubkey if a is not None else None

    def commitments(self, after: int, limit: int = 1000) -> list[dict]:
        """Committed tasks with rowid > after (the verifiers' feed)."""
        self._sync()
        rows = self.db.execute(f"{COMMITMENT_SELECT} WHERE t.rowid > ? ORDER BY t.rowid LIMIT ?",
                               (after, limit)).fetchall()
        return [commitment_row(r) for r in rows]

    def task_count(self) -> int:
        """Commitments recorded so far."""
        self._sync()
        return self.db.execute("SELECT COUNT(*) FROM tasks").fetchone()[0]

    def task(self, task_id: str) -> dict | None:
        """A commitment with its status; inside :meth:`transaction`, as the block left it so far."""
        self._sync()
        row = self.db.execute(f"{TASK_SELECT} WHERE t.task_id = ?", (task_id,)).fetchone()
        if self._open is not None and task_id in self._pending_tasks:
            t = next(t for t in reversed(self._rows["tasks"]) if t[0] == task_id)
            row = (None, t[0], t[1], t[5], t[6], self._pending_tasks[task_id], t[4], t[9], t[8], None, 0)
        if row is None:
            return None
        out = commitment_row(row[:7])
        status, challenger, audited = row[7], row[9], bool(row[10])
        if self._open is not None:  # the block's changes not yet written
            status = self._status(task_id, status)
            challenger = next((v for v, t in reversed(self._rows["challenger"]) if t == task_id), challenger)
            audited = audited or (task_id,) in self._rows["audited"]
        out.update(status=STATUS[status], window_close=row[8], challenger=challenger, audited=audited)
        return out

OPS = ("register", "deposit", "withdraw", "commit", "audit", "challenge", "resolve", "settle", "advance", "reveal")


def commitment_row(r: tuple) -> dict:
    """A commitment from a row of COMMITMENT_SELECT (its commit event's data as JSON text, or as the
    dict of a commitment not yet written)."""
    event = json.loads(r[5]) if r[5].__class__ is str else r[5]
    return {"cursor": r[0], "task_id": r[1], "provider": r[2], "input": r[3], "output": json.loads(r[4]),
            "output_hash": event["output_hash"], "model_id": r[6], "signature": event["signature"],
            "input_hash": event["input_hash"]}


def read_ids(path: str, after: int, limit: int) -> list[list]:
    """[cursor, task id] pairs after a cursor: the cheap feed verifiers select from."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return [list(r) for r in db.execute("SELECT rowid, task_id FROM tasks WHERE rowid > ? ORDER BY rowid LIMIT ?",
                                            (after, limit))]
    finally:
        db.close()


def read_tasks(path: str, task_ids: list[str]) -> list[dict]:
    """Full commitments of the given task ids (unknown ids are left out)."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        out = []
        for i in range(0, len(task_ids), 500):
            chunk = task_ids[i:i + 500]
            rows = db.execute(f"{COMMITMENT_SELECT} WHERE t.task_id IN ({','.join('?' * len(chunk))}) "
                              "ORDER BY t.rowid", chunk).fetchall()
            out += [commitment_row(r) for r in rows]
        return out
    finally:
        db.close()


def read_commitments(path: str, after: int, limit: int) -> list[dict]:
    """The feed from a separate read-only connection (WAL readers do not block the writer)."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = db.execute(f"{COMMITMENT_SELECT} WHERE t.rowid > ? ORDER BY t.rowid LIMIT ?", (after, limit)).fetchall()
    finally:
        db.close()
    return [commitment_row(r) for r in rows]
