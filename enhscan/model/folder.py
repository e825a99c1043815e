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
import pickle
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from enhscan.errors import EnhscanError
from enhscan.io.atomic import atomic_output
from enhscan.model.encoding import BpeEncoder, default_tokenizer_json

log = logging.getLogger(__name__)

METADATA_NAME = "enhscan.json"
FORMAT_VERSION = 1
WEIGHT_NAMES = ("model.safetensors", "pytorch_model.bin")
FAMILIES = ("dnabert2", "cnn", "dnabert", "hf")
TASK_TYPES = ("classification", "multilabel")
#: The task of a multi-task model that says "an element of any task overlaps the centre".
ANY_TASK = "any"
#: ``--task all``: every task of a multi-task model at once (one column each).
ALL_TASKS = "all"


@dataclass
class ModelMetadata:
    """What enhscan needs to know about a model beyond its weights.

    Attributes:
        family: model family: ``dnabert2``, ``cnn`` (the CNN baseline, one-hot input),
            ``dnabert`` (DNABERT, k-mer tokens) or ``hf`` (any transformers sequence
            classifier with its own DNA tokenizer).
        window: window width in bases the model was trained on.
        labels: class names, in logit order; for a multi-task model, the task names.
        positive_index: which label is "enhancer"; its probability is the score (a
            classifier's; unused by a multi-task model).
        task_type: ``classification`` (one class per window: softmax over ``labels``) or
            ``multilabel`` (one independent 0/1 target per task: a sigmoid per logit; scans
            choose a task).
        threshold: default call threshold (the best-F1 threshold from training, or 0.5).
        provenance: how the model was made (data, commands, versions).
        metrics: held-out metrics from training.
    """

    family: str = "dnabert2"
    window: int = 1000
    labels: list[str] = field(default_factory=lambda: ["background", "enhancer"])
    positive_index: int = 1
    threshold: float = 0.5
    provenance: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    task_type: str = "classification"
    format_version: int = FORMAT_VERSION

    @classmethod
    def from_dict(cls, data: dict, source: str = "metadata") -> ModelMetadata:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        meta = cls(**known)
        if meta.family not in FAMILIES:
            raise EnhscanError(
                f"{source}: unknown model family {meta.family!r}; this enhscan knows "
                f"{', '.join(FAMILIES)} (upgrade enhscan?)"
            )
        if not isinstance(meta.window, int) or meta.window <= 0:
            raise EnhscanError(f"{source}: window must be a positive integer, got {meta.window!r}")
        if meta.task_type not in TASK_TYPES:
            raise EnhscanError(
                f"{source}: unknown task_type {meta.task_type!r}; this enhscan knows "
                f"{', '.join(TASK_TYPES)} (upgrade enhscan?)"
            )
        if not 0 <= meta.threshold <= 1:
            raise EnhscanError(f"{source}: threshold must be in [0, 1], got {meta.threshold!r}")
        if not 0 <= meta.positive_index < max(len(meta.labels), 1):
            raise EnhscanError(f"{source}: positive_index {meta.positive_index} not in labels")
        return meta


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
    encoder: BpeEncoder
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


#: ``--arch`` names of the CNN family, and the shape each names (:data:`cnn.MODEL_SIZES`).
CNN_ARCHS = {"cnn": "base", "cnn-deep": "deep"}


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
    torch.manual_seed(seed)
    if arch == "dnabert-kmer":
        from enhscan.model.dnabert_kmer import (
            KmerEncoder,
            kmer_vocab,
            max_window,
            new_dnabert_network,
        )

        overrides = dict(config_overrides)
        k = overrides.pop("k", 6)
        size = overrides.pop("size", "small")
        if window > max_window(k):
            raise EnhscanError(
                f"a DNABERT {k}-mer model reads at most {max_window(k)} bases (512 positions); "
                f"use --window {max_window(k) // 100 * 100} or less"
            )
        encoder = KmerEncoder(kmer_vocab(k))
        network = new_dnabert_network(encoder.vocab_size, encoder.pad_id, size, **overrides)
        metadata = ModelMetadata(
            family="dnabert",
            window=window,
            provenance={"created": "random initialisation", "arch": arch, "k": k, "size": size},
        )
        return Classifier(network.eval(), encoder, metadata, identity=_state_sha256(network))
    if arch in CNN_ARCHS:
        from enhscan.model.cnn import CNNConfig, EnhancerCNN, NucleotideEncoder

        size = CNN_ARCHS[arch]
        network: torch.nn.Module = EnhancerCNN(CNNConfig.from_size(size, **config_overrides))
        encoder = NucleotideEncoder()
    else:
        from enhscan.model.dnabert2 import DNABert2Config, DNABert2ForSequenceClassification

        encoder = BpeEncoder(tokenizer_json or default_tokenizer_json())
        config = DNABert2Config.from_size(arch, **config_overrides)
        if "vocab_size" not in config_overrides:
            config.vocab_size = encoder.vocab_size  # one embedding row per token
        config.pad_token_id = encoder.pad_id
        network = DNABert2ForSequenceClassification(config)
    metadata = ModelMetadata(
        family="cnn" if arch in CNN_ARCHS else "dnabert2",
        window=window,
        provenance={"created": "random initialisation", "arch": arch},
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
        family = _guess_family(path)
        log.warning(
            "%s has no %s: loading it as a %s model, threshold 0.5", path, METADATA_NAME, family
        )
        metadata = ModelMetadata(family=family, provenance={"source": str(path)})
    else:
        metadata = ModelMetadata.from_dict(_read_json(metadata_file), str(metadata_file))
    weights = next((path / n for n in WEIGHT_NAMES if (path / n).exists()), None)
    if metadata.family == "hf":
        from enhscan.model.hf_generic import load_hf_folder

        network, encoder = load_hf_folder(path, len(metadata.labels))
        identity = _file_sha256(weights) if weights else _state_sha256(network)
        return Classifier(network.eval(), encoder, metadata, identity=identity, path=path)
    config_file = path / "config.json"
    tokenizer_file = path / "tokenizer.json"
    needed = [("config.json", config_file)]
    if metadata.family == "dnabert2":
        needed.append(("tokenizer.json", tokenizer_file))
    if metadata.family == "dnabert":
        needed.append(("vocab.txt", path / "vocab.txt"))
    missing = [name for name, p in needed if not p.exists()]
    if weights is None:
        missing.append(" or ".join(WEIGHT_NAMES))
    if missing:
        raise EnhscanError(f"model folder {path} is incomplete: no {', '.join(missing)}")

    config_dict = _read_json(config_file)
    if metadata.family == "cnn":
        from enhscan.model.cnn import CNNConfig, EnhancerCNN, NucleotideEncoder

        network = _build(EnhancerCNN, CNNConfig, config_dict, config_file, metadata, weights)
        encoder = NucleotideEncoder()
        head_prefixes: tuple[str, ...] = ()
    elif metadata.family == "dnabert":
        from transformers import BertConfig, BertForSequenceClassification

        from enhscan.model.dnabert_kmer import KmerEncoder, max_window

        encoder = KmerEncoder((path / "vocab.txt").read_text())
        network = _build(
            BertForSequenceClassification, BertConfig, config_dict, config_file, metadata, weights
        )
        positions = network.config.max_position_embeddings
        if guessed:  # a plain DNABERT folder: the longest window its positions allow
            metadata.window = min(metadata.window, max_window(encoder.k, positions))
        if metadata.window - encoder.k + 3 > positions:
            raise EnhscanError(
                f"{path}: a window of {metadata.window} bases gives "
                f"{metadata.window - encoder.k + 3} tokens, more than the model's {positions} "
                "positions"
            )
        head_prefixes = ("classifier.", "bert.pooler.")
    else:
        from enhscan.model.dnabert2 import DNABert2Config, DNABert2ForSequenceClassification

        if "alibi_starting_size" not in config_dict and config_dict.get("model_type") != "dnabert2":
            raise EnhscanError(
                f"{config_file} does not describe a DNABERT-2-architecture model (no "
                "alibi_starting_size); give a DNABERT-2 or enhscan model folder"
            )
        encoder = BpeEncoder.from_file(tokenizer_file)
        config_dict = {**config_dict, "pad_token_id": encoder.pad_id}
        network = _build(
            DNABert2ForSequenceClassification,
            DNABert2Config,
            config_dict,
            config_file,
            metadata,
            weights,
        )
        if encoder.vocab_size > network.config.vocab_size:
            raise EnhscanError(
                f"{tokenizer_file} has {encoder.vocab_size} tokens but the model has embeddings "
                f"for {network.config.vocab_size}: the tokenizer belongs to another model"
            )
        head_prefixes = ("classifier.", "bert.pooler.")
    _load_weights(network, weights, config_file, head_prefixes, require_head, path)
    return Classifier(network.eval(), encoder, metadata, identity=_file_sha256(weights), path=path)


def _guess_family(path: Path) -> str:
    """The family of a folder without enhscan.json: DNABERT-2 (an ALiBi config), DNABERT (a
    BERT with a k-mer vocab.txt), else any transformers classifier."""
    config_file = path / "config.json"
    config = _read_json(config_file) if config_file.exists() else {}
    if "alibi_starting_size" in config or config.get("model_type") == "dnabert2":
        return "dnabert2"
    if config.get("model_type") == "bert" and (path / "vocab.txt").exists():
        from enhscan.model.dnabert_kmer import KmerEncoder

        try:
            KmerEncoder((path / "vocab.txt").read_text())
            return "dnabert"
        except EnhscanError:
            pass
    if config.get("model_type") and config_file.exists():
        return "hf"
    return "dnabert2"  # the DNABERT-2 messages explain what is missing


#: Sizes no real model of these families comes near; a config beyond them is refused before
#: anything is built (it would take all the memory there is, or hang building layers).
CONFIG_LIMITS = {
    "num_hidden_layers": 256,
    "num_attention_heads": 1024,
    "hidden_size": 65_536,
    "intermediate_size": 262_144,
    "vocab_size": 10_000_000,
    "max_position_embeddings": 1_000_000,
    "type_vocab_size": 1024,
    "hidden_size_cnn": 65_536,
}


def _build(
    model_class, config_class, config_dict: dict, config_file: Path, metadata, weights: Path
):
    """The network ``config_dict`` describes, refused in one line if its size is absurd or
    does not match the weights file (measured on PyTorch's meta device: no memory used)."""
    _check_limits(config_dict, config_file)
    try:
        config = config_class(**config_dict)
    except (TypeError, ValueError) as err:
        raise EnhscanError(
            f"{config_file}: not a usable {metadata.family} config ({err})"
        ) from None
    config.num_labels = len(metadata.labels)
    with torch.device("meta"):
        probe = _construct(model_class, config, config_file, metadata.family)
    wanted = sum(p.numel() * p.element_size() for p in probe.parameters())
    held = weights.stat().st_size
    # Half precision halves a file; a head missing from a pretrained encoder is small.
    if wanted > 2 * held + (64 << 20):
        raise EnhscanError(
            f"{config_file} describes a model of {wanted / 1e6:,.0f} MB but {weights.name} holds "
            f"{held / 1e6:,.1f} MB: the config does not belong to these weights"
        )
    return _construct(model_class, config, config_file, metadata.family)


def _construct(model_class, config, config_file: Path, family: str):
    """``model_class(config)``, a config it cannot be built from explained in one line."""
    try:
        return model_class(config)
    except (TypeError, ValueError, RuntimeError, ZeroDivisionError, AttributeError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise EnhscanError(f"{config_file}: not a usable {family} config ({first})") from None


def _check_limits(config_dict: dict, config_file: Path) -> None:
    sizes = {k: config_dict.get(k) for k in CONFIG_LIMITS}
    channels = config_dict.get("channels") if isinstance(config_dict.get("channels"), list) else []
    sizes["hidden_size_cnn"] = max((v for v in channels if isinstance(v, int)), default=None)
    sizes["num_hidden_layers"] = sizes["num_hidden_layers"] or len(channels) or None
    for key, value in sizes.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise EnhscanError(f"{config_file}: {key} must be a whole number, got {value!r}")
        if isinstance(value, int) and not 0 <= value <= CONFIG_LIMITS[key]:
            name = "channels" if key == "hidden_size_cnn" else key
            raise EnhscanError(
                f"{config_file}: {name} {value:,} is beyond any model enhscan can run (at most "
                f"{CONFIG_LIMITS[key]:,}); the config is damaged or not a model's"
            )


def _load_weights(
    network: torch.nn.Module,
    weights: Path,
    config_file: Path,
    head_prefixes: tuple[str, ...],
    require_head: bool,
    path: Path,
) -> None:
    """Load ``weights`` into ``network``, explaining missing, foreign or misshapen parameters.

    Parameters starting with one of ``head_prefixes`` may be absent (a pretrained encoder
    without its classifier head) when ``require_head`` is False.
    """
    state = _read_state_dict(weights)
    expected = set(network.state_dict())
    # The DNABERT-2 masked-LM checkpoint carries its MLM head; it plays no part in classifying.
    state = {k: v for k, v in state.items() if not k.startswith("cls.")}
    unexpected = sorted(set(state) - expected)
    if unexpected:
        raise EnhscanError(
            f"{weights} has parameters this model family does not, e.g. {unexpected[0]}; it is "
            "not a checkpoint of the architecture its config.json describes "
            "(not a DNABERT-2-architecture checkpoint?)"
        )
    absent = sorted(expected - set(state))
    head = [k for k in absent if head_prefixes and k.startswith(head_prefixes)]
    if len(head) < len(absent):
        body = [k for k in absent if k not in head]
        raise EnhscanError(
            f"{weights} is incomplete: {len(body)} parameters missing, e.g. {body[0]}"
        )
    if head and require_head:
        raise EnhscanError(
            f"{path} is a pretrained model without a trained classifier head; fine-tune it "
            f"first with `enhscan train --base {path}`"
        )
    try:
        network.load_state_dict(state, strict=False)
    except RuntimeError as err:
        first = str(err).split("\n\t")[1] if "\n\t" in str(err) else str(err)
        raise EnhscanError(f"{weights} does not fit {config_file}: {first.strip()}") from None


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise EnhscanError(f"cannot read {path}: {err}") from None
    if not isinstance(data, dict):
        raise EnhscanError(f"{path} should hold a JSON object")
    return data


def _read_state_dict(weights: Path) -> dict[str, torch.Tensor]:
    try:
        if weights.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(weights))
        return torch.load(weights, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        # PyTorch's own message advises weights_only=False: that would run the code.
        raise EnhscanError(
            f"{weights} holds Python objects besides tensors, which can run code when loaded; "
            "enhscan never loads them. If you trust where it came from, convert it once to "
            "model.safetensors (safetensors.torch.save_file on its state dict) and remove it"
        ) from None
    except Exception as err:  # safetensors and torch raise assorted types on corrupt files
        raise EnhscanError(f"cannot read weights {weights}: {err}") from None


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
