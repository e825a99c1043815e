"""Every reader of user files, fed generated bad input: each gets a result or one line of
error (EnhscanError without a newline), never a traceback, a hang or a huge allocation."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from enhscan.errors import EnhscanError

FUZZ = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
LENGTHS = {"chr1": 5000, "chr2": 300}

# Text that looks like the formats, with their separators and digits over-represented.
fields = st.text(alphabet="chr12\t -.,ACGTN0123456789+eE#>\n\r", max_size=200)
noise = st.one_of(fields, st.binary(max_size=200).map(lambda b: b.decode("latin-1")))


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / f"{uuid.uuid4().hex}_{name}"
    path.write_bytes(text.encode("latin-1", "replace"))
    return path


def one_line_or_result(read, path: Path):
    try:
        return read(path)
    except EnhscanError as err:
        assert "\n" not in str(err), str(err)
        return None


@FUZZ
@given(text=noise)
def test_bed_reader(tmp_path, text) -> None:
    from enhscan.io.bed import read_bed

    one_line_or_result(lambda p: read_bed(p, LENGTHS), write(tmp_path, "x.bed", text))


@FUZZ
@given(text=noise)
def test_peak_reader(tmp_path, text) -> None:
    from enhscan.io.peaks import read_peaks

    one_line_or_result(lambda p: read_peaks(p, LENGTHS), write(tmp_path, "x.narrowPeak", text))


@FUZZ
@given(text=noise, suffix=st.sampled_from([".csv", ".tsv"]))
def test_sequence_tables(tmp_path, text, suffix) -> None:
    from enhscan.io.sequences import read_labelled_table, read_sequence_table

    path = write(tmp_path, f"t{suffix}", text)
    one_line_or_result(read_labelled_table, path)
    one_line_or_result(read_sequence_table, path)


@FUZZ
@given(text=st.one_of(noise, st.text(alphabet=">chr1 ACGTNacgtn\n\r", max_size=300)))
def test_fasta_records_and_genomes(tmp_path, text) -> None:
    from enhscan.io.fasta import open_genome
    from enhscan.io.sequences import read_fasta_records

    path = write(tmp_path, "g.fa", text)
    one_line_or_result(read_fasta_records, path)

    def whole_genome(p: Path):
        with open_genome(p, index_dir=tmp_path / uuid.uuid4().hex) as genome:
            return [genome.fetch(n, 0, genome.lengths[n]) for n in genome.names]

    one_line_or_result(whole_genome, path)


config_values = st.one_of(
    st.integers(min_value=-(2**62), max_value=2**62),
    st.floats(allow_nan=True),
    st.text(max_size=5),
    st.none(),
    st.lists(st.integers(min_value=-5, max_value=10**7), max_size=4),
)
config_keys = st.sampled_from(
    ["hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
     "vocab_size", "alibi_starting_size", "channels", "kernel_sizes", "pool_size",
     "hidden_dropout_prob", "initializer_range", "model_type"]
)  # fmt: skip


@pytest.mark.parametrize("model", ["tiny_model_dir", "cnn_model_dir"])
def test_model_configs(tmp_path, request, model) -> None:
    source = request.getfixturevalue(model)

    @FUZZ
    @given(changes=st.dictionaries(config_keys, config_values, max_size=3))
    def check(changes) -> None:
        folder = tmp_path / uuid.uuid4().hex
        shutil.copytree(source, folder)
        config = json.loads((folder / "config.json").read_text())
        (folder / "config.json").write_text(json.dumps({**config, **changes}))
        from enhscan.model import load_classifier

        one_line_or_result(load_classifier, folder)
        shutil.rmtree(folder)

    check()


@pytest.fixture(scope="module")
def cnn_model_dir(tmp_path_factory) -> Path:
    from enhscan.model import new_classifier, save_classifier

    classifier = new_classifier("cnn", seed=0, window=300)
    return save_classifier(classifier, tmp_path_factory.mktemp("models") / "cnn")


VCF_HEAD = (
    "##fileformat=VCFv4.2\n##contig=<ID=chr1,length=5000>\n"
    "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
)
vcf_body = st.text(alphabet="chr1\t.ACGTN<>*[]0123456789,;=PASS\n", max_size=200)


@FUZZ
@given(
    text=st.one_of(noise, vcf_body.map(lambda body: VCF_HEAD + body)),
    suffix=st.sampled_from([".vcf", ".tsv", ".csv", ".tsv.gz"]),
)
def test_variant_files(tmp_path, text, suffix) -> None:
    from enhscan.io.vcf import open_variants

    def read(path: Path):
        with open_variants(path) as source:
            return list(source.records)

    one_line_or_result(read, write(tmp_path, f"v{suffix}", text))
