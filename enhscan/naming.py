"""Chromosome names: match UCSC-style (``chr20``, ``chrM``) and Ensembl-style (``20``, ``MT``)."""

from __future__ import annotations

import fnmatch
from collections.abc import Collection

_MITO = ("chrM", "MT", "chrMT", "M")


def name_variants(name: str) -> list[str]:
    """Names that may mean the same sequence as ``name``, ``name`` itself first.

    >>> name_variants("chr20")
    ['chr20', '20']
    >>> name_variants("MT")
    ['MT', 'chrMT', 'chrM', 'M']
    """
    variants = [name]
    if name.startswith("chr"):
        variants.append(name[3:])
    else:
        variants.append("chr" + name)
    if name in _MITO:
        variants += [m for m in _MITO if m not in variants]
    return variants


def match_chrom(name: str, available: Collection[str]) -> str | None:
    """The name in ``available`` that ``name`` refers to, or None.

    An exact match wins; otherwise ``chr`` is added or removed (and ``chrM`` and ``MT`` are
    taken as one), so a BED file written for ``chr20`` matches a FASTA that says ``20``.
    """
    for variant in name_variants(name):
        if variant in available:
            return variant
    return None


def select_chroms(names: list[str], wanted: list[str]) -> list[str]:
    """The sequences among ``names`` that ``wanted`` asks for, in the order of ``names``.

    Each item of ``wanted`` is a name (``chr20`` matches ``20``) or a shell-style pattern
    (``chr[0-9]*``, ``*_random``), matched against each name with and without ``chr``.
    Raises ValueError naming the items that match nothing.
    """
    chosen: set[str] = set()
    unmatched = []
    for item in wanted:
        exact = match_chrom(item, names)
        if exact is not None:
            chosen.add(exact)
            continue
        hits = {n for n in names if any(fnmatch.fnmatchcase(v, item) for v in name_variants(n))}
        if not hits:
            unmatched.append(item)
        chosen |= hits
    if unmatched:
        raise ValueError(", ".join(unmatched))
    return [n for n in names if n in chosen]


def file_names(labels: list[str]) -> list[str]:
    """Each label as a file or folder name, unique among them: characters other than letters,
    digits, ``.``, ``_`` and ``-`` become ``_``, and a repeated name gets ``_2``, ``_3``, ...

    >>> file_names(["Blood Vessel", "Blood/Vessel", "..", "any"])
    ['Blood_Vessel', 'Blood_Vessel_2', 'unnamed', 'any']
    """
    seen: dict[str, int] = {}
    out = []
    for label in labels:
        name = "".join(c if c.isalnum() or c in "._-" else "_" for c in label)
        if name.strip(".") == "":
            name = "unnamed"
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return out
