"""Browser bundles: an IGV session and a UCSC track hub that open a scan's files in one step.

Both point at the files by paths relative to the output folder, so the folder can be moved
or served over HTTP as a whole. The IGV session also names the genome FASTA (by absolute
path: IGV opens it as the reference).
"""

from __future__ import annotations

import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import quoteattr

from enhscan.io.atomic import atomic_output
from enhscan.io.bed import read_calls

SCORE_COLOUR = "0,90,180"
CALL_COLOUR = "200,0,0"

#: UCSC assembly names recognised in FASTA file names, for genomes.txt.
_ASSEMBLY_PATTERNS = [
    (re.compile(r"hg38|grch38", re.I), "hg38"),
    (re.compile(r"hg19|grch37", re.I), "hg19"),
    (re.compile(r"mm10|grcm38", re.I), "mm10"),
    (re.compile(r"mm39|grcm39", re.I), "mm39"),
    (re.compile(r"sacCer3|R64", re.I), "sacCer3"),
]


@dataclass(frozen=True)
class TrackStyle:
    """How the browsers show a scan's files.

    Attributes:
        name: the score track's short name.
        description: one line on what the score track's values are.
        maximum: the top of the score track's view range (its bottom is 0).
        calls_label: the calls track's name, saying the rule that made them.
    """

    name: str
    description: str
    maximum: float
    calls_label: str


def guess_assembly(fasta: str | os.PathLike) -> str | None:
    """The UCSC assembly a FASTA file name suggests (``hg38.fa`` -> ``hg38``), or None."""
    name = Path(fasta).name
    return next((db for pattern, db in _ASSEMBLY_PATTERNS if pattern.search(name)), None)


def write_igv_session(
    path: str | os.PathLike,
    genome: str | os.PathLike,
    locus: str,
    track: str,
    calls: str,
    style: TrackStyle,
    extra: tuple[tuple[str, str], ...] = (),
    autoscale: bool = False,
) -> None:
    """Write an IGV session (File > Open Session) showing the track and the calls.

    Args:
        path: the session file, in the output folder.
        genome: the reference FASTA (absolute path written).
        locus: where IGV opens, ``chrom:start-end`` (1-based, inclusive, as IGV shows it).
        track, calls: file names of the bigWig (or bedGraph) and the calls, relative to the
            session's folder.
        style: the tracks' names and the score track's range.
        extra: more bigWig tracks below the calls, ``(file name, track name)``, scaled to
            their data (``enhscan explain``'s attribution).
        autoscale: scale the main track to its data (signed values) instead of
            ``[0, style.maximum]``.
    """
    genome = str(Path(genome).resolve())
    resources = "".join(f"\n        <Resource path={quoteattr(f)}/>" for f, _ in extra)
    tracks = "".join(
        f'\n        <Track attributeKey={quoteattr(f)} autoScale="true" '
        f'clazz="org.broad.igv.track.DataSourceTrack" color="{SCORE_COLOUR}" fontSize="10" '
        f'id={quoteattr(f)} name={quoteattr(name)} renderer="BAR_CHART" visible="true" '
        'windowFunction="mean"/>'
        for f, name in extra
    )
    text = f"""<?xml version="1.0" encoding="UTF-8" standalone="no"?>
<Session genome={quoteattr(genome)} locus={quoteattr(locus)} relativePaths="true" version="8">
    <Resources>
        <Resource path={quoteattr(track)}/>
        <Resource path={quoteattr(calls)}/>{resources}
    </Resources>
    <Panel name="DataPanel">
        <Track attributeKey={quoteattr(track)} autoScale="{str(autoscale).lower()}" clazz="org.broad.igv.track.DataSourceTrack" color="{SCORE_COLOUR}" fontSize="10" id={quoteattr(track)} name={quoteattr(style.name)} renderer="BAR_CHART" visible="true" windowFunction="mean">
            <DataRange baseline="0.0" drawBaseline="true" flipAxis="false" maximum="{style.maximum:g}" minimum="0.0" type="LINEAR"/>
        </Track>
        <Track attributeKey={quoteattr(calls)} clazz="org.broad.igv.track.FeatureTrack" color="{CALL_COLOUR}" displayMode="EXPANDED" fontSize="10" id={quoteattr(calls)} name={quoteattr(style.calls_label)} visible="true"/>{tracks}
    </Panel>
</Session>
"""  # noqa: E501 - one XML element per line reads best
    with atomic_output(path) as tmp:
        tmp.write_text(text)


def write_track_hub(
    out_dir: str | os.PathLike,
    assembly: str,
    track: str,
    calls_bigbed: str | None,
    label: str,
    style: TrackStyle,
    extra: tuple[tuple[str, str], ...] = (),
    record: str = "run.json",
    autoscale: bool = False,
) -> list[str]:
    """Write a UCSC track hub (``hub.txt``, ``genomes.txt``, ``trackDb.txt``) in ``out_dir``.

    Once the folder is served over HTTP, the hub's URL (``.../hub.txt``) goes into the
    browser's Track Hubs page (My Data). UCSC reads only indexed binary files from hubs, so
    the hub shows the bigWig and the calls as bigNarrowPeak (whose p- and q-values UCSC shows
    on each call's page).

    Args:
        assembly: the UCSC assembly name (hg38, hg19, ...) the FASTA's names match.
        track, calls_bigbed: file names of the bigWig and the bigBed, in ``out_dir`` (None
            when there are no calls: the hub then has the score track only).
        label: what the scan was of, for the labels.
        style: the tracks' names and the score track's range.
        extra: more bigWig tracks, ``(file name, track name)``, scaled to their data
            (``enhscan explain``'s attribution). Paths may climb (``../scan/scores.bw``):
            UCSC resolves them against trackDb.txt's URL.
        record: the run record beside the hub (its description page).
        autoscale: scale the main track to its data (signed values).
    Returns:
        The names of the files written.
    """
    out_dir = Path(out_dir)
    files = {
        "hub.txt": (
            "hub enhscan\n"
            f"shortLabel enhscan {label}\n"
            f"longLabel enhscan enhancer scan of {label}\n"
            "genomesFile genomes.txt\n"
            "email enhscan@localhost\n"
            f"descriptionUrl {record}\n"
        ),
        "genomes.txt": f"genome {assembly}\ntrackDb trackDb.txt\n",
        "trackDb.txt": (
            "track enhscan_probability\n"
            f"bigDataUrl {track}\n"
            f"shortLabel {style.name}\n"
            f"longLabel {style.description}\n"
            f"type bigWig 0 {style.maximum:g}\n"
            f"viewLimits {-style.maximum if autoscale else 0:g}:{style.maximum:g}\n"
            f"autoScale {'on' if autoscale else 'off'}\n"
            "maxHeightPixels 100:50:16\n"
            f"color {SCORE_COLOUR}\n"
            "visibility full\n"
        ),
    }
    if calls_bigbed is not None:
        files["trackDb.txt"] += (
            "\n"
            "track enhscan_calls\n"
            f"bigDataUrl {calls_bigbed}\n"
            "shortLabel enhscan calls\n"
            f"longLabel {style.calls_label}\n"
            "type bigNarrowPeak\n"
            f"color {CALL_COLOUR}\n"
            "visibility dense\n"
        )
    for k, (path, name) in enumerate(extra):
        files["trackDb.txt"] += (
            f"\ntrack enhscan_extra_{k + 1}\n"
            f"bigDataUrl {path}\n"
            f"shortLabel {name}\n"
            f"longLabel {name}\n"
            "type bigWig\n"
            "autoScale on\n"
            "maxHeightPixels 100:50:16\n"
            f"color {SCORE_COLOUR}\n"
            "visibility full\n"
        )
    for name, text in files.items():
        with atomic_output(out_dir / name) as tmp:
            tmp.write_text(text)
    return list(files)


#: The autoSql of the calls' bigBed: the ten narrowPeak columns, as UCSC's bigNarrowPeak
#: track type reads them.
NARROWPEAK_AUTOSQL = """table enhscanCalls
"enhscan enhancer calls (narrowPeak columns)"
    (
    string chrom;        "Sequence name"
    uint   chromStart;   "Start of the call, 0-based"
    uint   chromEnd;     "End of the call, exclusive"
    string name;         "Call name, enhscan_N"
    uint   score;        "1000 x the best window's enhancer probability"
    char[1] strand;      "Always . (calls have no strand)"
    float  signalValue;  "Best window's enhancer probability"
    float  pValue;       "-log10 p of the best window against the model's background null"
    float  qValue;       "-log10 Benjamini-Hochberg q of the best window"
    int    peak;         "Summit: offset of the best window's centre from chromStart"
    )
"""
# bigBed header: definedFieldCount (uint16) at byte 34. bedToBigBed -type=bed6+4 writes 6 there
# (the standard BED fields; the other four are extra); pybigtools writes the total, 10.
_DEFINED_FIELD_COUNT_OFFSET = 34


def write_calls_bigbed(
    path: str | os.PathLike, narrowpeak: str | os.PathLike, chrom_sizes: dict[str, int]
) -> None:
    """Convert the calls (narrowPeak, sorted) to a bigNarrowPeak bigBed with pybigtools, for
    the track hub."""
    import pybigtools

    def entries():
        for call in read_calls(narrowpeak):
            yield call.chrom, call.start, call.end, call.rest

    # pybigtools wants the .bb extension, so the temporary name keeps it.
    with atomic_output(path, keep_suffix=True) as tmp:
        pybigtools.open(str(tmp), "w").write(
            dict(chrom_sizes), entries(), autosql=NARROWPEAK_AUTOSQL
        )
        with open(tmp, "r+b") as handle:
            handle.seek(_DEFINED_FIELD_COUNT_OFFSET)
            handle.write(struct.pack("<H", 6))
