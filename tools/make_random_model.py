#!/usr/bin/env python3
"""Write an enhscan model folder with a DNABERT-2-family network and RANDOM weights.

Its scores mean nothing: it exists to try the scanning machinery end to end (the README's
quick start) and to measure speed at a given model shape, before a trained model is at hand.

    python tools/make_random_model.py demo_model [--size tiny|small|base|hybrid] [--seed 0]
"""

from __future__ import annotations

import click

from enhscan.model import new_classifier, save_classifier


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option(
    "--size",
    type=click.Choice(["tiny", "small", "base", "hybrid", "hybrid-large"]),
    default="tiny",
    show_default=True,
    help="Model shape; base is the DNABERT-2-117M shape, hybrid-large the default model's.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Initialisation seed.")
@click.option("--window", type=int, default=1000, show_default=True, help="Window in bases.")
def main(out_dir: str, size: str, seed: int, window: int) -> None:
    """Write a random-weight DNABERT-2-family model folder to OUT_DIR."""
    classifier = new_classifier(size, seed=seed, window=window)
    classifier.metadata.provenance = {
        "created": "tools/make_random_model.py",
        "size": size,
        "seed": seed,
        "warning": "random weights: scores are meaningless",
    }
    save_classifier(classifier, out_dir)
    params = sum(p.numel() for p in classifier.network.parameters())
    click.echo(f"wrote {out_dir}: {size} shape, {params:,} parameters, random weights")


if __name__ == "__main__":
    main()
