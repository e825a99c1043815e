"""The enhscan model folder: one directory that holds everything needed to score windows.

Layout::

    model_dir/
      config.json        architecture (enhscan.model.config; transformers reads it too)
      model.safetensors  weights (a DNABERT-2 folder's pytorch_model.bin is read too)
      tokenizer.json     the tokenizers BPE tokenizer (DNABERT-2 family; the CNN has none)
      enhscan.json       ModelMetadata: family, window, labels, call threshold, provenance, metrics

A plain DNABERT-2 folder (no enhscan.json) loads too, with default metadata. Loading never
runs code from the folder: weights come from safetensors or ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from enhscan.errors import EnhscanError
from enhscan.io.atomic import atomic_output
from enhscan.model.families import FAMILIES, Encoder, family_of_arch, guess_family
from enhscan.model.metadata import (
    METADATA_NAME,
    WEIGHT_NAMES,
    ModelMetadata,
)
from enhscan.model.weights import read_json

log = logging.getLogger(__name__)


@dataclass
class Classifier:
    """A loaded model, ready to score windows.

    Attributes:
        network: the PyTorch module; ``network(input_ids, attention_mask).logits`` -> [B, labels].
        encoder: turns DNA strings into token ids.
        metadata: window, labels, threshold, provenance.
        identity: ``sha256:<hex>`` of the weights, recorded in run records.
        path: the folder it came from, if any.
    """

    network: torch.nn.Module
    encoder: Encoder
    metadata: ModelMetadata
    identity: str
    path: Path | None = None


DEFAULT_MODEL = "default_model"


def default_model_path() -> Path | None:
    """The folder of the model shipped inside the package, or None if this build has none."""
    from importlib import resources

    folder = Path(str(resources.files("enhscan.data").joinpath(DEFAULT_MODEL)))
    return folder if (folder / METADATA_NAME).exists() else None


def required_default_model_path() -> Path:
    """:func:`default_model_path`, or an error saying to give a model folder."""
    folder = default_model_path()
    if folder is None:
        raise EnhscanError(
            "this enhscan build ships no default model; pass --model DIR (a folder written by "
            "enhscan train)"
        )
    return folder


def new_classifier(
    arch: str = "tiny",
    *,
    tokenizer_json: str | None = None,
    window: int = 1000,
    seed: int = 0,
    **config_overrides,
) -> Classifier:
    """A classifier with freshly initialised (random) weights.

    Args:
        arch: ``tiny``, ``small`` or ``base`` (DNABERT-2 architecture; base is the 117M shape),
            ``cnn`` (the CNN baseline; ``cnn-deep`` with a fourth block), or ``dnabert-kmer``
            (DNABERT; ``k`` and ``size`` in ``config_overrides``, default 6 and small).
        tokenizer_json: BPE tokenizer JSON text for DNABERT-2 models; default the shipped
            DNABERT-2 tokenizer. Ignored by the CNN, which reads one-hot bases.
        window: window width stored in the metadata.
        seed: seed for the weight initialisation.
        config_overrides: fields of the model config (e.g. ``hidden_dropout_prob``).
    """
    family = family_of_arch(arch)
    torch.manual_seed(seed)
    network, encoder, provenance = family.build(arch, tokenizer_json, window, config_overrides)
    metadata = ModelMetadata(
        family=family.name,
        window=window,
        provenance={"created": "random initialisation", "arch": arch, **provenance},
    )
    return Classifier(network.eval(), encoder, metadata, identity=_state_sha256(network))


def save_classifier(classifier: Classifier, out_dir: str | os.PathLike) -> Path:
    """Write ``classifier`` as an enhscan model folder.

    The files are written to a temporary folder first and each is then renamed into
    ``out_dir`` (created if missing), so no file is ever half-written; other files already in
    ``out_dir`` (such as a ``training/`` report) are kept.
    """
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.with_name(f".{out_dir.name}.partial-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        save_network(classifier.network, tmp)
        tokenizer_json = getattr(classifier.encoder, "tokenizer_json", None)
        if tokenizer_json is not None:
            (tmp / "tokenizer.json").write_text(tokenizer_json)
        vocab_text = getattr(classifier.encoder, "vocab_text", None)
        if vocab_text is not None:
            (tmp / "vocab.txt").write_text(vocab_text)
        if hasattr(classifier.encoder, "save"):  # a transformers tokenizer
            classifier.encoder.save(tmp)
        (tmp / METADATA_NAME).write_text(json.dumps(asdict(classifier.metadata), indent=2) + "\n")
        out_dir.mkdir(exist_ok=True)
        for stale in ("pytorch_model.bin", "tokenizer.json", "vocab.txt"):
            (out_dir / stale).unlink(missing_ok=True)
        # enhscan.json last: a folder with it is complete.
        names = sorted(p.name for p in tmp.iterdir() if p.name != METADATA_NAME)
        for name in [*names, METADATA_NAME]:
            os.replace(tmp / name, out_dir / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    classifier.path = out_dir
    classifier.identity = _file_sha256(out_dir / "model.safetensors")
    return out_dir


def save_network(network: torch.nn.Module, folder: Path) -> None:
    """Write ``network``'s ``config.json`` and ``model.safetensors`` into ``folder``.

    The weights go to a temporary name first, so a ``model.safetensors`` is always whole.
    """
    folder.mkdir(parents=True, exist_ok=True)
    if hasattr(network, "save_pretrained"):  # a transformers model (DNABERT k-mer, hf family)
        from transformers.utils import logging as hf_logging

        bar_was_on = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # its "Writing model shards" bar is noise here
        try:
            network.save_pretrained(folder, safe_serialization=True)
        finally:
            if bar_was_on:
                hf_logging.enable_progress_bar()
    else:
        from safetensors.torch import save_file

        # safetensors refuses tensors that share memory (the masked-LM's tied decoder): copies.
        state = {k: v.detach().cpu().clone().contiguous() for k, v in network.state_dict().items()}
        with atomic_output(folder / "model.safetensors") as partial:
            save_file(state, str(partial), metadata={"format": "pt"})
        network.config.to_json_file(folder / "config.json")
    os.chmod(folder / "model.safetensors", 0o644)


def load_classifier(path: str | os.PathLike, *, require_head: bool = True) -> Classifier:
    """Load an enhscan model folder, or a DNABERT-2, DNABERT (k-mer) or other transformers
    classifier folder (the family is then recognised from its files), on the CPU in fp32.

    Args:
        path: the folder.
        require_head: refuse a folder without trained pooler/classifier weights (such as the
            DNABERT-2 masked-LM checkpoint); pass False to start fine-tuning from one.

    Raises:
        EnhscanError: missing or incomplete folder, weights that do not fit the config, a
            tokenizer that does not fit the weights, or an architecture enhscan does not know.
    """
    path = Path(path)
    if not path.is_dir():
        what = "does not exist" if not path.exists() else "is not a folder"
        raise EnhscanError(f"model folder {path} {what}; give the folder enhscan train wrote")
    metadata_file = path / METADATA_NAME
    guessed = not metadata_file.exists()
    if guessed:
        family = guess_family(path)
        log.warning(
            "%s has no %s: loading it as a %s model, threshold 0.5", path, METADATA_NAME, family
        )
        metadata = ModelMetadata(family=family, provenance={"source": str(path)})
    else:
        metadata = ModelMetadata.from_dict(read_json(metadata_file), str(metadata_file))
    weights = next((path / n for n in WEIGHT_NAMES if (path / n).exists()), None)
    family = FAMILIES[metadata.family]
    missing = [name for name in family.needs if not (path / name).exists()]
    if weights is None and family.name != "hf":  # a transformers folder names its own
        missing.append(" or ".join(WEIGHT_NAMES))
    if missing:
        raise EnhscanError(f"model folder {path} is incomplete: no {', '.join(missing)}")
    network, encoder = family.load(path, metadata, weights, require_head, guessed)
    identity = _file_sha256(weights) if weights else _state_sha256(network)
    return Classifier(network.eval(), encoder, metadata, identity=identity, path=path)


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return "sha256:" + digest.hexdigest()


def _state_sha256(network: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(network.state_dict().items()):
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(tensor.detach().float().cpu().numpy()).tobytes())
    return "sha256:" + digest.hexdigest()


def replace_head(classifier: Classifier, labels: list[str], seed: int = 0) -> Classifier:
    """Give ``classifier`` a freshly initialised output layer for ``labels`` (a softmax
    classifier), keeping everything below it: how a multi-task model becomes the base of an
    enhancer classifier."""
    network = classifier.network
    head = getattr(network, "classifier", None)
    if not isinstance(head, torch.nn.Linear):
        raise EnhscanError("this model family has no replaceable output layer")
    torch.manual_seed(seed)
    new = torch.nn.Linear(head.in_features, len(labels))
    std = getattr(network.config, "initializer_range", 0.02)
    torch.nn.init.normal_(new.weight, std=std)
    torch.nn.init.zeros_(new.bias)
    network.classifier = new
    network.num_labels = len(labels)
    network.config.num_labels = len(labels)
    classifier.metadata.labels = list(labels)
    classifier.metadata.positive_index = len(labels) - 1
    classifier.metadata.task_type = "classification"
    return classifier


def set_pooling(classifier: Classifier, pooling: str | None) -> None:
    """Make a classifier pool ``pooling`` from now on; None leaves the model's own.

    DNABERT-2 models pool ``cls`` or ``mean`` (no new weights); the hybrid ``mean`` or
    ``mean+max`` (:func:`enhscan.model.hybrid.set_pooling`: a new pooler layer if the width
    changes, so give it before training).

    Raises:
        EnhscanError: a model of another family, or a pooling its family does not have.
    """
    if pooling is None:
        return
    family = classifier.metadata.family
    if family == "hybrid":
        from enhscan.model.hybrid import POOLINGS
        from enhscan.model.hybrid import set_pooling as set_hybrid_pooling

        if pooling not in POOLINGS:
            raise EnhscanError(
                f"the hybrid pools {' or '.join(POOLINGS)}, not {pooling}: change --pooling"
            )
        set_hybrid_pooling(classifier.network, pooling)
        return
    if family != "dnabert2":
        raise EnhscanError(
            f"--pooling is for DNABERT-2 models and the hybrid; this one is {family}: "
            "drop --pooling"
        )
    if pooling not in ("cls", "mean"):
        raise EnhscanError(f"DNABERT-2 models pool cls or mean, not {pooling}: change --pooling")
    from enhscan.model.dnabert2 import set_pooling as set_network_pooling

    set_network_pooling(classifier.network, pooling)


def start_front_end(classifier: Classifier, cnn_dir: str) -> None:
    """Copy the convolution blocks of the CNN folder ``cnn_dir`` into the new hybrid
    ``classifier`` (:func:`enhscan.model.hybrid.copy_front_end`), noting it in the provenance.

    Raises:
        EnhscanError: ``cnn_dir`` is not a CNN folder, or its blocks do not fit.
    """
    from enhscan.model.hybrid import copy_front_end

    if classifier.metadata.family != "hybrid":
        raise EnhscanError(
            "--front-end starts a hybrid's convolutions: give --arch hybrid or hybrid-large"
        )
    cnn = load_classifier(cnn_dir, require_head=False)
    if cnn.metadata.family != "cnn":
        raise EnhscanError(
            f"--front-end {cnn_dir} holds a {cnn.metadata.family} model; give a CNN folder "
            "(--arch cnn-deep)"
        )
    try:
        blocks = copy_front_end(classifier.network, cnn.network)
    except ValueError as err:
        raise EnhscanError(f"--front-end {cnn_dir} does not fit the hybrid: {err}") from None
    classifier.metadata.provenance["front_end"] = {
        "path": str(cnn_dir),
        "blocks": blocks,
        "provenance": cnn.metadata.provenance,
    }
