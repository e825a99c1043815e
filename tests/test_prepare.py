"""Tests for enhscan.training.prepare: windows, background, deduplication, splits, summaries."""

from __future__ import annotations

import itertools
import json
import logging
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from enhscan.errors import EnhscanError
from enhscan.io.fasta import Genome, open_genome
from enhscan.io.peaks import Peak, read_peaks
from enhscan.training.background import apportion, gc_bin
from enhscan.training.prepare import (
    Example,
    Splits,
    canonical,
    check_two_classes,
    deduplicate,
    extract_windows,
    format_summary,
    gc_content,
    reverse_complement,
    sample_background,
    split_by_chroms,
    split_stratified,
    summarize,
)

CHR22 = "chr22_32000000"  # 30,500 bp, no N
# chr2 of mini.fa is 60,000 bp and starts with 10,000 N.


@pytest.fixture
def genome(mini_fasta: Path) -> Genome:
    with open_genome(mini_fasta) as opened:
        yield opened


def _peak(chrom: str, start: int, end: int, summit: int | None = None) -> Peak:
    summit = (start + end) // 2 if summit is None else summit
    return Peak(chrom, start, end, summit, "", f"peaks.bed line {start}")


# --- sequence helpers ----------------------------------------------------------------------------


def test_reverse_complement():
    assert reverse_complement("AACGTN") == "NACGTT"
    assert reverse_complement("acgT") == "Acgt"
    assert reverse_complement("RYKMBVDHSW") == "WSDHBVKMRY"
    assert reverse_complement("AX-") == "NNT"
    assert reverse_complement("") == ""


@given(st.text(alphabet="ACGTNRYSWKMBDHV", max_size=60))
def test_reverse_complement_is_an_involution(seq: str):
    assert reverse_complement(reverse_complement(seq)) == seq
    assert canonical(seq) == canonical(reverse_complement(seq))
    assert canonical(seq) in (seq, reverse_complement(seq))


@given(st.lists(st.integers(0, 1_000), min_size=1, max_size=30).filter(any), st.integers(0, 10**5))
def test_apportion_sums_to_n_and_stays_within_one_of_the_exact_share(counts, n):
    shares = apportion(np.array(counts), n)
    exact = np.array(counts) * n / sum(counts)
    assert shares.sum() == n and shares.dtype == np.int64
    assert np.all(np.abs(shares - exact) < 1)
    assert list(apportion(np.array([3, 1, 0]), 5)) == [4, 1, 0]


def test_gc_content_ignores_non_acgt():
    assert gc_content("GGCC") == 1.0
    assert gc_content("ACGTNNNN") == 0.5
    assert gc_content("ATATGC") == pytest.approx(1 / 3)
    assert gc_content("NNNN") == 0.0
    assert gc_content("") == 0.0


# --- windows around summits ----------------------------------------------------------------------


def test_window_is_centred_on_the_summit(genome: Genome):
    peaks = [_peak(CHR22, 5000, 5400, summit=5300), _peak(CHR22, 20000, 20101)]
    examples, counts = extract_windows(genome, peaks, 200)
    assert [(e.chrom, e.start) for e in examples] == [(CHR22, 5200), (CHR22, 19950)]
    assert examples[0].seq == genome.fetch(CHR22, 5200, 5400)
    assert all(e.label == 1 and len(e.seq) == 200 for e in examples)
    assert examples[0].source == "peaks.bed line 5000"
    assert counts == {"shifted": 0, "dropped_edge": 0, "dropped_n": 0}


def test_odd_window_puts_the_summit_at_window_over_2(genome: Genome):
    examples, _ = extract_windows(genome, [_peak(CHR22, 100, 200, summit=150)], 101)
    assert examples[0].start == 100 and examples[0].start + 101 // 2 == 150


def test_narrowpeak_summit_drives_the_window(genome: Genome, tmp_path: Path):
    path = tmp_path / "p.narrowPeak"
    path.write_text(
        f"{CHR22}\t1000\t2000\tp1\t0\t.\t1\t-1\t-1\t900\n{CHR22}\t1000\t2000\tp2\t0\t.\t1\t-1\t-1\t-1\n"
    )
    examples, _ = extract_windows(genome, read_peaks(path, genome.lengths), 200, label=0)
    assert [e.start for e in examples] == [1800, 1400]
    assert {e.label for e in examples} == {0}


def test_windows_at_chromosome_ends_shift_inside(genome: Genome):
    length = genome.lengths[CHR22]
    peaks = [_peak(CHR22, 0, 20, summit=10), _peak(CHR22, length - 5, length, summit=length - 1)]
    examples, counts = extract_windows(genome, peaks, 200)
    assert [e.start for e in examples] == [0, length - 200]
    for example, peak in zip(examples, peaks, strict=True):
        assert example.start <= peak.summit < example.start + 200
    assert counts["shifted"] == 2


def test_windows_at_chromosome_ends_drop(genome: Genome):
    length = genome.lengths[CHR22]
    peaks = [
        _peak(CHR22, 0, 20, summit=10),
        _peak(CHR22, 300, 400),
        _peak(CHR22, length - 5, length),
    ]
    examples, counts = extract_windows(genome, peaks, 200, at_edge="drop")
    assert [e.start for e in examples] == [250]
    assert counts == {"shifted": 0, "dropped_edge": 2, "dropped_n": 0}


def test_chromosome_shorter_than_the_window_always_drops(genome: Genome):
    examples, counts = extract_windows(genome, [_peak("yeastI_0_700", 100, 300)], 1000)
    assert examples == [] and counts["dropped_edge"] == 1


def test_windows_with_n_are_dropped_above_max_n(genome: Genome):
    # chr2 [0, 10000) is N: a 200 bp window centred on 10000 has 100 N.
    peaks = [_peak("chr2", 9990, 10010, summit=10000), _peak("chr2", 20000, 20010)]
    examples, counts = extract_windows(genome, peaks, 200)
    assert [e.start for e in examples] == [19905]
    assert counts["dropped_n"] == 1
    examples, counts = extract_windows(genome, peaks, 200, max_n=100)
    assert len(examples) == 2 and examples[0].seq.count("N") == 100
    assert counts["dropped_n"] == 0


def test_bad_at_edge_value(genome: Genome):
    with pytest.raises(ValueError):
        extract_windows(genome, [], 200, at_edge="clip")


# --- GC-matched background -----------------------------------------------------------------------


def _positives(genome: Genome) -> list[Example]:
    peaks = [_peak(CHR22, s, s + 1) for s in range(1000, 30000, 1500)]
    peaks += [_peak("chr2", s, s + 1) for s in range(12000, 60000, 2500)]
    examples, _ = extract_windows(genome, peaks, 200)
    return examples


def _avoid(examples: list[Example], window: int) -> dict[str, list[tuple[int, int]]]:
    avoid: dict[str, list[tuple[int, int]]] = {}
    for e in examples:
        avoid.setdefault(e.chrom, []).append((e.start, e.start + window))
    return avoid


def _overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def test_background_is_gc_matched_and_clear_of_avoid_and_n(genome: Genome, caplog):
    positives = _positives(genome)
    targets = [gc_content(e.seq) for e in positives]
    avoid = _avoid(positives, 200)
    exclude = {CHR22: [(10_000, 12_000)]}
    with caplog.at_level(logging.WARNING):
        background = sample_background(
            genome, 60, 200, targets, avoid, exclude, chroms=["chr2", CHR22], seed=3
        )
    assert len(background) == 60
    assert not caplog.records
    spans: dict[str, list[tuple[int, int]]] = {}
    for e in background:
        assert e.label == 0 and e.source == "background" and len(e.seq) == 200
        assert e.chrom in ("chr2", CHR22)
        assert e.seq == genome.fetch(e.chrom, e.start, e.start + 200)
        assert "N" not in e.seq
        span = (e.start, e.start + 200)
        blocked = avoid.get(e.chrom, []) + exclude.get(e.chrom, [])
        assert not any(_overlaps(span, other) for other in blocked)
        spans.setdefault(e.chrom, []).append(span)
    for chrom_spans in spans.values():
        chrom_spans.sort()
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(chrom_spans))
    gcs = [gc_content(e.seq) for e in background]
    assert abs(np.mean(gcs) - np.mean(targets)) < 0.02
    # Enough candidates here, so every GC bin gets exactly its share (largest remainder).
    wanted = Counter(gc_bin(np.array(targets), 20).tolist())
    got = Counter(gc_bin(np.array(gcs), 20).tolist())
    for b, count in wanted.items():
        assert abs(got[b] - count * 60 / len(targets)) < 1
    assert set(got) <= set(wanted)


def test_background_is_deterministic_per_seed(genome: Genome):
    targets = [gc_content(e.seq) for e in _positives(genome)]
    runs = [sample_background(genome, 30, 200, targets, {}, seed=seed) for seed in (1, 1, 2)]
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]
    order = list(genome.lengths)
    keys = [(order.index(e.chrom), e.start) for e in runs[0]]
    assert keys == sorted(keys)


def test_background_window_may_start_anywhere(genome: Genome):
    background = sample_background(genome, 50, 200, [0.4, 0.45, 0.5], {}, chroms=[CHR22])
    assert len({e.start % 200 for e in background}) > 10


def test_background_chrom_names_are_reconciled(genome: Genome):
    background = sample_background(genome, 5, 100, [0.5], {}, chroms=["2"])
    assert {e.chrom for e in background} == {"chr2"}
    with pytest.raises(EnhscanError, match="chromosome chr9 is not in"):
        sample_background(genome, 5, 100, [0.5], {}, chroms=["chr9"])


def test_background_respects_max_n(genome: Genome):
    background = sample_background(genome, 40, 200, [0.4], {}, chroms=["chr2"], max_n=50)
    assert all(e.seq.count("N") <= 50 for e in background)


def test_unfillable_gc_bin_falls_back_to_neighbours_with_a_warning(genome: Genome, caplog):
    with caplog.at_level(logging.WARNING, logger="enhscan"):
        background = sample_background(genome, 20, 200, [0.97, 0.5], {}, seed=0)
    assert len(background) == 20
    assert "could not be GC-matched (GC 0.95-1.00" in caplog.text
    assert sum(gc_content(e.seq) >= 0.95 for e in background) < 10


def test_too_many_background_windows_is_an_error(genome: Genome):
    with pytest.raises(EnhscanError, match="do not fit"):
        sample_background(genome, 200, 200, [0.5], {}, chroms=[CHR22])
    # Fits by length, but the avoided intervals leave too little room.
    avoid = {CHR22: [(0, 29_000)]}
    with pytest.raises(EnhscanError, match=r"found only [1-7] of 100 background windows"):
        sample_background(genome, 100, 200, [0.5], avoid, chroms=[CHR22])


# --- deduplication -------------------------------------------------------------------------------


def test_reverse_complement_duplicates_collapse_to_the_first():
    examples = [
        Example("AACG", 1, source="a"),
        Example("GGGA", 0, source="b"),
        Example("CGTT", 1, source="c"),  # reverse complement of a
        Example("AACG", 1, source="d"),  # exact duplicate of a
        Example("TTTT", 0, source="e"),
    ]
    kept, report = deduplicate(examples)
    assert [e.source for e in kept] == ["a", "b", "e"]
    assert report == {
        "exact_duplicates": 1,
        "reverse_complement_duplicates": 1,
        "conflicting_groups": 0,
        "conflicting_examples": 0,
    }


def test_conflicting_labels_drop_the_whole_group():
    examples = [
        Example("AAAC", 1, source="a"),
        Example("GTTT", 0, source="b"),  # reverse complement of a, other label
        Example("AAAC", 1, source="c"),
        Example("ACGT", 1, source="d"),  # its own reverse complement
        Example("ACGT", 1, source="e"),
    ]
    kept, report = deduplicate(examples)
    assert [e.source for e in kept] == ["d"]
    assert report["conflicting_groups"] == 1
    assert report["conflicting_examples"] == 3
    assert report["exact_duplicates"] == 1


# --- labels and splits ---------------------------------------------------------------------------


def _examples(n_pos: int, n_neg: int, chroms: tuple[str, ...] = ("20",)) -> list[Example]:
    """Distinct examples alternating over ``chroms``, positives first."""
    out = []
    for i in range(n_pos + n_neg):
        label = int(i < n_pos)
        out.append(Example(f"A{i:06b}", label, chroms[i % len(chroms)], i * 1000, f"x{i}"))
    return out


def test_check_two_classes_messages():
    with pytest.raises(
        EnhscanError, match="only enhancer examples; give negatives with --negatives"
    ):
        check_two_classes(_examples(3, 0))
    with pytest.raises(EnhscanError, match="only background examples"):
        check_two_classes(_examples(0, 3))
    with pytest.raises(EnhscanError, match="no training examples"):
        check_two_classes([])
    check_two_classes(_examples(1, 1))


def test_stratified_split_keeps_class_proportions():
    examples = _examples(40, 87)
    splits = split_stratified(examples, val_fraction=0.1, test_fraction=0.2, seed=5)
    assert splits.method == "stratified"
    assert splits.detail == {"val_fraction": 0.1, "test_fraction": 0.2, "seed": 5}
    everything = splits.train + splits.val + splits.test
    assert sorted(e.source for e in everything) == sorted(e.source for e in examples)
    for name, members, fraction in [("val", splits.val, 0.1), ("test", splits.test, 0.2)]:
        for label, total in [(1, 40), (0, 87)]:
            count = sum(e.label == label for e in members)
            assert abs(count - fraction * total) <= 1, (name, label, count)
    for _, members in splits.items():
        assert [examples.index(e) for e in members] == sorted(examples.index(e) for e in members)


def test_stratified_split_is_deterministic_per_seed():
    examples = _examples(30, 30)
    assert split_stratified(examples, seed=1) == split_stratified(examples, seed=1)
    assert split_stratified(examples, seed=1).test != split_stratified(examples, seed=2).test


def test_stratified_split_gives_every_split_both_classes():
    splits = split_stratified(_examples(3, 50), val_fraction=0.05, test_fraction=0.05)
    for _, members in splits.items():
        assert {e.label for e in members} == {0, 1}


def test_stratified_split_with_too_few_examples():
    with pytest.raises(
        EnhscanError, match="too few examples for a stratified split: need at least 3"
    ):
        split_stratified(_examples(2, 50))
    splits = split_stratified(_examples(2, 50), val_fraction=0.0, test_fraction=0.1)
    assert splits.val == []


@pytest.mark.parametrize(("val", "test"), [(0.5, 0.5), (-0.1, 0.1), (0.1, 1.0)])
def test_stratified_split_rejects_bad_fractions(val: float, test: float):
    with pytest.raises(EnhscanError, match="fractions"):
        split_stratified(_examples(20, 20), val_fraction=val, test_fraction=test)


def test_chromosome_split_holds_out_whole_chromosomes():
    examples = _examples(30, 30, chroms=("20", "X", "7"))
    splits = split_by_chroms(examples, ["chrX"], val_fraction=0.2, seed=0)
    assert splits.method == "chromosomes"
    assert {e.chrom for e in splits.test} == {"X"}
    assert len(splits.test) == sum(e.chrom == "X" for e in examples)
    assert all(e.chrom != "X" for e in splits.train + splits.val)
    assert len(splits.val) == 8  # 0.2 of 20 positives and 0.2 of 20 negatives
    assert splits.detail["test_chroms"] == ["X"]
    assert split_by_chroms(examples, ["X"], seed=4) == split_by_chroms(examples, ["X"], seed=4)


def test_chromosome_split_with_validation_chromosomes():
    examples = _examples(30, 30, chroms=("20", "X", "7"))
    splits = split_by_chroms(examples, ["X"], val_chroms=["chr7"])
    assert {e.chrom for e in splits.train} == {"20"}
    assert {e.chrom for e in splits.val} == {"7"}
    assert splits.detail["val_chroms"] == ["7"]
    with pytest.raises(EnhscanError, match="both test and validation"):
        split_by_chroms(examples, ["X"], val_chroms=["chrX"])


def test_chromosome_split_errors():
    examples = _examples(30, 30, chroms=("20", "X"))
    with pytest.raises(
        EnhscanError, match=r"chromosome chrY holds no examples \(examples are on: 20, X\)"
    ):
        split_by_chroms(examples, ["chrY"])
    loose = examples + [Example("ACGT", 0, source="seqs.csv line 2")]
    with pytest.raises(EnhscanError, match="--holdout-chroms needs examples from a genome"):
        split_by_chroms(loose, ["X"])
    # All positives on 20 (even indexes < 30 alternate; make a one-class test set).
    one_class = [Example(f"A{i:04b}", 1, "9", i, "") for i in range(3)] + examples
    with pytest.raises(EnhscanError, match="leaves test with only enhancer examples"):
        split_by_chroms(one_class, ["9"])


# --- summary -------------------------------------------------------------------------------------


def test_summary_is_json_ready_and_prints_a_table():
    examples = [Example("GGGG", 1), Example("GGAA", 1), Example("AAAA", 0), Example("ATGC", 0)]
    detail = {"val_fraction": 0.1, "test_fraction": 0.2, "seed": 0}
    splits = Splits(examples[:2] + examples[2:3], [examples[3]], [], "stratified", detail)
    dedup = {"exact_duplicates": 2, "reverse_complement_duplicates": 1}
    extraction = {"shifted": 1, "dropped_edge": 0, "dropped_n": 4}
    summary = summarize(splits, dedup, extraction)
    assert json.loads(json.dumps(summary)) == summary
    train = summary["splits"]["train"]
    assert train["enhancer"] == {"count": 2, "mean_gc": 0.75}
    assert train["background"] == {"count": 1, "mean_gc": 0.0}
    assert summary["splits"]["test"]["enhancer"] == {"count": 0, "mean_gc": None}
    assert summary["totals"] == {"examples": 4, "enhancer": 2, "background": 2}
    assert summary["duplicates"] == dedup
    text = format_summary(summary)
    lines = text.splitlines()
    assert lines[0].split() == ["split", "enhancer", "background", "total", "GC", "enh", "GC", "bg"]
    assert lines[1].split() == ["train", "2", "1", "3", "0.750", "0.000"]
    assert lines[3].split() == ["test", "0", "0", "0", "-", "-"]
    assert lines[4].split() == ["all", "2", "2", "4"]
    assert "2 exact, 1 reverse-complement" in text
    assert "4 dropped for N" in text
    assert "split: stratified random (val 10%, test 20%, seed 0)" in text


def test_summary_with_extraction_counts_per_kind():
    splits = split_stratified(_examples(10, 10))
    extraction = {
        "positives": {"shifted": 2, "dropped_edge": 1, "dropped_n": 3},
        "background_sampled": 10,
    }
    text = format_summary(summarize(splits, {}, extraction))
    assert "positives windows: 2 shifted inside a chromosome end, 1 dropped at an end" in text
    assert "background sampled: 10" in text


def test_summary_of_a_chromosome_split():
    splits = split_by_chroms(_examples(30, 30, chroms=("20", "X", "7")), ["chrX"])
    summary = summarize(splits, {})
    assert summary["split"]["detail"]["test_chroms"] == ["X"]
    assert summary["totals"]["examples"] == 60
    assert "split: by chromosome (test: X; val: 10% of the rest at random)" in format_summary(
        summary
    )
