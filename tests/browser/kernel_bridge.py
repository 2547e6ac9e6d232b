"""A real widget's kernel side (in this process) behind the static harness's fake model.

The page sends requests into the fake model (``model.sent``); :meth:`KernelBridge.pump` forwards them to
the widget's ``_on_message`` as the kernel would receive them, then, while the widget's worker runs,
pushes every synced trait that changed into the page (``kernel_set``, buffers as base64 -> DataView) and
delivers the widget's custom messages (``emit_custom``). So the browser code and the kernel code are the
real ones; only the comm in between is replaced.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Callable, Sequence
from typing import Any

from harness import WidgetPage


def harness_value(x: Any) -> Any:
    """Trait value -> harness JSON: every binary buffer as base64 (a DataView in the page)."""
    if isinstance(x, (memoryview, bytes, bytearray)):
        return {"__bytes__": base64.b64encode(bytes(x)).decode("ascii"), "view": "dataview"}
    if isinstance(x, dict):
        return {k: harness_value(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [harness_value(v) for v in x]
    return x


class KernelBridge:
    """Connects ``widget`` (an anywidget instance) to the view mounted in ``wpage``."""

    def __init__(self, wpage: WidgetPage, widget: Any, traits: Sequence[str]) -> None:
        self.wpage = wpage
        self.widget = widget
        self.traits = list(traits)
        self.messages: list[dict[str, Any]] = []  # kernel -> browser, in order
        self.buffers: list[list[bytes]] = []  # each message's binary buffers
        self.delivered = 0
        self.forwarded = 0
        self.index = -1
        self.pushes: dict[str, int] = {}  # trait -> how often it was pushed
        self._fingerprints: dict[str, str] = {}
        widget.send = self._capture

    def _capture(self, content: dict[str, Any], buffers: Any = None) -> None:
        self.messages.append(json.loads(json.dumps(content)))
        self.buffers.append([bytes(b) for b in buffers or []])

    def state(self) -> dict[str, Any]:
        state = self.widget.get_state(key=self.traits)
        return {name: harness_value(state[name]) for name in self.traits}

    def mount(self, view: str) -> int:
        state = self.state()
        for name, value in state.items():
            self._fingerprints[name] = self._fingerprint(value)
        self.index = self.wpage.mount(view, state)
        return self.index

    @staticmethod
    def _fingerprint(value: Any) -> str:
        return hashlib.sha1(json.dumps(value, sort_keys=True).encode()).hexdigest()

    def push(self) -> list[str]:
        """Send the traits that changed since the last push, then the new kernel messages."""
        changed = []
        for name, value in self.state().items():
            fp = self._fingerprint(value)
            if self._fingerprints.get(name) != fp:
                self._fingerprints[name] = fp
                self.wpage.kernel_set(name, value, self.index)
                self.pushes[name] = self.pushes.get(name, 0) + 1
                changed.append(name)
        while self.delivered < len(self.messages):
            self.wpage.emit_custom(self.messages[self.delivered], self.index, self.buffers[self.delivered])
            self.delivered += 1
        return changed

    def pump(self, timeout: float = 120.0, on_push: Callable[[list[str]], None] | None = None) -> None:
        """Forward the page's new requests, then push changes every 50 ms until the worker is idle."""
        sent = self.wpage.sent(self.index)
        for msg in sent[self.forwarded :]:
            self.widget._on_message(self.widget, msg, [])
        self.forwarded = len(sent)
        deadline = time.monotonic() + timeout
        while True:
            idle = self.widget.wait(0.05)
            changed = self.push()
            if changed and on_push is not None:
                on_push(changed)
            if idle:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"the widget's worker did not finish within {timeout} s")
        changed = self.push()
        if changed and on_push is not None:
            on_push(changed)

    def done(self, kind: str) -> list[dict[str, Any]]:
        """The ``done`` answers to the page's requests of type ``kind``."""
        ids = {m["id"] for m in self.wpage.sent(self.index) if m["type"] == kind}
        return [m for m in self.messages if m.get("type") == "done" and m.get("id") in ids]
