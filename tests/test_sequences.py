"""Tests for enhscan.io.sequences: labelled tables and FASTA files of ready-made sequences."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from enhscan.errors import EnhscanError
from enhscan.io.sequences import Example, read_fasta_sequences, read_labelled_table


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# --- tables ------------------------------------------------------------------------------------


def test_csv_with_numeric_labels_and_extra_columns(tmp_path: Path):
    path = _write(tmp_path, "seqs.csv", "id,Sequence,LABEL,note\na,acgtn,1,x\nb,TTGCA,0,\n")
    assert read_labelled_table(path) == [
        Example("ACGTN", 1, source=f"{path} line 2"),
        Example("TTGCA", 0, source=f"{path} line 3"),
    ]


@pytest.mark.parametrize("name", ["seqs.tsv", "seqs.txt", "seqs.tsv.gz"])
def test_tab_separated(tmp_path: Path, name: str):
    text = "label\tsequence\nenhancer\tACGT\nbackground\tGGCC\n\nenhancer\tAAAA\n"
    path = tmp_path / name
    if name.endswith(".gz"):
        with gzip.open(path, "wt") as handle:
            handle.write(text)
    else:
        path.write_text(text)
    examples = read_labelled_table(path)
    assert [(e.seq, e.label) for e in examples] == [("ACGT", 1), ("GGCC", 0), ("AAAA", 1)]
    assert examples[2].source == f"{path} line 5"


def test_delimiter_is_sniffed_without_a_known_extension(tmp_path: Path):
    path = _write(tmp_path, "seqs.data", "sequence;label\nACGT;1\nGGGG;0\n")
    assert [e.label for e in read_labelled_table(path)] == [1, 0]


def test_txt_with_commas_is_sniffed(tmp_path: Path):
    path = _write(tmp_path, "seqs.txt", "sequence,label\nACGT,true\nGGGG,False\n")
    assert [e.label for e in read_labelled_table(path)] == [1, 0]


@pytest.mark.parametrize(
    ("positive", "negative"),
    [("positive", "negative"), ("Enhancer", "promoter"), ("pos", "neg"), ("yes", "no")],
)
def test_word_labels(tmp_path: Path, positive: str, negative: str):
    path = _write(
        tmp_path, "s.csv", f"sequence,label\nAC,{negative}\nGT,{positive}\nCC,{negative}\n"
    )
    assert [e.label for e in read_labelled_table(path)] == [0, 1, 0]


def test_iupac_codes_are_accepted(tmp_path: Path):
    path = _write(tmp_path, "s.csv", "sequence,label\nACGTRYSWKMBDHVN,1\nA,0\n")
    assert read_labelled_table(path)[0].seq == "ACGTRYSWKMBDHVN"


@pytest.mark.parametrize(
    ("labels", "found"),
    [
        (["enhancer", "promoter", "open_chromatin"], "found 3"),
        (["1", "1"], "found 1"),
        (["enhancer", "enhancer"], "found 1"),
        (["cat", "dog"], "found 2"),
        (["positive", "enhancer"], "found 2"),
        (["1", "0", "enhancer"], "found 3"),
    ],
)
def test_labels_must_be_two_classes(tmp_path: Path, labels: list[str], found: str):
    rows = "".join(f"ACGT{i * 'A'},{label}\n" for i, label in enumerate(labels))
    path = _write(tmp_path, "s.csv", "sequence,label\n" + rows)
    with pytest.raises(EnhscanError, match=f"labels must be two classes.*{found}"):
        read_labelled_table(path)


@pytest.mark.parametrize(
    "rows, message",
    [
        ("ACGT,1\nAC-GT,0\n", r"s\.csv line 3: '-' at offset 2 is not a DNA base"),
        ("ACGT,1\n ,0\n", r"s\.csv line 3: empty sequence"),
        ("ACGT,\n", r"s\.csv line 2: the label is empty"),
    ],
)
def test_a_bad_row_names_its_line(tmp_path: Path, rows: str, message: str):
    path = _write(tmp_path, "s.csv", "sequence,label\n" + rows)
    with pytest.raises(EnhscanError, match=message):
        read_labelled_table(path)


def test_missing_columns(tmp_path: Path):
    path = _write(tmp_path, "s.csv", "seq,class\nACGT,1\n")
    with pytest.raises(
        EnhscanError, match=r"no 'sequence' or 'label' column \(it has: seq, class\)"
    ):
        read_labelled_table(path)


def test_short_row(tmp_path: Path):
    path = _write(tmp_path, "s.csv", "id,sequence,label\na,ACGT,1\nb,ACGT\n")
    with pytest.raises(EnhscanError, match=r"s\.csv line 3: 2 column\(s\)"):
        read_labelled_table(path)


@pytest.mark.parametrize(("text", "message"), [("", "is empty"), ("sequence,label\n", "no rows")])
def test_empty_tables(tmp_path: Path, text: str, message: str):
    with pytest.raises(EnhscanError, match=message):
        read_labelled_table(_write(tmp_path, "s.csv", text))


def test_missing_file(tmp_path: Path):
    with pytest.raises(EnhscanError, match="cannot read table file"):
        read_labelled_table(tmp_path / "nope.csv")


def test_binary_file(tmp_path: Path):
    path = tmp_path / "s.csv"
    path.write_bytes(b"\xff\xfe\x00\x01" * 10)
    with pytest.raises(EnhscanError, match="not a readable text table file"):
        read_labelled_table(path)


# --- FASTA -------------------------------------------------------------------------------------


def test_fasta_records_with_label(tmp_path: Path):
    path = _write(tmp_path, "neg.fa", ">one desc\nacgt\nTTNN\n\n>two\nGGCC\n")
    assert read_fasta_sequences(path, 0) == [
        Example("ACGTTTNN", 0, source=f"{path} one"),
        Example("GGCC", 0, source=f"{path} two"),
    ]


def test_gzip_fasta(tmp_path: Path):
    path = tmp_path / "pos.fa.gz"
    with gzip.open(path, "wt") as handle:
        handle.write(">e1\nACGT\n>e2\nAAAA\n")
    examples = read_fasta_sequences(path, 1)
    assert [(e.seq, e.label) for e in examples] == [("ACGT", 1), ("AAAA", 1)]


def test_fasta_bad_character_names_record_and_line(tmp_path: Path):
    path = _write(tmp_path, "x.fa", ">a\nACGT\n>b\nAC\nGU\n")
    with pytest.raises(EnhscanError, match=r"x\.fa record b \(line 3\): 'U' at offset 3"):
        read_fasta_sequences(path, 1)


def test_fasta_empty_record(tmp_path: Path):
    path = _write(tmp_path, "x.fa", ">a\n>b\nACGT\n")
    with pytest.raises(EnhscanError, match=r"record a \(line 1\): empty sequence"):
        read_fasta_sequences(path, 1)


@pytest.mark.parametrize(
    ("text", "message"),
    [("", "holds no sequences"), ("\n\n", "holds no sequences"), ("ACGT\n>a\nA\n", "line 1")],
)
def test_fasta_not_usable(tmp_path: Path, text: str, message: str):
    with pytest.raises(EnhscanError, match=message):
        read_fasta_sequences(_write(tmp_path, "x.fa", text), 0)


def test_fasta_label_must_be_0_or_1(tmp_path: Path):
    with pytest.raises(ValueError):
        read_fasta_sequences(_write(tmp_path, "x.fa", ">a\nA\n"), 2)
