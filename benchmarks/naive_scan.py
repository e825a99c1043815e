#!/usr/bin/env python3
"""The baseline for `scan_speed.py`: the scanning loop people write by hand today.

Slice each 1 kb window out of the FASTA, tokenize it with padding to 512 tokens, run the
model in fp32 in batches of 32, collect the scores in a list and write them out as text. It
loads the same model folder through transformers' Auto classes, so both sides run the very
same weights. A model that reads bases rather than tokens (the hybrid, the CNN: no
tokenizer.json) gets the loop written for those: each window's bases as codes (A C G T = 0-3),
stacked, through the network loaded with enhscan's own loader (transformers does not know
them). Windows with any non-ACGT base are skipped, as `enhscan genome` does by default.

    python benchmarks/naive_scan.py REF.fa MODEL_DIR OUT.tsv [--stride 200] [--device cpu]

OUT.tsv: chrom, start, end (the window, 0-based half-open), probability. The last line of
standard output is a JSON object with the window count and the seconds spent in the loop.
"""

from __future__ import annotations

import json
import time

import click


@click.command()
@click.argument("fasta", type=click.Path(exists=True, dir_okay=False))
@click.argument("model_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("out", type=click.Path(dir_okay=False))
@click.option("--window", type=int, default=1000, show_default=True)
@click.option("--stride", type=int, default=200, show_default=True)
@click.option("--batch-size", type=int, default=32, show_default=True)
@click.option("--max-length", type=int, default=512, show_default=True)
@click.option("--device", default="cpu", show_default=True)
def main(
    fasta: str,
    model_dir: str,
    out: str,
    window: int,
    stride: int,
    batch_size: int,
    max_length: int,
    device: str,
) -> None:
    from pathlib import Path

    import pyfaidx
    import torch

    began = time.perf_counter()
    if (Path(model_dir) / "tokenizer.json").exists():
        tokenize, model = token_model(model_dir, max_length, device)
    else:
        tokenize, model = base_model(model_dir, device)
    genome = pyfaidx.Fasta(fasta)
    loaded = time.perf_counter()

    scores: list[tuple[str, int, int, float]] = []

    def flush(batch: list[str], coords: list[tuple[str, int, int]]) -> None:
        inputs = tokenize(batch)
        with torch.no_grad():
            logits = model(**inputs).logits
        probs = torch.softmax(logits, dim=-1)[:, 1].tolist()
        scores.extend((*c, p) for c, p in zip(coords, probs, strict=True))
        batch.clear()
        coords.clear()

    batch: list[str] = []
    coords: list[tuple[str, int, int]] = []
    for chrom in genome.keys():
        length = len(genome[chrom])
        for start in range(0, length - window + 1, stride):
            seq = str(genome[chrom][start : start + window]).upper()
            if set(seq) - set("ACGT"):
                continue
            batch.append(seq)
            coords.append((chrom, start, start + window))
            if len(batch) == batch_size:
                flush(batch, coords)
    if batch:
        flush(batch, coords)
    with open(out, "w") as handle:
        for chrom, start, end, p in scores:
            handle.write(f"{chrom}\t{start}\t{end}\t{p:.6g}\n")
    done = time.perf_counter()
    print(
        json.dumps(
            {"windows": len(scores), "load_seconds": loaded - began, "loop_seconds": done - loaded}
        )
    )


def token_model(model_dir: str, max_length: int, device: str):
    """A BPE model through transformers: its tokenizer (padding to ``max_length``) and model."""
    from transformers import AutoModelForSequenceClassification, PreTrainedTokenizerFast

    import enhscan.model.hf_interop  # noqa: F401  registers the architecture with Auto classes

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_file=f"{model_dir}/tokenizer.json",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        unk_token="[UNK]",
        mask_token="[MASK]",
    )
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).to(device).eval()

    def tokenize(batch: list[str]) -> dict:
        return tokenizer(
            batch, padding="max_length", max_length=max_length, truncation=True,
            return_tensors="pt",
        ).to(device)  # fmt: skip

    return tokenize, model


def base_model(model_dir: str, device: str):
    """A model that reads bases: codes of each window (A C G T = 0-3, anything else 4, as N;
    all windows of one width) and the network."""
    import numpy as np
    import torch

    from enhscan.model import load_classifier

    model = load_classifier(model_dir).network.to(device).eval()
    table = np.full(256, 4, dtype=np.int64)
    for code, base in enumerate(b"ACGT"):
        table[base] = code

    def tokenize(batch: list[str]) -> dict:
        codes = np.stack([table[np.frombuffer(s.encode(), dtype=np.uint8)] for s in batch])
        return {"input_ids": torch.from_numpy(codes).to(device)}

    return tokenize, model


if __name__ == "__main__":
    main()
