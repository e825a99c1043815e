"""enhscan: genome-wide enhancer scanning with DNA language-model classifiers.

Coordinates everywhere in enhscan are 0-based and half-open (BED convention): the interval
``[start, end)`` holds the bases ``start, start + 1, ..., end - 1``.

The Python API (see :mod:`enhscan.api`)::

    import enhscan

    model = enhscan.load_model()
    probs = enhscan.score_sequences(["ACGT..."], model)
    enhscan.scan_genome("genome.fa", "tracks/", model, stride=200)
    enhscan.predict_file("peaks.bed", "scores.tsv", model, genome_path="genome.fa")
    enhscan.train("my_model/", data={"sequences": "labelled.csv"})
    enhscan.calibrate("my_model/", "genome.fa", chroms=["chrX"])
    enhscan.score_variants("calls.vcf.gz", "genome.fa", "scored.vcf.gz", model, rc="mean")
    enhscan.explain("tracks/", "genome.fa", "explain/", model, top=5)
"""

from enhscan.versions import __version__

_API = (
    "load_model",
    "score_sequences",
    "scan_genome",
    "predict_file",
    "train",
    "calibrate",
    "score_variants",
    "explain",
)
__all__ = ["__version__", *_API]


def __getattr__(name: str):
    # Imported on first use: `enhscan -V` and `enhscan -h` need neither torch nor transformers.
    if name in _API:
        from enhscan import api

        return getattr(api, name)
    raise AttributeError(f"module 'enhscan' has no attribute {name!r}")
