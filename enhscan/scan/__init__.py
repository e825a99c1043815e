"""Scanning a genome, in parts that each do one thing:

settings   what to scan (ScanSpec), how to compute (ComputeOptions), how to run (RunOptions)
plan       the stretches of each chromosome to tile, and their cut into shards
resume     the scan's identity, and what a resumed scan must match and keeps
pipeline   read -> tokenize | model | write, overlapping on three threads
shards     the finished shards on disk (the unit of work and of resuming)
outputs    the calling, the track and the calls assembled from the shards, browser files
record     the run record, run.json
dryrun     the projected cost of a scan, from a short calibration
run        scan_genome: the parts in order, on one process or many
"""

from enhscan.backend import ComputeOptions
from enhscan.scan.run import scan_genome
from enhscan.scan.settings import RunOptions, ScanPlan, ScanSettings, ScanSpec

__all__ = ["ComputeOptions", "RunOptions", "ScanPlan", "ScanSettings", "ScanSpec", "scan_genome"]
