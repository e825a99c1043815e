"""enhscan's networks for transformers' Auto classes.

enhscan itself never needs this module: its networks are plain PyTorch, and scanning does not
import transformers. Import it to load an enhscan model folder (or a DNABERT-2 folder) with
transformers::

    import enhscan.model.hf_interop  # registers "dnabert2" and "enhscan-cnn"
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained("my_model/")

The wrappers hold the same submodules as the native classes (so the same state dicts), and run
the native forward.
"""

from __future__ import annotations

from torch import nn
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    PretrainedConfig,
    PreTrainedModel,
)

from enhscan.model import cnn, dnabert2
from enhscan.model.config import NetworkConfig

try:  # transformers >= 5: init functions that skip tensors already loaded from a checkpoint
    from transformers import initialization as hf_init
except ImportError:  # pragma: no cover - older transformers
    from torch.nn import init as hf_init

__all__ = [
    "DNABert2HFConfig",
    "DNABert2HFForSequenceClassification",
    "CNNHFConfig",
    "EnhancerCNNHF",
]


def _take_fields(config: PretrainedConfig, native: type[NetworkConfig], kwargs: dict) -> dict:
    """Validate ``kwargs`` with the native config, set its architecture fields on ``config``,
    and return what is left for ``PretrainedConfig.__init__``."""
    checked = native(**kwargs)
    for name in native.FIELDS:
        setattr(config, name, getattr(checked, name))
    rest = {k: v for k, v in kwargs.items() if k not in native.FIELDS and k != "model_type"}
    rest.pop("auto_map", None)  # never point transformers at code in a folder
    rest["pad_token_id"] = checked.pad_token_id
    return rest


class DNABert2HFConfig(PretrainedConfig):
    """transformers config of a DNABERT-2 network; fields as :class:`DNABert2Config`."""

    model_type = "dnabert2"

    def __init__(self, **kwargs):
        super().__init__(**_take_fields(self, dnabert2.DNABert2Config, kwargs))


class CNNHFConfig(PretrainedConfig):
    """transformers config of the CNN baseline; fields as :class:`CNNConfig`."""

    model_type = "enhscan-cnn"

    def __init__(self, **kwargs):
        super().__init__(**_take_fields(self, cnn.CNNConfig, kwargs))


class DNABert2HFForSequenceClassification(PreTrainedModel):
    """:class:`enhscan.model.dnabert2.DNABert2ForSequenceClassification` as a transformers
    model (``from_pretrained``, ``save_pretrained``, Auto classes)."""

    config_class = DNABert2HFConfig
    base_model_prefix = "bert"
    supports_gradient_checkpointing = True
    _no_split_modules = ["DNABert2Layer"]
    _supports_sdpa = True  # attention always goes through SDPA
    # The DNABERT-2 masked-LM checkpoint carries its MLM head; it is expected to be unused here.
    _keys_to_ignore_on_load_unexpected = [r"^cls\.predictions\."]

    def __init__(self, config: DNABert2HFConfig):
        super().__init__(config)
        dnabert2.DNABert2ForSequenceClassification.add_modules(self, config)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        dnabert2.init_weights(module, self.config.initializer_range, hf_init)

    def get_input_embeddings(self) -> nn.Embedding:
        return self.bert.embeddings.word_embeddings

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.bert.embeddings.word_embeddings = value

    forward = dnabert2.DNABert2ForSequenceClassification.forward
    embed = dnabert2.DNABert2ForSequenceClassification.embed
    _loss = dnabert2.DNABert2ForSequenceClassification._loss


class EnhancerCNNHF(PreTrainedModel):
    """:class:`enhscan.model.cnn.EnhancerCNN` as a transformers model."""

    config_class = CNNHFConfig
    base_model_prefix = "cnn"
    main_input_name = "input_ids"

    def __init__(self, config: CNNHFConfig):
        super().__init__(config)
        cnn.EnhancerCNN.add_modules(self, config)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        cnn.init_weights(module, self.config.initializer_range, hf_init)

    forward = cnn.EnhancerCNN.forward


AutoConfig.register(DNABert2HFConfig.model_type, DNABert2HFConfig, exist_ok=True)
AutoModelForSequenceClassification.register(
    DNABert2HFConfig, DNABert2HFForSequenceClassification, exist_ok=True
)
AutoConfig.register(CNNHFConfig.model_type, CNNHFConfig, exist_ok=True)
AutoModelForSequenceClassification.register(CNNHFConfig, EnhancerCNNHF, exist_ok=True)
