"""Naming the motifs behind a call: the stretches of high attribution (seqlets) matched
against known motifs, JASPAR CORE vertebrates (shipped offline by pyjaspar) or a user's
``.jaspar`` / ``.meme`` file, with Biopython's position-specific scoring matrices.

- **Seqlets**: bases whose attribution stands out from the window's (a robust z-score, the
  median and the median absolute deviation, above :data:`SEQLET_Z`), runs closer than 4 bases
  merged, runs of at least 4 kept, 5 bases of flank added on either side; the three with the
  largest positive attribution per window.
- **Matches**: each motif's log-odds score (pseudocount 0.5 per base, uniform background) at
  every position of a seqlet on both strands; the best one's p-value is the share of random
  sequence (the background) that scores at least as high, from Biopython's exact score
  distribution (``Bio.motifs.thresholds.ScoreDistribution``). Hits at ``p <= pvalue`` are
  kept. To spare computing a distribution for every motif, only motifs whose best score
  reaches :data:`CANDIDATE_SHARE` of their maximum are tested. A hit is the best of many
  positions, both strands and many motifs, and its p-value is not corrected for that: read
  it as a ranking, not a test.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from enhscan.errors import EnhscanError

log = logging.getLogger(__name__)

SEQLET_Z = 3.0
CANDIDATE_SHARE = 0.6
PSEUDOCOUNT = 0.5
#: Biopython's ``precision`` for score distributions: steps per motif column.
DISTRIBUTION_PRECISION = 100


@dataclass(frozen=True)
class Motif:
    """A known motif, ready to scan: ``pssm`` its log-odds matrix (Biopython)."""

    id: str
    name: str
    pssm: object
    max_score: float


@dataclass(frozen=True)
class Hit:
    """A motif found in a seqlet. Coordinates relative to the window, 0-based half-open."""

    motif: Motif
    start: int
    end: int
    strand: str
    score: float
    pvalue: float
    support: float  # the attribution summed over the hit's bases


def load_motifs(source: str | os.PathLike | None) -> list[Motif]:
    """Motifs to match: JASPAR CORE vertebrates (``None`` or ``jaspar``) or a file.

    Raises:
        EnhscanError: pyjaspar missing for JASPAR, or an unreadable motif file.
    """
    if source is None or str(source) == "jaspar":
        return [_motif(m, m.matrix_id, m.name) for m in _jaspar_core()]
    return _from_file(Path(source))


def _jaspar_core():
    try:
        from pyjaspar import jaspardb
    except ImportError:
        raise EnhscanError(
            "naming motifs needs JASPAR, which pyjaspar ships: pip install 'enhscan[motifs]' "
            "(or give --motifs FILE.jaspar|.meme, or --motifs none)"
        ) from None
    return jaspardb().fetch_motifs(collection="CORE", tax_group=["vertebrates"])


def _from_file(path: Path) -> list[Motif]:
    from Bio import motifs as bio_motifs

    fmt = {".jaspar": "jaspar", ".meme": "minimal", ".txt": "minimal"}.get(path.suffix.lower())
    if fmt is None or not path.is_file():
        raise EnhscanError(f"--motifs {path}: give a .jaspar or .meme file (or jaspar, none)")
    try:
        with open(path) as handle:
            found = list(bio_motifs.parse(handle, fmt))
    except Exception as err:  # Biopython raises assorted types on malformed files
        raise EnhscanError(f"--motifs {path}: not a readable {fmt} file ({err})") from None
    if not found:
        raise EnhscanError(f"--motifs {path} holds no motifs")
    return [_motif(m, getattr(m, "matrix_id", None) or m.name, m.name) for m in found]


def _motif(motif, motif_id: str, name: str) -> Motif:
    motif.pseudocounts = PSEUDOCOUNT
    motif.background = {b: 0.25 for b in "ACGT"}
    pssm = motif.pssm
    return Motif(str(motif_id), str(name), pssm, float(pssm.max))


def seqlets(attribution: np.ndarray, keep: int = 3) -> list[tuple[int, int]]:
    """The stretches of ``attribution`` (float [W]) that stand out (module docstring):
    ``(start, end)`` within the window, strongest first."""
    values = np.asarray(attribution, dtype=np.float64)
    # A floor for the spread: where most values are equal the MAD is 0, and noise would pass.
    scale = float(np.abs(values).max()) if len(values) else 0.0
    mad = max(float(np.median(np.abs(values - np.median(values)))), 1e-3 * scale, 1e-12)
    high = np.flatnonzero((values - np.median(values)) / (1.4826 * mad) > SEQLET_Z)
    runs: list[list[int]] = []
    for i in high.tolist():
        if runs and i - runs[-1][1] <= 4:
            runs[-1][1] = i + 1
        else:
            runs.append([i, i + 1])
    spans = [(max(0, s - 5), min(len(values), e + 5)) for s, e in runs if e - s >= 4]
    spans.sort(key=lambda span: -np.clip(values[span[0] : span[1]], 0, None).sum())
    return spans[:keep]


def match(seq: str, attribution: np.ndarray, motifs: list[Motif], pvalue: float) -> list[Hit]:
    """Hits of ``motifs`` in the seqlets of one window (``seq``, its ``attribution``), best
    (lowest p) first."""
    from Bio.Seq import Seq

    hits = []
    for start, end in seqlets(attribution):
        piece = Seq(seq[start:end])
        for motif in motifs:
            best = _best(motif, piece)
            if best is None or best[0] < CANDIDATE_SHARE * motif.max_score:
                continue
            p = _pvalue(motif, best[0])
            if p <= pvalue:
                at, strand = start + best[1], best[2]
                width = motif.pssm.length
                support = float(np.sum(attribution[at : at + width]))
                hits.append(Hit(motif, at, at + width, strand, best[0], p, support))
    return sorted(hits, key=lambda h: (h.pvalue, -h.support))


def _best(motif: Motif, piece) -> tuple[float, int, str] | None:
    """The best score of ``motif`` in ``piece`` on either strand: (score, offset, strand)."""
    if len(piece) < motif.pssm.length:
        return None
    forward = np.asarray(motif.pssm.calculate(piece), dtype=np.float64).reshape(-1)
    reverse = np.asarray(motif.pssm.reverse_complement().calculate(piece)).reshape(-1)
    # Biopython scores a site holding N (any base but A, C, G, T) as NaN: such sites lose.
    if np.isnan(forward).all() and np.isnan(reverse).all():
        return None
    best_forward = np.nanmax(forward) if not np.isnan(forward).all() else -np.inf
    best_reverse = np.nanmax(reverse) if not np.isnan(reverse).all() else -np.inf
    if best_forward >= best_reverse:
        return float(best_forward), int(np.nanargmax(forward)), "+"
    return float(best_reverse), int(np.nanargmax(reverse)), "-"


#: Score distributions by motif (the PSSM object's identity: ids may repeat across files).
_DISTRIBUTIONS: dict[int, object] = {}


def _pvalue(motif: Motif, score: float) -> float:
    """Share of background sequence scoring at least ``score`` (Biopython's distribution)."""
    from Bio.motifs.thresholds import ScoreDistribution

    cached = _DISTRIBUTIONS.get(id(motif.pssm))
    dist = cached[1] if cached is not None and cached[0] is motif.pssm else None
    if dist is None:
        background = {b: 0.25 for b in "ACGT"}
        dist = ScoreDistribution(
            pssm=motif.pssm, background=background, precision=DISTRIBUTION_PRECISION
        )
        _DISTRIBUTIONS[id(motif.pssm)] = (motif.pssm, dist)  # kept alive: ids stay unique
    index = min(max(int((score - dist.min_score) / dist.step), 0), len(dist.bg_density) - 1)
    # No random site scores higher than the best one, which a quarter per base reaches.
    return float(max(np.sum(dist.bg_density[index:]), 0.25**motif.pssm.length))
