"""A single background worker per widget: runs one job at a time, newer requests cancel older ones."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

Job = Callable[[threading.Event], Any]


class Worker:
    """Runs submitted jobs on a daemon thread, in order; ``submit`` cancels the job in progress."""

    def __init__(self, name: str = "xaiwidgets-worker") -> None:
        self._queue: queue.Queue[tuple[Job, threading.Event] | None] = queue.Queue()
        self._current: threading.Event | None = None
        self._lock = threading.Lock()
        self._idle = threading.Event()
        self._idle.set()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, job: Job, *, cancel_running: bool = True) -> threading.Event:
        """Queue ``job``; it receives its own cancel event. Returns that event."""
        event = threading.Event()
        with self._lock:
            if cancel_running and self._current is not None:
                self._current.set()
            self._idle.clear()
            self._queue.put((job, event))
        return event

    def cancel(self) -> None:
        with self._lock:
            if self._current is not None:
                self._current.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every queued job has finished; False on timeout."""
        return self._idle.wait(timeout)

    def close(self) -> None:
        self.cancel()
        self._queue.put(None)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            job, event = item
            with self._lock:
                self._current = event
            try:
                if not event.is_set():
                    job(event)
            except Exception:  # jobs report their own errors; keep the worker alive
                pass
            finally:
                with self._lock:
                    self._current = None
                    if self._queue.empty():
                        self._idle.set()


class CancellableJob:
    """Mixin for a view whose :meth:`compute` runs one job on ``self._worker``: the browser's cancel
    message, :meth:`cancel` and :meth:`wait` (register ``self.on_msg(self._on_message)`` in ``__init__``)."""

    _worker: Worker | None = None

    def _on_message(self, _widget: Any, content: dict[str, Any], _buffers: list) -> None:
        if content.get("type") == "cancel":
            self.cancel()
            self.send({"type": "accepted", "id": content.get("id", "")})  # type: ignore[attr-defined]

    def cancel(self) -> None:
        """Stop the computation in progress; what it finished so far stays."""
        if self._worker is not None:
            self._worker.cancel()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the computation started by ``compute`` ended; False on timeout."""
        return True if self._worker is None else self._worker.wait(timeout)
