"""A single background worker per widget: runs one job at a time, newer requests cancel older ones.

The worker thread holds no reference to the widget between jobs (the finished job's closure is dropped),
and a widget's ``close()`` (or its garbage collection) stops the thread and drops what the widget held,
so a closed widget frees the model, its caches and its thread.
"""

from __future__ import annotations

import queue
import threading
import weakref
from collections.abc import Callable
from typing import Any, ClassVar

Job = Callable[[threading.Event], Any]
#: called on the worker thread when a job raised anything (BaseException included): ``(exception)``
OnError = Callable[[BaseException], None]


class _WorkerState:
    """What the worker thread shares with its :class:`Worker`; the thread never holds the Worker itself,
    so an unreferenced Worker is collected and its finaliser stops the thread."""

    def __init__(self) -> None:
        self.queue: queue.Queue[tuple[Job, threading.Event] | None] = queue.Queue()
        self.current: threading.Event | None = None
        self.lock = threading.Lock()
        self.idle = threading.Event()
        self.idle.set()
        self.on_error: weakref.WeakMethod | Callable[[], OnError | None] | None = None

    def stop(self) -> None:
        with self.lock:
            if self.current is not None:
                self.current.set()
        self.queue.put(None)

    def report(self, exc: BaseException) -> None:
        handler = self.on_error() if self.on_error is not None else None
        if handler is not None:
            try:
                handler(exc)
            except Exception:  # a failing error handler must not end the worker
                pass


def _serve(state: _WorkerState) -> None:
    while True:
        item = state.queue.get()
        if item is None:
            return
        job, event = item
        item = None
        with state.lock:
            state.current = event
        try:
            if not event.is_set():
                job(event)
        except BaseException as exc:
            state.report(exc)
        finally:
            job = None  # the idle thread must not keep the last job's closure (and the widget) alive
            with state.lock:
                state.current = None
                if state.queue.empty():
                    state.idle.set()


class Worker:
    """Runs submitted jobs on a daemon thread, in order; ``submit`` cancels the job in progress.

    ``on_error`` (held weakly when it is a bound method) hears of any exception a job let escape,
    ``KeyboardInterrupt`` and other ``BaseException`` included; the worker keeps serving either way.
    """

    def __init__(self, name: str = "xaiwidgets-worker", on_error: OnError | None = None) -> None:
        self._state = _WorkerState()
        if on_error is not None:
            self._state.on_error = (weakref.WeakMethod(on_error) if hasattr(on_error, "__self__")
                                    else (lambda: on_error))
        self._thread = threading.Thread(target=_serve, args=(self._state,), name=name, daemon=True)
        self._thread.start()
        self._finalizer = weakref.finalize(self, self._state.stop)

    def submit(self, job: Job, *, cancel_running: bool = True) -> threading.Event:
        """Queue ``job``; it receives its own cancel event. Returns that event."""
        event = threading.Event()
        state = self._state
        with state.lock:
            if cancel_running and state.current is not None:
                state.current.set()
            state.idle.clear()
            state.queue.put((job, event))
        return event

    def cancel(self, *, queued: bool = False) -> None:
        """Cancel the running job; with ``queued``, also every job still waiting (they are skipped)."""
        state = self._state
        with state.lock:
            if state.current is not None:
                state.current.set()
            if queued:
                with state.queue.mutex:
                    for item in state.queue.queue:
                        if item is not None:
                            item[1].set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every queued job has finished; False on timeout."""
        return self._state.idle.wait(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def close(self, timeout: float = 5.0) -> None:
        """Cancel the running job, drop the queued ones and stop the thread (joined up to ``timeout`` s)."""
        state = self._state
        if self._finalizer.alive:  # once: a second close must not drain the stop sentinel
            with state.lock:
                while True:  # queued jobs would hold their widget until they ran
                    try:
                        state.queue.get_nowait()
                    except queue.Empty:
                        break
            self._finalizer()  # cancel + stop sentinel
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)


def wait_or_cancel(view: Any, timeout: float | None = None) -> bool:
    """``view.wait()``; a ``KeyboardInterrupt`` while waiting cancels the view's job before it propagates."""
    try:
        return view.wait(timeout)
    except KeyboardInterrupt:
        worker = getattr(view, "_worker", None)
        if worker is not None:
            worker.cancel(queued=True)  # the user stopped waiting for all of it
        else:
            view.cancel()
        raise


class CancellableJob:
    """Mixin for a view that computes on its own :class:`Worker`: the browser's cancel message,
    :meth:`cancel`, :meth:`wait`, and :meth:`close`, which stops the worker and drops what the view held.

    Start the worker with :meth:`_start_worker`; list in ``_held`` the attributes that reference the
    model, inputs or results (set to None on close). Register ``self.on_msg(self._on_message)`` in
    ``__init__`` where the cancel message should be handled here.
    """

    _worker: Worker | None = None
    #: attributes dropped on close (they may hold the model, the inputs or large results)
    _held: ClassVar[tuple[str, ...]] = ()

    def _start_worker(self, name: str) -> Worker:
        """A worker for this view; it is stopped when the view is closed or garbage collected."""
        worker = Worker(name, on_error=self._job_failed)
        self._worker = worker
        weakref.finalize(self, worker.close, 0.0)
        return worker

    def _require_open(self) -> None:
        if self._worker is None:
            raise RuntimeError(f"this {type(self).__name__} was closed; create a new one")

    def _submit(self, job: Job, *, cancel_running: bool = True) -> threading.Event:
        """Queue ``job`` on this view's worker (a clear error once the view was closed)."""
        self._require_open()
        return self._worker.submit(job, cancel_running=cancel_running)  # type: ignore[union-attr]

    def _job_failed(self, exc: BaseException) -> None:
        """A job let ``exc`` escape (e.g. ``KeyboardInterrupt``): the view shows an error, not a spinner."""
        if hasattr(self, "status"):
            self.status = f"error: {type(exc).__name__}: {exc}"  # type: ignore[attr-defined]

    def _on_message(self, _widget: Any, content: Any, _buffers: list) -> None:
        """Every browser message gets an answer: a message that is not an object, or of an unknown type,
        an error reply; the others go to :meth:`_handle`."""
        if not isinstance(content, dict):
            self._reply("", "error", f"a request must be an object, got {type(content).__name__}")
            return
        self._handle(content.get("type"), str(content.get("id", "")), content)

    def _handle(self, kind: Any, request_id: str, content: dict[str, Any]) -> None:
        """One browser request (override and call ``super()._handle`` for the types not handled)."""
        if kind == "cancel":
            self.cancel()
            self.send({"type": "accepted", "id": request_id})  # type: ignore[attr-defined]
        else:
            self._reply(request_id, "error", f"unknown request {kind!r}")

    def _reply(self, request_id: str, status: str, error: str = "") -> None:
        """The ``done`` message that ends request ``request_id``."""
        message = {"type": "done", "id": request_id, "status": status}
        if error:
            message["error"] = error
        self.send(message)  # type: ignore[attr-defined]

    def cancel(self) -> None:
        """Stop the computation in progress; what it finished so far stays."""
        if self._worker is not None:
            self._worker.cancel()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the computation started by ``compute`` ended; False on timeout."""
        return True if self._worker is None else self._worker.wait(timeout)

    def close(self) -> None:
        """Stop the computation and the worker thread, drop the model, inputs and caches, close the comm."""
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.close()
        for name in self._held:
            if name in self.__dict__:
                self.__dict__[name] = None
        super().close()  # type: ignore[misc]
