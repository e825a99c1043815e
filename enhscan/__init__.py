"""enhscan: genome-wide enhancer scanning with DNA language-model classifiers.

Coordinates everywhere in enhscan are 0-based and half-open (BED convention): the interval
``[start, end)`` holds the bases ``start, start + 1, ..., end - 1``.
"""

__version__ = "0.1.0"
