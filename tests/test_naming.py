"""Tests for enhscan.naming: UCSC (chr20, chrM) and Ensembl (20, MT) chromosome names."""

import pytest

from enhscan.naming import match_chrom, name_variants, select_chroms

ENSEMBL = ["1", "2", "10", "20", "X", "Y", "MT", "KI270728.1", "GL000009.2"]
UCSC = [
    "chr1",
    "chr2",
    "chr10",
    "chr20",
    "chrX",
    "chrY",
    "chrM",
    "chr1_KI270706v1_random",
    "chrUn_GL000220v1",
]


# --------------------------------------------------------------------------------------------
# name_variants
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, expected",
    [
        ("chr20", ["chr20", "20"]),
        ("20", ["20", "chr20"]),
        ("X", ["X", "chrX"]),
        ("chrX", ["chrX", "X"]),
        ("MT", ["MT", "chrMT", "chrM", "M"]),
    ],
)
def test_name_variants_examples(name, expected):
    assert name_variants(name) == expected


@pytest.mark.parametrize("name", ["chrM", "MT", "chrMT", "M"])
def test_name_variants_mitochondrion_names_are_one(name):
    variants = name_variants(name)
    assert variants[0] == name
    assert set(variants) == {"chrM", "MT", "chrMT", "M"}
    assert len(variants) == len(set(variants))


@pytest.mark.parametrize("name", ["chr20", "20", "X", "chrUn_GL000220v1", "KI270728.1"])
def test_name_variants_start_with_the_name_and_are_unique(name):
    variants = name_variants(name)
    assert variants[0] == name
    assert len(variants) == len(set(variants))


# --------------------------------------------------------------------------------------------
# match_chrom
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, available, expected",
    [
        ("chr20", ENSEMBL, "20"),
        ("20", UCSC, "chr20"),
        ("chrX", ENSEMBL, "X"),
        ("X", UCSC, "chrX"),
        ("chrM", ENSEMBL, "MT"),
        ("MT", UCSC, "chrM"),
        ("chrMT", UCSC, "chrM"),
        ("M", ENSEMBL, "MT"),
        ("chrM", ["M"], "M"),
        ("MT", ["chrMT"], "chrMT"),
        ("chr1", UCSC, "chr1"),
        ("1", ENSEMBL, "1"),
    ],
)
def test_match_chrom(name, available, expected):
    assert match_chrom(name, available) == expected


@pytest.mark.parametrize(
    "name, available, expected",
    [
        ("20", ["chr20", "20"], "20"),
        ("chr20", ["20", "chr20"], "chr20"),
        ("MT", ["chrM", "MT"], "MT"),
        ("chrM", ["MT", "chrM"], "chrM"),
        ("M", ["chrM", "MT", "M"], "M"),
    ],
)
def test_match_chrom_exact_match_wins(name, available, expected):
    assert match_chrom(name, available) == expected


@pytest.mark.parametrize(
    "name, available",
    [
        ("chr21", ENSEMBL),
        ("21", UCSC),
        ("chr2", ["chr20", "20"]),  # no prefix matching
        ("chr", ENSEMBL),
        ("chrZ", UCSC + ENSEMBL),
        ("chrM", ["1", "2"]),
        ("chr1", []),
    ],
)
def test_match_chrom_no_match(name, available):
    assert match_chrom(name, available) is None


def test_match_chrom_accepts_sets_and_dicts():
    assert match_chrom("chr20", set(ENSEMBL)) == "20"
    assert match_chrom("MT", dict.fromkeys(UCSC, 0)) == "chrM"


# --------------------------------------------------------------------------------------------
# select_chroms
# --------------------------------------------------------------------------------------------


def test_select_chroms_by_name_in_genome_order():
    assert select_chroms(UCSC, ["chr20", "chr2", "chrX"]) == ["chr2", "chr20", "chrX"]
    assert select_chroms(ENSEMBL, ["chr20", "chr2", "chrX"]) == ["2", "20", "X"]
    assert select_chroms(UCSC, ["20", "2"]) == ["chr2", "chr20"]


def test_select_chroms_mitochondrion_across_styles():
    assert select_chroms(ENSEMBL, ["chrM"]) == ["MT"]
    assert select_chroms(UCSC, ["MT"]) == ["chrM"]


def test_select_chroms_name_is_not_a_prefix():
    assert select_chroms(UCSC, ["chr1"]) == ["chr1"]
    assert select_chroms(ENSEMBL, ["1"]) == ["1"]


def test_select_chroms_duplicates_and_aliases_give_one_entry():
    assert select_chroms(ENSEMBL, ["chr1", "1", "chr1", "1"]) == ["1"]


def test_select_chroms_pattern_ucsc_against_ensembl():
    assert select_chroms(ENSEMBL, ["chr[0-9]*"]) == ["1", "2", "10", "20"]
    assert select_chroms(ENSEMBL, ["chr1*"]) == ["1", "10"]


def test_select_chroms_pattern_ensembl_against_ucsc():
    # chr1_KI270706v1_random also starts with a digit once "chr" is dropped.
    assert select_chroms(UCSC, ["[0-9]*"]) == [
        "chr1",
        "chr2",
        "chr10",
        "chr20",
        "chr1_KI270706v1_random",
    ]
    assert select_chroms(UCSC, ["[0-9]"]) == ["chr1", "chr2"]


def test_select_chroms_patterns_in_same_style():
    assert select_chroms(UCSC, ["*_random"]) == ["chr1_KI270706v1_random"]
    assert select_chroms(UCSC, ["chrUn_*", "chr?"]) == [
        "chr1",
        "chr2",
        "chrX",
        "chrY",
        "chrM",
        "chrUn_GL000220v1",
    ]
    assert select_chroms(ENSEMBL, ["*.[0-9]"]) == ["KI270728.1", "GL000009.2"]
    assert select_chroms(ENSEMBL, ["*"]) == ENSEMBL


def test_select_chroms_mixed_names_and_patterns_keep_genome_order():
    assert select_chroms(ENSEMBL, ["chrY", "chr[12]", "MT", "X"]) == ["1", "2", "X", "Y", "MT"]


def test_select_chroms_empty_wanted():
    assert select_chroms(UCSC, []) == []


def test_select_chroms_unmatched_items_raise_value_error_naming_them():
    with pytest.raises(ValueError) as err:
        select_chroms(ENSEMBL, ["chr1", "chrZ", "chr[0-9]*", "scaffold_*"])
    message = str(err.value)
    assert "chrZ" in message
    assert "scaffold_*" in message
    assert "chr1" not in message.replace("chrZ", "")
    assert "chr[0-9]*" not in message


def test_select_chroms_single_unmatched_item():
    with pytest.raises(ValueError, match="chr21"):
        select_chroms(ENSEMBL, ["chr21"])


def test_select_chroms_patterns_are_case_sensitive():
    with pytest.raises(ValueError, match="chrx"):
        select_chroms(UCSC, ["chrx"])


def test_file_names_are_safe_and_unique() -> None:
    from enhscan.naming import file_names

    names = file_names(["Blood Vessel", "Blood/Vessel", "..", "", "any", "a.b-c_d", "Blood Vessel"])
    assert names == [
        "Blood_Vessel",
        "Blood_Vessel_2",
        "unnamed",
        "unnamed_2",
        "any",
        "a.b-c_d",
        "Blood_Vessel_3",
    ]
