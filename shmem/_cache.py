"""The transition cache: the begin transitions still open, replayed to a client attaching late."""

from __future__ import annotations

from dataclasses import dataclass

from daq.xtc import TransitionId

#: nesting level of each begin transition and of the end that closes it
_BEGIN_LEVEL = {TransitionId.Configure: 0, TransitionId.BeginRun: 1, TransitionId.BeginStep: 2,
                TransitionId.Enable: 3}
_END_LEVEL = {TransitionId.Unconfigure: 0, TransitionId.EndRun: 1, TransitionId.EndStep: 2,
              TransitionId.Disable: 3}


@dataclass(frozen=True)
class CacheEntry:
    service: int
    timestamp: int
    slot: int
    level: int


class TransitionCache:
    """Stack of open begin transitions (Configure, BeginRun, BeginStep, Enable).

    An end transition pops its begin and everything deeper. A begin pops anything deeper
    and a same-level entry of another time (a Configure without Unconfigure replaces the old
    one), but keeps same-level entries of the same time: several streams replayed together
    each bring their own Configure. ``push`` returns the slots no longer cached.
    """

    def __init__(self) -> None:
        self._stack: list[CacheEntry] = []

    def push(self, service: int, timestamp: int, slot: int) -> tuple[bool, list[int]]:
        """Record a transition; returns (cached, slots released)."""
        if service in _END_LEVEL:
            return False, self._pop_from(_END_LEVEL[TransitionId(service)])
        if service not in _BEGIN_LEVEL:
            return False, []
        level = _BEGIN_LEVEL[TransitionId(service)]
        released = self._pop_from(level + 1)
        keep = [e for e in self._stack if e.level < level or e.timestamp == timestamp]
        released += [e.slot for e in self._stack if e not in keep]
        self._stack = keep
        self._stack.append(CacheEntry(service, timestamp, slot, level))
        return True, released

    def _pop_from(self, level: int) -> list[int]:
        out = [e.slot for e in self._stack if e.level >= level]
        self._stack = [e for e in self._stack if e.level < level]
        return out

    def entries(self) -> list[CacheEntry]:
        return list(self._stack)

    def slots(self) -> list[int]:
        return [e.slot for e in self._stack]

    def __len__(self) -> int:
        return len(self._stack)

    def clear(self) -> list[int]:
        out = self.slots()
        self._stack = []
        return out
