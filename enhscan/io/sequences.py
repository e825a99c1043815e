"""Ready-made labelled sequences, for training without a genome: CSV/TSV tables and FASTA files.

Sequences are upper-cased and checked: only A, C, G, T, N and the other IUPAC codes
(R Y S W K M B D H V) are accepted. Examples read here have no chromosome or start.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

from enhscan.errors import EnhscanError


@dataclass(frozen=True)
class Example:
    """One labelled training sequence (coordinates 0-based, half-open).

    Attributes:
        seq: upper-case DNA of the window.
        label: 1 = enhancer, 0 = background.
        chrom: the genome's chromosome name (None for ready-made sequences).
        start: window start on ``chrom``, 0-based (None for ready-made sequences).
        source: where it came from, e.g. ``"peaks.bed line 12"``, ``"background"``,
            ``"seqs.csv line 5"``.
    """

    seq: str
    label: int
    chrom: str | None = None
    start: int | None = None
    source: str = ""


_NOT_DNA = re.compile(r"[^ACGTNRYSWKMBDHV]")
_TRUE = {"1", "1.0", "true"}
_FALSE = {"0", "0.0", "false"}
_POSITIVE_WORDS = {"enhancer", "enhancers", "positive", "pos", "yes"}
_DELIMITER_BY_SUFFIX = {".csv": ",", ".tsv": "\t", ".txt": "\t"}


def read_labelled_table(path: str | os.PathLike) -> list[Example]:
    """Read a CSV or TSV table (plain or gzip) with ``sequence`` and ``label`` columns.

    The delimiter comes from the extension (``.csv``; ``.tsv`` and ``.txt`` are tab), looking
    through a ``.gz``; otherwise, or when the header has no such delimiter, it is sniffed.
    Column names are matched case-insensitively; other columns are ignored. Labels are
    ``1``/``0`` (or ``true``/``false``), or exactly two distinct words of which one is
    ``enhancer``, ``positive``, ``pos`` or ``yes`` (label 1) and the other anything (label 0).

    Returns:
        One :class:`Example` per data row, in file order, with ``source`` ``"FILE line N"``.

    Raises:
        EnhscanError: unreadable file, missing columns, no rows, an empty or non-DNA sequence
            (naming the line), or labels that are not two classes.
    """
    path = Path(path)
    rows = _table_rows(path, ("sequence", "label"), "a 'sequence,label' header")
    for where, row in rows:
        if not row["label"].strip():
            raise EnhscanError(f"{where}: the label is empty; give 1/0 or a class name")
    labels = _label_values(path, [row["label"].strip() for _, row in rows])
    return [
        Example(
            seq=_checked(row["sequence"], where),
            label=labels[row["label"].strip().lower()],
            source=where,
        )
        for where, row in rows
    ]


@dataclass(frozen=True)
class NamedSequence:
    """A sequence to score, with the name it goes by.

    Attributes:
        name: FASTA record name, or the table's ``id`` / ``name`` column, or ``line N``.
        seq: upper-case DNA.
        source: ``"FILE line N"`` or ``"FILE NAME"``, for messages.
    """

    name: str
    seq: str
    source: str


def read_sequence_table(path: str | os.PathLike) -> list[NamedSequence]:
    """Read a CSV or TSV table (plain or gzip) with a ``sequence`` column, and optionally an
    ``id`` or ``name`` column; other columns (a label, say) are ignored. Delimiters as for
    :func:`read_labelled_table`.

    Raises:
        EnhscanError: unreadable file, no ``sequence`` column, no rows, or an empty or
            non-DNA sequence (naming the line).
    """
    path = Path(path)
    rows = _table_rows(path, ("sequence",), "a 'sequence' column")
    out = []
    for where, row in rows:
        given = (row.get("id") or row.get("name") or "").strip()
        name = given or f"line{where.rsplit(' ', 1)[-1]}"
        out.append(NamedSequence(name, _checked(row["sequence"], where), where))
    return out


def _table_rows(path: Path, required: tuple[str, ...], wanted: str) -> list[tuple[str, dict]]:
    """The data rows of a table as (``"FILE line N"``, {lower-cased column: cell})."""
    text = _read_text(path, "table")
    lines = text.splitlines()
    header_index = next((i for i, line in enumerate(lines) if line.strip()), None)
    if header_index is None:
        raise EnhscanError(f"{path} is empty; give a table with {wanted}")
    delimiter = _delimiter(path, lines[header_index])
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header: list[str] | None = None
    rows: list[tuple[str, dict]] = []
    for row in _rows(path, reader):
        if not any(cell.strip() for cell in row):
            continue
        if header is None:
            header = [cell.strip().lower() for cell in row]
            _check_columns(path, header, required)
            continue
        where = f"{path} line {reader.line_num}"
        if len(row) <= max(header.index(c) for c in required):
            raise EnhscanError(
                f"{where}: {len(row)} column(s), but the header has {len(header)}; fix the line"
            )
        rows.append((where, dict(zip(header, row, strict=False))))
    if not rows:
        raise EnhscanError(f"{path} has a header but no rows; add sequences")
    return rows


def read_fasta_sequences(path: str | os.PathLike, label: int) -> list[Example]:
    """Read every record of a FASTA file (plain or gzip) as one example with ``label``.

    Args:
        path: the FASTA file.
        label: 1 (enhancer) or 0 (background), given to every record.

    Returns:
        One :class:`Example` per record, in file order, with ``source`` ``"FILE NAME"``
        (NAME: the header's first word).

    Raises:
        EnhscanError: see :func:`read_fasta_records`.
    """
    if label not in (0, 1):
        raise ValueError(f"label must be 0 or 1, got {label!r}")
    return [Example(seq=r.seq, label=label, source=r.source) for r in read_fasta_records(path)]


def read_fasta_records(path: str | os.PathLike) -> list[NamedSequence]:
    """Every record of a FASTA file (plain or gzip), in file order, named by the header's first
    word, with ``source`` ``"FILE NAME"``.

    Raises:
        EnhscanError: unreadable file, text before the first header, no records, or a record
            whose sequence is empty or not DNA (naming the record and line).
    """
    path = Path(path)
    records: list[tuple[str, int, list[str]]] = []
    for number, line in enumerate(_read_text(path, "FASTA").splitlines(), start=1):
        if line.startswith(">"):
            words = line[1:].split()
            name = words[0] if words else f"record{len(records) + 1}"
            records.append((name, number, []))
        elif line.strip():
            if not records:
                raise EnhscanError(
                    f"{path} line {number}: text before the first '>' header; give a FASTA file"
                )
            records[-1][2].append("".join(line.split()))
    if not records:
        raise EnhscanError(f"{path} holds no sequences; give a FASTA with at least one record")
    return [
        NamedSequence(
            name=name,
            seq=_checked("".join(parts), f"{path} record {name} (line {number})"),
            source=f"{path} {name}",
        )
        for name, number, parts in records
    ]


def _read_text(path: Path, what: str) -> str:
    """The whole file as text, gunzipped if it starts with the gzip magic."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as err:
        raise EnhscanError(f"cannot read {what} file {path}: {err.strerror or err}") from None
    try:
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        return data.decode("utf-8-sig")
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as err:
        raise EnhscanError(f"{path} is not a readable text {what} file ({err})") from None


def _rows(path: Path, reader):
    """The rows of a csv reader, with csv errors (bad quoting, huge fields) as EnhscanError."""
    try:
        yield from reader
    except csv.Error as err:
        raise EnhscanError(
            f"{path} line {reader.line_num}: not a well-formed table ({err}); fix the line"
        ) from None


def _delimiter(path: Path, header: str) -> str:
    """The column delimiter: from the extension if the header uses it, else sniffed."""
    name = path.name.lower()
    for compressed in (".gz", ".bgz"):
        name = name.removesuffix(compressed)
    by_suffix = _DELIMITER_BY_SUFFIX.get(Path(name).suffix)
    single_column = not any(d in header for d in ",\t;")
    if by_suffix is not None and (by_suffix in header or single_column):
        return by_suffix
    try:
        return csv.Sniffer().sniff(header, delimiters=",\t;").delimiter
    except csv.Error:
        raise EnhscanError(
            f"{path} line 1: cannot tell the column delimiter; give a CSV (.csv) or "
            "tab-separated (.tsv) table with a header row"
        ) from None


def _check_columns(path: Path, header: list[str], required: tuple[str, ...]) -> None:
    missing = [name for name in required if name not in header]
    if missing:
        if any(len(name) > 40 for name in header):  # a sequence, not a column name
            has = "its first line looks like data, not a header"
        else:
            has = f"it has: {', '.join(header)}"
        raise EnhscanError(
            f"{path}: the header has no {' or '.join(repr(m) for m in missing)} column "
            f"({has}); name the columns {' and '.join(map(repr, required))}"
        )


def _checked(raw: str, where: str) -> str:
    """``raw`` stripped and upper-cased, after checking it is a non-empty DNA sequence."""
    seq = raw.strip().upper()
    if not seq:
        raise EnhscanError(f"{where}: empty sequence; remove it or give its bases")
    bad = _NOT_DNA.search(seq)
    if bad:
        raise EnhscanError(
            f"{where}: {bad.group()!r} at offset {bad.start()} is not a DNA base (A, C, G, T, N "
            "or an IUPAC code); fix or remove this sequence"
        )
    return seq


def _label_values(path: Path, labels: list[str]) -> dict[str, int]:
    """Map each lower-cased label to 1 (enhancer) or 0, checking there are exactly two classes."""
    distinct = sorted({label.lower() for label in labels})
    if all(value in _TRUE | _FALSE for value in distinct):
        mapping = {value: int(value in _TRUE) for value in distinct}
    elif len(distinct) == 2 and sum(value in _POSITIVE_WORDS for value in distinct) == 1:
        mapping = {value: int(value in _POSITIVE_WORDS) for value in distinct}
    else:
        mapping = {}
    if len(set(mapping.values())) != 2:
        found = ", ".join(distinct[:6]) + (" ..." if len(distinct) > 6 else "")
        raise EnhscanError(
            f"{path}: labels must be two classes, 1/0 or a word such as 'enhancer' or "
            f"'positive' and one other word; found {len(distinct)} ({found})"
        )
    return mapping
