"""The two windows a variant is scored on, and which alleles cannot be scored: pure logic, no
I/O. Coordinates are 0-based and half-open; an allele's ``pos`` is VCF's POS - 1.

For a window of W bases on a sequence of L bases, with REF of r bases at ``pos`` and ALT of a
bases:

- the **reference window** is centred on REF: it starts at
  ``centred_start(pos + r // 2, W, L)`` (:func:`enhscan.intervals.centred_start`: W // 2
  bases before REF's centre base, moved inside the sequence at its ends);
- the **alternate window** is the same on the alternate haplotype, the reference with REF
  replaced by ALT (L - r + a bases): it starts at ``centred_start(pos + a // 2, W, L - r + a)``
  in the haplotype's coordinates, which are the reference's before ``pos``.

So both windows hold W bases and each allele sits in the middle of its own window. For an SNV
the two cover the same bases; for an indel the flanks move by about half the length change on
each side (a deletion of 10 bases brings 5 more bases into each flank of the alternate window,
an insertion pushes as many out). The windows are taken from a stretch of reference around the
variant (:func:`flank_span`).
"""

from __future__ import annotations

from dataclasses import dataclass

from enhscan.intervals import centred_start

#: Why an allele is not scored, in the order they are checked.
SKIP_REASONS = ("missing_alt", "symbolic", "not_dna", "longer_than_window")

_DNA = frozenset("ACGTN")


@dataclass(frozen=True)
class Allele:
    """One alternate allele of a variant.

    Attributes:
        chrom: the sequence, named as in the genome.
        pos: 0-based position of REF's first base.
        ref: the reference allele (upper case).
        alt: the alternate allele (upper case).
    """

    chrom: str
    pos: int
    ref: str
    alt: str


def skip_reason(ref: str, alt: str | None, window: int) -> str | None:
    """Why the allele ``ref`` > ``alt`` cannot be scored with ``window``-base windows (one of
    :data:`SKIP_REASONS`), or None when it can.

    >>> skip_reason("A", "<DEL>", 1000), skip_reason("A", "G", 1000)
    ('symbolic', None)
    """
    if alt is None or alt in ("", "."):
        return "missing_alt"
    if alt.startswith("<") or "[" in alt or "]" in alt or alt == "*":
        return "symbolic"  # structural alleles, breakends, a deletion spanning this site
    if not set(alt.upper()) <= _DNA or not set(ref.upper()) <= _DNA:
        return "not_dna"
    if len(ref) > window or len(alt) > window:
        return "longer_than_window"
    return None


def flank_span(allele: Allele, window: int, chrom_length: int) -> tuple[int, int]:
    """The stretch of reference ``[lo, hi)`` both windows of ``allele`` are cut from: REF and
    a window on either side, inside the sequence."""
    return max(0, allele.pos - window), min(chrom_length, allele.pos + len(allele.ref) + window)


def ref_window_start(allele: Allele, window: int, chrom_length: int) -> int:
    """Where the reference window starts on the reference (module docstring)."""
    return centred_start(allele.pos + len(allele.ref) // 2, window, chrom_length)


def allele_windows(
    allele: Allele, stretch: str, lo: int, window: int, chrom_length: int
) -> tuple[str, str]:
    """The reference and the alternate window of ``allele`` (module docstring).

    Args:
        stretch: the reference bases ``[lo, lo + len(stretch))``, covering
            :func:`flank_span` (upper case).
        lo: where ``stretch`` starts.
        window: W.
        chrom_length: L.

    Returns:
        (reference window, alternate window), W bases each (fewer on a sequence shorter
        than W).
    """
    pos, r, a = allele.pos, len(allele.ref), len(allele.alt)
    ref_start = ref_window_start(allele, window, chrom_length)
    ref_seq = stretch[ref_start - lo : ref_start - lo + window]
    haplotype = stretch[: pos - lo] + allele.alt + stretch[pos + r - lo :]
    alt_start = centred_start(pos + a // 2, window, chrom_length - r + a)
    return ref_seq, haplotype[alt_start - lo : alt_start - lo + window]
