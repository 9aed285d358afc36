"""Progress for long loops: a tqdm bar on a terminal, plain periodic lines in a log.

>>> import io
>>> log = io.StringIO()  # not a terminal: plain lines, no escape codes
>>> with progress(19, "cell", initial=15, file=log, clock=lambda: 0.0) as bar:
...     bar.update(4)
>>> log.getvalue()
'cells 19/19 (15 reused) 0 s\\n'

Off a terminal a line is written at most every ``every`` seconds (10) and once at the end; the
count includes ``initial`` (work done before, e.g. stored cells reused by a resumed run).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, TextIO

EVERY = 10.0  # seconds between plain lines


class Progress:
    """A count of ``unit``s towards ``total``, starting at ``initial``: :meth:`update` adds to it,
    :meth:`close` ends it (once). Nothing at all when ``quiet``; ``file`` defaults to stderr (a
    bar only when it is a terminal)."""

    def __init__(
        self,
        total: int,
        unit: str,
        *,
        initial: int = 0,
        quiet: bool = False,
        desc: str = "",
        file: TextIO | None = None,
        every: float = EVERY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total, self.initial, self.n = total, initial, initial
        self.label = desc or f"{unit}s"
        self.file = sys.stderr if file is None else file
        self.quiet, self.every, self.clock = quiet, every, clock
        self.start = self.last = clock()
        self.closed = False
        self.bar: Any = None
        if not quiet and _is_terminal(self.file):
            from tqdm import tqdm

            self.bar = tqdm(
                total=total, initial=initial, unit=unit, desc=desc or None, file=self.file
            )

    def update(self, n: int = 1) -> None:
        """Count ``n`` more done; off a terminal, a line if ``every`` seconds have passed."""
        self.n += n
        if self.bar is not None:
            self.bar.update(n)
        elif not self.quiet and self.clock() - self.last >= self.every:
            self._line()

    def close(self) -> None:
        """End the count: the bar closes, or the last plain line is written."""
        if self.closed:
            return
        self.closed = True
        if self.bar is not None:
            self.bar.close()
        elif not self.quiet:
            self._line()

    def _line(self) -> None:
        self.last = now = self.clock()
        reused = f" ({self.initial} reused)" if self.initial else ""
        seconds = f"{now - self.start:.0f} s"
        print(f"{self.label} {self.n}/{self.total}{reused} {seconds}", file=self.file, flush=True)

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


progress = Progress  # the name callers use: ``with progress(total, "cell") as bar: ...``


def _is_terminal(file: TextIO) -> bool:
    try:
        return bool(file.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
