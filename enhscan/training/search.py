"""Hyperparameter search with Optuna: learning rate, batch size, warm-up, weight decay, dropout.

Each trial trains a fresh model with :func:`enhscan.training.trainer.fit` and reports its
validation PR-AUC after every epoch, so the median pruner stops trials that fall behind. The
study lives in an SQLite file in the work folder: a search that was stopped continues where it
left off when run again, counting the trials already finished.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from enhscan.model.folder import Classifier
from enhscan.training.trainer import BEST_WEIGHTS, LOG_FILE, TrainResult, TrainSettings, fit

log = logging.getLogger(__name__)

#: Learning-rate ranges per model family: a transformer fine-tunes at far lower rates.
LR_RANGES = {"dnabert2": (1e-5, 5e-4), "hybrid": (5e-5, 5e-3), "cnn": (1e-4, 1e-2)}


@dataclass
class SearchResult:
    """The best trial of a search.

    Attributes:
        best_classifier: a model holding the best trial's best-epoch weights.
        best_result: that trial's training result.
        best_settings: the settings it trained with.
        summary: JSON-ready: trials run, pruned, complete; best value and parameters.
    """

    best_classifier: Classifier
    best_result: TrainResult
    best_settings: TrainSettings
    summary: dict


def suggest_settings(trial, base: TrainSettings, family: str) -> TrainSettings:
    """Settings for one trial: the searched hyperparameters drawn, the rest from ``base``."""
    low, high = LR_RANGES.get(family, LR_RANGES["dnabert2"])
    return replace(
        base,
        learning_rate=trial.suggest_float("learning_rate", low, high, log=True),
        batch_size=trial.suggest_categorical("batch_size", [16, 32, 64]),
        warmup_ratio=trial.suggest_float("warmup_ratio", 0.0, 0.2),
        weight_decay=trial.suggest_float("weight_decay", 1e-4, 0.1, log=True),
        dropout=trial.suggest_float("dropout", 0.0, 0.3),
    )


def search_hyperparameters(
    make_classifier: Callable[[], Classifier],
    data,
    base: TrainSettings,
    work_dir: Path,
    n_trials: int,
    *,
    progress: bool = True,
) -> SearchResult:
    """Run (or continue) an Optuna study of ``n_trials`` trials maximising validation PR-AUC.

    Args:
        make_classifier: builds a fresh, untrained model for each trial.
        data: a :class:`~enhscan.training.pipeline.PreparedData` (train and val are used).
        base: settings not searched (epochs, patience, seed, ...).
        work_dir: holds ``optuna.db`` and one folder per trial.
        n_trials: total trials wanted, finished ones from an earlier run included.
    """
    import optuna

    if not log.isEnabledFor(logging.INFO):
        # ERROR: a trial stopped by Ctrl-C or failing would print its traceback as a warning,
        # before enhscan's own line says what happened and what is kept.
        optuna.logging.set_verbosity(optuna.logging.ERROR)
    work_dir.mkdir(parents=True, exist_ok=True)
    study = optuna.create_study(
        study_name="enhscan",
        storage=f"sqlite:///{work_dir / 'optuna.db'}",
        direction="maximize",
        pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1),
        load_if_exists=True,
    )
    # Seeded by the trials already run: a resumed study seeded by --seed alone would draw
    # again the settings its first trials tried.
    study.sampler = optuna.samplers.TPESampler(seed=base.seed + len(study.trials))
    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    done = len(study.get_trials(deepcopy=False, states=finished))
    train_seqs, train_labels = data.training_windows()
    val_seqs, val_labels = data.arrays("val")
    family = make_classifier().metadata.family

    def objective(trial) -> float:
        settings = suggest_settings(trial, base, family)
        trial_dir = work_dir / f"trial_{trial.number}"
        shutil.rmtree(trial_dir, ignore_errors=True)
        trial.set_user_attr("settings", asdict(settings))

        def report(epoch: int, value: float) -> None:
            trial.report(value, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()

        try:
            result = fit(
                make_classifier(),
                train_seqs,
                train_labels,
                val_seqs,
                val_labels,
                settings,
                trial_dir,
                progress=progress,
                on_epoch=report,
            )
        finally:
            shutil.rmtree(trial_dir / "checkpoint", ignore_errors=True)
        trial.set_user_attr("best_epoch", result.best_epoch)
        return result.best_pr_auc

    remaining = max(n_trials - done, 0)
    if done:
        log.info("continuing the search: %d of %d trials already finished", done, n_trials)
    if remaining:
        study.optimize(objective, n_trials=remaining, catch=())
    best = study.best_trial
    settings = TrainSettings(**best.user_attrs["settings"])
    trial_dir = work_dir / f"trial_{best.number}"
    classifier = make_classifier()
    from safetensors.torch import load_file

    classifier.network.load_state_dict(load_file(str(trial_dir / BEST_WEIGHTS)))
    classifier.network.eval()
    history = [json.loads(line) for line in (trial_dir / LOG_FILE).read_text().splitlines()]
    result = TrainResult(classifier, best.user_attrs["best_epoch"], best.value, history)
    states = [t.state for t in study.get_trials(deepcopy=False)]
    summary = {
        "trials": len(states),
        "complete": states.count(optuna.trial.TrialState.COMPLETE),
        "pruned": states.count(optuna.trial.TrialState.PRUNED),
        "best_trial": best.number,
        "best_val_pr_auc": best.value,
        "best_params": best.params,
        "storage": str(work_dir / "optuna.db"),
    }
    return SearchResult(classifier, result, settings, summary)
