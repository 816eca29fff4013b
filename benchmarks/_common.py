"""Shared helpers: results, machine description, scratch folders."""

from __future__ import annotations

import os
import platform
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass
class Result:
    """One measured figure, with the target it is held against (if any)."""

    suite: str
    name: str
    value: float
    unit: str
    target: float | None = None
    higher_is_better: bool = True
    note: str = ""

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        return self.value >= self.target if self.higher_is_better else self.value <= self.target

    def row(self) -> str:
        target = "" if self.target is None else (
            f"{'>=' if self.higher_is_better else '<='} {self.target:,.4g}")
        met = {None: "", True: "met", False: "MISSED"}[self.met]
        return (f"{self.suite:<8} {self.name:<46} {self.value:>14,.4g} {self.unit:<9} "
                f"{target:<14} {met:<6} {self.note}")

    def asdict(self) -> dict[str, object]:
        return asdict(self) | {"met": self.met}


def machine() -> str:
    cpu = "unknown cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{platform.node()}: {os.cpu_count()} cores ({cpu}), {mem:.0f} GiB, "
            f"{platform.system()} {platform.release()}, Python {platform.python_version()}")


@contextmanager
def scratch(prefix: str) -> Iterator[Path]:
    """A temporary folder (under $BENCH_DIR if set), removed afterwards."""
    base = os.environ.get("BENCH_DIR")
    with tempfile.TemporaryDirectory(prefix=prefix, dir=base) as d:
        yield Path(d)


def best_rate(fn: Callable[[], int], repeat: int = 3) -> float:
    """Best items/s over ``repeat`` runs of ``fn`` (which returns the item count)."""
    best = 0.0
    for _ in range(repeat):
        t0 = time.perf_counter()
        n = fn()
        dt = time.perf_counter() - t0
        best = max(best, n / dt if dt > 0 else float("inf"))
    return best
