"""BED files: reading intervals (``--regions``, ``--exclude``) and writing calls (narrowPeak).

BED coordinates are 0-based and half-open, as everywhere in enhscan. Chromosome names are
matched to the genome's with :func:`enhscan.naming.match_chrom`, so ``chr20`` in a BED file
finds ``20`` in the FASTA and the other way round.
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from enhscan.calling import Call
from enhscan.errors import EnhscanError
from enhscan.intervals import Interval, merge
from enhscan.naming import match_chrom


@dataclass
class BedIntervals:
    """Intervals read from a BED file, keyed by the genome's chromosome names.

    Attributes:
        by_chrom: genome chromosome name -> merged, sorted intervals.
        unmatched: chromosome names in the file that the genome does not have -> line count.
        clipped: how many intervals reached past a chromosome end and were cut to it.
    """

    by_chrom: dict[str, list[Interval]] = field(default_factory=dict)
    unmatched: dict[str, int] = field(default_factory=dict)
    clipped: int = 0

    @property
    def count(self) -> int:
        return sum(len(v) for v in self.by_chrom.values())


def _open_text(path: Path):
    with open(path, "rb") as handle:
        gzipped = handle.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rt") if gzipped else open(path)


@dataclass(frozen=True)
class BedRecord:
    """One data line of a BED file.

    Attributes:
        line: 1-based line number, for messages.
        chrom: the chromosome name as written in the file.
        start, end: the interval, 0-based half-open, checked ``0 <= start < end``.
        fields: all columns of the line (stripped), for formats with more than three.
        where: ``"FILE line N"``, to start an error message with.
    """

    line: int
    chrom: str
    start: int
    end: int
    fields: list[str]
    where: str


def iter_bed(path: str | os.PathLike) -> Iterator[BedRecord]:
    """The data lines of a BED file (plain or gzip), checked.

    ``track``, ``browser``, ``#`` and blank lines are skipped.

    Raises:
        EnhscanError: unreadable file, or a line that is not ``chrom start end`` with
            ``0 <= start < end`` (the message names the file and line).
    """
    path = Path(path)
    try:
        handle = _open_text(path)
    except OSError as err:
        raise EnhscanError(f"cannot read BED file {path}: {err.strerror or err}") from None
    with handle:
        try:
            lines = list(enumerate(handle, start=1))
        except (OSError, EOFError, UnicodeDecodeError, zlib.error) as err:
            raise EnhscanError(f"{path} is not a readable text BED file ({err})") from None
    for number, line in lines:
        if not line.strip() or line.startswith(("#", "track", "browser")):
            continue
        fields = [f.strip() for f in (line.split("\t") if "\t" in line else line.split())]
        where = f"{path} line {number}"
        if len(fields) < 3:
            raise EnhscanError(f"{where}: expected 'chrom<TAB>start<TAB>end', got {line.strip()!r}")
        try:
            start, end = int(fields[1]), int(fields[2])
        except ValueError:
            raise EnhscanError(
                f"{where}: start and end must be whole numbers, got {fields[1]!r} and {fields[2]!r}"
            ) from None
        if start < 0 or end <= start:
            raise EnhscanError(
                f"{where}: need 0 <= start < end (0-based, half-open), got {start} and {end}"
            )
        yield BedRecord(number, fields[0], start, end, fields, where)


def read_bed(
    path: str | os.PathLike,
    chrom_lengths: dict[str, int],
    *,
    clip: bool = False,
) -> BedIntervals:
    """Read the intervals (first three columns) of a BED file, merged per chromosome.

    Intervals on chromosomes the genome lacks are counted in ``unmatched``, not returned.

    Args:
        path: the BED file (plain or gzip).
        chrom_lengths: the genome's chromosome lengths, to match names and check bounds.
        clip: cut intervals that reach past a chromosome end (for blacklists made for a whole
            chromosome when the genome holds only part of it); otherwise such a line is an error.

    Raises:
        EnhscanError: as :func:`iter_bed`, or an interval past its chromosome's end.
    """
    result = BedIntervals()
    raw: dict[str, list[Interval]] = {}
    for record in iter_bed(path):
        start, end = record.start, record.end
        chrom = match_chrom(record.chrom, chrom_lengths)
        if chrom is None:
            result.unmatched[record.chrom] = result.unmatched.get(record.chrom, 0) + 1
            continue
        length = chrom_lengths[chrom]
        if end > length:
            if not clip:
                raise EnhscanError(
                    f"{record.where}: {record.chrom}:{start}-{end} runs past the end of {chrom} "
                    f"({length:,} bp); check the BED is for this genome assembly"
                )
            result.clipped += 1
            if start >= length:
                continue
            end = length
        raw.setdefault(chrom, []).append((start, end))
    result.by_chrom = {chrom: merge(ivs) for chrom, ivs in raw.items()}
    return result


def format_narrowpeak(
    chrom: str,
    calls: Sequence[Call],
    significance: Sequence[tuple[float, float]] | None = None,
    first_index: int = 1,
) -> str:
    """Calls of one chromosome as narrowPeak lines (BED6+4).

    Columns: chrom, start, end, name (``enhscan_N``), score (``round(1000 * max prob)``), strand
    ``.``, signalValue (max window probability), pValue and qValue (-log10 p and -log10 q of
    the best window, from ``significance``, one pair per call; ``-1`` without), peak (summit
    offset from start).
    """
    lines = []
    for i, call in enumerate(calls):
        score = min(1000, max(0, round(1000 * call.max_score)))
        p, q = significance[i] if significance is not None else (-1.0, -1.0)
        lines.append(
            f"{chrom}\t{call.start}\t{call.end}\tenhscan_{first_index + i}\t{score}\t.\t"
            f"{call.max_score:.6f}\t{_log10_text(p)}\t{_log10_text(q)}\t"
            f"{call.summit - call.start}\n"
        )
    return "".join(lines)


@dataclass(frozen=True)
class CallLine:
    """One line of a calls file :func:`format_narrowpeak` wrote.

    Attributes:
        chrom, start, end: the call (0-based, half-open).
        signal: the best window's enhancer probability (column 7).
        rest: columns 4 onwards as written (name, score, strand, signalValue, pValue, qValue,
            peak), tab-joined.
    """

    chrom: str
    start: int
    end: int
    signal: float
    rest: str


def read_calls(path: str | os.PathLike) -> Iterator[CallLine]:
    """The calls of an enhscan ``calls.narrowPeak``, in file order."""
    with open(path) as handle:
        for line in handle:
            chrom, start, end, *rest = line.rstrip("\n").split("\t")
            yield CallLine(chrom, int(start), int(end), float(rest[3]), "\t".join(rest))


def _log10_text(value: float) -> str:
    # -log10(1) is -0.0; adding 0.0 writes it as 0.
    return "-1" if value < 0 else f"{value + 0.0:.5f}"
