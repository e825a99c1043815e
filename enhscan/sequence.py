"""Sequence arithmetic shared by scanning and training: base tables, complements, GC.

Sequences are upper-case strings; "non-ACGT" means any base other than A, C, G or T (N and the
other IUPAC codes).
"""

from __future__ import annotations

import numpy as np

# IUPAC complements: R(AG)<->Y(CT), K(GT)<->M(AC), B(CGT)<->V(ACG), D(AGT)<->H(ACT); S, W, N
# are their own complements. Case is kept; every other byte becomes N.
_COMPLEMENT = bytearray(b"N" * 256)
for _a, _b in zip(b"ACGTNRYKMBVDHSW", b"TGCANYRMKVBHDSW", strict=True):
    _COMPLEMENT[_a] = _b
    _COMPLEMENT[_a + 32] = _b + 32  # lower case
_COMPLEMENT = bytes(_COMPLEMENT)

IS_ACGT = np.zeros(256, dtype=bool)
IS_ACGT[list(b"ACGT")] = True
IS_GC = np.zeros(256, dtype=bool)
IS_GC[list(b"GC")] = True


def reverse_complement(seq: str) -> str:
    """The reverse complement of ``seq``.

    A, C, G, T, N and the IUPAC ambiguity codes are complemented (R<->Y, K<->M, B<->V, D<->H;
    S, W and N stay), keeping case. Any other character becomes N.

    >>> reverse_complement("AACGTN")
    'NACGTT'
    """
    return seq.encode("ascii", "replace").translate(_COMPLEMENT)[::-1].decode("ascii")


def with_reverse_complements(seqs: list[str]) -> list[str]:
    """``seqs`` followed by their reverse complements, in the same order (2n strings): the
    layout in which a scan scores both strands."""
    return [*seqs, *(reverse_complement(s) for s in seqs)]


def augmented_views(seqs: list[str], starts: list[int], flips: list[bool], width: int) -> list[str]:
    """Each sequence cut to ``width`` bases from its ``starts`` offset, reverse-complemented
    where ``flips`` says (how training shows a shifted, reversed view of a wider window)."""
    cuts = [s[a : a + width] for s, a in zip(seqs, starts, strict=True)]
    return [reverse_complement(c) if f else c for c, f in zip(cuts, flips, strict=True)]


def canonical(seq: str) -> str:
    """The lesser of ``seq`` and its reverse complement: one name for both strands."""
    return min(seq, reverse_complement(seq))


def gc_content(seq: str) -> float:
    """Fraction of G and C among the A, C, G, T bases of an upper-case ``seq``.

    Other bases (N, IUPAC codes) are left out of both counts; 0.0 when there is no A, C, G, T.
    """
    acgt = sum(seq.count(base) for base in "ACGT")
    return (seq.count("G") + seq.count("C")) / acgt if acgt else 0.0


def count_non_acgt(seq: str) -> int:
    """How many bases of an upper-case ``seq`` are not A, C, G or T."""
    return len(seq) - sum(seq.count(base) for base in "ACGT")


def window_ok(seq: str, offsets: np.ndarray, window: int, max_n: int) -> np.ndarray:
    """Which windows of ``seq`` have at most ``max_n`` non-ACGT bases.

    Args:
        seq: a stretch of upper-case sequence (lower-case bases count as non-ACGT).
        offsets: int64 [n], window starts within ``seq`` (0-based).
        window: window width.
        max_n: the most non-ACGT bases a kept window may hold.

    Returns:
        bool [n].
    """
    bad = ~IS_ACGT[np.frombuffer(seq.encode("ascii", "replace"), dtype=np.uint8)]
    prefix = np.concatenate(([0], np.cumsum(bad, dtype=np.int64)))
    return (prefix[offsets + window] - prefix[offsets]) <= max_n
