"""Masked-language-model pretraining of a DNABERT-2-architecture model on reference sequence.

The way DNABERT-2 was made, on a smaller scale: random windows of the genome are tokenized
with the BPE tokenizer, 15% of the tokens are chosen for prediction (80% of those replaced by
[MASK], 10% by a random token, 10% left as they are), and the model learns to predict them.
The result is a folder with the names of a DNABERT-2 masked-LM checkpoint that
``enhscan train --base`` fine-tunes.

Every batch is a function of (seed, step) alone, so a run resumed from its last checkpoint
draws the same windows and masks as an uninterrupted one.
"""

from __future__ import annotations

import json
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
from enhscan.model.folder import METADATA_NAME, ModelMetadata, save_network
from enhscan.processes import on_cpu
from enhscan.sequence import count_non_acgt
from enhscan.training.trainer import (
    CHECKPOINT,
    adamw,
    resolve_mixed_precision,
    save_checkpoint,
)
from enhscan.versions import package_versions

log = logging.getLogger(__name__)

IGNORE = -100


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


def mask_tokens(
    ids: torch.Tensor,
    mask: torch.Tensor,
    encoder: BpeEncoder,
    mask_prob: float,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT masking of a padded batch.

    Args:
        ids: int64 [B, L] token ids; mask: bool [B, L], True on real tokens.
        encoder: gives the special token ids and vocabulary size.
        mask_prob: share of (non-special) tokens chosen for prediction.
        generator: torch RNG (CPU) deciding the masks.

    Returns:
        ``(inputs, labels)``: int64 [B, L] each; labels hold the original token where a
        prediction is scored and -100 elsewhere. Every row gets at least one scored token.
    """
    special = torch.tensor(encoder.special_ids)
    candidates = mask & ~torch.isin(ids, special)
    chosen = (torch.rand(ids.shape, generator=generator) < mask_prob) & candidates
    # Rows where chance chose nothing: score their first candidate, so no row is wasted.
    empty = ~chosen.any(dim=1) & candidates.any(dim=1)
    first = candidates.float().argmax(dim=1)
    chosen[empty, first[empty]] = True
    labels = torch.where(chosen, ids, torch.full_like(ids, IGNORE))
    roll = torch.rand(ids.shape, generator=generator)
    inputs = ids.clone()
    inputs[chosen & (roll < 0.8)] = encoder.mask_id
    randomised = chosen & (roll >= 0.8) & (roll < 0.9)
    first_normal = int(special.max()) + 1
    inputs[randomised] = torch.randint(
        first_normal, encoder.vocab_size, ids.shape, generator=generator
    )[randomised]
    return inputs, labels


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
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from tqdm import tqdm
    from transformers import get_scheduler

    from enhscan.model.dnabert2 import DNABert2Config, DNABert2ForMaskedLM

    settings = settings or PretrainSettings()
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise EnhscanError(f"--out {out_dir} is a file; give a folder")
    if (out_dir / METADATA_NAME).exists() and not (force or resume):
        raise EnhscanError(f"{out_dir} already holds a model; use --force, or another --out")
    work = out_dir / "pretraining"
    accelerator = Accelerator(
        mixed_precision=resolve_mixed_precision(settings.mixed_precision, settings.cpu),
        cpu=on_cpu(settings.cpu),
    )
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
        model = DNABert2ForMaskedLM(config)
        optimizer = adamw(model, settings.learning_rate, settings.weight_decay)
        scheduler = get_scheduler(
            "linear",
            optimizer,
            num_warmup_steps=int(settings.warmup_ratio * settings.steps),
            num_training_steps=settings.steps,
        )
        model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
        step, history = 0, []
        checkpoint = work / CHECKPOINT
        if resume and (checkpoint / "state.json").exists():
            saved = json.loads((checkpoint / "state.json").read_text())
            if saved["settings"] != asdict(settings) or saved["arch"] != arch:
                raise EnhscanError(
                    f"the checkpoint in {work} was made with other settings; rerun with the "
                    "same options, or without --resume"
                )
            accelerator.load_state(str(checkpoint))
            step, history = saved["step"], saved["history"]
            log.info("resuming after step %d of %d", step, settings.steps)

        rank, world = accelerator.process_index, accelerator.num_processes
        bar = tqdm(
            total=settings.steps,
            initial=step,
            desc="pretraining",
            unit="step",
            disable=not (progress and main),
            dynamic_ncols=True,
        )
        losses, correct, scored = [], 0, 0
        model.train()
        while step < settings.steps:
            step += 1
            # Each process takes its own slice of the step's global batch.
            seqs = sampler.batch(step, settings.batch_size * world)[rank::world]
            ids, mask = (
                torch.from_numpy(a) for a in pad_batch(encoder.encode(seqs), encoder.pad_id)
            )
            generator = torch.Generator().manual_seed(settings.seed * 1_000_003 + step)
            inputs, labels = mask_tokens(ids, mask, encoder, settings.mask_prob, generator)
            out = model(
                input_ids=inputs.to(accelerator.device),
                attention_mask=mask.to(accelerator.device),
                labels=labels.to(accelerator.device),
            )
            accelerator.backward(out.loss)
            accelerator.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            target = labels[labels != IGNORE].to(out.logits.device)
            correct += int((out.logits.argmax(-1) == target).sum())
            scored += int(target.numel())
            losses.append(out.loss.item())
            bar.update(1)
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.3f}", refresh=False)
            if step % settings.checkpoint_every == 0 or step == settings.steps:
                entry = {
                    "step": step,
                    "loss": float(np.mean(losses)),
                    "masked_accuracy": correct / max(scored, 1),
                    "lr": scheduler.get_last_lr()[0],
                }
                history.append(entry)
                losses, correct, scored = [], 0, 0
                if main:
                    bar.write(
                        f"step {step}: loss {entry['loss']:.4f}, masked-token accuracy "
                        f"{entry['masked_accuracy']:.4f}",
                        file=sys.stderr,
                    )
                save_checkpoint(
                    accelerator,
                    checkpoint,
                    {"settings": asdict(settings), "arch": arch, "step": step, "history": history},
                )
        bar.close()
        summary = {
            "steps": settings.steps,
            "windows_seen": settings.steps * settings.batch_size * world,
            "final": history[-1] if history else None,
            "history": history,
            "genome": {
                "files": [str(Path(p).resolve()) for p in genome_paths],
                "sequences": sampler.names,
            },
        }
        if main:
            _write_folder(
                accelerator.unwrap_model(model), encoder, out_dir, arch, settings, summary
            )
        accelerator.wait_for_everyone()
    return summary


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
