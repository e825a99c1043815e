"""Fine-tuning with auxiliary tasks: the paired windows, the two heads on one body, the loss,
determinism and resuming, and `enhscan train --aux-targets` end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from enhscan.errors import EnhscanError
from enhscan.io.fasta import open_genome
from enhscan.model import load_classifier
from enhscan.model.folder import replace_head, save_classifier
from enhscan.sequence import reverse_complement
from enhscan.training.auxiliary import (
    AuxiliaryOptions,
    AuxiliaryTasks,
    AuxiliaryWindows,
    PairedWindows,
    WithAuxiliaryHead,
    auxiliary_elements,
    auxiliary_tasks,
    paired_collate,
)
from enhscan.training.multitask import TargetOptions
from enhscan.training.multitask_pipeline import new_multitask
from enhscan.training.objectives import ClassificationWithAuxiliaryTasks
from enhscan.training.trainer import BEST_WEIGHTS, TrainSettings, _EncodedDataset, fit
from tests.conftest import remo_like
from tests.conftest import run_cli as run

WINDOW = 300


def windows_of(genome: Path, chrom: str, starts, width: int) -> list[str]:
    with open_genome(genome) as g:
        return [g.fetch(chrom, s, s + width) for s in starts]


def test_paired_windows_walk_through_seeded_shuffles(mini_fasta) -> None:
    encoder = new_multitask("cnn", ["a", "b"], WINDOW, seed=0).encoder
    labelled_seqs = windows_of(mini_fasta, "chr2", range(11_000, 16_000, 1_000), WINDOW)
    labelled = _EncodedDataset(encoder, labelled_seqs, np.arange(5) % 2, rc=False, shift=0, seed=3)
    shift = 10
    seqs = windows_of(mini_fasta, "chr2", range(20_000, 27_000, 1_000), WINDOW + 2 * shift)
    targets = (np.arange(14).reshape(7, 2) % 3 == 0).astype(np.uint8)
    aux = AuxiliaryWindows(["a", "b"], seqs, targets, [("chr2", 0)] * 7)
    paired = PairedWindows(labelled, encoder, aux, rc=True, shift=shift, seed=3)

    def rows(epoch: int) -> list[int]:
        paired.set_epoch(epoch)
        return paired.rows.tolist()

    first, second, third = rows(1), rows(2), rows(3)
    # 7 windows, 5 an epoch: epoch 2 ends the first shuffle and starts the second.
    assert sorted(first + second[:2]) == list(range(7))
    assert sorted(second[2:] + third[:4]) == list(range(7))
    assert rows(2) == second  # a function of the seed and epoch alone (resumes see the same)
    other = PairedWindows(labelled, encoder, aux, rc=True, shift=shift, seed=4)
    other.set_epoch(1)
    assert other.rows.tolist() != first

    # Each item: the labelled window's view, then an auxiliary view that is a reversed or
    # forward cut of its window at most `shift` bases off centre, with that window's targets.
    paired.set_epoch(3)
    flipped = 0
    for i in range(5):
        ids, label, aux_ids, aux_targets = paired[i]
        assert np.array_equal(ids, labelled[i][0]) and label == labelled[i][1]
        row = paired.rows[i]
        assert np.array_equal(aux_targets, targets[row])
        cuts = [seqs[row][a : a + WINDOW] for a in range(2 * shift + 1)]
        forward = [np.array_equal(aux_ids, encoder.encode([c])[0]) for c in cuts]
        reverse = [
            np.array_equal(aux_ids, encoder.encode([reverse_complement(c)])[0]) for c in cuts
        ]
        assert any(forward) or any(reverse)
        flipped += any(reverse) and not any(forward)
    assert 0 < flipped < 5  # some reversed, some not

    batch = paired_collate(encoder.pad_id)([paired[0], paired[1]])
    assert batch["input_ids"].shape[0] == 4 and batch["labels"].tolist() == [0, 1]
    assert batch["auxiliary_targets"].dtype == torch.float32
    assert batch["auxiliary_targets"].shape == (2, 2)


def test_the_auxiliary_head_reads_the_classifier_body(mini_fasta) -> None:
    base = new_multitask("cnn", ["any", "T1", "T2"], WINDOW, seed=0)
    network = base.network.eval()
    seqs = windows_of(mini_fasta, "chr2", range(11_000, 15_000, 1_000), WINDOW)
    ids = torch.from_numpy(np.stack(base.encoder.encode(seqs)))
    mask = torch.ones_like(ids)
    with torch.no_grad():
        want_tasks = network(input_ids=ids, attention_mask=mask).logits
    head = network.classifier
    replace_head(base, ["background", "enhancer"], seed=1)
    with torch.no_grad():
        want_classes = base.network(input_ids=ids, attention_mask=mask).logits
    joint = WithAuxiliaryHead(base.network, head).eval()
    with torch.no_grad():
        classes, tasks = joint(ids, mask)
        alone = joint.network(input_ids=ids, attention_mask=mask).logits
    # The base's own output layer on the same body gives the base's task logits back.
    torch.testing.assert_close(tasks, want_tasks)
    torch.testing.assert_close(classes, want_classes)
    torch.testing.assert_close(alone, want_classes)  # called directly: the classifier alone
    # The joint model holds each layer once (checkpoints cannot store shared tensors).
    pointers = [t.data_ptr() for t in joint.state_dict().values()]
    assert len(pointers) == len(set(pointers))
    assert sum("auxiliary" in k for k in joint.state_dict()) == 2
    kept = joint.finished()
    assert kept.classifier.out_features == 2
    assert set(kept.state_dict()) == set(
        new_multitask("cnn", ["a", "b"], WINDOW, seed=0).network.state_dict()
    )


def test_the_loss_adds_weighted_task_cross_entropy_of_the_auxiliary_rows() -> None:
    class Fixed(torch.nn.Module):
        def forward(self, input_ids, attention_mask):
            logits = input_ids.float()
            return logits[:, :2], logits[:, 2:]

    ids = torch.tensor([[0, 2, 1, 0, 0], [1, 0, 0, 1, 1], [0, 0, 2, 1, 0], [3, 1, 0, 0, 2]])
    batch = {
        "input_ids": ids,
        "attention_mask": torch.ones_like(ids),
        "labels": torch.tensor([1, 0]),
        "auxiliary_targets": torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]]),
    }
    classes, tasks = torch.tensor([0.5, 2.0]), torch.tensor([3.0, 1.0, 1.0])
    objective = ClassificationWithAuxiliaryTasks(0.3, classes, tasks)
    loss, counts = objective.loss(Fixed(), batch)
    main = F.cross_entropy(ids[:2, :2].float(), batch["labels"], weight=classes)
    aux = F.binary_cross_entropy_with_logits(
        ids[2:, 2:].float(), batch["auxiliary_targets"], pos_weight=tasks
    )
    torch.testing.assert_close(loss, main + 0.3 * aux)
    summary = objective.summary({k: float(v) for k, v in counts.items()})
    assert summary["main_loss"] == pytest.approx(main.item())
    assert summary["auxiliary_loss"] == pytest.approx(aux.item())


SETTINGS = TrainSettings(
    epochs=3, batch_size=16, learning_rate=3e-3, warmup_ratio=0.0, cpu=True, rc_augment=True,
    shift_augment=10,
)  # fmt: skip


def tasks_of(tmp_path: Path, mini_fasta: Path, **made) -> tuple[Path, AuxiliaryOptions]:
    """A multi-task CNN base folder (random weights; ``made``: its pretraining's target
    rules) and the atlas its tasks come from."""
    atlas = remo_like(mini_fasta, tmp_path)
    base_dir = tmp_path / "base"
    tasks = ["T1", "T2"] if made.get("any_task") is False else ["any", "T1", "T2"]
    base = new_multitask("cnn", tasks, WINDOW, seed=0)
    base.metadata.provenance["targets"] = made
    save_classifier(base, base_dir)
    targets = TargetOptions(paths=[str(atlas)], label_column=6)
    return base_dir, AuxiliaryOptions(targets, windows=40)


def tasks_for(base_dir: Path, options: AuxiliaryOptions, genome: Path, width: int, **kwargs):
    with open_genome(genome) as g:
        read = auxiliary_elements(base_dir, options.targets, g.lengths)
    return auxiliary_tasks(base_dir, *read, options.windows, [str(genome)], width, **kwargs)


def fit_inputs(tmp_path, mini_fasta, settings) -> tuple:
    """A classifier from a multi-task base, its labelled windows and its auxiliary tasks."""
    base_dir, options = tasks_of(tmp_path, mini_fasta)
    wide = WINDOW + 2 * settings.shift_augment
    tasks = tasks_for(base_dir, options, mini_fasta, wide, held_out=["chr22_32000000"])
    classifier = load_classifier(base_dir, require_head=False)
    replace_head(classifier, ["background", "enhancer"], seed=0)
    train = windows_of(mini_fasta, "chr2", range(11_000, 59_000, 1_500), wide)
    val = windows_of(mini_fasta, "chr22_32000000", range(500, 30_000, 1_500), WINDOW)
    labelled = (train, np.arange(len(train)) % 2, val, np.arange(len(val)) % 2)
    return classifier, labelled, tasks


def fit_with_tasks(tmp_path, mini_fasta, work: Path, settings=SETTINGS, **kwargs):
    classifier, labelled, tasks = fit_inputs(tmp_path, mini_fasta, settings)
    return fit(classifier, *labelled, settings, work, progress=False, auxiliary=tasks, **kwargs)


def test_fit_with_auxiliary_tasks_is_deterministic_and_resumes_exactly(
    tmp_path, mini_fasta
) -> None:
    def run_fit(name: str, **kwargs):
        return fit_with_tasks(tmp_path, mini_fasta, tmp_path / name, **kwargs)

    whole, again = run_fit("whole"), run_fit("again")
    run_fit("cut", stop_after_epoch=1)
    resumed = run_fit("cut", resume=True)
    assert resumed.resumed_from_epoch == 1 and resumed.history == whole.history == again.history
    want = load_file(str(tmp_path / "whole" / BEST_WEIGHTS))
    assert any("auxiliary" in key for key in want)  # the joint model's weights
    for other in ("again", "cut"):
        got = load_file(str(tmp_path / other / BEST_WEIGHTS))
        assert all(np.array_equal(want[k].numpy(), got[k].numpy()) for k in want), other
    # Both losses are logged; the task loss learns; the classifier alone comes back.
    first, last = whole.history[0], whole.history[-1]
    assert last["auxiliary_loss"] < first["auxiliary_loss"]
    assert first["train_loss"] == pytest.approx(
        first["main_loss"] + first["auxiliary_loss"], rel=1e-6
    )
    assert type(whole.classifier.network.classifier) is torch.nn.Linear
    assert whole.classifier.network.classifier.out_features == 2
    # The weight matters: other weights, other training.
    lighter = TrainSettings(**{**SETTINGS.__dict__, "auxiliary_weight": 0.1})
    other = run_fit("light", settings=lighter)
    assert other.history[0]["train_loss"] != whole.history[0]["train_loss"]


def test_auxiliary_tasks_with_a_weight_average_and_after_a_failure(tmp_path, mini_fasta) -> None:
    averaged = TrainSettings(**{**SETTINGS.__dict__, "ema_decay": 0.9, "epochs": 2})
    result = fit_with_tasks(tmp_path, mini_fasta, tmp_path / "ema", settings=averaged)
    assert type(result.classifier.network.classifier) is torch.nn.Linear
    plain = TrainSettings(**{**SETTINGS.__dict__, "epochs": 2})
    again = fit_with_tasks(tmp_path, mini_fasta, tmp_path / "plain", settings=plain)
    ema_head = result.classifier.network.classifier.weight
    assert not torch.equal(ema_head, again.classifier.network.classifier.weight)

    def stop(epoch: int, score: float) -> None:
        raise KeyboardInterrupt

    classifier, labelled, tasks = fit_inputs(tmp_path, mini_fasta, plain)
    with pytest.raises(KeyboardInterrupt):
        fit(classifier, *labelled, plain, tmp_path / "stop", progress=False, auxiliary=tasks,
            on_epoch=stop)  # fmt: skip
    # The classifier handed in has its own output layer back.
    assert type(classifier.network.classifier) is torch.nn.Linear


def test_auxiliary_windows_avoid_held_out_and_labelled_windows(tmp_path, mini_fasta) -> None:
    base_dir, options = tasks_of(tmp_path, mini_fasta)
    avoid = [("chr2", 20_000, 40_000)]
    held = ["chr22_32000000", "chrTypo"]  # a name the genome lacks holds nothing back
    tasks = tasks_for(base_dir, options, mini_fasta, WINDOW + 10, held_out=held, avoid=avoid)
    assert isinstance(tasks, AuxiliaryTasks) and tasks.head.out_features == 3
    windows = tasks.windows
    assert len(windows.seqs) == 40 and {len(s) for s in windows.seqs} == {WINDOW + 10}
    assert {c for c, _ in windows.positions} == {"chr2"}
    assert all(s + WINDOW + 10 <= 20_000 or s >= 40_000 for _, s in windows.positions)
    assert windows.targets[:, 0].sum() > 10  # half are centred on an element
    for (chrom, start), seq in zip(windows.positions, windows.seqs, strict=True):
        assert windows_of(mini_fasta, chrom, [start], WINDOW + 10)[0] == seq
    # An --exclude BED is kept clear of as well.
    exclude = tmp_path / "exclude.bed"
    exclude.write_text("chr2\t45000\t50000\n")
    clear = tasks_for(base_dir, options, mini_fasta, WINDOW, held_out=held, exclude=exclude)
    assert all(s + WINDOW <= 45_000 or s >= 50_000 for c, s in clear.windows.positions)
    everywhere = [("chr2", 0, 60_000)]
    with pytest.raises(EnhscanError, match="auxiliary tasks: found only .* lower --aux-windows"):
        tasks_for(base_dir, options, mini_fasta, WINDOW, held_out=held, avoid=everywhere)


def test_auxiliary_targets_follow_the_base(tmp_path, mini_fasta) -> None:
    base_dir, options = tasks_of(tmp_path, mini_fasta)
    # Other tasks than the base's: one line naming where they part and what to give.
    wrong = AuxiliaryOptions(TargetOptions(paths=[str(options.targets.paths[0])]), windows=40)
    with pytest.raises(EnhscanError, match="task 2 is T1 in the base and atlas here; give the"):
        tasks_for(base_dir, wrong, mini_fasta, WINDOW)
    plain = tmp_path / "plain"
    classifier = load_classifier(base_dir, require_head=False)
    save_classifier(replace_head(classifier, ["background", "enhancer"]), plain)
    with pytest.raises(EnhscanError, match="needs a --base made by `enhscan pretrain --targets`"):
        tasks_for(plain, options, mini_fasta, WINDOW)
    # The base's rules (no `any` task, its centre bin) are the ones the targets are read by.
    other = tmp_path / "other"
    other.mkdir()
    base_dir, options = tasks_of(other, mini_fasta, any_task=False, centre_bin=40)
    with open_genome(mini_fasta) as g:
        elements, targets = auxiliary_elements(base_dir, options.targets, g.lengths)
    assert elements.tasks == ["T1", "T2"] and (targets.any_task, targets.centre_bin) == (False, 40)


def test_train_aux_targets_end_to_end(tmp_path, mini_fasta) -> None:
    base_dir, options = tasks_of(tmp_path, mini_fasta)
    atlas = options.targets.paths[0]
    peaks = tmp_path / "peaks.bed"
    peaks.write_text("".join(f"chr2\t{s}\t{s + 200}\n" for s in range(12_000, 58_000, 2_000)))
    fine = tmp_path / "fine"
    common = ["train", "--genome", str(mini_fasta), "--positives", str(peaks), "--window",
              "300", "--epochs", "2", "--batch-size", "16", "--no-baseline", "--null-windows",
              "0", "--out", str(fine)]  # fmt: skip
    aux = ["--aux-targets", atlas, "--aux-label-column", "6", "--aux-windows", "50"]
    result = run(*common, *aux, expect=1)
    assert "--aux-targets keeps a --base multi-task model learning its tasks" in result.output
    for option in (["--aux-label-column", "6"], ["--aux-windows", "30000"]):
        result = run(*common, "--base", str(base_dir), *option, expect=2)
        assert f"Invalid value for {option[0]}: goes with --aux-targets" in result.output
    assert not fine.exists()

    run(*common, "--base", str(base_dir), *aux, "--shift-augment", "10", "--rc-augment")
    tuned = load_classifier(fine)
    assert tuned.metadata.labels == ["background", "enhancer"]
    assert tuned.network.classifier.out_features == 2
    provenance = tuned.metadata.provenance
    assert provenance["auxiliary"]["windows"] == 50
    assert provenance["auxiliary"]["targets"]["label_column"] == 6
    assert provenance["model"]["arch"] == "cnn"  # the base's, not --arch's default
    report = json.loads((fine / "training" / "metrics.json").read_text())
    assert report["data"]["auxiliary"]["windows"] == 50
    assert set(report["data"]["auxiliary"]["positives"]) == {"any", "T1", "T2"}
    log = [json.loads(line) for line in (fine / "training" / "work" / "log.jsonl").open()]
    assert len(log) == 2 and all("auxiliary_loss" in entry for entry in log)
