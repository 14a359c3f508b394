"""The command line every script shares: the common flags declared once, argparse types, ``--quick``, ``--help``.

- :func:`base_parser` gives ``--seed``, ``--device``, ``--epochs`` (+ ``--amp``), ``--quick``,
  ``--out-dir`` and ``--threads``; :func:`add_training_args` gives ``--lr``, ``--batch-size``,
  ``--resume``; :func:`add_stft_args` gives ``--n-fft``, ``--hop-length``; :func:`add_data_args`
  gives ``--data-root``, ``--dataset``, ``--download``. A script adds only its own flags.
- ``--quick`` is one mechanism: a script declares its smoke-test sizes as a dict and
  :func:`apply_quick` sets them right after parsing, unless the user gave that flag.
- ``--help`` shows a one-line usage and the docstring's first paragraph (:func:`script_help`).
- :func:`main_guard` turns a :class:`UserError` into ``error: ...`` and exit status 2.
"""

from __future__ import annotations

import argparse
import inspect
import math
import sys
from pathlib import Path
from typing import Any, Iterable, Mapping

from audiolab.core.outputs import release_out_dir_locks
from audiolab.core.runtime import OUTPUT_ERRNOS, UserError, describe_os_error, set_threads

POINTER = "How it works: the docstring at the top of the script. Commands and results: README.md."


def summary(doc: str | None) -> str:
    """The first paragraph of a docstring, followed by :data:`POINTER`.

    Args:
        doc: a module docstring (``__doc__``); ``None`` or empty gives the pointer alone.

    Returns:
        The text for ``argparse``'s ``description`` (raw: line breaks are kept).
    """
    text = inspect.cleandoc(doc or "")
    first = text.split("\n\n", 1)[0].strip()
    return f"{first}\n\n{POINTER}" if first else POINTER


class ShortUsageFormatter(argparse.RawDescriptionHelpFormatter):
    """Usage as ``prog [-h] [options] POSITIONALS``; description and epilog printed as written.

    ``argparse`` would otherwise spell every flag out in the usage line (15 lines for the
    larger scripts) before the description.
    """

    def _format_usage(self, usage, actions, groups, prefix):  # argparse.HelpFormatter hook
        if usage is None:
            options = [a for a in actions if a.option_strings]
            words = ["%(prog)s"]
            words += ["[-h]"] if any("-h" in a.option_strings for a in options) else []
            words += ["[options]"] if any("-h" not in a.option_strings for a in options) else []
            words += [self._format_args(a, self._get_default_metavar_for_positional(a))
                      for a in actions if not a.option_strings]
            usage = " ".join(words)
        return super()._format_usage(usage, actions, groups, prefix)


def script_help(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Shorten ``parser``'s help: its description becomes :func:`summary` of it, its usage one line.

    Args:
        parser: a parser whose ``description`` is the script's module docstring
            (e.g. from ``audiolab.core.cli.base_parser(__doc__)``).

    Returns:
        The same parser (changed in place), so that a script can write
        ``parser = script_help(base_parser(__doc__, epochs=10))``.
    """
    parser.description = summary(parser.description)
    parser.formatter_class = ShortUsageFormatter
    return parser


def main_guard(main, argv=None) -> int:
    """Run ``main(argv)`` and turn :class:`UserError` and Ctrl-C into clean exits.

    Returns the process exit status: 0 on success, 2 for a ``UserError`` (message on
    stderr), 130 for KeyboardInterrupt (checkpoints written so far are kept).
    """
    try:
        main(argv)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        if err.errno not in OUTPUT_ERRNOS:
            raise
        print(f"error: {describe_os_error(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: checkpoints written so far are kept; rerun with --resume "
              "where the script supports it.", file=sys.stderr)
        return 130
    finally:
        release_out_dir_locks()
    return 0


# ------------------------------------------------------------------ the shared flags
def base_parser(description: str, *, epochs: int | None = None, seed: int = 0) -> argparse.ArgumentParser:
    """An ``argparse`` parser with the flags every script shares.

    ``--seed``, ``--device``, ``--quick``, ``--out-dir``, ``--threads``; with ``epochs`` also
    ``--epochs`` and ``--amp`` (:func:`add_epochs`).

    Args:
        description: the script's docstring (shown by ``--help``).
        epochs: default for ``--epochs``; ``None`` leaves the flag out (for scripts that do not
            train, or that add it themselves with :func:`add_epochs`).
        seed: default random seed.
    """
    # allow_abbrev=False: a flag is spelt out in full, so ``--study`` can never be read as ``--study-epochs``
    # and option_given / apply_quick can tell from argv alone which flags the user gave
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter,
                                     allow_abbrev=False)
    parser.add_argument("--seed", type=int_range(0, 2**32 - 1), default=seed, help="random seed (default %(default)s)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"],
                        help="compute device; auto picks cuda, then mps, then cpu (default %(default)s)")
    if epochs is not None:
        add_epochs(parser, epochs)
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes for a smoke test (seconds, not meaningful numbers)")
    parser.add_argument("--out-dir", type=Path, default=None,
                        help="where outputs go (default outputs/<script name>)")
    add_threads_arg(parser)
    return parser


def add_epochs(parser: argparse.ArgumentParser, default: int | None, help: str = "training epochs (default %(default)s)"
               ) -> None:
    """Add ``--epochs`` (an integer >= 1) and ``--amp`` (CUDA mixed precision).

    A script whose default depends on the dataset passes ``default=None``, a ``help`` that
    names the defaults, and fills the value in after parsing.
    """
    parser.add_argument("--epochs", type=positive_int, default=default, help=help)
    parser.add_argument("--amp", action="store_true",
                        help="mixed precision (float16 autocast + GradScaler) on CUDA; ignored on the CPU")


def add_training_args(parser: argparse.ArgumentParser | argparse._ArgumentGroup, *, lr: float, batch_size: int,
                      lr_help: str = "Adam learning rate", batch_help: str = "examples per batch",
                      resume_help: str = "continue training from the checkpoint in --out-dir") -> None:
    """Add ``--lr`` (a number in (0, 10]), ``--batch-size`` (>= 1), ``--resume`` and ``--extend-to`` to ``parser``.

    The help texts say what the script's learning rate, batch and checkpoint are; the defaults
    are appended to them.
    """
    parser.add_argument("--lr", type=float_range(0, 10, lo_open=True), default=lr,
                        help=f"{lr_help} (default %(default)s)")
    parser.add_argument("--batch-size", type=positive_int, default=batch_size,
                        help=f"{batch_help} (default %(default)s)")
    parser.add_argument("--resume", action="store_true", help=resume_help + " (with the same --epochs)")
    parser.add_argument("--extend-to", type=positive_int, default=None, metavar="N",
                        help="continue a finished run from its checkpoint to N epochs in all; the learning-rate "
                             "schedule is then not an N-epoch run's, and metrics.json says so")


def add_stft_args(parser: argparse.ArgumentParser | argparse._ArgumentGroup, *, n_fft: int | None,
                  hop_length: int | None, n_fft_help: str = "STFT size in samples",
                  hop_help: str = "STFT hop in samples", min_n_fft: int = 2) -> None:
    """Add ``--n-fft`` (``min_n_fft`` to 65536 samples) and ``--hop-length`` (>= 1 sample).

    ``None`` defaults mean the script derives them after parsing (e.g. from the sample rate);
    its help text should then say how. ``min_n_fft`` is the smallest size the script's model
    can take (its help should say why). Checks that involve other flags (hop <= n_fft, n_fft
    against the clips' length) stay in the script.
    """
    default = " (default %(default)s)"
    parser.add_argument("--n-fft", type=int_range(min_n_fft, 65536), default=n_fft,
                        help=n_fft_help + (default if n_fft is not None else ""))
    parser.add_argument("--hop-length", type=positive_int, default=hop_length,
                        help=hop_help + (default if hop_length is not None else ""))


def apply_quick(args: argparse.Namespace, sizes: Mapping[str, Any], argv: list[str] | None = None
                ) -> argparse.Namespace:
    """``--quick``: set the smoke-test ``sizes`` once, right after parsing; nothing later reads ``args.quick``.

    Args:
        args: the parsed arguments; nothing changes unless ``args.quick``.
        sizes: ``{dest: value}``. A value may be a callable ``f(args) -> value`` for a size that
            depends on other flags. A dest that is also a flag (``epochs`` is ``--epochs``) is
            left as the user gave it on the command line: ``--quick --epochs 3`` trains 3 epochs.
        argv: the command line parsed (default ``sys.argv[1:]``), to tell given flags apart.

    Returns:
        ``args``, changed in place.
    """
    if not getattr(args, "quick", False):
        return args
    for dest, value in sizes.items():
        if option_given("--" + dest.replace("_", "-"), argv):
            continue
        setattr(args, dest, value(args) if callable(value) else value)
    return args


class _ThreadsAction(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        set_threads(values)


def add_threads_arg(parser: argparse.ArgumentParser) -> None:
    """Add ``--threads N``: PyTorch CPU threads for this run, applied as the flag is parsed."""
    parser.add_argument("--threads", type=positive_int, default=None, action=_ThreadsAction,
                        help="PyTorch CPU threads (default: $OMP_NUM_THREADS, else half the usable CPUs, "
                             "1 to 4; more threads only pay off on an otherwise idle machine)")


def option_given(option: str, argv: list[str] | None = None) -> bool:
    """True when ``option`` (e.g. ``"--epochs"``) is on the command line ``argv`` (default ``sys.argv[1:]``).

    Accepts ``--epochs 5`` and ``--epochs=5``; stops at ``--``. Only the full spelling counts:
    the scripts' parsers refuse abbreviations (``allow_abbrev=False`` in :func:`base_parser`), so
    ``--study`` is never taken for ``--study-epochs``. Scripts use it to give a synthetic demo
    smaller sizes than real data unless the user chose the size, and :func:`apply_quick` to keep
    the sizes the user gave.
    """
    argv = sys.argv[1:] if argv is None else argv
    for token in argv:
        if token == "--":
            break
        if token.split("=", 1)[0] == option:
            return True
    return False


def add_data_args(parser: argparse.ArgumentParser, datasets: Iterable[str]) -> None:
    """Add ``--data-root``, ``--dataset``, ``--download``, ``--allow-overlap`` (docs/ARCHITECTURE.md, "Data flow")."""
    names = ["auto", *datasets]
    parser.add_argument("--data-root", type=Path, default=None,
                        help="folder that holds the datasets (default $AUDIOLAB_DATA, else data/)")
    parser.add_argument("--dataset", default="auto", choices=names,
                        help="which dataset; auto uses a real one found under the data root, "
                             "else the embedded synthetic default (default %(default)s)")
    parser.add_argument("--download", action="store_true",
                        help="download the named real dataset into the data root if missing")
    parser.add_argument("--allow-overlap", action="store_true",
                        help="score evaluation clips whose audio equals a training clip's (refused by default)")


def refuse_ignored(args: argparse.Namespace, ignored: Mapping[str, Any], why: str) -> None:
    """A flag the run would ignore is an error, not a silent no-op (docs/ARCHITECTURE.md, "Rules").

    Args:
        args: the parsed flags.
        ignored: ``{dest: default}`` of the flags this run does not read; one whose value is
            not its default was given by the user.
        why: why they do nothing, e.g. ``"on fsdd (its ten digit classes are fixed)"``.

    Raises:
        UserError: naming every such flag given.
    """
    given = ["--" + k.replace("_", "-") for k, default in ignored.items() if getattr(args, k, default) != default]
    if given:
        raise UserError(f"{', '.join(given)} {'does' if len(given) == 1 else 'do'} nothing {why}; leave "
                        f"{'it' if len(given) == 1 else 'them'} out")


class Distinct(argparse.Action):
    """``action=`` of a list flag (``nargs``) whose values must differ: ``--test-snrs 0 0 5`` would score 0 dB twice."""

    def __call__(self, parser, namespace, values, option_string=None):
        twice = [v for i, v in enumerate(values) if v in values[:i]]
        if twice:
            parser.error(f"argument {option_string}: {twice[0]:g} is given twice")
        setattr(namespace, self.dest, values)


def comma_list(text: str, flag: str) -> list[str]:
    """The items of a comma-separated flag value, stripped, empty ones dropped.

    Raises:
        UserError: an item given twice (``--models lstm,lstm`` would train and write one model twice).
    """
    items = [t.strip() for t in text.split(",") if t.strip()]
    twice = [t for i, t in enumerate(items) if t in items[:i]]
    if twice:
        raise UserError(f"{flag}: {twice[0]!r} is given twice")
    return items


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite float > 0."""
    value = float(text)
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def float_range(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False,
                hi_open: bool = False):
    """argparse type factory: a finite float in ``[lo, hi]`` (``lo_open``/``hi_open`` exclude the end).

    ``None`` leaves that side unbounded. The message names the allowed range, e.g.
    ``must be in [0, 1], got 2``; argparse prefixes the flag name.
    """
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
        ok = math.isfinite(value)
        if lo is not None:
            ok = ok and (value > lo if lo_open else value >= lo)
        if hi is not None:
            ok = ok and (value < hi if hi_open else value <= hi)
        if not ok:
            raise argparse.ArgumentTypeError(f"must be in {_range_text(lo, hi, lo_open, hi_open)}, got {text}")
        return value
    parse.__name__ = "float_range"
    parse.bounds = (lo, hi)  # read by the test that every numeric flag has a range
    return parse


def int_range(lo: int | None = None, hi: int | None = None):
    """argparse type factory: an integer in ``[lo, hi]`` (``None`` leaves that side unbounded)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise argparse.ArgumentTypeError(f"must be in {_range_text(lo, hi, False, False)}, got {value}")
        return value
    parse.__name__ = "int_range"
    parse.bounds = (lo, hi)
    return parse


#: argparse type of every ``--sample-rate``: 8 kHz (telephone speech; below it the 40-mel front ends and the
#: 4 kHz speech band no longer fit) to 192 kHz
sample_rate_hz = int_range(8000, 192000)
#: argparse type of every ``--trim-db`` (dB below the loudest frame; 0 switches trimming off)
trim_db = float_range(0, 120)


def _range_text(lo, hi, lo_open: bool, hi_open: bool) -> str:
    left = "(-inf" if lo is None else f"{'(' if lo_open else '['}{lo:g}"
    right = "inf)" if hi is None else f"{hi:g}{')' if hi_open else ']'}"
    return f"{left}, {right}"
