"""Tests for enhscan.training.bpe on the real sequence in tests/data/mini.fa."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tokenizers import Tokenizer

from enhscan.errors import EnhscanError
from enhscan.io.fasta import open_genome
from enhscan.model.encoding import BpeEncoder
from enhscan.training.bpe import sample_genome_sequences, train_bpe_tokenizer

ALL_OF_MINI = 10**9  # more than mini.fa holds: sample_genome_sequences yields all of it


@pytest.fixture
def genome(mini_fasta: Path):
    with open_genome(mini_fasta) as g:
        yield g


@pytest.fixture
def trained(genome) -> str:
    return train_bpe_tokenizer(sample_genome_sequences(genome, ALL_OF_MINI), vocab_size=300)


def test_layout_matches_dnabert2(trained: str):
    spec = json.loads(trained)
    assert spec["model"]["type"] == "BPE"
    assert spec["model"]["unk_token"] == "[UNK]"
    assert spec["padding"] is None and spec["truncation"] is None
    vocab = spec["model"]["vocab"]
    for token_id, token in enumerate(["[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"]):
        assert vocab[token] == token_id
    assert [vocab[b] for b in "ACGT"] == [5, 6, 7, 8]
    assert [t["content"] for t in spec["added_tokens"]] == [
        "[UNK]",
        "[CLS]",
        "[SEP]",
        "[PAD]",
        "[MASK]",
    ]
    tok = Tokenizer.from_str(trained)
    assert tok.encode("ACGT").tokens[0] == "[CLS]" and tok.encode("ACGT").tokens[-1] == "[SEP]"


def test_vocabulary(trained: str):
    encoder = BpeEncoder(trained)
    assert encoder.vocab_size == 300
    assert (encoder.cls_id, encoder.sep_id, encoder.pad_id) == (1, 2, 3)
    tokens = [t for t in json.loads(trained)["model"]["vocab"] if not t.startswith("[")]
    assert all(set(t) <= set("ACGT") for t in tokens)  # no N, nothing lower-case
    assert max(map(len, tokens)) <= 16


def test_encode_round_trip(trained: str, genome):
    encoder = BpeEncoder(trained)
    id_to_token = {i: t for t, i in json.loads(trained)["model"]["vocab"].items()}
    seq = genome.fetch("chr22_32000000", 12_000, 13_000)
    assert set(seq) <= set("ACGT")
    ids = encoder.encode([seq])[0]
    assert ids[0] == encoder.cls_id and ids[-1] == encoder.sep_id
    assert len(ids) < 500  # 1,000 bp: BPE merges several bases a token on average
    assert "".join(id_to_token[int(i)] for i in ids[1:-1]) == seq


def test_n_becomes_unknown(trained: str):
    ids = BpeEncoder(trained).encode(["ACGTNACGT"])[0]
    assert (ids == 0).sum() == 1


def test_deterministic_for_a_seed(genome):
    def train(seed: int) -> str:
        pieces = sample_genome_sequences(genome, 40_000, piece=2000, seed=seed)
        return train_bpe_tokenizer(pieces, vocab_size=200)

    assert train(5) == train(5)


def test_too_little_data_gives_a_smaller_vocabulary():
    tokenizer_json = train_bpe_tokenizer(["acgtac" * 3, "NNNN", "acgtTT"], vocab_size=300)
    vocab = json.loads(tokenizer_json)["model"]["vocab"]
    assert 9 < len(vocab) < 300
    assert BpeEncoder(tokenizer_json).vocab_size == len(vocab)
    assert not any("N" in t for t in vocab if not t.startswith("["))


def test_vocab_size_too_small():
    with pytest.raises(ValueError, match="at least 9"):
        train_bpe_tokenizer(["ACGT"], vocab_size=8)


def test_sample_is_random_pieces(genome):
    pieces = list(sample_genome_sequences(genome, 20_000, piece=1000, seed=1))
    assert sum(map(len, pieces)) == 20_000
    assert len(pieces) == 20
    # Every piece is real sequence from some chromosome (the yeast one is shorter than a
    # piece, so it would come whole).
    whole = {name: genome.fetch(name, 0, length) for name, length in genome.lengths.items()}
    assert all(len(p) == 1000 or p == whole["yeastI_0_700"] for p in pieces)
    assert all(any(p in s for s in whole.values()) for p in pieces)
    assert pieces == list(sample_genome_sequences(genome, 20_000, piece=1000, seed=1))
    assert pieces != list(sample_genome_sequences(genome, 20_000, piece=1000, seed=2))


def test_sample_weighted_by_length(genome):
    pieces = list(sample_genome_sequences(genome, 400_000, piece=100, seed=0))
    chr2 = genome.fetch("chr2", 0, genome.lengths["chr2"])
    share_chr2 = np.mean([p in chr2 for p in pieces])
    # chr2 is 60,000 of 91,200 bases: about 66% of draws.
    assert 0.6 < share_chr2 < 0.72


def test_short_chromosome_comes_whole(genome):
    pieces = list(sample_genome_sequences(genome, 500, piece=1000, chroms=["yeastI_0_700"]))
    assert pieces == [genome.fetch("yeastI_0_700", 0, 700)]


def test_asking_for_everything_yields_the_genome_once(genome):
    pieces = list(sample_genome_sequences(genome, ALL_OF_MINI, piece=7000))
    joined = "".join(pieces)
    assert joined == "".join(genome.fetch(n, 0, length) for n, length in genome.lengths.items())
    assert list(sample_genome_sequences(genome, 0)) == []


def test_sample_bad_arguments(genome):
    with pytest.raises(EnhscanError, match="chr9"):
        sample_genome_sequences(genome, 100, chroms=["chr9"])
    with pytest.raises(ValueError):
        sample_genome_sequences(genome, 100, piece=0)
    with pytest.raises(ValueError):
        sample_genome_sequences(genome, -1)
