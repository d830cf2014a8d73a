"""Ed25519 keys and the signed messages of the protocol (commitments, evidence, verdicts)."""

from __future__ import annotations

import hashlib

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey


class Key:
    """A node's signing key; deterministic from (seed, name) so seeded runs are reproducible."""

    def __init__(self, seed: str | int, name: str):
        raw = hashlib.sha256(f"mira-key|{seed}|{name}".encode()).digest()
        self._key = Ed25519PrivateKey.from_private_bytes(raw)
        self.public_hex = self._key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()

    def sign(self, message: bytes) -> str:
        return self._key.sign(message).hex()

    def sign_many(self, messages: list[bytes]) -> list[str]:
        sign = self._key.sign
        return [sign(m).hex() for m in messages]


def public_key(hex_key: str) -> Ed25519PublicKey | None:
    try:
        raw = bytes.fromhex(hex_key)
    except (ValueError, TypeError):
        return None
    if len(raw) != 32:
        return None
    try:
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        return None


def verify(key: Ed25519PublicKey, signature_hex: str, message: bytes) -> bool:
    try:
        sig = bytes.fromhex(signature_hex)
    except (ValueError, TypeError):
        return False
    if len(sig) != 64:
        return False
    try:
        key.verify(sig, message)
    except InvalidSignature:
        return False
    return True


def commitment_message(task_id: str, input_hash: str, output_hash: str, model_id: str, provider: str) -> bytes:
    return "|".join(("mira-commit-v1", task_id, input_hash, output_hash, model_id, provider)).encode()


def evidence_message(task_id: str, verifier: str, commitment_signature: str, claimed_hash: str) -> bytes:
    return "|".join(("mira-evidence-v1", task_id, verifier, commitment_signature, claimed_hash)).encode()


def verdict_message(task_id: str, verifier: str, verdict: str) -> bytes:
    return "|".join(("mira-verdict-v1", task_id, verifier, verdict)).encode()
