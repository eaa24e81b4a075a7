"""The reactor: one selector and one timer heap; knows no processes.

Everything corral waits for goes through here: the signal socket, children's
output pipes, stdout's writability, probe sockets, probe timers.  `wait`
sleeps until one of them is ready or the given timeout passes and runs the
ready callbacks; `run_timers` runs the timers that are due.  With nothing
registered as due, `next_deadline()` is None and the caller may sleep with no
timeout at all: an idle corral makes no wakeups.
"""

from __future__ import annotations

import heapq
import itertools
import selectors
import time
from collections.abc import Callable
from typing import Any

MAX_WAIT = 86400.0  # epoll cannot wait ~24.8 days: far deadlines wake us once a day


class Timer:
    """A callback due at a monotonic time; `cancel()` makes it a no-op."""

    __slots__ = ("cancelled", "fn", "when")

    def __init__(self, when: float, fn: Callable[[], None]) -> None:
        self.when = when
        self.fn = fn
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class Reactor:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._selector = selectors.DefaultSelector()
        self._timers: list[tuple[float, int, Timer]] = []
        self._sequence = itertools.count()

    # -- file descriptors -------------------------------------------------------

    def watch(self, fileobj: Any, events: int, fn: Callable[[int], None]) -> None:
        self._selector.register(fileobj, events, fn)

    def unwatch(self, fileobj: Any) -> None:
        self._selector.unregister(fileobj)

    def watching(self, fileobj: Any) -> bool:
        try:
            self._selector.get_key(fileobj)
        except KeyError:
            return False
        return True

    def wait(self, timeout: float | None) -> None:
        """Sleep until something is ready (at most `timeout` s), run its callbacks."""
        if timeout is not None:
            timeout = min(max(0.0, timeout), MAX_WAIT)
        for key, mask in self._selector.select(timeout):
            key.data(mask)

    def close(self) -> None:
        self._selector.close()

    # -- timers -----------------------------------------------------------------

    def call_later(self, delay: float, fn: Callable[[], None]) -> Timer:
        timer = Timer(self.clock() + delay, fn)
        heapq.heappush(self._timers, (timer.when, next(self._sequence), timer))
        return timer

    def next_deadline(self) -> float | None:
        while self._timers and self._timers[0][2].cancelled:
            heapq.heappop(self._timers)
        return self._timers[0][0] if self._timers else None

    def run_timers(self, now: float) -> None:
        while self._timers and self._timers[0][0] <= now:
            _, _, timer = heapq.heappop(self._timers)
            if not timer.cancelled:
                timer.cancelled = True
                timer.fn()
