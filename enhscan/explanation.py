"""Explaining calls (``enhscan explain``): per-base attributions of the window centred on each
region's summit, by in-silico mutagenesis (:mod:`enhscan.attribution`).

Regions come from a scan's output folder (its calls, the best ``top`` by probability) or from
any BED / narrowPeak. Outputs, in the output folder::

    attribution.bw        per-base attribution over each explained window (a base covered
                          by several windows takes the value of the window whose centre is
                          nearest, as a scan's track does)
    regions/NAME.png      the window's attribution, the call, and a logo of the strongest
                          stretch
    attribution.tsv       per region: where, score, the strongest stretch and its sequence
    motifs.bed            known motifs in the stretches of high attribution
                          (:mod:`enhscan.motifs`): BED6 + p-value, attribution support, region
    motif_summary.tsv     per motif: the regions it was found in, its best p-value
    igv_session.xml       IGV opens the scan's track and calls (or the BED) with the
                          attribution below, at the first region
    hub.txt, ...          a UCSC track hub of the same (the scan's files by relative URL)
    explain.json          the run record
"""

from __future__ import annotations

import logging
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from enhscan.attribution import (
    Attribution,
    gradient_input,
    input_gradients,
    ism,
    strongest_stretch,
)
from enhscan.errors import EnhscanError
from enhscan.intervals import centred_start
from enhscan.io.atomic import atomic_output, check_output_folder, make_output_folder, write_json
from enhscan.io.peaks import Peak

log = logging.getLogger(__name__)

#: Regions scored together: their edited windows go to the engine as one list.
GROUP = 4
METHODS = ("ism", "gradient", "both")
OUTPUTS = ("attribution.bw", "attribution.tsv", "explain.json", "regions", "motifs.bed",
           "igv_session.xml", "hub.txt")  # fmt: skip


@dataclass(frozen=True)
class ExplainOptions:
    """What to explain and how (see ``enhscan explain -h``).

    Attributes:
        top: from a scan's folder, the best this many calls (by probability).
        method: ``ism`` (in-silico mutagenesis), ``gradient`` (gradient x input, the fast
            approximation) or ``both`` (the ISM written, and the two compared per region:
            their Pearson correlation in the table and the record).
        window: window width (None: the model's).
        rc: ``mean`` or ``max`` of both strands; None: the forward strand.
        task: a multi-task model's task (None: ``any``).
        logo_width: bases in the logo of the strongest stretch.
        motifs: ``jaspar`` (JASPAR CORE vertebrates, with pyjaspar installed), a ``.jaspar``
            or ``.meme`` file, or None / ``none`` for no motif names.
        motif_pvalue: the largest p-value of a motif hit kept.
        progress: a progress bar on stderr.
        force: overwrite an earlier explanation in the output folder.
    """

    top: int = 10
    method: str = "ism"
    window: int | None = None
    rc: str | None = None
    task: str | None = None
    logo_width: int = 30
    motifs: str | None = "jaspar"
    motif_pvalue: float = 1e-4
    progress: bool = True
    force: bool = False


@dataclass(frozen=True)
class Region:
    """A region to explain and the window cut around its summit (0-based, half-open)."""

    peak: Peak
    start: int
    end: int
    label: str


def explain(
    source: str | os.PathLike,
    genome_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    model,
    options: ExplainOptions | None = None,
    compute=None,
) -> dict | None:
    """Explain each region of ``source`` (a scan's output folder, or a BED) and write the
    outputs of the module docstring to ``out_dir``; return the run record.

    Under ``accelerate launch`` each process explains its share of the groups of regions
    and saves them as shards beside ``out_dir``; the main process writes the outputs and
    returns the run record (the others return None).
    """
    from enhscan.backend import ComputeOptions
    from enhscan.io.fasta import open_genome
    from enhscan.model.folder import Classifier, load_classifier
    from enhscan.processes import Processes
    from enhscan.scan.run import load_scorer
    from enhscan.scan.shards import ShardStore

    options = options or ExplainOptions()
    _check_options(options)
    started, out_dir = time.time(), Path(out_dir)
    motifs = _motifs(options)  # a bad motif file is refused before the long part
    compute = compute or ComputeOptions()
    procs = Processes.current(cpu=compute.one_named_device)
    classifier = model if isinstance(model, Classifier) else load_classifier(model)
    if options.method != "ism":
        input_gradients(classifier)  # a family without them is refused before any scoring
    window = options.window or classifier.metadata.window
    store = ShardStore(out_dir.parent, f".{out_dir.name}.explain-shards")
    with open_genome(genome_path) as genome:

        def check() -> None:  # the inputs are read before anything is written
            _check_out(out_dir, options.force)
            _peaks(source, genome, options.top)
            store.create({"format": 1})

        procs.on_main(check)
        regions = _unique([_window(p, window, genome.lengths[p.chrom])
                           for p in _peaks(source, genome, options.top)])  # fmt: skip
        if procs.is_main:
            _warn_unknown_bases(genome, regions)
        _, scorer = load_scorer(classifier, compute, options.task, procs.device)
        try:
            _explain_share(procs, classifier, scorer, genome, regions, store, options)
            procs.wait_for_everyone()
            if not procs.is_main:
                return None
            results, agreement = _gather(store, genome, regions)
        finally:
            if procs.is_main:
                store.remove()  # an explanation is not resumed: never leave shards behind
        _clear_old(out_dir, options.force)
        make_output_folder(out_dir)
        _write_track(out_dir / "attribution.bw", results, genome.lengths)
    seconds = time.time() - started
    return _finish(out_dir, source, genome_path, classifier, scorer, options, results,
                   agreement, motifs, seconds, procs.world)  # fmt: skip


def _warn_unknown_bases(genome, regions) -> None:
    """Say which windows are more than 10% N or other non-ACGT bases: a scan skips such
    windows, and their attributions mean little."""
    from enhscan.sequence import count_non_acgt

    unknown = [
        r.label
        for r in regions
        if count_non_acgt(genome.fetch(r.peak.chrom, r.start, r.end)) > 0.1 * (r.end - r.start)
    ]
    if unknown:
        log.warning(
            "%d of %d windows are more than 10%% N or other non-ACGT bases (%s): a scan skips "
            "such windows, and their attributions mean little",
            len(unknown), len(regions), ", ".join(unknown[:5]) + (", ..." * (len(unknown) > 5)),
        )  # fmt: skip


def _check_options(options: ExplainOptions) -> None:
    from enhscan.model.metadata import ALL_TASKS

    if options.method not in METHODS:
        raise EnhscanError(f"--method takes {', '.join(METHODS)}, not {options.method!r}")
    if options.task == ALL_TASKS:
        raise EnhscanError("an explanation is of one task: give one --task")
    if options.rc is not None and options.method != "ism":
        raise EnhscanError("--rc is for --method ism (gradient x input reads one strand)")
    if options.top < 1:
        raise EnhscanError(f"--top must be at least 1, not {options.top}")


def _clear_old(out_dir: Path, force: bool) -> None:
    """With ``force``, drop an earlier explanation's files, so none is left stale."""
    import shutil

    if not force or not out_dir.is_dir():
        return
    shutil.rmtree(out_dir / "regions", ignore_errors=True)
    for name in (*OUTPUTS, "motif_summary.tsv", "genomes.txt", "trackDb.txt"):
        if (out_dir / name).is_file():
            (out_dir / name).unlink()


def _explain_share(procs, classifier, scorer, genome, regions, store, options) -> None:
    """Explain this process's share of the groups of regions, saving each group as a shard:
    per region its score, its attribution and the gradient's correlation (or NaN)."""
    from tqdm import tqdm

    from enhscan.scan.shards import Shard

    bar = tqdm(total=len(regions), unit="region", desc="explaining", file=sys.stderr,
               disable=not options.progress or not procs.is_main)  # fmt: skip
    for k, lo in enumerate(range(0, len(regions), GROUP)):
        if k % procs.world != procs.rank:
            continue
        group = regions[lo : lo + GROUP]
        seqs = [genome.fetch(r.peak.chrom, r.start, r.end).upper() for r in group]
        attrs, r = _attribute(classifier, scorer, seqs, options)
        r = r or [float("nan")] * len(attrs)
        values = np.concatenate(
            [[a.score, *a.attribution, c] for a, c in zip(attrs, r, strict=True)]
        )
        store.save(Shard.of(k, "explain", lo, len(values)), values)
        bar.update(len(group) * procs.world)
    bar.close()


def _gather(store, genome, regions) -> tuple[list[tuple[Region, Attribution]], list[float]]:
    """The attributions of every region from the shards, in region order."""
    from enhscan.scan.shards import Shard

    results, agreement = [], []
    empty = np.zeros((0, 4), dtype=np.float32)
    for k, lo in enumerate(range(0, len(regions), GROUP)):
        group = regions[lo : lo + GROUP]
        count = sum(r.end - r.start + 2 for r in group)
        values = store.load(Shard.of(k, "explain", lo, count))
        at = 0
        for region in group:
            n = region.end - region.start
            seq = genome.fetch(region.peak.chrom, region.start, region.end).upper()
            attribution = values[at + 1 : at + 1 + n].astype(np.float32)
            results.append((region, Attribution(seq, float(values[at]), empty, attribution)))
            agreement.append(float(values[at + 1 + n]))  # NaN: not measured, or undefined
            at += n + 2
    return results, agreement


def _finish(out_dir, source, genome_path, classifier, scorer, options, results, agreement,
            motifs, seconds, processes) -> dict:  # fmt: skip
    """The table, figures, motifs, session and run record (main process)."""
    _write_table(out_dir / "attribution.tsv", results, options.logo_width, agreement)
    _write_figures(out_dir / "regions", results, options.logo_width)
    motif_counts = _write_motifs(out_dir, results, motifs, options) if motifs else None
    if results:
        _write_session(out_dir, Path(source), genome_path, results[0][0])
    record = _record(source, genome_path, classifier, scorer, options, results, seconds)
    record["motifs"], record["processes"] = motif_counts, processes
    if options.method == "both" and not np.isnan(agreement).all():
        record["gradient_vs_ism_pearson"] = {
            "mean": round(float(np.nanmean(agreement)), 4),
            "min": round(float(np.nanmin(agreement)), 4),
            "max": round(float(np.nanmax(agreement)), 4),
        }
    write_json(out_dir / "explain.json", record)
    return record


def project(
    source: str | os.PathLike,
    genome_path: str | os.PathLike,
    model,
    options: ExplainOptions | None = None,
    compute=None,
) -> dict:
    """What :func:`explain` would cost, from timing the edits of the first region on this
    device (after one warm-up batch); nothing is written.

    Returns:
        ``{"regions", "windows", "windows_per_second", "projected_seconds"}``.
    """
    from enhscan.attribution import edited, edits
    from enhscan.backend import ComputeOptions
    from enhscan.io.fasta import open_genome
    from enhscan.scan.run import load_scorer

    options = options or ExplainOptions()
    classifier, scorer = load_scorer(model, compute or ComputeOptions(), options.task)
    window = options.window or classifier.metadata.window
    with open_genome(genome_path) as genome:
        peaks = _peaks(source, genome, options.top)
        regions = [_window(p, window, genome.lengths[p.chrom]) for p in peaks]
        first = regions[0]
        seq = genome.fetch(first.peak.chrom, first.start, first.end).upper()
    sample = edited(seq, edits(seq)[: 4 * scorer.batch_size])
    scorer.score(sample[: scorer.batch_size], rc=options.rc)  # warm-up
    began = time.perf_counter()
    scorer.score(sample, rc=options.rc)
    rate = len(sample) / max(time.perf_counter() - began, 1e-9)
    per_region = 1 + 3 * window if options.method != "gradient" else 1
    windows = per_region * len(regions)
    return {
        "regions": len(regions),
        "windows": windows,
        "windows_per_second": round(rate, 1),
        "projected_seconds": round(windows / rate, 1) if options.method != "gradient" else None,
    }


def _attribute(classifier, scorer, seqs, options) -> tuple[list[Attribution], list[float]]:
    """The attributions ``options.method`` asks for, and with ``both`` the Pearson
    correlation of gradient x input with ISM per window."""
    if options.method == "gradient":
        scores = scorer.score(seqs, rc=options.rc)
        grads = gradient_input(classifier, seqs, scorer.task)
        empty = np.zeros((0, 4), dtype=np.float32)
        return [Attribution(s, float(p), empty, g)
                for s, p, g in zip(seqs, scores, grads, strict=True)], []  # fmt: skip
    attrs = ism(scorer, seqs, options.rc)
    if options.method == "ism":
        return attrs, []
    grads = gradient_input(classifier, seqs, scorer.task)
    return attrs, [
        float(np.corrcoef(a.attribution, g)[0, 1]) for a, g in zip(attrs, grads, strict=True)
    ]


def _check_out(out_dir: Path, force: bool) -> Path:
    if out_dir.exists() and not out_dir.is_dir():
        raise EnhscanError(f"--out {out_dir} is a file; give a folder for the outputs")
    check_output_folder(out_dir)
    existing = [name for name in OUTPUTS if (out_dir / name).exists()]
    if existing and not force:
        raise EnhscanError(f"{out_dir} already holds {', '.join(existing)}; use --force")
    return out_dir


def _peaks(source, genome, top: int) -> list[Peak]:
    """The regions of a scan's folder (its best ``top`` calls) or of a BED, on ``genome``."""
    from enhscan.io.bed import read_calls
    from enhscan.io.peaks import read_peaks

    path = Path(source)
    if path.is_dir():
        calls = path / "calls.narrowPeak"
        if not calls.exists():
            raise EnhscanError(
                f"{path} has no calls.narrowPeak; give a scan's --out folder or a BED"
            )
        if calls.stat().st_size == 0:
            raise EnhscanError(
                f"{calls} holds no calls; nothing to explain (scan again with a higher --fdr or "
                "--call-top, or give a BED)"
            )
        peaks = read_peaks(calls, genome.lengths, genome_name=str(genome.path))
        signal = [c.signal for c in read_calls(calls)]
        order = sorted(range(len(peaks)), key=lambda i: -signal[i])[:top]
        return [peaks[i] for i in order]
    if not path.is_file():
        raise EnhscanError(f"{path} does not exist; give a scan's --out folder or a BED")
    return read_peaks(path, genome.lengths, genome_name=str(genome.path))


def _window(peak: Peak, window: int, length: int) -> Region:
    start = centred_start(peak.summit, window, length)
    name = peak.name if peak.name not in ("", ".") else None
    label = name or f"{peak.chrom}_{peak.start + 1}-{peak.end}"
    return Region(peak, start, min(start + window, length), label)


def _unique(regions: list[Region]) -> list[Region]:
    """The regions with labels made unique (``name``, ``name_2``, ...): each names a file."""
    from dataclasses import replace

    seen: dict[str, int] = {}
    out = []
    for region in regions:
        seen[region.label] = seen.get(region.label, 0) + 1
        if seen[region.label] > 1:
            region = replace(region, label=f"{region.label}_{seen[region.label]}")
        out.append(region)
    return out


def _write_track(path: Path, results, chrom_lengths: dict[str, int]) -> None:
    """Per-base attribution of every window; where windows overlap, each base takes the
    value of the window whose centre is nearest."""
    from enhscan.io.bigwig import BigWigWriter

    by_chrom: dict[str, list] = {}
    for region, attr in results:
        by_chrom.setdefault(region.peak.chrom, []).append((region, attr))
    with atomic_output(path) as tmp:
        writer = BigWigWriter(tmp, list(chrom_lengths.items()))
        try:
            for chrom in chrom_lengths:
                if chrom in by_chrom:
                    starts, values = _nearest_centre(by_chrom[chrom])
                    writer.add(chrom, starts, starts + 1, values)
        finally:
            writer.close()


def _nearest_centre(windows) -> tuple[np.ndarray, np.ndarray]:
    """Bases covered by ``windows`` (sorted) and each one's value from the window whose
    centre is nearest."""
    lo = min(r.start for r, _ in windows)
    hi = max(r.end for r, _ in windows)
    values = np.full(hi - lo, np.nan, dtype=np.float32)
    distance = np.full(hi - lo, np.inf)
    for region, attr in windows:
        span = np.arange(region.start, region.end)
        near = np.abs(span - (region.start + region.end) / 2)
        better = near < distance[span - lo]
        values[span[better] - lo] = attr.attribution[better]
        distance[span[better] - lo] = near[better]
    covered = ~np.isnan(values)
    return np.flatnonzero(covered) + lo, values[covered]


def _write_table(path: Path, results, width: int, agreement: list[float]) -> None:
    header = ("region", "chrom", "start", "end", "score", "stretch_start", "stretch_end",
              "stretch", "stretch_attribution", "gradient_vs_ism")  # fmt: skip
    with atomic_output(path) as tmp, open(tmp, "w") as out:
        out.write("\t".join(header) + "\n")
        for k, (region, attr) in enumerate(results):
            at = strongest_stretch(attr.attribution, width)
            stretch = attr.seq[at : at + width]
            total = float(attr.attribution[at : at + width].sum())
            r = "." if np.isnan(agreement[k]) else f"{agreement[k]:.4f}"
            out.write(f"{region.label}\t{region.peak.chrom}\t{region.start}\t{region.end}\t"
                      f"{attr.score:.6g}\t{region.start + at}\t{region.start + at + len(stretch)}\t"
                      f"{stretch}\t{total:.6g}\t{r}\n")  # fmt: skip


def _motifs(options: ExplainOptions) -> list | None:
    """The motifs to name, or None: none asked for, or JASPAR asked for by default and
    pyjaspar missing (said once)."""
    from enhscan.motifs import load_motifs

    if options.motifs in (None, "none"):
        return None
    try:
        return load_motifs(options.motifs)
    except EnhscanError as err:
        if options.motifs != "jaspar":
            raise
        log.warning("%s; the attributions are written without motif names", err)
        return None


def _write_motifs(out_dir: Path, results, motifs: list, options: ExplainOptions) -> dict:
    """``motifs.bed`` and ``motif_summary.tsv``; what was matched."""
    from enhscan.motifs import match

    rows, found = [], {}
    for region, attr in results:
        for hit in match(attr.seq, attr.attribution, motifs, options.motif_pvalue):
            start, end = region.start + hit.start, region.start + hit.end
            score = min(1000, int(-10 * np.log10(hit.pvalue)))
            rows.append((region.peak.chrom, start, end, f"{hit.motif.id}_{hit.motif.name}",
                         score, hit.strand, hit.pvalue, hit.support, region.label))  # fmt: skip
            seen = found.setdefault(hit.motif.id, [hit.motif.name, set(), 1.0])
            seen[1].add(region.label)
            seen[2] = min(seen[2], hit.pvalue)
    with atomic_output(out_dir / "motifs.bed") as tmp, open(tmp, "w") as out:
        for c, s, e, name, score, strand, p, support, label in rows:
            out.write(
                f"{c}\t{s}\t{e}\t{name}\t{score}\t{strand}\t{p:.3g}\t{support:.6g}\t{label}\n"
            )
    ranked = sorted(found.items(), key=lambda kv: (-len(kv[1][1]), kv[1][2]))
    with atomic_output(out_dir / "motif_summary.tsv") as tmp, open(tmp, "w") as out:
        out.write("motif\tname\tregions\tbest_pvalue\tregion_names\n")
        for motif_id, (name, labels, best) in ranked:
            out.write(
                f"{motif_id}\t{name}\t{len(labels)}\t{best:.3g}\t{','.join(sorted(labels))}\n"
            )
    return {"source": str(options.motifs), "motifs": len(motifs), "hits": len(rows),
            "pvalue": options.motif_pvalue}  # fmt: skip


def _write_session(out_dir: Path, source: Path, genome_path, first: Region) -> None:
    """An IGV session beside the outputs: the scan's track and calls (or the BED given), and
    the attribution below them, opening at the first region's window."""
    import json

    from enhscan.io.browser import TrackStyle, guess_assembly, write_igv_session, write_track_hub

    attribution = ("attribution.bw", "enhscan attribution (per base)")
    locus = f"{first.peak.chrom}:{first.start + 1}-{first.end}"
    if source.is_dir():
        record = (
            json.loads((source / "run.json").read_text()) if (source / "run.json").exists() else {}
        )
        probability = record.get("calling", {}).get("track") == "probability"
        style = TrackStyle(
            "enhscan probability" if probability else "enhscan -log10 p",
            "the scan's track",
            1.0 if probability else 5.0,
            "enhscan calls",
        )
        bigwig = source / "scores.bw"
        scan_track = bigwig if bigwig.exists() else source / "scores.bedGraph"
        track = os.path.relpath(scan_track, out_dir)
        calls = os.path.relpath(source / "calls.narrowPeak", out_dir)
        write_igv_session(out_dir / "igv_session.xml", genome_path, locus, track, calls, style,
                          extra=(attribution,))  # fmt: skip
        if not bigwig.exists():
            return  # UCSC hubs read only indexed binary files: no hub for a bedGraph scan
        bigbed = source / "calls.bb"
        calls_bb = os.path.relpath(bigbed, out_dir) if bigbed.exists() else None
        assembly = record.get("browser", {}).get("ucsc_assembly") or "UNKNOWN"
        write_track_hub(out_dir, assembly, track, calls_bb, source.name, style,
                        extra=(attribution,), record="explain.json")  # fmt: skip
        return
    # Attributions are signed, and their size depends on the model: scaled to the data.
    style = TrackStyle(attribution[1], "per-base attribution", 1.0, "regions explained")
    regions = os.path.relpath(source, out_dir)
    write_igv_session(out_dir / "igv_session.xml", genome_path, locus, attribution[0], regions,
                      style, autoscale=True)  # fmt: skip
    assembly = guess_assembly(genome_path) or "UNKNOWN"
    write_track_hub(out_dir, assembly, attribution[0], None, Path(source).name, style,
                    record="explain.json", autoscale=True)  # fmt: skip


def _write_figures(folder: Path, results, width: int) -> None:
    from enhscan.plots import plot_attribution

    folder.mkdir(parents=True, exist_ok=True)
    for region, attr in results:
        at = strongest_stretch(attr.attribution, width)
        name = "".join(c if c.isalnum() or c in "._-" else "_" for c in region.label)
        call = (region.peak.start, region.peak.end)
        plot_attribution(attr, region.peak.chrom, region.start, call, at, width,
                         folder / f"{name}.png")  # fmt: skip


def _windows_scored(seq: str, method: str) -> int:
    """Forward passes of one region: the window and each of its edits (ISM), or one."""
    from enhscan.attribution import edits

    return 1 if method == "gradient" else 1 + len(edits(seq))


def _record(source, genome_path, classifier, scorer, options, results, seconds) -> dict:
    from enhscan.versions import __version__, package_versions

    return {
        "enhscan_version": __version__,
        "command": " ".join(sys.argv),
        "source": str(Path(source).resolve()),
        "genome": str(Path(genome_path).resolve()),
        "model": {"identity": classifier.identity, "task": scorer.task},
        "options": asdict(options),
        "backend": scorer.backend.describe(),
        "attribution": "ism: the window's score minus the mean over each base's substitutions; "
        "gradient: gradient x input (enhscan.model.gradients)",
        "regions": len(results),
        "windows_scored": sum(_windows_scored(a.seq, options.method) for _, a in results),
        "method": options.method,
        "seconds": round(seconds, 3),
        "seconds_per_region": round(seconds / len(results), 3) if results else None,
        "versions": package_versions("pyBigWig"),
    }
