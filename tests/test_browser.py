"""Browser bundles: the IGV session and the UCSC track hub next to a scan's outputs, checked
as files, with UCSC's own library (pybbi) and, where IGV is installed, in a real IGV."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import bbi
import numpy as np
import pytest

from enhscan.io.browser import guess_assembly
from enhscan.scan import ScanSettings, scan_genome

TOOLS = Path(__file__).parents[1] / "tools"


@pytest.fixture
def scanned(tmp_path, mini_fasta, tiny_classifier) -> Path:
    out = tmp_path / "tracks"
    scan_genome(
        mini_fasta,
        out,
        tiny_classifier,
        ScanSettings.of(progress=False, call_top=0.1, assembly="hg38"),
    )
    return out


def test_igv_session_points_at_the_files(scanned, mini_fasta) -> None:
    root = ET.parse(scanned / "igv_session.xml").getroot()
    assert root.tag == "Session" and root.get("version") == "8"
    assert root.get("genome") == str(mini_fasta.resolve())
    paths = [r.get("path") for r in root.iter("Resource")]
    assert paths == ["scores.bw", "calls.narrowPeak"]
    assert all((scanned / p).exists() for p in paths)
    data_range = root.find(".//DataRange")
    # The track holds -log10 p: the range starts at 0 and reaches its highest value.
    import pyBigWig

    with pyBigWig.open(str(scanned / "scores.bw")) as bw:
        top = max(bw.header()["maxVal"], 3.0)
    assert data_range.get("minimum") == "0.0" and float(data_range.get("maximum")) >= top
    names = [t.get("name") for t in root.iter("Track")]
    assert names == ["enhscan -log10 p", "enhscan calls (top 10% of windows)"]
    # The session opens on the best call, 5 kb either side.
    calls = [line.split("\t") for line in (scanned / "calls.narrowPeak").read_text().splitlines()]
    best = max(calls, key=lambda c: float(c[6]))
    chrom, span = root.get("locus").split(":")
    start, end = (int(x) for x in span.split("-"))
    assert chrom == best[0] and start <= int(best[1]) + 1 and end >= int(best[2])


def test_track_hub_files_and_bigbed_calls(scanned) -> None:
    hub = dict(line.split(" ", 1) for line in (scanned / "hub.txt").read_text().splitlines())
    assert hub["genomesFile"] == "genomes.txt" and hub["hub"] == "enhscan"
    assert (scanned / "genomes.txt").read_text() == "genome hg38\ntrackDb trackDb.txt\n"
    stanzas = (scanned / "trackDb.txt").read_text().strip().split("\n\n")
    urls = [dict(line.split(" ", 1) for line in s.splitlines())["bigDataUrl"] for s in stanzas]
    assert urls == ["scores.bw", "calls.bb"]
    # The bigBed holds exactly the calls, read back with UCSC's own library.
    calls = [line.split("\t") for line in (scanned / "calls.narrowPeak").read_text().splitlines()]
    got = []
    for chrom in sorted({c[0] for c in calls}):
        got += [
            tuple(map(str, row))
            for row in bbi.fetch_intervals(str(scanned / "calls.bb"), chrom, 0, 10**9)
        ]
    assert sorted(got) == sorted(tuple(c) for c in calls)
    # p and q of every call are there, and the hub declares the calls as bigNarrowPeak.
    assert all(float(c[7]) >= 0 and float(c[8]) >= 0 for c in calls)
    assert "type bigNarrowPeak" in stanzas[1] and "type bigWig 0 " in stanzas[0]
    import pybigtools

    fields = [
        line.split()[1].rstrip(";")
        for line in pybigtools.open(str(scanned / "calls.bb")).sql().splitlines()
        if line.strip().startswith(("string", "uint", "int", "float", "char"))
    ]
    assert fields == [
        "chrom",
        "chromStart",
        "chromEnd",
        "name",
        "score",
        "strand",
        "signalValue",
        "pValue",
        "qValue",
        "peak",
    ]
    header = (scanned / "calls.bb").read_bytes()[:36]
    assert int.from_bytes(header[32:34], "little") == 10  # fieldCount
    assert int.from_bytes(header[34:36], "little") == 6  # definedFieldCount: BED6 + 4
    record = json.loads((scanned / "run.json").read_text())
    assert record["browser"]["ucsc_assembly"] == "hg38"
    assert not record["browser"]["assembly_guessed"]


def test_no_calls_means_no_bigbed(tmp_path, mini_fasta, tiny_classifier) -> None:
    out = tmp_path / "none"
    scan_genome(mini_fasta, out, tiny_classifier, ScanSettings.of(progress=False, threshold=1.0))
    assert (out / "calls.narrowPeak").read_text() == ""
    assert not (out / "calls.bb").exists()
    assert "calls.bb" not in (out / "trackDb.txt").read_text()


@pytest.mark.parametrize(
    "name, db",
    [
        ("hg38.fa", "hg38"),
        ("GRCh37_chr20.fa.gz", "hg19"),
        ("mm10.2bit", "mm10"),
        ("yeast_R64-1-1.fa", "sacCer3"),
        ("my_genome.fa", None),
    ],
)
def test_guess_assembly(name, db) -> None:
    assert guess_assembly(name) == db


def _igv_ready() -> bool:
    sys.path.insert(0, str(TOOLS))
    try:
        from igv_snapshot import igv_available
    finally:
        sys.path.pop(0)
    return bool(igv_available())


@pytest.mark.skipif(not _igv_ready(), reason="IGV not installed (apt install igv xvfb)")
def test_a_real_igv_draws_the_track_and_the_calls(scanned, tmp_path) -> None:
    import matplotlib.image

    png = tmp_path / "igv.png"
    subprocess.run(
        [sys.executable, str(TOOLS / "igv_snapshot.py"), str(scanned), str(png)],
        check=True,
        timeout=600,
    )
    pixels = (matplotlib.image.imread(png)[..., :3] * 255).astype(int)
    r, g, b = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    score_blue = (abs(r - 0) < 40) & (abs(g - 90) < 40) & (abs(b - 180) < 40)
    call_red = (r > 150) & (g < 130) & (b < 130)
    assert score_blue.sum() > 1000, "no score track drawn"
    assert call_red.sum() > 100, "no calls drawn"
    assert np.unique(pixels.reshape(-1, 3), axis=0).shape[0] > 20  # not a blank or error page
