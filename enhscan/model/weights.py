"""Reading a model folder's config and weights safely: sizes bounded before anything is
built, the network first built on PyTorch's meta device, weights from safetensors (or a
``pytorch_model.bin`` holding tensors only), and every mismatch explained in one line."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import torch

from enhscan.errors import EnhscanError

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


def build_network(
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


def load_weights(
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
    state = read_state_dict(weights)
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


def read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise EnhscanError(f"cannot read {path}: {err}") from None
    if not isinstance(data, dict):
        raise EnhscanError(f"{path} should hold a JSON object")
    return data


def read_state_dict(weights: Path) -> dict[str, torch.Tensor]:
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
