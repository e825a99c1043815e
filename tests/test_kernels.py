"""The kernels a network offers for scoring (enhscan.model.kernels): each is entered and left
cleanly, and batch-invariant scores do not depend on the batch."""

from __future__ import annotations

import pytest
import torch

from enhscan.model.kernels import ROW_TILE, computing_with


def test_batch_invariant_kernels_are_offered_by_the_network_and_undone(tiny_classifier) -> None:
    network = tiny_classifier.network
    attentions = [m for m in network.modules() if hasattr(m, "one_window_at_a_time")]
    assert attentions  # DNABERT-2 attention offers one window at a time
    linear = next(m for m in network.modules() if type(m) is torch.nn.Linear)
    ids = torch.randint(5, 100, (7, 40))
    with torch.inference_mode():
        want = network(input_ids=ids).logits
        with computing_with(network, "batch_invariant", torch.device("cpu")):
            assert all(m.one_window_at_a_time for m in attentions)
            assert "forward" in vars(linear)  # multiplies in fixed row tiles
            together = network(input_ids=ids).logits
            alone = torch.cat([network(input_ids=ids[i : i + 1]).logits for i in range(7)])
    assert not any(m.one_window_at_a_time for m in attentions) and "forward" not in vars(linear)
    assert torch.equal(together, alone)  # to the last bit
    torch.testing.assert_close(together, want, atol=1e-5, rtol=0)
    assert ROW_TILE["cpu"] == 512


def test_plain_kernels_change_nothing_and_unknown_ones_are_refused(tiny_classifier) -> None:
    with computing_with(tiny_classifier.network, "plain", torch.device("cpu")):
        assert not any("forward" in vars(m) for m in tiny_classifier.network.modules())
    with pytest.raises(ValueError, match="unknown kernels 'fast'"):
        computing_with(tiny_classifier.network, "fast", torch.device("cpu"))
