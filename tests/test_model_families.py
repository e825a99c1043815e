"""DNABERT (k-mer) models and any transformers classifier folder scan like DNABERT-2 ones."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from enhscan.backend import ComputeOptions
from enhscan.engine import WindowScorer
from enhscan.errors import EnhscanError
from enhscan.io.fasta import open_genome
from enhscan.model import load_classifier, new_classifier, save_classifier
from enhscan.model.dnabert_kmer import KmerEncoder, kmer_vocab
from tests.conftest import run_cli as run

RNG = np.random.default_rng(5)
SEQS = ["".join(RNG.choice(list("ACGT"), size=n)) for n in (200, 150, 200)] + ["ACGTNACGTAC"]


def plain_dnabert_folder(clf, folder):
    """``clf`` saved the way DNABERT folders come: BERT weights, config and vocab.txt only."""
    clf.network.save_pretrained(folder)
    (folder / "vocab.txt").write_text(clf.encoder.vocab_text)
    return folder


@pytest.mark.parametrize("k", [3, 4, 5, 6])
def test_kmer_encoder_tokenizes_as_dnabert_does(tmp_path, k) -> None:
    """Overlapping k-mers through BERT's own tokenizer and DNABERT's vocab.txt."""
    from transformers import BertTokenizer

    vocab = tmp_path / "vocab.txt"
    vocab.write_text(kmer_vocab(k))
    bert = BertTokenizer(str(vocab), do_lower_case=False)
    encoder = KmerEncoder(vocab.read_text())
    assert encoder.k == k and encoder.vocab_size == 5 + 4**k
    for seq in SEQS:
        kmers = " ".join(seq[i : i + k] for i in range(len(seq) - k + 1))
        assert encoder.encode([seq])[0].tolist() == bert(kmers)["input_ids"]


def test_not_a_kmer_vocab() -> None:
    with pytest.raises(EnhscanError, match="not a DNABERT k-mer vocab.txt"):
        KmerEncoder("[PAD]\n[UNK]\n[CLS]\n[SEP]\nACG\nACGT\n")


def test_dnabert_model_folder_round_trip_and_scan(tmp_path, mini_fasta) -> None:
    clf = new_classifier("dnabert-kmer", window=200, k=3, size="tiny", seed=3)
    folder = save_classifier(clf, tmp_path / "dnabert")
    assert (folder / "vocab.txt").exists() and not (folder / "tokenizer.json").exists()
    loaded = load_classifier(folder)
    assert loaded.metadata.family == "dnabert" and loaded.metadata.window == 200
    np.testing.assert_allclose(
        WindowScorer(loaded).score(SEQS), WindowScorer(clf).score(SEQS), atol=1e-6
    )
    out = tmp_path / "tracks"
    run(
        "genome",
        str(mini_fasta),
        "--model",
        str(folder),
        "--out",
        str(out),
        "--chroms",
        "chr22_32000000",
        "--stride",
        "100",
        "--track",
        "probability",
    )
    record = json.loads((out / "run.json").read_text())
    assert record["model"]["family"] == "dnabert" and record["parameters"]["window"] == 200
    import pyBigWig

    with open_genome(mini_fasta) as genome, pyBigWig.open(str(out / "scores.bw")) as bw:
        for start in (0, 5000, 12_300):
            seq = genome.fetch("chr22_32000000", start, start + 200)
            centre = start + 100
            want = WindowScorer(clf, ComputeOptions(batch_size=1)).score([seq])[0]
            assert abs(bw.values("chr22_32000000", centre, centre + 1)[0] - want) < 1e-5


def test_a_plain_dnabert_folder_loads_without_enhscan_json(tmp_path) -> None:
    clf = new_classifier("dnabert-kmer", window=500, k=6, size="tiny", seed=1)
    folder = plain_dnabert_folder(clf, tmp_path / "DNABERT6")
    loaded = load_classifier(folder)
    assert loaded.metadata.family == "dnabert"
    assert loaded.metadata.window == 515  # 510 k-mers of 6 bases: BERT's 512 positions
    np.testing.assert_allclose(
        WindowScorer(loaded).score(SEQS), WindowScorer(clf).score(SEQS), atol=1e-6
    )


def test_dnabert_window_must_fit_512_positions() -> None:
    with pytest.raises(EnhscanError, match="reads at most 512 bases"):
        new_classifier("dnabert-kmer", window=1000, k=3)


def test_train_a_dnabert_kmer_model(tmp_path) -> None:
    from tests.test_train import COHN

    out = tmp_path / "kmer"
    run(
        "train",
        *COHN,
        "--out",
        str(out),
        "--arch",
        "dnabert-kmer",
        "--k",
        "3",
        "--epochs",
        "1",
        "--batch-size",
        "16",
        "--window",
        "200",
        "--no-baseline",
    )
    model = load_classifier(out)
    assert model.metadata.family == "dnabert" and model.encoder.k == 3


def test_any_transformers_classifier_folder_scans(tmp_path, mini_fasta) -> None:
    """A BERT with its own (BPE) tokenizer, saved by transformers: no enhscan.json."""
    from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

    from enhscan.model.encoding import default_tokenizer_json

    folder = tmp_path / "nt_like"
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_file=None,
        tokenizer_object=__import__("tokenizers").Tokenizer.from_str(default_tokenizer_json()),
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        unk_token="[UNK]",
        mask_token="[MASK]",
    )
    torch.manual_seed(0)
    network = BertForSequenceClassification(
        BertConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=600,
            num_labels=2,
            pad_token_id=3,
        )
    ).eval()
    network.save_pretrained(folder)
    tokenizer.save_pretrained(folder)

    loaded = load_classifier(folder)
    assert loaded.metadata.family == "hf"
    seqs = SEQS[:3]
    with torch.no_grad():
        batch = tokenizer(seqs, padding=True, return_tensors="pt")
        want = torch.softmax(network(**batch).logits, -1)[:, 1].numpy()
    np.testing.assert_allclose(
        WindowScorer(loaded, ComputeOptions(batch_size=2)).score(seqs), want, atol=1e-5
    )

    out = tmp_path / "tracks"
    run(
        "genome",
        str(mini_fasta),
        "--model",
        str(folder),
        "--out",
        str(out),
        "--chroms",
        "chr22_32000000",
    )
    assert json.loads((out / "run.json").read_text())["model"]["family"] == "hf"


def test_fine_tune_a_local_dnabert_folder(tmp_path) -> None:
    from tests.test_train import COHN

    pretrained = new_classifier("dnabert-kmer", window=200, k=4, size="tiny", seed=2)
    folder = plain_dnabert_folder(pretrained, tmp_path / "DNABERT4")
    out = tmp_path / "tuned"
    run(
        "train",
        *COHN,
        "--out",
        str(out),
        "--base",
        str(folder),
        "--epochs",
        "1",
        "--batch-size",
        "16",
        "--window",
        "200",
        "--no-baseline",
    )
    tuned = load_classifier(out)
    assert tuned.metadata.family == "dnabert" and tuned.encoder.k == 4
    assert tuned.metadata.provenance["base"]["source"] == str(folder)


def test_the_registry_builds_saves_and_loads_every_family_it_builds(tmp_path) -> None:
    from enhscan.model.families import FAMILIES, Encoder, family_of_arch

    seqs = ["ACGT" * 100, "GGCCAATT" * 40]
    for family in FAMILIES.values():
        for arch in family.archs:
            if arch == "base":  # the 117M shape: the same code as small, too slow for here
                continue
            model = new_classifier(arch, window=400)
            assert family_of_arch(arch) is family and model.metadata.family == family.name
            assert isinstance(model.encoder, Encoder)  # the protocol every encoder keeps
            loaded = load_classifier(save_classifier(model, tmp_path / arch))
            np.testing.assert_allclose(
                WindowScorer(loaded).score(seqs), WindowScorer(model).score(seqs), atol=1e-6
            )
    with pytest.raises(EnhscanError, match="unknown architecture 'huge'; choose one of tiny"):
        new_classifier("huge")


def test_a_folder_without_enhscan_json_is_recognised_by_its_family(tmp_path) -> None:
    from enhscan.model.families import guess_family

    for arch, family in (("tiny", "dnabert2"), ("dnabert-kmer", "dnabert")):
        folder = save_classifier(new_classifier(arch, window=400), tmp_path / arch)
        (folder / "enhscan.json").unlink()
        assert guess_family(folder) == family
    assert (
        guess_family(tmp_path / "nothing-here") == "dnabert2"
    )  # whose messages say what is missing
