"""Background nulls: the random-window sample, `enhscan calibrate`, storage in the model folder,
the null `enhscan train` stores, and scans that use it."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from enhscan.backend import ComputeOptions
from enhscan.calibration import null_chroms, sample_null_windows
from enhscan.cli import cli
from enhscan.engine import WindowScorer
from enhscan.errors import EnhscanError
from enhscan.io.fasta import open_genome
from enhscan.model import load_classifier, save_classifier
from enhscan.model.null import ARRAYS_NAME, INFO_NAME, BackgroundNull, load_null, save_null
from enhscan.sequence import count_non_acgt, reverse_complement
from enhscan.significance import empirical_pvalues
from tests.conftest import run_cli as run

DATA = Path(__file__).parent / "data"


def test_random_windows_are_distinct_n_free_deterministic_and_avoid_exclude(mini_fasta) -> None:
    with open_genome(mini_fasta) as genome:
        names = null_chroms(genome, None, 1000)
        assert names == ["chr2", "chr22_32000000"]  # the 700 bp sequence holds no window
        exclude = {"chr2": [(20_000, 40_000)]}
        picked = sample_null_windows(genome, names, 500, 1000, seed=3, exclude=exclude)
        again = sample_null_windows(genome, names, 500, 1000, seed=3, exclude=exclude)
        other = sample_null_windows(genome, names, 500, 1000, seed=4, exclude=exclude)
        for chrom, start, seq in picked[:50]:
            assert seq == genome.fetch(chrom, start, start + 1000)
    assert picked == again and picked != other
    assert len({(c, s) for c, s, _ in picked}) == 500
    assert all(count_non_acgt(seq) == 0 for _, _, seq in picked)
    on_chr2 = [s for c, s, _ in picked if c == "chr2"]
    assert on_chr2 and all(s + 1000 <= 20_000 or s >= 40_000 for s in on_chr2)
    # chr2 has ~29 kb of usable starts, chr22 ~29.5 kb: both are drawn from.
    assert 100 < len(on_chr2) < 400


def test_too_few_windows_is_one_clear_error(mini_fasta, tmp_path) -> None:
    with open_genome(mini_fasta) as genome:
        with pytest.raises(EnhscanError, match="hold only 29,501 windows of 1,000 bp"):
            sample_null_windows(genome, ["chr22_32000000"], 40_000, 1000)  # said at once
    gappy = tmp_path / "gappy.fa"  # 24,001 window positions, 4,001 of them N-free
    gappy.write_text(">g\n" + "ACGT" * 1250 + "N" * 20_000 + "\n")
    with open_genome(gappy) as genome:
        with pytest.raises(EnhscanError, match="found only .* N-free windows"):
            sample_null_windows(genome, ["g"], 10_000, 1000)
    with open_genome(mini_fasta) as genome:
        with pytest.raises(EnhscanError, match="--chroms chrZ matches no sequence"):
            null_chroms(genome, ["chrZ"], 1000)


@pytest.fixture
def model_copy(tmp_path, tiny_model_dir) -> Path:
    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    return folder


def test_calibrate_stores_the_scores_of_both_strands(model_copy, mini_fasta, tiny_classifier):
    run(
        "calibrate", str(model_copy), "--genome", str(mini_fasta), "--windows", "300", "--seed", "1"
    )
    info = json.loads((model_copy / INFO_NAME).read_text())
    assert info["windows"] == 300 and info["seed"] == 1 and info["window"] == 1000
    assert info["sequences"] == ["chr2", "chr22_32000000"]
    classifier = load_classifier(model_copy)
    null = load_null(model_copy, classifier.identity)
    assert null.windows == 300
    for mode in ("forward", "mean", "max"):
        assert np.all(np.diff(null.scores[mode]) >= 0)
    # The stored forward scores are the model's scores of the sampled windows.
    with open_genome(mini_fasta) as genome:
        sample = sample_null_windows(genome, info["sequences"], 300, 1000, seed=1)
    seqs = [seq for _, _, seq in sample]
    scorer = WindowScorer(tiny_classifier, ComputeOptions(batch_size=1))
    forward = scorer.score(seqs)
    reverse = scorer.score([reverse_complement(s) for s in seqs])
    np.testing.assert_allclose(null.scores["forward"], np.sort(forward), atol=1e-5)
    np.testing.assert_allclose(null.scores["max"], np.sort(np.maximum(forward, reverse)), atol=1e-5)
    np.testing.assert_allclose(null.scores["mean"], np.sort((forward + reverse) / 2), atol=1e-5)


def test_a_scan_uses_the_stored_null(tmp_path, tiny_model_with_null, mini_fasta) -> None:
    out = tmp_path / "tracks"
    run("genome", str(mini_fasta), "-m", str(tiny_model_with_null), "-o", str(out))
    record = json.loads((out / "run.json").read_text())
    assert record["calling"]["null"] == {"source": "model", "windows": 2000}
    null = load_null(tiny_model_with_null).for_strands(None)
    lines = [line.split("\t") for line in (out / "calls.narrowPeak").read_text().splitlines()]
    assert len(lines) == record["calls"] > 0
    for line in lines:
        best = np.float32(float(line[6]))
        p = empirical_pvalues(np.array([best]), null)[0]
        assert float(line[7]) == pytest.approx(-np.log10(p), abs=1e-4)
        assert float(line[8]) >= -np.log10(0.05) - 1e-9  # every call passed FDR 0.05
    # Windows above the null's range have the smallest p-value there is: 1 / (2000 + 1).
    assert max(float(line[7]) for line in lines) == pytest.approx(np.log10(2001), abs=1e-4)
    # evaluate reads the -log10 p track and the calls (the rule named, bases counted).
    truth = out.parent / "truth.bed"
    truth.write_text("".join(f"{c}\t{int(s)}\t{int(s) + 300}\n" for c, s, *_ in lines[:2]))
    result = CliRunner().invoke(cli, ["evaluate", str(out), "--positives", str(truth)])
    assert result.exit_code == 0, result.output
    report = result.output
    assert "calls (FDR 0.05)" in report and "enriched in them" in report
    for name in ("score_distributions.png", "precision_by_calls.png"):
        assert (out / "evaluation" / name).exists()


def test_a_null_of_other_weights_is_ignored_with_a_warning(
    tmp_path, tiny_model_with_null, mini_fasta, caplog
) -> None:
    folder = tmp_path / "m"
    shutil.copytree(tiny_model_with_null, folder)
    null = load_null(folder)
    null.info["model_identity"] = "sha256:" + "0" * 64
    save_null(folder, null)
    with caplog.at_level(logging.WARNING, logger="enhscan.model.null"):
        assert load_null(folder, load_classifier(folder).identity) is None
    assert "other weights" in caplog.text
    out = tmp_path / "o"
    run("genome", str(mini_fasta), "-m", str(folder), "-o", str(out))
    assert json.loads((out / "run.json").read_text())["calling"]["null"]["source"] == "scan"


def test_a_corrupt_null_is_one_line(tmp_path, tiny_model_with_null, mini_fasta) -> None:
    folder = tmp_path / "m"
    shutil.copytree(tiny_model_with_null, folder)
    data = (folder / ARRAYS_NAME).read_bytes()
    (folder / ARRAYS_NAME).write_bytes(data[: len(data) // 2])  # truncated
    result = run("genome", str(mini_fasta), "-m", str(folder), "-o", str(tmp_path / "o"), expect=1)
    assert "cannot read the background null" in result.output
    assert "enhscan calibrate" in result.output
    assert len(result.output.strip().splitlines()) == 1
    save_null(folder, BackgroundNull({m: np.array([0.5, 0.1]) for m in ("forward", "mean", "max")}))
    # save_null sorts; an unsorted file written by hand is refused.
    np.savez(folder / ARRAYS_NAME, **{m: np.array([0.5, 0.1]) for m in ("forward", "mean", "max")})
    with pytest.raises(EnhscanError, match="empty, unsorted or holds NaN"):
        load_null(folder)


def test_calibrate_refuses_bad_input(tmp_path, model_copy, mini_fasta) -> None:
    result = run("calibrate", str(tmp_path / "nope"), "--genome", str(mini_fasta), expect=1)
    assert "does not exist" in result.output
    result = run(
        "calibrate", str(model_copy), "--genome", str(mini_fasta), "--chroms", "chrQ", expect=1
    )
    assert "--chroms chrQ matches no sequence" in result.output
    assert not (model_copy / ARRAYS_NAME).exists()


def test_train_stores_a_null_that_calibrate_reproduces(tmp_path, mini_fasta) -> None:
    """`enhscan calibrate` on a model trained without a null, then a scan, gives the same
    calls as the model trained with one on the same genome sample and seed."""
    peaks = tmp_path / "peaks.bed"
    lines = [f"chr2\t{s}\t{s + 300}\n" for s in range(12_000, 58_000, 3_000)]
    lines += [f"chr22_32000000\t{s}\t{s + 300}\n" for s in range(1_000, 29_000, 3_000)]
    peaks.write_text("".join(lines))
    trained = tmp_path / "trained"
    common = ["--genome", str(mini_fasta), "--positives", str(peaks), "--window", "200"]
    common += ["--holdout-chroms", "chr22_32000000", "--val-fraction", "0.25", "--arch", "tiny"]
    common += ["--epochs", "1", "--batch-size", "16", "--no-baseline", "--seed", "5"]
    run("train", *common, "--null-windows", "400", "--out", str(trained))
    info = json.loads((trained / INFO_NAME).read_text())
    assert info["sequences"] == ["chr22_32000000"] and info["windows"] == 400
    metrics = json.loads((trained / "training" / "metrics.json").read_text())
    assert metrics["background_null"]["windows"] == 400

    bare = tmp_path / "bare"
    save_classifier(load_classifier(trained), bare)
    assert not (bare / ARRAYS_NAME).exists()
    run(
        "calibrate",
        str(bare),
        "--genome",
        str(mini_fasta),
        "--chroms",
        "chr22_32000000",
        "--windows",
        "400",
        "--seed",
        "5",
    )
    a, b = load_null(trained), load_null(bare)
    for mode in ("forward", "mean", "max"):
        np.testing.assert_array_equal(a.scores[mode], b.scores[mode])

    outs = []
    for folder in (trained, bare):
        out = tmp_path / f"scan_{folder.name}"
        run("genome", str(mini_fasta), "-m", str(folder), "-o", str(out), "--stride", "100")
        outs.append(out)
    assert (outs[0] / "calls.narrowPeak").read_bytes() == (
        outs[1] / "calls.narrowPeak"
    ).read_bytes()
    assert (outs[0] / "scores.bw").read_bytes() == (outs[1] / "scores.bw").read_bytes()
