"""A bar a person can watch while a CLI run goes: the listing's files so far, then files and bytes sent of the
batch's, the rate and the time left.

The run executes in this process (``execute_in_process``), so the bar listens to the core's progress events
(:mod:`synapse_dagster.core.watchers`) and draws them; the run log's lines about every 10 s are not touched. It
draws only on an interactive terminal: on stderr that is a pipe or a file (CI, ``2>log``), and with
``FORCE_COLOR`` in a CI log, nothing changes.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.progress import (BarColumn, DownloadColumn, Progress, ProgressColumn, SpinnerColumn, Task, TaskID,
                           TextColumn, TimeRemainingColumn)
from rich.text import Text

from synapse_dagster.core.sizes import human_bytes
from synapse_dagster.core.watchers import Event, Listing, Sending, listening

SPEED_WINDOW_S = 30.0  # rich's speed_estimate_period: its estimate looks back this far


@contextmanager
def progress_bar() -> Iterator[None]:
    """Draw the run's progress on stderr while the block runs, if stderr is a terminal; lines the run prints to
    stderr meanwhile go above the bar. stdout is left alone: it may be a file of its own (``ingest > report``)."""
    if not _draws(Console(stderr=True)):
        yield
        return
    with _own_terminal() as terminal:
        console = Console(file=terminal)
        bar = _Bar(console)
        with Live(Group(bar.listings, bar.upload), console=console, refresh_per_second=8, redirect_stdout=False), \
                listening(bar):
            yield


@contextmanager
def _own_terminal() -> Iterator[TextIO]:
    """stderr's terminal on a descriptor of its own. While a step runs, Dagster points descriptors 1 and 2 at the
    step's compute log (and tails that back): a bar drawn there would land in the log, redrawn eight times a
    second, and reach the terminal late and jumbled."""
    with os.fdopen(os.dup(sys.stderr.fileno()), "w", encoding=sys.stderr.encoding or "utf-8",
                   errors="replace") as terminal:
        yield terminal


def _draws(console: Console) -> bool:
    """A terminal a person looks at: rich's judgement (``TTY_INTERACTIVE=0`` and dumb terminals say no), and a
    real TTY, since ``FORCE_COLOR`` makes rich take a CI log for a terminal."""
    isatty = getattr(console.file, "isatty", None)
    return console.is_terminal and console.is_interactive and isatty is not None and isatty()


class _Bar:
    """The listener: a line per source listed, then the upload's bar (two tables: a long source name does not
    widen the bar's columns)."""

    def __init__(self, console: Console) -> None:
        self.listings = Progress(_spinner(), TextColumn("{task.description}"), console=console)
        self.upload = Progress(_spinner(), TextColumn("uploading"), BarColumn(), _FilesColumn(),
                               DownloadColumn(binary_units=True), _SpeedColumn(), TimeRemainingColumn(),
                               console=console, speed_estimate_period=SPEED_WINDOW_S)
        self.rows: dict[str, TaskID] = {}

    def __call__(self, event: Event) -> None:
        if isinstance(event, Listing):
            self._listing(event)
        elif isinstance(event, Sending):
            self._sending(event)

    def _listing(self, event: Listing) -> None:
        size = f"{event.files:,} files, {human_bytes(event.bytes)}"
        text = f"listed {event.source}: {size}" if event.done else f"listing {event.source}: {size} so far"
        row = self._row(self.listings, event.source)
        self.listings.update(row, description=text, **({"total": 1, "completed": 1} if event.done else {}))

    def _sending(self, event: Sending) -> None:
        row = self._row(self.upload, "upload")
        settled = event.files_done >= event.files  # a held-back or failed file's bytes never come: the bar ends
        self.upload.update(row, total=event.bytes_done if settled else event.bytes, completed=event.bytes_done,
                           files_done=event.files_done, files=event.files)

    def _row(self, progress: Progress, key: str) -> TaskID:
        if key not in self.rows:
            self.rows[key] = progress.add_task("", total=None)
        return self.rows[key]


def _spinner() -> SpinnerColumn:
    return SpinnerColumn(finished_text="[green]✓")


class _FilesColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        return Text(f"{task.fields.get('files_done', 0):,}/{task.fields.get('files', 0):,} files",
                    style="progress.download")


class _SpeedColumn(ProgressColumn):
    """Bytes a second: the average since the upload began, until rich's estimate has a whole window of samples.
    Slices finish in bursts, and rich's estimate over a few samples milliseconds apart read 4.5 GiB/s for a
    6.7 MiB batch sent in about a second."""

    def render(self, task: Task) -> Text:
        elapsed = task.finished_time or task.elapsed
        average = task.completed / elapsed if elapsed else None
        speed = task.speed if elapsed and elapsed >= SPEED_WINDOW_S and task.speed else average
        return Text(f"{human_bytes(speed)}/s" if speed is not None else "?", style="progress.data.speed")
