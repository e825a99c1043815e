#!/usr/bin/env python3
"""Held-out quality against training compute: what more data, more pretraining and a GPU buy.

Each point is an ``enhscan train`` run of the default model's recipe (reverse-complement and
20 bp shift augmentation, chr20 + chr22 enhancer labels with one GC-matched random window per
positive besides their own background (``--add-background``), chrX held out, 12 epochs,
patience 4), scored on the scorecard's held-out chrX windows (``model_quality.py``: enhancers
against their own background, and against GC-matched background). The points:

- ``labels F``: the hybrid from scratch on a seeded fraction F of the training chromosomes'
  labels (the held-out chrX labels are all kept);
- ``front end NAME``: the hybrid on all the labels, its convolutions started from a CNN
  pretrained on the atlas (``--front-end NAME=DIR``, e.g. ``tools/make_default_model.sh``'s
  ``atlas_cnn-deep``), as the default model is made; ``--front-end-windows NAME=N``: the
  training windows that CNN's kept weights were shown (its epochs up to the kept one times
  its windows);
- ``--sizes ARCH,...``: the first front-end run again with a bigger hybrid (``hybrid-large``:
  4 encoder layers of 256 against 2 of 192), the model-size axis.

Compute is counted in training windows shown (pretraining and fine-tuning; a hybrid window
costs about twice a CNN window) and in the CPU time of the fine-tuning run (user + system,
all threads). Runs already finished in WORK are read back, so the command resumes.

    python benchmarks/compute_curve.py --labels BED_DIR --work DIR [--fractions 0.25,0.5,1]
        [--front-end NAME=DIR ...] [--front-end-windows NAME=N ...] [--sizes hybrid-large]
        [--add-background 1] [--plot curve.png]

BED_DIR holds positive.bed and negative.bed of chr20, chr22 and chrX (step 1 of
tools/make_default_model.sh writes them).
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path

import click
import numpy as np
from model_quality import GENOMES, gc_matched, labelled_windows, metrics, model_scores

from enhscan.model import load_classifier

CHR22 = GENOMES["X"].parent / "grch37_chr22.fa.gz"
RECIPE = ["--holdout-chroms", "chrX", "--rc-augment", "--shift-augment", "20", "--epochs", "12",
          "--patience", "4", "--batch-size", "64", "--seed", "0", "--null-windows", "0",
          "--no-baseline"]  # fmt: skip


def subsample(labels: Path, fraction: float, out: Path, seed: int = 0) -> None:
    """positive.bed and negative.bed of ``labels`` with a seeded ``fraction`` of the lines of
    every chromosome but chrX (kept whole: it is the test set)."""
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for name in ("positive.bed", "negative.bed"):
        lines = (labels / name).read_text().splitlines(keepends=True)
        keep = [ln for ln in lines if ln.startswith("chrX\t") or rng.random() < fraction]
        (out / name).write_text("".join(keep))


def train(labels: Path, out: Path, extra: list[str]) -> dict:
    """Run ``enhscan train`` to ``out`` unless it finished before; its CPU seconds and the
    training windows it processed (read back from ``out/compute.json``)."""
    record = out / "compute.json"
    if record.exists():
        done = json.loads(record.read_text())
        if done.get("settings") != extra:
            raise click.UsageError(
                f"{out} was trained with other settings ({done.get('settings')}); give another "
                "--work or delete it"
            )
        return done
    genomes = [a for g in (GENOMES["20"], CHR22, GENOMES["X"]) for a in ("--genome", str(g))]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    command = [sys.executable, "-m", "enhscan", "-q", "train", *genomes,
               "--positives", str(labels / "positive.bed"),
               "--negatives", str(labels / "negative.bed"),
               *RECIPE, *extra, "--out", str(out), "--force"]  # fmt: skip
    subprocess.run(command, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    seconds = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    report = json.loads((out / "training" / "metrics.json").read_text())
    summary = json.loads((out / "training" / "data_summary.json").read_text())
    epochs = len(report["model"]["history"])
    windows = epochs * summary["splits"]["train"]["total"]
    result = {"cpu_seconds": round(seconds), "windows": windows, "epochs": epochs,
              "settings": extra}  # fmt: skip
    record.write_text(json.dumps(result) + "\n")
    return result


def pairs(values: tuple[str, ...]) -> dict[str, str]:
    return dict(v.split("=", 1) for v in values)


@click.command()
@click.option("--labels", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--work", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--fractions", default="0.25,0.5,1", show_default=True)
@click.option("--front-end", multiple=True, help="NAME=DIR of an atlas-pretrained CNN folder.")
@click.option("--front-end-windows", multiple=True, help="NAME=N: windows its weights saw.")
@click.option("--sizes", default="", help="Hybrid archs to train like the first front end.")
@click.option(
    "--add-background",
    default="1",
    show_default=True,
    help="GC-matched random windows per positive (0: the sets' own background only).",
)
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), default=None)
def main(labels, work, fractions, front_end, front_end_windows, sizes, add_background,
         plot) -> None:  # fmt: skip
    if sizes and not front_end:
        raise click.UsageError("--sizes trains like the first --front-end run; give --front-end")
    seqs, y, spans = labelled_windows("X")
    positives = [s for s, label in zip(seqs, y, strict=True) if label]
    background = gc_matched(positives, spans, seed=0)
    matched_y = np.array([1] * len(positives) + [0] * len(background))
    runs = []
    for fraction in [float(f) for f in fractions.split(",")]:
        data = work / f"labels_{fraction:g}"
        subsample(labels, fraction, data)
        out = work / f"hybrid_labels_{fraction:g}"
        extra = ["--arch", "hybrid", "--add-background", add_background]
        runs.append((f"labels {fraction:g}", out, train(data, out, extra), 0))
    shown = {k: int(v) for k, v in pairs(front_end_windows).items()}
    arch_runs = [("hybrid", name, folder) for name, folder in pairs(front_end).items()]
    if sizes:
        arch_runs += [(arch, arch_runs[0][1], arch_runs[0][2]) for arch in sizes.split(",")]
    for arch, name, folder in arch_runs:
        tag = "" if arch == "hybrid" else f", {arch}"
        out = work / f"{arch}_front_end_{name}"
        extra = ["--arch", arch, "--front-end", folder, "--lr", "3e-4",
                 "--add-background", add_background]  # fmt: skip
        cost = train(labels, out, extra)
        runs.append((f"front end {name}{tag}", out, cost, shown.get(name, 0)))
    rows = []
    for name, out, cost, pretraining in runs:
        own = metrics(y, model_scores(str(out), seqs, 64))
        matched = metrics(matched_y, model_scores(str(out), positives + background, 64))
        parameters = sum(p.numel() for p in load_classifier(out).network.parameters())
        rows.append({"run": name, **cost, "pretraining_windows": pretraining,
                     "parameters": parameters,
                     "all_windows": cost["windows"] + pretraining,
                     "enhancers_roc_auc": own["roc_auc"], "enhancers_pr_auc": own["pr_auc"],
                     "gc_matched_roc_auc": matched["roc_auc"]})  # fmt: skip
    print("| run | parameters | pretraining windows | fine-tuning windows | fine-tuning CPU s "
          "| enhancers ROC-AUC | PR-AUC | vs GC-matched |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['run']} | {r['parameters'] / 1e6:.1f} M | {r['pretraining_windows']:,} | "
              f"{r['windows']:,} | "
              f"{r['cpu_seconds']:,} | {r['enhancers_roc_auc']:.3f} | "
              f"{r['enhancers_pr_auc']:.3f} | {r['gc_matched_roc_auc']:.3f} |")  # fmt: skip
    (work / "curve.json").write_text(json.dumps(rows, indent=2) + "\n")
    if plot:
        draw(rows, plot)


def draw(rows: list[dict], path: Path) -> None:
    """Held-out ROC-AUC (own background, GC-matched) against training windows, log scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    shown = [r["all_windows"] for r in rows]
    for key, label, marker in (("enhancers_roc_auc", "vs own background", "o"),
                               ("gc_matched_roc_auc", "vs GC-matched", "s")):  # fmt: skip
        ax.scatter(shown, [r[key] for r in rows], marker=marker, label=label)
        for r in rows:
            ax.annotate(r["run"], (r["all_windows"], r[key]), fontsize=7, xytext=(4, 2),
                        textcoords="offset points")  # fmt: skip
    ax.set_xscale("log")
    ax.set_xlabel("training windows shown (pretraining + fine-tuning)")
    ax.set_ylabel("held-out chrX ROC-AUC")
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, dpi=120)
    tmp.replace(path)


if __name__ == "__main__":
    main()
