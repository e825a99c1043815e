"""`enhscan predict`: FASTA, BED + genome and table inputs, scored like the engine scores."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from enhscan.backend import ComputeOptions
from enhscan.engine import WindowScorer
from enhscan.io.fasta import open_genome
from enhscan.sequence import reverse_complement
from tests.conftest import run_cli

RNG = np.random.default_rng(11)
SEQS = ["".join(RNG.choice(list("ACGT"), size=n)) for n in (1000, 600, 1000)]


def run(*args: str, expect: int = 0):
    return run_cli("predict", *args, expect=expect)


def read_tsv(path: Path) -> list[dict]:
    with open(path) as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def test_fasta_input(tmp_path, tiny_model_dir, tiny_classifier) -> None:
    fasta = tmp_path / "q.fa"
    fasta.write_text("".join(f">s{i} some description\n{s}\n" for i, s in enumerate(SEQS)))
    out = tmp_path / "scores.tsv"
    run(str(fasta), "--model", str(tiny_model_dir), "--out", str(out), "--threshold", "0.5")
    rows = read_tsv(out)
    assert list(rows[0]) == [
        "id",
        "chrom",
        "start",
        "end",
        "length",
        "non_acgt",
        "probability",
        "label",
    ]
    assert [r["id"] for r in rows] == ["s0", "s1", "s2"]
    assert {r["chrom"] for r in rows} == {"."}
    want = WindowScorer(tiny_classifier, ComputeOptions(batch_size=1)).score(SEQS)
    got = np.array([float(r["probability"]) for r in rows])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert [r["label"] for r in rows] == ["enhancer" if p >= 0.5 else "background" for p in got]
    assert [int(r["length"]) for r in rows] == [1000, 600, 1000]


def test_bed_regions_become_windows_around_their_summits(
    tmp_path, mini_fasta, tiny_model_dir, tiny_classifier
) -> None:
    bed = tmp_path / "peaks.narrowPeak"
    bed.write_text(
        "chr22_32000000\t5000\t5300\tp1\t0\t.\t0\t-1\t-1\t100\n"  # summit 5100
        "chr22_32000000\t100\t300\n"  # centre 200: the window shifts to start at 0
        "chr2\t20000\t20500\tp3\n"
    )
    out = tmp_path / "bed.tsv"
    run(str(bed), "--genome", str(mini_fasta), "--model", str(tiny_model_dir), "--out", str(out))
    rows = read_tsv(out)
    coords = [(r["chrom"], int(r["start"]), int(r["end"])) for r in rows]
    assert coords == [
        ("chr22_32000000", 4600, 5600),
        ("chr22_32000000", 0, 1000),
        ("chr2", 19750, 20750),
    ]
    assert [r["id"] for r in rows] == ["p1", "chr22_32000000:100-300", "p3"]
    with open_genome(mini_fasta) as genome:
        seqs = [genome.fetch(c, s, e) for c, s, e in coords]
    want = WindowScorer(tiny_classifier, ComputeOptions(batch_size=1)).score(seqs)
    np.testing.assert_allclose([float(r["probability"]) for r in rows], want, atol=1e-6)

    as_is = tmp_path / "as_is.tsv"
    run(str(bed), "-g", str(mini_fasta), "-m", str(tiny_model_dir), "-o", str(as_is), "--as-is")
    assert [(int(r["start"]), int(r["end"])) for r in read_tsv(as_is)] == [
        (5000, 5300),
        (100, 300),
        (20000, 20500),
    ]


def test_table_input_and_both_strands(tmp_path, tiny_model_dir, tiny_classifier) -> None:
    table = tmp_path / "seqs.csv"
    table.write_text("name,sequence,label\n" + "".join(f"q{i},{s},1\n" for i, s in enumerate(SEQS)))
    out = tmp_path / "t.tsv"
    run(str(table), "-m", str(tiny_model_dir), "-o", str(out), "--rc")
    rows = read_tsv(out)
    assert [r["id"] for r in rows] == ["q0", "q1", "q2"]
    scorer = WindowScorer(tiny_classifier, ComputeOptions(batch_size=1))
    want = (scorer.score(SEQS) + scorer.score([reverse_complement(s) for s in SEQS])) / 2
    np.testing.assert_allclose([float(r["probability"]) for r in rows], want, atol=1e-6)

    unnamed = tmp_path / "plain.tsv"
    unnamed.write_text("sequence\n" + "\n".join(SEQS) + "\n")
    run(str(unnamed), "-m", str(tiny_model_dir), "-o", str(tmp_path / "u.tsv"))
    assert [r["id"] for r in read_tsv(tmp_path / "u.tsv")] == ["line2", "line3", "line4"]


@pytest.mark.parametrize(
    "name, extra, message",
    [
        ("peaks.bed", (), "is a BED: give the genome it refers to with --genome"),
        ("peaks.xyz", (), "cannot tell what"),
        ("seqs.csv", (), "has no 'sequence' column"),
    ],
)
def test_bad_input_is_refused(tmp_path, tiny_model_dir, name, extra, message) -> None:
    path = tmp_path / name
    path.write_text("chr1\t0\t100\n" if name.endswith((".bed", ".xyz")) else "id,seq\na,ACGT\n")
    out = tmp_path / "o.tsv"
    result = run(str(path), "-m", str(tiny_model_dir), "-o", str(out), *extra, expect=1)
    assert message in result.output
    assert not out.exists()


def test_existing_output_needs_force(tmp_path, tiny_model_dir) -> None:
    fasta = tmp_path / "q.fa"
    fasta.write_text(f">a\n{SEQS[0]}\n")
    out = tmp_path / "o.tsv"
    out.write_text("keep me\n")
    result = run(str(fasta), "-m", str(tiny_model_dir), "-o", str(out), expect=1)
    assert "use --force" in result.output and out.read_text() == "keep me\n"
    run(str(fasta), "-m", str(tiny_model_dir), "-o", str(out), "--force")
    assert read_tsv(out)[0]["id"] == "a"


def test_a_whole_chromosome_is_sent_to_enhscan_genome(tmp_path, tiny_model_dir) -> None:
    """Scoring a chromosome as one input would need attention over tens of thousands of tokens
    (tens of GB) and means nothing to a model of 1 kb windows."""
    fasta = tmp_path / "chroms.fa"
    fasta.write_text(f">short\n{SEQS[0]}\n>chr_long\n{'ACGTTGCA' * 1251}\n")
    out = tmp_path / "o.tsv"
    result = run(str(fasta), "-m", str(tiny_model_dir), "-o", str(out), expect=1)
    assert "chr_long is 10,008 bp, more than 10 model windows" in result.output
    assert "enhscan genome" in result.output and not out.exists()
    fasta.write_text(f">short\n{SEQS[0]}\n>ten_windows\n{'ACGTTGCA' * 1250}\n")
    run(str(fasta), "-m", str(tiny_model_dir), "-o", str(out))
    assert [r["length"] for r in read_tsv(out)] == [str(len(SEQS[0])), "10000"]


def test_output_under_a_file_and_gzip_output(tmp_path, tiny_model_dir, caplog) -> None:
    import gzip

    from enhscan.predict import predict

    fasta = tmp_path / "q.fa"
    fasta.write_text(f">a\n{SEQS[0]}\n>short\nACGTACGT\n>n\n{'N' * 300}\n")
    # Before any CLI run here: the CLI's logging set-up replaces the handler caplog reads.
    with caplog.at_level("WARNING", logger="enhscan.predict"):
        predict(fasta, tiny_model_dir, tmp_path / "new/o.tsv.gz", device="cpu")
    rows = gzip.open(tmp_path / "new/o.tsv.gz", "rt").read().splitlines()
    assert rows[0].startswith("id\t") and len(rows) == 4
    assert "2 of 3 inputs are shorter than half" in caplog.text  # 8 and 300 bp
    assert "1 are more than 10% N" in caplog.text
    (tmp_path / "afile").write_text("mine")
    result = run(str(fasta), "-m", str(tiny_model_dir), "-o", str(tmp_path / "afile/o.tsv"),
                 expect=1)  # fmt: skip
    assert "afile is a file, not a folder" in result.output
