"""The newest-frame policy: a slot per key (a camera, a robot) and a worker thread that takes the
newest item of each, so that work never waits behind older frames."""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Hashable


class NewestWorker:
    """Keeps the newest item per key (a camera, a robot) and hands them to ``process`` on its own
    thread.

    A subscription callback calls :meth:`put` (cheap; the executor keeps taking messages while the
    worker computes); an item still waiting when a newer one of its key arrives is replaced and
    reported to ``on_skip``. The worker takes the keys that wait longest first, up to
    ``max_items`` at once; with ``max_items > 1`` it waits up to ``max_wait_s`` from the first item
    for items of other keys (at most ``keys()`` of them: one per robot), a micro-batch. With a
    ``gate`` (returns 0 when the worker may take items now, else the seconds after which to ask
    again) items wait in their slots while it is closed, newer ones still replacing older ones;
    :meth:`wake` asks it again at once (the edge's in-flight limit: a result came back). With
    ``stale`` ((item, idle_since) -> bool; ``idle_since``: when the worker last became free,
    monotonic s), an item found stale when the gate opens is skipped (``on_skip``) and the worker
    waits for a newer one. :meth:`stop` processes what is still waiting, gate or not, then ends
    the thread.
    """

    def __init__(
        self,
        name: str,
        process: Callable[[list[Any]], None],
        on_skip: Callable[[Hashable, Any], None],
        on_error: Callable[[BaseException], None],
        max_items: int = 1,
        max_wait_s: float = 0.0,
        keys: Callable[[], int] = lambda: 1,
        gate: Callable[[], float] | None = None,
        stale: Callable[[Any, float], bool] | None = None,
    ) -> None:
        self._process, self._on_skip, self._on_error = process, on_skip, on_error
        self._gate, self._stale = gate, stale
        self._max_items, self._max_wait_s, self._keys = max(1, max_items), max_wait_s, keys
        self._slots: dict[Hashable, Any] = {}
        self._first_s = 0.0
        self._idle_since = time.monotonic()
        self._cv = threading.Condition()
        self._running = True
        self.busy = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def put(self, key: Hashable, item: Any) -> bool:
        """Store ``item`` as the newest of ``key``; True when it replaced (skipped) an older
        one."""
        with self._cv:
            old = self._slots.get(key)
            if not self._slots:
                self._first_s = time.monotonic()
            # an existing key keeps its place in the order: waiting longest first
            self._slots[key] = item
            self._cv.notify()
        if old is not None:
            self._on_skip(key, old)
        return old is not None

    @property
    def waiting(self) -> int:
        with self._cv:
            return len(self._slots)

    def wake(self) -> None:
        """Ask the gate again now (it may have opened)."""
        with self._cv:
            self._cv.notify()

    def _take(self) -> list[Any] | None:
        with self._cv:
            while True:
                while self._running and not self._slots:
                    self._cv.wait()
                if not self._slots:
                    return None  # stopped, nothing left
                delay = self._gate() if self._running and self._gate is not None else 0.0
                if delay > 0:
                    # closed: a wake(), a newer item or the delay asks again
                    self._cv.wait(delay)
                    continue
                if self._running and self._stale is not None:
                    old = [
                        (k, v) for k, v in self._slots.items() if self._stale(v, self._idle_since)
                    ]
                    if old:
                        for key, _ in old:
                            del self._slots[key]
                        self._cv.release()  # on_skip outside the lock, as put() calls it
                        try:
                            for key, item in old:
                                self._on_skip(key, item)
                        finally:
                            self._cv.acquire()
                        continue
                break
            want = min(self._max_items, max(1, self._keys()))
            deadline = self._first_s + self._max_wait_s
            while self._running and len(self._slots) < want and time.monotonic() < deadline:
                self._cv.wait(deadline - time.monotonic())
            keys = list(self._slots)[: self._max_items]
            items = [self._slots.pop(k) for k in keys]
            if self._slots:
                self._first_s = time.monotonic()
            self.busy = True
            return items

    def _run(self) -> None:
        while True:
            items = self._take()
            if items is None:
                return
            try:
                self._process(items)
            except Exception as exc:  # noqa: BLE001 - one bad item must not end the worker
                self._on_error(exc)
            finally:
                self.busy = False
                self._idle_since = time.monotonic()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Process what is waiting, then end the thread (waits up to ``timeout_s``)."""
        with self._cv:
            self._running = False
            self._cv.notify_all()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout_s)
