"""What a scan is asked to do, in three parts: what to scan (:class:`ScanSpec`), how to compute
(:class:`~enhscan.backend.ComputeOptions`) and how to run (:class:`RunOptions`); and what it
will cover (:class:`ScanPlan`). Plain data, read by every stage of a scan.

Each field is declared once (:func:`enhscan.declared.setting`): its option, and whether a
resumed scan must keep it. The manifest, the run record and the messages derive from that.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from enhscan.backend import ComputeOptions
from enhscan.calling import CallRule
from enhscan.declared import setting
from enhscan.errors import EnhscanError
from enhscan.intervals import Interval
from enhscan.scan.shards import SHARD_WINDOWS
from enhscan.tiling import count_windows

__all__ = ["RunOptions", "ScanPlan", "ScanSettings", "ScanSpec", "check_settings", "call_rule"]

#: Track formats ``--format`` can ask for.
TRACK_FORMATS = ("bigwig", "bedgraph")
#: What ``--track`` can put in the track file.
TRACK_VALUES = ("log10p", "probability")


@dataclass(frozen=True)
class ScanSpec:
    """What to scan and what to call. ``None`` for window means "the model's own".

    Attributes:
        window: window width in bases.
        stride: distance between consecutive window starts.
        max_n: windows with more non-ACGT bases than this are skipped (no track value).
        chroms: names or shell patterns of the sequences to scan; None scans all.
        regions: BED of regions to scan (shorter ones are widened to one window).
        exclude: BED of regions never scored (a blacklist).
        rc: also score each window's reverse complement and keep the ``mean`` or the ``max``
            of the two strands (twice the work); None scores the forward strand only.
        task: for a multi-task model (``enhscan pretrain --targets``), the task to score;
            None: ``any``. Classifiers take None.
        fdr: call the windows whose Benjamini-Hochberg q-value (against the model's
            background null, or the scan's own empirical null) is at most this. The default
            rule: with none of ``fdr``, ``threshold`` and ``call_top`` given, FDR 0.05.
        threshold: instead, call windows whose enhancer probability is at least this.
        call_top: instead, call the best-scoring fraction of the scored windows,
            genome-wide (e.g. 0.02: the top 2%).
        track: what the track holds: ``log10p`` (-log10 p of each window against the null)
            or ``probability`` (the model's enhancer probability).
        formats: track files to write: ``bigwig`` (scores.bw) and/or ``bedgraph``
            (scores.bedGraph).
        assembly: the UCSC assembly name for the track hub's genomes.txt (hg38, hg19, ...);
            None guesses it from the FASTA's file name.

    The scanned regions (chroms, regions, exclude) reach a resume's check through the plan
    they make, not as given: the same regions named by another path are the same scan.
    """

    window: int | None = setting(None, "--window", keep=True)
    stride: int = setting(200, "--stride", keep=True)
    max_n: int = setting(0, "--max-n", keep=True)
    chroms: list[str] | None = setting(None, "--chroms")
    regions: str | None = setting(None, "--regions")
    exclude: str | None = setting(None, "--exclude")
    rc: str | None = setting(None, "--rc", keep=True, shown="both strands")
    task: str | None = setting(None, "--task", keep=True)
    fdr: float | None = setting(None, "--fdr")
    threshold: float | None = setting(None, "--threshold")
    call_top: float | None = setting(None, "--call-top")
    track: str = setting("log10p", "--track")
    formats: tuple[str, ...] = setting(("bigwig",), "--format")
    assembly: str | None = setting(None, "--assembly")


@dataclass(frozen=True)
class RunOptions:
    """How to run a scan.

    Attributes:
        force: overwrite outputs already in the output folder (and drop an unfinished scan).
        resume: continue the unfinished scan in the output folder, skipping its finished
            shards; refused if the model, genome or settings differ.
        progress: show a progress bar on stderr.
        keep_shards: keep the finished shards' files after a complete run.
        shard_windows: windows per shard (the unit of work, of resuming and of sharing out
            between processes).
        chunk_bases: bases read from the genome at a time.
    """

    force: bool = setting(False, "--force")
    resume: bool = setting(False, "--resume")
    progress: bool = setting(True, None)
    keep_shards: bool = setting(False, "--keep-shards")
    shard_windows: int = setting(SHARD_WINDOWS, "--shard-windows", keep=True)
    chunk_bases: int = setting(1_000_000, None)


_PARTS = {"scan": ScanSpec, "compute": ComputeOptions, "run": RunOptions}


@dataclass(frozen=True)
class ScanSettings:
    """Everything a scan is asked to do: ``scan``, ``compute`` and ``run`` (see each class).

    :meth:`of` builds one from the fields of all three by name, as the CLI gives them.
    """

    scan: ScanSpec = field(default_factory=ScanSpec)
    compute: ComputeOptions = field(default_factory=ComputeOptions)
    run: RunOptions = field(default_factory=RunOptions)

    @classmethod
    def of(cls, **options) -> ScanSettings:
        """Settings from fields of :class:`ScanSpec`, :class:`ComputeOptions` and
        :class:`RunOptions`, by name (``ScanSettings.of(stride=100, device="cpu")``)."""
        parts: dict[str, dict] = {part: {} for part in _PARTS}
        names = {f.name: part for part, c in _PARTS.items() for f in dataclasses.fields(c)}
        for name, value in options.items():
            if name not in names:
                raise TypeError(f"ScanSettings has no field {name!r}")
            parts[names[name]][name] = value
        return cls(**{part: _PARTS[part](**given) for part, given in parts.items()})


@dataclass
class ScanPlan:
    """What will be scanned: chromosomes, their stretches, and the window count."""

    window: int
    stride: int
    stretches: dict[str, list[Interval]]
    too_short: list[str] = field(default_factory=list)

    @property
    def n_windows(self) -> int:
        return sum(
            count_windows(s, e, self.window, self.stride)
            for ivs in self.stretches.values()
            for s, e in ivs
        )


def check_settings(settings: ScanSettings) -> None:
    """Refuse settings no scan can use, before anything is loaded."""
    spec = settings.scan
    if spec.stride <= 0 or (spec.window is not None and spec.window <= 0):
        raise EnhscanError("window and stride must be positive")
    call_rule(spec)
    if spec.track not in TRACK_VALUES:
        raise EnhscanError(f"--track takes {' or '.join(TRACK_VALUES)}, not {spec.track!r}")
    unknown = [f for f in spec.formats if f not in TRACK_FORMATS]
    if unknown or not spec.formats:
        raise EnhscanError(
            f"unknown track format {', '.join(unknown) or '(none)'}; use "
            f"{' and/or '.join(TRACK_FORMATS)}"
        )
    if spec.rc not in (None, "mean", "max"):
        raise EnhscanError(f"--rc takes mean or max, not {spec.rc!r}")
    if settings.run.shard_windows <= 0:
        raise EnhscanError("--shard-windows must be positive")
    settings.compute.check()


def call_rule(spec: ScanSpec) -> CallRule:
    """The calling rule ``spec`` asks for (FDR 0.05 unless another is given)."""
    try:
        return CallRule.from_options(spec.threshold, spec.call_top, spec.fdr)
    except ValueError as err:
        raise EnhscanError(str(err)) from None
