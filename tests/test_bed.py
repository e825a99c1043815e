"""Tests for enhscan.io.bed: reading BED intervals and writing narrowPeak lines."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from enhscan.calling import Call
from enhscan.errors import EnhscanError
from enhscan.io.bed import BedIntervals, format_narrowpeak, read_bed

GENOME = {"chr1": 10_000, "chr2": 5_000, "chrX": 2_000}


def _write(tmp_path: Path, text: str, name: str = "regions.bed") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# --- reading ---------------------------------------------------------------------------------


def test_reads_tab_separated_with_extra_columns(tmp_path: Path):
    path = _write(
        tmp_path,
        "chr1\t100\t200\tpeak1\t500\t+\nchr1\t300\t400\nchr2\t0\t5000\tall\nchrX\t1999\t2000\n",
    )
    result = read_bed(path, GENOME)
    assert isinstance(result, BedIntervals)
    assert result.by_chrom == {
        "chr1": [(100, 200), (300, 400)],
        "chr2": [(0, 5000)],
        "chrX": [(1999, 2000)],
    }
    assert result.unmatched == {}
    assert result.clipped == 0
    assert result.count == 4


def test_reads_space_separated(tmp_path: Path):
    path = _write(tmp_path, "chr1 100 200\nchr1  300   400 name\nchr2 10 20\n")
    result = read_bed(str(path), GENOME)
    assert result.by_chrom == {"chr1": [(100, 200), (300, 400)], "chr2": [(10, 20)]}


def test_skips_blank_comment_track_browser_lines(tmp_path: Path):
    path = _write(
        tmp_path,
        "# a comment\n"
        "track name=foo description='bar'\n"
        "browser position chr1:1-1000\n"
        "\n"
        "   \n"
        "chr1\t10\t20\n"
        "#chr1\t30\t40\n"
        "\t\n"
        "chr1\t50\t60\n",
    )
    result = read_bed(path, GENOME)
    assert result.by_chrom == {"chr1": [(10, 20), (50, 60)]}
    assert result.unmatched == {}


def test_windows_line_endings(tmp_path: Path):
    path = tmp_path / "crlf.bed"
    path.write_bytes(b"chr1\t10\t20\r\nchr2 30 40\r\n")
    assert read_bed(path, GENOME).by_chrom == {"chr1": [(10, 20)], "chr2": [(30, 40)]}


def test_gzip_bed(tmp_path: Path):
    path = tmp_path / "regions.bed.gz"
    with gzip.open(path, "wt") as handle:
        handle.write("track name=x\nchr1\t500\t600\nchr1\t100\t200\nchrX\t0\t10\n")
    result = read_bed(path, GENOME)
    assert result.by_chrom == {"chr1": [(100, 200), (500, 600)], "chrX": [(0, 10)]}


def test_gzip_bed_without_gz_suffix(tmp_path: Path):
    path = tmp_path / "regions.bed"
    path.write_bytes(gzip.compress(b"chr2\t1\t2\n"))
    assert read_bed(path, GENOME).by_chrom == {"chr2": [(1, 2)]}


def test_merged_and_sorted_per_chromosome(tmp_path: Path):
    path = _write(
        tmp_path,
        "chr1\t500\t600\n"
        "chr2\t40\t50\n"
        "chr1\t100\t200\n"
        "chr1\t150\t250\n"  # overlaps the one before
        "chr1\t250\t260\n"  # touches
        "chr1\t120\t130\n"  # inside
        "chr1\t599\t700\n"
        "chr2\t10\t20\n"
        "chr1\t900\t901\n",
    )
    result = read_bed(path, GENOME)
    assert result.by_chrom == {
        "chr1": [(100, 260), (500, 700), (900, 901)],
        "chr2": [(10, 20), (40, 50)],
    }
    assert result.count == 5


def test_empty_file_gives_nothing(tmp_path: Path):
    result = read_bed(_write(tmp_path, ""), GENOME)
    assert result.by_chrom == {}
    assert result.count == 0
    assert result.unmatched == {}


# --- chromosome names ------------------------------------------------------------------------


def test_bed_chr_prefix_matches_genome_without(tmp_path: Path):
    path = _write(tmp_path, "chr20\t10\t20\nchr20\t30\t40\nchrX\t1\t2\n")
    result = read_bed(path, {"20": 1_000, "X": 100})
    assert result.by_chrom == {"20": [(10, 20), (30, 40)], "X": [(1, 2)]}
    assert result.unmatched == {}


def test_bed_without_prefix_matches_genome_with(tmp_path: Path):
    path = _write(tmp_path, "20\t10\t20\nX\t1\t2\n")
    result = read_bed(path, {"chr20": 1_000, "chrX": 100})
    assert result.by_chrom == {"chr20": [(10, 20)], "chrX": [(1, 2)]}


def test_mixed_naming_lands_on_one_chromosome(tmp_path: Path):
    path = _write(tmp_path, "chr20\t10\t20\n20\t15\t30\n")
    result = read_bed(path, {"20": 1_000})
    assert result.by_chrom == {"20": [(10, 30)]}


def test_mitochondrion_names(tmp_path: Path):
    path = _write(tmp_path, "chrM\t0\t10\n")
    assert read_bed(path, {"MT": 16_569}).by_chrom == {"MT": [(0, 10)]}


def test_unmatched_names_counted_not_returned(tmp_path: Path):
    path = _write(
        tmp_path,
        "chr1\t10\t20\nchr3\t1\t2\nchr3\t5\t6\nchrUn_gl000220\t0\t5\nchr3\t7\t8\n"
        "chr1_random\t0\t10\n",
    )
    result = read_bed(path, GENOME)
    assert result.by_chrom == {"chr1": [(10, 20)]}
    assert result.unmatched == {"chr3": 3, "chrUn_gl000220": 1, "chr1_random": 1}
    assert result.count == 1


def test_unmatched_lines_are_not_bounds_checked(tmp_path: Path):
    path = _write(tmp_path, "chr9\t0\t999999999\n")
    result = read_bed(path, GENOME)
    assert result.by_chrom == {}
    assert result.unmatched == {"chr9": 1}


# --- bad lines -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad", "phrase"),
    [
        ("chr1\t100", "expected 'chrom"),  # too few columns
        ("chr1", "expected 'chrom"),
        ("chr1 100", "expected 'chrom"),
        ("chr1\tabc\t200", "whole numbers"),
        ("chr1\t100\t2e3", "whole numbers"),
        ("chr1\t10.5\t200", "whole numbers"),
        ("chrom\tstart\tend", "whole numbers"),  # a header line without '#'
        ("chr1\t200\t100", "start < end"),  # start > end
        ("chr1\t100\t100", "start < end"),  # start == end
        ("chr1\t-5\t10", "start < end"),  # negative start
    ],
)
def test_bad_line_names_file_and_line(tmp_path: Path, bad: str, phrase: str):
    path = _write(tmp_path, f"# header\nchr1\t1\t2\n\n{bad}\nchr1\t5\t6\n")
    with pytest.raises(EnhscanError) as info:
        read_bed(path, GENOME)
    message = str(info.value)
    assert phrase in message
    assert str(path) in message
    assert "line 4" in message
    assert "\n" not in message


def test_bad_line_in_gzip_names_line(tmp_path: Path):
    path = tmp_path / "bad.bed.gz"
    with gzip.open(path, "wt") as handle:
        handle.write("chr1\t1\t2\nchr1\t2\tx\n")
    with pytest.raises(EnhscanError, match="line 2"):
        read_bed(path, GENOME)


def test_end_past_chromosome_end_is_an_error(tmp_path: Path):
    path = _write(tmp_path, "chr1\t10\t20\nchr2\t4990\t5001\n")
    with pytest.raises(EnhscanError) as info:
        read_bed(path, GENOME)
    message = str(info.value)
    assert "assembly" in message
    assert "line 2" in message and str(path) in message
    assert "chr2" in message


def test_end_at_chromosome_end_is_fine(tmp_path: Path):
    path = _write(tmp_path, "chr2\t4990\t5000\n")
    result = read_bed(path, GENOME)
    assert result.by_chrom == {"chr2": [(4990, 5000)]}
    assert result.clipped == 0


def test_end_past_end_via_renamed_chromosome(tmp_path: Path):
    path = _write(tmp_path, "20\t0\t1001\n")
    with pytest.raises(EnhscanError, match="assembly"):
        read_bed(path, {"chr20": 1_000})


def test_clip_cuts_and_drops(tmp_path: Path):
    path = _write(
        tmp_path,
        "chr2\t4000\t6000\n"  # cut to 5000
        "chr2\t5000\t5100\n"  # starts at the end: dropped
        "chr2\t7000\t8000\n"  # starts past the end: dropped
        "chr2\t100\t200\n"
        "chrX\t1500\t99999\n"  # cut to 2000
        "chr1\t0\t10000\n",  # exactly the length: not clipped
    )
    result = read_bed(path, GENOME, clip=True)
    assert result.by_chrom == {
        "chr2": [(100, 200), (4000, 5000)],
        "chrX": [(1500, 2000)],
        "chr1": [(0, 10_000)],
    }
    assert result.clipped == 4
    assert all(end <= GENOME[c] for c, ivs in result.by_chrom.items() for _, end in ivs)


def test_clip_still_rejects_bad_lines(tmp_path: Path):
    path = _write(tmp_path, "chr2\t6000\t5000\n")
    with pytest.raises(EnhscanError, match="line 1"):
        read_bed(path, GENOME, clip=True)


# --- unreadable files ------------------------------------------------------------------------


def test_missing_file(tmp_path: Path):
    path = tmp_path / "nope.bed"
    with pytest.raises(EnhscanError) as info:
        read_bed(path, GENOME)
    assert str(path) in str(info.value)


def test_directory(tmp_path: Path):
    with pytest.raises(EnhscanError) as info:
        read_bed(tmp_path, GENOME)
    assert str(tmp_path) in str(info.value)


def test_binary_file(tmp_path: Path):
    path = tmp_path / "binary.bed"
    path.write_bytes(b"\xff\xfe\x00\x80chr1\t1\t2\n")
    with pytest.raises(EnhscanError, match="not a readable text BED"):
        read_bed(path, GENOME)


def test_not_really_gzip(tmp_path: Path):
    path = tmp_path / "fake.bed.gz"
    path.write_bytes(b"\x1f\x8bnot gzip at all")
    with pytest.raises(EnhscanError):
        read_bed(path, GENOME)


def _gzip_bed_bytes() -> bytes:
    rows = b"".join(b"chr1\t%d\t%d\n" % (i * 10, i * 10 + 5) for i in range(5000))
    return gzip.compress(rows)


def test_truncated_gzip(tmp_path: Path):
    data = _gzip_bed_bytes()
    path = tmp_path / "truncated.bed.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(EnhscanError):
        read_bed(path, GENOME)


def test_corrupt_gzip(tmp_path: Path):
    data = _gzip_bed_bytes()
    path = tmp_path / "corrupt.bed.gz"
    path.write_bytes(data[:20] + b"\x00" * 200 + data[220:])
    with pytest.raises(EnhscanError):
        read_bed(path, GENOME)


# --- narrowPeak ------------------------------------------------------------------------------


def test_format_narrowpeak_two_calls():
    calls = [
        Call(start=1_000, end=1_500, max_score=0.87654321, summit=1_250, n_windows=3),
        Call(start=20_000, end=20_100, max_score=0.5, summit=20_050, n_windows=1),
    ]
    text = format_narrowpeak("chr7", calls, first_index=4)
    assert text == (
        "chr7\t1000\t1500\tenhscan_4\t877\t.\t0.876543\t-1\t-1\t250\n"
        "chr7\t20000\t20100\tenhscan_5\t500\t.\t0.500000\t-1\t-1\t50\n"
    )
    for line in text.splitlines():
        assert len(line.split("\t")) == 10


def test_format_narrowpeak_default_first_index_and_generator():
    calls = (Call(start=0, end=10, max_score=1.0, summit=5, n_windows=1) for _ in range(2))
    assert format_narrowpeak("1", calls) == (
        "1\t0\t10\tenhscan_1\t1000\t.\t1.000000\t-1\t-1\t5\n"
        "1\t0\t10\tenhscan_2\t1000\t.\t1.000000\t-1\t-1\t5\n"
    )


@pytest.mark.parametrize(
    ("max_score", "score", "signal"),
    [
        (0.0, 0, "0.000000"),
        (0.0004, 0, "0.000400"),
        (0.0006, 1, "0.000600"),
        (0.9994, 999, "0.999400"),
        (1.0, 1000, "1.000000"),
        (1.7, 1000, "1.700000"),  # clamped
        (-0.2, 0, "-0.200000"),  # clamped
    ],
)
def test_format_narrowpeak_score_column(max_score: float, score: int, signal: str):
    line = format_narrowpeak("chr1", [Call(10, 20, max_score, 10, 1)], first_index=7)
    fields = line.rstrip("\n").split("\t")
    assert fields[4] == str(score)
    assert fields[6] == signal
    assert fields[9] == "0"
    assert fields[3] == "enhscan_7"


def test_format_narrowpeak_empty():
    assert format_narrowpeak("chr1", []) == ""
