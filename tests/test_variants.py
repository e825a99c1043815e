"""enhscan variants: the windows of an allele, and VCFs scored end to end on real sequence,
every output value checked against scoring the two windows directly."""

from __future__ import annotations

import gzip
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pysam
import pytest

from enhscan.alleles import Allele, allele_windows, flank_span, skip_reason
from enhscan.engine import WindowScorer
from enhscan.errors import EnhscanError
from enhscan.intervals import centred_start
from enhscan.io.fasta import open_genome
from enhscan.variants import VariantOptions, score_variants
from tests.conftest import run_cli

RNG = np.random.default_rng(11)
W = 1000  # the tiny model's window


def brute_force(seq: str, allele: Allele, window: int) -> tuple[str, str]:
    """The two windows cut from the whole reference and the whole alternate haplotype."""
    r, a = len(allele.ref), len(allele.alt)
    haplotype = seq[: allele.pos] + allele.alt + seq[allele.pos + r :]
    ref_start = centred_start(allele.pos + r // 2, window, len(seq))
    alt_start = centred_start(allele.pos + a // 2, window, len(haplotype))
    return seq[ref_start : ref_start + window], haplotype[alt_start : alt_start + window]


@pytest.mark.parametrize("pos", [0, 3, 499, 500, 2500, 4990, 4999])
@pytest.mark.parametrize(
    "ref, alt", [("A", "G"), ("A", "ATTGCA"), ("ACGTACGTAC", "A"), ("AC", "GT")]
)
def test_allele_windows_match_the_whole_haplotypes(pos, ref, alt) -> None:
    seq = "".join(RNG.choice(list("ACGT"), 5000 + len(ref)))
    seq = seq[:pos] + ref + seq[pos + len(ref) :]
    allele = Allele("c", pos, ref, alt)
    lo, hi = flank_span(allele, W, len(seq))
    got = allele_windows(allele, seq[lo:hi], lo, W, len(seq))
    assert got == brute_force(seq, allele, W)
    assert len(got[0]) == len(got[1]) == W
    if len(ref) == len(alt) == 1 and W // 2 <= pos < len(seq) - W // 2:
        assert got[1] == got[0][: W // 2] + alt + got[0][W // 2 + 1 :]  # the SNV in the middle


def test_alleles_that_cannot_be_scored_say_why() -> None:
    assert skip_reason("A", None, W) == skip_reason("A", ".", W) == "missing_alt"
    for alt in ("<DEL>", "A[chr2:10[", "*"):
        assert skip_reason("A", alt, W) == "symbolic"
    assert skip_reason("A", "AXA", W) == "not_dna"
    assert skip_reason("A", "A" * (W + 1), W) == "longer_than_window"
    assert skip_reason("A" * W, "A", W) is None


def _vcf(path: Path, lines: list[str], contig: str = "chr2") -> Path:
    header = ["##fileformat=VCFv4.2", f"##contig=<ID={contig},length=60000>",
              '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
              "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1"]  # fmt: skip
    path.write_text("\n".join(header + lines) + "\n")
    return path


@pytest.fixture
def chr2(mini_fasta) -> str:
    with open_genome(mini_fasta) as genome:
        return genome.fetch("chr2", 0, genome.lengths["chr2"]).upper()


def _variants(chr2: str) -> list[str]:
    """SNVs, an insertion, a deletion, a multi-allelic site with a symbolic allele, a REF
    mismatch and a missing ALT, on real chr2 sequence (VCF lines, 1-based)."""
    b = lambda p: chr2[p - 1]  # noqa: E731
    other = {"A": "C", "C": "G", "G": "T", "T": "A"}
    return [
        f"chr2\t20000\trs1\t{b(20000)}\t{other[b(20000)]}\t50\tPASS\tDP=7\tGT\t0/1",
        f"chr2\t20100\t.\t{chr2[20099:20109]}\t{b(20100)}\t.\t.\t.\tGT\t1/1",
        f"chr2\t20200\tins\t{b(20200)}\t{b(20200)}GATTACA,<DEL>,{other[b(20200)]}\t.\t.\t.\tGT\t0/1",
        f"chr2\t20300\tbad\t{other[b(20300)]}\tA\t.\t.\t.\tGT\t0/1",
        f"chr2\t20400\t.\t{b(20400)}\t.\t.\t.\t.\tGT\t0/0",
        f"chr2\t59990\tedge\t{b(59990)}\t{other[b(59990)]}\t.\t.\t.\tGT\t0/1",
    ]


def _info(line: str) -> dict[str, list[str]]:
    fields = line.split("\t")[7].split(";")
    return {k: v.split(",") for k, _, v in (f.partition("=") for f in fields)}


def test_a_vcf_scored_end_to_end_matches_the_windows_scored_directly(
    tmp_path, mini_fasta, chr2, tiny_model_dir, tiny_classifier
) -> None:
    vcf = _vcf(tmp_path / "in.vcf", _variants(chr2))
    out = tmp_path / "scored.vcf.gz"
    run_cli("variants", str(vcf), "--genome", str(mini_fasta), "--model", str(tiny_model_dir),
            "--out", str(out), "--tsv")  # fmt: skip
    lines = [line for line in gzip.open(out, "rt").read().splitlines() if not line.startswith("#")]
    assert len(lines) == 6  # every record written, in order
    scorer = WindowScorer(tiny_classifier)
    for line in lines:
        chrom, pos, _, ref, alts = line.split("\t")[:5]
        info = _info(line)
        if ref != chr2[int(pos) - 1 : int(pos) - 1 + len(ref)]:
            assert line.split("\t")[6] == "EHS_REF_MISMATCH" and "EHS_P_REF" not in info
            continue
        if alts == ".":
            assert "EHS_P_REF" not in info
            continue
        for i, alt in enumerate(alts.split(",")):
            if alt.startswith("<"):
                assert info["EHS_SKIP"][i] == "symbolic" and info["EHS_P_ALT"][i] == "."
                continue
            allele = Allele("chr2", int(pos) - 1, ref, alt)
            want = scorer.score(list(brute_force(chr2, allele, W)))
            np.testing.assert_allclose(float(info["EHS_P_REF"][0]), want[0], atol=2e-6)
            np.testing.assert_allclose(float(info["EHS_P_ALT"][i]), want[1], atol=2e-6)
            np.testing.assert_allclose(float(info["EHS_DELTA"][i]), want[1] - want[0], atol=3e-6)
            odds = np.log(want[1] / (1 - want[1])) - np.log(want[0] / (1 - want[0]))
            np.testing.assert_allclose(float(info["EHS_LOGODDS"][i]), odds, atol=1e-4)
    # The samples and the input's own fields pass through; the header declares ours.
    assert lines[0].endswith("\tGT\t0/1") and lines[0].split("\t")[7].startswith("DP=7;EHS_P_REF=")
    header = gzip.open(out, "rt").read().split("#CHROM")[0]
    assert "##INFO=<ID=EHS_DELTA,Number=A,Type=Float" in header
    assert "##FILTER=<ID=EHS_REF_MISMATCH" in header
    # Indexed: a region query finds the records.
    with pysam.TabixFile(str(out)) as index:
        assert len(list(index.fetch("chr2", 20050, 20250))) == 2
    record = json.loads((tmp_path / "scored.json").read_text())
    assert record["records"] == 6 and record["alleles_scored"] == 5 and record["ref_mismatch"] == 1
    assert record["skipped"] == {"missing_alt": 1, "symbolic": 1, "not_dna": 0,
                                 "longer_than_window": 0}  # fmt: skip
    # The reference windows of the multi-allelic site are scored once for its three alleles.
    assert record["windows_scored"] == 2 * 5 - 1
    rows = (tmp_path / "scored.tsv").read_text().splitlines()
    assert rows[0].startswith("chrom\tpos\tid\tref\talt\tstatus") and len(rows) == 1 + 8
    assert (tmp_path / "scored.png").stat().st_size > 0


def test_swapping_ref_and_alt_negates_delta(tmp_path, mini_fasta, chr2, tiny_classifier) -> None:
    pos = 15000
    alt = "C" if chr2[pos - 1] != "C" else "G"
    edited = tmp_path / "edited.fa"
    edited.write_text(f">chr2\n{chr2[: pos - 1]}{alt}{chr2[pos:]}\n")
    forward = score_variants(
        [_record(pos, chr2[pos - 1], alt)], mini_fasta, tmp_path / "f.vcf.gz", tiny_classifier,
        VariantOptions(progress=False, tsv=True),
    )  # fmt: skip
    back = score_variants(
        [_record(pos, alt, chr2[pos - 1])], edited, tmp_path / "b.vcf.gz", tiny_classifier,
        VariantOptions(progress=False, tsv=True),
    )  # fmt: skip
    assert forward["alleles_scored"] == back["alleles_scored"] == 1
    f = (tmp_path / "f.tsv").read_text().splitlines()[1].split("\t")
    b = (tmp_path / "b.tsv").read_text().splitlines()[1].split("\t")
    assert float(f[8]) == pytest.approx(-float(b[8]), abs=2e-6) and float(f[8]) != 0


def _record(pos: int, ref: str, alt: str):
    from enhscan.io.vcf import VariantRecord

    return VariantRecord("chr2", pos - 1, None, ref, (alt,), None, f"chr2:{pos}")


def test_a_table_saturation_and_regions(tmp_path, mini_fasta, chr2, tiny_model_dir) -> None:
    table = tmp_path / "v.tsv"
    table.write_text(f"chrom\tpos\tref\talt\n2\t20000\t{chr2[19999]}\tA\n2\t100\t{chr2[99]}\tG\n")
    bed = tmp_path / "r.bed"
    bed.write_text("chr2\t19000\t21000\n")
    run_cli("variants", str(table), "-g", str(mini_fasta), "-m", str(tiny_model_dir),
            "-o", str(tmp_path / "t.vcf.gz"), "--regions", str(bed))  # fmt: skip
    lines = [x for x in gzip.open(tmp_path / "t.vcf.gz", "rt") if not x.startswith("#")]
    assert len(lines) == 1 and lines[0].startswith("chr2\t20000\t")  # "2" is the genome's chr2
    run_cli("variants", "-g", str(mini_fasta), "-m", str(tiny_model_dir), "--saturate",
            "chr2:30,001-30,010", "-o", str(tmp_path / "s.vcf.gz"), "--tsv")  # fmt: skip
    record = json.loads((tmp_path / "s.json").read_text())
    assert record["records"] == 10 and record["alleles_scored"] == 30
    rows = (tmp_path / "s.tsv").read_text().splitlines()[1:]
    assert {r.split("\t")[3] + r.split("\t")[4] for r in rows[:3]} == {
        chr2[30000] + b for b in "ACGT" if b != chr2[30000]
    }


def _text(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _plain_gzip(path: Path) -> Path:
    """The file gzip-compressed as gzip does it, not bgzip (htslib refuses to read it)."""
    packed = path.with_name(path.name + ".gz")
    packed.write_bytes(gzip.compress(path.read_bytes()))
    path.unlink()
    return packed


def _wrong_ref(s: str) -> str:
    return "A" if s[4] != "A" else "C"


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d, s: _vcf(d / "x.vcf", ["chr9\t10\t.\tA\tG\t.\t.\t.\tGT\t0/1"], "chr9"),
         "chr9 is not in"),
        (lambda d, s: _vcf(d / "x.vcf", ["chr2\t60000\t.\tAC\tG\t.\t.\t.\tGT\t0/1"]),
         "past the end of chr2"),
        (lambda d, s: _text(d / "x.vcf", "not a vcf\n"), "is not a VCF or BCF"),
        (lambda d, s: _vcf(d / "x.vcf", [f"chr2\t5\t.\t{_wrong_ref(s)}\tG\t.\t.\t.\tGT\t0/1"]),
         "does not match the genome"),
        (lambda d, s: _plain_gzip(_vcf(d / "x.vcf", _variants(s))),
         "is gzip-compressed but not with bgzip"),
    ],
)  # fmt: skip
def test_bad_input_is_refused_in_one_line_and_nothing_is_left(
    tmp_path, mini_fasta, chr2, tiny_model_dir, make, message
) -> None:
    source = make(tmp_path, chr2)
    out = tmp_path / "o.vcf.gz"
    result = run_cli("variants", str(source), "-g", str(mini_fasta), "-m", str(tiny_model_dir),
                     "-o", str(out), "--on-mismatch", "error", expect=1)  # fmt: skip
    assert len(result.output.strip().splitlines()) == 1 and message in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["genome", source.name]


def test_outputs_are_named_and_kept(tmp_path, mini_fasta, tiny_model_dir) -> None:
    table = tmp_path / "v.tsv"
    table.write_text("chr2\t100\tA\tG\n")
    args = [str(table), "-g", str(mini_fasta), "-m", str(tiny_model_dir)]
    result = run_cli("variants", *args, "-o", str(tmp_path / "o.vcf"), expect=1)
    assert "ending in .vcf.gz" in result.output
    (tmp_path / "o.vcf.gz").write_text("mine")
    result = run_cli("variants", *args, "-o", str(tmp_path / "o.vcf.gz"), expect=1)
    assert "exists; use --force" in result.output
    assert (tmp_path / "o.vcf.gz").read_text() == "mine"
    result = run_cli("variants", *args[1:], "-o", str(tmp_path / "n.vcf.gz"), expect=2)
    assert "give VARIANTS or --saturate REGION" in result.output


def test_an_interrupted_run_resumed_and_two_processes_write_the_same_files(
    tmp_path, monkeypatch, mini_fasta, chr2, tiny_model_dir
) -> None:
    from enhscan.scan.shards import ShardStore

    vcf = _vcf(tmp_path / "in.vcf", _variants(chr2))
    options = VariantOptions(progress=False, chunk=2, tsv=True)
    clean = tmp_path / "clean" / "s.vcf.gz"
    score_variants(vcf, mini_fasta, clean, tiny_model_dir, options)

    real, saved = ShardStore.save, []

    def save(self, shard, scores):
        if saved:
            raise KeyboardInterrupt
        real(self, shard, scores)
        saved.append(shard.index)

    out = tmp_path / "resumed" / "s.vcf.gz"
    monkeypatch.setattr(ShardStore, "save", save)
    with pytest.raises(KeyboardInterrupt):
        score_variants(vcf, mini_fasta, out, tiny_model_dir, options)
    monkeypatch.setattr(ShardStore, "save", real)
    assert not out.exists() and len(list((out.parent / ".s.vcf.gz.shards").glob("shard-*"))) == 1
    with pytest.raises(EnhscanError, match="unfinished .* --resume"):
        score_variants(vcf, mini_fasta, out, tiny_model_dir, options)
    with pytest.raises(EnhscanError, match=r"--rc \(null then, \"max\" now\)"):
        score_variants(
            vcf, mini_fasta, out, tiny_model_dir, replace(options, resume=True, rc="max")
        )
    record = score_variants(vcf, mini_fasta, out, tiny_model_dir, replace(options, resume=True))
    assert record["resumed_shards"] == 1
    for name in ("s.vcf.gz", "s.vcf.gz.tbi", "s.tsv"):
        assert (out.parent / name).read_bytes() == (clean.parent / name).read_bytes(), name
    assert not (out.parent / ".s.vcf.gz.shards").exists()

    # One process and two, each of one thread (BLAS sums in another order with more).
    import os
    import subprocess
    import sys

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    runs = {}
    for processes in ("1", "2"):
        runs[processes] = tmp_path / processes / "s.vcf.gz"
        command = ["variants", str(vcf), "-g", str(mini_fasta), "-m", str(tiny_model_dir), "-o",
                   str(runs[processes]), "--tsv", "--device", "cpu", "--chunk", "2",
                   "--processes", processes]  # fmt: skip
        subprocess.run([sys.executable, "-m", "enhscan", "-q", *command], check=True, env=env)
    one, two = runs["1"], runs["2"]
    assert (two.parent / "s.tsv").read_bytes() == (one.parent / "s.tsv").read_bytes()

    def body(path: Path) -> list[str]:  # all but the line naming the command that ran
        return [x for x in gzip.open(path, "rt") if not x.startswith("##enhscanCommand")]

    assert body(two) == body(one)
    assert json.loads((two.parent / "s.json").read_text())["processes"] == 2


def test_the_figure_keeps_every_delta_and_the_ten_strongest() -> None:
    from enhscan.variants import Effects

    deltas = RNG.normal(0, 0.1, 500)
    effects = Effects()
    for i, d in enumerate(deltas):
        effects.add(float(d), f"v{i}")
    want = sorted(range(500), key=lambda i: -abs(np.float32(deltas[i])))[:10]
    assert [label for _, label in effects.strongest()] == [f"v{i}" for i in want]
    np.testing.assert_array_equal(
        np.frombuffer(effects.values, np.float32), deltas.astype(np.float32)
    )


def test_p_values_against_the_models_background_null(
    tmp_path, mini_fasta, chr2, tiny_model_with_null
) -> None:
    from enhscan.model import load_classifier
    from enhscan.model.null import load_null
    from enhscan.significance import empirical_pvalues

    vcf = _vcf(tmp_path / "in.vcf", _variants(chr2)[:1])
    out = tmp_path / "p.vcf.gz"
    run_cli("variants", str(vcf), "-g", str(mini_fasta), "-m", str(tiny_model_with_null),
            "-o", str(out))  # fmt: skip
    line = next(x for x in gzip.open(out, "rt") if not x.startswith("#"))
    info = _info(line.rstrip("\n"))
    null = load_null(tiny_model_with_null, load_classifier(tiny_model_with_null).identity)
    p = np.array([float(info["EHS_P_REF"][0]), float(info["EHS_P_ALT"][0])])
    want = empirical_pvalues(p, null.for_strands(None))
    got = [float(info["EHS_PVAL_REF"][0]), float(info["EHS_PVAL_ALT"][0])]
    np.testing.assert_allclose(got, want, rtol=1e-5)
    assert "##INFO=<ID=EHS_PVAL_ALT,Number=A" in gzip.open(out, "rt").read()


def test_real_world_inputs(tmp_path, mini_fasta, chr2, tiny_model_dir) -> None:
    args = ["-g", str(mini_fasta), "-m", str(tiny_model_dir)]
    # A table with a comment first, a header, and two alleles at a site.
    table = tmp_path / "calls.chr2.tsv"
    table.write_text(f"# my SNVs\nchrom pos ref alt\nchr2 20000 {chr2[19999]} A,G\n")
    out = tmp_path / "NA12878.chr2.vcf.gz"
    run_cli("variants", str(table), *args, "-o", str(out))
    record = json.loads((tmp_path / "NA12878.chr2.json").read_text())  # the whole stem kept
    assert chr2[19999] == "T" and record["records"] == 1 and record["alleles_scored"] == 2
    # Scoring enhscan's own output again: its fields are replaced, not repeated.
    again = tmp_path / "again.vcf.gz"
    run_cli("variants", str(out), *args, "-o", str(again))
    text = gzip.open(again, "rt").read()
    assert text.count("##INFO=<ID=EHS_DELTA") == 1
    line = next(x for x in text.splitlines() if not x.startswith("#"))
    assert line.count("EHS_DELTA=") == 1
    assert (
        line.split("\t")[7]
        == next(x for x in gzip.open(out, "rt").read().splitlines() if not x.startswith("#")).split(
            "\t"
        )[7]
    )
    # A contig the genome lacks is left out with --regions, refused without.
    lines = ["chrUn_KI270302v1\t10\t.\tA\tG\t.\t.\t.\tGT\t0/1",
             f"chr2\t20000\t.\t{chr2[19999]}\tN\t.\t.\t.\tGT\t0/1"]  # fmt: skip
    vcf = _vcf(tmp_path / "alt.vcf", lines)
    bed = tmp_path / "r.bed"
    bed.write_text("chr2\t19000\t21000\n")
    run_cli("variants", str(vcf), *args, "-o", str(tmp_path / "r.vcf.gz"), "--regions", str(bed))
    record = json.loads((tmp_path / "r.json").read_text())
    assert record["outside_regions"] == 1 and record["records"] == 2
    result = run_cli("variants", str(vcf), *args, "-o", str(tmp_path / "x.vcf.gz"), expect=1)
    assert "chrUn_KI270302v1 is not in" in result.output
    # Refused before the model loads: a missing file, and every task at once.
    missing = str(tmp_path / "none.vcf")
    result = run_cli("variants", missing, *args, "-o", str(tmp_path / "n.vcf.gz"), expect=1)
    assert "variants" in result.output and "no such file" in result.output
    with pytest.raises(EnhscanError, match="one --task"):
        score_variants(vcf, mini_fasta, tmp_path / "t.vcf.gz", tiny_model_dir,
                       VariantOptions(task="all"))  # fmt: skip


def test_an_output_under_a_file_is_refused_in_one_line(tmp_path, mini_fasta, tiny_model_dir):
    (tmp_path / "afile").write_text("mine")
    table = _text(tmp_path / "v.tsv", "chr2\t100\tA\tG\n")
    result = run_cli("variants", str(table), "-g", str(mini_fasta), "-m", str(tiny_model_dir),
                     "-o", str(tmp_path / "afile" / "o.vcf.gz"), expect=1)  # fmt: skip
    assert "afile is a file, not a folder; choose another --out" in result.output
    assert (tmp_path / "afile").read_text() == "mine"


def test_a_run_stopped_before_its_first_shard_leaves_nothing(
    tmp_path, mini_fasta, chr2, tiny_model_dir
):
    """Ctrl-C before any shard is finished: no shard store is left to stand in the way of the
    same command run again."""
    from enhscan.variants import shard_store

    def records():
        yield _record(100, chr2[99], "A" if chr2[99] != "A" else "C")
        raise KeyboardInterrupt

    out = tmp_path / "o.vcf.gz"
    with pytest.raises(KeyboardInterrupt):
        score_variants(records, mini_fasta, out, tiny_model_dir, VariantOptions(progress=False))
    assert not shard_store(out).exists() and not out.exists()
