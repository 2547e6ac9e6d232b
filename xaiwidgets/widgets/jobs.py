"""The request/job layer every computing view shares (docs/widget-protocol.md, "Requests and jobs").

- :class:`Worker`: one daemon thread per view, running one job at a time; a newer job cancels the older.
  The thread holds no reference to the view between jobs, and ``close()`` (or garbage collection) stops it.
- :class:`CancellableJob`: the view base: the ``progress``, ``status`` and ``error`` traits, ONE reply
  helper (:meth:`CancellableJob._reply`), the handler table (``@handles("kind")`` methods) that answers every
  browser message, and ``cancel`` / ``wait`` / ``close``.
- :class:`ViewJob`: one computation as named steps; its template sets the status, turns ``Cancelled`` and
  errors into the view's state and answers the request that started it.
"""

from __future__ import annotations

import queue
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

import traitlets

from ..core.errors import Cancelled
from ..core.progress import Progress

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
            elif hasattr(job, "skipped"):  # cancelled while queued: a ViewJob still answers its request
                job.skipped()
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


# ----- the view base: traits, replies, the handler table ---------------------------------------------

#: the values of the ``status`` trait: nothing ran yet, a job is running, and how the last one ended
STATUSES = ("idle", "running", "done", "cancelled", "error")
#: what views wrote before the status enum, still accepted: ``"error: message"`` also sets ``error``
LEGACY_STATUSES = {"computing": "running"}

_Handler = TypeVar("_Handler", bound=Callable[..., Any])


def describe(exc: BaseException) -> str:
    """An exception as the ``error`` trait and error replies show it."""
    return f"{type(exc).__name__}: {exc}"


def handles(kind: str, *, reply: bool = False) -> Callable[[_Handler], _Handler]:
    """Register the decorated method ``(self, request_id, content)`` as the handler of the browser's
    ``{"type": kind}`` requests (the view's handler table, inherited and overridable by kind).

    Whatever it raises is answered ``{"type": "done", "status": "error", "error": str(exc)}``. With
    ``reply=True`` the request is answered around it (``accepted`` first, ``done`` when it returns);
    otherwise the handler answers itself (:meth:`CancellableJob._reply`, or a :class:`ViewJob` it submits).
    """

    def mark(method: _Handler) -> _Handler:
        method._xw_handles = (kind, reply)  # type: ignore[attr-defined]
        return method

    return mark


class CancellableJob(traitlets.HasTraits):
    """Base of every view that computes on its own :class:`Worker`.

    - traits ``progress`` (0..1), ``status`` (one of :data:`STATUSES`) and ``error`` (the last job's error);
    - the handler table: methods marked ``@handles("kind")`` answer browser requests; a message that is not
      an object or of an unknown type gets an error reply, so every message is answered;
    - :meth:`_reply`, the one way to answer a request (``accepted``, then ``done`` with its status);
    - :meth:`cancel`, :meth:`wait`, and :meth:`close`, which stops the worker and drops what the view held.

    Start the worker with :meth:`_start_worker`, submit :class:`ViewJob` s (or plain ``job(cancel)``
    callables) with :meth:`_submit`; list in ``_held`` the attributes that reference the model, inputs or
    results (set to None on close). Register ``self.on_msg(self._on_message)`` in ``__init__``.
    """

    progress = traitlets.Float(0.0).tag(sync=True)
    status = traitlets.Unicode("idle").tag(sync=True)
    error = traitlets.Unicode("").tag(sync=True)

    _worker: Worker | None = None
    #: attributes dropped on close (they may hold the model, the inputs or large results)
    _held: ClassVar[tuple[str, ...]] = ()
    #: the last job's exception (``wait=True`` callers may re-raise it), None after a success
    _failure: BaseException | None = None

    @traitlets.validate("status")
    def _check_status(self, proposal: Any) -> str:
        value = proposal["value"]
        if value in STATUSES:
            return value
        if value in LEGACY_STATUSES:
            return LEGACY_STATUSES[value]
        if isinstance(value, str) and value.startswith("error:"):
            self.error = value[len("error:"):].strip()
            return "error"
        raise traitlets.TraitError(f"status must be one of {', '.join(STATUSES)}; got {value!r}")

    @classmethod
    def handler_table(cls) -> dict[str, tuple[str, bool]]:
        """``{kind: (method name, replies around it)}`` of the ``@handles`` methods along the MRO."""
        table = cls.__dict__.get("_handler_cache")
        if table is None:
            table = {}
            for base in reversed(cls.__mro__):
                for name, value in vars(base).items():
                    spec = getattr(value, "_xw_handles", None)
                    if spec is not None:
                        table[spec[0]] = (name, spec[1])
            cls._handler_cache = table  # type: ignore[attr-defined]
        return table

    # ----- requests
    def _on_message(self, _widget: Any, content: Any, _buffers: list) -> None:
        """Every browser message gets an answer: one that is not an object an error reply, the others
        go to :meth:`_handle`."""
        if not isinstance(content, dict):
            self._reply("", "error", f"a request must be an object, got {type(content).__name__}")
            return
        self._handle(content.get("type"), str(content.get("id", "")), content)

    def _handle(self, kind: Any, request_id: str, content: dict[str, Any]) -> None:
        """Route one request through the handler table; unknown kinds get an error reply."""
        entry = self.handler_table().get(kind) if isinstance(kind, str) else None
        if entry is None:
            self._reply(request_id, "error", f"unknown request {kind!r}")
            return
        name, around = entry
        if around:
            self._reply(request_id, "accepted")
        try:
            getattr(self, name)(request_id, content)
        except Exception as exc:
            self._reply(request_id, "error", str(exc) or type(exc).__name__)
            return
        if around:
            self._reply(request_id, "done")

    def _reply(self, request_id: str, status: str, error: str = "") -> None:
        """Answer request ``request_id``: ``"accepted"`` (taken; its end follows), or how it ended,
        ``"done"``, ``"cancelled"`` or ``"error"`` (with ``error``): ``{"type": "done", "id", "status"}``."""
        if status == "accepted":
            message: dict[str, Any] = {"type": "accepted", "id": request_id}
        else:
            message = {"type": "done", "id": request_id, "status": status}
            if error:
                message["error"] = error
        self.send(message)  # type: ignore[attr-defined]

    @handles("cancel")
    def _on_cancel(self, request_id: str, _content: dict[str, Any]) -> None:
        self.cancel()
        self._reply(request_id, "accepted")  # the job it stopped answers its own request

    # ----- jobs
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
        """Queue ``job`` (a :class:`ViewJob` or ``job(cancel)``) on this view's worker (a clear error once
        the view was closed). Returns its cancel event."""
        self._require_open()
        return self._worker.submit(job, cancel_running=cancel_running)  # type: ignore[union-attr]

    def _job_failed(self, exc: BaseException) -> None:
        """A job let ``exc`` escape (e.g. ``KeyboardInterrupt``): the view shows an error, not a spinner."""
        self.error = describe(exc)
        self.status = "error"

    def _block(self, *, raise_error: bool = False) -> None:
        """``wait=True``: block until the queued jobs ended (a ``KeyboardInterrupt`` cancels them); with
        ``raise_error``, raise the exception the last job failed with."""
        wait_or_cancel(self)
        if raise_error and self._failure is not None:
            raise self._failure

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


# ----- one computation as named steps -----------------------------------------------------------------


class ViewJob:
    """One computation of a view, run on its worker: subclasses write :meth:`run` as calls to small,
    named step methods and keep their state on ``self``.

    Calling the job (the worker does, with its cancel event) runs the template: :meth:`begin` (status
    ``"running"``, ``error`` cleared, progress 0), :meth:`run`; ``Cancelled`` gives status
    ``"cancelled"`` (:meth:`on_cancel` keeps what was done), another exception status ``"error"`` with
    its message (:meth:`on_error`); :meth:`end` writes the outcome to the view (progress 1 when done) and
    :meth:`reply` answers the request that started the job, also when a ``KeyboardInterrupt`` escapes.

    ``announce``: reply ``{"type": "done", "id": ""}`` when no request started the job.
    ``tracks_status``: False for side jobs (a lookup for the browser) that leave the view's status alone.
    """

    announce: ClassVar[bool] = True
    tracks_status: ClassVar[bool] = True

    def __init__(self, view: Any, request_id: str = "") -> None:
        self.view = view
        self.request_id = request_id
        self.cancel = threading.Event()
        self.status = "done"
        self.error = ""
        self.exception: Exception | None = None
        self._last_update = float("-inf")

    def __call__(self, cancel: threading.Event) -> None:
        self.cancel = cancel
        try:
            try:
                self.begin()
                self.run()
            except Cancelled as exc:
                self.status = "cancelled"
                self.on_cancel(exc)
            except Exception as exc:
                self.status, self.error, self.exception = "error", describe(exc), exc
                self.on_error(exc)
            self.end()
        except BaseException as exc:  # KeyboardInterrupt, SystemExit: answered, then the worker reports it
            self.status, self.error = "error", describe(exc)
            raise
        finally:
            self.reply()

    # ----- the template's steps (override as needed)
    def begin(self) -> None:
        if self.tracks_status:
            view = self.view
            view._failure = None
            view.error = ""
            view.status = "running"
            view.progress = 0.0

    def run(self) -> None:
        raise NotImplementedError

    def on_cancel(self, exc: Cancelled) -> None:
        """After ``Cancelled`` (``exc.partial``: a method's partial result): keep or show what was finished."""

    def on_error(self, exc: Exception) -> None:
        """After a failure (already in ``self.status`` / ``self.error``)."""

    def end(self) -> None:
        if self.tracks_status:
            view = self.view
            view._failure = self.exception
            view.error = self.error
            if self.status == "done":
                view.progress = 1.0
            view.status = self.status

    def reply(self) -> None:
        if self.request_id or self.announce:
            self.view._reply(self.request_id, self.status, self.error)

    def skipped(self) -> None:
        """The worker skipped the job (cancelled while queued): answered ``"cancelled"``; a view that
        showed it as running (``status`` set when it was queued) says cancelled."""
        self.status = "cancelled"
        if self.tracks_status and self.view.status == "running":
            self.view.status = "cancelled"
        self.reply()

    # ----- helpers for the steps
    def tracker(self, start: float = 0.0, scale: float = 1.0, *, on_event: Callable[[str, Any], None] | None = None,
                tqdm: bool = False) -> Progress:
        """A :class:`Progress` for one step: its fraction ``f`` shows as ``start + scale * f`` of the view's
        bar; it carries this job's cancel event."""
        view = self.view

        def on(fraction: float, _message: str) -> None:
            view.progress = min(1.0, start + scale * float(fraction))

        return Progress(on, tqdm=tqdm, cancel_event=self.cancel, on_event=on_event)

    def due(self, interval: float) -> bool:
        """True at most once per ``interval`` seconds (throttles streamed updates to the browser)."""
        now = time.perf_counter()
        if now - self._last_update < interval:
            return False
        self._last_update = now
        return True
