"""The engine: batching on the host, scoring on the device, quantization, GPU batch sizing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from enhscan.backend import (
    GPU_BATCH_LIMITS,
    ComputeOptions,
    batch_size_for_memory,
    check_device_options,
)
from enhscan.engine import WindowScorer, memory_probe
from enhscan.errors import EnhscanError

RNG = np.random.default_rng(3)
# Windows of different lengths, so their token counts differ.
SEQS = ["".join(RNG.choice(list("ACGT"), size=n)) for n in (300, 420, 300, 150, 500, 420, 300)]


def test_prepare_sorts_by_length_and_drops_masks_of_unpadded_batches(tiny_classifier) -> None:
    scorer = WindowScorer(tiny_classifier, ComputeOptions(batch_size=2))
    batches = scorer.prepare(SEQS)
    lengths = [len(e) for e in tiny_classifier.encoder.encode(SEQS)]
    assert sorted(np.concatenate([b.rows for b in batches])) == list(range(len(SEQS)))
    widths = [b.ids.shape[1] for b in batches]
    assert widths == sorted(widths)
    for b in batches:
        rows_lengths = [lengths[r] for r in b.rows]
        if len(set(rows_lengths)) == 1:
            assert b.mask is None
        else:
            assert b.mask is not None and b.mask.sum(1).tolist() == rows_lengths


def test_scores_do_not_depend_on_batching(tiny_classifier) -> None:
    alone = np.array(
        [WindowScorer(tiny_classifier, ComputeOptions(batch_size=1)).score([s])[0] for s in SEQS]
    )
    for batch_size in (2, 3, 64):
        together = WindowScorer(tiny_classifier, ComputeOptions(batch_size=batch_size)).score(SEQS)
        np.testing.assert_allclose(together, alone, atol=1e-6)
    scorer = WindowScorer(tiny_classifier, ComputeOptions(batch_size=3))
    np.testing.assert_allclose(scorer.run(scorer.prepare(SEQS), len(SEQS)), alone, atol=1e-6)
    assert scorer.score([]).shape == (0,)


def test_int8_quantization_moves_scores_little_and_leaves_the_model_alone() -> None:
    from enhscan.model import default_model_path, load_classifier

    classifier = load_classifier(default_model_path())
    before = {k: v.clone() for k, v in classifier.network.state_dict().items()}
    fp32 = WindowScorer(classifier).score(SEQS)
    int8 = WindowScorer(classifier, ComputeOptions(quantize=True))
    assert int8.backend.quantize
    scores = int8.score(SEQS)
    assert np.abs(scores - fp32).max() < 0.02
    assert not np.array_equal(scores, fp32)  # it really ran in int8
    after = classifier.network.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_quantization_is_refused_on_a_gpu(tiny_classifier) -> None:
    with pytest.raises(EnhscanError, match="--quantize is for the CPU"):
        check_device_options(ComputeOptions(quantize=True), torch.device("cuda"))


def test_batch_size_for_memory() -> None:
    low, high = GPU_BATCH_LIMITS
    gb = 1 << 30
    # 80 GB free, 20 MB per window: half the memory holds 2048 windows -> capped.
    assert batch_size_for_memory(80 * gb, 20 << 20) == high
    # 8 GB free, 10 MB per window: 409 windows -> 408 (a multiple of 8).
    assert batch_size_for_memory(8 * gb, 10 << 20) == 408
    assert batch_size_for_memory(1 << 20, 10 << 20) == low
    assert batch_size_for_memory(8 * gb, 0) == high


def test_gpu_memory_probe_is_one_padded_batch(tiny_classifier) -> None:
    # The batch that measures a window's GPU memory is padded, so that the attention mask's
    # memory is measured too, whatever the scorer's own batch size.
    scorer = WindowScorer(tiny_classifier, ComputeOptions(batch_size=2))
    (batch,) = memory_probe(scorer, 8)
    assert len(batch.rows) == 8 and batch.mask is not None
    assert batch.mask.sum(1).unique().numel() == 2
    scores = scorer.run([batch], 8)
    assert scores.shape == (8,) and np.isfinite(scores).all()


def test_default_batch_size_follows_the_device_and_the_model_width(tiny_classifier) -> None:
    from enhscan.backend import default_batch_size
    from enhscan.model import new_classifier

    cpu = torch.device("cpu")
    assert default_batch_size(cpu, tiny_classifier.network) == 32
    wide = new_classifier("tiny", hidden_size=768, num_attention_heads=12, num_hidden_layers=1)
    assert default_batch_size(cpu, wide.network) == 8
    assert default_batch_size(torch.device("cuda")) == 128
