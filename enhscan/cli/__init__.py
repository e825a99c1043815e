"""The ``enhscan`` command: one click group, one module per subcommand."""

from __future__ import annotations

import errno

import click

from enhscan import __version__
from enhscan.cli.options import set_verbosity, verbosity_options
from enhscan.errors import EnhscanError

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "show_default": True}


#: What the machine, not enhscan, got wrong while writing: no space, quota, file-size limit,
#: read-only or forbidden folder, a folder that vanished, an I/O error.
WRITE_ERRORS = {
    errno.ENOSPC,
    errno.EDQUOT,
    errno.EFBIG,
    errno.EROFS,
    errno.EACCES,
    errno.EPERM,
    errno.ENOENT,
    errno.EIO,
}


class EnhscanGroup(click.Group):
    """A click group that turns :class:`EnhscanError` into a one-line error and exit 1, and
    an interrupt (Ctrl-C, SIGTERM) into a line saying what was kept and how to resume, with
    exit status 130 or 143."""

    def invoke(self, ctx: click.Context):
        import signal
        import threading

        from enhscan.cli.interrupts import ON_INTERRUPT, Terminated, raise_terminated

        on_main_thread = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, raise_terminated) if on_main_thread else None
        try:
            return super().invoke(ctx)
        except EnhscanError as err:
            raise click.ClickException(str(err)) from None
        except OSError as err:
            if err.errno not in WRITE_ERRORS:
                raise
            hint = ctx.meta.get(ON_INTERRUPT)
            kept = f"; {hint()}" if hint else ""
            where = f" ({err.filename})" if err.filename else ""
            raise click.ClickException(f"{err.strerror}{where}{kept}") from None
        except (KeyboardInterrupt, Terminated) as err:
            name, status = ("SIGTERM", 143) if isinstance(err, Terminated) else ("Ctrl-C", 130)
            hint = ctx.meta.get(ON_INTERRUPT)
            click.echo(
                f"Error: interrupted ({name}); {hint() if hint else 'nothing kept'}", err=True
            )
            ctx.exit(status)
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)


@click.group(cls=EnhscanGroup, context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, "-V", "--version", prog_name="enhscan")
@click.option("-v", "--verbose", count=True, help="More log messages (-vv for debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors: no progress bar, no warnings.")
@click.pass_context
def cli(ctx: click.Context, verbose: int, quiet: bool) -> None:
    """enhscan: find enhancers in a genome with a DNA language-model classifier.

    Coordinates are 0-based and half-open everywhere (BED convention).
    """
    ctx.ensure_object(dict)
    set_verbosity(ctx, verbose, quiet)


def _register() -> None:
    from enhscan.cli.calibrate import calibrate
    from enhscan.cli.evaluate import evaluate
    from enhscan.cli.explain import explain
    from enhscan.cli.genome import genome
    from enhscan.cli.predict import predict
    from enhscan.cli.pretrain import pretrain
    from enhscan.cli.train import train
    from enhscan.cli.variants import variants

    for command in (genome, train, pretrain, evaluate, predict, calibrate, variants, explain):
        # -q and -v work after the subcommand too: `enhscan genome ... -q`.
        command.params.extend(verbosity_options())
        cli.add_command(command)


_register()


def main() -> None:
    """Entry point of the ``enhscan`` console script."""
    cli(prog_name="enhscan")
