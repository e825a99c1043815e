"""The model folder: saving, loading, DNABERT-2 checkpoints, and the errors for broken folders."""

from __future__ import annotations

import dataclasses
import json
import pickle
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from enhscan.backend import ComputeOptions
from enhscan.engine import WindowScorer
from enhscan.errors import EnhscanError
from enhscan.model import load_classifier, save_classifier
from enhscan.model.encoding import BpeEncoder, default_tokenizer_json, pad_batch

RNG = np.random.default_rng(3)
SEQS = ["".join(RNG.choice(list("ACGT"), size=n)) for n in (1000, 1000, 640, 1000, 37, 1000, 800)]


def _dnabert2_style_folder(folder: Path, classifier, *, with_head: bool, mlm_head: bool) -> Path:
    """A folder laid out like the DNABERT-2 release: config.json with model_type bert and
    alibi_starting_size, pytorch_model.bin, tokenizer.json, and no enhscan.json."""
    folder.mkdir(parents=True)
    config = classifier.network.config.to_dict()
    config.update(
        model_type="bert",
        architectures=["BertForMaskedLM"],
        auto_map={"AutoModel": "bert_layers.BertModel"},
    )
    (folder / "config.json").write_text(json.dumps(config))
    state = dict(classifier.network.state_dict())
    if not with_head:
        state = {
            k: v for k, v in state.items() if not k.startswith(("classifier.", "bert.pooler."))
        }
    if mlm_head:
        hidden = classifier.network.config.hidden_size
        state["cls.predictions.transform.dense.weight"] = torch.zeros(hidden, hidden)
        state["cls.predictions.decoder.bias"] = torch.zeros(4096)
    torch.save(state, folder / "pytorch_model.bin")
    (folder / "tokenizer.json").write_text(default_tokenizer_json())
    return folder


def test_save_load_roundtrip_scores_identically(tmp_path, tiny_classifier):
    folder = save_classifier(tiny_classifier, tmp_path / "m")
    assert sorted(p.name for p in folder.iterdir()) == [
        "config.json",
        "enhscan.json",
        "model.safetensors",
        "tokenizer.json",
    ]
    loaded = load_classifier(folder)
    assert loaded.identity.startswith("sha256:") and loaded.identity == tiny_classifier.identity
    a = WindowScorer(tiny_classifier).score(SEQS)
    b = WindowScorer(loaded).score(SEQS)
    np.testing.assert_array_equal(a, b)
    assert loaded.metadata == tiny_classifier.metadata


def test_transformers_from_pretrained_reads_the_folder(tiny_model_dir, tiny_classifier):
    from transformers import AutoModelForSequenceClassification

    import enhscan.model.hf_interop  # noqa: F401  registers enhscan's architectures

    net = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir).eval()
    ids, mask = pad_batch(tiny_classifier.encoder.encode(SEQS[:3]), tiny_classifier.encoder.pad_id)
    with torch.no_grad():
        got = net(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)).logits
        want = tiny_classifier.network(
            input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)
        ).logits
    torch.testing.assert_close(got, want)


def test_dnabert2_finetuned_folder_loads_without_enhscan_json(tmp_path, tiny_classifier):
    folder = _dnabert2_style_folder(
        tmp_path / "ft", tiny_classifier, with_head=True, mlm_head=False
    )
    loaded = load_classifier(folder)
    assert loaded.metadata.window == 1000 and loaded.metadata.threshold == 0.5
    np.testing.assert_allclose(
        WindowScorer(loaded).score(SEQS), WindowScorer(tiny_classifier).score(SEQS), atol=1e-6
    )


def test_dnabert2_mlm_checkpoint_needs_fine_tuning(tmp_path, tiny_classifier):
    folder = _dnabert2_style_folder(
        tmp_path / "mlm", tiny_classifier, with_head=False, mlm_head=True
    )
    with pytest.raises(EnhscanError, match="enhscan train --base"):
        load_classifier(folder)
    base = load_classifier(folder, require_head=False)
    # The encoder weights came across; the head starts fresh.
    want = tiny_classifier.network.state_dict()
    got = base.network.state_dict()
    for key in want:
        if key.startswith("bert.") and not key.startswith("bert.pooler."):
            torch.testing.assert_close(got[key], want[key])


def test_real_dnabert2_config_is_accepted(tmp_path):
    from tests.conftest import SHARED

    config_file = SHARED / "models" / "dnabert2" / "config.json"
    if not config_file.exists():
        pytest.skip("shared data not present")
    from enhscan.model.dnabert2 import DNABert2Config

    config = DNABert2Config(**json.loads(config_file.read_text()))
    assert (config.hidden_size, config.num_hidden_layers, config.vocab_size) == (768, 12, 4096)
    assert not hasattr(config, "auto_map") or not config.auto_map


@pytest.mark.parametrize(
    "remove, message",
    [
        ("config.json", "incomplete: no config.json"),
        ("tokenizer.json", "incomplete: no tokenizer.json"),
        ("model.safetensors", "incomplete: no model.safetensors or pytorch_model.bin"),
    ],
)
def test_incomplete_folder(tmp_path, tiny_model_dir, remove, message):
    folder = tmp_path / "m"
    shutil.copytree(tiny_model_dir, folder)
    (folder / remove).unlink()
    with pytest.raises(EnhscanError, match=message):
        load_classifier(folder)


def test_missing_folder_and_file(tmp_path):
    with pytest.raises(EnhscanError, match="does not exist"):
        load_classifier(tmp_path / "nope")
    (tmp_path / "file").write_text("x")
    with pytest.raises(EnhscanError, match="is not a folder"):
        load_classifier(tmp_path / "file")


def test_tokenizer_that_does_not_fit_the_weights(tmp_path, tiny_classifier):
    from enhscan.model.dnabert2 import DNABert2Config, DNABert2ForSequenceClassification

    config = DNABert2Config.from_size("tiny", vocab_size=64, num_hidden_layers=1)
    small_vocab = dataclasses.replace(
        tiny_classifier, network=DNABert2ForSequenceClassification(config)
    )
    folder = save_classifier(small_vocab, tmp_path / "m")
    with pytest.raises(EnhscanError, match="tokenizer belongs to another model"):
        load_classifier(folder)


def _copy_with_json_edit(source: Path, target: Path, name: str, edit) -> Path:
    """Copy a model folder and change one of its JSON files with ``edit(dict)``."""
    shutil.copytree(source, target)
    data = json.loads((target / name).read_text())
    edit(data)
    (target / name).write_text(json.dumps(data))
    return target


def test_weights_that_do_not_fit_the_config(tmp_path, tiny_model_dir):
    folder = _copy_with_json_edit(
        tiny_model_dir, tmp_path / "m", "config.json", lambda c: c.update(hidden_size=48)
    )
    with pytest.raises(EnhscanError, match="does not fit"):
        load_classifier(folder)


def test_not_a_dnabert2_architecture(tmp_path, tiny_model_dir):
    def edit(config: dict) -> None:
        del config["alibi_starting_size"]
        config["model_type"] = "bert"

    folder = _copy_with_json_edit(tiny_model_dir, tmp_path / "m", "config.json", edit)
    with pytest.raises(EnhscanError, match="not describe a DNABERT-2"):
        load_classifier(folder)


def test_foreign_parameters_are_refused(tmp_path, tiny_classifier):
    folder = _dnabert2_style_folder(tmp_path / "x", tiny_classifier, with_head=True, mlm_head=False)
    state = torch.load(folder / "pytorch_model.bin", weights_only=True)
    state["bert.embeddings.position_embeddings.weight"] = torch.zeros(512, 32)
    torch.save(state, folder / "pytorch_model.bin")
    with pytest.raises(EnhscanError, match="not a DNABERT-2-architecture checkpoint"):
        load_classifier(folder)


class _RunsCode:
    """Unpickling this calls os.system: what a hostile checkpoint does."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        import os

        return os.system, (f"touch {self.marker}",)


def test_pickled_code_is_never_run(tmp_path, tiny_classifier):
    folder = _dnabert2_style_folder(tmp_path / "x", tiny_classifier, with_head=True, mlm_head=False)
    marker = tmp_path / "code_ran"
    torch.save({"payload": _RunsCode(marker)}, folder / "pytorch_model.bin")
    with pytest.raises(EnhscanError) as err:
        load_classifier(folder)
    message = str(err.value)
    assert "can run code" in message and "enhscan never loads them" in message
    assert "\n" not in message and "weights_only" not in message
    assert not marker.exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"hidden_size": 10**9}, "hidden_size 1,000,000,000 is beyond any model"),
        ({"num_hidden_layers": 10**6}, "num_hidden_layers 1,000,000 is beyond any model"),
        ({"hidden_size": 4096, "intermediate_size": 8192}, "MB but model.safetensors holds"),
    ],
)
def test_configs_too_big_for_their_weights_are_refused_before_building(
    tmp_path, tiny_model_dir, change, message
):
    folder = _copy_with_json_edit(
        tiny_model_dir, tmp_path / "m", "config.json", lambda c: c.update(change)
    )
    began = time.perf_counter()
    with pytest.raises(EnhscanError, match=message):
        load_classifier(folder)
    assert time.perf_counter() - began < 10


def test_bad_metadata(tmp_path, tiny_model_dir):
    cases = [
        ({"threshold": 1.5}, r"threshold must be in \[0, 1\]"),
        ({"family": "hyena"}, "unknown model family"),
    ]
    for k, (change, message) in enumerate(cases):
        folder = _copy_with_json_edit(
            tiny_model_dir, tmp_path / f"m{k}", "enhscan.json", lambda m, c=change: m.update(c)
        )
        with pytest.raises(EnhscanError, match=message):
            load_classifier(folder)


def test_encoder_adds_cls_sep_and_maps_n_to_unk():
    encoder = BpeEncoder(default_tokenizer_json())
    ids = encoder.encode(["ACGTNNACGT"])[0]
    assert ids[0] == encoder.cls_id and ids[-1] == encoder.sep_id
    assert 0 in ids  # [UNK] for N
    clone = pickle.loads(pickle.dumps(encoder))
    np.testing.assert_array_equal(
        clone.encode(["ACGTTTGACA"])[0], encoder.encode(["ACGTTTGACA"])[0]
    )


def test_scores_do_not_depend_on_batching(tiny_classifier):
    """A window's score is the same alone, in any batch size, and in any order (fp32)."""
    alone = np.array(
        [WindowScorer(tiny_classifier, ComputeOptions(batch_size=1)).score([s])[0] for s in SEQS]
    )
    for batch_size in (1, 3, 64):
        together = WindowScorer(tiny_classifier, ComputeOptions(batch_size=batch_size)).score(SEQS)
        np.testing.assert_allclose(together, alone, atol=1e-5, rtol=0)
    order = RNG.permutation(len(SEQS))
    shuffled = WindowScorer(tiny_classifier, ComputeOptions(batch_size=4)).score(
        [SEQS[i] for i in order]
    )
    np.testing.assert_allclose(shuffled, alone[order], atol=1e-5, rtol=0)


def test_reduced_precision_on_cpu_is_close(tiny_classifier):
    fp32 = WindowScorer(tiny_classifier).score(SEQS)
    bf16 = WindowScorer(tiny_classifier, ComputeOptions(dtype="bf16")).score(SEQS)
    assert bf16.dtype == np.float32
    np.testing.assert_allclose(bf16, fp32, atol=0.05)


# Runs the CLI in a fresh interpreter and reports whether transformers was ever imported.
_RUN_CLI = """
import runpy, sys
sys.argv = ["enhscan", *sys.argv[1:]]
try:
    runpy.run_module("enhscan", run_name="__main__")
except SystemExit as done:
    assert not done.code, done.code
print("transformers" in sys.modules)
"""


@pytest.mark.parametrize("arch", ["tiny", "cnn", "hybrid"])
def test_scanning_and_predicting_never_import_transformers(tmp_path, mini_fasta, arch):
    """transformers takes seconds to import; scanning and predicting do without it."""
    import subprocess
    import sys

    from enhscan.model import new_classifier, save_classifier

    model = tmp_path / "model"
    save_classifier(new_classifier(arch), model)
    queries = tmp_path / "queries.fa"
    queries.write_text("".join(f">q{i}\n{s}\n" for i, s in enumerate(SEQS)))
    commands = [
        ["genome", str(mini_fasta), "--out", str(tmp_path / "scan"), "--model", str(model)],
        ["predict", str(queries), "--model", str(model), "-o", str(tmp_path / "p.tsv")],
    ]
    for args in commands:
        done = subprocess.run(
            [sys.executable, "-c", _RUN_CLI, *args, "--device", "cpu"],
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip().splitlines()[-1] == "False", args
    assert (tmp_path / "scan" / "scores.bw").exists() and (tmp_path / "p.tsv").exists()
