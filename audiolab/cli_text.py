"""What a script's ``--help`` shows: a one-line usage, a short description, then the flags.

A script's module docstring explains how it works, for readers of the code, and runs to
dozens of lines. ``--help`` is for users: it shows only the docstring's first paragraph and a
pointer to the rest, and a usage line that names the positional arguments but not every flag
(the flags are listed below it anyway). Plain ``argparse``; nothing else is changed.
"""

from __future__ import annotations

import argparse
import inspect

__all__ = ["ShortUsageFormatter", "script_help", "summary"]

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
            (e.g. from ``audiolab.runtime.base_parser(__doc__)``).

    Returns:
        The same parser (changed in place), so that a script can write
        ``parser = script_help(base_parser(__doc__, epochs=10))``.
    """
    parser.description = summary(parser.description)
    parser.formatter_class = ShortUsageFormatter
    return parser
