"""Scan settings declared once: the CLI, the manifest identity, the resume-refusal message, the
run record and the dry run's report all follow the declarations."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from enhscan.backend import Backend, ComputeOptions
from enhscan.cli.genome import genome as genome_command
from enhscan.declared import declared_fields, kept_values, option_names, shown, values
from enhscan.engine import WindowScorer, resolve_backend
from enhscan.errors import EnhscanError
from enhscan.scan.resume import FIXED_NAMES, IDENTITY_BEFORE, differences
from enhscan.scan.settings import RunOptions, ScanSettings, ScanSpec, check_settings

#: ``enhscan genome`` options that are not settings of the scan itself.
NOT_SETTINGS = {"--out", "--model", "--dry-run", "--processes", "--verbose", "--quiet", "--help"}


def _long_option(param) -> str:
    return next(o for o in param.opts if o.startswith("--"))


def test_every_declared_option_is_an_option_of_enhscan_genome_and_back() -> None:
    declared = set(option_names(ScanSpec, Backend, RunOptions).values())
    cli = {_long_option(p) for p in genome_command.params if p.opts and p.opts[0].startswith("-")}
    assert declared == cli - NOT_SETTINGS
    # ...and each CLI option's value lands in the field of that name.
    fields = {f.name for c in (ScanSpec, ComputeOptions, RunOptions) for f in dataclasses.fields(c)}
    names = {p.name for p in genome_command.params if p.expose_value}
    names -= {"fasta", "out", "model", "dry_run", "processes"}
    assert names <= fields


def test_settings_of_routes_each_field_to_its_part_and_refuses_unknown_ones() -> None:
    settings = ScanSettings.of(stride=100, device="cpu", resume=True, kernels="plain")
    assert settings.scan.stride == 100 and settings.compute.device == "cpu"
    assert settings.run.resume and settings.compute.kernels == "plain"
    assert settings.scan == dataclasses.replace(ScanSpec(), stride=100)
    with pytest.raises(TypeError, match="no field 'strides'"):
        ScanSettings.of(strides=100)


def test_kept_fields_are_those_that_change_scores_or_shards() -> None:
    kept = {
        f.name
        for c in (ScanSpec, Backend, RunOptions)
        for f in declared_fields(c)
        if f.metadata["keep"]
    }
    assert kept == {
        "window", "stride", "max_n", "rc", "task",
        "dtype", "batch_size", "quantize", "batch_invariant", "compile", "kernels",
        "shard_windows",
    }  # fmt: skip
    backend = Backend(torch.device("cpu"), torch.bfloat16, 16, kernels="fused")
    assert kept_values(backend) == {
        "dtype": "bfloat16", "batch_size": 16, "quantize": False, "batch_invariant": False,
        "compile": False, "kernels": "fused",
    }  # fmt: skip
    assert values(backend)["device"] == "cpu"


def test_a_resume_refusal_names_the_option_that_changed() -> None:
    identity = {"format": 1, "model": "m", "stride": 200, "kernels": "plain", "compile": False}
    assert differences(identity, identity) == []
    changed = differences({**identity, "stride": 100, "model": "n"}, identity)
    assert changed == ['the model ("n" then, "m" now)', "--stride (100 then, 200 now)"]
    # A manifest from before a key existed meant its old default.
    old = {k: v for k, v in identity.items() if k not in IDENTITY_BEFORE}
    assert differences(old, identity) == []
    assert set(FIXED_NAMES) == {"format", "genome", "model", "plan"}


def test_a_resume_keeps_the_batches_and_kernels_it_had() -> None:
    asked = ComputeOptions()
    kept = asked.continuing({"batch_size": 7, "kernels": "plain"})
    assert (kept.batch_size, kept.kernels) == (7, "plain")
    assert asked.continuing({"batch_size": 7, "kernels": "fused"}).kernels == "auto"
    assert ComputeOptions(batch_size=3).continuing({"batch_size": 7}).batch_size == 3
    assert ComputeOptions(batch_invariant=True).continuing({"batch_size": 7}).batch_size is None


def test_the_backend_is_decided_once_and_frozen(tiny_classifier) -> None:
    backend = resolve_backend(tiny_classifier, ComputeOptions(device="cpu"))
    assert backend.batch_size == 32 and backend.dtype == torch.float32
    assert backend.kernels in ("fused", "plain")
    scorer = WindowScorer(tiny_classifier, backend)
    assert scorer.backend is backend and scorer.batch_size == 32
    with pytest.raises(dataclasses.FrozenInstanceError):
        scorer.backend.batch_size = 8
    with pytest.raises(AttributeError):
        scorer.kernels = "plain"
    # Another process told the main one's choices resolves to the same backend.
    assert resolve_backend(tiny_classifier, backend.as_options("cpu")) == backend


def test_reports_show_the_backend_from_its_declarations() -> None:
    backend = Backend(torch.device("cpu"), torch.float32, 32, quantize=True, kernels="plain")
    assert backend.describe() == "cpu, float32, batch 32, int8, plain kernels"
    assert shown(ScanSpec(rc="max")) == ["both strands max"]


@pytest.mark.parametrize(
    "options, message",
    [
        ({"compile": True, "quantize": True}, "--compile cannot be combined with --quantize"),
        ({"kernels": "fast"}, "--kernels takes auto, fused, plain"),
        ({"dtype": "fp64"}, "--dtype takes auto, fp32, bf16, fp16"),
        ({"shard_windows": 0}, "--shard-windows must be positive"),
    ],
)
def test_settings_no_scan_can_use_are_refused_before_loading(options, message) -> None:
    with pytest.raises(EnhscanError, match=message):
        check_settings(ScanSettings.of(**options))
