#!/usr/bin/env python3
"""Measure a multi-task folder (`enhscan pretrain --targets`) again on its held-out test
windows, drawn anew from the folder's provenance, and print the table the README shows.

    python tools/atlas_report.py build/atlas_cnn [--json report.json]

Rows: the model and a GC/CpG logistic regression per task, fitted on the same training
windows. Columns: mean ROC-AUC and PR-AUC over tasks, the `any` task's ROC-AUC (open in some
cell type, on all test windows), and open against closed: element-centred test windows against
random ones that overlap no element at their centre.
"""

from __future__ import annotations

import json

import click


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("model_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--json", "json_out", type=click.Path(dir_okay=False), help="Also write the report.")
def main(model_dir: str, json_out: str | None) -> None:
    from enhscan.training.multitask_pipeline import rerun_test_report

    report = rerun_test_report(model_dir)
    print("| model | mean ROC-AUC | mean PR-AUC | any ROC-AUC | open vs closed ROC-AUC |")
    print("|---|---|---|---|---|")
    for name, key in (
        ("enhscan model", "model"),
        ("GC/CpG logistic regression", "baseline_gc_cpg"),
    ):
        r = report[key]
        closed = r.get("elements_vs_closed", {}).get("roc_auc")
        print(
            f"| {name} | {r['roc_auc']:.3f} | {r['pr_auc']:.3f} | "
            f"{r['per_task']['any']['roc_auc']:.3f} | "
            f"{'' if closed is None else f'{closed:.3f}'} |"
        )
    if json_out:
        with open(json_out, "w") as out:
            json.dump(report, out, indent=1)


if __name__ == "__main__":
    main()
