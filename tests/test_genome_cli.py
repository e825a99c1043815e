"""`enhscan genome` end to end: outputs read back and checked against direct scoring."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyBigWig
import pytest
import torch
from click.testing import CliRunner

from enhscan import __version__
from enhscan.backend import ComputeOptions
from enhscan.calling import call_regions
from enhscan.cli import cli
from enhscan.engine import WindowScorer
from enhscan.io.fasta import open_genome
from enhscan.scan import ScanSettings, scan_genome
from enhscan.scan.outputs import OUTPUTS
from enhscan.tiling import tile_chrom
from tests.conftest import run_cli as run

ACGT = set("ACGT")


def scan(fasta: Path, model: Path, out: Path, *extra: str, expect: int = 0):
    """``enhscan -q genome FASTA --model MODEL --out OUT EXTRA...``"""
    return run(
        "genome", str(fasta), "--model", str(model), "--out", str(out), *extra, expect=expect
    )


def expected_scores(
    fasta: Path, classifier, chrom: str, stretches=None, window=1000, stride=200, max_n=0
):
    """Score the windows of one chromosome directly, one window at a time."""
    with open_genome(fasta) as genome:
        length = genome.lengths[chrom]
        tiling = tile_chrom(chrom, length, stretches or [(0, length)], window, stride)
        scorer = WindowScorer(classifier, ComputeOptions(batch_size=1))
        scores = np.full(len(tiling), np.nan, dtype=np.float32)
        for k, start in enumerate(tiling.starts):
            seq = genome.fetch(chrom, int(start), int(start) + window)
            if sum(base not in ACGT for base in seq) <= max_n:
                scores[k] = scorer.score([seq])[0]
    return tiling, scores


def read_track(path: Path, chrom: str) -> list[tuple[int, int, float]]:
    with pyBigWig.open(str(path)) as bw:
        return list(bw.intervals(chrom) or [])


def read_calls(path: Path) -> list[list[str]]:
    return [line.rstrip("\n").split("\t") for line in path.read_text().splitlines()]


def test_scan_writes_track_calls_and_record(tmp_path, mini_fasta, tiny_model_dir, tiny_classifier):
    out = tmp_path / "tracks"
    scan(mini_fasta, tiny_model_dir, out, "--threshold", "0.6", "--track", "probability")
    assert sorted(p.name for p in out.iterdir()) == [
        "calls.bb",
        "calls.narrowPeak",
        "genomes.txt",
        "hub.txt",
        "igv_session.xml",
        "run.json",
        "scores.bw",
        "trackDb.txt",
    ]

    with pyBigWig.open(str(out / "scores.bw")) as bw:
        # Every FASTA sequence is in the header, in FASTA order, with its length.
        assert list(bw.chroms().items()) == [
            ("chr2", 60000),
            ("chr22_32000000", 30500),
            ("yeastI_0_700", 700),
        ]
    record = json.loads((out / "run.json").read_text())
    all_calls = read_calls(out / "calls.narrowPeak")
    total_scored = 0
    for chrom in ("chr2", "chr22_32000000"):
        tiling, scores = expected_scores(mini_fasta, tiny_classifier, chrom)
        scored = ~np.isnan(scores)
        total_scored += scored.sum()
        track = read_track(out / "scores.bw", chrom)
        assert [(s, e) for s, e, _ in track] == list(
            zip(tiling.bin_starts[scored].tolist(), tiling.bin_ends[scored].tolist(), strict=True)
        )
        np.testing.assert_allclose([v for _, _, v in track], scores[scored], atol=1e-5, rtol=0)
        # Calls are exactly the thresholded track.
        calls = [c for c in all_calls if c[0] == chrom]
        want = call_regions(tiling.bin_starts, tiling.bin_ends, scores, 0.6)
        assert [(int(c[1]), int(c[2])) for c in calls] == [(w.start, w.end) for w in want]
        for line, call in zip(calls, want, strict=True):
            assert float(line[6]) == pytest.approx(call.max_score, abs=1e-5)
            assert int(line[1]) + int(line[9]) == call.summit
        assert record["per_chromosome"][chrom]["scored"] == scored.sum()
    assert len(all_calls) == record["calls"] > 0
    stages = record["stages"]
    assert stages["chunks"] >= 1 and stages["model_seconds"] > 0 and stages["tokenize_seconds"] > 0
    assert stages["input_wait_seconds"] + stages["model_seconds"] <= record["scan_seconds"]
    # Calls are sorted and named uniquely.
    assert len({c[3] for c in all_calls}) == len(all_calls)

    # chr2 starts with a 10 kb N run: those windows are skipped and have no value (not 0).
    chr2_track = read_track(out / "scores.bw", "chr2")
    assert chr2_track[0][0] >= 10000 - 1000
    assert record["per_chromosome"]["chr2"]["skipped_n"] > 40
    # The 700 bp sequence is shorter than a window: reported, not scored.
    assert record["chromosomes_too_short"] == ["yeastI_0_700"]
    assert read_track(out / "scores.bw", "yeastI_0_700") == []
    assert record["windows"]["scored"] == total_scored
    assert record["model"]["identity"].startswith("sha256:")
    assert record["parameters"]["stride"] == 200 and record["parameters"]["window"] == 1000
    assert record["genome"]["sizes"]["chr2"] == 60000


def test_track_reads_back_with_ucsc_library(tmp_path, mini_fasta, tiny_model_dir):
    bbi = pytest.importorskip("bbi")
    out = tmp_path / "t"
    run("genome", str(mini_fasta), "-m", str(tiny_model_dir), "-o", str(out), "--chroms", "chr22*")
    path = str(out / "scores.bw")
    assert bbi.is_bigwig(path)
    assert bbi.chromsizes(path)["chr22_32000000"] == 30500
    dense = bbi.fetch(path, "chr22_32000000", 0, 30500)
    with pyBigWig.open(path) as bw:
        np.testing.assert_allclose(dense, bw.values("chr22_32000000", 0, 30500), atol=1e-6)
    assert not np.isnan(dense).any()  # no N in this piece: every base has a value


def test_soft_masked_bases_score_as_upper_case(tmp_path, tiny_classifier):
    upper = "".join(np.random.default_rng(1).choice(list("ACGT"), size=1600))
    mixed = upper[:300] + upper[300:900].lower() + upper[900:]
    for name, seq in (("u", upper), ("m", mixed)):
        (tmp_path / f"{name}.fa").write_text(f">s\n{seq}\n")
        scan_genome(
            tmp_path / f"{name}.fa",
            tmp_path / name,
            tiny_classifier,
            ScanSettings.of(progress=False),
        )
    assert read_track(tmp_path / "u" / "scores.bw", "s") == read_track(
        tmp_path / "m" / "scores.bw", "s"
    )


def test_max_n_lets_windows_with_few_n_through(tmp_path, tiny_classifier):
    seq = list(np.random.default_rng(2).choice(list("ACGT"), size=3000))
    seq[1500] = "N"
    seq[1510] = "R"
    (tmp_path / "g.fa").write_text(">s\n" + "".join(seq) + "\n")
    strict = scan_genome(
        tmp_path / "g.fa", tmp_path / "a", tiny_classifier, ScanSettings.of(progress=False)
    )
    loose = scan_genome(
        tmp_path / "g.fa", tmp_path / "b", tiny_classifier, ScanSettings.of(progress=False, max_n=2)
    )
    assert strict["windows"]["skipped_n"] == 5 and strict["windows"]["total"] == 11
    assert loose["windows"]["skipped_n"] == 0 and loose["windows"]["scored"] == 11


def test_same_output_whatever_the_batch_size_and_chunking(tmp_path, mini_fasta, tiny_classifier):
    runs = {}
    for name, settings in {
        "a": ScanSettings.of(progress=False, batch_size=1, chunk_bases=3000),
        "b": ScanSettings.of(progress=False, batch_size=64),
        "c": ScanSettings.of(progress=False, batch_size=5, chunk_bases=100_000),
    }.items():
        scan_genome(mini_fasta, tmp_path / name, tiny_classifier, settings)
        runs[name] = [
            read_track(tmp_path / name / "scores.bw", c) for c in ("chr2", "chr22_32000000")
        ]
    for name in ("b", "c"):
        for got, want in zip(runs[name], runs["a"], strict=True):
            assert [(s, e) for s, e, _ in got] == [(s, e) for s, e, _ in want]
            np.testing.assert_allclose([v for *_, v in got], [v for *_, v in want], atol=1e-5)


def test_regions_and_exclude_with_other_chrom_naming(tmp_path, mini_fasta, tiny_model_dir):
    # FASTA says chr2; the BEDs say 2 (Ensembl style) and must still match.
    (tmp_path / "regions.bed").write_text("2\t20000\t23000\n2\t40000\t40100\n")
    (tmp_path / "exclude.bed").write_text("track name=blacklist\n2\t21000\t21500\n")
    run(
        "genome",
        str(mini_fasta),
        "-m",
        str(tiny_model_dir),
        "-o",
        str(tmp_path / "o"),
        "--regions",
        str(tmp_path / "regions.bed"),
        "--exclude",
        str(tmp_path / "exclude.bed"),
    )
    track = read_track(tmp_path / "o" / "scores.bw", "chr2")
    covered = [(s, e) for s, e, _ in track]
    # [20000, 21000) is one window; [21500, 23000) is tiled; the short region is widened to
    # [39550, 40550); nothing else is scored.
    assert covered[0] == (20000, 21000)
    assert all(not (s < 21500 and e > 21000) for s, e in covered)
    assert covered[-1] == (39550, 40550)
    assert all(20000 <= s and e <= 40550 for s, e in covered)
    assert read_track(tmp_path / "o" / "scores.bw", "chr22_32000000") == []


def test_default_rule_calls_at_fdr_005_against_the_scans_own_null(
    tmp_path, mini_fasta, tiny_model_dir
):
    """A model folder without a background null: the scan's own scores make an empirical
    null, the run record says so, and the calls are the windows with BH q <= the rate: none
    at 0.05 for this random model (it has nothing to find), some at 0.95."""
    from enhscan.significance import ScanSignificance

    out, raw = tmp_path / "o", tmp_path / "raw"
    run("genome", str(mini_fasta), "-m", str(tiny_model_dir), "-o", str(out))
    scan(mini_fasta, tiny_model_dir, raw, "--track", "probability")
    record = json.loads((out / "run.json").read_text())
    calling = record["calling"]
    assert (calling["rule"], calling["value"], calling["described"]) == ("fdr", 0.05, "FDR 0.05")
    assert calling["null"]["source"] == "scan" and calling["track"] == "log10p"
    chroms = ("chr2", "chr22_32000000")
    flat = np.concatenate([[v for *_, v in read_track(raw / "scores.bw", c)] for c in chroms])
    flat = flat.astype(np.float32)
    sig = ScanSignificance(flat, None)
    q = sig.qvalues(flat)
    assert calling["windows_called"] == int((q <= 0.05).sum()) == 0
    loose = tmp_path / "loose"
    scan(mini_fasta, tiny_model_dir, loose, "--fdr", "0.95")
    loose_calling = json.loads((loose / "run.json").read_text())["calling"]
    assert 0 < loose_calling["windows_called"] == int((q <= 0.95).sum())
    cut = loose_calling["probability_threshold"]
    assert np.all(q[flat >= cut] <= 0.95) and np.all(q[flat < cut] > 0.95)
    # The track holds -log10 p of each window.
    track = np.concatenate([[v for *_, v in read_track(out / "scores.bw", c)] for c in chroms])
    np.testing.assert_allclose(track, -np.log10(sig.pvalues(flat)), rtol=1e-5)
    assert read_calls(out / "calls.narrowPeak") == read_calls(raw / "calls.narrowPeak")
    assert record["parameters"]["fdr"] == 0.05 and record["parameters"]["threshold"] is None


def test_existing_outputs_need_force(tmp_path, mini_fasta, tiny_model_dir):
    out = tmp_path / "o"
    args = (
        "genome",
        str(mini_fasta),
        "-m",
        str(tiny_model_dir),
        "-o",
        str(out),
        "--chroms",
        "chr22_32000000",
    )
    run(*args)
    before = (out / "scores.bw").read_bytes()
    result = run(*args, expect=1)
    assert "--force" in result.output and len(result.output.strip().splitlines()) == 1
    assert (out / "scores.bw").read_bytes() == before
    run(*args, "--force", "--stride", "500")
    assert (out / "scores.bw").read_bytes() != before


@pytest.mark.parametrize(
    "args, message",
    [
        (["--threshold", "1.5"], "1.5"),
        (["--window", "0"], "--window"),
        (["--stride", "0"], "--stride"),
        (["--max-n", "-1"], "--max-n"),
        (["--chroms", "chrZZ"], "matches no sequence"),
    ],
)
def test_bad_options(tmp_path, mini_fasta, tiny_model_dir, args, message):
    result = run(
        "genome",
        str(mini_fasta),
        "-m",
        str(tiny_model_dir),
        "-o",
        str(tmp_path / "o"),
        *args,
        expect=2 if args[0] != "--chroms" else 1,
    )
    assert message in result.output
    assert not (tmp_path / "o" / "scores.bw").exists()


def test_bad_inputs_fail_cleanly(tmp_path, mini_fasta, tiny_model_dir):
    outfile = tmp_path / "afile"
    outfile.write_text("x")
    cases = [
        (
            ["genome", str(tmp_path / "missing.fa"), "-m", str(tiny_model_dir), "-o", "o1"],
            "does not exist",
        ),
        (["genome", str(mini_fasta), "-m", str(tmp_path / "nomodel"), "-o", "o2"], "model folder"),
        (["genome", str(mini_fasta), "-m", str(tiny_model_dir), "-o", str(outfile)], "is a file"),
    ]
    bad_bed = tmp_path / "bad.bed"
    bad_bed.write_text("chr2\t100\n")
    cases.append(
        (
            [
                "genome",
                str(mini_fasta),
                "-m",
                str(tiny_model_dir),
                "-o",
                "o4",
                "--regions",
                str(bad_bed),
            ],
            "line 1",
        )
    )
    for args, message in cases:
        args = [str(tmp_path / a) if a in ("o1", "o2", "o4") else a for a in args]
        result = CliRunner().invoke(cli, ["-q", *args])
        assert result.exit_code != 0
        assert message in result.output, result.output
        assert result.output.startswith(("Error", "Usage")), result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)
        # Inputs are checked before the output folder is made.
        assert not any((tmp_path / folder).exists() for folder in ("o1", "o2", "o4"))


@pytest.mark.parametrize(
    "stage, method",
    [("model", "run"), ("reader", "prepare"), ("shard saving", "save"), ("outputs", "add")],
)
def test_interrupted_scan_leaves_no_output(
    tmp_path, mini_fasta, tiny_classifier, monkeypatch, stage, method
):
    """Ctrl-C or an error in any stage stops the scan and leaves no output file, half-written
    or not; only the folder of finished shards stays, for --resume."""
    from enhscan.errors import EnhscanError
    from enhscan.io.bigwig import BigWigWriter
    from enhscan.scan.shards import ShardStore

    owner = {"add": BigWigWriter, "save": ShardStore}.get(method, WindowScorer)
    real = getattr(owner, method)
    calls = {"n": 0}

    def failing(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt if stage == "model" else OSError(f"{stage} failed")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(owner, method, failing)
    expected = {"model": KeyboardInterrupt, "reader": EnhscanError}.get(stage, OSError)
    with pytest.raises(expected) as caught:
        scan_genome(
            mini_fasta,
            tmp_path / "o",
            tiny_classifier,
            # plain kernels: no start-up check runs probe batches, so the second run() is
            # the scan's
            ScanSettings.of(progress=False, chunk_bases=5000, shard_windows=40, kernels="plain"),
        )
    if stage == "reader":
        assert "stopped on shard 1 (chr2 windows 5-14): reader failed" in str(caught.value)
        assert "rerun with --resume" in str(caught.value)
    left = [p.name for p in (tmp_path / "o").iterdir()]
    assert left == [".enhscan-shards"]


def test_read_only_fasta_folder_indexes_into_out(tmp_path, mini_fasta, tiny_classifier):
    folder = mini_fasta.parent
    folder.chmod(0o555)
    try:
        scan_genome(
            mini_fasta,
            tmp_path / "o",
            tiny_classifier,
            ScanSettings.of(progress=False, chroms=["chr22*"]),
        )
    finally:
        folder.chmod(0o755)
    assert (tmp_path / "o" / "mini.fa.fai").exists()
    assert not (folder / "mini.fa.fai").exists()


def test_version_help_and_module_entry_point():
    assert __version__ in CliRunner().invoke(cli, ["-V"]).output
    assert "genome" in CliRunner().invoke(cli, ["-h"]).output
    assert "--stride" in CliRunner().invoke(cli, ["genome", "-h"]).output
    done = subprocess.run(
        [sys.executable, "-m", "enhscan", "--version"], capture_output=True, text=True, check=True
    )
    assert __version__ in done.stdout


def test_quiet_and_verbose_work_after_the_subcommand_too(tmp_path, mini_fasta, tiny_model_dir):
    args = ["genome", str(mini_fasta), "-m", str(tiny_model_dir), "--chroms", "chr22_32000000"]
    loud = CliRunner().invoke(cli, [*args, "-o", str(tmp_path / "a")])
    assert loud.exit_code == 0 and "scored" in loud.stderr
    for where in (["-q", *args], [*args, "-q"]):
        quiet = CliRunner().invoke(cli, [*where, "-o", str(tmp_path / "b"), "--force"])
        assert quiet.exit_code == 0 and quiet.stderr == "", quiet.output
    verbose = CliRunner().invoke(cli, [*args, "-o", str(tmp_path / "c"), "-v"])
    assert verbose.exit_code == 0 and "INFO" in verbose.stderr


@pytest.mark.slow
def test_real_hg38_piece_bgzip(tmp_path, tiny_model_dir):
    """The issue's acceptance scan: 2.3 Mb of hg38 chr2 (bgzip), read back with both libraries."""
    from tests.conftest import SHARED

    source = SHARED / "genomes" / "hg38_chr2_0-2333275.fa.gz"
    if not source.exists():
        pytest.skip("shared data not present")
    bbi = pytest.importorskip("bbi")
    out = tmp_path / "o"
    run("genome", str(source), "-m", str(tiny_model_dir), "-o", str(out))
    record = json.loads((out / "run.json").read_text())
    assert record["windows"]["scored"] > 11000
    with pyBigWig.open(str(out / "scores.bw")) as bw:
        assert bw.chroms() == {"chr2": 2333275}
        values = bw.values("chr2", 20000, 2333275, numpy=True)
    np.testing.assert_allclose(
        bbi.fetch(str(out / "scores.bw"), "chr2", 20000, 2333275), values, atol=1e-6
    )


def test_dry_run_counts_windows_and_writes_nothing(tmp_path, mini_fasta, tiny_model_dir) -> None:
    from enhscan.tiling import count_windows

    with open_genome(mini_fasta) as genome:
        expected = sum(count_windows(0, n, 1000, 300) for n in genome.lengths.values())
    out = tmp_path / "never"
    result = scan(mini_fasta, tiny_model_dir, out, "--stride", "300", "--dry-run")
    lines = result.output.splitlines()
    assert lines[0].startswith(f"windows to scan:  {expected:,} over ")
    assert "windows/s on cpu, float32" in lines[1]
    assert lines[2].startswith("stages:           tokenizing ")
    assert re.search(r" on \d+ CPU cores?, model ", lines[2])
    assert lines[3].startswith("projected time:")
    assert not out.exists()


def test_dry_run_counts_the_cores_the_tokenizer_may_use(monkeypatch) -> None:
    from enhscan.scan.dryrun import cpu_cores, tokenizer_cores

    monkeypatch.delenv("RAYON_NUM_THREADS", raising=False)
    assert tokenizer_cores() == cpu_cores()
    monkeypatch.setenv("RAYON_NUM_THREADS", "1")  # as --processes sets it
    assert tokenizer_cores() == 1
    for ignored in ("0", "many"):
        monkeypatch.setenv("RAYON_NUM_THREADS", ignored)
        assert tokenizer_cores() == cpu_cores()
    monkeypatch.setenv("RAYON_NUM_THREADS", str(cpu_cores() + 8))
    assert tokenizer_cores() == cpu_cores()


def test_pipeline_rate_overlaps_on_a_gpu_and_adds_up_on_the_cpu() -> None:
    from enhscan.scan.dryrun import pipeline_rate

    assert pipeline_rate(3000.0, 8000.0, separate_device=True) == 3000.0
    assert pipeline_rate(30000.0, 8000.0, separate_device=True) == 8000.0
    assert pipeline_rate(3000.0, 150.0, separate_device=False) == pytest.approx(
        1 / (1 / 3000 + 1 / 150)
    )


def test_dry_run_names_the_stage_that_sets_the_pace() -> None:
    from enhscan.backend import Backend
    from enhscan.cli.genome import pace_note
    from enhscan.scan.dryrun import Projection

    def projection(device: str, tokenize: float, model: float) -> Projection:
        return Projection(
            chromosomes=1,
            bases=1000,
            windows=1,
            sampled=1,
            sampled_skipped_n=0,
            windows_per_second=1.0,
            projected_seconds=1.0,
            backend=Backend(torch.device(device), batch_size=8),
            tokenize_windows_per_second=tokenize,
            model_windows_per_second=model,
        )

    assert pace_note(projection("cuda:0", 30000.0, 8000.0)) == "the model sets the pace"
    assert "more CPU cores" in pace_note(projection("cuda:0", 3000.0, 8000.0))
    assert "larger share of the CPU" in pace_note(projection("cpu", 100.0, 150.0))


def test_out_is_required_without_dry_run(mini_fasta, tiny_model_dir) -> None:
    result = run("genome", str(mini_fasta), "--model", str(tiny_model_dir), expect=2)
    assert "--out" in result.output


def test_quantized_scan_is_recorded(tmp_path, mini_fasta, tiny_model_dir) -> None:
    out = tmp_path / "q"
    scan(mini_fasta, tiny_model_dir, out, "--quantize", "--device", "cpu")
    record = json.loads((out / "run.json").read_text())
    assert record["parameters"]["quantize"] is True
    assert record["windows"]["scored"] > 0


def test_format_duration() -> None:
    from enhscan.cli.genome import format_duration

    assert format_duration(42.4) == "42 s"
    assert format_duration(3725) == "1 h 2 min"
    assert format_duration(200_000) == "2 d 7 h"
    assert format_duration(float("nan")) == "nothing"


def test_call_top_calls_the_best_fraction_of_windows(tmp_path, mini_fasta, tiny_model_dir):
    out = tmp_path / "top"
    scan(mini_fasta, tiny_model_dir, out, "--call-top", "0.1", "--track", "probability")
    record = json.loads((out / "run.json").read_text())
    threshold = record["parameters"]["threshold"]
    assert record["parameters"]["call_top"] == 0.1
    values = []
    for chrom in ("chr2", "chr22_32000000"):
        values += [v for _, _, v in read_track(out / OUTPUTS["bigwig"], chrom)]
    values = np.array(values)  # one value per scored window (its bin)
    n = record["windows"]["scored"]
    assert len(values) == n
    assert (values >= threshold).sum() == int(np.ceil(0.1 * n))  # random scores: no ties
    called_bp = sum(int(c[2]) - int(c[1]) for c in read_calls(out / OUTPUTS["calls"]))
    assert called_bp > 0
    result = scan(
        mini_fasta, tiny_model_dir, out, "-f", "--call-top", "0.1", "--threshold", "0.5", expect=1
    )
    assert "give one of --fdr, --threshold and --call-top" in result.output


def test_bedgraph_track_holds_the_bigwig_values(tmp_path, mini_fasta, tiny_model_dir):
    out = tmp_path / "both"
    scan(mini_fasta, tiny_model_dir, out, "--format", "bigwig,bedgraph")
    lines = [line.split("\t") for line in (out / "scores.bedGraph").read_text().splitlines()]
    for chrom in ("chr2", "chr22_32000000"):
        want = read_track(out / "scores.bw", chrom)
        got = [(int(s), int(e), float(v)) for c, s, e, v in lines if c == chrom]
        assert [(s, e) for s, e, _ in got] == [(s, e) for s, e, _ in want]
        np.testing.assert_allclose([v for *_, v in got], [v for *_, v in want], rtol=1e-5)
    record = json.loads((out / "run.json").read_text())
    assert record["outputs"] == {
        "bigwig": "scores.bw",
        "bedgraph": "scores.bedGraph",
        "calls": "calls.narrowPeak",
    }
    only = tmp_path / "text"
    scan(mini_fasta, tiny_model_dir, only, "--format", "bedgraph")
    assert not (only / "scores.bw").exists()
    assert (only / "scores.bedGraph").read_text() == (out / "scores.bedGraph").read_text()
    result = scan(mini_fasta, tiny_model_dir, tmp_path / "x", "--format", "wig", expect=2)
    assert "give bigwig and/or bedgraph" in result.output


@pytest.mark.parametrize("how", ["mean", "max"])
def test_rc_combines_both_strands(tmp_path, mini_fasta, tiny_model_dir, tiny_classifier, how):
    from enhscan.sequence import reverse_complement

    out = tmp_path / how
    scan(
        mini_fasta,
        tiny_model_dir,
        out,
        "--rc",
        how,
        "--chroms",
        "chr22_32000000",
        "--track",
        "probability",
    )
    chrom = "chr22_32000000"
    with open_genome(mini_fasta) as genome:
        tiling = tile_chrom(chrom, genome.lengths[chrom], [(0, genome.lengths[chrom])], 1000, 200)
        seqs = [genome.fetch(chrom, int(s), int(s) + 1000) for s in tiling.starts]
    scorer = WindowScorer(tiny_classifier, ComputeOptions(batch_size=1))
    forward = scorer.score(seqs)
    reverse = scorer.score([reverse_complement(s) for s in seqs])
    want = (forward + reverse) / 2 if how == "mean" else np.maximum(forward, reverse)
    got = np.array([v for _, _, v in read_track(out / OUTPUTS["bigwig"], chrom)])
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert not np.allclose(forward, reverse, atol=1e-3)  # the model is not strand-symmetric
    assert json.loads((out / "run.json").read_text())["parameters"]["rc"] == how


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="needs a machine without GPU")
def test_processes_refuse_a_missing_gpu_before_launching(tmp_path, mini_fasta, tiny_model_dir):
    out = tmp_path / "o"
    result = scan(mini_fasta, tiny_model_dir, out, "--processes", "2", "--device", "cuda", expect=1)
    assert "PyTorch sees no CUDA GPU; use --device cpu" in result.output
    assert not out.exists()


def test_launched_processes_share_the_cores() -> None:
    from enhscan.cli.launch import launch_environment

    cpus = launch_environment({"PATH": "/bin"}, 4, on_gpus=False, cores=16)
    assert cpus["RAYON_NUM_THREADS"] == cpus["OMP_NUM_THREADS"] == "4"
    assert cpus["PATH"] == "/bin"
    gpus = launch_environment({}, 8, on_gpus=True, cores=4)  # torchrun sets OMP on GPUs
    assert gpus["RAYON_NUM_THREADS"] == "1" and "OMP_NUM_THREADS" not in gpus
    mine = launch_environment({"RAYON_NUM_THREADS": "3"}, 2, on_gpus=True, cores=16)
    assert mine["RAYON_NUM_THREADS"] == "3"
