"""enhscan explain: in-silico mutagenesis against windows scored directly, a model trained here
to read one planted motif (the attribution must find it), and the outputs read back."""

from __future__ import annotations

import json

import numpy as np
import pytest

from enhscan.attribution import BASES, edited, edits, ism, strongest_stretch
from enhscan.engine import WindowScorer
from enhscan.errors import EnhscanError
from tests.conftest import run_cli

MOTIF = "TGACTCATGAGTCA"  # two AP-1 sites, head to head
RNG = np.random.default_rng(5)


def random_dna(n: int) -> str:
    return "".join(RNG.choice(list(BASES), n))


def test_ism_equals_the_edited_windows_scored_directly(tiny_classifier) -> None:
    scorer = WindowScorer(tiny_classifier)
    seqs = [random_dna(300), random_dna(300)[:150] + "N" + random_dna(149)]
    [first, second] = ism(scorer, seqs)
    assert first.scores.shape == (300, 4) and np.isnan(first.scores).sum() == 300
    assert np.isnan(second.scores).sum() == 299  # an N is changed to all four bases
    for seq, attr in zip(seqs, (first, second), strict=True):
        for i in (0, 17, 150, 299):
            for b in BASES:
                if b != seq[i]:
                    want = scorer.score([seq[:i] + b + seq[i + 1 :]])[0]
                    assert attr.scores[i, BASES.index(b)] == pytest.approx(want, abs=2e-6)
            row = attr.scores[i][~np.isnan(attr.scores[i])]
            assert attr.attribution[i] == pytest.approx(attr.score - row.mean(), abs=2e-6)
    assert len(edits("ACGT")) == 12 and edited("AC", [(1, "T")]) == ["AT"]


def planted(n: int, length: int = 200) -> tuple[list[str], np.ndarray]:
    seqs, labels = [], []
    for i in range(n):
        s = random_dna(length)
        if i % 2:
            at = int(RNG.integers(20, length - 20 - len(MOTIF)))
            s = s[:at] + MOTIF + s[at + len(MOTIF) :]
        seqs.append(s)
        labels.append(i % 2)
    return seqs, np.array(labels)


@pytest.fixture(scope="module")
def motif_model(tmp_path_factory):
    """A small CNN trained here to tell windows with the planted motif from those without."""
    from enhscan.model import new_classifier, save_classifier
    from enhscan.training.trainer import TrainSettings, fit

    model = new_classifier("cnn", window=200, seed=0, channels=[32, 32], kernel_sizes=[9, 5],
                           hidden_size=32)  # fmt: skip
    train, labels = planted(600)
    val, val_labels = planted(100)
    settings = TrainSettings(epochs=8, batch_size=32, learning_rate=3e-3, warmup_ratio=0.0,
                             patience=0, cpu=True)  # fmt: skip
    work = tmp_path_factory.mktemp("motif")
    fit(model, train, labels, val, val_labels, settings, work / "train", progress=False)
    return save_classifier(model, work / "model")


def test_the_attribution_finds_the_planted_motif(tmp_path, motif_model) -> None:
    from enhscan.model import load_classifier

    scorer = WindowScorer(load_classifier(motif_model))
    at = 90
    seqs = [random_dna(200) for _ in range(6)]
    seqs = [s[:at] + MOTIF + s[at + len(MOTIF) :] for s in seqs]
    assert scorer.score(seqs).min() > 0.8  # it learned the motif
    for attr in ism(scorer, seqs):
        inside = attr.attribution[at : at + len(MOTIF)]
        outside = np.delete(attr.attribution, np.arange(at, at + len(MOTIF)))
        assert inside.mean() > 5 * np.abs(outside).mean()
        start = strongest_stretch(attr.attribution, len(MOTIF))
        assert abs(start - at) <= 3

    # End to end: a genome carrying the motif, a BED of its region, the outputs read back.
    genome = tmp_path / "g.fa"
    chrom = random_dna(3000)
    chrom = chrom[:1500] + MOTIF + chrom[1500 + len(MOTIF) :]
    genome.write_text(f">chrT\n{chrom}\n")
    bed = tmp_path / "r.bed"
    bed.write_text("chrT\t1450\t1570\tsite\n")
    out = tmp_path / "explain"
    run_cli("explain", str(bed), "-g", str(genome), "-m", str(motif_model), "-o", str(out))
    record = json.loads((out / "explain.json").read_text())
    assert record["regions"] == 1 and record["windows_scored"] == 1 + 3 * 200
    row = (out / "attribution.tsv").read_text().splitlines()[1].split("\t")
    # The logo's 30-base stretch holds the 14-base motif.
    assert row[0] == "site" and int(row[5]) <= 1500 and int(row[6]) >= 1500 + len(MOTIF)
    import bbi

    with bbi.open(str(out / "attribution.bw")) as track:
        values = track.fetch("chrT", 1410, 1610)
    want = ism(scorer, [chrom[1410:1610]])[0].attribution  # window centred on the summit
    np.testing.assert_allclose(values, want, atol=2e-6)
    assert (out / "regions" / "site.png").stat().st_size > 0
    # JASPAR names the planted motif: an AP-1 (FOS / JUN family) hit on its bases first.
    hits = [line.split("\t") for line in (out / "motifs.bed").read_text().splitlines()]
    assert hits and any(k in hits[0][3] for k in ("FOS", "JUN")), hits[:3]
    assert 1500 - 3 <= int(hits[0][1]) and int(hits[0][2]) <= 1500 + len(MOTIF) + 3
    assert float(hits[0][6]) <= 1e-4 and float(hits[0][7]) > 0
    summary = (out / "motif_summary.tsv").read_text().splitlines()
    assert summary[0].startswith("motif\tname\tregions") and len(summary) > 1

    # The fast approximation finds the motif too, and agrees with ISM.
    run_cli("explain", str(bed), "-g", str(genome), "-m", str(motif_model), "-o", str(out),
            "--method", "both", "--force")  # fmt: skip
    agreement = json.loads((out / "explain.json").read_text())["gradient_vs_ism_pearson"]
    assert agreement["min"] > 0.5
    from enhscan.attribution import gradient_input

    for g in gradient_input(load_classifier(motif_model), seqs):
        assert g[at : at + len(MOTIF)].mean() > 5 * np.abs(np.delete(g, range(at, at + 14))).mean()


def test_a_users_motif_file(tmp_path) -> None:
    from enhscan.motifs import load_motifs, match

    meme = tmp_path / "ap1.meme"
    column = {"A": 0, "C": 1, "G": 2, "T": 3}
    rows = [" ".join("0.97" if column[b] == k else "0.01" for k in range(4)) for b in "TGACTCA"]
    meme.write_text("MEME version 4\n\nALPHABET= ACGT\n\nstrands: + -\n\n"
                    "Background letter frequencies\nA 0.25 C 0.25 G 0.25 T 0.25\n\n"
                    "MOTIF TRE my_AP1\nletter-probability matrix: alength= 4 w= 7\n"
                    + "\n".join(rows) + "\n")  # fmt: skip
    (motif,) = load_motifs(meme)
    seq = random_dna(100)
    seq = seq[:40] + "TGACTCA" + seq[47:]
    attribution = np.zeros(100)
    attribution[40:47] = 1.0
    (hit,) = match(seq, attribution, [motif], 1e-3)
    assert (hit.start, hit.end, hit.support) == (40, 47, 7.0) and hit.pvalue < 1e-3
    bad = tmp_path / "x.meme"
    bad.write_text("nothing here\n")
    with pytest.raises(EnhscanError, match="--motifs"):
        load_motifs(bad)


def test_regions_the_genome_lacks_are_refused_in_one_line(tmp_path, mini_fasta, tiny_model_dir):
    bed = tmp_path / "r.bed"
    bed.write_text("chrZ\t100\t200\n")
    result = run_cli("explain", str(bed), "-g", str(mini_fasta), "-m", str(tiny_model_dir),
                     "-o", str(tmp_path / "out"), expect=1)  # fmt: skip
    assert len(result.output.strip().splitlines()) == 1 and "chrZ" in result.output
    assert not (tmp_path / "out").exists()


def test_dnabert2_gradients_spread_each_token_over_its_bases(tiny_classifier) -> None:
    from enhscan.attribution import gradient_input

    seq = random_dna(400)
    spans = tiny_classifier.encoder.token_spans(seq)
    assert spans[0] == spans[-1] == (0, 0)
    assert [s for s, _ in spans[1:-1]] == [0] + [e for _, e in spans[1:-2]]  # contiguous
    assert spans[-2][1] == len(seq) and len(spans) == len(tiny_classifier.encoder.encode([seq])[0])
    (g,) = gradient_input(tiny_classifier, [seq])
    assert g.shape == (400,) and np.isfinite(g).all() and np.abs(g).sum() > 0
    for start, end in spans[1:-1]:
        assert np.allclose(g[start:end], g[start])  # one value per token, shared evenly


def test_a_scans_calls_explained_with_a_session_and_a_dry_run(
    tmp_path, mini_fasta, tiny_classifier, tiny_model_dir
) -> None:
    from enhscan.scan import scan_genome
    from tests.conftest import quick_settings

    scan = tmp_path / "scan"
    scan_genome(mini_fasta, scan, tiny_classifier, quick_settings(call_top=0.05))
    out = tmp_path / "explain"
    args = [str(scan), "-g", str(mini_fasta), "-m", str(tiny_model_dir), "-o", str(out)]
    dry = run_cli("explain", *args, "--top", "2", "--dry-run")
    assert "regions to explain: 2; windows to score: 6,002" in dry.output and not out.exists()
    run_cli("explain", *args, "--top", "2", "--method", "gradient", "--motifs", "none")
    session = (out / "igv_session.xml").read_text()
    assert '"../scan/scores.bw"' in session and '"../scan/calls.narrowPeak"' in session
    assert '<Resource path="attribution.bw"/>' in session
    track_db = (out / "trackDb.txt").read_text()
    assert "bigDataUrl ../scan/scores.bw" in track_db and "bigDataUrl attribution.bw" in track_db
    assert (out / "genomes.txt").read_text().startswith("genome ")
    assert "descriptionUrl explain.json" in (out / "hub.txt").read_text()
    record = json.loads((out / "explain.json").read_text())
    assert record["regions"] == 2 and record["method"] == "gradient" and record["motifs"] is None
    assert not (out / "motifs.bed").exists()


def test_two_processes_explain_as_one(tmp_path, mini_fasta, tiny_model_dir) -> None:
    import os
    import subprocess
    import sys

    bed = tmp_path / "r.bed"
    bed.write_text("".join(f"chr2\t{s}\t{s + 100}\tr{s}\n" for s in range(20000, 29000, 1000)))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for n in ("1", "2"):
        command = ["explain", str(bed), "-g", str(mini_fasta), "-m", str(tiny_model_dir),
                   "-o", str(tmp_path / n), "--method", "gradient", "--motifs", "none",
                   "--device", "cpu", "--processes", n]  # fmt: skip
        subprocess.run([sys.executable, "-m", "enhscan", "-q", *command], check=True, env=env)
    for name in ("attribution.tsv", "attribution.bw"):
        assert (tmp_path / "1" / name).read_bytes() == (tmp_path / "2" / name).read_bytes()
    assert json.loads((tmp_path / "2" / "explain.json").read_text())["processes"] == 2
    assert not list(tmp_path.glob(".*shards"))


def test_a_window_of_mostly_n_is_explained_with_a_warning(
    tmp_path, mini_fasta, tiny_model_dir, caplog
) -> None:
    from enhscan.explanation import ExplainOptions, explain

    bed = tmp_path / "r.bed"
    bed.write_text("chr2\t0\t300\tnstart\nchr2\t20000\t20100\treal\n")  # chr2 opens on 10 kb of N
    options = ExplainOptions(method="gradient", motifs=None, progress=False)
    with caplog.at_level("WARNING", logger="enhscan.explanation"):
        record = explain(bed, mini_fasta, tmp_path / "o", tiny_model_dir, options)
    assert record["regions"] == 2
    assert "1 of 2 windows are more than 10% N or other non-ACGT bases (nstart)" in caplog.text


def test_edge_cases_found_in_review(tmp_path, mini_fasta, tiny_model_dir) -> None:
    from enhscan.explanation import ExplainOptions, _write_table, explain
    from enhscan.motifs import load_motifs, match

    # A base other than A, C, G, T in a seqlet: no crash, and the hit beside it is kept.
    meme = tmp_path / "m.meme"
    meme.write_text("MEME version 4\n\nALPHABET= ACGT\n\nstrands: + -\n\n"
                    "Background letter frequencies\nA 0.25 C 0.25 G 0.25 T 0.25\n\n"
                    "MOTIF GATT\nletter-probability matrix: alength= 4 w= 4\n"
                    "0.01 0.01 0.97 0.01\n0.97 0.01 0.01 0.01\n0.01 0.01 0.01 0.97\n"
                    "0.01 0.01 0.01 0.97\n")  # fmt: skip
    seq = "A" * 38 + "NGATTACAT" + "A" * 53
    attribution = np.zeros(100)
    attribution[38:47] = 1.0
    (hit,) = match(seq, attribution, load_motifs(meme), 1e-2)
    assert (hit.start, hit.strand) == (39, "+")
    # A correlation that is undefined stays on its own row.
    bed = tmp_path / "r.bed"
    bed.write_text("chr2\t20000\t20100\t.\nchr2\t25000\t25100\t.\n")
    record = explain(bed, mini_fasta, tmp_path / "o", tiny_model_dir,
                     ExplainOptions(method="gradient", motifs=None, progress=False))  # fmt: skip
    labels = [
        r.split("\t")[0] for r in (tmp_path / "o" / "attribution.tsv").read_text().splitlines()[1:]
    ]
    assert labels == ["chr2_20001-20100", "chr2_25001-25100"] and record["regions"] == 2
    from enhscan.attribution import Attribution
    from enhscan.explanation import Region
    from enhscan.io.peaks import Peak

    peak = Peak("c", 0, 10, 5, "", "x")
    flat = Attribution("ACGTACGTAC", 0.5, np.zeros((0, 4)), np.zeros(10, dtype=np.float32))
    results = [(Region(peak, 0, 10, "a"), flat), (Region(peak, 0, 10, "b"), flat)]
    _write_table(tmp_path / "t.tsv", results, 5, [float("nan"), 0.9])
    rows = [r.split("\t")[-1] for r in (tmp_path / "t.tsv").read_text().splitlines()[1:]]
    assert rows == [".", "0.9000"]
    # Options no explanation can use are refused in one line.
    refused = ((ExplainOptions(task="all"), "one --task"),
               (ExplainOptions(method="gradient", rc="mean"), "--rc is for"))  # fmt: skip
    for options, message in refused:
        with pytest.raises(EnhscanError, match=message):
            explain(bed, mini_fasta, tmp_path / "x", tiny_model_dir, options)
    assert not list(tmp_path.glob(".*shards"))
