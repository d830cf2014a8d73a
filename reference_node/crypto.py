"""Ed25519 keys and the signed messages of the protocol (commitments, evidence, verdicts).

Ed25519 is computed by libsodium through PyNaCl. Why not ``cryptography`` (OpenSSL), which this
package used first: on this machine class libsodium signs in ~23 µs and verifies in ~62 µs
against OpenSSL's ~37 µs and ~120 µs, and PyNaCl's cffi calls release the GIL, so signing and
verifying on a thread pool really use a second core (``cryptography`` holds the GIL). Ed25519
signatures are deterministic (RFC 8032): a key made from the same 32-byte seed signs every
message to the same bytes under either library. libsodium's verification is the strict one
(it rejects non-canonical encodings and small-order public keys), which is what a ledger wants.
"""

from __future__ import annotations

import hashlib

from nacl import bindings
from nacl.exceptions import BadSignatureError, CryptoError

_sign = bindings.crypto_sign
_open = bindings.crypto_sign_open


class Key:
    """A node's signing key; deterministic from (seed, name) so seeded runs are reproducible."""

    def __init__(self, seed: str | int, name: str):
        raw = hashlib.sha256(f"mira-key|{seed}|{name}".encode()).digest()
        public, self._secret = bindings.crypto_sign_seed_keypair(raw)
        self.public_hex = public.hex()

    def sign(self, message: bytes) -> str:
        return _sign(message, self._secret)[:64].hex()

    def sign_many(self, messages: list[bytes]) -> list[str]:
        sk = self._secret
        return [_sign(m, sk)[:64].hex() for m in messages]


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
    if key is None:
        return False
    try:
        sig = bytes.fromhex(signature_hex)
    except (ValueError, TypeError):
        return False
    if len(sig) != 64:
        return False
    try:
        _open(sig + message, key)
    except (BadSignatureError, CryptoError, ValueError):
        return False
    return True


def commitment_message(task_id: str, input_hash: str, output_hash: str, model_id: str, provider: str) -> bytes:
    return "|".join(("mira-commit-v1", task_id, input_hash, output_hash, model_id, provider)).encode()


def evidence_message(task_id: str, verifier: str, commitment_signature: str, claimed_hash: str) -> bytes:
    return "|".join(("mira-evidence-v1", task_id, verifier, commitment_signature, claimed_hash)).encode()


def verdict_message(task_id: str, verifier: str, verdict: str) -> bytes:
    return "|".join(("mira-verdict-v1", task_id, verifier, verdict)).encode()
