"""The Python API: load a model, score sequences, scan a genome, score regions, train.

Each function is a thin, typed front to the library functions the command line calls
(``enhscan genome`` is :func:`enhscan.scan.scan_genome`, ``enhscan predict`` is
:func:`enhscan.predict.predict`, ``enhscan train`` is
:func:`enhscan.training.pipeline.train_model`), with the same defaults::

    import enhscan

    model = enhscan.load_model()                    # the shipped default model
    probs = enhscan.score_sequences(["ACGT..."], model)
    record = enhscan.scan_genome("hg38.fa", "tracks/", model, chroms=["chr20"], stride=200)

Coordinates are 0-based and half-open throughout.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from enhscan.errors import EnhscanError
from enhscan.model.folder import Classifier

ModelLike = str | os.PathLike | Classifier | None


def load_model(path: ModelLike = None) -> Classifier:
    """An enhscan model folder, a DNABERT-2 / DNABERT / transformers classifier folder, or,
    with no ``path``, the default model shipped in the package. On the CPU, in fp32. A
    loaded :class:`Classifier` is returned as it is."""
    from enhscan.model import load_classifier, required_default_model_path

    if isinstance(path, Classifier):
        return path
    return load_classifier(required_default_model_path() if path is None else path)


def score_sequences(
    seqs: Sequence[str],
    model: ModelLike = None,
    *,
    device: str = "auto",
    dtype: str = "auto",
    batch_size: int | None = None,
    rc: str | None = None,
) -> np.ndarray:
    """Enhancer probability of each DNA string.

    Args:
        seqs: DNA, any case (normally windows of the model's width, 1 kb for the default).
        model: a loaded model, a folder, or None for the default model.
        device, dtype, batch_size: as for ``enhscan genome``.
        rc: ``mean`` or ``max`` to combine each sequence's two strands; None: as given.

    Returns:
        float32 [len(seqs)], in order.
    """
    from enhscan.backend import ComputeOptions
    from enhscan.scan.run import load_scorer

    if isinstance(seqs, str):  # would be scored base by base
        raise TypeError("seqs is one string: give a list of sequences, e.g. [seq]")
    empty = [i for i, s in enumerate(seqs) if not s]
    if empty:
        raise EnhscanError(f"sequence {empty[0]} of seqs is empty; give DNA to score")
    classifier = load_model(model)
    _, scorer = load_scorer(classifier, ComputeOptions(device, dtype, batch_size))
    return scorer.score([s.upper() for s in seqs], rc=rc)


def scan_genome(
    genome: str | os.PathLike,
    out_dir: str | os.PathLike,
    model: ModelLike = None,
    **settings,
) -> dict:
    """Scan a genome to ``out_dir`` (bigWig, calls, run record, browser files), as
    ``enhscan genome`` does.

    Args:
        genome: FASTA (plain or bgzip) or 2bit.
        out_dir: output folder.
        model: a loaded model, a folder, or None for the default model.
        settings: fields of :class:`enhscan.scan.ScanSpec`,
            :class:`enhscan.scan.ComputeOptions` and :class:`enhscan.scan.RunOptions`
            (stride, chroms, regions, fdr, threshold, call_top, track, rc, formats, device,
            resume, ...); no progress bar unless ``progress=True``.

    Returns:
        The run record (``run.json``).
    """
    from enhscan.scan import ScanSettings
    from enhscan.scan import scan_genome as scan_to_files

    classifier = load_model(model)
    settings.setdefault("progress", False)
    if isinstance(settings.get("chroms"), str):  # "chr1,chr2", as on the command line
        settings["chroms"] = [c for c in settings["chroms"].split(",") if c]
    return scan_to_files(genome, out_dir, classifier, ScanSettings.of(**settings))


def calibrate(model_dir: str | os.PathLike, genome: str | os.PathLike, **options) -> dict:
    """Score random windows of ``genome`` and store them as the background null of the model
    folder ``model_dir``, as ``enhscan calibrate`` does; ``options`` as
    :func:`enhscan.calibration.calibrate_model` (windows, chroms, exclude, max_n, seed, device,
    batch_size). Returns the null's provenance (``background_null.json``)."""
    from enhscan.calibration import calibrate_model

    return calibrate_model(model_dir, genome, **options).info


def predict_file(
    input_path: str | os.PathLike,
    out_path: str | os.PathLike,
    model: ModelLike = None,
    **options,
) -> dict:
    """Score a FASTA, a BED (with ``genome_path=``) or a sequence table into a TSV, as
    ``enhscan predict`` does; ``options`` as :func:`enhscan.predict.predict`."""
    from enhscan.predict import predict as predict_file

    classifier = load_model(model)
    return predict_file(input_path, classifier, out_path, **options)


def score_variants(
    variants: str | os.PathLike,
    genome: str | os.PathLike,
    out: str | os.PathLike,
    model: ModelLike = None,
    **options,
) -> dict:
    """Score each allele of a VCF, BCF or chrom/pos/ref/alt table into ``out`` (a bgzipped,
    indexed VCF), as ``enhscan variants`` does; ``options`` are fields of
    :class:`enhscan.variants.VariantOptions` (``rc``, ``regions``, ``tsv``, ...; no progress
    bar unless ``progress=True``) and of :class:`enhscan.backend.ComputeOptions`
    (``device``, ``batch_size``, ...). Returns the run record."""
    from enhscan.variants import score_variants as run

    variant_options, compute = _split(options, "enhscan.variants", "VariantOptions")
    classifier = load_model(model)
    return run(variants, genome, out, classifier, variant_options, compute)


def explain(
    regions: str | os.PathLike,
    genome: str | os.PathLike,
    out_dir: str | os.PathLike,
    model: ModelLike = None,
    **options,
) -> dict:
    """Per-base attributions of a scan's calls (its output folder) or a BED's regions, as
    ``enhscan explain`` does; ``options`` are fields of :class:`enhscan.explanation.ExplainOptions`
    (``top``, ``method``, ``motifs``, ...; no progress bar unless ``progress=True``) and of
    :class:`enhscan.backend.ComputeOptions`. Returns the run record."""
    from enhscan.explanation import explain as run

    explain_options, compute = _split(options, "enhscan.explanation", "ExplainOptions")
    classifier = load_model(model)
    return run(regions, genome, out_dir, classifier, explain_options, compute)


def _split(options: dict, module: str, name: str):
    """``options`` into the named options class of ``module`` and ComputeOptions."""
    import dataclasses
    import importlib

    from enhscan.backend import ComputeOptions

    options = {"progress": False, **options}
    cls = getattr(importlib.import_module(module), name)
    compute_fields = {f.name for f in dataclasses.fields(ComputeOptions)}
    compute = ComputeOptions(**{k: v for k, v in options.items() if k in compute_fields})
    rest = {k: v for k, v in options.items() if k not in compute_fields}
    return cls(**rest), compute


def train(
    out_dir: str | os.PathLike,
    *,
    data: dict,
    model: dict | None = None,
    settings: dict | None = None,
    **options,
) -> dict:
    """Train a classifier into ``out_dir``, as ``enhscan train`` does.

    Args:
        out_dir: the model folder to write.
        data: fields of :class:`enhscan.training.pipeline.DataOptions` (``sequences=`` a table,
            or ``genome=[...]``, ``positives=``, ``negatives=``, ``holdout_chroms=``, ...).
        model: fields of :class:`enhscan.training.pipeline.ModelOptions` (``arch=``, ``base=``).
        settings: fields of :class:`enhscan.training.trainer.TrainSettings` (``epochs=``, ...).
        options: ``trials``, ``resume``, ``force``, ``progress`` of
            :func:`enhscan.training.pipeline.train_model`.

    Returns:
        The metrics report (also written to ``out_dir/training/metrics.json``).
    """
    from enhscan.training.pipeline import DataOptions, ModelOptions, train_model
    from enhscan.training.trainer import TrainSettings

    options.setdefault("progress", False)
    return train_model(
        DataOptions(**data),
        ModelOptions(**(model or {})),
        TrainSettings(**(settings or {})),
        out_dir,
        **options,
    )
