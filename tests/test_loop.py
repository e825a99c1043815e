"""The one training loop on a tiny regression: which weights it keeps, early stopping, resuming
and refusing another run's checkpoint. (Each objective's resume and seed tests live with the
objective's command: test_train, test_multitask, test_pretrain.)"""

from __future__ import annotations

import json

import pytest
import torch
from torch.nn import functional as F

from enhscan.errors import EnhscanError
from enhscan.training import loop


class Regression:
    """Mean squared error of a linear model: the smallest objective there is."""

    def loss(self, model, batch):
        return F.mse_loss(model(batch["x"]).squeeze(-1), batch["y"]), {"n": len(batch["y"])}

    def summary(self, totals):
        return {"examples": totals["n"]}


class Data(torch.utils.data.Dataset):
    def __init__(self):
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(64, 3, generator=g)
        self.y = self.x @ torch.tensor([1.0, -2.0, 0.5]) + 0.1 * torch.randn(64, generator=g)

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return {"x": self.x[i], "y": self.y[i]}


SETTINGS = loop.LoopSettings(learning_rate=0.05, warmup_ratio=0.0, weight_decay=0.0, cpu=True)


def run(
    work, rounds=6, evaluate=None, settings=SETTINGS, batch_size=8, **kwargs
) -> loop.LoopResult:
    torch.manual_seed(0)
    source = loop.EpochBatches(Data(), batch_size, torch.utils.data.default_collate, rounds)
    return loop.train(
        torch.nn.Linear(3, 1),
        source,
        Regression(),
        settings,
        work,
        evaluate=evaluate,
        progress=False,
        identity={"case": "regression"},
        **kwargs,
    )


def test_without_evaluation_the_last_round_is_kept(tmp_path) -> None:
    result = run(tmp_path)
    assert result.best_round == 6 and result.best_score is None
    assert [h["round"] for h in result.history] == [1, 2, 3, 4, 5, 6]
    assert all(h["examples"] == 64 for h in result.history)
    losses = [h["train_loss"] for h in result.history]
    assert losses[-1] < losses[0] / 4
    assert result.history[-1]["steps"] == 6 * 8


def test_early_stopping_keeps_the_best_round(tmp_path) -> None:
    # A score that peaks at round 2 then falls: patience 2 stops after round 4.
    scores = iter([0.5, 0.9, 0.8, 0.7, 0.6, 0.5])
    kept = {}

    def evaluate(network):
        score = next(scores)
        kept[score] = network.weight.detach().clone()
        return {"score": score}

    settings = loop.LoopSettings(**{**SETTINGS.__dict__, "patience": 2})
    result = run(tmp_path, evaluate=evaluate, settings=settings)
    assert result.stopped_early and [h["round"] for h in result.history] == [1, 2, 3, 4]
    assert result.best_round == 2 and result.best_score == 0.9
    assert torch.equal(result.network.weight, kept[0.9])


def test_resumed_run_equals_uninterrupted(tmp_path) -> None:
    whole = run(tmp_path / "whole")
    run(tmp_path / "cut", stop_after_round=3)
    resumed = run(tmp_path / "cut", resume=True)
    assert resumed.resumed_from == 3 and resumed.history == whole.history
    assert torch.equal(resumed.network.weight, whole.network.weight)


def test_another_runs_checkpoint_is_refused(tmp_path) -> None:
    run(tmp_path, stop_after_round=1)
    state = tmp_path / loop.CHECKPOINT / "state.json"
    saved = json.loads(state.read_text())
    state.write_text(json.dumps({**saved, "identity": {"case": "other"}}))
    with pytest.raises(EnhscanError, match="made with other case;"):
        run(tmp_path, resume=True)
    del saved["identity"]
    state.write_text(json.dumps(saved))
    with pytest.raises(EnhscanError, match="older enhscan"):
        run(tmp_path, resume=True)


def test_patience_zero_keeps_the_last_round(tmp_path) -> None:
    scores = iter([0.9, 0.1, 0.2])
    settings = loop.LoopSettings(**{**SETTINGS.__dict__, "patience": 0})
    result = run(
        tmp_path, rounds=3, evaluate=lambda net: {"score": next(scores)}, settings=settings
    )
    last = run(tmp_path / "plain", rounds=3)
    assert not result.stopped_early and result.best_round == 3 and result.best_score == 0.2
    assert torch.equal(result.network.weight, last.network.weight)


def test_a_checkpoint_caught_mid_swap_is_still_found(tmp_path) -> None:
    whole = run(tmp_path / "whole")
    cut = tmp_path / "cut"
    run(cut, stop_after_round=3)
    # Killed between moving the old checkpoint aside and moving the new one in.
    (cut / loop.CHECKPOINT).rename(cut / (loop.CHECKPOINT + ".old"))
    resumed = run(cut, resume=True)
    assert resumed.resumed_from == 3 and torch.equal(resumed.network.weight, whole.network.weight)
    logged = [json.loads(line) for line in (cut / loop.LOG_FILE).read_text().splitlines()]
    assert logged == whole.history  # each round once, though round 3 was logged before


class Diverging(Regression):
    def loss(self, model, batch):
        loss, counts = super().loss(model, batch)
        return loss * float("nan"), counts


def test_a_diverged_run_stops_with_one_line(tmp_path) -> None:
    source = loop.EpochBatches(Data(), 8, torch.utils.data.default_collate, 2)
    with pytest.raises(EnhscanError, match="the training loss became nan in round 1"):
        loop.train(torch.nn.Linear(3, 1), source, Diverging(), SETTINGS, tmp_path, progress=False)


def test_a_nan_score_never_counts_as_the_best(tmp_path) -> None:
    scores = iter([float("nan"), 0.5, 0.4])
    result = run(tmp_path, rounds=3, evaluate=lambda net: {"score": next(scores)})
    assert result.best_round == 2 and result.best_score == 0.5


def _flat(network) -> torch.Tensor:
    return torch.cat([network.weight.flatten(), network.bias]).detach().clone()


def test_a_moving_average_of_the_weights_is_evaluated_and_kept(tmp_path) -> None:
    # One batch a round, so each round is one optimizer step: the plain run's weights after
    # each round are the steps the average follows, e_k = 0.8 e_(k-1) + 0.2 w_k, e_1 = w_1.
    seen: dict[str, list[torch.Tensor]] = {"plain": [], "average": []}

    def recorder(name):
        def evaluate(network):
            seen[name].append(_flat(network))
            return {"score": 0.0}

        return evaluate

    last = {**SETTINGS.__dict__, "patience": 0}
    run(tmp_path / "plain", evaluate=recorder("plain"), settings=loop.LoopSettings(**last),
        batch_size=64)  # fmt: skip
    averaged = loop.LoopSettings(**{**last, "ema_decay": 0.8})
    result = run(tmp_path / "ema", evaluate=recorder("average"), settings=averaged, batch_size=64)
    expected: list[torch.Tensor] = []
    for weights in seen["plain"]:
        expected.append(weights if not expected else 0.8 * expected[-1] + 0.2 * weights)
    assert len(seen["average"]) == len(expected) == 6
    for got, want in zip(seen["average"], expected, strict=True):
        assert torch.allclose(got, want, atol=1e-6)
    assert torch.allclose(_flat(result.network), expected[-1], atol=1e-6)
    assert not torch.allclose(expected[-1], seen["plain"][-1], atol=1e-3)


def test_without_evaluation_the_average_is_returned(tmp_path) -> None:
    averaged = loop.LoopSettings(**{**SETTINGS.__dict__, "ema_decay": 0.5})
    plain, result = run(tmp_path / "plain"), run(tmp_path / "ema", settings=averaged)
    assert result.history == plain.history  # the average does not change training
    assert not torch.allclose(_flat(result.network), _flat(plain.network), atol=1e-4)
    tiny = loop.LoopSettings(**{**SETTINGS.__dict__, "ema_decay": 1e-12})
    assert torch.allclose(_flat(run(tmp_path / "tiny", settings=tiny).network),
                          _flat(plain.network), atol=1e-6)  # fmt: skip


def test_a_resumed_run_keeps_its_average(tmp_path) -> None:
    averaged = loop.LoopSettings(**{**SETTINGS.__dict__, "ema_decay": 0.9})
    whole = run(tmp_path / "whole", settings=averaged)
    run(tmp_path / "cut", settings=averaged, stop_after_round=3)
    resumed = run(tmp_path / "cut", settings=averaged, resume=True)
    assert resumed.resumed_from == 3
    assert torch.equal(_flat(resumed.network), _flat(whole.network))


def test_the_average_runs_on_its_own_weights_under_autocast(tmp_path) -> None:
    # prepare wraps the network's forward for mixed precision (bf16 autocast on the CPU too);
    # the average is copied before that, so it runs on its own weights, in fp32.
    probe = Data().x[:4]
    seen = []

    def evaluate(network):
        with torch.no_grad():
            seen.append((network(probe), probe @ network.weight.T + network.bias))
        return {"score": 0.0}

    from accelerate.state import AcceleratorState

    settings = loop.LoopSettings(
        **{**SETTINGS.__dict__, "patience": 0, "mixed_precision": "bf16", "ema_decay": 0.9}
    )
    # accelerate keeps one state per process; the other tests made it without autocast.
    AcceleratorState._reset_state(True)
    try:
        run(tmp_path, rounds=3, evaluate=evaluate, settings=settings)
    finally:
        AcceleratorState._reset_state(True)
    assert len(seen) == 3
    for output, own in seen:
        assert torch.allclose(output, own, atol=1e-6)
