"""Labelled training examples: the record (defined with the sequence-table reader, which
produces it) and the names of its labels."""

from __future__ import annotations

from enhscan.io.sequences import Example

__all__ = ["Example", "LABEL_NAMES"]

LABEL_NAMES = {1: "enhancer", 0: "background"}
