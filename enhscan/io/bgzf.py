"""BGZF, the blocked gzip of htslib's bgzip: readable by position, unlike plain gzip, so
indexed FASTA and VCF files must use it. Telling the two apart, and what to do about it."""

from __future__ import annotations

from pathlib import Path

from enhscan.errors import EnhscanError

GZIP_MAGIC = b"\x1f\x8b"


def is_gzip(head: bytes) -> bool:
    """Whether a file starting with ``head`` is gzip-compressed (BGZF or plain)."""
    return head[:2] == GZIP_MAGIC


def check_bgzf(path: Path, head: bytes) -> None:
    """Refuse a gzip file (starting with ``head``, at least 18 bytes) not made by bgzip.

    Raises:
        EnhscanError: with the command that recompresses it.
    """
    # BGZF is gzip with an extra field 'BC' in every block header (SAM spec, section 4.1).
    is_bgzf = len(head) >= 18 and head[3] & 4 and head[12:14] == b"BC"
    if not is_bgzf:
        raise EnhscanError(
            f"{path} is gzip-compressed but not with bgzip, so it cannot be read by position; "
            f"recompress it: {_recompress_command(path)} (bgzip comes with htslib/samtools)"
        )


def _recompress_command(path: Path) -> str:
    if path.suffix == ".gz":
        return f"`gunzip {path} && bgzip {path.with_suffix('')}`"
    return f"`zcat {path} | bgzip > {path}.bgz`"
