#!/usr/bin/env python3
"""Open an `enhscan genome` output folder in a real IGV (desktop, batch mode) and save a PNG.

Uses the Debian/Ubuntu `igv` package (`apt install igv xvfb`) under a virtual screen, offline:
IGV starts with a private home folder whose preferences load no default genome, then runs a
batch script: `genome` (the scan's FASTA), `load` (the folder's igv_session.xml), `goto`,
`snapshotDirectory`, `snapshot`, `exit`. About a minute.

    python tools/igv_snapshot.py TRACKS_DIR snapshot.png [--locus chr2:300,000-320,000]
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import click

IGV_JAR = Path("/usr/share/java/igv.jar")


def igv_available() -> bool:
    return IGV_JAR.exists() and shutil.which("xvfb-run") is not None and shutil.which("java")


@click.command()
@click.argument("tracks", type=click.Path(exists=True, file_okay=False))
@click.argument("png", type=click.Path(dir_okay=False))
@click.option("--locus", default=None, help="Where to look  [default: the session's locus]")
@click.option("--timeout", type=int, default=300, show_default=True)
def main(tracks: str, png: str, locus: str | None, timeout: int) -> None:
    if not igv_available():
        sys.exit("needs IGV and a virtual screen: apt install igv xvfb")
    tracks_dir = Path(tracks).resolve()
    session = tracks_dir / "igv_session.xml"
    if not session.exists():
        sys.exit(f"{session} not found: give the --out folder of enhscan genome")
    root = ET.parse(session).getroot()
    genome = root.get("genome")
    locus = locus or root.get("locus")
    png_path = Path(png).resolve()
    with tempfile.TemporaryDirectory(prefix="enhscan-igv-") as tmp:
        home = Path(tmp) / "home"
        (home / "igv").mkdir(parents=True)
        (home / "igv" / "prefs.properties").write_text("DEFAULT_GENOME_KEY=\n")
        shots = Path(tmp) / "shots"
        shots.mkdir()
        batch = Path(tmp) / "batch.txt"
        batch.write_text(
            f"genome {genome}\nload {session}\ngoto {locus}\n"
            f"snapshotDirectory {shots}\nsnapshot snapshot.png\nexit\n"
        )
        command = [
            "xvfb-run",
            "-a",
            "java",
            f"-Duser.home={home}",
            "-Xmx2g",
            "-cp",
            str(IGV_JAR),
            "org.broad.igv.ui.Main",
            "-b",
            str(batch),
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        shot = shots / "snapshot.png"
        if not shot.exists():
            tail = (done.stdout + done.stderr)[-2000:]
            sys.exit(f"IGV wrote no snapshot (exit {done.returncode}):\n{tail}")
        png_path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, png_path)
    click.echo(json.dumps({"png": str(png_path), "locus": locus, "genome": genome}))


if __name__ == "__main__":
    main()
