"""Masked-language-model pretraining of a DNABERT-2-architecture model on reference sequence.

The way DNABERT-2 was made, on a smaller scale: random windows of the genome are tokenized
with the BPE tokenizer, 15% of the tokens are chosen for prediction (80% of those replaced by
[MASK], 10% by a random token, 10% left as they are), and the model learns to predict them.
The result is a folder with the names of a DNABERT-2 masked-LM checkpoint that
``enhscan train --base`` fine-tunes.

It runs on the one training loop (:mod:`enhscan.training.loop`): the windows of a step are a
function of (seed, step) alone and the masks of the seed and the round between two
checkpoints, so a run resumed from its last checkpoint draws the same windows and masks as an
uninterrupted one.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from enhscan.errors import EnhscanError
from enhscan.io.atomic import write_json
from enhscan.io.fasta import Genome, open_genomes
from enhscan.model.encoding import BpeEncoder, default_tokenizer_json, pad_batch
from enhscan.model.folder import save_network
from enhscan.model.metadata import METADATA_NAME, ModelMetadata
from enhscan.sequence import count_non_acgt
from enhscan.training import loop
from enhscan.training.objectives import MaskedLM
from enhscan.training.runs import check_out_folder
from enhscan.versions import package_versions

log = logging.getLogger(__name__)


@dataclass
class PretrainSettings:
    """Options of :func:`pretrain`.

    Attributes:
        steps: optimizer steps.
        batch_size: windows per step on each process.
        seq_bases: bases per training window.
        learning_rate: peak AdamW learning rate, after warm-up.
        warmup_ratio: share of steps warming up linearly.
        weight_decay: AdamW weight decay.
        mask_prob: share of tokens chosen for prediction.
        max_n_fraction: windows with a larger share of non-ACGT bases are drawn again.
        checkpoint_every: steps between checkpoints (and log lines).
        mixed_precision: ``auto``, ``no``, ``bf16``, ``fp16``.
        seed: seed of the windows, the masks and the initialisation.
        cpu: stay on the CPU even if a GPU is there.
    """

    steps: int = 2000
    batch_size: int = 32
    seq_bases: int = 1000
    learning_rate: float = 5e-4
    warmup_ratio: float = 0.06
    weight_decay: float = 0.01
    mask_prob: float = 0.15
    max_n_fraction: float = 0.01
    checkpoint_every: int = 200
    mixed_precision: str = "auto"
    seed: int = 0
    cpu: bool = False


class WindowSampler:
    """Random genome windows, the same for the same (seed, step).

    Chromosomes are drawn in proportion to their length; windows with too many N are drawn
    again (a bounded number of times).
    """

    def __init__(
        self,
        genome: Genome,
        seq_bases: int,
        max_n_fraction: float,
        seed: int,
        chroms: list[str] | None = None,
    ):
        names = [c for c in (chroms or genome.names) if genome.lengths[c] >= seq_bases]
        if not names:
            raise EnhscanError(
                f"no sequence in {genome.path} is as long as one {seq_bases} bp window; use a "
                "smaller --seq-bases"
            )
        lengths = np.array([genome.lengths[c] - seq_bases + 1 for c in names], dtype=np.float64)
        self.genome, self.names, self.weights = genome, names, lengths / lengths.sum()
        self.seq_bases, self.max_n = seq_bases, int(max_n_fraction * seq_bases)
        self.seed = seed

    def batch(self, step: int, size: int) -> list[str]:
        """``size`` upper-case windows for optimizer step ``step``."""
        rng = np.random.default_rng([self.seed, step])
        windows = []
        for _ in range(size * 50):
            chrom = self.names[rng.choice(len(self.names), p=self.weights)]
            start = int(rng.integers(0, self.genome.lengths[chrom] - self.seq_bases + 1))
            seq = self.genome.fetch(chrom, start, start + self.seq_bases)
            if count_non_acgt(seq) <= self.max_n:
                windows.append(seq)
                if len(windows) == size:
                    return windows
        raise EnhscanError(
            f"{self.genome.path} is mostly N: could not draw {size} windows with at most "
            f"{self.max_n} N; raise --max-n-fraction"
        )


class SampledBatches:
    """Masked-LM batches of freshly sampled windows: round ``r`` holds the steps after
    checkpoint ``r - 1`` (``checkpoint_every`` of them, the last round what is left); the
    windows of step ``s`` depend on (seed, s) alone, and each process takes its slice."""

    #: Every process takes every step: the counts are per process (see loop.train).
    counts_per_process = True

    def __init__(self, sampler: WindowSampler, encoder: BpeEncoder, settings: PretrainSettings):
        self.sampler, self.encoder, self.settings = sampler, encoder, settings
        self.rank, self.world, self.device = 0, 1, torch.device("cpu")

    def batches_per_round(self) -> list[int]:
        steps, every = self.settings.steps, self.settings.checkpoint_every
        return [min(every, steps - start) for start in range(0, steps, every)]

    def prepare(self, accelerator) -> None:
        self.rank, self.world = accelerator.process_index, accelerator.num_processes
        self.device = accelerator.device

    def round(self, index: int):
        first = (index - 1) * self.settings.checkpoint_every + 1
        for step in range(first, first + self.batches_per_round()[index - 1]):
            size = self.settings.batch_size
            seqs = self.sampler.batch(step, size * self.world)[self.rank :: self.world]
            ids, mask = pad_batch(self.encoder.encode(seqs), self.encoder.pad_id)
            yield {
                "input_ids": torch.from_numpy(ids).to(self.device),
                "attention_mask": torch.from_numpy(mask).to(self.device),
            }


def pretrain(
    genome_paths: list[str],
    out_dir: str | os.PathLike,
    *,
    arch: str = "small",
    tokenizer: str = "dnabert2",
    vocab_size: int = 4096,
    chroms: list[str] | None = None,
    settings: PretrainSettings | None = None,
    resume: bool = False,
    force: bool = False,
    progress: bool = True,
) -> dict:
    """Pretrain a DNABERT-2-architecture model by masked-token prediction; write its folder.

    Args:
        genome_paths: FASTA/2bit files to draw windows from.
        out_dir: output folder: config.json, model.safetensors (with ``cls.predictions.*``),
            tokenizer.json, enhscan.json, and ``pretraining/`` (log, checkpoint).
        arch: ``tiny``, ``small`` or ``base`` (the DNABERT-2-117M shape).
        tokenizer: ``dnabert2`` (shipped), ``train`` (BPE trained on the genome), or a path.
        vocab_size: vocabulary of a trained tokenizer.
        chroms: draw only from these sequences.
        settings: steps, batch size and the rest.
        resume: continue from the checkpoint in ``out_dir``.
        force: replace a finished model in ``out_dir``.
        progress: show a progress bar.

    Returns:
        A summary: final loss and masked-token accuracy, steps, tokens seen.
    """
    from accelerate.utils import set_seed

    from enhscan.model.dnabert2 import DNABert2Config, DNABert2ForMaskedLM

    settings = settings or PretrainSettings()
    out_dir = Path(out_dir)
    check_out_folder(out_dir, resume, force, METADATA_NAME)
    work = out_dir / "pretraining"
    loop_settings = loop.LoopSettings.taking(settings)
    accelerator = loop.make_accelerator(loop_settings)
    main = accelerator.is_main_process

    with open_genomes(genome_paths) as genome:
        if chroms:
            from enhscan.naming import select_chroms

            try:
                chroms = select_chroms(genome.names, chroms)
            except ValueError as err:
                raise EnhscanError(f"--chroms {err} matches no sequence in the genome") from None
        tokenizer_json = _tokenizer(
            tokenizer, vocab_size, genome, chroms, settings.seed, work, resume
        )
        encoder = BpeEncoder(tokenizer_json)
        if encoder.mask_id is None:
            raise EnhscanError("the tokenizer has no [MASK] token; use a DNABERT-2 style one")
        sampler = WindowSampler(
            genome, settings.seq_bases, settings.max_n_fraction, settings.seed, chroms
        )
        set_seed(settings.seed)
        config = DNABert2Config.from_size(
            arch, vocab_size=encoder.vocab_size, pad_token_id=encoder.pad_id
        )
        config.architectures = ["DNABert2ForMaskedLM"]
        result = loop.train(
            DNABert2ForMaskedLM(config),
            SampledBatches(sampler, encoder, settings),
            MaskedLM(encoder, settings.mask_prob),
            loop_settings,
            work,
            accelerator=accelerator,
            identity={
                "settings": asdict(settings),
                "arch": arch,
                "tokenizer": hashlib.sha256(encoder.tokenizer_json.encode()).hexdigest(),
                "sequences": {name: genome.lengths[name] for name in sampler.names},
                "processes": accelerator.num_processes,
            },
            resume=resume,
            progress=progress,
            describe=_describe,
            round_name="checkpoint",
        )
        history = result.history
        summary = {
            "steps": settings.steps,
            "windows_seen": settings.steps * settings.batch_size * accelerator.num_processes,
            "final": history[-1] if history else None,
            "history": history,
            "genome": {
                "files": [str(Path(p).resolve()) for p in genome_paths],
                "sequences": sampler.names,
            },
        }
        if main:
            _write_folder(result.network, encoder, out_dir, arch, settings, summary)
        accelerator.wait_for_everyone()
    return summary


def _describe(entry: dict) -> str:
    return (
        f"step {entry['steps']}: loss {entry['train_loss']:.4f}, masked-token accuracy "
        f"{entry['masked_accuracy']:.4f}"
    )


def _tokenizer(
    choice: str,
    vocab_size: int,
    genome: Genome,
    chroms: list[str] | None,
    seed: int,
    work: Path,
    resume: bool,
) -> str:
    if choice == "dnabert2":
        return default_tokenizer_json()
    if choice != "train":
        path = Path(choice)
        if not path.is_file():
            raise EnhscanError(f"--tokenizer {path}: not a file; give dnabert2, train or a path")
        return path.read_text()
    saved = work / "tokenizer.json"
    if resume and saved.exists():
        return saved.read_text()
    from enhscan.training.bpe import sample_genome_sequences, train_bpe_tokenizer

    log.info("training a BPE tokenizer with %d tokens on the genome", vocab_size)
    text = train_bpe_tokenizer(
        sample_genome_sequences(genome, n_bases=20_000_000, seed=seed, chroms=chroms),
        vocab_size=vocab_size,
    )
    work.mkdir(parents=True, exist_ok=True)
    saved.write_text(text)
    return text


def _write_folder(
    model, encoder: BpeEncoder, out_dir: Path, arch: str, settings: PretrainSettings, summary: dict
) -> None:
    save_network(model, out_dir)
    (out_dir / "tokenizer.json").write_text(encoder.tokenizer_json)
    metadata = ModelMetadata(
        window=settings.seq_bases,
        provenance={
            "created": "enhscan pretrain (masked-language model, no classifier head)",
            "command": " ".join(sys.argv),
            "arch": arch,
            "settings": asdict(settings),
            "pretraining": {k: v for k, v in summary.items() if k != "history"},
            "versions": package_versions(),
        },
    )
    write_json(out_dir / METADATA_NAME, asdict(metadata))
    write_json(out_dir / "pretraining" / "summary.json", summary)
    log.info("pretrained model written to %s (%d steps)", out_dir, math.floor(settings.steps))
