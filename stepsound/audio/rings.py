"""Lock-free hand-over between the audio thread and the main thread.

Both are single-producer/single-consumer: the audio callback only ever
appends, the main thread only ever takes; overflows are counted, never
waited on.
"""
from __future__ import annotations

import collections

import numpy as np


class SpscQueue:
    """Bounded single-producer/single-consumer event queue (overflows counted).

    ``put`` is called by the audio thread, ``drain`` by the main thread;
    ``collections.deque`` appends and pops are atomic in CPython.
    """

    def __init__(self, capacity: int = 4096):
        self._q: collections.deque = collections.deque()
        self.capacity = int(capacity)
        self.dropped = 0

    def put(self, item) -> None:
        if len(self._q) >= self.capacity:
            self.dropped += 1
        else:
            self._q.append(item)

    def drain(self) -> list:
        out = []
        q = self._q
        while q:
            out.append(q.popleft())
        return out


class SampleRing:
    """Single-producer/single-consumer ring of float32 samples (overflows counted).

    Parameters
    ----------
    capacity : int [samples]
    """

    def __init__(self, capacity: int):
        self.buf = np.zeros(int(capacity), np.float32)
        self.capacity = int(capacity)
        self.written = 0   # only the producer writes this
        self.read = 0      # only the consumer writes this
        self.overflow = 0

    def push(self, x: np.ndarray) -> None:
        """Producer: append samples (drops what does not fit, counted)."""
        n = len(x)
        free = self.capacity - (self.written - self.read)
        if n > free:
            self.overflow += n - free
            n = free
        start = self.written % self.capacity
        first = min(n, self.capacity - start)
        self.buf[start:start + first] = x[:first]
        if n > first:
            self.buf[:n - first] = x[first:n]
        self.written += n

    def available(self) -> int:
        return self.written - self.read

    def pop_into(self, out: np.ndarray) -> int:
        """Consumer: move up to len(out) samples into ``out``; return how many."""
        n = min(len(out), self.written - self.read)
        start = self.read % self.capacity
        first = min(n, self.capacity - start)
        out[:first] = self.buf[start:start + first]
        if n > first:
            out[first:n] = self.buf[:n - first]
        self.read += n
        return n
