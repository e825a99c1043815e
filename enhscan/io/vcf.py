"""Variants: read from a VCF, bgzipped VCF or BCF (with pysam) or from a plain table, and written
back as a bgzipped, tabix-indexed VCF with enhscan's INFO fields added.

Positions in VCFs and tables are 1-based (POS); every :class:`VariantRecord` holds the 0-based
position. The output keeps each input line as it was (samples, FORMAT, undeclared tags) and
adds enhscan's INFO fields and FILTER value to it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from enhscan.errors import EnhscanError
from enhscan.io.atomic import partial_path
from enhscan.io.bgzf import check_bgzf, is_gzip


@dataclass(frozen=True)
class VariantRecord:
    """One variant as read: a VCF record, or one line of a table.

    Attributes:
        chrom: the sequence, named as in the file.
        pos: 0-based position of REF's first base.
        id: the ID column (None when ``.``).
        ref: the reference allele, upper case.
        alts: the alternate alleles, upper case (symbolic ones as written); empty when ALT
            is missing (``.``).
        line: the VCF line as read, without its newline (None for a table).
        where: where it came from, for messages (``file.vcf: chr20:1,234``).
    """

    chrom: str
    pos: int
    id: str | None
    ref: str
    alts: tuple[str, ...]
    line: str | None
    where: str


@dataclass
class VariantSource:
    """An open source of variants: its records in file order, and the VCF header (None for a
    table)."""

    records: Iterator[VariantRecord]
    header: str | None


@contextmanager
def open_variants(path: str | os.PathLike) -> Iterator[VariantSource]:
    """Open a VCF / VCF.gz / BCF, or a table (``.tsv``, ``.txt``: whitespace-separated;
    ``.csv``: comma-separated; columns chrom, pos, ref, alt and optionally id, 1-based pos,
    an optional header line; several alleles ``G,T``, or ``G|T`` in a .csv).

    Raises:
        EnhscanError: a missing file, or one that is not a VCF, BCF or variant table.
    """
    path = Path(path)
    if not path.is_file():
        raise EnhscanError(f"{path} does not exist; give a VCF, BCF or chrom/pos/ref/alt table")
    name = path.name.lower().removesuffix(".gz").removesuffix(".bgz")
    if name.endswith((".tsv", ".txt", ".csv")):
        yield VariantSource(_table_records(path), None)
        return
    with open(path, "rb") as raw:
        head = raw.read(18)
    if is_gzip(head):  # htslib reads only bgzip's blocked gzip, and fails obscurely on plain
        check_bgzf(path, head)
    import pysam

    # htslib's own warnings ("[W::vcf_parse] ...") would come before enhscan's one line.
    verbosity = pysam.set_verbosity(0)
    try:
        handle = pysam.VariantFile(str(path))
    except (OSError, ValueError, NotImplementedError) as err:
        pysam.set_verbosity(verbosity)
        why = getattr(err, "strerror", None) or "htslib cannot read a VCF header in it"
        raise EnhscanError(
            f"{path} is not a VCF or BCF ({why}); give a VCF, a bgzipped VCF, a BCF, or a "
            "chrom/pos/ref/alt table (.tsv)"
        ) from None
    try:
        yield VariantSource(_vcf_records(handle, path.name), str(handle.header))
    finally:
        handle.close()
        pysam.set_verbosity(verbosity)


def _vcf_records(handle, source: str) -> Iterator[VariantRecord]:
    try:
        for rec in handle:
            yield VariantRecord(
                rec.contig,
                rec.start,
                rec.id,
                rec.ref.upper(),
                tuple(a.upper() if not a.startswith("<") else a for a in rec.alts or ()),
                str(rec).rstrip("\n"),
                f"{source}: {rec.contig}:{rec.pos:,}",
            )
    except (OSError, ValueError) as err:
        raise EnhscanError(f"{source}: cannot read a record ({err}); is the file whole?") from None


def _table_records(path: Path) -> Iterator[VariantRecord]:
    """Records of a ``chrom pos ref alt [id]`` table (tabs, commas or spaces)."""
    try:
        yield from _table_lines(path)
    except (OSError, UnicodeDecodeError, EOFError) as err:
        raise EnhscanError(
            f"{path.name} is not a readable text table ({err}); give a chrom/pos/ref/alt "
            "table (plain text or gzip) or a VCF"
        ) from None


def _table_lines(path: Path) -> Iterator[VariantRecord]:
    import gzip

    opener = gzip.open if path.suffix in (".gz", ".bgz") else open
    comma = path.name.lower().removesuffix(".gz").removesuffix(".bgz").endswith(".csv")
    first = True
    with opener(path, "rt") as handle:
        for number, raw in enumerate(handle, 1):
            fields = [f.strip() for f in raw.split(",")] if comma else raw.split()
            if not fields or not fields[0] or fields[0].startswith("#"):
                continue
            where = f"{path.name} line {number}"
            if len(fields) < 4:
                raise EnhscanError(f"{where}: need chrom, pos, ref and alt, found {len(fields)}")
            if first and fields[1].lower() in ("pos", "position", "start"):
                first = False
                continue  # a header line
            first = False
            try:
                pos = int(fields[1])
            except ValueError:
                raise EnhscanError(f"{where}: pos {fields[1]!r} is not a whole number") from None
            if pos < 1:
                raise EnhscanError(f"{where}: pos is 1-based, as in a VCF; got {pos}")
            # Several alleles: "G,T" as in a VCF ("G|T" in a .csv, whose columns are commas).
            alts = tuple(a.upper() for a in fields[3].replace("|", ",").split(",")
                         if a not in (".", ""))  # fmt: skip
            name = fields[4] if len(fields) > 4 and fields[4] != "." else None
            yield VariantRecord(fields[0], pos - 1, name, fields[2].upper(), alts, None, where)


@dataclass(frozen=True)
class InfoField:
    """An INFO field enhscan adds: ``##INFO=<ID=..., Number=..., Type=..., Description=...>``."""

    id: str
    number: str
    type: str
    description: str

    def header_line(self) -> str:
        return (
            f"##INFO=<ID={self.id},Number={self.number},Type={self.type},"
            f'Description="{self.description}">'
        )


class ScoredVcfWriter:
    """The output VCF, bgzipped, written under a temporary name; :meth:`close` indexes it with
    tabix (when its records are sorted) and renames both files into place.

    Args:
        path: the output (``.vcf.gz``).
        header: the input's VCF header, or None to write one (table input).
        contigs: ``(name, length)`` of the genome, for a header written here.
        fields: the INFO fields added, declared in the header.
        filters: ``{id: description}`` of the FILTER values added.
        meta: further ``##key=value`` lines (the command, the model).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        header: str | None,
        contigs: list[tuple[str, int]],
        fields: list[InfoField],
        filters: dict[str, str],
        meta: dict[str, str],
    ):
        import pysam

        self.path = Path(path)
        self.partial = partial_path(self.path)
        self.partial = self.partial.with_name(self.partial.name + ".vcf.gz")
        self._out = pysam.BGZFile(str(self.partial), "wb")
        # A .tbi index cannot hold positions past 2^29; a CSI index can.
        self.index_suffix = ".csi" if max((n for _, n in contigs), default=0) >= 1 << 29 else ".tbi"
        self._last: tuple[str, int] | None = None
        self._seen: set[str] = set()
        self.sorted = True
        self._out.write(_header(header, contigs, fields, filters, meta).encode())

    def write(self, record: VariantRecord, info: dict[str, str], filters: list[str]) -> None:
        """Write ``record`` with ``info`` (field id -> value text, already formatted) added and
        ``filters`` set (none: FILTER as it was)."""
        columns = (record.line or _table_line(record)).split("\t")
        # A VCF enhscan wrote before: its own fields give way to the new ones.
        old_filters = [f for f in columns[6].split(";") if not f.startswith(OUR_PREFIX)]
        old_info = [f for f in columns[7].split(";") if not f.startswith(OUR_PREFIX)]
        if filters:
            kept = [f for f in old_filters if f not in (".", "PASS")]
            columns[6] = ";".join(kept + filters)
        else:
            columns[6] = ";".join(old_filters) or "."
        added = [f"{k}={v}" for k, v in info.items()]
        columns[7] = ";".join([f for f in old_info if f != "."] + added) or "."
        self._out.write(("\t".join(columns) + "\n").encode())
        self._track_order(record.chrom, record.pos)

    def _track_order(self, chrom: str, pos: int) -> None:
        if self._last is not None and chrom == self._last[0]:
            self.sorted &= pos >= self._last[1]
        elif chrom in self._seen:
            self.sorted = False  # a sequence seen before comes back
        self._seen.add(chrom)
        self._last = (chrom, pos)

    def close(self) -> bool:
        """Finish the file, index it (if sorted) and put both in place; whether it was indexed."""
        import pysam

        self._out.close()
        index = Path(str(self.partial) + self.index_suffix)
        for stale in (".tbi", ".csi"):
            Path(str(self.path) + stale).unlink(missing_ok=True)
        if self.sorted:
            csi = self.index_suffix == ".csi"
            pysam.tabix_index(str(self.partial), preset="vcf", force=True, csi=csi)
            os.replace(index, str(self.path) + self.index_suffix)
        os.replace(self.partial, self.path)
        return self.sorted

    def abort(self) -> None:
        """Drop the unfinished file."""
        self._out.close()
        self.partial.unlink(missing_ok=True)
        for suffix in (".tbi", ".csi"):
            Path(str(self.partial) + suffix).unlink(missing_ok=True)


def _header(header, contigs, fields, filters, meta) -> str:
    if header is None:
        lines = ["##fileformat=VCFv4.2"]
        lines += [f"##contig=<ID={name},length={length}>" for name, length in contigs]
        lines.append("#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO")
    else:
        lines = [line for line in header.rstrip("\n").split("\n") if not _ours(line)]
    ours = [f.header_line() for f in fields]
    ours += [f'##FILTER=<ID={k},Description="{v}">' for k, v in filters.items()]
    ours += [f"##{k}={v}" for k, v in meta.items()]
    return "\n".join(lines[:-1] + ours + lines[-1:]) + "\n"


#: enhscan's INFO fields and FILTER values start with this.
OUR_PREFIX = "EHS_"


def _ours(line: str) -> bool:
    """A header line an earlier enhscan run added."""
    return line.startswith((f"##INFO=<ID={OUR_PREFIX}", f"##FILTER=<ID={OUR_PREFIX}", "##enhscan"))


def _table_line(record: VariantRecord) -> str:
    alts = ",".join(record.alts) or "."
    return f"{record.chrom}\t{record.pos + 1}\t{record.id or '.'}\t{record.ref}\t{alts}\t.\t.\t."
