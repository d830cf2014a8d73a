"""Merkle batch commitments (reference_node.crypto, commit 0cae5f5): the RFC 9162 tree against the
published Certificate Transparency vectors and against an independent recursive implementation of
the RFC's definitions, the commitment signatures of both schemes, their batch checks (verify_commitments,
signature_forms, the crypto pool, the ledger's batch path) against the one-at-a-time checks, the
ledger's and the arbiter's verdicts on merkle-signed commitments, and whole in-process runs (single vs
merkle, worker vs none) and the command line.

Every expected value comes from outside the code under test: the published vectors, the RFC's
recursive definitions written out here (hashlib), PyNaCl's public VerifyKey, or the rules of the
signature form read off the module's text."""

from __future__ import annotations

import hashlib
import json
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from reference_node import crypto, events, models
from reference_node.arbiter import Arbiter
from reference_node.crypto import Key
from reference_node.inprocess import Network, task_id
from reference_node.ledger import Ledger, LedgerError, _check_commit, _check_commits
from reference_node.parallel import CryptoPool
from reference_node.params import load
from reference_node.provider import Provider, Task
from reference_node.testing import Clock, write_params
from reference_node.testing import assert_same_checks as _same
from reference_node.verifier import Verifier

ROOT = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------------------
# an independent RFC 9162 §2.1 Merkle tree: the recursive definitions, hashlib only
# ----------------------------------------------------------------------------------------


def _sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _k(n: int) -> int:
    """The largest power of two smaller than n (n > 1): RFC 9162's split."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(leaves: list[bytes]) -> bytes:
    """MTH(D[n]) of RFC 9162 §2.1.1 (n ≥ 1)."""
    if len(leaves) == 1:
        return _sha(b"\x00" + leaves[0])
    k = _k(len(leaves))
    return _sha(b"\x01" + mth(leaves[:k]) + mth(leaves[k:]))


def rfc_path(m: int, leaves: list[bytes]) -> list[bytes]:
    """PATH(m, D[n]) of RFC 9162 §2.1.3.1: the audit path of leaf m, leaf to root."""
    n = len(leaves)
    if n == 1:
        return []
    k = _k(n)
    if m < k:
        return rfc_path(m, leaves[:k]) + [mth(leaves[k:])]
    return rfc_path(m - k, leaves[k:]) + [mth(leaves[:k])]


def root_from_path(leaf: bytes, m: int, n: int, nodes: list[bytes]) -> bytes | None:
    """The root that ``nodes`` make of leaf hash ``leaf`` as entry m of n, read off the recursive
    definition of PATH (its last node is the sibling subtree at the top split), or None if the
    nodes are not exactly as many as leaf m's depth in a tree of n leaves."""
    if not 0 <= m < n:
        return None
    if n == 1:
        return leaf if not nodes else None
    if not nodes:
        return None
    k = _k(n)
    if m < k:
        inner = root_from_path(leaf, m, k, nodes[:-1])
        return None if inner is None else _sha(b"\x01" + inner + nodes[-1])
    inner = root_from_path(leaf, m - k, n - k, nodes[:-1])
    return None if inner is None else _sha(b"\x01" + nodes[-1] + inner)


def _root_message(root: bytes, size: int) -> bytes:
    # the signed message, as the module's text specifies it: mira-commit-root-v1|<root hex>|<leaves>
    return f"mira-commit-root-v1|{root.hex()}|{size}".encode()


def _nodes(path_hex: str) -> list[bytes]:
    raw = bytes.fromhex(path_hex)
    return [raw[a:a + 32] for a in range(0, len(raw), 32)]


def _flip(hex_text: str, at: int) -> str:
    """``hex_text`` with the hex digit at ``at`` changed (still a hex digit)."""
    c = hex_text[at]
    return hex_text[:at] + ("1" if c == "0" else "0") + hex_text[at + 1:]


# ----------------------------------------------------------------------------------------
# 1. the published vectors
# ----------------------------------------------------------------------------------------
# Certificate Transparency / RFC 6962 test vectors, as published in transparency-dev/merkle:
#   testonly/constants.go (LeafInputs, NodeHashes, RootHashes; commit 582a6ad190b6848f1d26f8bf08ddef29955d9db1)
#   proof/verify_test.go (inclusionProofs, 1-based leaf numbers there; commit 02194e9afb6c1d95b5381350007963aa70fff472)
# The same leaves and roots appear in google/certificate-transparency's merkle tree tests (kSHA256Roots).

CT_LEAVES = [bytes.fromhex(h) for h in ("", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                                        "606162636465666768696a6b6c6d6e6f")]
CT_ROOTS = ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
            "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
            "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"]
# the hashes of every complete subtree of the 8-leaf tree, by level (level 0: the leaf hashes)
CT_NODES = [["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
             "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
             "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
             "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
             "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
             "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
             "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
             "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1"],
            ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
             "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
             "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
             "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"],
            ["d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
             "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"],
            ["5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"]]
# (leaf index, 0-based; tree size; audit path) from verify_test.go's inclusionProofs
CT_INCLUSION = [
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]
SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")  # verify_test.go's


def test_published_ct_roots_and_leaf_hashes():
    for n in range(1, 9):
        root, paths = crypto.merkle_tree(CT_LEAVES[:n])
        assert root.hex() == CT_ROOTS[n - 1], n
        assert len(paths) == n
    assert [crypto.leaf_hash(x).hex() for x in CT_LEAVES] == CT_NODES[0]
    assert crypto.node_hash(bytes.fromhex(CT_NODES[0][0]), bytes.fromhex(CT_NODES[0][1])).hex() == CT_NODES[1][0]
    # the independent recursion agrees with the published roots too (so it can judge sizes beyond 8)
    assert [mth(CT_LEAVES[:n]).hex() for n in range(1, 9)] == CT_ROOTS


def test_published_ct_inclusion_paths():
    for index, size, proof in CT_INCLUSION:
        _, paths = crypto.merkle_tree(CT_LEAVES[:size])
        assert [p.hex() for p in paths[index]] == proof, (index, size)
        nodes = [bytes.fromhex(h) for h in proof]
        root = bytes.fromhex(CT_ROOTS[size - 1])
        leaf = crypto.leaf_hash(CT_LEAVES[index])
        assert crypto.merkle_root(leaf, index, size, nodes) == root
        # the corruptions verify_test.go (corruptInclusionProof) requires a verifier to reject
        probes = [(index - 1, size, nodes), (index + 1, size, nodes), (index ^ 2, size, nodes),
                  (index, size * 2, nodes), (index, size // 2, nodes),
                  (index, size, nodes + [root]), (index, size, [root] + nodes),
                  (index, size, nodes[:-1]), (index, size, [nodes[0], SOME_HASH] + nodes[1:])]
        probes += [(index, size, nodes[:i] + [bytes([nodes[i][0] ^ 8]) + nodes[i][1:]] + nodes[i + 1:])
                   for i in range(len(nodes))]
        for m, n, ns in probes:
            assert crypto.merkle_root(leaf, m, n, ns) != root, (index, size, m, n, len(ns))
        assert crypto.merkle_root(crypto.leaf_hash(b"WrongLeaf"), index, size, nodes) != root
    # every leaf of the 8-leaf tree: its path is the published sibling subtrees, level by level
    _, paths = crypto.merkle_tree(CT_LEAVES)
    for i in range(8):
        assert [p.hex() for p in paths[i]] == [CT_NODES[0][i ^ 1], CT_NODES[1][(i >> 1) ^ 1],
                                               CT_NODES[2][(i >> 2) ^ 1]]


# ----------------------------------------------------------------------------------------
# 2. a second method: the recursion, sizes 1..70
# ----------------------------------------------------------------------------------------


def test_merkle_tree_is_the_rfc_recursion_and_paths_verify():
    for n in range(1, 71):
        leaves = [f"leaf|{n}|{i}".encode() for i in range(n)]
        root, paths = crypto.merkle_tree(leaves)
        assert root == mth(leaves), n
        assert paths == [rfc_path(i, leaves) for i in range(n)], n
        for i, path in enumerate(paths):
            leaf = _sha(b"\x00" + leaves[i])
            assert crypto.merkle_root(leaf, i, n, path) == root
            assert crypto.merkle_root(leaf, i, n, iter(path)) == root  # any iterable of nodes
            # a different message, wrong index, dropped or extra node, a flipped byte: never the root
            assert crypto.merkle_root(_sha(b"\x00" + leaves[i] + b"x"), i, n, path) != root
            for m in {i - 1, i + 1, i ^ 1, i ^ 2, 0, n - 1, n, n + 5} - {i}:
                assert crypto.merkle_root(leaf, m, n, path) != root, (n, i, m)
            assert crypto.merkle_root(leaf, i, n, path + [root]) is None
            assert crypto.merkle_root(leaf, i, n, path + [path[-1] if path else leaf]) is None
            if path:
                assert crypto.merkle_root(leaf, i, n, path[:-1]) is None
                assert crypto.merkle_root(leaf, i, n, path[1:]) is None
                for j in range(len(path)):
                    bad = path[:j] + [path[j][:7] + bytes([path[j][7] ^ 1]) + path[j][8:]] + path[j + 1:]
                    assert crypto.merkle_root(leaf, i, n, bad) not in (None, root)
            # any claimed position: what the RFC's verification computes is the recursion read backwards
            for m, size in [(i, s) for s in {n - 1, n + 1, 2 * n, n // 2, i + 1, 16, 17, 65536}] + \
                           [(m, n) for m in (i - 1, i + 1, i ^ 1, n)]:
                assert crypto.merkle_root(leaf, m, size, path) == root_from_path(leaf, m, size, path), \
                    (n, i, m, size)


def test_a_wrong_size_can_lead_to_the_same_root_so_the_size_is_signed():
    """Leaf 0's path in a tree of 16 also folds, as a proof for a tree of 15, into the 16-leaf root
    (the RFC's verification compares (root, size) with a tree head): hence the signed message names
    the size, and such a signature does not verify for size 15 (test_merkle_commitment_signatures)."""
    leaves = [f"x{i}".encode() for i in range(16)]
    root, paths = crypto.merkle_tree(leaves)
    assert crypto.merkle_root(_sha(b"\x00" + leaves[0]), 0, 15, paths[0]) == root
    key = Key(1, "size")
    sig = key.sign_commitments(leaves, "merkle")[0]
    assert sig.split(".")[1:3] == ["0", "16"]
    forged = sig.replace(".0.16.", ".0.15.", 1)
    assert crypto.signature_form(forged) and not crypto.verify_commitment(crypto.public_key(key.public_hex),
                                                                           forged, leaves[0])


# ----------------------------------------------------------------------------------------
# 3. commitment signatures
# ----------------------------------------------------------------------------------------


def _messages(n: int, tag: str = "m") -> list[bytes]:
    return [crypto.commitment_message(f"{tag}-{i}", "a" * 64, "b" * 64, "model", "p0") for i in range(n)]


@pytest.mark.parametrize("n", [1, 2, 15, 16, 17, 40])
def test_merkle_commitment_signatures(n):
    key, other = Key(7, "signer"), Key(7, "other")
    pub, other_pub = crypto.public_key(key.public_hex), crypto.public_key(other.public_hex)
    vk = VerifyKey(bytes.fromhex(key.public_hex))
    msgs = _messages(n)
    sigs = key.sign_commitments(msgs, "merkle")
    assert len(sigs) == n
    heads = []
    for a in range(0, n, 16):
        group = msgs[a:a + 16]
        size = len(group)
        root = mth(group)
        assert len({s[:128] for s in sigs[a:a + 16]}) == 1  # one root signature per run of 16
        head = sigs[a][:128]
        heads.append(head)
        # the head is an Ed25519 signature of the root message (PyNaCl's public API, and crypto.verify)
        vk.verify(_root_message(root, size), bytes.fromhex(head))
        assert crypto.verify(pub, head, _root_message(root, size))
        with pytest.raises(BadSignatureError):
            vk.verify(_root_message(root, size + 1), bytes.fromhex(head))
        for i, s in enumerate(sigs[a:a + 16]):
            assert s == f"{head}.{i}.{size}." + b"".join(rfc_path(i, group)).hex()
    assert len(set(heads)) == len(heads) == -(-n // 16)
    stranger = key.sign(b"something else")
    for i, (m, s) in enumerate(zip(msgs, sigs)):
        head, index, size, path = s.split(".")
        assert int(index) == i % 16 and int(size) == min(16, n - i // 16 * 16)
        assert crypto.signature_form(s)
        assert crypto.verify_commitment(pub, s, m)
        assert not crypto.verify_commitment(other_pub, s, m)
        assert not crypto.verify_commitment(None, s, m)
        assert not crypto.verify_commitment(pub, s, m + b"x")
        if n > 1:
            assert not crypto.verify_commitment(pub, s, msgs[i - 1])
        assert not crypto.verify_commitment(pub, head, m)  # the root signature alone is no per-task one
        k, z = int(index), int(size)
        variants = [f"{head}.{(k + 1) % z if z > 1 else 1}.{size}.{path}",  # another leaf index
                    f"{head}.{index}.{z + 1}.{path}",                            # another size
                    f"{stranger}.{index}.{size}.{path}"]                         # a head signing something else
        if z > 1:
            variants.append(f"{head}.{index}.{z - 1}.{path}")
        variants += [f"{h}.{index}.{size}.{path}" for h in heads if h != head]  # another group's head
        variants += [f"{head}.{index}.{size}.{_flip(path, 64 * j + 17)}" for j in range(len(path) // 64)]
        if path:
            variants += [f"{head}.{index}.{size}.{path[:-64]}", f"{head}.{index}.{size}.{path}{path[:64]}"]
        for v in variants:
            assert crypto.signature_form(v), v
            assert not crypto.verify_commitment(pub, v, m), (i, v[128:])


def test_single_is_sign_many_and_unknown_schemes_are_refused(params):
    key = Key(3, "s")
    msgs = _messages(20)
    single = key.sign_commitments(msgs, "single")
    assert single == key.sign_many(msgs)
    vk = VerifyKey(bytes.fromhex(key.public_hex))
    for m, s in zip(msgs, single):
        assert re.fullmatch(r"[0-9a-f]{128}", s)
        vk.verify(m, bytes.fromhex(s))
        assert crypto.verify_commitment(crypto.public_key(key.public_hex), s, m)
    assert key.sign_commitments([], "merkle") == [] == key.sign_commitments([], "single")
    assert key.sign_commitments(msgs[:3]) == key.sign_commitments(msgs[:3], "merkle")  # merkle is the default
    for scheme in ("foo", "Merkle", "", "single ", None):
        with pytest.raises(ValueError, match="signing scheme"):
            key.sign_commitments(msgs, scheme)
    with pytest.raises(ValueError, match="signing scheme"):
        Provider("p0", params, "honest", 0, signing="foo")


# ----------------------------------------------------------------------------------------
# 4. verify_commitments is verify_commitment of each job
# ----------------------------------------------------------------------------------------


def test_verify_commitments_is_verify_commitment_of_each():
    a, b = Key(5, "a"), Key(5, "b")
    pa, pb = crypto.public_key(a.public_hex), crypto.public_key(b.public_hex)
    msgs = _messages(20, "vc")
    ma, sa, mb = a.sign_commitments(msgs, "merkle"), a.sign_commitments(msgs, "single"), b.sign_commitments(msgs)
    labelled = []
    for i, m in enumerate(msgs):
        nxt = msgs[(i + 1) % 20]
        head, index, size, path = ma[i].split(".")
        labelled += [((pa, ma[i], m), True), ((pb, ma[i], m), False), ((None, ma[i], m), False),
                     ((pa, sa[i], m), True), ((pb, sa[i], m), False), ((pb, mb[i], m), True),
                     ((pa, mb[i], m), False), ((pa, ma[i], nxt), False), ((pa, ma[(i + 1) % 20], m), False),
                     ((pa, f"{head}.{index}.{size}.{_flip(path, 5)}", m), False), ((pa, "abc", m), False),
                     ((pa, ma[i].upper(), m), False), ((pa, sa[i][:-1], m), False), ((pa, None, m), False)]
    random.Random(3).shuffle(labelled)
    # the same root signature under two keys, the valid one first and then the other: the cache of
    # verified roots must be keyed by the key too
    labelled = [((pa, ma[0], msgs[0]), True), ((pb, ma[0], msgs[0]), False), ((None, ma[1], msgs[1]), False),
                ((pa, ma[1], msgs[1]), True)] + labelled
    jobs = [j for j, _ in labelled]
    expected = [ok for _, ok in labelled]
    assert [crypto.verify_commitment(*j) for j in jobs] == expected
    assert crypto.verify_commitments(jobs) == expected
    assert crypto.verify_commitments(iter(jobs)) == expected
    assert crypto.verify_commitments([]) == []


# ----------------------------------------------------------------------------------------
# 5. signature_forms is all(map(signature_form, ...))
# ----------------------------------------------------------------------------------------

_FORM_KEY = Key(11, "forms")
H = "0123456789abcdef" * 8  # a 128-hex head (form only)
P = "fedcba9876543210" * 4  # a 64-hex path node
MERKLE_FORMS = _FORM_KEY.sign_commitments(_messages(20, "f"), "merkle") + [
    H + ".0.1.", H + ".99999.99999." + P * 16, H + ".12.345." + P * 2, H + ".7.3." + P]
SINGLE_FORMS = _FORM_KEY.sign_commitments(_messages(3, "g"), "single") + [H]
VALID_FORMS = MERKLE_FORMS + SINGLE_FORMS
ALPHABET = "0123456789abcdef.ABCDEFg\n \u00e9\u0660\uff11"  # \u0660 and \uff11 are digits to str.isdigit/\d
_mutation = st.tuples(st.sampled_from(["insert", "replace", "delete", "pad"]), st.integers(0, 5000),
                      st.sampled_from(ALPHABET))


def _mutate(sig: str, mutations: list[tuple[str, int, str]]) -> str:
    for kind, pos, ch in mutations:
        if kind == "pad":  # a leading zero on one of the dot-separated fields
            parts = sig.split(".")
            k = pos % len(parts)
            parts[k] = "0" + parts[k]
            sig = ".".join(parts)
        elif kind == "insert":
            p = pos % (len(sig) + 1)
            sig = sig[:p] + ch + sig[p:]
        elif sig:
            p = pos % len(sig)
            sig = sig[:p] + (ch if kind == "replace" else "") + sig[p + 1:]
    return sig


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(MERKLE_FORMS) | st.sampled_from(SINGLE_FORMS),
                          st.lists(_mutation, max_size=3)), max_size=8))
@example([(SINGLE_FORMS[0], []), (MERKLE_FORMS[0], [])])                       # both schemes, all valid
@example([(MERKLE_FORMS[0], [("pad", 1, "0")]), (MERKLE_FORMS[1], [])])        # index "00"
@example([(H + ".0.2." + P + "." + H + ".1.2", []), (P, [])])                  # 6 dots and 0 dots
@example([(MERKLE_FORMS[5], [("insert", 200, "0")]), (MERKLE_FORMS[6], [])])   # half a node more
def test_signature_forms_is_each_signature_form(items):
    sigs = [_mutate(s, m) for s, m in items]
    assert crypto.signature_forms(sigs) == all(crypto.signature_form(s) is not None for s in sigs)


# (signatures, of the form?) by the rules of SIGNATURE_FORM's text: 128 hex, or 128 hex '.' index
# '.' leaves '.' path, the numbers decimal without leading zeros (index ≥ 0, leaves ≥ 1, ≤ 5 digits),
# the path 0..16 nodes of 64 lowercase hex digits
FORM_CASES = [
    ([], True),
    ([H], True),
    ([H + ".0.1."], True),
    ([H + ".0.2." + P], True),
    ([H + ".99999.99999." + P * 16], True),
    ([H + ".01.2." + P], False),              # leading zero in the index
    ([H + ".1.02." + P], False),              # leading zero in the size
    ([H + ".00.2." + P], False),
    ([H + ".0.0."], False),                   # size 0
    ([H + ".0.2." + P * 17], False),          # 17 nodes
    ([H + ".0.2." + P[:-1]], False),          # half a node
    ([H[:127] + ".0.2." + P], False),         # 3 dots, a 127-digit head
    ([H + "0.0.2." + P], False),              # a 129-digit head
    ([H + ".100000.2." + P], False),          # 6 digits
    ([H + ".\u0660.2." + P], False),          # an Arabic-Indic zero
    ([H + ".0.\uff12." + P], False),          # a full-width two
    ([H + ".0.2." + P.upper()], False),
    ([H.upper()], False),
    ([H + "\n"], False),
    ([H + ".0.2." + P + "\n"], False),
    ([H + ".0.2"], False),                    # 2 dots
    ([H + ".0.2." + P + "."], False),         # 4 dots
    ([H, H + ".1.2." + P], True),             # a single signature, then a merkle one
    ([H + ".1.2." + P, H], True),
    ([H, H + ".1.2." + P, H[:-1]], False),
    ([H + ".1.2." + P, H + ".1.02." + P], False),
    # 6 dots beside 0 dots (9 fields in all if joined with a dot: the column split must not be fooled)
    ([H + ".0.2." + P + "." + H + ".1.2", P], False),
    ([H + ".0.2." + P + "." + H + ".1.2", P + P], False),
    ([H + ".0.2." + P + "." + H + ".1.2", H + ".0.2." + P], False),
    (["", H], False),
    ([H + ".0.1.", H + ".0.1.", ""], False),
]


@pytest.mark.parametrize("sigs, expected", FORM_CASES)
def test_signature_form_hand_cases(sigs, expected):
    assert all(crypto.signature_form(s) is not None for s in sigs) is expected
    assert crypto.signature_forms(sigs) is expected
    # and the same strings among valid signatures of both schemes
    mixed = VALID_FORMS[:3] + sigs + VALID_FORMS[-3:]
    assert crypto.signature_forms(mixed) is expected


def test_a_lone_surrogate_is_not_of_the_form():
    assert crypto.signature_form(H[:-1] + "\ud800") is None
    assert crypto.signature_forms([H[:-1] + "\ud800"]) is False


# ----------------------------------------------------------------------------------------
# 6. the crypto pool signs in whole merkle groups
# ----------------------------------------------------------------------------------------


def test_the_pool_signs_what_the_key_signs():
    lengths = [1, 16, 17, 33, 50, 0, 5, 48]
    jobs = [(4, f"signer-{j % 3}", [f"pool|{j}|{scheme}|{i}".encode() for i in range(n)], scheme)
            for j, n in enumerate(lengths) for scheme in ("merkle", "single")]
    expected = [Key(seed, name).sign_commitments(ms, scheme) for seed, name, ms, scheme in jobs]
    pool = CryptoPool(workers=3, min_batch=1)
    try:
        assert pool.sign(jobs) == expected
        for job, exp in zip(jobs, expected):  # each alone (a 50-message merkle job is split among threads)
            if job[2]:  # (nothing to sign at all: test_the_pool_signs_and_verifies_nothing)
                assert pool.sign([job]) == [exp]
        checks = pool.verify([(Key(seed, name).public_hex, s, m) for (seed, name, ms, _), sg in zip(jobs, expected)
                              for m, s in zip(ms, sg)])
        assert checks == [True] * sum(2 * n for n in lengths)
    finally:
        pool.close()
    assert pool.sign(jobs[6:10]) == expected[6:10]  # closed: signs inline, the same
    assert expected[8][0].split(".")[1:3] == ["0", "16"] and expected[8][-1].split(".")[1:3] == ["1", "2"]


def test_the_pool_signs_and_verifies_nothing():
    pool = CryptoPool(workers=3, min_batch=1)
    try:
        assert pool.sign([(4, "signer-0", [], "merkle")]) == [[]]
        assert pool.sign([]) == []
        assert pool.verify([]) == []
    finally:
        pool.close()


# ----------------------------------------------------------------------------------------
# 7. the ledger
# ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def params(tmp_path_factory):
    return load(write_params(tmp_path_factory.mktemp("p") / "p.json"))


def _provider(params, signing="merkle", strategy="honest"):
    return Provider("p0", params, strategy, seed=1, signing=signing)


def _ledger(path, params, pool=None, verify=True, strategy="honest"):
    led = Ledger(path, params, clock=Clock(), verify_signatures=verify, crypto_pool=pool)
    ver, arb = Verifier("v0", params, 0, 1, seed=1), Arbiter("arb", params, seed=1)
    results = led.execute(_provider(params, strategy=strategy).register_ops() + ver.register_ops(20.0)
                          + arb.register_ops())
    assert all(r["ok"] for r in results), results
    return led, ver, arb


def _ops(params, n, prefix="mk", signing="merkle", strategy="honest"):
    prov = _provider(params, signing, strategy)
    return [op for _, op in prov.infer([Task(f"{prefix}-{i}", models.task_input(prefix, i), "c0", 1.0)
                                        for i in range(n)])]


def _rows(led):
    led._sync()
    return led.db.execute("SELECT seq, request_id, kind, time, account, task_id, amount, data FROM events "
                          "ORDER BY seq").fetchall()


def test_a_batch_of_merkle_commitments_is_accepted(tmp_path, params):
    led, _, _ = _ledger(tmp_path / "l.sqlite", params)
    ops = _ops(params, 40)
    assert {op["signature"].count(".") for op in ops} == {3}
    results = led.execute(ops)
    assert all(r["ok"] for r in results), [r for r in results if not r["ok"]][:1]
    assert led.task_count() == 40
    assert [led.task(op["task_id"])["signature"] for op in ops] == [op["signature"] for op in ops]
    assert led.totals["escrowed"] == 40_000_000
    led.check_invariant(full=True)
    led.close()


def _altered(ops, j, how):
    head, index, size, path = ops[j]["signature"].split(".")
    if how == "path byte":
        sig = f"{head}.{index}.{size}.{_flip(path, 70)}"
    elif how == "leaf index":
        sig = f"{head}.{(int(index) + 1) % int(size)}.{size}.{path}"
    elif how == "size":
        sig = f"{head}.{index}.{int(size) - 1}.{path}"
    elif how == "another group's head":
        sig = f"{ops[0]['signature'][:128]}.{index}.{size}.{path}"
    elif how == "another task's signature":
        sig = ops[j + 1]["signature"]
    elif how == "dropped node":
        sig = f"{head}.{index}.{size}.{path[:-64]}"
    else:
        raise AssertionError(how)
    assert crypto.signature_form(sig) and sig != ops[j]["signature"]
    return {**ops[j], "signature": sig}


@pytest.mark.parametrize("pooled", [False, True])
@pytest.mark.parametrize("how", ["path byte", "leaf index", "size", "another group's head", "another task's signature",
                                 "dropped node"])
def test_an_altered_merkle_signature_is_refused_alone(tmp_path, params, how, pooled):
    """A well-formed but wrong merkle signature gets 401; the rest of the batch is applied, and the
    ledger is exactly the ledger that never saw it (its events, totals, accounts)."""
    pool = CryptoPool(workers=2, min_batch=1) if pooled else None
    try:
        ops = _ops(params, 40)
        j = 21  # the second group's sixth leaf
        batch = ops[:j] + [_altered(ops, j, how)] + ops[j + 1:]
        a, _, _ = _ledger(tmp_path / "a.sqlite", params, pool)
        b, _, _ = _ledger(tmp_path / "b.sqlite", params, pool)
        results = a.execute(batch)
        assert [i for i, r in enumerate(results) if not r["ok"]] == [j]
        assert results[j]["status"] == 401 and "signature" in results[j]["error"], results[j]
        assert all(r["ok"] for r in b.execute(ops[:j] + ops[j + 1:]))
        assert _rows(a) == _rows(b)
        assert a.summary() == b.summary() and a.totals == b.totals
        assert events.summarize(events.iter_events(a.path)) == events.summarize(events.iter_events(b.path))
        if pooled:
            assert pool.verify(a.verify_jobs(batch)) == [i != j for i in range(40)]
        # the genuine commitment under the same request id is still welcome
        assert a.execute([ops[j]])[0]["ok"]
        a.check_invariant(full=True)
        a.close()
        b.close()
    finally:
        if pool is not None:
            pool.close()


MALFORMED = ["abc", "", "g" * 128 + ".0.1.", H[:127] + ".0.2." + P, H + ".01.16." + P * 4, H + ".0.0.",
             H + ".0.2." + P * 17, H + ".0.2." + P[:-2], H.upper() + ".0.2." + P, H + ".0.2." + P + ".",
             H + ".0.2", H + "\n"]


@pytest.mark.parametrize("sig", MALFORMED)
def test_a_malformed_signature_is_a_422_naming_the_field(tmp_path, params, sig):
    led, _, _ = _ledger(tmp_path / "l.sqlite", params)
    ops = _ops(params, 6)
    ops[2] = {**ops[2], "signature": sig}
    assert _check_commits(ops, set()) is None  # the batch path gives up: the per-operation check words it
    late = _check_commit(ops[2], set())[5]
    assert late is not None and late.status == 422 and "'signature'" in late.message
    results = led.execute(ops)
    assert results[2]["ok"] is False and results[2]["status"] == 422 and "'signature'" in results[2]["error"]
    assert all(r["ok"] for i, r in enumerate(results) if i != 2)
    led.close()


def test_a_lone_surrogate_signature_is_a_422(tmp_path, params):
    # json.loads('"\\ud800"') is such a string: a request can carry one
    led, _, _ = _ledger(tmp_path / "l.sqlite", params)
    ops = _ops(params, 5)
    ops[1] = {**ops[1], "signature": ops[1]["signature"][:-1] + "\ud800"}
    ops[2] = {**ops[2], "input": ops[2]["input"] + "\udfff"}
    ops[3] = {**ops[3], "action": "hon\ud800est"}  # experiment metadata: dropped, the commitment stands
    try:
        results = led.execute(ops)
        assert results[1]["status"] == 422 and "'signature'" in results[1]["error"]
        assert results[2]["status"] == 422 and "'input'" in results[2]["error"]
        assert all(results[i]["ok"] for i in (0, 3, 4))
        assert results[3]["action"] is None
        led.execute([])  # the batch was written: the ledger goes on
        led._sync()  # the background writer (if any) has written the batch
        tasks = {e["task_id"] for e in events.iter_events(led.path) if e["kind"] == "commit"}
        assert tasks == {ops[i]["task_id"] for i in (0, 3, 4)}
    finally:
        led.close()


def test_single_and_merkle_signatures_of_one_provider_mix_in_a_batch(tmp_path, params):
    led, _, _ = _ledger(tmp_path / "l.sqlite", params)
    merkle, single = _ops(params, 20, "mx", "merkle"), _ops(params, 40, "mx", "single")[20:]
    ops = [op for pair in zip(merkle, single) for op in pair]
    assert _check_commits(ops, set()) is not None  # the batch path takes a mixed column
    results = led.execute(ops)
    assert all(r["ok"] for r in results), [r for r in results if not r["ok"]][:1]
    kinds = [r["signature"].count(".") for r in results]
    assert kinds == [3, 0] * 20
    led.close()


def test_the_batch_check_of_merkle_commits_is_the_per_operation_check(params):
    ops = _ops(params, 40, "bc")
    ops[3] = {**ops[3], "input_hash": "0" * 64}  # well-formed, wrong digests: judged by both paths
    ops[30] = {**ops[30], "signature": _altered(ops, 30, "path byte")["signature"]}  # well-formed, wrong
    mixed = ops[:20] + _ops(params, 10, "bd", "single")
    for batch in (ops, mixed, ops[:1], ops[16:17]):
        fast = _check_commits(batch, set())
        assert fast is not None
        _same(fast, [_check_commit(op, set()) for op in batch])
        assert fast[0][6] is not None and fast[0][6][6] == batch[0]["signature"]


# ----------------------------------------------------------------------------------------
# 8. the arbiter
# ----------------------------------------------------------------------------------------


def _challenge(led, ver, tid):
    ch = {"op": "challenge", "request_id": f"ch-{tid}", "task_id": tid, "verifier": ver.id, "evidence_hash": "0" * 64}
    assert led.execute([ch])[0]["ok"]


def test_the_arbiter_upholds_evidence_against_a_merkle_commitment_and_refuses_a_swapped_one(tmp_path, params):
    led, ver, arb = _ledger(tmp_path / "l.sqlite", params, strategy="random-output")
    ops = _ops(params, 20, "arb", strategy="random-output")
    assert all(r["ok"] for r in led.execute(ops))
    j = 17  # the second group (of 4): a path of 2 nodes
    tid = ops[j]["task_id"]
    commitment = led.task(tid)
    assert commitment["signature"] == ops[j]["signature"] and commitment["signature"].count(".") == 3
    ref = models.run_declared([commitment["input"]])[0].tolist()
    assert ref != commitment["output"]
    ev = ver.evidence(commitment, ref)
    _challenge(led, ver, tid)
    # the commitment signature swapped for other valid-looking merkle signatures: refused (422), even
    # when the verifier signs the evidence naming it
    swaps = [ops[j + 1]["signature"], ops[j - 1]["signature"], _altered(ops, j, "path byte")["signature"],
             _altered(ops, j, "leaf index")["signature"]]
    for sig in swaps:
        for forged in ({**ev, "commitment_signature": sig}, ver.evidence({**commitment, "signature": sig}, ref)):
            with pytest.raises(LedgerError) as err:
                arb.judge(forged, led.task, led.pubkey)
            assert err.value.status == 422 and "commitment_signature" in err.value.message
    verdict = arb.judge(ev, led.task, led.pubkey)
    assert verdict["verdict"] == "upheld"
    r = led.execute([verdict])[0]
    assert r["ok"] and r["verdict"] == "upheld" and r["slash"] == params.slash
    assert led.task(tid)["status"] == "slashed"
    led.check_invariant(full=True)
    led.close()


def test_the_arbiter_checks_the_merkle_signature_of_a_recorded_commitment(tmp_path, params):
    """On a ledger that does not verify signatures, a commitment whose merkle path is wrong is recorded;
    the arbiter refuses evidence against it (its signature does not verify under the provider's key),
    and upholds the same evidence against the genuine commitment of another ledger."""
    ops = _ops(params, 10, "nv", strategy="random-output")
    j = 6
    for bad in (True, False):
        led, ver, arb = _ledger(tmp_path / f"{bad}.sqlite", params, verify=False, strategy="random-output")
        batch = ops[:j] + [_altered(ops, j, "path byte") if bad else ops[j]] + ops[j + 1:]
        assert all(r["ok"] for r in led.execute(batch))
        commitment = led.task(ops[j]["task_id"])
        ev = ver.evidence(commitment, models.run_declared([commitment["input"]])[0].tolist())
        _challenge(led, ver, commitment["task_id"])
        if bad:
            with pytest.raises(LedgerError) as err:
                arb.judge(ev, led.task, led.pubkey)
            assert err.value.status == 422 and "does not verify" in err.value.message
        else:
            assert arb.judge(ev, led.task, led.pubkey)["verdict"] == "upheld"
        led.close()


# ----------------------------------------------------------------------------------------
# 9. whole in-process runs: single vs merkle, worker vs none
# ----------------------------------------------------------------------------------------

MIX = ["honest"] * 6 + ["weaker-model", "random-output"]
SEED = 4


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("runs")
    params = load(write_params(d / "p.json", parameters={"sampling_rate": 0.2, "minimum_stake": 5000.0}))
    out = {}
    for name, signing, parallel, worker in (("single", "single", False, False), ("merkle", "merkle", False, False),
                                            ("merkle-worker", "merkle", True, True)):
        db = d / f"{name}.sqlite"
        net = Network(params, db, MIX, verifiers=2, seed=SEED, signing=signing, parallel=parallel, worker=worker)
        try:
            net.run(3000, batch=256)
            assert (net._worker is not None) == worker and (net.pool is not None) == parallel
            net.finish()
        finally:
            net.close()
        events.export_jsonl(db, d / f"{name}.jsonl")
        out[name] = d / f"{name}.jsonl"
    return out


def _log(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def _without_signatures(log):
    """The log but for what a commitment's signature determines: the commit's signature and request
    digest (the digest of the request as submitted), and a challenge's evidence hash (of the verifier's
    signature over evidence naming the commitment signature) and request digest."""
    drop = {"commit": ("signature", "request_digest"), "challenge": ("evidence_hash", "request_digest")}
    return [{k: v for k, v in e.items() if k not in drop.get(e["kind"], ())} for e in log]


def test_single_and_merkle_runs_differ_only_in_the_signatures(runs):
    single, merkle = _log(runs["single"]), _log(runs["merkle"])
    assert events.summarize(single) == events.summarize(merkle)
    totals = events.summarize(merkle)["totals"]
    assert totals["tasks"] == 3000 and totals["slashes"] > 0 and totals["challenges"] > 0  # not a trivial run
    assert _without_signatures(single) == _without_signatures(merkle)
    assert {e["signature"].count(".") for e in single if e["kind"] == "commit"} == {0}
    assert {e["signature"].count(".") for e in merkle if e["kind"] == "commit"} == {3}


def test_every_merkle_commit_of_a_run_verifies_and_groups_are_whole(runs):
    log = _log(runs["merkle"])
    keys = {e["account"]: crypto.public_key(e["pubkey"]) for e in log if e["kind"] == "register"}
    groups: dict[str, list] = {}
    commits = [e for e in log if e["kind"] == "commit"]
    for e in commits:
        message = crypto.commitment_message(e["task_id"], e["input_hash"], e["output_hash"], e["model_id"],
                                            e["provider"])
        assert crypto.verify_commitment(keys[e["provider"]], e["signature"], message), e["task_id"]
        other = keys["provider-0" if e["provider"] != "provider-0" else "provider-1"]
        assert not crypto.verify_commitment(other, e["signature"], message)
        head, index, size, _ = e["signature"].split(".")
        groups.setdefault(head, []).append((e["provider"], int(index), int(size)))
    assert len(commits) == 3000
    for members in groups.values():
        providers, indices, sizes = zip(*members)
        assert len(set(providers)) == 1 and len(set(sizes)) == 1
        assert sorted(indices) == list(range(sizes[0])) and 1 <= sizes[0] <= 16
    # 11 batches of 256 and one of 184: each of the 8 providers signs 32 (16 + 16) or 23 (16 + 7) per batch
    assert len(groups) == 12 * 8 * 2


def test_the_worker_leaves_no_trace_in_merkle_mode(runs):
    assert runs["merkle"].read_bytes() == runs["merkle-worker"].read_bytes()


# ----------------------------------------------------------------------------------------
# 10. the worker's audits serve only when the ledger recorded its whole batch
# ----------------------------------------------------------------------------------------


def test_a_worker_batch_the_ledger_refused_in_part_is_audited_as_recorded(tmp_path):
    path = write_params(tmp_path / "p.json", parameters={"sampling_rate": 0.5, "minimum_stake": 5000.0})
    params = load(path)
    mix = ["honest", "honest", "random-output"]
    seed = 12
    verifiers = [Verifier(f"verifier-{k}", params, k, 2, seed) for k in range(2)]
    # a task of the third batch that a verifier audits: the worker's audit of it would show in the log
    i = next(i for i in range(520, 768) if any(v.selects(task_id(seed, i)) for v in verifiers))
    tid, pid = task_id(seed, i), f"provider-{i % len(mix)}"
    other = Provider(pid, params, mix[i % len(mix)], seed, signing="merkle")
    (_, direct), = other.infer([Task(tid, models.task_input("elsewhere", 1), "client-0", params.reward)])
    logs = []
    for worker in (True, False):
        db = tmp_path / f"w{worker}.sqlite"
        net = Network(params, db, mix, verifiers=2, seed=seed, signing="merkle", parallel=worker, worker=worker)
        try:
            assert net.ledger.execute([direct])[0]["ok"]  # before the run: the workload's commit of tid gets 409
            net.run(1500, batch=256)
            assert (net._worker is not None) == worker
            net.finish()
        finally:
            net.close()
        logs.append(list(events.iter_events(db)))
    assert logs[0] == logs[1]
    log = logs[0]
    about = [e for e in log if e.get("task_id") == tid]
    assert [e["kind"] for e in about] == ["commit"] and about[0]["input_hash"] == direct["input_hash"]
    recorded = {e["task_id"] for e in log if e["kind"] == "commit" and e["task_id"] != tid}
    assert len(recorded) == 1499
    assert {e["task_id"] for e in log if e["kind"] in ("audit", "challenge")} <= recorded


# ----------------------------------------------------------------------------------------
# 11. the command line
# ----------------------------------------------------------------------------------------


def _cli(*argv, timeout=120):
    return subprocess.run([sys.executable, "-m", "reference_node.cli", *map(str, argv)], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT)


def test_mira_node_up_records_the_signing_scheme(tmp_path):
    path = write_params(tmp_path / "p.json")
    summaries = {}
    for scheme in ("single", "merkle"):
        out = tmp_path / scheme
        proc = _cli("up", "--params", path, "--providers", 3, "--verifiers", 1, "--tasks", 300, "--out", out,
                    "--inprocess", "--quiet", "--signing", scheme)
        assert proc.returncode == 0, proc.stderr
        summary = json.loads((out / "summary.json").read_text())
        assert summary["run"]["signing"] == scheme
        commits = [e for e in _log(out / "events.jsonl") if e["kind"] == "commit"]
        assert len(commits) == 300
        assert {e["signature"].count(".") for e in commits} == ({0} if scheme == "single" else {3})
        summaries[scheme] = summary
    assert summaries["single"]["totals"] == summaries["merkle"]["totals"]
    assert summaries["single"]["by_strategy"] == summaries["merkle"]["by_strategy"]


def test_an_unknown_signing_scheme_exits_2(tmp_path):
    path = write_params(tmp_path / "p.json")
    out = tmp_path / "o"
    proc = _cli("up", "--params", path, "--tasks", 10, "--out", out, "--inprocess", "--quiet", "--signing", "foo")
    assert proc.returncode == 2
    assert "--signing" in proc.stderr and "foo" in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists()
    proc = _cli("provider", "--params", path, "--ledger", "http://127.0.0.1:9", "--signing", "Merkle")
    assert proc.returncode == 2 and "--signing" in proc.stderr and "Traceback" not in proc.stderr
