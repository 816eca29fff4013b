"""A synthetic live data feed into shared memory, stamped with the wall clock, for trying the
GUI, its tests, screenshots and benchmarks against a real ``ami local --source shmem://TAG``.

Per event: ``timing:laser`` (on two events of three), ``gasdet:energy`` (mJ), ``cam:raw`` (an
image with a wandering Gaussian spot on noise) and ``acq:wave`` (a trace with two pulses).
Only this module imports :mod:`shmem` and :mod:`daq.xtc` writers, lazily.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

import numpy as np

EPICS_EPOCH_OFFSET = 631152000  # POSIX seconds at 1990-01-01 (as daq.xtc)


class LiveFeed:
    """Puts Configure, BeginRun, Enable, then events at ``rate`` Hz into a shmem ring ``tag``
    from a thread; :meth:`stop` sends Disable and EndRun and closes the ring."""

    def __init__(self, tag: str, *, rate: float = 30.0, shape: tuple[int, int] = (64, 96),
                 samples: int = 400, seed: int = 1) -> None:
        self.tag, self.rate, self.shape, self.samples = tag, rate, shape, samples
        self.seed = seed
        self.sent = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._server: Any = None
        self._names: dict[str, Any] = {}

    # -- dgrams ------------------------------------------------------------------------------
    def _make_names(self) -> dict[str, Any]:
        from daq.xtc import Alg, DataType, Field, Names

        raw = Alg.of("raw", 1, 0, 0)
        return {
            "timing": Names.create("timing", "timing", [
                Field("fiducial", DataType.UINT32), Field("laser", DataType.UINT8)],
                node_id=1, index=0, alg=raw),
            "gasdet": Names.create("gasdet", "bld", [Field("energy", DataType.DOUBLE)],
                                   node_id=1, index=1, alg=raw),
            "cam": Names.create("cam", "opal", [Field("raw", DataType.UINT16, 2)],
                                node_id=1, index=2, alg=raw),
            "acq": Names.create("acq", "acqiris", [Field("wave", DataType.DOUBLE, 1)],
                                node_id=1, index=3, alg=raw),
        }

    def _dgram(self, service: Any, blocks: list[Any]) -> Any:
        from daq.xtc import ParentBlock, event_src, make_dgram, segment_src

        t = time.time() - EPICS_EPOCH_OFFSET
        sec = int(t)
        return make_dgram(service, sec, int((t - sec) * 1e9),
                          [ParentBlock(segment_src(1), blocks)], root_src=event_src(0))

    def values(self, i: int, rng: np.random.Generator) -> dict[str, dict[str, Any]]:
        """The values of event ``i`` (deterministic given the generator's state)."""
        rows, cols = self.shape
        phase = 2 * np.pi * i / 300.0
        r0 = rows * (0.5 + 0.25 * np.sin(phase))
        c0 = cols * (0.5 + 0.25 * np.cos(phase))
        energy = float(rng.gamma(20.0, 0.1))
        rr = np.arange(rows)[:, None] - r0
        cc = np.arange(cols)[None, :] - c0
        spot = 800.0 * energy / 2.0 * np.exp(-(rr**2 + cc**2) / (2 * (0.06 * rows) ** 2))
        image = rng.poisson(20.0, self.shape) + spot
        x = np.arange(self.samples, dtype=np.float64)
        w1, w2 = 0.25 * self.samples, 0.6 * self.samples + 10 * np.sin(phase)
        wave = (energy * np.exp(-((x - w1) / 6.0) ** 2)
                + 0.5 * energy * np.exp(-((x - w2) / 9.0) ** 2)
                + rng.normal(0.0, 0.03, self.samples))
        return {"timing": {"fiducial": 3 * i, "laser": int(i % 3 != 0)},
                "gasdet": {"energy": energy},
                "cam": {"raw": np.clip(image, 0, 65535).astype(np.uint16)},
                "acq": {"wave": wave}}

    # -- thread ------------------------------------------------------------------------------
    def start(self) -> LiveFeed:
        import shmem
        from daq.xtc import NamesBlock, TransitionId

        self._names = self._make_names()
        size = max(1 << 20, 4 * self.shape[0] * self.shape[1] + 16 * self.samples + 65536)
        self._server = shmem.ShmemServer(self.tag, n_buffers=8, buffer_size=size)
        self._server.open()
        self._server.put(self._dgram(TransitionId.Configure,
                                     [NamesBlock(n) for n in self._names.values()]))
        self._server.put(self._dgram(TransitionId.BeginRun, []))
        self._server.put(self._dgram(TransitionId.Enable, []))
        self._thread = threading.Thread(target=self._run, name=f"feed-{self.tag}", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        from daq.xtc import ShapesDataBlock, TransitionId

        rng = np.random.default_rng(self.seed)
        period = 1.0 / self.rate
        next_t = time.monotonic()
        i = 0
        while not self._stop.is_set():
            vals = self.values(i, rng)
            blocks = [ShapesDataBlock(self._names[d], vals[d]) for d in self._names]
            self._server.put(self._dgram(TransitionId.L1Accept, blocks))
            self.sent = i = i + 1
            next_t += period
            delay = next_t - time.monotonic()
            if delay < -1.0:  # far behind (machine busy): do not try to catch up
                next_t = time.monotonic()
            self._stop.wait(max(0.0, delay))  # pacing, not synchronisation

    def stop(self) -> None:
        from daq.xtc import TransitionId

        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)
            self._thread = None
        if self._server is not None:
            self._server.put(self._dgram(TransitionId.Disable, []))
            self._server.put(self._dgram(TransitionId.EndRun, []))
            self._server.close()
            self._server = None

    def __enter__(self) -> LiveFeed:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    """Feed until SIGTERM or Ctrl-C: ``python -c "from gui._feed import main; main()" --tag T
    [--rate HZ] [--shape ROWSxCOLS]``."""
    import argparse
    import signal

    p = argparse.ArgumentParser(prog="gui-feed", description="synthetic live feed")
    p.add_argument("--tag", required=True)
    p.add_argument("--rate", type=float, default=30.0)
    p.add_argument("--shape", default="64x96")
    args = p.parse_args(argv if argv is not None else sys.argv[1:])
    rows, cols = (int(v) for v in args.shape.split("x"))
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    with LiveFeed(args.tag, rate=args.rate, shape=(rows, cols)):
        done.wait()
    return 0
