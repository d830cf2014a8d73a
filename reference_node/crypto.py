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
"""

from __future__ import annotations

import hashlib

from nacl import _sodium, bindings

_ffi, _lib = _sodium.ffi, _sodium.lib
SIGNATURE_BYTES = 64
PUBLIC_KEY_BYTES = 32


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
