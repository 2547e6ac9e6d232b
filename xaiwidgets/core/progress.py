"""Progress reporting and cooperative cancellation for long computations.

Methods call ``progress.update(done, total)`` between chunks of work and ``progress.check()`` to raise
:class:`~xaiwidgets.core.errors.Cancelled` when the user asked to stop, and ``progress.emit(event, data)``
to stream intermediate results (``"frames"`` snapshots of IG, SmoothGrad and feature visualisation).
Sampling methods report their running estimates through their ``stream_every`` / ``callback`` parameters
(``xaiwidgets.methods.perturbation.streaming``), not through events. Widgets pass their own ``Progress``;
scripts get a tqdm bar for work that takes longer than a second.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from .errors import Cancelled


class Progress:
    """Receives progress from a method and carries a cancel flag.

    ``callback(fraction, message)`` is called on each update. ``tqdm=True`` shows a tqdm.auto bar once
    the work has run for more than ``tqdm_after`` seconds.
    """

    def __init__(
        self,
        callback: Callable[[float, str], None] | None = None,
        *,
        tqdm: bool = True,
        tqdm_after: float = 1.0,
        cancel_event: threading.Event | None = None,
        on_event: Callable[[str, Any], None] | None = None,
    ) -> None:
        self.callback = callback
        self.on_event = on_event
        self.use_tqdm = tqdm
        self.tqdm_after = tqdm_after
        self.cancel_event = cancel_event or threading.Event()
        self._bar = None
        self._start = time.perf_counter()
        self._last = 0

    def cancel(self) -> None:
        self.cancel_event.set()

    def emit(self, event: str, data: Any) -> None:
        """Hand intermediate results to a listener (e.g. ``"frames"`` snapshots for a streaming view)."""
        if self.on_event is not None:
            self.on_event(event, data)

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    def check(self, partial: object = None) -> None:
        """Raise :class:`Cancelled` if cancellation was requested."""
        if self.cancel_event.is_set():
            raise Cancelled("computation cancelled", partial=partial)

    def update(self, done: int, total: int, message: str = "") -> None:
        fraction = done / total if total else 1.0
        if self.callback is not None:
            self.callback(fraction, message)
        if self.use_tqdm:
            if self._bar is None and time.perf_counter() - self._start > self.tqdm_after and done < total:
                from tqdm.auto import tqdm

                self._bar = tqdm(total=total, desc=message or None, leave=False)
                self._bar.update(done)
                self._last = done
            elif self._bar is not None:
                self._bar.update(done - self._last)
                self._last = done
        self.check()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def as_progress(progress: Progress | Callable[[float, str], None] | bool | None) -> Progress:
    """Normalise the ``progress`` argument methods accept."""
    if isinstance(progress, Progress):
        return progress
    if progress is False:
        return Progress(tqdm=False)
    if callable(progress):
        return Progress(progress)
    return Progress()
