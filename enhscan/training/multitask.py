"""Multi-task targets: which of many labelled element sets (cell types, assays, tissues) a
window's centre lies in, DeepSEA-style.

Elements come from one BED whose label-list column names the tasks of each element (like the
REMO atlas: a CRE and the cell types in which it is open), or from several BED/narrowPeak files,
one task per file (as ENCODE serves peaks: one file per assay and cell type). Tasks may be
grouped (cell types into tissues) by a small mapping file. An ``any`` task (an element of any
task, or of none: open somewhere) can be added.

**The target rule.** A window ``[s, s + W)`` has its centre bin ``[c - b // 2, c - b // 2 + b)``
around ``c = s + W // 2`` (``b``: ``centre_bin``, default 200). Its target for task ``t`` is 1
when an element of ``t`` overlaps the centre bin by at least one base, else 0. Coordinates are
0-based, half-open.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from enhscan.errors import EnhscanError
from enhscan.intervals import Interval, merge, overlaps_any
from enhscan.io.bed import iter_bed
from enhscan.model.metadata import ANY_TASK
from enhscan.naming import match_chrom

log = logging.getLogger(__name__)

#: Written in a label-list column for an element with no label.
NO_LABEL = "."


@dataclass
class TaskElements:
    """Labelled elements, per task, on the genome's chromosome names.

    Attributes:
        tasks: task names, in target-vector order.
        intervals: task index -> chromosome -> merged, sorted intervals.
        elements: chromosome -> every element (any task or none), merged: for ``any`` and for
            drawing element-centred windows.
        unmatched: chromosome names in the files that the genome lacks -> lines.
    """

    tasks: list[str]
    intervals: list[dict[str, list[Interval]]]
    elements: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    unmatched: dict[str, int] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        """Merged intervals per task."""
        return {
            t: sum(len(v) for v in self.intervals[i].values()) for i, t in enumerate(self.tasks)
        }


def read_label_bed(
    path: str | os.PathLike,
    chrom_lengths: dict[str, int],
    *,
    column: int = 6,
    separator: str = ",",
) -> TaskElements:
    """Elements and their tasks from one BED with a label-list column.

    Args:
        path: the BED (plain or gzip); ``#`` lines are skipped.
        chrom_lengths: the genome's sequences (names reconciled: ``chr20`` finds ``20``).
        column: 1-based number of the label-list column (REMO: 6, the Cell Ontology ids).
        separator: between labels in that column; ``.`` or an empty field means no label.

    Raises:
        EnhscanError: a line without that column, an element past its chromosome's end, or no
            element on the genome.
    """
    raw: dict[str, dict[str, list[Interval]]] = {}
    every: dict[str, list[Interval]] = {}
    unmatched: dict[str, int] = {}
    for record in iter_bed(path):
        if len(record.fields) < column:
            raise EnhscanError(
                f"{record.where}: no column {column} (the line has {len(record.fields)}); "
                "give the label column with --label-column"
            )
        chrom = _genome_chrom(record, chrom_lengths, unmatched)
        if chrom is None:
            continue
        interval = (record.start, record.end)
        every.setdefault(chrom, []).append(interval)
        for label in _labels(record.fields[column - 1], separator):
            raw.setdefault(label, {}).setdefault(chrom, []).append(interval)
    return _elements(raw, every, unmatched, str(path))


def read_task_files(paths: list[str | os.PathLike], chrom_lengths: dict[str, int]) -> TaskElements:
    """One task per BED/narrowPeak file, named by the file (``K562_DNase.narrowPeak.gz`` ->
    ``K562_DNase``). A folder stands for the BED-like files in it, in name order.

    Raises:
        EnhscanError: no files, a file of the same name twice, or as :func:`read_label_bed`.
    """
    files = _expand(paths)
    raw: dict[str, dict[str, list[Interval]]] = {}
    every: dict[str, list[Interval]] = {}
    unmatched: dict[str, int] = {}
    for file in files:
        task = _task_name(file)
        if task in raw:
            raise EnhscanError(f"two target files are named {task}; rename one")
        raw[task] = {}
        for record in iter_bed(file):
            chrom = _genome_chrom(record, chrom_lengths, unmatched)
            if chrom is not None:
                raw[task].setdefault(chrom, []).append((record.start, record.end))
                every.setdefault(chrom, []).append((record.start, record.end))
        if not raw[task]:
            log.warning("%s has no element on the genome's sequences; its task is all 0", file)
    return _elements(raw, every, unmatched, ", ".join(str(f) for f in files[:3]), keep_order=True)


def group_tasks(elements: TaskElements, mapping: str | os.PathLike) -> TaskElements:
    """Merge tasks into groups (cell types into tissues, say) by a two-column mapping file:
    ``label<TAB>group[,group...]`` per line (``#`` lines skipped). A group's elements are those
    of all its labels; labels the file does not map are dropped (counted in a warning).

    Raises:
        EnhscanError: an unreadable file, a line without two columns, or no label mapped.
    """
    groups: dict[str, set[str]] = {}
    try:
        lines = Path(mapping).read_text().splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise EnhscanError(f"cannot read the task mapping {mapping}: {err}") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.rstrip("\n").split("\t")
        if len(fields) < 2:
            raise EnhscanError(f"{mapping} line {number}: expected 'label<TAB>group[,group]'")
        for group in (g.strip() for g in fields[1].split(",")):
            if group:
                groups.setdefault(fields[0].strip(), set()).add(group)
    raw: dict[str, dict[str, list[Interval]]] = {}
    unmapped = []
    for index, task in enumerate(elements.tasks):
        if task not in groups:
            unmapped.append(task)
            continue
        for group in sorted(groups[task]):
            target = raw.setdefault(group, {})
            for chrom, intervals in elements.intervals[index].items():
                target.setdefault(chrom, []).extend(intervals)
    if not raw:
        raise EnhscanError(
            f"no task label ({', '.join(elements.tasks[:5])}, ...) is in the first column of "
            f"{mapping}; map those labels to groups"
        )
    if unmapped:
        log.warning(
            "%d labels are not in %s and were dropped: %s",
            len(unmapped),
            mapping,
            ", ".join(unmapped[:5]),
        )
    grouped = _elements(raw, elements.elements, elements.unmatched, str(mapping))
    return grouped


def with_any_task(elements: TaskElements) -> TaskElements:
    """The tasks with ``any`` added first: every element, labelled or not."""
    if ANY_TASK in elements.tasks:
        raise EnhscanError(f"a task is already named {ANY_TASK!r}; rename it or use --no-any-task")
    return TaskElements(
        [ANY_TASK, *elements.tasks],
        [dict(elements.elements), *elements.intervals],
        elements.elements,
        elements.unmatched,
    )


def window_targets(
    elements: TaskElements, chrom: str, starts: np.ndarray, window: int, centre_bin: int = 200
) -> np.ndarray:
    """Targets of windows ``[s, s + window)`` of ``chrom`` (module docstring's rule).

    Args:
        starts: int64 [n] window starts.

    Returns:
        uint8 [n, tasks].
    """
    if centre_bin < 1:
        raise ValueError("centre_bin must be at least 1")
    starts = np.asarray(starts, dtype=np.int64)
    low = starts + window // 2 - centre_bin // 2
    high = low + centre_bin
    out = np.zeros((len(starts), len(elements.tasks)), dtype=np.uint8)
    for t, by_chrom in enumerate(elements.intervals):
        out[:, t] = overlaps_any(low, high, by_chrom.get(chrom, []))
    return out


@dataclass
class TargetOptions:
    """Where the tasks come from (see ``enhscan pretrain -h``).

    Attributes:
        paths: one BED with a label-list column (with ``label_column``), or BED/narrowPeak
            files and folders, one task per file.
        label_column: 1-based column of the label lists; None: one task per file.
        label_separator: between labels in that column.
        groups: a ``label<TAB>group[,group]`` file merging labels into groups.
        any_task: add the ``any`` task (an element of any task, or of none).
        centre_bin: bases around a window's centre an element must overlap.
    """

    paths: list[str]
    label_column: int | None = None
    label_separator: str = ","
    groups: str | None = None
    any_task: bool = True
    centre_bin: int = 200


def read_targets(options: TargetOptions, chrom_lengths: dict[str, int]) -> TaskElements:
    """The tasks' elements as ``options`` asks: label lists or files, grouped, with ``any``."""
    if options.label_column is not None:
        if len(options.paths) != 1:
            raise EnhscanError("--label-column reads one BED; give one --targets file")
        elements = read_label_bed(
            options.paths[0],
            chrom_lengths,
            column=options.label_column,
            separator=options.label_separator,
        )
    else:
        elements = read_task_files(options.paths, chrom_lengths)
    if options.groups:
        elements = group_tasks(elements, options.groups)
    return with_any_task(elements) if options.any_task else elements


def _genome_chrom(record, chrom_lengths: dict[str, int], unmatched: dict[str, int]) -> str | None:
    chrom = match_chrom(record.chrom, chrom_lengths)
    if chrom is None:
        unmatched[record.chrom] = unmatched.get(record.chrom, 0) + 1
        return None
    if record.end > chrom_lengths[chrom]:
        raise EnhscanError(
            f"{record.where}: {record.chrom}:{record.start}-{record.end} runs past the end of "
            f"{chrom} ({chrom_lengths[chrom]:,} bp); check the targets are for this assembly"
        )
    return chrom


def _labels(field_text: str, separator: str) -> list[str]:
    if field_text in ("", NO_LABEL):
        return []
    return [label.strip() for label in field_text.split(separator) if label.strip()]


def _elements(
    raw: dict[str, dict[str, list[Interval]]],
    every: dict[str, list[Interval]],
    unmatched: dict[str, int],
    source: str,
    keep_order: bool = False,
) -> TaskElements:
    if not every:
        names = ", ".join(sorted(unmatched)[:5])
        raise EnhscanError(
            f"no element of {source} lies on the genome's sequences"
            + (f" (it names {names})" if names else "")
            + "; check both are the same assembly"
        )
    tasks = list(raw) if keep_order else sorted(raw)
    return TaskElements(
        tasks,
        [{chrom: merge(ivs) for chrom, ivs in raw[t].items()} for t in tasks],
        {chrom: merge(ivs) for chrom, ivs in every.items()},
        dict(unmatched),
    )


_SUFFIXES = (".gz", ".bed", ".narrowPeak", ".broadPeak", ".txt")


def _task_name(path: Path) -> str:
    name = path.name
    changed = True
    while changed:
        changed = False
        for suffix in _SUFFIXES:
            if name.endswith(suffix) and len(name) > len(suffix):
                name, changed = name[: -len(suffix)], True
    return name


def _expand(paths: list[str | os.PathLike]) -> list[Path]:
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and _task_name(p) != p.name)
            if not found:
                raise EnhscanError(f"{path} holds no BED or narrowPeak files")
            files += found
        elif path.exists():
            files.append(path)
        else:
            raise EnhscanError(f"target file {path} does not exist")
    if not files:
        raise EnhscanError("give at least one target file")
    return files
