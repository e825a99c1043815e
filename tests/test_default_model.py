"""The model shipped in the package: present, small, documented, and used by default."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from enhscan.cli import cli
from enhscan.model import default_model_path, load_classifier

EXAMPLE = Path(__file__).parents[1] / "examples" / "hg38_chr2_0-600k.fa.gz"


def test_default_model_is_shipped_small_and_documented():
    folder = default_model_path()
    assert folder is not None, "enhscan/data/default_model is missing"
    size = sum(p.stat().st_size for p in folder.iterdir())
    assert size <= 20 * 1024 * 1024
    model = load_classifier(folder)
    meta = model.metadata
    assert meta.family == "hybrid" and meta.window == 1000 and 0 < meta.threshold < 1
    provenance = meta.provenance
    assert provenance["data"]["holdout_chroms"] and provenance["versions"]["enhscan"]
    # Its convolutions began as the atlas CNN's, then the whole network learned the atlas
    # (pretrain --targets --front-end), then the enhancers (train --base).
    assert provenance["base"]["front_end"]["blocks"] == 3
    assert provenance["base"]["objective"].startswith("multi-task")
    # How it was made: each step's command, machine and time, and the scorecard.
    recipe = json.loads((folder / "recipe.json").read_text())
    steps = {step["step"] for step in recipe["steps"]}
    assert {"pretrain", "pretrain-hybrid", "finetune", "scorecard"} <= steps
    assert recipe["scorecard"]["models"]
    # The held-out-chromosome comparison recorded at training: the model beats both
    # baselines on PR-AUC (the README table is made from these same numbers).
    metrics = meta.metrics
    for baseline in ("cnn", "gc_cpg"):
        assert metrics["test"]["pr_auc"] > metrics["baselines_test"][baseline]["pr_auc"]


def test_genome_without_model_uses_the_shipped_one(tmp_path):
    regions = tmp_path / "r.bed"
    regions.write_text("chr2\t280000\t300000\n")
    out = tmp_path / "tracks"
    result = CliRunner().invoke(
        cli, ["-q", "genome", str(EXAMPLE), "--out", str(out), "--regions", str(regions)]
    )
    assert result.exit_code == 0, result.output
    record = json.loads((out / "run.json").read_text())
    assert Path(record["model"]["path"]) == default_model_path().resolve()
    assert record["windows"]["scored"] == 96
