"""RFC 9162 Merkle trees (adapters.merkle) against a naive recursive MTH, and the frontier against both."""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from tradeledger.adapters import merkle

LEAVES = st.lists(st.binary(max_size=8), min_size=1, max_size=70)


def naive_mth(leaves: list[bytes]) -> bytes:
    """§2.1.1 literally: split at the largest power of two smaller than n."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaves[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return merkle.node_hash(naive_mth(leaves[:k]), naive_mth(leaves[k:]))


def hashed(data: list[bytes]) -> list[bytes]:
    return [merkle.leaf_hash(d) for d in data]


def test_the_empty_tree_and_the_domain_separation() -> None:
    assert merkle.root([]).hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    # RFC 6962 / CT test vector: the leaf hash of the empty string.
    assert merkle.leaf_hash(b"").hex() == "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    assert merkle.leaf_hash(b"a") != hashlib.sha256(b"a").digest()


def test_the_ct_reference_tree_of_eight_leaves() -> None:
    """The RFC 6962 reference inputs (certificate-transparency's merkle_tree_test): roots for sizes 1..8."""
    inputs = [bytes.fromhex(h) for h in ("", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                                         "606162636465666768696a6b6c6d6e6f")]
    roots = ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
             "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
             "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
             "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
             "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
             "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
             "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
             "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"]
    for size, expected in enumerate(roots, start=1):
        assert merkle.root(hashed(inputs[:size])).hex() == expected


@given(LEAVES)
def test_the_root_and_the_frontier_equal_the_naive_mth(data: list[bytes]) -> None:
    leaves = hashed(data)
    frontier = merkle.Frontier()
    for size, leaf in enumerate(leaves, start=1):
        frontier.append(leaf)
        assert frontier.root() == naive_mth(leaves[:size]) == merkle.root(leaves[:size])
        restored = merkle.Frontier.decode(frontier.size, frontier.encode())
        assert restored.root() == frontier.root() and len(restored.hashes) == size.bit_count()


@settings(max_examples=60)
@given(LEAVES, st.data())
def test_inclusion_proofs_hold_and_fail_for_any_other_leaf_or_root(data: list[bytes], draw: st.DataObject) -> None:
    leaves = hashed(data)
    n, root = len(leaves), merkle.root(leaves)
    m = draw.draw(st.integers(0, n - 1))
    path = merkle.inclusion_path(m, leaves)
    assert merkle.verify_inclusion(m, n, leaves[m], path, root)
    assert not merkle.verify_inclusion(m, n, merkle.leaf_hash(b"forged"), path, root)
    assert not merkle.verify_inclusion(m, n, leaves[m], path, merkle.leaf_hash(b"other root"))
    if n > 1:
        other = (m + 1) % n
        assert not merkle.verify_inclusion(other, n, leaves[m], path, root) or leaves[other] == leaves[m]


@settings(max_examples=60)
@given(LEAVES, st.data())
def test_consistency_proofs_hold_between_any_two_sizes_and_fail_for_a_changed_prefix(data: list[bytes],
                                                                                   draw: st.DataObject) -> None:
    leaves = hashed(data)
    n = len(leaves)
    m = draw.draw(st.integers(1, n))
    first, second = merkle.root(leaves[:m]), merkle.root(leaves)
    proof = merkle.consistency_proof(m, leaves)
    assert merkle.verify_consistency(m, n, first, second, proof)
    changed = [merkle.leaf_hash(b"changed"), *leaves[1:]]
    assert not merkle.verify_consistency(m, n, merkle.root(changed[:m]), second, proof)
    assert not merkle.verify_consistency(m, n, first, merkle.root(changed), proof) or m == n


def test_the_outsiders_copy_agrees_with_ours() -> None:
    """scripts/verify_log.py writes the verifying half again (it imports nothing of ours): same answers."""
    from scripts import verify_log

    leaves = hashed([bytes([i]) for i in range(37)])
    for size in (1, 2, 5, 16, 37):
        assert verify_log.mth(leaves[:size]) == merkle.root(leaves[:size])
        for m in range(size):
            assert verify_log.verify_inclusion(m, size, leaves[m], merkle.inclusion_path(m, leaves[:size]),
                                               merkle.root(leaves[:size]))
        for m in range(1, size + 1):
            assert verify_log.verify_consistency(m, size, merkle.root(leaves[:m]), merkle.root(leaves[:size]),
                                                 merkle.consistency_proof(m, leaves[:size]))
