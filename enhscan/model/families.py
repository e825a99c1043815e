"""The model families enhscan runs, one entry each in :data:`FAMILIES`: the ``--arch`` names a
family builds, the files a folder of it needs, how to build a fresh one, how to load a folder,
how to recognise a folder that has no ``enhscan.json``, and what the family offers the engine.

Adding a family is one entry here (and its network and encoder modules). Heavy libraries
(transformers) are imported only when a family that needs them is used.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from enhscan.errors import EnhscanError
from enhscan.model.encoding import BpeEncoder, default_tokenizer_json
from enhscan.model.metadata import ModelMetadata
from enhscan.model.weights import build_network, load_weights, read_json

#: ``--arch`` names of the CNN family, and the shape each names (:data:`cnn.MODEL_SIZES`).
CNN_ARCHS = {"cnn": "base", "cnn-deep": "deep"}
#: ``--arch`` names of the DNABERT-2 family (:data:`dnabert2.MODEL_SIZES`).
DNABERT2_ARCHS = ("tiny", "small", "base")
#: ``--arch`` names of the hybrid (convolutions + DNABERT-2 encoder) and its shape
#: (:data:`hybrid.MODEL_SIZES`).
HYBRID_ARCHS = {"hybrid": "small", "hybrid-large": "large"}


@runtime_checkable
class Encoder(Protocol):
    """Turns DNA strings into token ids: what every family's encoder offers."""

    pad_id: int

    def encode(self, seqs: Sequence[str]) -> list[np.ndarray]:
        """int64 token ids of each sequence, special tokens included."""
        ...


#: (arch, tokenizer JSON or None, window, config overrides) -> (network, encoder, provenance).
Builder = Callable[[str, str | None, int, dict], tuple[torch.nn.Module, Encoder, dict]]
#: (folder, metadata, weights file or None, require_head, guessed) -> (network, encoder).
Loader = Callable[[Path, ModelMetadata, Path | None, bool, bool], tuple[torch.nn.Module, Encoder]]


@dataclass(frozen=True)
class Family:
    """One model family.

    Attributes:
        name: as ``enhscan.json`` records it.
        archs: the ``--arch`` names that build one.
        needs: files a folder of it must hold, besides its weights.
        build: a fresh network with random weights, and its encoder.
        load: the network and encoder of a folder.
        recognise: whether a folder without ``enhscan.json`` (its path and config.json)
            holds one; None: never guessed.
        first_only: its classifiers can compute only the first token of the last layer
            (``forward(..., first_only=True)``), all a classifier reads.
        bpe: it reads BPE tokens (``enhscan train --tokenizer`` applies).
        input_gradients: gradient x input per base (:mod:`enhscan.model.gradients`):
            ``(network, encoder, seq, score_of) -> float32 [len(seq)]``; None: not offered.
        learning_rate: the learning rate of a run from scratch (fine-tuning from a base
            takes 5e-5 whatever the family).
        auto_fused: ``--kernels auto`` tries the fused CPU kernels; False where they measured
            slower than PyTorch's own (the hybrid: 0.82x in ``benchmarks/scan_speed.py``).
    """

    name: str
    archs: tuple[str, ...]
    needs: tuple[str, ...]
    build: Builder | None
    load: Loader
    recognise: Callable[[Path, dict], bool] | None = None
    first_only: bool = False
    bpe: bool = False
    learning_rate: float = 5e-5
    input_gradients: Callable | None = None
    auto_fused: bool = True


# -- DNABERT-2 (BPE tokens, ALiBi) ---------------------------------------------------------------


def _build_dnabert2(arch, tokenizer_json, window, overrides):
    from enhscan.model.dnabert2 import DNABert2Config, DNABert2ForSequenceClassification

    encoder = BpeEncoder(tokenizer_json or default_tokenizer_json())
    config = DNABert2Config.from_size(arch, **overrides)
    if "vocab_size" not in overrides:
        config.vocab_size = encoder.vocab_size  # one embedding row per token
    config.pad_token_id = encoder.pad_id
    return DNABert2ForSequenceClassification(config), encoder, {}


def _load_dnabert2(path, metadata, weights, require_head, guessed):
    from enhscan.model.dnabert2 import DNABert2Config, DNABert2ForSequenceClassification

    config_file, tokenizer_file = path / "config.json", path / "tokenizer.json"
    config = read_json(config_file)
    if not _is_dnabert2(path, config):
        raise EnhscanError(
            f"{config_file} does not describe a DNABERT-2-architecture model (no "
            "alibi_starting_size); give a DNABERT-2 or enhscan model folder"
        )
    encoder = BpeEncoder.from_file(tokenizer_file)
    config = {**config, "pad_token_id": encoder.pad_id}
    network = build_network(
        DNABert2ForSequenceClassification, DNABert2Config, config, config_file, metadata, weights
    )
    if encoder.vocab_size > network.config.vocab_size:
        raise EnhscanError(
            f"{tokenizer_file} has {encoder.vocab_size} tokens but the model has embeddings "
            f"for {network.config.vocab_size}: the tokenizer belongs to another model"
        )
    load_weights(network, weights, config_file, ("classifier.", "bert.pooler."), require_head, path)
    return network, encoder


def _dnabert2_gradients(network, encoder, seq, score_of):
    from enhscan.model.gradients import dnabert2_gradients

    return dnabert2_gradients(network, encoder, seq, score_of)


def _cnn_gradients(network, encoder, seq, score_of):
    from enhscan.model.gradients import cnn_gradients

    return cnn_gradients(network, encoder, seq, score_of)


def _is_dnabert2(path: Path, config: dict) -> bool:
    return "alibi_starting_size" in config or config.get("model_type") == "dnabert2"


# -- the CNN baseline (one-hot bases) ------------------------------------------------------------


def _build_cnn(arch, tokenizer_json, window, overrides):
    from enhscan.model.cnn import CNNConfig, EnhancerCNN, NucleotideEncoder

    network = EnhancerCNN(CNNConfig.from_size(CNN_ARCHS[arch], **overrides))
    return network, NucleotideEncoder(), {}


def _load_cnn(path, metadata, weights, require_head, guessed):
    from enhscan.model.cnn import CNNConfig, EnhancerCNN

    return _load_on_bases(path, metadata, weights, require_head, EnhancerCNN, CNNConfig, ())


def _load_on_bases(path, metadata, weights, require_head, network_class, config_class, head):
    """The network of a folder of a family that reads one-hot bases, and its encoder; ``head``:
    the parameter prefixes a pretrained body may lack."""
    from enhscan.model.cnn import NucleotideEncoder

    config_file = path / "config.json"
    config = read_json(config_file)
    network = build_network(network_class, config_class, config, config_file, metadata, weights)
    load_weights(network, weights, config_file, head, require_head, path)
    return network, NucleotideEncoder()


# -- the hybrid: convolutions on one-hot bases, then the DNABERT-2 encoder ----------------------


def _build_hybrid(arch, tokenizer_json, window, overrides):
    from enhscan.model.cnn import NucleotideEncoder
    from enhscan.model.hybrid import HybridClassifier, HybridConfig

    network = HybridClassifier(HybridConfig.from_size(HYBRID_ARCHS[arch], **overrides))
    return network, NucleotideEncoder(), {}


def _load_hybrid(path, metadata, weights, require_head, guessed):
    from enhscan.model.hybrid import HybridClassifier, HybridConfig

    classes = (HybridClassifier, HybridConfig, ("classifier.",))
    return _load_on_bases(path, metadata, weights, require_head, *classes)


# -- DNABERT (k-mer tokens, a transformers BERT) ----------------------------------------------


def _build_dnabert(arch, tokenizer_json, window, overrides):
    from enhscan.model.dnabert_kmer import KmerEncoder, kmer_vocab, max_window, new_dnabert_network

    overrides = dict(overrides)
    k = overrides.pop("k", 6)
    size = overrides.pop("size", "small")
    if window > max_window(k):
        raise EnhscanError(
            f"a DNABERT {k}-mer model reads at most {max_window(k)} bases (512 positions); "
            f"use --window {max_window(k) // 100 * 100} or less"
        )
    encoder = KmerEncoder(kmer_vocab(k))
    network = new_dnabert_network(encoder.vocab_size, encoder.pad_id, size, **overrides)
    return network, encoder, {"k": k, "size": size}


def _load_dnabert(path, metadata, weights, require_head, guessed):
    from transformers import BertConfig, BertForSequenceClassification

    from enhscan.model.dnabert_kmer import KmerEncoder, max_window

    config_file = path / "config.json"
    encoder = KmerEncoder((path / "vocab.txt").read_text())
    network = build_network(
        BertForSequenceClassification, BertConfig, read_json(config_file), config_file,
        metadata, weights,
    )  # fmt: skip
    positions = network.config.max_position_embeddings
    if guessed:  # a plain DNABERT folder: the longest window its positions allow
        metadata.window = min(metadata.window, max_window(encoder.k, positions))
    if metadata.window - encoder.k + 3 > positions:
        raise EnhscanError(
            f"{path}: a window of {metadata.window} bases gives "
            f"{metadata.window - encoder.k + 3} tokens, more than the model's {positions} "
            "positions"
        )
    load_weights(network, weights, config_file, ("classifier.", "bert.pooler."), require_head, path)
    return network, encoder


def _is_dnabert(path: Path, config: dict) -> bool:
    if config.get("model_type") != "bert" or not (path / "vocab.txt").exists():
        return False
    from enhscan.model.dnabert_kmer import KmerEncoder

    try:
        KmerEncoder((path / "vocab.txt").read_text())
        return True
    except EnhscanError:
        return False


# -- any transformers sequence classifier with its own DNA tokenizer ---------------------------


def _load_hf(path, metadata, weights, require_head, guessed):
    from enhscan.model.hf_generic import load_hf_folder

    return load_hf_folder(path, len(metadata.labels))


def _is_hf(path: Path, config: dict) -> bool:
    return bool(config.get("model_type")) and (path / "config.json").exists()


FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family(
            "dnabert2",
            DNABERT2_ARCHS,
            ("config.json", "tokenizer.json"),
            _build_dnabert2,
            _load_dnabert2,
            _is_dnabert2,
            first_only=True,
            bpe=True,
            input_gradients=_dnabert2_gradients,
        ),
        Family(
            "cnn",
            tuple(CNN_ARCHS),
            ("config.json",),
            _build_cnn,
            _load_cnn,
            learning_rate=1e-3,
            input_gradients=_cnn_gradients,
        ),
        Family(
            "hybrid",
            tuple(HYBRID_ARCHS),
            ("config.json",),
            _build_hybrid,
            _load_hybrid,
            learning_rate=5e-4,
            input_gradients=_cnn_gradients,
            auto_fused=False,
        ),
        Family(
            "dnabert",
            ("dnabert-kmer",),
            ("config.json", "vocab.txt"),
            _build_dnabert,
            _load_dnabert,
            _is_dnabert,
        ),
        Family("hf", (), (), None, _load_hf, _is_hf),
    )
}


def family_of_arch(arch: str) -> Family:
    """The family an ``--arch`` name builds."""
    for family in FAMILIES.values():
        if arch in family.archs:
            return family
    known = [a for f in FAMILIES.values() for a in f.archs]
    raise EnhscanError(f"unknown architecture {arch!r}; choose one of {', '.join(known)}")


def guess_family(path: Path) -> str:
    """The family of a folder without ``enhscan.json``, by the first family that recognises
    it; DNABERT-2 when none does (its messages then explain what is missing)."""
    config_file = path / "config.json"
    config = read_json(config_file) if config_file.exists() else {}
    for family in FAMILIES.values():
        if family.recognise is not None and family.recognise(path, config):
            return family.name
    return "dnabert2"
