"""Progress of long work, the same for every command: a rich bar on a terminal, one plain line
every few seconds otherwise (CI, nohup, `| tee`), nothing with quiet.

    with Progress("train", total=2000, start=0, quiet=quiet) as p:
        for step in ...:
            p.update(step + 1, loss=0.012, psnr=21.3)   # fields shown once known, `-` before
        p.close(final=False)   # stopped early: the caller says where and what was saved

Rate and ETA are measured against wall time over the last WINDOW seconds of updates (not per
step), so pauses for previews and checkpoints count; with a `deadline` (a time budget's end, on
time.perf_counter's clock) the ETA is the earlier of the two ends. Plain lines go to stderr, flushed, every
INR_GON_PROGRESS_SECONDS seconds (default 10) and at the end; work that ends sooner prints
nothing, unless it has a `first` line to say (train: the memory a step needs).
"""

from __future__ import annotations

import os
import sys
import time
from collections import deque
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn
from rich.progress import Progress as RichProgress

WINDOW = 30.0  # seconds of history behind the rate
DEFAULT_SECONDS = 10.0  # between plain lines


def plain_every() -> float:
    """Seconds between plain lines: $INR_GON_PROGRESS_SECONDS, else DEFAULT_SECONDS."""
    try:
        return max(0.0, float(os.environ.get("INR_GON_PROGRESS_SECONDS", DEFAULT_SECONDS)))
    except ValueError:
        return DEFAULT_SECONDS


def clock(seconds: float | None) -> str:
    """Seconds -> H:MM:SS, `-` when unknown."""
    if seconds is None or seconds != seconds or seconds == float("inf"):
        return "-"
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def _value(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


class Rate:
    """Units per second over the last `window` seconds of (time, completed) samples."""

    def __init__(self, completed: int, window: float = WINDOW) -> None:
        self.window = window
        self.samples: deque[tuple[float, int]] = deque([(time.perf_counter(), completed)])

    def add(self, completed: int, now: float | None = None) -> None:
        now = time.perf_counter() if now is None else now
        self.samples.append((now, completed))
        while len(self.samples) > 2 and now - self.samples[1][0] >= self.window:
            self.samples.popleft()

    def per_second(self, now: float | None = None) -> float | None:
        """None until some work is done; counts the time since the last update as well."""
        (t0, c0), (_, c1) = self.samples[0], self.samples[-1]
        now = time.perf_counter() if now is None else now
        return (c1 - c0) / (now - t0) if c1 > c0 and now > t0 else None


class Progress:
    """One task's progress. fields: names shown after the count, in order (`-` until set)."""

    def __init__(self, description: str, total: int | None, *, start: int = 0, unit: str = "steps",
                 fields: tuple[str, ...] = (), quiet: bool = False, first: str = "",
                 transient: bool = False, deadline: float | None = None) -> None:
        self.description, self.total, self.unit = description, total, unit
        self.completed, self.fields = start, {name: None for name in fields}
        self.quiet, self.first, self.deadline = quiet, first, deadline
        self.console = Console(stderr=True)
        self.live = not quiet and (self.console.is_terminal or self.console.is_jupyter)
        self.rate = Rate(start)
        self.every, self.last_line, self.lines = plain_every(), 0.0, 0
        self.t0 = time.perf_counter()
        self.bar: RichProgress | None = None
        if self.live:
            self.bar = RichProgress(TextColumn("[bold]{task.description}"), BarColumn(),
                                    MofNCompleteColumn(), TextColumn("{task.fields[text]}"),
                                    console=self.console, transient=transient)
            self.task = self.bar.add_task(description, total=total, completed=start, text="")

    def __enter__(self) -> Progress:
        if self.bar is not None:
            self.bar.start()
            if self.first:
                self.bar.console.print(self.first, highlight=False)
        elif self.first and not self.quiet:
            self.line(self.first)
        else:  # quick work stays silent: the first line comes after `every` seconds
            self.last_line = time.perf_counter()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def update(self, completed: int | None = None, advance: int = 0, **fields: Any) -> None:
        self.completed = (self.completed if completed is None else completed) + advance
        self.fields.update(fields)
        if self.quiet:
            return
        now = time.perf_counter()
        self.rate.add(self.completed, now)
        if self.bar is not None:
            self.bar.update(self.task, completed=self.completed, text=self.text(now))
        elif now - self.last_line >= self.every:
            self.line()

    def text(self, now: float | None = None) -> str:
        """`loss 0.012  psnr 21.3  3.2 steps/s  ETA 0:09:38` (`-` where not yet known)."""
        parts = [f"{k} {'-' if v is None else _value(v)}" for k, v in self.fields.items()]
        now = time.perf_counter() if now is None else now
        rate = self.rate.per_second(now)
        left = None if rate is None or self.total is None else (self.total - self.completed) / rate
        if self.deadline is not None:  # a time budget ends the work then, if steps do not first
            left = min(x for x in (left, max(self.deadline - now, 0.0)) if x is not None)
        parts += [f"{rate:.3g} {self.unit}/s" if rate else f"- {self.unit}/s", f"ETA {clock(left)}"]
        return "  ".join(parts)

    def line(self, extra: str = "") -> None:
        """One plain line on stderr, flushed."""
        total = f"/{self.total}" if self.total is not None else ""
        line = f"{self.description} {self.completed}{total} {self.unit}  {self.text()}"
        print(f"{line}  {extra}".rstrip(), file=sys.stderr, flush=True)
        self.last_line, self.lines = time.perf_counter(), self.lines + 1

    def close(self, final: bool = True) -> None:
        """End the bar; in plain mode a last line (`done in ...`) unless final is False."""
        if self.bar is not None:
            self.bar.stop()
            self.bar = None
        elif final and not self.quiet and self.lines and self.last_line >= 0:
            self.line(f"done in {clock(time.perf_counter() - self.t0)}")
        self.last_line = -1.0  # closed: no second final line
