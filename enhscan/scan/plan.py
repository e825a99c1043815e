"""What a scan covers: the stretches of each chosen chromosome (after --chroms, --regions and
--exclude) and their cut into shards. Coordinates are 0-based, half-open."""

from __future__ import annotations

import logging

from enhscan.errors import EnhscanError
from enhscan.intervals import subtract, widen
from enhscan.io.bed import BedIntervals, read_bed
from enhscan.io.fasta import Genome
from enhscan.naming import select_chroms
from enhscan.scan.settings import ScanPlan, ScanSpec
from enhscan.scan.shards import Shard, make_shards

log = logging.getLogger(__name__)


def plan_scan(
    genome: Genome,
    window: int,
    stride: int,
    chroms: list[str] | None = None,
    regions: BedIntervals | None = None,
    exclude: BedIntervals | None = None,
) -> ScanPlan:
    """Decide the stretches to tile on each chosen chromosome (FASTA order).

    A chromosome shorter than one window is left out (listed in ``too_short``). With
    ``regions``, only they are scanned, each widened to at least one window; ``exclude`` is
    then cut out, and pieces shorter than a window are left unscored.
    """
    names = genome.names
    if chroms:
        try:
            names = select_chroms(names, chroms)
        except ValueError as err:
            shown = ", ".join(genome.names[:8]) + (" ..." if len(genome.names) > 8 else "")
            raise EnhscanError(
                f"--chroms {err} matches no sequence in {genome.path}; it has {shown}"
            ) from None
    plan = ScanPlan(window, stride, {})
    for chrom in names:
        length = genome.lengths[chrom]
        if length < window:
            plan.too_short.append(chrom)
            continue
        if regions is not None:
            wanted = regions.by_chrom.get(chrom)
            if not wanted:
                continue
            stretches = widen(wanted, window, length)
        else:
            stretches = [(0, length)]
        if exclude is not None and chrom in exclude.by_chrom:
            stretches = subtract(stretches, exclude.by_chrom[chrom])
        if stretches:
            plan.stretches[chrom] = stretches
    return plan


def plan_with_shards(
    genome: Genome, window: int, spec: ScanSpec, shard_windows: int
) -> tuple[ScanPlan, list[Shard], BedIntervals | None, BedIntervals | None]:
    """The plan of ``spec`` on ``genome``, its shards, and the --regions and --exclude read."""
    regions, exclude = read_scan_beds(spec, genome)
    plan = plan_scan(genome, window, spec.stride, spec.chroms, regions, exclude)
    shards = make_shards(plan.stretches, plan.window, plan.stride, shard_windows)
    return plan, shards, regions, exclude


def read_scan_beds(
    spec: ScanSpec, genome: Genome
) -> tuple[BedIntervals | None, BedIntervals | None]:
    """The --regions and --exclude BED files of ``spec``, read against ``genome``."""
    regions = _read_regions(spec.regions, genome)
    exclude = read_bed(spec.exclude, genome.lengths, clip=True) if spec.exclude else None
    return regions, exclude


def _read_regions(path: str | None, genome: Genome) -> BedIntervals | None:
    if path is None:
        return None
    regions = read_bed(path, genome.lengths)
    if not regions.count and not regions.unmatched:
        raise EnhscanError(f"--regions {path} holds no intervals; give a BED of regions to scan")
    if regions.unmatched:
        names = ", ".join(sorted(regions.unmatched))
        if not regions.count:
            raise EnhscanError(
                f"no chromosome of --regions {path} ({names}) is in {genome.path}; check both "
                "are the same assembly"
            )
        log.warning("--regions: skipping intervals on chromosomes not in the genome: %s", names)
    return regions
