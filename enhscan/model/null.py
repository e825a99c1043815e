"""A model's background null: the scores of random genome windows, kept in its model folder.

``enhscan train`` and ``enhscan calibrate`` score a sample of random N-free windows of a genome
(:mod:`enhscan.calibration`) and store their sorted scores here, for each way a scan can combine
strands, so that a scan can say how surprising each of its scores is
(:mod:`enhscan.significance`). Files in the model folder::

    background_null.npz    float32 arrays, ascending: forward, mean, max (one per --rc mode),
                           and ``info``: the provenance below, as JSON text
    background_null.json   the same provenance, to read: genome, sequences, windows, seed,
                           and the weights it was scored with (the npz's copy is the one read,
                           so a crash between the two renames cannot pair a sample with the
                           wrong provenance)

The weights' identity is stored with the sample: a null scored with other weights (a folder
whose weights were replaced afterwards) is ignored, with a warning.
"""

from __future__ import annotations

import json
import logging
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from enhscan.errors import EnhscanError
from enhscan.io.atomic import atomic_output

log = logging.getLogger(__name__)

ARRAYS_NAME = "background_null.npz"
INFO_NAME = "background_null.json"
#: The strand modes a null is stored for: the forward strand, and --rc mean / --rc max.
STRAND_MODES = ("forward", "mean", "max")


@dataclass
class BackgroundNull:
    """Sorted background scores of one model, per strand mode.

    Attributes:
        scores: strand mode (``forward``, ``mean``, ``max``) -> float32 [n], ascending.
        info: provenance: genome, sequences, windows, seed, window, max_n, model identity.
    """

    scores: dict[str, np.ndarray]
    info: dict = field(default_factory=dict)

    @property
    def windows(self) -> int:
        return len(self.scores["forward"])

    def for_strands(self, rc: str | None) -> np.ndarray:
        """The sorted sample for a scan's ``--rc`` setting (None: forward strand only)."""
        return self.scores["forward" if rc is None else rc]


def save_null(folder: str | os.PathLike, null: BackgroundNull) -> None:
    """Write the null into a model folder (both files under temporary names, then renamed)."""
    folder = Path(folder)
    arrays = {
        mode: np.sort(np.asarray(null.scores[mode], dtype=np.float32)) for mode in STRAND_MODES
    }
    text = json.dumps(null.info, indent=2, default=str)
    with atomic_output(folder / ARRAYS_NAME) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, info=np.array(text), **arrays)
    with atomic_output(folder / INFO_NAME) as tmp:
        tmp.write_text(text + "\n")


def has_null(folder: str | os.PathLike | None) -> bool:
    """Whether a model folder holds a background null (whether or not it fits a given scan)."""
    return folder is not None and (Path(folder) / ARRAYS_NAME).exists()


def load_null(
    folder: str | os.PathLike | None, identity: str | None = None
) -> BackgroundNull | None:
    """The model folder's null, or None when it has none (or one of other weights).

    Raises:
        EnhscanError: the null files are there but unreadable.
    """
    if not has_null(folder):
        return None
    folder = Path(folder)
    arrays_file, info_file = folder / ARRAYS_NAME, folder / INFO_NAME
    try:
        with np.load(arrays_file, allow_pickle=False) as data:
            scores = {mode: np.asarray(data[mode], dtype=np.float32) for mode in STRAND_MODES}
            if "info" in data:
                info = json.loads(str(data["info"]))
            else:  # written before the provenance went into the npz
                info = json.loads(info_file.read_text()) if info_file.exists() else {}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        raise EnhscanError(
            f"cannot read the background null in {folder} ({err}); recompute it with "
            f"`enhscan calibrate {folder} --genome REF.fa`"
        ) from None
    bad = [
        m for m, s in scores.items() if len(s) == 0 or np.isnan(s).any() or (np.diff(s) < 0).any()
    ]
    if bad:
        raise EnhscanError(
            f"{arrays_file}: the {bad[0]} sample is empty, unsorted or holds NaN; recompute it "
            f"with `enhscan calibrate {folder} --genome REF.fa`"
        )
    if identity is not None and info.get("model_identity") not in (None, identity):
        log.warning(
            "%s was scored with other weights than %s holds now; ignoring it (recompute it "
            "with `enhscan calibrate %s --genome REF.fa`)",
            arrays_file,
            folder,
            folder,
        )
        return None
    return BackgroundNull(scores, info)
