"""Progress display: a tqdm bar on a terminal, plain lines in a log file.

``make run`` sends each script's output to ``outputs/.logs/NAME.log``. A tqdm bar redraws itself
with carriage returns, so a log file would fill with hundreds of kilobytes of frames. Every
loop that shows progress goes through :func:`progress`: on a terminal it is ``tqdm`` as usual;
when stderr is not a terminal it prints one line when the loop starts to take long and then at
most one every ``every_s`` seconds (``desc: 120/480 (25 %), 31 s``), and nothing for quick
loops. Per-epoch results are separate lines anyway (:func:`audiolab.core.train.fit`).
"""

from __future__ import annotations

import sys
import time
from typing import Iterable, Iterator, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")

#: seconds between two plain progress lines in a log file
LOG_EVERY_S = 60.0


def on_terminal() -> bool:
    """True when stderr (where progress goes) is a terminal."""
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stream
        return False


class _LogLines:
    """The log-file stand-in for a tqdm bar: iterate, ``set_postfix``, ``close``; prints sparse whole lines."""

    def __init__(self, iterable: Iterable[T], desc: str, total: int | None, every_s: float):
        self.iterable, self.desc, self.total, self.every_s = iterable, desc, total, every_s
        self.postfix = ""
        self.count = 0

    def __iter__(self) -> Iterator[T]:
        start = last = time.monotonic()
        for item in self.iterable:
            yield item
            self.count += 1
            now = time.monotonic()
            if now - last >= self.every_s:
                last = now
                of = f"/{self.total} ({100 * self.count / self.total:.0f} %)" if self.total else ""
                print(f"{self.desc}: {self.count}{of}, {now - start:.0f} s{self.postfix}", file=sys.stderr, flush=True)

    def set_postfix(self, **values) -> None:
        self.postfix = ", " + ", ".join(f"{k} {v}" for k, v in values.items()) if values else ""

    def close(self) -> None:
        pass


def progress(iterable: Iterable[T], desc: str, *, total: int | None = None, disable: bool = False,
             every_s: float = LOG_EVERY_S, **tqdm_kwargs):
    """Iterate ``iterable`` with progress shown: a tqdm bar on a terminal, sparse plain lines otherwise.

    Args:
        iterable: what to loop over.
        desc: what the loop does, e.g. ``"reading fsdd"``.
        total: the number of items when ``len(iterable)`` does not give it.
        disable: show nothing (e.g. a quiet mode, or a non-zero torchrun rank).
        every_s: seconds between plain lines when stderr is not a terminal.
        tqdm_kwargs: passed to ``tqdm`` on a terminal (default ``leave=False``, ``dynamic_ncols=True``).

    Returns:
        an iterable with ``set_postfix(**values)`` and ``close()``, like a tqdm bar.
    """
    if total is None:
        try:
            total = len(iterable)  # type: ignore[arg-type]
        except TypeError:
            total = None
    tqdm_kwargs.setdefault("leave", False)
    tqdm_kwargs.setdefault("dynamic_ncols", True)
    show_bar = on_terminal() and not disable
    # The tqdm object is built in both cases, because building it has a side effect on the numbers:
    # tqdm.auto's asyncio layer calls iter(iterable) once on construction, so a shuffling DataLoader
    # draws one extra seed from torch's global generator. Building it in a log file too keeps the
    # random stream, and so every trained number, the same on a terminal and in `make run`.
    bar = tqdm(iterable, desc=desc, total=total, disable=not show_bar, **tqdm_kwargs)
    if show_bar or disable:
        return bar
    return _LogLines(bar, desc, total, every_s)


def write(line: str) -> None:
    """Print a whole line without breaking a bar that is being drawn (``tqdm.write``)."""
    tqdm.write(line)
