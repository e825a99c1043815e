"""Training a DNABERT-2 style byte-pair-encoding tokenizer on DNA.

The result is a ``tokenizer.json`` text for the ``tokenizers`` library laid out like the
DNABERT-2 tokenizer: a BPE model whose unknown token is ``[UNK]``, the special tokens
``[UNK] [CLS] [SEP] [PAD] [MASK]`` as ids 0-4, the bases ``A C G T`` as the alphabet, a
``[CLS] $A [SEP]`` post-processor and no padding or truncation, so
:class:`enhscan.model.encoding.BpeEncoder` reads it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator

import numpy as np

from enhscan.errors import EnhscanError
from enhscan.io.fasta import Genome
from enhscan.model.encoding import SPECIAL_TOKENS

ALPHABET = ("A", "C", "G", "T")

# BPE merges are learned within "words" (the trainer's unit of counting), so cutting a long
# stretch of sequence only loses the pairs across each cut: a few per several kb. In return the
# trainer gets many words to count in parallel, not one multi-megabase string.
_WORD_LENGTH = 4096
_WORDS_PER_BATCH = 256
_ACGT_RUN = re.compile(r"[ACGT]+")


def _training_words(sequences: Iterable[str]) -> Iterator[list[str]]:
    """Batches of ACGT-only words: each sequence upper-cased, split at other characters, cut."""
    batch: list[str] = []
    for seq in sequences:
        for match in _ACGT_RUN.finditer(seq.upper()):
            run = match.group()
            for start in range(0, len(run), _WORD_LENGTH):
                batch.append(run[start : start + _WORD_LENGTH])
                if len(batch) == _WORDS_PER_BATCH:
                    yield batch
                    batch = []
    if batch:
        yield batch


def train_bpe_tokenizer(
    sequences: Iterable[str],
    vocab_size: int = 4096,
    min_frequency: int = 2,
    max_token_length: int | None = 16,
) -> str:
    """Train a BPE tokenizer on DNA sequences and return its ``tokenizer.json`` text.

    Sequences are upper-cased and split at every run of characters other than A, C, G, T
    (N, IUPAC codes), so no token spans or contains them; at encoding time such characters
    become ``[UNK]``.

    Args:
        sequences: DNA strings, e.g. from :func:`sample_genome_sequences`; read once.
        vocab_size: the size of the vocabulary, special tokens and the four bases included.
            Training stops early, with a smaller vocabulary, when no pair occurs at least
            ``min_frequency`` times.
        min_frequency: the fewest occurrences a pair needs to be merged.
        max_token_length: the longest token in bases; None for no limit.

    Returns:
        The tokenizer as JSON text (``Tokenizer.to_str()``).

    Raises:
        ValueError: ``vocab_size`` below 9 (the 5 special tokens and 4 bases), or
            ``max_token_length`` below 1.
    """
    from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers

    n_fixed = len(SPECIAL_TOKENS) + len(ALPHABET)
    if vocab_size < n_fixed:
        raise ValueError(f"vocab_size must be at least {n_fixed} (special tokens and A, C, G, T)")
    if max_token_length is not None and max_token_length < 1:
        raise ValueError("max_token_length must be at least 1 (or None)")

    tokenizer = Tokenizer(models.BPE(unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        show_progress=False,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=list(ALPHABET),
        max_token_length=max_token_length,
    )
    tokenizer.train_from_iterator(_training_words(sequences), trainer=trainer)
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer.to_str()


def sample_genome_sequences(
    genome: Genome,
    n_bases: int,
    piece: int = 5000,
    seed: int = 0,
    chroms: list[str] | None = None,
) -> Iterator[str]:
    """Random pieces of a genome, about ``n_bases`` in all, to train a tokenizer on.

    Each piece is ``piece`` bases starting at a position drawn uniformly over the chosen
    chromosomes together (so a chromosome is drawn in proportion to its length); a chromosome
    shorter than ``piece`` yields its whole sequence when drawn. Pieces are drawn, with
    possible overlaps, until at least ``n_bases`` bases have been yielded. When ``n_bases``
    is at least the total length of the chosen chromosomes, every chromosome is yielded once
    instead, cut into consecutive pieces, in order. Sequence is upper-case and may contain N.

    Args:
        genome: an open genome (:func:`enhscan.io.fasta.open_genome`).
        n_bases: how much sequence to yield, about; 0 yields nothing.
        piece: bases per piece.
        seed: seed of the random draws; the same seed gives the same pieces.
        chroms: the chromosomes to draw from, default all.

    Returns:
        An iterator of upper-case strings, ``piece`` long except for short chromosomes
        (and chromosome ends when the whole genome is yielded).

    Raises:
        ValueError: ``n_bases`` negative or ``piece`` below 1.
        EnhscanError: a name in ``chroms`` is not in the genome.
    """
    if n_bases < 0:
        raise ValueError("n_bases must not be negative")
    if piece < 1:
        raise ValueError("piece must be at least 1")
    names = list(genome.lengths) if chroms is None else list(chroms)
    missing = [name for name in names if name not in genome.lengths]
    if missing:
        raise EnhscanError(
            f"{genome.path} has no sequence named {', '.join(map(repr, missing))}; "
            f"choose from {', '.join(list(genome.lengths)[:10])}"
        )
    names = [name for name in names if genome.lengths[name] > 0]
    # Validation above runs now; the generator below runs lazily.
    return _draw_pieces(genome, names, n_bases, piece, seed)


def _draw_pieces(
    genome: Genome, names: list[str], n_bases: int, piece: int, seed: int
) -> Iterator[str]:
    lengths = np.array([genome.lengths[name] for name in names], dtype=np.int64)
    total = int(lengths.sum())
    if n_bases == 0 or total == 0:
        return
    if n_bases >= total:
        for name, length in zip(names, lengths.tolist(), strict=True):
            for start in range(0, length, piece):
                yield genome.fetch(name, start, min(start + piece, length))
        return

    rng = np.random.default_rng(seed)
    weights = lengths / total
    yielded = 0
    # Draw in batches: far fewer calls into numpy than one draw per piece.
    batch = max(1, min(4096, math.ceil(n_bases / piece)))
    while yielded < n_bases:
        which = rng.choice(len(names), size=batch, p=weights)
        offsets = rng.random(batch)
        for index, offset in zip(which.tolist(), offsets.tolist(), strict=True):
            length = int(lengths[index])
            if length <= piece:
                seq = genome.fetch(names[index], 0, length)
            else:
                start = min(int(offset * (length - piece + 1)), length - piece)
                seq = genome.fetch(names[index], start, start + piece)
            yield seq
            yielded += len(seq)
            if yielded >= n_bases:
                return
