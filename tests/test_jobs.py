"""The request/job layer every computing view shares (xaiwidgets/widgets/jobs.py; docs/widget-protocol.md,
"Requests and jobs"): the handler table answers every message with its request id, the status is an enum
with the message in a separate ``error`` trait, and a ViewJob's template turns its outcome into both."""

from __future__ import annotations

import threading
from typing import Any

import anywidget
import pytest
import traitlets

from xaiwidgets.core.errors import Cancelled
from xaiwidgets.widgets.jobs import STATUSES, CancellableJob, ViewJob, handles


class Toy(CancellableJob, anywidget.AnyWidget):
    """A computing view with one synchronous request (``echo``) and one that queues a job (``run``)."""

    _esm = "export default {}"
    value = traitlets.Int(0).tag(sync=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sent: list[dict[str, Any]] = []
        self.send = self.sent.append  # type: ignore[method-assign]
        self.on_msg(self._on_message)
        self._start_worker("xaiwidgets-test-jobs")

    @handles("echo", reply=True)
    def _on_echo(self, _request_id: str, content: dict[str, Any]) -> None:
        if not isinstance(content.get("value"), int):
            raise ValueError("value must be an int")
        self.value = content["value"]

    @handles("run")
    def _on_run(self, request_id: str, content: dict[str, Any]) -> None:
        self._reply(request_id, "accepted")
        self._submit(Step(self, request_id, content.get("outcome", "ok")))


class Louder(Toy):
    @handles("echo", reply=True)  # a subclass overrides a kind
    def _on_louder(self, _request_id: str, content: dict[str, Any]) -> None:
        self.value = 10 * int(content["value"])


class Step(ViewJob):
    def __init__(self, view: Toy, request_id: str, outcome: str) -> None:
        super().__init__(view, request_id)
        self.outcome = outcome
        self.kept = False

    def run(self) -> None:
        self.view.progress = 0.5
        if self.outcome == "cancel":
            raise Cancelled()
        if self.outcome == "fail":
            raise ValueError("no class 7")
        if self.outcome == "interrupt":
            raise KeyboardInterrupt("stop")
        self.view.value += 1

    def on_cancel(self, exc: Cancelled) -> None:
        self.kept = True


@pytest.fixture
def toy() -> Toy:
    view = Toy()
    yield view
    view.close()


def send(view: Toy, content: Any) -> list[dict[str, Any]]:
    start = len(view.sent)
    view._on_message(view, content, [])
    assert view.wait(10)
    return view.sent[start:]


def test_the_table_collects_handlers_along_the_class_hierarchy() -> None:
    assert Toy.handler_table() == {"cancel": ("_on_cancel", False), "echo": ("_on_echo", True),
                                   "run": ("_on_run", False)}
    assert Louder.handler_table()["echo"] == ("_on_louder", True)


@pytest.mark.parametrize("kind", ["nope", "", None, 3, ["echo"]])
def test_an_unknown_kind_is_an_error_reply_with_the_request_id(toy: Toy, kind: Any) -> None:
    assert send(toy, {"type": kind, "id": "r7"}) == [
        {"type": "done", "id": "r7", "status": "error", "error": f"unknown request {kind!r}"}]


@pytest.mark.parametrize("content", [["echo"], "echo", 3, None])
def test_a_message_that_is_not_an_object_is_answered(toy: Toy, content: Any) -> None:
    [reply] = send(toy, content)
    assert reply["type"] == "done" and reply["id"] == "" and reply["status"] == "error"


def test_every_reply_carries_the_request_id(toy: Toy) -> None:
    assert send(toy, {"type": "echo", "id": "a", "value": 4}) == [
        {"type": "accepted", "id": "a"}, {"type": "done", "id": "a", "status": "done"}]
    assert toy.value == 4
    assert send(toy, {"type": "echo", "id": "b", "value": "x"}) == [
        {"type": "accepted", "id": "b"},
        {"type": "done", "id": "b", "status": "error", "error": "value must be an int"}]
    assert toy.value == 4
    assert send(toy, {"type": "run", "id": "c"}) == [
        {"type": "accepted", "id": "c"}, {"type": "done", "id": "c", "status": "done"}]
    assert send(toy, {"type": "cancel", "id": "d"}) == [{"type": "accepted", "id": "d"}]
    for outcome, status in (("cancel", "cancelled"), ("fail", "error")):
        replies = send(toy, {"type": "run", "id": outcome, "outcome": outcome})
        assert [r["id"] for r in replies] == [outcome, outcome] and replies[-1]["status"] == status


def test_the_status_is_an_enum_and_the_error_a_separate_trait(toy: Toy) -> None:
    assert toy.status == "idle" and toy.error == "" and set(STATUSES) == {
        "idle", "running", "done", "cancelled", "error"}
    send(toy, {"type": "run", "id": "1", "outcome": "fail"})
    assert toy.status == "error" and toy.error == "ValueError: no class 7" and toy.progress == 0.5
    assert send(toy, {"type": "run", "id": "2"})[-1]["status"] == "done"
    assert toy.status == "done" and toy.error == "" and toy.progress == 1.0  # cleared by the next job
    send(toy, {"type": "run", "id": "3", "outcome": "cancel"})
    assert toy.status == "cancelled" and toy.error == "" and toy.progress == 0.5
    with pytest.raises(traitlets.TraitError, match="status must be one of"):
        toy.status = "computing…"


def test_status_values_from_before_the_enum_are_still_accepted(toy: Toy) -> None:
    toy.status = "computing"
    assert toy.status == "running"
    toy.status = "error: RuntimeError: boom"
    assert toy.status == "error" and toy.error == "RuntimeError: boom"
    assert Toy(status="computing").status == "running"


def test_the_template_keeps_what_a_cancelled_job_finished(toy: Toy) -> None:
    job = Step(toy, "", "cancel")
    toy._submit(job)
    assert toy.wait(10)
    assert job.kept and toy.sent[-1] == {"type": "done", "id": "", "status": "cancelled"}


def test_a_base_exception_still_answers_the_request_and_leaves_the_worker_serving(toy: Toy) -> None:
    replies = send(toy, {"type": "run", "id": "k", "outcome": "interrupt"})
    assert replies[-1] == {"type": "done", "id": "k", "status": "error", "error": "KeyboardInterrupt: stop"}
    assert toy.status == "error" and "KeyboardInterrupt" in toy.error
    assert send(toy, {"type": "run", "id": "next"})[-1]["status"] == "done" and toy._worker.alive


def test_side_jobs_and_silent_jobs(toy: Toy) -> None:
    class Side(Step):
        tracks_status = False

    class Quiet(Step):
        announce = False

    toy._submit(Side(toy, "s", "fail"))
    assert toy.wait(10) and toy.status == "idle" and toy.sent[-1]["id"] == "s"
    count = len(toy.sent)
    toy._submit(Quiet(toy, "", "ok"))
    assert toy.wait(10) and len(toy.sent) == count and toy.status == "done"


def test_wait_raises_the_failure_when_asked(toy: Toy) -> None:
    toy._submit(Step(toy, "", "fail"))
    toy._block()  # without raise_error: the state says it
    assert toy.status == "error"
    with pytest.raises(ValueError, match="no class 7"):
        toy._block(raise_error=True)


def test_tracker_maps_a_step_onto_the_bar_and_carries_the_cancel_event(toy: Toy) -> None:
    job = Step(toy, "", "ok")
    job.cancel = threading.Event()
    tracker = job.tracker(0.25, 0.5)
    tracker.update(1, 2)
    assert toy.progress == pytest.approx(0.5)
    job.cancel.set()
    with pytest.raises(Cancelled):
        tracker.check()


def test_a_job_cancelled_while_queued_is_answered(toy: Toy) -> None:
    release = threading.Event()
    toy._submit(lambda _cancel: release.wait(10))
    toy.status = "running"  # as a view that shows its queued job as running
    toy._submit(Step(toy, "q", "ok"), cancel_running=False)
    toy._worker.cancel(queued=True)
    release.set()
    assert toy.wait(10)
    assert toy.sent[-1] == {"type": "done", "id": "q", "status": "cancelled"} and toy.status == "cancelled"
