"""Progress of one input out of ``N``, reported on the caller's progress as a share of the whole job."""

from __future__ import annotations

from typing import Any

from ...core.progress import Progress


class InputProgress(Progress):
    """Forwards ``update(done, total)`` of input ``index`` of ``count`` to ``parent`` as overall progress;
    shares its cancel flag and event listener, never opens a bar of its own."""

    def __init__(self, parent: Progress, index: int, count: int) -> None:
        super().__init__(tqdm=False, cancel_event=parent.cancel_event, on_event=parent.on_event)
        self.parent, self.index, self.count = parent, index, count

    def update(self, done: int, total: int, message: str = "") -> None:
        scale = max(int(total), 1)
        self.parent.update(self.index * scale + min(int(done), scale), self.count * scale, message)

    def emit(self, event: str, data: Any) -> None:
        self.parent.emit(event, data)

    def close(self) -> None:  # the parent's bar belongs to the caller
        pass
