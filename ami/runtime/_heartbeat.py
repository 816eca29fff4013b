"""Heartbeat identity: heartbeat k holds the events whose time t (seconds) has
``floor(t * hz) == k``, so every worker computes the same k without talking to the others."""

from __future__ import annotations

import math
from dataclasses import dataclass

from daq.xtc import Dgram


@dataclass(frozen=True)
class Heartbeats:
    """Fixed windows of ``1 / hz`` seconds of event time."""

    hz: float = 10.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.hz) and 0.01 <= self.hz <= 1000):
            raise ValueError(f"heartbeat rate {self.hz} Hz must be between 0.01 and 1000")

    def of(self, seconds: int, nanoseconds: int) -> int:
        """The heartbeat of an event time (integer arithmetic for whole rates: exact)."""
        total_ns = seconds * 1_000_000_000 + nanoseconds
        if float(self.hz).is_integer():
            return total_ns * int(self.hz) // 1_000_000_000
        return math.floor(total_ns * self.hz / 1e9)

    def of_dgram(self, dgram: Dgram) -> int:
        return self.of(dgram.seconds, dgram.nanoseconds)

    def start(self, k: int) -> float:
        """Event time (s) where heartbeat ``k`` begins."""
        return k / self.hz

    def end(self, k: int) -> float:
        return (k + 1) / self.hz

    def at(self, t: float) -> int:
        return math.floor(t * self.hz)
