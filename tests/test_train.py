"""`enhscan train`: the training loop, resuming, the search, and the whole command."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file

from enhscan.cli import cli
from enhscan.model import load_classifier, new_classifier
from enhscan.training.trainer import BEST_WEIGHTS, TrainSettings, fit

DATA = Path(__file__).parent / "data"
MOTIF = "GATAAGATAA"
TINY = dict(num_hidden_layers=1, hidden_size=32, num_attention_heads=4, intermediate_size=64)


def planted(n: int, seed: int, length: int = 200) -> tuple[list[str], np.ndarray]:
    """Random DNA; every other sequence carries three copies of a motif (label 1)."""
    rng = np.random.default_rng(seed)
    seqs, labels = [], []
    for i in range(n):
        s = list(rng.choice(list("ACGT"), length))
        if i % 2:
            for p in rng.choice(length - len(MOTIF), 3, replace=False):
                s[p : p + len(MOTIF)] = MOTIF
        seqs.append("".join(s)[:length])
        labels.append(i % 2)
    return seqs, np.array(labels)


def tiny() -> object:
    return new_classifier("tiny", seed=0, **TINY)


SETTINGS = TrainSettings(
    epochs=3, batch_size=16, learning_rate=2e-3, warmup_ratio=0.0, patience=5, cpu=True
)


def run_fit(work: Path, settings: TrainSettings = SETTINGS, **kwargs):
    train, train_labels = planted(128, 1)
    val, val_labels = planted(48, 2)
    return fit(
        tiny(), train, train_labels, val, val_labels, settings, work, progress=False, **kwargs
    )


def test_loss_falls_and_the_model_learns(tmp_path):
    result = run_fit(
        tmp_path, TrainSettings(**{**SETTINGS.__dict__, "epochs": 6, "learning_rate": 5e-3})
    )
    losses = [h["train_loss"] for h in result.history]
    assert losses[-1] < losses[0] - 0.1
    assert result.best_pr_auc > 0.9
    assert (tmp_path / BEST_WEIGHTS).exists() and (tmp_path / "log.jsonl").exists()


def test_same_seed_same_weights(tmp_path):
    a = run_fit(tmp_path / "a").classifier.network.state_dict()
    b = run_fit(tmp_path / "b").classifier.network.state_dict()
    for key in a:
        assert np.array_equal(a[key].numpy(), b[key].numpy()), key


def test_resumed_run_matches_an_uninterrupted_one(tmp_path):
    whole = run_fit(tmp_path / "whole")
    run_fit(tmp_path / "cut", stop_after_epoch=1)  # as if killed after the first epoch
    resumed = run_fit(tmp_path / "cut", resume=True)
    assert resumed.resumed_from_epoch == 1
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3]
    want = load_file(str(tmp_path / "whole" / BEST_WEIGHTS))
    got = load_file(str(tmp_path / "cut" / BEST_WEIGHTS))
    for key in want:
        assert np.array_equal(want[key].numpy(), got[key].numpy()), key
    assert resumed.history == whole.history


def test_resume_with_other_settings_is_refused(tmp_path):
    from enhscan.errors import EnhscanError

    run_fit(tmp_path, stop_after_epoch=1)
    with pytest.raises(EnhscanError, match=r"made with other learning_rate \(0.002, now 0.0001\)"):
        run_fit(
            tmp_path, TrainSettings(**{**SETTINGS.__dict__, "learning_rate": 1e-4}), resume=True
        )


def test_resume_with_another_model_is_refused(tmp_path):
    from enhscan.errors import EnhscanError

    run_fit(tmp_path, stop_after_epoch=1)
    wider = new_classifier("tiny", seed=0, **{**TINY, "intermediate_size": 128})
    train, train_labels = planted(128, 1)
    val, val_labels = planted(48, 2)
    with pytest.raises(EnhscanError, match="made with other model;"):
        fit(wider, train, train_labels, val, val_labels, SETTINGS, tmp_path, progress=False,
            resume=True)  # fmt: skip


def train_cli(*args: str, expect: int = 0):
    result = CliRunner().invoke(cli, ["-q", "train", *args], catch_exceptions=False)
    assert result.exit_code == expect, result.output
    return result


COHN = ["--sequences", str(DATA / "cohn_sample.csv")]
FAST = ["--arch", "tiny", "--epochs", "2", "--batch-size", "16", "--lr", "1e-3", "--window", "200"]
FAST += ["--null-windows", "300"]  # with --genome: a small background null


def test_train_from_sequences_then_scan(tmp_path, mini_fasta):
    out = tmp_path / "model"
    train_cli(*COHN, "--out", str(out), *FAST)
    report = json.loads((out / "training" / "metrics.json").read_text())
    meta = json.loads((out / "enhscan.json").read_text())
    for name in ("model", "baseline_cnn", "baseline_gc_cpg"):
        test = report[name]["test"]
        assert 0 <= test["pr_auc"] <= 1 and 0 <= test["roc_auc"] <= 1
        assert {"f1", "precision", "recall", "mcc", "accuracy", "threshold"} <= set(test)
    # The call threshold is the best-F1 threshold of the validation set.
    assert meta["threshold"] == pytest.approx(report["model"]["validation"]["threshold"])
    assert meta["metrics"]["test"]["pr_auc"] == pytest.approx(report["model"]["test"]["pr_auc"])
    assert meta["provenance"]["data"]["sequences"].endswith("cohn_sample.csv")
    for png in ("pr_curve.png", "roc_curve.png"):
        assert (out / "training" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((out / "training" / "data_summary.json").read_text())
    assert summary  # counts per class and split are covered in test_prepare.py
    predictions = (out / "training" / "test_predictions.tsv").read_text().splitlines()
    assert predictions[0].split("\t")[-2:] == ["score", "cnn_score"]
    assert not (out / "training" / "work" / "checkpoint").exists()

    # Both trained folders scan a genome.
    for folder in (out, out / "baseline_cnn"):
        scan = tmp_path / f"scan_{folder.name}"
        result = CliRunner().invoke(
            cli,
            [
                "-q",
                "genome",
                str(mini_fasta),
                "-m",
                str(folder),
                "-o",
                str(scan),
                "--window",
                "500",
            ],
        )
        assert result.exit_code == 0, result.output
        assert (scan / "scores.bw").exists()
    assert load_classifier(out / "baseline_cnn").metadata.family == "cnn"


def test_ema_decay_trains_validates_and_keeps_the_average(tmp_path):
    out = tmp_path / "model"
    train_cli(*COHN, "--out", str(out), *FAST, "--no-baseline", "--ema-decay", "0.9")
    report = json.loads((out / "training" / "metrics.json").read_text())
    assert report["model"]["settings"]["ema_decay"] == 0.9
    # The folder holds the averaged weights that validation chose.
    best = load_file(out / "training" / "work" / BEST_WEIGHTS)
    kept = load_classifier(out).network.state_dict()
    assert best and all(torch.equal(kept[k], v) for k, v in best.items())
    result = CliRunner().invoke(
        cli, ["train", *COHN, "--out", str(tmp_path / "x"), "--ema-decay", "1"]
    )
    assert result.exit_code == 2 and "--ema-decay" in result.output


def test_train_refuses_to_overwrite_a_model(tmp_path):
    out = tmp_path / "model"
    train_cli(
        *COHN,
        "--out",
        str(out),
        *FAST,
        "--epochs",
        "1",
        "--no-baseline",
    )
    result = train_cli(*COHN, "--out", str(out), *FAST, expect=1)
    assert "--force" in result.output


def test_train_refuses_to_start_over_an_interrupted_run(tmp_path):
    """A run stopped part-way keeps its checkpoint; the same command without --resume must not
    silently train from the start over it (hours of work on a real run)."""
    from tests.test_loop import run

    out = tmp_path / "model"
    run(out / "training" / "work", stop_after_round=2)  # a real checkpoint, as Ctrl-C leaves
    result = train_cli(*COHN, "--out", str(out), *FAST, "--no-baseline", expect=1)
    assert "holds an interrupted run (the checkpoint after 2 rounds (16 steps) in" in result.output
    assert "--resume" in result.output and "--force" in result.output
    assert (out / "training" / "work" / "checkpoint" / "state.json").exists()
    train_cli(*COHN, "--out", str(out), *FAST, "--epochs", "1", "--no-baseline", "--force")
    assert (out / "enhscan.json").exists()


def test_optuna_search_continues_when_run_again(tmp_path):
    out = tmp_path / "model"
    args = [
        *COHN,
        "--out",
        str(out),
        *FAST,
        "--epochs",
        "1",
        "--no-baseline",
    ]
    train_cli(*args, "--trials", "2")
    report = json.loads((out / "training" / "metrics.json").read_text())
    assert report["search"]["trials"] == 2
    train_cli(*args, "--trials", "3", "--resume")
    report = json.loads((out / "training" / "metrics.json").read_text())
    assert report["search"]["trials"] == 3  # two earlier trials kept, one more run
    import optuna

    study = optuna.load_study(
        study_name="enhscan", storage=f"sqlite:///{report['search']['storage']}"
    )
    tried = [tuple(sorted(t.params.items())) for t in study.trials]
    assert len(set(tried)) == 3  # the resumed search draws new settings, not trial 0's again
    result = train_cli(*args, "--trials", "3", expect=1)  # finished: not an interrupted run
    assert "already holds a trained model" in result.output
    assert set(report["search"]["best_params"]) == {
        "learning_rate",
        "batch_size",
        "warmup_ratio",
        "weight_decay",
        "dropout",
    }


def _write_peaks(path: Path) -> None:
    # Intervals on the two real pieces of mini.fa (chr2 starts with 10 kb of N).
    lines = [f"chr2\t{s}\t{s + 300}\tp{s}\n" for s in range(12_000, 58_000, 4_000)]
    lines += [f"chr22_32000000\t{s}\t{s + 300}\tq{s}\n" for s in range(1_000, 29_000, 4_000)]
    path.write_text("".join(lines))


def test_train_from_peaks_with_background_and_held_out_chromosome(tmp_path, mini_fasta):
    peaks = tmp_path / "peaks.bed"
    _write_peaks(peaks)
    out = tmp_path / "model"
    train_cli(
        "--genome",
        str(mini_fasta),
        "--positives",
        str(peaks),
        "--out",
        str(out),
        "--holdout-chroms",
        "chr22_32000000",
        "--val-fraction",
        "0.25",
        *FAST,
        "--no-baseline",
        "--shift-augment",
        "30",
    )
    summary = json.loads((out / "training" / "data_summary.json").read_text())
    text = json.dumps(summary)
    assert "chr22_32000000" in text
    predictions = [
        line.split("\t")
        for line in (out / "training" / "test_predictions.tsv").read_text().splitlines()[1:]
    ]
    assert predictions and {row[1] for row in predictions} == {"chr22_32000000"}
    assert json.loads((out / "enhscan.json").read_text())["window"] == 200


def test_shift_augment_cuts_training_windows_wider_from_the_genome(tmp_path, mini_fasta):
    from enhscan.io.fasta import open_genome
    from enhscan.training.pipeline import DataOptions, prepare_data

    peaks = tmp_path / "peaks.bed"
    _write_peaks(peaks)
    options = DataOptions(
        genome=[str(mini_fasta)], positives=str(peaks), window=200,
        holdout_chroms=["chr22_32000000"],
    )  # fmt: skip
    data = prepare_data(options, flank=30)
    assert data.flanked is not None and len(data.flanked) == len(data.train)
    with open_genome(mini_fasta) as genome:
        for example, wide in zip(data.train, data.flanked, strict=True):
            assert len(wide) == 260
            if 30 <= example.start <= genome.lengths[example.chrom] - 230:
                assert wide[30:230] == example.seq  # the same centre
    assert data.training_windows()[0] == data.flanked
    assert prepare_data(options).flanked is None
    result = train_cli(*COHN, "--out", str(tmp_path / "m"), *FAST, "--shift-augment", "10",
                       expect=1)  # fmt: skip
    assert "--shift-augment needs windows cut from a genome" in result.output


def test_add_background_samples_gc_matched_windows_beside_the_given_negatives(tmp_path, mini_fasta):
    from enhscan.training.pipeline import DataOptions, prepare_data

    peaks, negatives = tmp_path / "peaks.bed", tmp_path / "negatives.bed"
    _write_peaks(peaks)
    negatives.write_text("".join(f"chr2\t{s}\t{s + 300}\n" for s in range(14_000, 58_000, 4_000)))
    options = DataOptions(
        genome=[str(mini_fasta)], positives=str(peaks), negatives=str(negatives), window=200,
        add_background=1.0, holdout_chroms=["chr22_32000000"],
    )  # fmt: skip
    data = prepare_data(options)
    examples = data.train + data.val + data.test
    labelled = [e for e in examples if e.source != "background"]
    sampled = [e for e in examples if e.source == "background"]
    positives = sum(e.label for e in examples)
    assert len(sampled) == positives == 19 and len(labelled) == 19 + 11
    assert all(e.label == 0 for e in sampled)
    for e in sampled:  # clear of every labelled window
        assert all(
            e.chrom != o.chrom or e.start + 200 <= o.start or o.start + 200 <= e.start
            for o in labelled
        )
    assert data.summary["extraction"]["background_sampled"] == 19
    # each chromosome gets its own positives' share, so the held-out one keeps its background
    assert sum(e.chrom == "chr2" for e in sampled) == 12
    assert sum(e.chrom == "chr22_32000000" for e in data.test if e.source == "background") == 7
    without = DataOptions(**{**options.__dict__, "add_background": 0.0, "holdout_chroms": None})
    without = prepare_data(without)
    assert len(without.train + without.val + without.test) == 30
    result = train_cli(*COHN, "--out", str(tmp_path / "m"), *FAST, "--add-background", "1",
                       expect=2)  # fmt: skip
    assert "--add-background adds to --negatives on a --genome" in result.output


def test_background_of_a_full_chromosome_stays_in_its_split(tmp_path, mini_fasta, caplog):
    from enhscan.training.pipeline import DataOptions, prepare_data

    # three windows fill the 700 bp contig, held out with chr22_32000000: its share of the
    # background must come from that other held-out chromosome, not from training's chr2
    lines = [f"yeastI_0_700\t{s}\t{s + 100}\n" for s in (50, 300, 500)]
    lines += [f"chr2\t{s}\t{s + 100}\n" for s in range(12_000, 32_000, 4_000)]
    lines += [f"chr22_32000000\t{s}\t{s + 100}\n" for s in (5_000, 15_000)]
    forward, backward = tmp_path / "forward.bed", tmp_path / "backward.bed"
    forward.write_text("".join(lines))
    backward.write_text("".join(reversed(lines)))
    sampled = {}
    for peaks in (forward, backward):
        options = DataOptions(genome=[str(mini_fasta)], positives=str(peaks), window=200,
                              background_ratio=2.0,
                              holdout_chroms=["yeastI_0_700", "chr22_32000000"])  # fmt: skip
        with caplog.at_level("WARNING", logger="enhscan"):
            data = prepare_data(options)
        examples = data.train + data.val + data.test
        sampled[peaks] = sorted((e.chrom, e.start) for e in examples if e.source == "background")
    chroms = [chrom for chrom, _ in sampled[forward]]
    assert len(chroms) == 2 * 10
    assert (chroms.count("chr2"), chroms.count("chr22_32000000")) == (10, 10)
    assert "no room for 6 windows on yeastI_0_700" in caplog.text
    assert sampled[forward] == sampled[backward]  # the order of the positives does not matter


@pytest.mark.parametrize(
    "content, message",
    [
        ("sequence,label\nACGTACGT,1\nACGTTTTT,1\n", "two classes"),
        ("sequence,label\nACGTACGT,1\nACGTTTTT,0\nACGTAAAA,2\n", "two classes"),
        (
            "sequence,label\nACGTACGTAA,1\nACGTACGTAA,0\nACGTTTTTAA,1\n",
            "2 examples are labelled both enhancer and background",
        ),
        ("ACGT" * 20 + ",1\n" + "ACGA" * 20 + ",0\n", "looks like data, not a header"),
    ],
)
def test_bad_labels(tmp_path, content, message):
    table = tmp_path / "seqs.csv"
    table.write_text(content)
    result = train_cli("--sequences", str(table), "--out", str(tmp_path / "m"), *FAST, expect=1)
    assert message in result.output
    assert not (tmp_path / "m" / "enhscan.json").exists()


def test_too_few_examples_for_the_split(tmp_path):
    table = tmp_path / "seqs.csv"
    table.write_text("sequence,label\nACGTACGTAA,1\nACGTTTTTAC,0\nGGGTACGTAA,1\n")
    result = train_cli("--sequences", str(table), "--out", str(tmp_path / "m"), *FAST, expect=1)
    assert "too few" in result.output


def test_base_must_be_a_dnabert2_model(tmp_path):
    not_a_model = tmp_path / "notamodel"
    not_a_model.mkdir()
    (not_a_model / "config.json").write_text(json.dumps({"model_type": "bert"}))
    (not_a_model / "tokenizer.json").write_text("{}")
    shutil.copy(DATA / "cohn_sample.csv", tmp_path / "s.csv")
    result = train_cli(
        "--sequences",
        str(tmp_path / "s.csv"),
        "--out",
        str(tmp_path / "m"),
        "--base",
        str(not_a_model),
        expect=1,
    )
    assert "model" in result.output.lower()


def test_peaks_outside_the_genome(tmp_path, mini_fasta):
    peaks = tmp_path / "peaks.bed"
    peaks.write_text("chr2\t12000\t12300\nchrY\t100\t400\n")
    result = train_cli(
        "--genome",
        str(mini_fasta),
        "--positives",
        str(peaks),
        "--out",
        str(tmp_path / "m"),
        *FAST,
        expect=1,
    )
    assert "chrY" in result.output and "chr2" in result.output


@pytest.mark.slow
def test_two_processes_with_accelerate_launch(tmp_path):
    """`accelerate launch` with two CPU processes (gloo) trains and writes one model."""
    import subprocess
    import sys

    out = tmp_path / "model"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "accelerate.commands.launch",
            "--num_processes",
            "2",
            "--multi_gpu",
            "--num_machines",
            "1",
            "--mixed_precision",
            "no",
            "--dynamo_backend",
            "no",
            "-m",
            "enhscan",
            "-q",
            "train",
            *COHN,
            "--out",
            str(out),
            *FAST,
        ],
        check=True,
        cwd=tmp_path,
    )
    assert load_classifier(out).metadata.threshold >= 0
    assert load_classifier(out / "baseline_cnn").metadata.family == "cnn"
    report = json.loads((out / "training" / "metrics.json").read_text())
    assert report["processes"] == 2  # accelerate's --cpu launcher would have started one


@pytest.mark.slow
def test_train_on_real_genomic_benchmarks_labels(tmp_path, mini_fasta):
    """The README's worked example (shortened): real labels on real GRCh37 chromosomes."""
    import subprocess

    from tests.conftest import SHARED

    if not (SHARED / "genomes" / "grch37_chr20.fa.gz").exists():
        pytest.skip("shared data not present")
    out = tmp_path / "cohn"
    script = Path(__file__).parents[1] / "tools" / "example_train_cohn.sh"
    subprocess.run(
        ["bash", str(script), str(out), "--arch", "tiny", "--epochs", "1", "-f"],
        check=True,
        env={**os.environ, "SHARED_DATA": str(SHARED)},
    )
    report = json.loads((out / "training" / "metrics.json").read_text())
    summary = report["data"]
    assert summary["split"]["method"] == "chromosomes"
    assert report["model"]["test"]["n"] == 529  # chrX: 130 enhancers, 399 background
    for png in ("pr_curve.png", "roc_curve.png"):
        assert (out / "training" / png).exists()
    result = CliRunner().invoke(
        cli,
        [
            "-q",
            "genome",
            str(mini_fasta),
            "-m",
            str(out),
            "-o",
            str(tmp_path / "scan"),
            "--chroms",
            "chr22*",
        ],
    )
    assert result.exit_code == 0, result.output


def test_train_from_a_pretrained_base_without_head(tmp_path):
    """--base takes a DNABERT-2 folder that has no classifier head (a pretrained encoder)."""
    from safetensors.torch import save_file

    from enhscan.model import save_classifier

    base = save_classifier(tiny(), tmp_path / "base")
    weights = load_file(str(base / "model.safetensors"))
    encoder_only = {
        k: v for k, v in weights.items() if not k.startswith(("classifier.", "bert.pooler."))
    }
    save_file(encoder_only, str(base / "model.safetensors"))
    (base / "enhscan.json").unlink()
    out = tmp_path / "model"
    train_cli(
        *COHN,
        "--out",
        str(out),
        "--base",
        str(base),
        *FAST[2:],
        "--no-baseline",
    )
    trained = load_classifier(out)
    assert trained.metadata.window == 200
    assert json.loads((out / "training" / "metrics.json").read_text())["model"]["arch"] == (
        f"base:{base}"
    )


def test_train_with_a_bpe_tokenizer_trained_on_the_data(tmp_path):
    out = tmp_path / "model"
    train_cli(
        *COHN,
        "--out",
        str(out),
        *FAST,
        "--tokenizer",
        "train",
        "--vocab-size",
        "64",
        "--no-baseline",
        "--epochs",
        "1",
    )
    vocab = json.loads((out / "tokenizer.json").read_text())["model"]["vocab"]
    assert len(vocab) <= 64 and "[CLS]" in vocab
    assert load_classifier(out).encoder.vocab_size <= 64


def test_pooling_mean_is_trained_saved_and_scanned(tmp_path, mini_fasta):
    out = tmp_path / "model"
    train_cli(*COHN, "--out", str(out), *FAST, "--no-baseline", "--pooling", "mean")
    assert json.loads((out / "config.json").read_text())["pooling"] == "mean"
    from enhscan.backend import ComputeOptions
    from enhscan.engine import WindowScorer
    from enhscan.model import load_classifier

    model = load_classifier(out)
    assert model.network.config.pooling == "mean"
    # The scan engine's [CLS]-only last layer follows the pooling: the same scores as a full
    # forward pass, window by window.
    rng = np.random.default_rng(1)
    seqs = ["".join(rng.choice(list("ACGT"), 200)) for _ in range(6)]
    scanned = WindowScorer(model, ComputeOptions(batch_size=4)).score(seqs)
    with torch.no_grad():
        ids = model.encoder.encode(seqs)
        full = [torch.softmax(model.network(torch.tensor(i)[None]).logits, -1)[0, 1] for i in ids]
    np.testing.assert_allclose(scanned, [float(v) for v in full], atol=1e-5)
    result = train_cli(*COHN, "--out", str(tmp_path / "c"), "--arch", "cnn", "--pooling", "mean",
                       expect=1)  # fmt: skip
    assert "--pooling is for DNABERT-2 models" in result.output
