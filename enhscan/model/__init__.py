"""Models: the DNABERT-2 architecture, its tokenizer, and the enhscan model folder."""

from enhscan.model.folder import (
    Classifier,
    default_model_path,
    load_classifier,
    new_classifier,
    required_default_model_path,
    save_classifier,
)
from enhscan.model.metadata import ModelMetadata

__all__ = [
    "Classifier",
    "ModelMetadata",
    "default_model_path",
    "load_classifier",
    "new_classifier",
    "required_default_model_path",
    "save_classifier",
]
