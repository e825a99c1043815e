"""Multi-task targets, windows and supervised pretraining: hand-made cases, a tiny run on real
sequence, scanning a task, and fine-tuning from a multi-task folder."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file

from enhscan.backend import ComputeOptions
from enhscan.engine import WindowScorer
from enhscan.errors import EnhscanError
from enhscan.io.fasta import open_genome
from enhscan.model import load_classifier
from enhscan.sequence import reverse_complement
from enhscan.training.multitask import (
    group_tasks,
    read_label_bed,
    read_task_files,
    window_targets,
    with_any_task,
)
from enhscan.training.multitask_pipeline import new_multitask
from enhscan.training.multitask_windows import draw_split
from enhscan.training.trainer import BEST_WEIGHTS, TrainSettings, fit
from tests.conftest import atlas_genome, remo_like
from tests.conftest import run_cli as run

SIZES = {"20": 10_000, "chrX": 5_000}


@pytest.fixture
def label_bed(tmp_path: Path) -> Path:
    # UCSC names in the file, Ensembl "20" in the genome; "." is an element without labels.
    path = tmp_path / "atlas.bed.gz"
    with gzip.open(path, "wt") as out:
        out.write("#chrom\tstart\tend\tid\tmodule\tlabels\n")
        out.write("chr20\t1000\t1100\te1\tm\tA,B\n")
        out.write("chr20\t2000\t2300\te2\tm\tB\n")
        out.write("chr20\t5000\t5050\te3\tm\t.\n")
        out.write("chrX\t400\t500\te4\tm\tC\n")
        out.write("chrY\t1\t2\te5\tm\tA\n")  # not in the genome: counted
    return path


def test_targets_by_the_centre_bin_rule(label_bed: Path) -> None:
    elements = with_any_task(read_label_bed(label_bed, SIZES, column=6))
    assert elements.tasks == ["any", "A", "B", "C"]
    assert elements.unmatched == {"chrY": 1}
    # Windows of 1000 bp: centre s + 500, centre bin of 200 bp [s + 400, s + 600).
    starts = np.array([500, 501, 1100, 1201, 4500, 4700])
    got = window_targets(elements, "20", starts, 1000, centre_bin=200)
    # s=500: bin [900, 1100) overlaps e1 (A, B). s=501: [901, 1101) still does.
    # s=1100: bin [1500, 1700) overlaps nothing. s=1201: [1601, 1801) nothing; s=4500: bin
    # [4900, 5100) overlaps e3 (no label: any only). s=4700: [5100, 5300) nothing.
    assert got.tolist() == [
        [1, 1, 1, 0],
        [1, 1, 1, 0],
        [0, 0, 0, 0],
        [0, 0, 0, 0],
        [1, 0, 0, 0],
        [0, 0, 0, 0],
    ]
    # A wider bin reaches e2 from s=1201: [1401, 2001) touches [2000, 2300) by one base.
    wide = window_targets(elements, "20", np.array([1201, 1200]), 1000, centre_bin=600)
    assert wide[:, 2].tolist() == [1, 0]
    assert window_targets(elements, "chrX", np.array([0]), 1000)[0].tolist() == [1, 0, 0, 1]


def test_one_task_per_file_groups_and_empty_tasks(tmp_path: Path, label_bed: Path) -> None:
    folder = tmp_path / "peaks"
    folder.mkdir()
    (folder / "K562_DNase.narrowPeak").write_text("20\t100\t200\tp\t0\t.\t1\t-1\t-1\t50\n")
    (folder / "HepG2_ATAC.bed.gz").write_bytes(gzip.compress(b"chr20\t300\t400\n"))
    (folder / "GM_H3K27ac.bed").write_text("chrY\t1\t2\n")  # nothing on the genome
    (folder / "notes.md").write_text("not a peak file")
    elements = read_task_files([folder], SIZES)
    assert elements.tasks == ["GM_H3K27ac", "HepG2_ATAC", "K562_DNase"]
    assert elements.counts() == {"GM_H3K27ac": 0, "HepG2_ATAC": 1, "K562_DNase": 1}
    got = window_targets(elements, "20", np.array([150 - 500, 350 - 500]), 1000, 10)
    assert got.tolist() == [[0, 0, 1], [0, 1, 0]]

    mapping = tmp_path / "groups.tsv"
    mapping.write_text("# label\tgroups\nA\tblood\nB\tblood,liver\n")
    grouped = group_tasks(read_label_bed(label_bed, SIZES, column=6), mapping)
    assert grouped.tasks == ["blood", "liver"]
    assert grouped.intervals[0]["20"] == [(1000, 1100), (2000, 2300)]
    assert grouped.intervals[1]["20"] == [(1000, 1100), (2000, 2300)]


def test_bad_targets_are_one_line(tmp_path: Path, label_bed: Path) -> None:
    with pytest.raises(EnhscanError, match="no column 9"):
        read_label_bed(label_bed, SIZES, column=9)
    with pytest.raises(EnhscanError, match="no element of .* lies on the genome"):
        read_label_bed(label_bed, {"chr1": 10_000}, column=6)
    past = tmp_path / "past.bed"
    past.write_text("chr20\t9000\t12000\tx\n")
    with pytest.raises(EnhscanError, match="runs past the end of 20"):
        read_task_files([past], SIZES)
    mapping = tmp_path / "m.tsv"
    mapping.write_text("Q\tblood\n")
    with pytest.raises(EnhscanError, match="no task label"):
        group_tasks(read_label_bed(label_bed, SIZES, column=6), mapping)


def test_options_of_the_other_mode_are_refused(tmp_path, mini_fasta) -> None:
    out = str(tmp_path / "o")
    result = run("pretrain", str(mini_fasta), "--out", out, "--epochs", "3", expect=2)
    assert "--epochs is an option of --targets; drop it" in result.output
    bed = tmp_path / "t.bed"
    bed.write_text("chr2\t20000\t20300\n")
    result = run(
        "pretrain", str(mini_fasta), "--out", out, "--targets", str(bed), "--steps", "5", expect=2
    )
    assert "--steps is an option of masked-LM pretraining" in result.output
    result = run("pretrain", str(mini_fasta), "--out", out, "--arch", "cnn", expect=2)
    assert "--arch cnn reads bases, not tokens: it pretrains with --targets only" in result.output
    cnn_mlm = ["--targets", str(bed), "--arch", "cnn", "--mlm-weight", "0.5"]
    result = run("pretrain", str(mini_fasta), "--out", out, *cnn_mlm, expect=2)
    assert "--arch cnn has no masked-LM head" in result.output


def test_windows_are_deterministic_balanced_and_n_free(tmp_path, mini_fasta) -> None:
    with open_genome(mini_fasta) as genome:
        elements = with_any_task(read_label_bed(remo_like(mini_fasta, tmp_path), genome.lengths))
        args = (genome, elements, ["chr2"], 200, 1000)
        split = draw_split(*args, element_share=0.5, seed=1, exclude={"chr2": [(30_000, 40_000)]})
        again = draw_split(*args, element_share=0.5, seed=1, exclude={"chr2": [(30_000, 40_000)]})
        other = draw_split(*args, element_share=0.5, seed=2)
    assert split.positions == again.positions and split.positions != other.positions
    assert int(split.centred.sum()) == 100 and len(set(split.positions)) == 200
    assert all("N" not in s for s in split.seqs)
    assert all(s + 1000 <= 30_000 or s >= 40_000 for _, s in split.positions)
    # Element-centred windows are mostly "any" positives; random ones mostly not.
    any_column = split.targets[:, 0].astype(bool)
    assert any_column[split.centred].mean() > 0.8 > any_column[~split.centred].mean()


SETTINGS = TrainSettings(epochs=3, batch_size=16, learning_rate=3e-3, warmup_ratio=0.0, cpu=True)


def multitask_fit(tmp_path, mini_fasta, work: Path, settings=SETTINGS, arch="cnn", **kwargs):
    with open_genome(mini_fasta) as genome:
        elements = with_any_task(read_label_bed(remo_like(mini_fasta, tmp_path), genome.lengths))
        wide = 300 + 2 * settings.shift_augment
        train = draw_split(genome, elements, ["chr2"], 96, wide, seed=1)
        val = draw_split(genome, elements, ["chr22_32000000"], 48, 300, seed=2)
    classifier = new_multitask(arch, elements.tasks, 300, seed=0)
    return fit(
        classifier,
        train.seqs,
        train.targets,
        val.seqs,
        val.targets,
        settings,
        work,
        progress=False,
        **kwargs,
    )


@pytest.mark.parametrize("rc_augment, shift_augment", [(False, 0), (True, 0), (True, 20)])
def test_multitask_fit_is_deterministic_and_resumes_exactly(
    tmp_path, mini_fasta, rc_augment, shift_augment
) -> None:
    settings = TrainSettings(
        **{**SETTINGS.__dict__, "rc_augment": rc_augment, "shift_augment": shift_augment}
    )

    def run_fit(name: str, **kwargs):
        return multitask_fit(tmp_path, mini_fasta, tmp_path / name, settings, **kwargs)

    whole, again = run_fit("whole"), run_fit("again")
    run_fit("cut", stop_after_epoch=1)
    resumed = run_fit("cut", resume=True)
    assert resumed.resumed_from_epoch == 1 and resumed.history == whole.history
    want = load_file(str(tmp_path / "whole" / BEST_WEIGHTS))
    for other in ("again", "cut"):
        got = load_file(str(tmp_path / other / BEST_WEIGHTS))
        for key in want:
            assert np.array_equal(want[key].numpy(), got[key].numpy()), (other, key)
    assert whole.history == again.history
    losses = [h["train_loss"] for h in whole.history]
    assert losses[-1] < losses[0]


def test_tasks_mixed_with_masked_lm_train_deterministically_and_resume_exactly(
    tmp_path, mini_fasta
) -> None:
    settings = TrainSettings(**{**SETTINGS.__dict__, "learning_rate": 1e-3, "mlm_weight": 0.5})

    def run_fit(name: str, **kwargs):
        return multitask_fit(tmp_path, mini_fasta, tmp_path / name, settings, arch="tiny", **kwargs)

    whole, again = run_fit("whole"), run_fit("again")
    run_fit("cut", stop_after_epoch=2)
    resumed = run_fit("cut", resume=True)
    assert resumed.resumed_from_epoch == 2 and resumed.history == whole.history == again.history
    want = load_file(str(tmp_path / "whole" / BEST_WEIGHTS))
    assert any(key.startswith("cls.predictions") for key in want)  # the joint model's weights
    for other in ("again", "cut"):
        got = load_file(str(tmp_path / other / BEST_WEIGHTS))
        assert all(np.array_equal(want[k].numpy(), got[k].numpy()) for k in want), other
    # Both objectives are logged and learn; the classifier alone comes back.
    first, last = whole.history[0], whole.history[-1]
    assert last["mlm_loss"] < first["mlm_loss"] and last["task_loss"] < first["task_loss"]
    assert 0 < last["masked_accuracy"] <= 1
    assert type(whole.classifier.network).__name__ == "DNABert2ForSequenceClassification"


def test_masked_lm_weight_needs_a_dnabert2_multitask_model(tmp_path, mini_fasta) -> None:
    with pytest.raises(EnhscanError, match="DNABERT-2"):
        settings = TrainSettings(**{**SETTINGS.__dict__, "mlm_weight": 0.5})
        multitask_fit(tmp_path, mini_fasta, tmp_path / "w", settings, arch="cnn")


def test_augmentation_shows_seeded_reversed_and_shifted_views() -> None:
    from enhscan.training.trainer import _EncodedDataset

    encoder = new_multitask("cnn", ["a", "b"], 300, seed=0).encoder
    rng = np.random.default_rng(0)
    seqs = ["".join(rng.choice(list("ACGT"), 340)) for _ in range(400)]

    def views(data, epoch: int) -> list[tuple[int, bool]]:
        """(offset, reversed) of each window as ``epoch`` shows it."""
        data.set_epoch(epoch)
        found = []
        for i, seq in enumerate(seqs):
            shown = data[i][0].tolist()
            cuts = [(a, r) for a in range(41) for r in (False, True)]
            match = [
                (a, r)
                for a, r in cuts
                if encoder.encode(
                    [reverse_complement(seq[a : a + 300]) if r else seq[a : a + 300]]
                )[0].tolist()
                == shown
            ]
            assert len(match) == 1, i
            found += match
        return found

    data = _EncodedDataset(encoder, seqs, np.zeros(400), rc=True, shift=20, seed=3)
    first, second = views(data, 1), views(data, 2)
    assert views(data, 1) == first != second
    assert 150 < sum(r for _, r in first) < 250  # about half reversed
    offsets = [a for a, _ in first]
    assert min(offsets) <= 2 and max(offsets) >= 38 and 15 < np.mean(offsets) < 25
    # Without a shift: the whole window, forward or reversed, the same half as with one.
    plain = _EncodedDataset(
        encoder, [s[20:320] for s in seqs], np.zeros(400), rc=True, shift=0, seed=3
    )
    plain.set_epoch(1)
    reversed_ = [
        plain[i][0].tolist() != encoder.encode([s[20:320]])[0].tolist() for i, s in enumerate(seqs)
    ]
    assert reversed_ == [r for _, r in first]


def test_training_windows_drawn_wider_keep_their_targets(tmp_path, mini_fasta) -> None:
    from enhscan.training.multitask_pipeline import WindowOptions, draw_splits

    options = WindowOptions(
        window=300,
        train_windows=60,
        val_windows=10,
        test_windows=10,
        val_chroms=["chr22_32000000"],
        test_chroms=["chrB"],
    )
    genome_path = tmp_path / "two.fa"
    with open_genome(mini_fasta) as g:
        seq, other = g.fetch("chr2", 0, 60_000), g.fetch("chr22_32000000", 0, 30_500)
    genome_path.write_text(f">chr2\n{seq}\n>chr22_32000000\n{other}\n>chrB\n{seq}\n")
    atlas = remo_like(mini_fasta, tmp_path)
    atlas.write_text(atlas.read_text() + atlas.read_text().replace("chr2\t", "chrB\t"))
    with open_genome(genome_path) as genome:
        elements = with_any_task(read_label_bed(atlas, genome.lengths))
        splits = draw_splits(genome, elements, 200, options, train_flank=25)
    train = splits["train"]
    assert {len(s) for s in train.seqs} == {350} and {len(s) for s in splits["val"].seqs} == {300}
    inner = np.array([start + 25 for _, start in train.positions])
    assert np.array_equal(train.targets, window_targets(elements, "chr2", inner, 300, 200))
    assert train.targets[:, 0].any() and not train.targets[:, 0].all()


def test_shift_augment_needs_wider_windows_of_one_length(tmp_path, mini_fasta) -> None:
    settings = TrainSettings(**{**SETTINGS.__dict__, "shift_augment": 200})
    with pytest.raises(EnhscanError, match="training windows of 700 bp"):
        classifier = new_multitask("cnn", ["a", "b"], 300, seed=0)
        fit(
            classifier,
            ["ACGT" * 75] * 4,
            np.zeros((4, 2)),
            ["ACGT" * 75] * 4,
            np.zeros((4, 2)),
            settings,
            tmp_path / "w",
            progress=False,
        )


def test_pretrain_targets_scan_a_task_and_fine_tune(tmp_path, mini_fasta) -> None:
    atlas = remo_like(mini_fasta, tmp_path)
    out = tmp_path / "atlas_model"
    common = ["--targets", str(atlas), "--label-column", "6", "--window", "300"]
    common += ["--windows", "160", "--val-windows", "40", "--test-windows", "60"]
    common += ["--null-windows", "500"]
    common += ["--val-chroms", "chr22_32000000", "--test-chroms", "chr22_32000000"]
    result = run("pretrain", str(mini_fasta), *common, "--out", str(out), expect=1)
    assert "--val-chroms and --test-chroms must not share a sequence" in result.output
    common[-1] = "chr2"  # what is left to train on is the 700 bp yeast piece, without elements
    result = run("pretrain", str(mini_fasta), *common, "--out", str(out), expect=1)
    assert "no element lies on yeastI_0_700; lower --element-share" in result.output
    assert not out.exists()

    genome = atlas_genome(mini_fasta, atlas)
    common[-3] = "chrB"  # --val-chroms chrB
    fast = ["--arch", "cnn", "--epochs", "4", "--lr", "3e-3", "--batch-size", "16"]
    run("pretrain", str(genome), *common, *fast, "--shift-augment", "25", "--out", str(out))
    report = json.loads((out / "pretraining" / "metrics.json").read_text())
    losses = [h["train_loss"] for h in report["history"]]
    assert losses[-1] < losses[0]
    assert set(report["model"]["per_task"]) == {"any", "T1", "T2"}
    assert report["baseline_gc_cpg"]["tasks_scored"] >= 1
    closed = report["model"]["elements_vs_closed"]
    assert closed["elements"] == 30 and closed["closed"] > 5 and 0 <= closed["roc_auc"] <= 1
    assert (out / "pretraining" / "task_aucs.png").read_bytes()[:4] == b"\x89PNG"
    meta = json.loads((out / "enhscan.json").read_text())
    assert meta["task_type"] == "multilabel" and meta["labels"] == ["any", "T1", "T2"]

    # The "any" task got a background null of the test sequence's windows.
    assert json.loads((out / "background_null.json").read_text())["task"] == "any"
    # A resume with other windows is refused before training.
    more = [*common]
    more[more.index("--windows") + 1] = "170"
    result = run("pretrain", str(genome), *more, *fast, "--out", str(out), "--resume", expect=1)
    assert "the windows or targets differ" in result.output

    # predict scores one task: its probability, and the task's name or not_<task>.
    table = tmp_path / "scores.tsv"
    fasta = tmp_path / "q.fa"
    with open_genome(genome) as g:
        seq = g.fetch("chr2", 0, 60_000)
    fasta.write_text(f">a\n{seq[20_000:20_300]}\n>b\n{seq[30_000:30_300]}\n")
    run("predict", str(fasta), "-m", str(out), "--task", "T1", "-o", str(table))
    rows = [line.split("\t") for line in table.read_text().splitlines()[1:]]
    assert {r[-1] for r in rows} <= {"T1", "not_T1"} and len(rows) == 2
    # --task all: a column per task, each the probability that task alone gives.
    every = tmp_path / "all.tsv"
    run("predict", str(fasta), "-m", str(out), "--task", "all", "-o", str(every))
    header, *lines = [line.split("\t") for line in every.read_text().splitlines()]
    assert header[6:] == ["p_any", "p_T1", "p_T2"] and len(lines) == 2
    for one, alls in zip(rows, lines, strict=True):
        assert alls[:6] == one[:6] and float(alls[7]) == pytest.approx(float(one[6]), abs=1e-6)
    result = run("calibrate", str(out), "--genome", str(genome), "--task", "all", expect=1)
    assert "a background null is of one task" in result.output

    # Scanning one task writes the sigmoid of that task's logit.
    tracks = tmp_path / "tracks"
    run(
        "genome",
        str(mini_fasta),
        "-m",
        str(out),
        "--task",
        "T2",
        "-o",
        str(tracks),
        "--chroms",
        "chr22_32000000",
        "--window",
        "300",
        "--stride",
        "300",
        "--track",
        "probability",
    )
    record = json.loads((tracks / "run.json").read_text())
    assert record["parameters"]["task"] == "T2"
    # --task all: every task's track and calls in tasks/NAME/, the same files a scan of that
    # task alone writes; the top level is the "any" task's, with every track in the session.
    every_task = tmp_path / "all"
    scan_all = ["genome", str(mini_fasta), "-m", str(out), "--chroms", "chr22_32000000",
                "--window", "300", "--stride", "300", "--track", "probability"]  # fmt: skip
    run(*scan_all, "--task", "all", "-o", str(every_task))
    run(*scan_all, "--task", "any", "-o", str(tmp_path / "any"))
    for task, folder in (("T2", tracks), ("any", tmp_path / "any")):
        for name in ("scores.bw", "calls.narrowPeak"):
            alone = (folder / name).read_bytes()
            assert (every_task / "tasks" / task / name).read_bytes() == alone, (task, name)
            if task == "any":  # the top level too
                assert (every_task / name).read_bytes() == alone, name
    record = json.loads((every_task / "run.json").read_text())
    assert record["parameters"]["task"] == "all" and set(record["tasks"]) == {"any", "T1", "T2"}
    assert (
        record["tasks"]["any"]["null"] == "model" and record["tasks"]["T1"]["null"] == "empirical"
    )
    session = (every_task / "igv_session.xml").read_text()
    assert (
        'path="tasks/T1/scores.bw"' in session
        and "tasks/T1/scores.bw" in (every_task / "trackDb.txt").read_text()
    )
    run(*scan_all, "--task", "T1", "-o", str(every_task), expect=1)  # earlier outputs there
    run(*scan_all, "--task", "T1", "-o", str(every_task), "--force")
    assert not (every_task / "tasks").exists()  # no stale task folders
    model = load_classifier(out)
    with open_genome(mini_fasta) as g:
        seqs = [g.fetch("chr22_32000000", s, s + 300) for s in (0, 3000, 6000)]
    want = WindowScorer(model, ComputeOptions(batch_size=1), task="T2").score(seqs)
    import pyBigWig

    with pyBigWig.open(str(tracks / "scores.bw")) as bw:
        got = [bw.values("chr22_32000000", s + 150, s + 151)[0] for s in (0, 3000, 6000)]
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert not np.allclose(
        want, WindowScorer(model, ComputeOptions(batch_size=1), task="T1").score(seqs)
    )

    # The folder fine-tunes into an enhancer classifier: the body kept, a new 2-class head.
    fine = tmp_path / "fine"
    peaks = tmp_path / "peaks.bed"
    peaks.write_text("".join(f"chr2\t{s}\t{s + 200}\n" for s in range(12_000, 58_000, 2_000)))
    run(
        "train",
        "--genome",
        str(mini_fasta),
        "--positives",
        str(peaks),
        "--base",
        str(out),
        "--window",
        "300",
        "--epochs",
        "1",
        "--batch-size",
        "16",
        "--no-baseline",
        "--null-windows",
        "0",
        "--out",
        str(fine),
    )
    tuned = load_classifier(fine)
    assert tuned.metadata.task_type == "classification"
    assert tuned.metadata.labels == ["background", "enhancer"]
    assert tuned.metadata.provenance["base"]["objective"].startswith("multi-task")
    base_state, tuned_state = model.network.state_dict(), tuned.network.state_dict()
    assert tuned_state["classifier.weight"].shape[0] == 2
    assert base_state["classifier.weight"].shape[0] == 3
    assert (
        base_state["cnn.blocks.0.conv.weight"].shape
        == tuned_state["cnn.blocks.0.conv.weight"].shape
    )


def test_multitask_models_take_a_pooling() -> None:
    assert new_multitask("tiny", ["a", "b"], 300, 0, "mean").network.config.pooling == "mean"
    assert new_multitask("tiny", ["a", "b"], 300, 0).network.config.pooling == "cls"
    with pytest.raises(EnhscanError, match="--pooling is for DNABERT-2 models"):
        new_multitask("cnn", ["a", "b"], 300, 0, "mean")
    with pytest.raises(EnhscanError, match="DNABERT-2 models pool cls or mean, not mean\\+max"):
        new_multitask("tiny", ["a", "b"], 300, 0, "mean+max")
