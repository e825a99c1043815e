"""`enhscan evaluate` on a hand-made track whose metrics are worked out by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pyBigWig
import pytest
from click.testing import CliRunner

from enhscan.cli import cli
from enhscan.evaluate import evaluate_scan

#        bin:   0    1    2    3    4    5    6    7    8     9     (100 bp each on chr1)
VALUES = [0.1, 0.9, 0.8, 0.2, 0.3, 0.7, 0.1, 0.2, 0.85, 0.4]


@pytest.fixture
def tracks(tmp_path: Path) -> Path:
    folder = tmp_path / "tracks"
    folder.mkdir()
    bw = pyBigWig.open(str(folder / "scores.bw"), "w")
    bw.addHeader([("chr1", 1000), ("chr2", 500)])
    bw.addEntries(
        ["chr1"] * 10, list(range(0, 1000, 100)), ends=list(range(100, 1100, 100)), values=VALUES
    )
    bw.close()
    (folder / "calls.narrowPeak").write_text(
        "chr1\t100\t300\tenhscan_1\t900\t.\t0.9\t-1\t-1\t50\n"
        "chr1\t800\t900\tenhscan_2\t850\t.\t0.85\t-1\t-1\t50\n"
    )
    (folder / "run.json").write_text(json.dumps({"parameters": {"threshold": 0.8}}))
    return folder


@pytest.fixture
def truth(tmp_path: Path) -> tuple[Path, Path]:
    # Ensembl-style names ("1") against the scan's UCSC-style "chr1".
    positives = tmp_path / "pos.bed"
    positives.write_text("1\t100\t300\n1\t500\t600\nchrY\t10\t20\n1\t950\t1200\n")
    negatives = tmp_path / "neg.bed"
    negatives.write_text("1\t0\t100\n1\t300\t400\n1\t900\t1000\n")
    return positives, negatives


def test_region_and_window_level_by_hand(tracks, truth):
    positives, negatives = truth
    report = evaluate_scan(tracks, str(positives), str(negatives))
    # Regions scored at their centres: positives 0.8 (200), 0.7 (550); negatives 0.1 (50),
    # 0.2 (350), 0.4 (950). Every positive outranks every negative.
    region = report["region_level"]
    assert (region["n"], region["n_positive"]) == (5, 2)
    assert region["roc_auc"] == pytest.approx(1.0) and region["pr_auc"] == pytest.approx(1.0)
    # Out-of-genome truth is reported: chrY unknown, [950, 1200) past the end of chr1.
    assert report["truth_left_out"] == {
        "unknown_chromosome": 1,
        "past_chromosome_end": 1,
        "duplicates": 0,
        "conflicting_labels": 0,
    }
    assert report["truth_unknown_chromosomes"] == {"chrY": 1}
    # Calls: [100, 300) overlaps an enhancer, [800, 900) does not; of the two enhancers only
    # [100, 300) is called; no negative is called ([300, 400) only touches a call's end).
    calls = report["calls"]
    assert calls["precision"] == 0.5 and calls["recall"] == 0.5
    assert calls["negatives_called"] == 0
    # Bases: 1000 scored (chr1), 300 called, 300 in enhancers ([100, 300), [500, 600); the
    # one past the end is left out), 200 both: enhancer bases are 200/300 of the called bases
    # against 300/1000 of the scored ones.
    assert (calls["scored_bases"], calls["called_bases"], calls["called_fraction"]) == (
        1000,
        300,
        0.3,
    )
    assert (calls["enhancer_bases"], calls["enhancer_bases_called"]) == (300, 200)
    assert calls["fold_enrichment"] == pytest.approx((200 / 300) / (300 / 1000))
    assert calls["rule"] is None  # a run record from before calling rules were recorded
    out = tracks / "evaluation"
    for name in (
        "evaluation.json",
        "pr_curve.png",
        "roc_curve.png",
        "score_distributions.png",
        "precision_by_calls.png",
    ):
        assert (out / name).exists(), name


def test_window_level_without_negatives_by_hand(tracks, truth):
    positives, _ = truth
    report = evaluate_scan(tracks, str(positives))
    window = report["window_level"]
    # Bins 1, 2, 5 overlap enhancers (0.9, 0.8, 0.7); the other seven are negatives, one of
    # them (bin 8) at 0.85. Ranked: + - + + - ...: ROC-AUC = (7 + 6 + 6) / 21,
    # average precision = (1/1 + 2/3 + 3/4) / 3.
    assert (window["n"], window["n_positive"]) == (10, 3)
    assert window["roc_auc"] == pytest.approx(19 / 21)
    assert window["pr_auc"] == pytest.approx((1 + 2 / 3 + 3 / 4) / 3)
    assert "region_level" not in report


def test_region_scores_max_and_mean(tracks, truth):
    positives, negatives = truth
    by_max = evaluate_scan(
        tracks, str(positives), str(negatives), region_score="max", out_dir=tracks / "max"
    )
    assert by_max["region_level_scoring"] == "max"
    assert by_max["region_level"]["roc_auc"] == pytest.approx(1.0)


def test_cli_and_unscored_regions(tracks, truth, tmp_path):
    positives, negatives = truth
    # A negative on chr2, which the scan has in its header but holds no value for.
    # And one negative listed twice.
    negatives.write_text(negatives.read_text() + "chr2\t0\t100\n1\t0\t100\n")
    result = CliRunner().invoke(
        cli, ["evaluate", str(tracks), "--positives", str(positives), "--negatives", str(negatives)]
    )
    assert result.exit_code == 0, result.output
    assert "region level" in result.output and "PR-AUC 1.000" in result.output
    assert "left out: 1 regions on sequences the scan lacks (chrY)" in result.output
    assert "1 listed twice" in result.output
    report = json.loads((tracks / "evaluation" / "evaluation.json").read_text())
    assert report["truth_unscored"] == {"enhancer": 0, "background": 1}
    again = ["evaluate", str(tracks), "--positives", str(positives)]
    result = CliRunner().invoke(cli, again)
    assert result.exit_code == 1 and "already holds an evaluation; use --force" in result.output
    assert CliRunner().invoke(cli, [*again, "--force"]).exit_code == 0


def test_truth_from_another_assembly_is_an_error(tracks, tmp_path):
    bed = tmp_path / "other.bed"
    bed.write_text("chrZ\t1\t100\n")
    result = CliRunner().invoke(cli, ["evaluate", str(tracks), "--positives", str(bed)])
    assert result.exit_code == 1 and "same assembly" in result.output


def test_negatives_that_repeat_the_positives_are_named_as_the_cause(tracks, truth):
    positives, _ = truth
    args = ["evaluate", str(tracks), "--positives", str(positives), "--negatives", str(positives)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1 and "is also in" in result.output, result.output


def test_not_a_tracks_folder(tmp_path, truth):
    result = CliRunner().invoke(cli, ["evaluate", str(tmp_path), "--positives", str(truth[0])])
    assert result.exit_code == 1 and "enhscan genome" in result.output


def test_a_damaged_track_is_refused_in_one_line(tmp_path, truth):
    (tmp_path / "scores.bw").write_bytes(b"not a bigWig at all" * 100)
    result = CliRunner().invoke(cli, ["evaluate", str(tmp_path), "--positives", str(truth[0])])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"Error: cannot read {tmp_path / 'scores.bw'} as a bigWig; give the scores.bw of a scan"
    ]
