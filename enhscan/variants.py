"""Variant effects (``enhscan variants``): each alternate allele's reference and alternate
windows (:mod:`enhscan.alleles`) scored with the model, written back into the VCF.

Records are read and written in file order, a chunk at a time, so memory stays flat in the
number of variants. In a chunk every distinct window is scored once: the reference window of
a site is shared by its alleles, and a window repeated anywhere in the chunk costs nothing
more. The engine batches the windows by token length as in a scan.

Per allele: ``p_ref`` and ``p_alt`` (the model's enhancer probability, or the task's for a
multi-task model), ``delta = p_alt - p_ref``, the log-odds difference, and, where the model
folder holds a background null of this task, each window's p-value against it. A REF that
does not match the genome is never scored: the record gets the FILTER value
``EHS_REF_MISMATCH`` (or, with ``on_mismatch="error"``, the run stops).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from enhscan.alleles import SKIP_REASONS, Allele, allele_windows, flank_span, skip_reason
from enhscan.errors import EnhscanError
from enhscan.intervals import touches
from enhscan.io.atomic import atomic_output, make_output_folder, write_json
from enhscan.io.vcf import InfoField, ScoredVcfWriter, VariantRecord, open_variants
from enhscan.significance import empirical_pvalues, logits

log = logging.getLogger(__name__)

#: Per-record outcomes besides scoring an allele, as the run record counts them.
OUTCOMES = ("ref_mismatch", "outside_regions")

FIELDS = [
    InfoField("EHS_P_REF", "1", "Float", "enhscan: enhancer probability of the reference window"),
    InfoField("EHS_P_ALT", "A", "Float", "enhscan: enhancer probability of the alternate window"),
    InfoField("EHS_DELTA", "A", "Float", "enhscan: P_ALT - P_REF"),
    InfoField("EHS_LOGODDS", "A", "Float", "enhscan: log-odds of P_ALT minus log-odds of P_REF"),
    InfoField("EHS_SKIP", "A", "String", "enhscan: why an allele was not scored"),
]
NULL_FIELDS = [
    InfoField("EHS_PVAL_REF", "1", "Float", "enhscan: p-value of P_REF against the model's "
              "background null (random genome windows)"),
    InfoField("EHS_PVAL_ALT", "A", "Float", "enhscan: p-value of P_ALT against the null"),
]  # fmt: skip
FILTERS = {"EHS_REF_MISMATCH": "enhscan: REF does not match the genome; not scored"}
MISMATCH_CHOICES = ("skip", "error")
TSV_COLUMNS = ("chrom", "pos", "id", "ref", "alt", "status", "p_ref", "p_alt", "delta",
               "log_odds", "pval_ref", "pval_alt")  # fmt: skip


@dataclass(frozen=True)
class VariantOptions:
    """How to score variants (see ``enhscan variants -h``).

    Attributes:
        window: window width (None: the model's).
        rc: ``mean`` or ``max`` of both strands; None: the forward strand.
        task: a multi-task model's task (None: ``any``).
        regions: BED; only variants whose REF touches a region are scored and written.
        on_mismatch: ``skip`` (FILTER the record) or ``error`` (stop).
        tsv: also write a table beside the VCF.
        chunk: records scored together (memory grows with it; sharing too).
        progress: a progress bar on stderr.
        force: overwrite existing outputs (and drop an unfinished run's shards).
        resume: continue the unfinished run for these outputs, skipping its finished
            shards; refused if the variants, genome, model or settings differ.
        keep_shards: keep the shards after the outputs are written.
    """

    window: int | None = None
    rc: str | None = None
    task: str | None = None
    regions: str | None = None
    on_mismatch: str = "skip"
    tsv: bool = False
    chunk: int = 4096
    progress: bool = True
    force: bool = False
    resume: bool = False
    keep_shards: bool = False


@dataclass
class Site:
    """One record on its way through: what is scored, and what came out.

    Attributes:
        record: as read.
        chrom: the genome's name for the record's sequence.
        status: ``scored`` (every allele scored or skipped for a reason) or an outcome of
            :data:`OUTCOMES`.
        skips: per allele, why it was not scored (None: scored).
        windows: per allele, (reference window, alternate window) or None.
        p_ref, p_alt: scores, filled in by :func:`score_sites`.
    """

    record: VariantRecord
    chrom: str
    status: str = "scored"
    skips: list[str | None] = field(default_factory=list)
    windows: list[tuple[str, str] | None] = field(default_factory=list)
    p_ref: float | None = None
    p_alt: list[float | None] = field(default_factory=list)


def output_names(out: str | os.PathLike) -> dict[str, Path]:
    """The files written for ``--out X.vcf.gz``: the VCF, its index, X.json, X.tsv, X.png."""
    out = Path(out)
    name = out.name
    if not name.endswith((".vcf.gz", ".vcf.bgz")):
        raise EnhscanError(f"--out {out}: give a bgzipped VCF name ending in .vcf.gz")
    base = name.rsplit(".vcf.", 1)[0]
    return {
        "vcf": out,
        "index": Path(str(out) + ".tbi"),
        "record": out.with_name(base + ".json"),
        "tsv": out.with_name(base + ".tsv"),
        "plot": out.with_name(base + ".png"),
    }


def shard_store(out: str | os.PathLike):
    """The shard store of a run writing ``out``: hidden beside it, named after it."""
    from enhscan.scan.shards import ShardStore

    vcf = output_names(out)["vcf"]
    return ShardStore(vcf.parent, f".{vcf.name}.shards")


def prepare_site(
    record: VariantRecord, genome, chrom: str, window: int, options, cut: bool = True
) -> Site:
    """Check ``record`` against the genome and, with ``cut``, cut its alleles' windows."""
    length = genome.lengths[chrom]
    ref = record.ref
    if record.pos + len(ref) > length:
        raise EnhscanError(
            f"{record.where}: REF ends at {record.pos + len(ref):,}, past the end of {chrom} "
            f"({length:,} bp) in the genome; is it the assembly the variants were called on?"
        )
    site = Site(record, chrom)
    if not record.alts:
        site.skips = ["missing_alt"]
        return site
    if genome.fetch(chrom, record.pos, record.pos + len(ref)).upper() != ref:
        if options.on_mismatch == "error":
            raise EnhscanError(
                f"{record.where}: REF {ref[:20]} does not match the genome; give the assembly "
                "the variants were called on, or --on-mismatch skip"
            )
        site.status = "ref_mismatch"
        return site
    lo = hi = None
    for alt in record.alts:
        reason = skip_reason(ref, alt, window)
        site.skips.append(reason)
        site.windows.append(None)
        if reason is None and cut:
            allele = Allele(chrom, record.pos, ref, alt)
            if lo is None:
                lo, hi = flank_span(allele, window, length)
                stretch = genome.fetch(chrom, lo, hi).upper()
            site.windows[-1] = allele_windows(allele, stretch, lo, window, length)
    return site


def score_sites(sites: list[Site], scorer, rc: str | None) -> int:
    """Score every distinct window of ``sites`` once and fill in their scores; how many
    windows were scored."""
    index: dict[str, int] = {}
    for site in sites:
        for pair in site.windows:
            if pair is not None:
                for seq in pair:
                    index.setdefault(seq, len(index))
    if not index:
        return 0
    scores = scorer.score(list(index), rc=rc)
    for site in sites:
        site.p_alt = [None if pair is None else float(scores[index[pair[1]]])
                      for pair in site.windows]  # fmt: skip
        refs = [pair[0] for pair in site.windows if pair is not None]
        site.p_ref = float(scores[index[refs[0]]]) if refs else None
    return len(index)


def info_fields(site: Site, null: np.ndarray | None) -> dict[str, str]:
    """The INFO values of a site, formatted: nothing when no allele was scored."""
    info: dict[str, str] = {}
    if site.p_ref is not None:
        p_alt = np.array([np.nan if p is None else p for p in site.p_alt])
        delta = p_alt - site.p_ref
        odds = logits(p_alt) - logits(np.array([site.p_ref]))
        info["EHS_P_REF"] = _number(site.p_ref)
        info["EHS_P_ALT"] = ",".join(_number(v) for v in p_alt)
        info["EHS_DELTA"] = ",".join(_number(v) for v in delta)
        info["EHS_LOGODDS"] = ",".join(_number(v) for v in odds)
        if null is not None:
            info["EHS_PVAL_REF"] = _number(empirical_pvalues(np.array([site.p_ref]), null)[0])
            info["EHS_PVAL_ALT"] = ",".join(_number(v) for v in empirical_pvalues(p_alt, null))
    if any(s is not None for s in site.skips) and site.record.alts:
        info["EHS_SKIP"] = ",".join(s or "." for s in site.skips)
    return info


def _number(value: float) -> str:
    return "." if value is None or np.isnan(value) else f"{value:.6g}"


def chunks(records: Iterable[VariantRecord], size: int) -> Iterator[list[VariantRecord]]:
    """``records`` in lists of at most ``size``."""
    chunk: list[VariantRecord] = []
    for record in records:
        chunk.append(record)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def parse_region(region: str, genome) -> tuple[str, int, int]:
    """``chr20:1,000,001-1,000,200`` (1-based, inclusive, as a browser shows it) -> the
    genome's name and 0-based half-open ``(chrom, start, end)``."""
    from enhscan.naming import match_chrom

    chrom, _, span = region.replace(",", "").rpartition(":")
    first, _, last = span.partition("-")
    if not chrom or not first.isdigit() or not last.isdigit() or int(first) < 1:
        raise EnhscanError(f"--saturate {region}: give chr:start-end, 1-based (chr20:1001-1200)")
    name = match_chrom(chrom, genome.lengths)
    if name is None:
        raise EnhscanError(f"--saturate {region}: {chrom} is not in {genome.path}")
    start, end = int(first) - 1, int(last)
    if not start < end <= genome.lengths[name]:
        raise EnhscanError(
            f"--saturate {region}: need start <= end <= {genome.lengths[name]:,} ({name}'s length)"
        )
    return name, start, end


def saturation_records(genome_path, chrom: str, start: int, end: int) -> Iterator[VariantRecord]:
    """Every SNV of ``[start, end)`` on ``chrom``: a record per base with its three other
    bases as alleles (bases that are not A, C, G or T are left out)."""
    from enhscan.io.fasta import open_genome

    with open_genome(genome_path) as genome:
        seq = genome.fetch(chrom, start, end).upper()
    for offset, base in enumerate(seq):
        if base in "ACGT":
            alts = tuple(b for b in "ACGT" if b != base)
            pos = start + offset
            yield VariantRecord(chrom, pos, None, base, alts, None, f"{chrom}:{pos + 1:,}")


class ChromNames:
    """The genome's name for each name the variants use (``chr20`` for ``20``)."""

    def __init__(self, genome):
        self.genome = genome
        self.known: dict[str, str] = {}

    def knows(self, record: VariantRecord) -> bool:
        """Whether the genome has the record's sequence."""
        from enhscan.naming import match_chrom

        return (
            record.chrom in self.known or match_chrom(record.chrom, self.genome.lengths) is not None
        )

    def __call__(self, record: VariantRecord) -> str:
        name = self.known.get(record.chrom)
        if name is None:
            from enhscan.naming import match_chrom

            name = match_chrom(record.chrom, self.genome.lengths)
            if name is None:
                shown = ", ".join(self.genome.names[:6])
                raise EnhscanError(
                    f"{record.where}: {record.chrom} is not in {self.genome.path} (it has "
                    f"{shown}{', ...' if len(self.genome.names) > 6 else ''}); give the genome "
                    "the variants were called on, or --regions to score those in its regions"
                )
            self.known[record.chrom] = name
        return name


def site_values(site: Site) -> list[float]:
    """A site's scores as stored in a shard: p_ref, then p_alt of each allele (NaN where
    not scored); ``1 + len(alts)`` values for every site."""
    nan = float("nan")
    p_ref = nan if site.p_ref is None else site.p_ref
    p_alt = [nan if p is None else p for p in site.p_alt] or [nan] * len(site.record.alts)
    return [p_ref, *p_alt]


def fill_site(site: Site, values: np.ndarray) -> None:
    """Put :func:`site_values` back into ``site``."""
    site.p_ref = None if np.isnan(values[0]) else float(values[0])
    site.p_alt = [None if np.isnan(v) else float(v) for v in values[1:]]


def score_variants(
    variants,
    genome_path: str | os.PathLike,
    out: str | os.PathLike,
    model,
    options: VariantOptions | None = None,
    compute=None,
) -> dict | None:
    """Score every allele of ``variants`` and write ``out`` (a bgzipped, indexed VCF with
    the INFO fields of :data:`FIELDS`), a run record beside it, and with ``tsv`` a table.

    Records are cut into chunks of ``options.chunk``; each chunk is a shard (the unit of
    work shared out between the processes of an ``accelerate launch``, and of ``resume``),
    saved in ``.OUT.shards/`` beside the output as it is scored. When all are done the main
    process writes the outputs from them, in input order: the same files whatever the
    number of processes.

    Args:
        variants: a VCF, BCF or table path (:func:`enhscan.io.vcf.open_variants`), a list
            of records, or a function returning an iterable of them (``--saturate``).
        genome_path: the reference FASTA the variants were called on.
        out: ``X.vcf.gz``; ``X.json`` (run record), ``X.tsv`` and ``X.png`` beside it.
        model: a model folder or a loaded classifier.
        options: :class:`VariantOptions`.
        compute: :class:`enhscan.backend.ComputeOptions`.

    Returns:
        The run record; None on processes other than the main.
    """
    from enhscan.backend import ComputeOptions
    from enhscan.model.folder import Classifier, load_classifier
    from enhscan.processes import Processes

    options = options or VariantOptions()
    started = time.time()
    names = output_names(out)
    _check_inputs(variants, genome_path, options)
    compute = compute or ComputeOptions()
    procs = Processes.current(cpu=compute.one_named_device)
    classifier = model if isinstance(model, Classifier) else load_classifier(model)
    store = shard_store(out)
    scorer, done = _start(procs, classifier, compute, store, variants, genome_path, names, options)
    try:
        _score_shards(procs, scorer, store, done, variants, genome_path, options)
    except KeyboardInterrupt:
        if procs.world == 1:
            store.remove_if_empty()
        raise
    except EnhscanError as err:
        if store.remove_if_empty():  # nothing worth keeping
            raise
        raise EnhscanError(
            f"{err}; the {len(store.done())} finished shards are kept in {store.folder} (rerun "
            "with --resume once the cause is fixed)"
        ) from None
    procs.wait_for_everyone()
    if not procs.is_main:
        return None
    null = _null(classifier, scorer.task, _window(scorer, options), options.rc)
    counts = _write(store, variants, genome_path, names, options, null, classifier)
    record = _record(classifier, genome_path, variants, counts, options, scorer, null, started)
    record["processes"], record["resumed_shards"] = procs.world, len(done)
    write_json(names["record"], record)
    if not options.keep_shards:
        store.remove()
    return record


def _check_inputs(variants, genome_path, options: VariantOptions) -> None:
    """Refuse what no run can use, before the model is loaded."""
    from enhscan.model.metadata import ALL_TASKS

    if options.on_mismatch not in MISMATCH_CHOICES:
        raise EnhscanError(f"--on-mismatch takes skip or error, not {options.on_mismatch!r}")
    if options.task == ALL_TASKS:
        raise EnhscanError("variants are scored on one task: give one --task")
    for what, path in (("variants", variants), ("--genome", genome_path),
                       ("--regions", options.regions)):  # fmt: skip
        if isinstance(path, (str, os.PathLike)) and not Path(path).is_file():
            raise EnhscanError(f"{what} {path}: no such file")
    if isinstance(variants, (str, os.PathLike)):
        with open_variants(variants):  # a file htslib cannot read is refused here, not mid-run
            pass


def _window(scorer, options: VariantOptions) -> int:
    return options.window or scorer.classifier.metadata.window


def _start(procs, classifier, compute, store, variants, genome_path, names, options):
    """Decide the backend and open the shard store on the main process; every process then
    builds its scorer with the main one's choices. (scorer, shards already done)."""
    from enhscan.engine import WindowScorer, resolve_backend
    from enhscan.scan.resume import open_store
    from enhscan.scan.settings import RunOptions

    made = {}

    def decide():
        _check_outputs(names, options)
        asked = compute
        if options.resume and store.exists():
            asked = compute.continuing(store.manifest())
        backend = resolve_backend(classifier, asked, procs.device)
        made["scorer"] = scorer = WindowScorer(classifier, backend, task=options.task)
        identity = _identity(classifier, scorer, variants, genome_path, options)
        run = RunOptions(force=options.force, resume=options.resume)
        return backend.as_options(compute.device), open_store(store, identity, run)

    decided, done = procs.on_main(decide)
    if procs.is_main:
        return made["scorer"], set(done)
    backend = resolve_backend(classifier, decided, procs.device)
    return WindowScorer(classifier, backend, task=options.task), set(done)


def _identity(classifier, scorer, variants, genome_path, options: VariantOptions) -> dict:
    """What a run is, as its shard manifest records it: a resume must match it."""
    from enhscan.declared import kept_values

    source = _describe_source(variants)
    regions = _file_identity(options.regions) if options.regions else None
    return {
        "format": 1,
        "variants": source,
        "genome": _file_identity(genome_path),
        "model": classifier.identity,
        "window": _window(scorer, options),
        "rc": options.rc,
        "task": scorer.task,
        "regions": regions,
        "on_mismatch": options.on_mismatch,
        "chunk": options.chunk,
        **kept_values(scorer.backend),
    }


def _describe_source(variants):
    if isinstance(variants, (str, os.PathLike)):
        return _file_identity(variants)
    return getattr(variants, "description", "records given")


def _file_identity(path) -> list:
    """A file as a resume must find it again: where it is, its size, when it was written."""
    stat = Path(path).stat()
    return [str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns]


def _score_shards(procs, scorer, store, done, variants, genome_path, options) -> None:
    """Score this process's share of the chunks not done yet, saving each as a shard."""
    from tqdm import tqdm

    from enhscan.io.fasta import open_genome
    from enhscan.scan.shards import Shard

    window = _window(scorer, options)
    bar = tqdm(unit="variant", desc="variants", file=sys.stderr,
               disable=not options.progress or not procs.is_main)  # fmt: skip
    with open_genome(genome_path) as genome, _source(variants) as source:
        regions, chrom_of = _regions(options.regions, genome), ChromNames(genome)
        for k, chunk in enumerate(chunks(source.records, options.chunk)):
            if k % procs.world != procs.rank or k in done:
                continue
            sites = [_site(r, genome, chrom_of, window, regions, options) for r in chunk]
            windows = score_sites([s for s in sites if s.status == "scored"], scorer, options.rc)
            values = [v for site in sites for v in site_values(site)] + [float(windows)]
            store.save(Shard.of(k, "variants", k * options.chunk, len(values)), np.array(values))
            bar.update(len(chunk))
    bar.close()


def _write(store, variants, genome_path, names, options, null, classifier) -> Counter:
    """Write the outputs from the saved shards, in input order (main process)."""
    from enhscan.io.fasta import open_genome

    fields = FIELDS + (NULL_FIELDS if null is not None else [])
    meta = {"enhscanCommand": " ".join(sys.argv), "enhscanModel": classifier.identity}
    counts: Counter = Counter()
    deltas = Effects()
    window = options.window or classifier.metadata.window
    with open_genome(genome_path) as genome, _source(variants) as source:
        contigs = list(genome.lengths.items())
        writer = ScoredVcfWriter(names["vcf"], source.header, contigs, fields, FILTERS, meta)
        try:
            with _table(names["tsv"] if options.tsv else None) as table:
                regions, chrom_of = _regions(options.regions, genome), ChromNames(genome)
                for k, chunk in enumerate(chunks(source.records, options.chunk)):
                    sites = [_site(r, genome, chrom_of, window, regions, options, cut=False)
                             for r in chunk]  # fmt: skip
                    _fill_chunk(store, k, sites, options.chunk, counts)
                    for site in sites:
                        _write_site(site, writer, table, null, counts, deltas)
                _plot(deltas, names["plot"])
                counts["indexed"] = writer.close()  # the VCF last of all, then the table
        except BaseException:
            writer.abort()
            raise
    if not counts["indexed"]:
        log.warning("%s is not sorted by position: written without an index", names["vcf"])
    return counts


def _fill_chunk(store, k: int, sites: list[Site], chunk: int, counts: Counter) -> None:
    from enhscan.scan.shards import Shard

    count = sum(1 + len(site.record.alts) for site in sites) + 1
    values = store.load(Shard.of(k, "variants", k * chunk, count))
    counts["windows_scored"] += int(values[-1])
    at = 0
    for site in sites:
        n = 1 + len(site.record.alts)
        fill_site(site, values[at : at + n])
        at += n


def _site(record, genome, chrom_of, window, regions, options, cut: bool = True) -> Site:
    if regions is not None and not chrom_of.knows(record):
        return Site(record, record.chrom, status="outside_regions")  # no region lies there
    chrom = chrom_of(record)
    if regions is not None:
        if not touches(regions.get(chrom, []), record.pos, record.pos + max(len(record.ref), 1)):
            return Site(record, chrom, status="outside_regions")
    return prepare_site(record, genome, chrom, window, options, cut)


def _write_site(site: Site, writer, table, null, counts: Counter, deltas: Effects) -> None:
    counts["records"] += 1
    if site.status == "outside_regions":
        counts["outside_regions"] += 1
        return
    filters = ["EHS_REF_MISMATCH"] if site.status == "ref_mismatch" else []
    counts["ref_mismatch"] += bool(filters)
    record = site.record
    if record.line is None:  # a table's record: written under the genome's name
        record = replace(record, chrom=site.chrom)
    writer.write(record, info_fields(site, null), filters)
    for i, alt in enumerate(site.record.alts or (".",)):
        skip = site.skips[i] if i < len(site.skips) else None
        if site.status == "ref_mismatch":
            status = "ref_mismatch"
        else:
            status = skip or "scored"
            counts["alleles_scored" if skip is None else f"skipped_{skip}"] += 1
        if status == "scored":
            rec = site.record
            label = f"{rec.chrom}:{rec.pos + 1:,} {rec.ref[:8]}>{alt[:8]}"
            deltas.add(site.p_alt[i] - site.p_ref, label)
        if table is not None:
            table.write(_table_row(site, i, alt, status, null))


def _table_row(site: Site, i: int, alt: str, status: str, null) -> str:
    rec = site.record
    values = [rec.chrom, str(rec.pos + 1), rec.id or ".", rec.ref, alt, status]
    if status == "scored":
        p_ref, p_alt = site.p_ref, site.p_alt[i]
        odds = float(logits(np.array([p_alt]))[0] - logits(np.array([p_ref]))[0])
        values += [_number(p_ref), _number(p_alt), _number(p_alt - p_ref), _number(odds)]
        if null is not None:
            pvals = empirical_pvalues(np.array([p_ref, p_alt]), null)
            values += [_number(pvals[0]), _number(pvals[1])]
        else:
            values += [".", "."]
    else:
        values += ["."] * 6
    return "\t".join(values) + "\n"


@contextmanager
def _table(path: Path | None) -> Iterator:
    """The TSV beside the VCF (None: no table), written under a temporary name."""
    if path is None:
        yield None
        return
    with atomic_output(path) as tmp, open(tmp, "w") as handle:
        handle.write("\t".join(TSV_COLUMNS) + "\n")
        yield handle


def _check_outputs(names: dict[str, Path], options: VariantOptions) -> None:
    wanted = [n for k, n in names.items() if k != "tsv" or options.tsv]
    existing = [str(p) for p in wanted if p.exists()]
    if existing and not options.force:
        raise EnhscanError(f"{existing[0]} exists; use --force to overwrite, or another --out")
    make_output_folder(names["vcf"].parent)


def _source(variants):
    from contextlib import nullcontext

    from enhscan.io.vcf import VariantSource

    if isinstance(variants, (str, os.PathLike)):
        return open_variants(variants)
    records = variants() if callable(variants) else variants
    return nullcontext(VariantSource(iter(records), None))


def _regions(path: str | None, genome):
    if path is None:
        return None
    from enhscan.io.bed import read_bed

    return read_bed(path, genome.lengths, clip=True).by_chrom


def _null(classifier, task, window: int, rc: str | None):
    """The model's background sample for these windows and strands, or None."""
    from enhscan.model.null import load_null

    null = load_null(classifier.path, classifier.identity)
    if null is None or null.info.get("task") != task:
        return None
    if null.info.get("window") not in (None, window):
        return None
    return null.for_strands(rc)


class Effects:
    """Every delta (4 bytes each) and the ten strongest effects with their labels: what the
    figure needs, in memory that grows by little per allele."""

    def __init__(self, keep: int = 10):
        from array import array

        self.values = array("f")
        self.keep = keep
        self._strongest: list[tuple[float, int, float, str]] = []  # a min-heap on |delta|

    def add(self, delta: float, label: str) -> None:
        import heapq

        self.values.append(delta)
        item = (abs(delta), len(self.values), delta, label)
        if len(self._strongest) < self.keep:
            heapq.heappush(self._strongest, item)
        elif item > self._strongest[0]:
            heapq.heapreplace(self._strongest, item)

    def strongest(self) -> list[tuple[float, str]]:
        """(delta, label), strongest first."""
        return [(d, label) for _, _, d, label in sorted(self._strongest, reverse=True)]


def _plot(deltas: Effects, path: Path) -> None:
    from enhscan.plots import plot_variant_effects

    plot_variant_effects(np.frombuffer(deltas.values, dtype=np.float32), deltas.strongest(), path)


def _record(classifier, genome_path, variants, counts, options, scorer, null, started) -> dict:
    from dataclasses import asdict

    from enhscan.versions import __version__, package_versions

    wall = time.time() - started
    scored = counts["alleles_scored"]
    return {
        "enhscan_version": __version__,
        "command": " ".join(sys.argv),
        "variants": _describe_source(variants),
        "genome": str(Path(genome_path).resolve()),
        "model": {
            "path": str(classifier.path) if classifier.path else None,
            "identity": classifier.identity,
            "task": scorer.task,
        },  # fmt: skip
        "options": asdict(options),
        "backend": scorer.backend.describe(),
        "records": counts["records"],
        "alleles_scored": scored,
        "skipped": {reason: counts[f"skipped_{reason}"] for reason in SKIP_REASONS},
        "ref_mismatch": counts["ref_mismatch"],
        "outside_regions": counts["outside_regions"],
        "windows_scored": counts["windows_scored"],
        "null": null is not None,
        "indexed": bool(counts["indexed"]),
        "wall_seconds": round(wall, 3),
        "alleles_per_second": round(scored / wall, 2) if wall > 0 else None,
        "versions": package_versions("pysam", "pyfaidx"),
    }
