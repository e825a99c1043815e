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
from pathlib import Path

from enhscan.errors import EnhscanError
from enhscan.training.prepare import Example

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
    text = _read_text(path, "table")
    lines = text.splitlines()
    header_index = next((i for i, line in enumerate(lines) if line.strip()), None)
    if header_index is None:
        raise EnhscanError(f"{path} is empty; give a table with a 'sequence,label' header")
    delimiter = _delimiter(path, lines[header_index])
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header: list[str] | None = None
    rows: list[tuple[int, str, str]] = []
    seq_col = label_col = 0
    for row in _rows(path, reader):
        if not any(cell.strip() for cell in row):
            continue
        if header is None:
            header = [cell.strip().lower() for cell in row]
            seq_col, label_col = _columns(path, header)
            continue
        where = f"{path} line {reader.line_num}"
        if len(row) <= max(seq_col, label_col):
            raise EnhscanError(
                f"{where}: {len(row)} column(s), but the header has {len(header)}; fix the line"
            )
        label = row[label_col].strip()
        if not label:
            raise EnhscanError(f"{where}: the label is empty; give 1/0 or a class name")
        rows.append((reader.line_num, _checked(row[seq_col], where), label))
    if not rows:
        raise EnhscanError(f"{path} has a header but no rows; add labelled sequences")
    labels = _label_values(path, [label for _, _, label in rows])
    return [
        Example(seq=seq, label=labels[label.lower()], source=f"{path} line {line}")
        for line, seq, label in rows
    ]


def read_fasta_sequences(path: str | os.PathLike, label: int) -> list[Example]:
    """Read every record of a FASTA file (plain or gzip) as one example with ``label``.

    Args:
        path: the FASTA file.
        label: 1 (enhancer) or 0 (background), given to every record.

    Returns:
        One :class:`Example` per record, in file order, with ``source`` ``"FILE NAME"``
        (NAME: the header's first word).

    Raises:
        EnhscanError: unreadable file, text before the first header, no records, or a record
            whose sequence is empty or not DNA (naming the record and line).
    """
    if label not in (0, 1):
        raise ValueError(f"label must be 0 or 1, got {label!r}")
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
        Example(
            seq=_checked("".join(parts), f"{path} record {name} (line {number})"),
            label=label,
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
    if by_suffix is not None and by_suffix in header:
        return by_suffix
    try:
        return csv.Sniffer().sniff(header, delimiters=",\t;").delimiter
    except csv.Error:
        raise EnhscanError(
            f"{path} line 1: cannot tell the column delimiter; give a CSV or tab-separated "
            "table with a 'sequence' and a 'label' column"
        ) from None


def _columns(path: Path, header: list[str]) -> tuple[int, int]:
    """Indexes of the ``sequence`` and ``label`` columns in a lower-cased header."""
    missing = [name for name in ("sequence", "label") if name not in header]
    if missing:
        raise EnhscanError(
            f"{path}: the header has no {' or '.join(repr(m) for m in missing)} column "
            f"(it has: {', '.join(header)}); name the columns 'sequence' and 'label'"
        )
    return header.index("sequence"), header.index("label")


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
