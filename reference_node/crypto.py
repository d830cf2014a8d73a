"""Ed25519 keys and the signed messages of the protocol (commitments, evidence, verdicts).

Ed25519 is computed by libsodium, the copy bundled with PyNaCl. Why not ``cryptography`` (OpenSSL),
which this package used first: on this machine class libsodium signs in ~22 µs and verifies in ~60 µs
against OpenSSL's ~37 µs and ~120 µs, and PyNaCl's cffi calls release the GIL, so signing and
verifying on a thread pool really use a second core (``cryptography`` holds the GIL). Ed25519
signatures are deterministic (RFC 8032): a key made from the same 32-byte seed signs every
message to the same bytes under either library. libsodium's verification is the strict one
(it rejects non-canonical encodings and small-order public keys), which is what a ledger wants.

Signing and verifying call libsodium's ``crypto_sign`` and ``crypto_sign_open`` through PyNaCl's
cffi module (``nacl._sodium``) rather than its Python wrappers (``nacl.bindings``): the same C
functions on the same bytes, so the same signatures and verdicts, without the wrappers' per-call
allocations and checks (~1.5 µs of a commitment's ~23 µs). :meth:`Key.sign_many` reuses one output
buffer for a batch; every buffer belongs to one call, so threads may sign and verify at once
(:mod:`reference_node.parallel`). A test compares both with PyNaCl's public API.

Commitments
-----------
A provider commits to (task id, input hash, output hash, model id, provider id) in one of two
signing schemes, each a signature scheme over that tuple's message (:func:`commitment_message`):

* ``single``: an Ed25519 signature of the message (128 hex digits), one per task.
* ``merkle`` (the default): one Ed25519 signature per batch of up to :data:`MERKLE_LEAVES`
  messages, over the root of their Merkle tree, and each message's inclusion path. The tree is
  RFC 9162's (§2.1: leaf ``SHA-256(0x00 ‖ message)``, node ``SHA-256(0x01 ‖ left ‖ right)``,
  the left subtree the largest power of two), the signed message is
  ``mira-commit-root-v1|<root hex>|<leaves>`` (:func:`root_message`), and a commitment's
  signature is the string ``<root signature, 128 hex>.<leaf index>.<leaves>.<path, 64 hex per
  node, leaf to root>`` (indices in decimal, no leading zeros; :data:`SIGNATURE_FORM`). It is
  checked by rebuilding the root from the message and the path (RFC 9162 §2.1.3.2) and
  verifying the root's signature. Forging one needs an Ed25519 forgery or a SHA-256 collision,
  as for a per-task signature; what it saves is the signing (one Ed25519 signature per batch
  instead of per task, ~25 µs of a task's work on this machine class) and, for a ledger or an
  arbiter checking many commitments of one batch, all but one verification (the batch's
  commitments share the root signature: :func:`verify_commitments` checks it once). This is the
  batch signing of the TLS working group's draft (draft-ietf-tls-batch-signing) and of
  Certificate Transparency's signed tree heads.
"""

from __future__ import annotations

import functools
import hashlib
import operator
import re
from collections.abc import Iterable

from nacl import _sodium, bindings

_ffi, _lib = _sodium.ffi, _sodium.lib
SIGNATURE_BYTES = 64
PUBLIC_KEY_BYTES = 32
SCHEMES = ("merkle", "single")  # commitment signing schemes (see the module's text); the first is the default
MERKLE_LEAVES = 16              # commitments per signed Merkle root (an inclusion path of at most 4 nodes)
# a commitment's signature in either scheme (a merkle path has at most 16 nodes: up to 65536 leaves)
SIGNATURE_FORM = r"[0-9a-f]{128}(?:\.(?:0|[1-9][0-9]{0,4})\.[1-9][0-9]{0,4}\.(?:[0-9a-f]{64}){0,16})?"
signature_form = re.compile(SIGNATURE_FORM).fullmatch
_HEX_DOT = b"0123456789abcdef."
_PATH_LENGTHS = frozenset(range(0, 16 * 64 + 1, 64))
_dots = operator.methodcaller("count", ".")


@functools.lru_cache(maxsize=4096)
def _position_ok(index: str, size: str) -> bool:
    return signature_form(f"{'0' * 128}.{index}.{size}.") is not None


def signature_forms(signatures: list[str]) -> bool:
    """Is every string of ``signatures`` of :data:`SIGNATURE_FORM`? The same answer as
    ``all(map(signature_form, signatures))``, in a few passes over the column for a batch of one
    scheme (a ledger checks a batch of commitments at once), else signature by signature."""
    if not signatures:
        return True
    joined = ".".join(signatures)
    # only hex digits and dots (anything else remains, a lone surrogate too)
    if joined.encode("utf-8", "surrogatepass").translate(None, _HEX_DOT):
        return False
    dots = set(map(_dots, signatures))
    if dots == {0}:
        return set(map(len, signatures)) == {128}
    if dots != {3}:
        return all(map(signature_form, signatures))
    parts = joined.split(".")
    return (set(map(len, parts[0::4])) == {128} and set(map(len, parts[3::4])) <= _PATH_LENGTHS
            and all(_position_ok(*p) for p in set(zip(parts[1::4], parts[2::4]))))


class Key:
    """A node's signing key; deterministic from (seed, name) so seeded runs are reproducible."""

    def __init__(self, seed: str | int, name: str):
        raw = hashlib.sha256(f"mira-key|{seed}|{name}".encode()).digest()
        public, self._secret = bindings.crypto_sign_seed_keypair(raw)
        self.public_hex = public.hex()

    def sign(self, message: bytes) -> str:
        """The signature (128 hex digits) of ``message``."""
        return self.sign_many([message])[0]

    def sign_many(self, messages: list[bytes]) -> list[str]:
        """The signatures (hex) of ``messages``, in order.

        libsodium's ``crypto_sign`` writes signature ‖ message into one output buffer (sized for
        the longest message, allocated per call); the signature is its first 64 bytes.
        """
        if not messages:
            return []
        out = _ffi.new("unsigned char[]", SIGNATURE_BYTES + max(map(len, messages)))
        signature = _ffi.buffer(out, SIGNATURE_BYTES)
        sign, null, sk = _lib.crypto_sign, _ffi.NULL, self._secret
        sigs = []
        for m in messages:
            if sign(out, null, m, len(m), sk) != 0:
                raise RuntimeError("libsodium crypto_sign failed")  # it does not fail for a valid key
            sigs.append(signature[:].hex())
        return sigs

    def sign_commitments(self, messages: list[bytes], scheme: str = SCHEMES[0]) -> list[str]:
        """The commitment signatures of ``messages`` in ``scheme`` (see the module's text), in order:
        in ``merkle``, one tree per run of :data:`MERKLE_LEAVES` consecutive messages."""
        if scheme == "single":
            return self.sign_many(messages)
        if scheme != "merkle":
            raise ValueError(f"signing scheme: expected one of {', '.join(SCHEMES)}, found {scheme!r}")
        out: list[str] = []
        for a in range(0, len(messages), MERKLE_LEAVES):
            group = messages[a:a + MERKLE_LEAVES]
            size = len(group)
            root, paths = merkle_tree(group)
            head = self.sign_many([root_message(root, size)])[0]
            out += [f"{head}.{i}.{size}.{b''.join(path).hex()}" for i, path in enumerate(paths)]
        return out


def leaf_hash(message: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + message).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def merkle_tree(messages: list[bytes]) -> tuple[bytes, list[list[bytes]]]:
    """The root of the RFC 9162 Merkle tree over ``messages`` (at least one) and each leaf's
    inclusion path (sibling hashes, leaf to root). Built level by level: nodes pair up from the
    left and a level's last node, when it has no partner, moves up unchanged, which is the same
    tree as RFC 9162's recursive split (a test checks it against the recursion)."""
    level = [leaf_hash(m) for m in messages]
    paths: list[list[bytes]] = [[] for _ in messages]
    shift = 0
    while len(level) > 1:
        n = len(level)
        for i, path in enumerate(paths):
            sibling = (i >> shift) ^ 1
            if sibling < n:
                path.append(level[sibling])
        level = [node_hash(level[j], level[j + 1]) if j + 1 < n else level[j] for j in range(0, n, 2)]
        shift += 1
    return level[0], paths


def merkle_root(leaf: bytes, index: int, size: int, path: Iterable[bytes]) -> bytes | None:
    """The root that ``path`` proves ``leaf`` (a leaf hash) is entry ``index`` of, in a tree of
    ``size`` leaves (RFC 9162 §2.1.3.2), or None if the path cannot be such a proof."""
    if not 0 <= index < size:
        return None
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


def root_message(root: bytes, size: int) -> bytes:
    """What a provider signs for a batch of ``size`` commitments whose Merkle root is ``root``."""
    return f"mira-commit-root-v1|{root.hex()}|{size}".encode()


def signed_root(signature: str, message: bytes) -> tuple[str, bytes] | None:
    """What a commitment signature asks a key to have signed for ``message``: (Ed25519 signature
    hex, signed message) (the message itself, or for ``merkle`` the root the path leads to), or None
    if it is not of :data:`SIGNATURE_FORM` or its path proves nothing."""
    if signature.__class__ is not str or not signature_form(signature):
        return None
    if len(signature) == 128:
        return signature, message
    head, index, size, path = signature.split(".")
    hexes = bytes.fromhex(path)
    root = merkle_root(leaf_hash(message), int(index), int(size), (hexes[a:a + 32] for a in range(0, len(hexes), 32)))
    return None if root is None else (head, root_message(root, int(size)))


def verify_commitment(key: bytes | None, signature: str, message: bytes) -> bool:
    """Does the commitment signature ``signature`` (either scheme) sign ``message`` under ``key``?"""
    return verify_commitments([(key, signature, message)])[0]


def verify_commitments(jobs: Iterable[tuple[bytes | None, str, bytes]],
                       done: dict[tuple, bool] | None = None) -> list[bool]:
    """Whether each (key, commitment signature, message) verifies, in order, verifying each distinct
    (key, root signature, root message) once: a merkle batch's commitments share one. ``done``: the
    verdicts of earlier calls to reuse and extend (a caller that checks a batch one by one)."""
    done = {} if done is None else done
    out = []
    for key, signature, message in jobs:
        signed = signed_root(signature, message)
        if signed is None:
            out.append(False)
            continue
        k = (key, *signed)
        ok = done.get(k)
        if ok is None:
            ok = done[k] = verify(key, *signed)
        out.append(ok)
    return out


class PublicKey(bytes):
    """A validated 32-byte Ed25519 public key (a point of the curve, not of small order)."""


def public_key(hex_key: str) -> PublicKey | None:
    """The public key a 64-hex-digit string encodes, or None if it is not a usable Ed25519 point."""
    try:
        raw = bytes.fromhex(hex_key)
    except (ValueError, TypeError):
        return None
    if len(raw) != 32 or not bindings.crypto_core_ed25519_is_valid_point(raw):
        return None
    return PublicKey(raw)


def verify(key: bytes | None, signature_hex: str, message: bytes) -> bool:
    """Does ``signature_hex`` (128 hex digits) sign ``message`` under ``key`` (None: no usable key)?"""
    if key is None or len(key) != PUBLIC_KEY_BYTES:
        return False
    try:
        sig = bytes.fromhex(signature_hex)
    except (ValueError, TypeError):
        return False
    if len(sig) != SIGNATURE_BYTES:
        return False
    signed = sig + message
    # crypto_sign_open checks the signature and copies the message out (into a buffer of this call)
    return _lib.crypto_sign_open(_ffi.new("unsigned char[]", len(signed)), _ffi.NULL, signed, len(signed), key) == 0


def commitment_message(task_id: str, input_hash: str, output_hash: str, model_id: str, provider: str) -> bytes:
    return "|".join(("mira-commit-v1", task_id, input_hash, output_hash, model_id, provider)).encode()


def evidence_message(task_id: str, verifier: str, commitment_signature: str, claimed_hash: str) -> bytes:
    return "|".join(("mira-evidence-v1", task_id, verifier, commitment_signature, claimed_hash)).encode()


def verdict_message(task_id: str, verifier: str, verdict: str) -> bytes:
    return "|".join(("mira-verdict-v1", task_id, verifier, verdict)).encode()
