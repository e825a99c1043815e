"""Network configs: a model's architecture, as its folder's ``config.json`` holds it.

Plain Python, without transformers: scanning and predicting load a model without importing
transformers, whose import costs several seconds per command. The JSON written is the one
transformers writes for the same model (``model_type``, ``architectures``, ``id2label``), so
:mod:`enhscan.model.hf_interop` can load an enhscan folder through transformers' Auto classes.
"""

from __future__ import annotations

import json
import os
from typing import Any, ClassVar

# Keys a config file may carry that say nothing about the architecture, or that would point
# transformers at code in the folder (auto_map): dropped on reading.
IGNORED_KEYS = frozenset(
    {"auto_map", "model_type", "architectures", "label2id", "transformers_version"}
)


class NetworkConfig:
    """Base of the enhscan network configs: labels and the keys a family does not know.

    Subclasses set their architecture fields as attributes, list their names in ``FIELDS``
    and call ``super().__init__(**rest)`` with what is left.

    Args:
        num_labels: number of output logits; default 2, or the length of ``id2label``.
        id2label: transformers' label names by index (read for ``num_labels`` only).
        problem_type: transformers' loss choice (``single_label_classification`` ...), or None
            to infer it from the labels.
        pad_token_id: the padding token id.
        extra: any other key, kept as an attribute and written back by :meth:`to_dict` (a
            DNABERT-2 release config carries several that play no part here).
    """

    model_type: ClassVar[str] = ""
    architecture: ClassVar[str] = ""  # the transformers class name written to "architectures"
    FIELDS: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        *,
        num_labels: int | None = None,
        id2label: dict | None = None,
        problem_type: str | None = None,
        pad_token_id: int | None = None,
        **extra: Any,
    ):
        if num_labels is None:
            num_labels = len(id2label) if id2label else 2
        self.num_labels = int(num_labels)
        self.problem_type = problem_type
        self.pad_token_id = pad_token_id
        self.extra = {k: v for k, v in extra.items() if k not in IGNORED_KEYS}
        for key, value in self.extra.items():
            if not hasattr(self, key):
                setattr(self, key, value)

    @classmethod
    def from_dict(cls, data: dict) -> NetworkConfig:
        """A config from the contents of a ``config.json``."""
        return cls(**data)

    def to_dict(self) -> dict:
        """The ``config.json`` contents, in the layout transformers writes."""
        out: dict[str, Any] = {"model_type": self.model_type, "architectures": [self.architecture]}
        out.update(self.extra)
        out.update({name: getattr(self, name) for name in self.FIELDS})
        out["id2label"] = {str(i): f"LABEL_{i}" for i in range(self.num_labels)}
        out["label2id"] = {f"LABEL_{i}": i for i in range(self.num_labels)}
        out["problem_type"] = self.problem_type
        out["pad_token_id"] = self.pad_token_id
        return out

    def to_json_file(self, path: str | os.PathLike) -> None:
        """Write :meth:`to_dict` as JSON to ``path``."""
        with open(path, "w") as handle:
            handle.write(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.FIELDS)
        return f"{type(self).__name__}({fields}, num_labels={self.num_labels})"
