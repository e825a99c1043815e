"""Peak files (BED or ENCODE narrowPeak): the enhancer intervals ``enhscan train`` learns from.

Coordinates are 0-based and half-open, as everywhere in enhscan. Chromosome names are
reconciled with the genome's (``chr20`` in the file finds ``20`` in the FASTA) and every
:class:`Peak` carries the genome's name.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from enhscan.errors import EnhscanError
from enhscan.io.bed import BedRecord, iter_bed
from enhscan.naming import match_chrom

# How many names an error message lists before it says "and N more".
_MAX_NAMES = 5

_INT_LIST = re.compile(r"^\d+(,\d+)*,?$")


@dataclass(frozen=True)
class Peak:
    """One peak, on the genome's chromosome names.

    Attributes:
        chrom: the genome's name for the chromosome (not necessarily the file's).
        start, end: the interval, 0-based half-open.
        summit: absolute 0-based position of the summit, ``start <= summit < end``.
        name: column 4 of the line, or ``""``.
        where: ``"FILE line N"``, for messages and provenance.
    """

    chrom: str
    start: int
    end: int
    summit: int
    name: str
    where: str


def read_peaks(
    path: str | os.PathLike,
    chrom_lengths: dict[str, int],
    *,
    genome_name: str = "the genome",
) -> list[Peak]:
    """Read a BED (3+ columns) or narrowPeak file, in file order.

    The summit is ``start + column 10`` when a line has at least 10 columns and column 10 is a
    whole number >= 0 (narrowPeak; ``-1`` there means "no summit"); otherwise it is the
    centre, ``(start + end) // 2``. BED12 lines (whose column 10 is a block count) use the
    centre too.

    Args:
        path: the peak file (plain or gzip).
        chrom_lengths: the genome's chromosome name -> length, to match names and check bounds.
        genome_name: how messages call the genome (e.g. its file name).

    Raises:
        EnhscanError: an unreadable or malformed line, chromosomes the genome lacks, an interval
            past its chromosome's end, a summit outside its peak, or no intervals at all.
    """
    peaks: list[Peak] = []
    missing: list[str] = []
    matched: dict[str, str] = {}
    for record in iter_bed(path):
        chrom = match_chrom(record.chrom, chrom_lengths)
        if chrom is None:
            if record.chrom not in missing:
                missing.append(record.chrom)
            continue
        matched.setdefault(record.chrom, chrom)
        length = chrom_lengths[chrom]
        if record.end > length:
            raise EnhscanError(
                f"{record.where}: {record.chrom}:{record.start}-{record.end} runs past the end "
                f"of {chrom} ({length:,} bp) in {genome_name}; check the peaks are for this "
                "genome assembly"
            )
        name = record.fields[3] if len(record.fields) > 3 else ""
        peaks.append(Peak(chrom, record.start, record.end, _summit(record), name, record.where))
    if missing:
        raise EnhscanError(_missing_message(Path(path), missing, matched, genome_name))
    if not peaks:
        raise EnhscanError(f"{path} holds no intervals; give a BED or narrowPeak file with peaks")
    return peaks


def _summit(record: BedRecord) -> int:
    """The absolute summit of a record: narrowPeak column 10 if given, else the centre."""
    fields = record.fields
    centre = (record.start + record.end) // 2
    if len(fields) < 10 or _looks_like_bed12(fields):
        return centre
    try:
        offset = int(fields[9])
    except ValueError:
        return centre
    if offset < 0:
        return centre
    summit = record.start + offset
    if summit >= record.end:
        raise EnhscanError(
            f"{record.where}: the summit offset (column 10) is {offset}, outside the peak "
            f"{record.start}-{record.end} ({record.end - record.start} bp); fix the line or "
            "set column 10 to -1 to use the centre"
        )
    return summit


def _looks_like_bed12(fields: list[str]) -> bool:
    """True for a BED12 line: columns 11 and 12 are comma-separated block sizes and starts."""
    return len(fields) >= 12 and all(_INT_LIST.match(f) for f in fields[10:12])


def _missing_message(
    path: Path, missing: list[str], matched: dict[str, str], genome_name: str
) -> str:
    names = _name_list(missing)
    pairs = [a if a == b else f"{a} -> {b}" for a, b in matched.items()]
    found = _name_list(pairs) if pairs else "none"
    noun = "chromosome" if len(missing) == 1 else "chromosomes"
    verb = "is" if len(missing) == 1 else "are"
    return (
        f"{path}: {noun} {names} {verb} not in {genome_name} (matched: {found}); "
        "use a BED for this assembly, or remove the lines on other chromosomes"
    )


def _name_list(names: list[str]) -> str:
    shown = ", ".join(names[:_MAX_NAMES])
    if len(names) > _MAX_NAMES:
        shown += f" and {len(names) - _MAX_NAMES} more"
    return shown
