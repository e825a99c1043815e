"""Tests for enhscan.io.peaks: BED / narrowPeak peaks with summits, on the genome's names."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from enhscan.errors import EnhscanError
from enhscan.io.peaks import Peak, read_peaks

GENOME = {"20": 10_000, "X": 5_000, "MT": 1_000}


def _write(tmp_path: Path, text: str, name: str = "peaks.bed") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _narrowpeak(chrom: str, start: int, end: int, peak: int | str, name: str = "p") -> str:
    return f"{chrom}\t{start}\t{end}\t{name}\t500\t.\t8.1\t-1\t-1\t{peak}\n"


def test_bed3_summit_is_the_centre(tmp_path: Path):
    path = _write(tmp_path, "20\t100\t201\n20\t300\t400\n")
    peaks = read_peaks(path, GENOME)
    assert peaks == [
        Peak("20", 100, 201, 150, "", f"{path} line 1"),
        Peak("20", 300, 400, 350, "", f"{path} line 2"),
    ]


def test_narrowpeak_summit_comes_from_column_10(tmp_path: Path):
    path = _write(
        tmp_path,
        _narrowpeak("20", 1000, 1500, 37, "a") + _narrowpeak("X", 0, 10, 0, "b"),
        "peaks.narrowPeak",
    )
    peaks = read_peaks(path, GENOME)
    assert [(p.chrom, p.summit, p.name) for p in peaks] == [("20", 1037, "a"), ("X", 0, "b")]


def test_narrowpeak_without_summit_uses_the_centre(tmp_path: Path):
    path = _write(tmp_path, _narrowpeak("20", 1000, 1500, -1))
    assert read_peaks(path, GENOME)[0].summit == 1250


def test_non_integer_column_10_uses_the_centre(tmp_path: Path):
    path = _write(tmp_path, _narrowpeak("20", 1000, 1500, "n/a"))
    assert read_peaks(path, GENOME)[0].summit == 1250


def test_bed12_block_count_is_not_a_summit(tmp_path: Path):
    line = "20\t1000\t1500\tgene\t0\t+\t1000\t1500\t0\t2\t100,100,\t0,400,\n"
    path = _write(tmp_path, line)
    assert read_peaks(path, GENOME)[0].summit == 1250


def test_summit_outside_the_peak_is_an_error_naming_the_line(tmp_path: Path):
    path = _write(tmp_path, _narrowpeak("20", 1000, 1500, 10) + _narrowpeak("20", 1000, 1500, 500))
    with pytest.raises(EnhscanError, match=r"peaks\.bed line 2: the summit offset .* is 500"):
        read_peaks(path, GENOME)


def test_names_are_reconciled_with_the_genome(tmp_path: Path):
    path = _write(tmp_path, "chr20\t10\t20\tx\nchrX\t30\t40\nchrM\t0\t100\n")
    peaks = read_peaks(path, GENOME)
    assert [p.chrom for p in peaks] == ["20", "X", "MT"]
    assert peaks[0].name == "x"


def test_missing_chromosomes_are_named_with_the_matched_ones(tmp_path: Path):
    path = _write(tmp_path, "chr20\t10\t20\nchrY\t0\t10\nchrUn_x\t0\t5\nchrY\t20\t30\n")
    with pytest.raises(EnhscanError) as err:
        read_peaks(path, GENOME, genome_name="genome.fa")
    message = str(err.value)
    assert message.startswith(f"{path}: chromosomes chrY, chrUn_x are not in genome.fa")
    assert "(matched: chr20 -> 20)" in message
    assert "use a BED for this assembly" in message
    assert "\n" not in message


def test_one_missing_chromosome_and_no_match(tmp_path: Path):
    path = _write(tmp_path, "chr1\t10\t20\n")
    with pytest.raises(
        EnhscanError, match=r"chromosome chr1 is not in the genome \(matched: none\)"
    ):
        read_peaks(path, GENOME)


def test_long_missing_list_is_shortened(tmp_path: Path):
    path = _write(tmp_path, "".join(f"chrUn_{i}\t0\t10\n" for i in range(9)))
    with pytest.raises(EnhscanError, match=r"chrUn_4 and 4 more are not in"):
        read_peaks(path, GENOME)


@pytest.mark.parametrize(
    "text, message",
    [
        ("X\t0\t10\nchrX\t4990\t5001\n", r"peaks\.bed line 2: chrX:4990-5001 runs past the end"),
        ("# only a comment\ntrack name=x\n\n", "holds no intervals"),
        ("20\t10\t20\n20\t50\t40\n", r"peaks\.bed line 2: need 0 <= start < end"),
    ],
)
def test_a_bad_file_is_refused_naming_its_line(tmp_path: Path, text: str, message: str):
    path = _write(tmp_path, text)
    with pytest.raises(EnhscanError, match=message):
        read_peaks(path, GENOME)


def test_gzip_file(tmp_path: Path):
    path = tmp_path / "peaks.narrowPeak.gz"
    with gzip.open(path, "wt") as handle:
        handle.write(_narrowpeak("chr20", 5, 25, 3))
    assert read_peaks(path, GENOME) == [Peak("20", 5, 25, 8, "p", f"{path} line 1")]
