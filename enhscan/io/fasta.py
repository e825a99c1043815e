"""Reading a reference genome: FASTA (plain or bgzip, indexed with ``.fai``) and 2bit.

:func:`open_genome` checks the file, builds a missing index and returns a :class:`Genome`,
which hands out pieces of sequence, upper-cased, by 0-based half-open coordinates. Nothing
here reads a whole chromosome at once unless asked to.
"""

from __future__ import annotations

import bisect
import gzip
import logging
import os
from pathlib import Path

from enhscan.errors import EnhscanError
from enhscan.io.bgzf import check_bgzf, is_gzip

log = logging.getLogger(__name__)

_TWOBIT_MAGICS = (b"\x43\x27\x41\x1a", b"\x1a\x41\x27\x43")


class Genome:
    """A reference genome opened for reading.

    Attributes:
        path: the file it was opened from.
        lengths: sequence name -> length in bases, in file order.
    """

    def __init__(self, path: Path, lengths: dict[str, int]):
        self.path = path
        self.lengths = lengths

    @property
    def names(self) -> list[str]:
        """Sequence names in file order."""
        return list(self.lengths)

    def fetch(self, chrom: str, start: int, end: int) -> str:
        """Bases ``[start, end)`` of ``chrom``, upper-cased (soft-masking removed).

        Raises:
            EnhscanError: ``chrom`` is not in the genome or the range is not inside it.
        """
        length = self.lengths.get(chrom)
        if length is None:
            raise EnhscanError(f"{self.path} has no sequence named {chrom!r}")
        if not 0 <= start <= end <= length:
            raise EnhscanError(
                f"{chrom}:{start}-{end} is not inside {chrom} (0-{length}) in {self.path}"
            )
        if start == end:
            return ""
        return self._read(chrom, start, end)

    def _read(self, chrom: str, start: int, end: int) -> str:
        """Upper-cased bases of a valid, non-empty range."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the file handles."""

    def __enter__(self) -> Genome:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class FastaGenome(Genome):
    """A FASTA file read through its ``.fai`` index with pyfaidx (plain or bgzip)."""

    def __init__(self, path: Path, faidx):
        self._fasta = faidx
        lengths = {name: record.rlen for name, record in faidx.faidx.index.items()}
        super().__init__(path, lengths)

    def _read(self, chrom: str, start: int, end: int) -> str:
        seq = self._fasta[chrom][start:end]
        # A stale or foreign .fai makes pyfaidx return header text, line breaks or too little.
        if len(seq) != end - start or not seq.isalpha():
            raise EnhscanError(
                f"{self.path}: sequence {chrom}:{start}-{end} reads back wrong, so the FASTA index "
                f"does not match the file; delete {self._fasta.faidx.indexname} and run again "
                "(it is rebuilt), or run `samtools faidx` on the FASTA"
            )
        return seq.upper()

    def close(self) -> None:
        self._fasta.close()


class TwoBitGenome(Genome):
    """A UCSC ``.2bit`` file read with py2bit."""

    def __init__(self, path: Path):
        try:
            import py2bit
        except ImportError:
            raise EnhscanError(
                f"{path} is a .2bit file; reading it needs py2bit: `pip install py2bit` "
                "(or convert it with `twoBitToFa` and index the FASTA)"
            ) from None
        try:
            self._tb = py2bit.open(str(path))
        except RuntimeError as err:
            raise EnhscanError(f"{path}: not a readable .2bit file ({err})") from None
        super().__init__(path, dict(self._tb.chroms()))

    def _read(self, chrom: str, start: int, end: int) -> str:
        return self._tb.sequence(chrom, start, end).upper()

    def close(self) -> None:
        self._tb.close()


def open_genome(path: str | os.PathLike, index_dir: str | os.PathLike | None = None) -> Genome:
    """Open a reference genome for reading.

    Args:
        path: FASTA (plain or bgzip-compressed) or ``.2bit``.
        index_dir: where to write a missing ``.fai`` (and ``.gzi``) when the FASTA's own folder
            is read-only. The index lives next to the FASTA whenever it can.

    Raises:
        EnhscanError: the file is missing, unreadable, not a FASTA, plain-gzip compressed,
            empty, has duplicate sequence names, or its ``.fai`` does not match it.
    """
    path = Path(path)
    if not path.exists():
        raise EnhscanError(f"genome file {path} does not exist; check the path")
    if not path.is_file():
        raise EnhscanError(f"genome file {path} is not a file; give a FASTA or .2bit file")
    try:
        with open(path, "rb") as handle:
            head = handle.read(4096)
    except OSError as err:
        raise EnhscanError(f"cannot read genome file {path}: {err.strerror}") from None
    if head[:4] in _TWOBIT_MAGICS:
        genome: Genome = TwoBitGenome(path)
    else:
        bgzf = is_gzip(head)
        if bgzf:
            check_bgzf(path, head)
            with gzip.open(path, "rb") as handle:
                head = handle.read(4096)
        _check_fasta_head(path, head)
        genome = FastaGenome(path, _open_faidx(path, bgzf, index_dir))
    if not any(genome.lengths.values()):
        genome.close()
        raise EnhscanError(f"{path} holds no sequences; give a FASTA with at least one record")
    return genome


def _check_fasta_head(path: Path, head: bytes) -> None:
    text = head.lstrip()
    if not text:
        raise EnhscanError(f"{path} is empty; give a FASTA with at least one record")
    if text[:1] != b">":
        raise EnhscanError(
            f"{path} is not a FASTA file (it does not start with a '>' header line); "
            "give a FASTA or .2bit genome"
        )


def _index_paths(path: Path, bgzf: bool, index_dir: str | os.PathLike | None) -> tuple[Path, Path]:
    """Where the .fai/.gzi are or will be: next to the FASTA if possible, else in index_dir."""
    fai, gzi = Path(f"{path}.fai"), Path(f"{path}.gzi")
    needed = [fai, gzi] if bgzf else [fai]
    # An index older than the FASTA is rebuilt, so it counts as missing.
    current = all(p.exists() and p.stat().st_mtime >= path.stat().st_mtime for p in needed)
    if current or _writable(path.parent):
        return fai, gzi
    if index_dir is None:
        raise EnhscanError(
            f"{path} has no index and its folder is read-only; index it with `samtools faidx "
            f"{path}` where you can write, or give an output folder for the index"
        )
    index_dir = Path(index_dir)
    index_dir.mkdir(parents=True, exist_ok=True)
    log.info("FASTA folder is read-only: indexing %s into %s", path, index_dir)
    return index_dir / fai.name, index_dir / gzi.name


def _writable(folder: Path) -> bool:
    # os.access says yes to root everywhere; honour the folder's mode bits as a person would.
    if not os.access(folder, os.W_OK):
        return False
    return os.geteuid() != 0 or bool(folder.stat().st_mode & 0o222)


def _open_faidx(path: Path, bgzf: bool, index_dir: str | os.PathLike | None):
    fai, gzi = _index_paths(path, bgzf, index_dir)
    # Index files this call creates are removed again if the FASTA turns out to be broken.
    created = [p for p in (fai, gzi) if not p.exists()]
    try:
        return _open_indexed(path, bgzf, fai, gzi)
    except EnhscanError:
        for p in created:
            p.unlink(missing_ok=True)
        raise


def _open_indexed(path: Path, bgzf: bool, fai: Path, gzi: Path):
    import pyfaidx

    if not fai.exists():
        log.info("building FASTA index %s", fai)
    elif fai.stat().st_mtime < path.stat().st_mtime:
        log.warning("%s is older than the FASTA; rebuilding it", fai)
    try:
        fasta = pyfaidx.Fasta(
            str(path),
            indexname=str(fai),
            gzi_indexname=str(gzi) if bgzf else None,
            as_raw=True,
            sequence_always_upper=False,
            duplicate_action="stop",
        )
    except ValueError as err:
        if "Duplicate key" in str(err):
            name = str(err).split('"')[1] if '"' in str(err) else str(err)
            raise EnhscanError(
                f"{path} has more than one sequence named {name}; rename them so each name is "
                "unique"
            ) from None
        raise EnhscanError(f"{path}: cannot read the FASTA: {err}") from None
    except (pyfaidx.FastaIndexingError, pyfaidx.IndexNotFoundError) as err:
        raise EnhscanError(
            f"{path} is not a well-formed FASTA: {err} (an indexed FASTA needs every line of a "
            "sequence the same length but its last; rewrap it, e.g. `seqkit seq -w 60`)"
        ) from None
    except ImportError:
        raise EnhscanError(
            f"{path} is bgzip-compressed; reading it needs biopython: `pip install biopython`"
        ) from None
    except OSError as err:
        raise EnhscanError(f"cannot read or index {path}: {err}") from None
    _check_index_matches(path, fasta)
    return fasta


def _check_index_matches(path: Path, fasta) -> None:
    """Check that every .fai record starts just past a header line naming it, and ends just
    before the next header (or the end of the file).

    Catches an index left over from another version of the file, which would otherwise give
    wrong sequence silently. Reads a few bytes per record.
    """
    faidx = fasta.faidx
    for name, record in faidx.index.items():
        tail = _read_uncompressed(faidx, max(record.bend - 1, 0), record.bend + 1)
        ends_right = tail[1:2] in (b"", b">", b"\n", b"\r") and (
            tail[:1] in (b"\n", b"\r") or tail[1:2] == b""
        )
        before = _read_uncompressed(faidx, max(record.offset - 1024, 0), record.offset)
        lines = before.split(b"\n")
        header = lines[-2] if len(lines) >= 2 else b""
        ok = before.endswith(b"\n") and (
            len(lines) < 2 or header.rstrip(b"\r").split()[:1] == [b">" + name.encode()]
        )
        if record.offset > 1024 and len(lines) == 2:
            ok = before.endswith(b"\n")  # header longer than we looked at: trust the newline
        if not (ok and ends_right):
            raise EnhscanError(
                f"the index {faidx.indexname} does not match {path} (record {name}); delete the "
                "index and run again (it is rebuilt), or run `samtools faidx` on the FASTA"
            )


def _read_uncompressed(faidx, start: int, end: int) -> bytes:
    """Bytes ``[start, end)`` of the uncompressed FASTA text (plain or bgzip)."""
    if not faidx._bgzf:
        faidx.file.seek(start)
        return faidx.file.read(end - start)
    from Bio import bgzf

    # The .gzi maps uncompressed offsets to block starts; BGZF blocks hold < 64 KiB each.
    blocks = faidx.gzi_index
    i = max(bisect.bisect_right([b.ustart for b in blocks], start) - 1, 0)
    block = blocks[i]
    faidx.file.seek(bgzf.make_virtual_offset(block.cstart, start - block.ustart))
    return faidx.file.read(end - start)


class CombinedGenome(Genome):
    """Several genome files read as one (e.g. one FASTA per chromosome)."""

    def __init__(self, parts: list[Genome]):
        self._parts = parts
        self._owner: dict[str, Genome] = {}
        lengths: dict[str, int] = {}
        for part in parts:
            for name, length in part.lengths.items():
                if name in lengths:
                    raise EnhscanError(
                        f"sequence {name} is in both {self._owner[name].path} and {part.path}; "
                        "give each sequence once"
                    )
                lengths[name] = length
                self._owner[name] = part
        super().__init__(Path(" + ".join(str(p.path) for p in parts)), lengths)

    def _read(self, chrom: str, start: int, end: int) -> str:
        return self._owner[chrom].fetch(chrom, start, end)

    def close(self) -> None:
        for part in self._parts:
            part.close()


def open_genomes(
    paths: list[str | os.PathLike], index_dir: str | os.PathLike | None = None
) -> Genome:
    """Open one or several genome files as one :class:`Genome` (see :func:`open_genome`)."""
    if len(paths) == 1:
        return open_genome(paths[0], index_dir)
    parts: list[Genome] = []
    try:
        for path in paths:
            parts.append(open_genome(path, index_dir))
        return CombinedGenome(parts)
    except BaseException:
        for part in parts:
            part.close()
        raise
