"""Tests for enhscan.io.fasta: opening FASTA (plain, bgzip) and 2bit genomes, and fetching."""

from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path

import pytest
from Bio import bgzf
from hypothesis import given, settings
from hypothesis import strategies as st

from enhscan.errors import EnhscanError
from enhscan.io.fasta import Genome, open_genome

DATA = Path(__file__).parent / "data"
MINI = DATA / "mini.fa"
SHARED_GENOMES = Path("/work/shared/data/genomes")
YEAST_2BIT = SHARED_GENOMES / "yeast_R64-1-1.2bit"
YEAST_FA = SHARED_GENOMES / "yeast_R64-1-1.fa.gz"

MINI_LENGTHS = {"chr2": 60_000, "chr22_32000000": 30_500, "yeastI_0_700": 700}

# (chrom, start, end): line breaks, the N/sequence edge, soft-masked stretches, last partial lines.
RANGES = [
    ("chr2", 0, 10),
    ("chr2", 0, 60),
    ("chr2", 59, 61),  # across the first line break (60 bases a line)
    ("chr2", 9_990, 10_010),  # end of the 10 kb N run
    ("chr2", 10_000, 12_000),  # many lines, soft-masked bases
    ("chr2", 30_001, 30_119),
    ("chr2", 59_950, 60_000),  # last line
    ("chr2", 0, 60_000),
    ("chr22_32000000", 0, 70),
    ("chr22_32000000", 69, 71),  # across a line break (70 bases a line)
    ("chr22_32000000", 4_000, 5_000),
    ("chr22_32000000", 30_440, 30_500),  # into the last, partial line (50 bases)
    ("chr22_32000000", 30_499, 30_500),
    ("chr22_32000000", 0, 30_500),
    ("yeastI_0_700", 0, 700),
    ("yeastI_0_700", 655, 700),  # last, partial line (40 bases)
    ("yeastI_0_700", 119, 121),
]


def _parse_fasta(text: str) -> dict[str, str]:
    seqs: dict[str, list[str]] = {}
    name = None
    for line in text.splitlines():
        if line.startswith(">"):
            name = line[1:].split()[0]
            seqs[name] = []
        elif line.strip():
            seqs[name].append(line.strip())
    return {k: "".join(v) for k, v in seqs.items()}


MINI_TEXT = MINI.read_text()
RAW = _parse_fasta(MINI_TEXT)


def _write_bgzf(path: Path, data: bytes) -> Path:
    writer = bgzf.BgzfWriter(str(path), "wb")
    writer.write(data)
    writer.close()
    return path


def _set_mtime(path: Path, reference: Path, delta: float) -> None:
    t = reference.stat().st_mtime + delta
    os.utime(path, (t, t))


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir()}


def _open_and_fetch_all(path: Path, **kwargs) -> None:
    with open_genome(path, **kwargs) as genome:
        for name, length in genome.lengths.items():
            genome.fetch(name, 0, length)
            genome.fetch(name, length // 2, length)


@pytest.fixture
def plain_fa(tmp_path: Path) -> Path:
    folder = tmp_path / "genome"
    folder.mkdir(exist_ok=True)
    return Path(shutil.copy(MINI, folder / "mini.fa"))


@pytest.fixture
def bgzf_fa(tmp_path: Path) -> Path:
    folder = tmp_path / "genome"
    folder.mkdir(exist_ok=True)
    return _write_bgzf(folder / "mini.fa.gz", MINI_TEXT.encode())


@pytest.fixture
def read_only(tmp_path: Path):
    """A folder with mini.fa (plain) and mini.fa.gz (bgzip), no index, mode 0o555."""
    folder = tmp_path / "ro"
    folder.mkdir()
    shutil.copy(MINI, folder / "mini.fa")
    _write_bgzf(folder / "mini.fa.gz", MINI_TEXT.encode())
    folder.chmod(0o555)
    try:
        yield folder
    finally:
        folder.chmod(0o755)


def test_test_data_is_as_documented():
    assert {k: len(v) for k, v in RAW.items()} == MINI_LENGTHS
    assert any(c.islower() for c in RAW["chr2"])  # soft-masked
    assert RAW["chr2"][:10_000] == "N" * 10_000


# --- plain FASTA -----------------------------------------------------------------------------


def test_plain_lengths_and_names_in_file_order(plain_fa: Path):
    with open_genome(plain_fa) as genome:
        assert isinstance(genome, Genome)
        assert list(genome.lengths.items()) == list(MINI_LENGTHS.items())
        assert genome.names == list(MINI_LENGTHS)
        assert genome.path == plain_fa


def test_plain_builds_missing_fai_next_to_fasta(plain_fa: Path):
    fai = Path(f"{plain_fa}.fai")
    assert not fai.exists()
    with open_genome(plain_fa):
        pass
    assert fai.exists()
    lines = [line.split("\t") for line in fai.read_text().splitlines()]
    assert [(f[0], int(f[1])) for f in lines] == list(MINI_LENGTHS.items())
    # A second open reuses it.
    mtime = fai.stat().st_mtime_ns
    with open_genome(str(plain_fa)) as genome:
        assert genome.lengths == MINI_LENGTHS
    assert fai.stat().st_mtime_ns == mtime


@pytest.mark.parametrize(("chrom", "start", "end"), RANGES)
def test_plain_fetch_matches_raw_upper(plain_fa: Path, chrom: str, start: int, end: int):
    with open_genome(plain_fa) as genome:
        seq = genome.fetch(chrom, start, end)
    assert seq == RAW[chrom][start:end].upper()
    assert seq.isupper() or set(seq) <= {"N"}
    assert len(seq) == end - start


def test_plain_fetch_removes_soft_masking(plain_fa: Path):
    raw = RAW["chr2"]
    first_lower = next(i for i, c in enumerate(raw) if c.islower())
    with open_genome(plain_fa) as genome:
        seq = genome.fetch("chr2", first_lower, first_lower + 500)
    assert raw[first_lower].islower()
    assert not any(c.islower() for c in seq)
    assert seq == raw[first_lower : first_lower + 500].upper()


@pytest.fixture(scope="module")
def shared_plain_genome(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hyp")
    genome = open_genome(shutil.copy(MINI, folder / "mini.fa"))
    yield genome
    genome.close()


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_plain_fetch_random_ranges(shared_plain_genome, data):
    chrom = data.draw(st.sampled_from(sorted(MINI_LENGTHS)))
    length = MINI_LENGTHS[chrom]
    start = data.draw(st.integers(0, length - 1))
    end = data.draw(st.integers(start + 1, min(length, start + 3000)))
    assert shared_plain_genome.fetch(chrom, start, end) == RAW[chrom][start:end].upper()


# --- bgzip FASTA -----------------------------------------------------------------------------


def test_bgzf_builds_fai_and_gzi(bgzf_fa: Path):
    fai, gzi = Path(f"{bgzf_fa}.fai"), Path(f"{bgzf_fa}.gzi")
    assert not fai.exists() and not gzi.exists()
    with open_genome(bgzf_fa) as genome:
        assert list(genome.lengths.items()) == list(MINI_LENGTHS.items())
        assert genome.names == list(MINI_LENGTHS)
    assert fai.exists() and gzi.exists()
    assert sorted(p.name for p in bgzf_fa.parent.iterdir()) == [
        "mini.fa.gz",
        "mini.fa.gz.fai",
        "mini.fa.gz.gzi",
    ]


def test_bgzf_rebuilds_missing_gzi(bgzf_fa: Path):
    with open_genome(bgzf_fa):
        pass
    gzi = Path(f"{bgzf_fa}.gzi")
    gzi.unlink()
    with open_genome(bgzf_fa) as genome:
        assert genome.fetch("chr22_32000000", 0, 30_500) == RAW["chr22_32000000"].upper()
    assert gzi.exists()


def test_bgzf_fetch_equals_plain(bgzf_fa: Path, plain_fa: Path):
    # mini.fa is ~92 kB, so the bgzip file has more than one block: whole records cross one.
    with open(bgzf_fa, "rb") as handle:
        assert len(list(bgzf.BgzfBlocks(handle))) > 2
    with open_genome(bgzf_fa) as packed, open_genome(plain_fa) as plain:
        assert packed.lengths == plain.lengths
        for chrom, start, end in RANGES:
            seq = packed.fetch(chrom, start, end)
            assert seq == plain.fetch(chrom, start, end)
            assert seq == RAW[chrom][start:end].upper()


# --- read-only folder ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["mini.fa", "mini.fa.gz"])
def test_read_only_folder_indexes_into_index_dir(read_only: Path, tmp_path: Path, name: str):
    before = _snapshot(read_only)
    index_dir = tmp_path / "index" / "sub"  # created if missing
    with open_genome(read_only / name, index_dir=index_dir) as genome:
        assert genome.lengths == MINI_LENGTHS
        assert genome.fetch("chr2", 9_990, 10_010) == RAW["chr2"][9_990:10_010].upper()
    assert _snapshot(read_only) == before
    built = sorted(p.name for p in index_dir.iterdir())
    assert f"{name}.fai" in built
    if name.endswith(".gz"):
        assert f"{name}.gzi" in built
    # Opening again reuses the index in index_dir.
    with open_genome(read_only / name, index_dir=index_dir) as genome:
        assert genome.names == list(MINI_LENGTHS)
    assert _snapshot(read_only) == before


@pytest.mark.parametrize("name", ["mini.fa", "mini.fa.gz"])
def test_read_only_folder_without_index_dir_says_samtools_faidx(read_only: Path, name: str):
    before = _snapshot(read_only)
    with pytest.raises(EnhscanError, match="samtools faidx") as info:
        open_genome(read_only / name)
    assert "read-only" in str(info.value)
    assert "\n" not in str(info.value)
    assert _snapshot(read_only) == before


def test_read_only_folder_with_index_present_uses_it(tmp_path: Path):
    folder = tmp_path / "ro"
    folder.mkdir()
    fasta = Path(shutil.copy(MINI, folder / "mini.fa"))
    with open_genome(fasta):
        pass  # builds mini.fa.fai next to it
    folder.chmod(0o555)
    try:
        before = _snapshot(folder)
        with open_genome(fasta) as genome:  # no index_dir needed
            assert genome.fetch("yeastI_0_700", 0, 700) == RAW["yeastI_0_700"].upper()
        assert _snapshot(folder) == before
    finally:
        folder.chmod(0o755)


def test_read_only_folder_with_stale_index_rebuilds_into_index_dir(tmp_path: Path):
    folder = tmp_path / "ro"
    folder.mkdir()
    fasta = Path(shutil.copy(MINI, folder / "mini.fa"))
    with open_genome(fasta):
        pass
    _set_mtime(Path(f"{fasta}.fai"), fasta, -100)  # older than the FASTA: stale
    folder.chmod(0o555)
    try:
        before = _snapshot(folder)
        with open_genome(fasta, index_dir=tmp_path / "idx") as genome:
            assert genome.lengths == MINI_LENGTHS
        assert _snapshot(folder) == before
    finally:
        folder.chmod(0o755)


# --- files that are not a usable FASTA -------------------------------------------------------


def test_plain_gzip_says_recompress_with_bgzip(tmp_path: Path):
    path = tmp_path / "mini.fa.gz"
    with gzip.open(path, "wb") as handle:
        handle.write(MINI_TEXT.encode())
    with pytest.raises(EnhscanError, match="bgzip") as info:
        open_genome(path)
    message = str(info.value)
    assert "recompress" in message
    assert "\n" not in message
    assert not Path(f"{path}.fai").exists()


@pytest.mark.parametrize(
    "content",
    [
        b"chr1\t100\t200\nchr1\t300\t400\n",  # a BED file
        b"Lorem ipsum dolor sit amet\nconsectetur adipiscing elit\n",
        b"ACGTACGTACGT\nACGTACGT\n",  # sequence without a header
        b"\x00\x01\x02binary junk\xff\xfe",
        b"  \n\n@read1\nACGT\n+\nIIII\n",  # FASTQ
    ],
)
def test_not_a_fasta(tmp_path: Path, content: bytes):
    path = tmp_path / "genome.fa"
    path.write_bytes(content)
    with pytest.raises(EnhscanError, match="not a FASTA") as info:
        open_genome(path)
    assert "\n" not in str(info.value)


def test_not_a_fasta_inside_bgzip(tmp_path: Path):
    path = _write_bgzf(tmp_path / "regions.bed.gz", b"chr1\t100\t200\n")
    with pytest.raises(EnhscanError, match="not a FASTA"):
        open_genome(path)


def test_inconsistent_line_lengths_are_not_well_formed(tmp_path: Path):
    path = tmp_path / "bad.fa"
    path.write_text(">a\nACGTACGT\nACG\nACGTACGT\nAC\n")
    with pytest.raises(EnhscanError, match="well-formed"):
        open_genome(path)


@pytest.mark.parametrize("content", [b"", b"   \n\n\t\n  ", b"\n"])
def test_empty_or_whitespace_file(tmp_path: Path, content: bytes):
    path = tmp_path / "empty.fa"
    path.write_bytes(content)
    with pytest.raises(EnhscanError, match="empty"):
        open_genome(path)


def test_empty_bgzip_file(tmp_path: Path):
    path = _write_bgzf(tmp_path / "empty.fa.gz", b"")
    with pytest.raises(EnhscanError, match="empty"):
        open_genome(path)


def test_missing_path(tmp_path: Path):
    path = tmp_path / "nowhere" / "genome.fa"
    with pytest.raises(EnhscanError, match="does not exist") as info:
        open_genome(path)
    assert str(path) in str(info.value)


def test_directory_is_not_a_file(tmp_path: Path):
    with pytest.raises(EnhscanError, match="not a file"):
        open_genome(tmp_path)


@pytest.mark.parametrize(
    "text",
    [
        ">a\nACGT\n>b\nAC\n>a\nGG\n",
        ">a first\nACGT\n>a second copy\nACGT\n",  # the name is the first word
    ],
)
def test_duplicate_names(tmp_path: Path, text: str):
    path = tmp_path / "dup.fa"
    path.write_text(text)
    with pytest.raises(EnhscanError, match="more than one sequence named a") as info:
        open_genome(path)
    assert "unique" in str(info.value)
    assert not (tmp_path / "dup.fa.fai").exists()  # no index left behind for a broken FASTA


def test_duplicate_names_bgzip(tmp_path: Path):
    path = _write_bgzf(tmp_path / "dup.fa.gz", b">x\nACGT\n>x\nACGT\n")
    with pytest.raises(EnhscanError, match="more than one"):
        open_genome(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dup.fa.gz"]


# --- stale or foreign .fai -------------------------------------------------------------------


def _foreign_fai(tmp_path: Path, text: str) -> Path:
    """Index ``text`` as a FASTA elsewhere and return its .fai."""
    other = tmp_path / "other"
    other.mkdir(exist_ok=True)
    path = other / "other.fa"
    path.write_text(text)
    with open_genome(path):
        pass
    return Path(f"{path}.fai")


def _rewrap(text: str, width: int) -> str:
    out = []
    for name, seq in _parse_fasta(text).items():
        out.append(f">{name}\n")
        out.extend(seq[i : i + width] + "\n" for i in range(0, len(seq), width))
    return "".join(out)


@pytest.mark.parametrize(
    "other_text",
    [
        ">extra\nACGTACGTAC\nACGT\n" + MINI_TEXT,  # an extra record at the front
        _rewrap(MINI_TEXT, 80),  # same records, other line widths
        _rewrap(MINI_TEXT, 50),
    ],
    ids=["extra-record", "wrap80", "wrap50"],
)
@pytest.mark.parametrize("packed", [False, True], ids=["plain", "bgzip"])
def test_foreign_fai_is_reported(tmp_path: Path, other_text: str, packed: bool):
    fai = _foreign_fai(tmp_path, other_text)
    folder = tmp_path / "genome"
    folder.mkdir()
    if packed:
        fasta = _write_bgzf(folder / "mini.fa.gz", MINI_TEXT.encode())
        with open_genome(fasta):
            pass  # a correct .fai and .gzi
    else:
        fasta = Path(shutil.copy(MINI, folder / "mini.fa"))
    target = Path(f"{fasta}.fai")
    shutil.copy(fai, target)
    _set_mtime(target, fasta, +100)  # newer than the FASTA: not rebuilt automatically
    with pytest.raises(EnhscanError, match="does not match") as info:
        _open_and_fetch_all(fasta)
    message = str(info.value)
    assert "index" in message and str(target.name) in message
    assert "samtools faidx" in message
    assert "\n" not in message


def test_stale_fai_older_than_fasta_is_rebuilt(tmp_path: Path, plain_fa: Path):
    fai = _foreign_fai(tmp_path, ">extra\nACGT\n" + MINI_TEXT)
    target = Path(f"{plain_fa}.fai")
    shutil.copy(fai, target)
    _set_mtime(target, plain_fa, -100)  # older: rebuilt
    with open_genome(plain_fa) as genome:
        assert list(genome.lengths.items()) == list(MINI_LENGTHS.items())
        assert genome.fetch("yeastI_0_700", 0, 700) == RAW["yeastI_0_700"].upper()
    assert "extra" not in target.read_text()


def test_fai_from_older_version_with_shorter_last_record_is_reported(
    tmp_path: Path, plain_fa: Path
):
    shorter = MINI_TEXT[: MINI_TEXT.rindex("\n", 0, len(MINI_TEXT) - 1) + 1]
    fai = _foreign_fai(tmp_path, shorter)
    target = Path(f"{plain_fa}.fai")
    shutil.copy(fai, target)
    _set_mtime(target, plain_fa, +100)
    with pytest.raises(EnhscanError, match="does not match"):
        _open_and_fetch_all(plain_fa)


# --- fetch edge cases ------------------------------------------------------------------------


def test_fetch_empty_range_returns_empty(plain_fa: Path):
    with open_genome(plain_fa) as genome:
        assert genome.fetch("yeastI_0_700", 5, 5) == ""


@pytest.mark.parametrize(("start", "end"), [(600, 800), (700, 710), (-5, 10)])
def test_fetch_out_of_range_does_not_blame_the_index(plain_fa: Path, start: int, end: int):
    with open_genome(plain_fa) as genome:
        with pytest.raises(EnhscanError) as info:
            genome.fetch("yeastI_0_700", start, end)
    assert "does not match" not in str(info.value)


# --- context manager -------------------------------------------------------------------------


def test_context_manager_closes(plain_fa: Path):
    genome = open_genome(plain_fa)
    with genome as entered:
        assert entered is genome
        assert entered.fetch("chr2", 10_000, 10_005) == RAW["chr2"][10_000:10_005].upper()
    with pytest.raises(ValueError):  # reading a closed file
        genome.fetch("chr22_32000000", 1_000, 2_000)


def test_context_manager_closes_on_error(plain_fa: Path):
    with pytest.raises(KeyError):
        with open_genome(plain_fa) as genome:
            raise KeyError("boom")
    with pytest.raises(ValueError):
        genome.fetch("chr22_32000000", 1_000, 2_000)


# --- 2bit ------------------------------------------------------------------------------------


@pytest.fixture
def yeast_pair(tmp_path: Path):
    pytest.importorskip("py2bit")
    if not (YEAST_2BIT.is_file() and YEAST_FA.is_file()):
        pytest.skip("shared yeast genome (2bit and fa.gz) not available")
    with (
        open_genome(YEAST_2BIT, index_dir=tmp_path) as twobit,
        open_genome(YEAST_FA, index_dir=tmp_path) as fasta,
    ):
        yield twobit, fasta


def test_2bit_matches_fasta(yeast_pair):
    twobit, fasta = yeast_pair
    assert type(twobit).__name__ == "TwoBitGenome"
    assert twobit.lengths == fasta.lengths
    assert set(twobit.names) == set(fasta.names)
    assert "I" in twobit.lengths
    for chrom in twobit.names[:4] + twobit.names[-2:]:
        length = twobit.lengths[chrom]
        for start, end in [(0, 200), (length // 2, length // 2 + 1_537), (length - 61, length)]:
            seq = twobit.fetch(chrom, start, end)
            assert len(seq) == end - start
            assert seq == seq.upper()
            assert seq == fasta.fetch(chrom, start, end)


def test_2bit_not_readable(tmp_path: Path):
    pytest.importorskip("py2bit")
    path = tmp_path / "broken.2bit"
    path.write_bytes(b"\x43\x27\x41\x1a" + b"\x00" * 4)  # magic, then truncated
    with pytest.raises(EnhscanError, match="2bit"):
        open_genome(path)
