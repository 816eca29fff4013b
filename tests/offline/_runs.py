"""Record simulated runs as the DAQ does: several streams, steps, SlowUpdates, chunks.

Node 1 holds timing, gasdet (small: inlined in the small data), EPICS (read at SlowUpdates),
runinfo and the scan; node 2 an optional ePix100; node 3 an optional Acqiris. Every slot of the
timing system (transition or event) has its own counter and time, as in the DAQ; events go to
stream ``event number % streams``; transitions to every stream.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from daq.sim import make_detector
from daq.timing import Shot, TimingConfig, TimingSystem
from daq.xtc import (
    NAMES_ID_STEPINFO,
    Alg,
    DataType,
    Dgram,
    Field,
    Names,
    NamesBlock,
    ParentBlock,
    ShapesDataBlock,
    TransitionId,
    event_src,
    make_dgram,
    segment_src,
)
from daq.xtc._stream import StreamWriter, runinfo_names

START = 1_700_000_000.0
T = TransitionId


@dataclass
class Truth:
    shots: list[Shot] = field(default_factory=list)  #: of the events, in order
    step_of: list[int] = field(default_factory=list)
    scan: list[float] = field(default_factory=list)  #: scan value of each step
    epics: list[dict[str, float]] = field(default_factory=list)  #: in effect at each event


class SimRun:
    """A run being recorded: ``open()``, ``step()`` (or ``begin_step``/``events``/``end_step``),
    ``close()``; or ``record()`` for all of it."""

    def __init__(self, root: Path, expt: str, run: int, *, streams: int = 2,
                 epix: bool = False, acqiris: bool = False, steps: int = 1,
                 events_per_step: int = 10, slow_every: int = 7, chunk_bytes: int = 1 << 31,
                 epix_params: dict[str, Any] | None = None, scan_var: str = "motor1",
                 laser_off_every: int = 3) -> None:
        self.root, self.expt, self.run = root, expt, run
        self.nstreams = streams
        self.steps, self.events_per_step, self.slow_every = steps, events_per_step, slow_every
        self.timing = TimingSystem(TimingConfig.from_dict(
            {"start_time": START, "laser_off_every": laser_off_every}))
        self.slot = 0
        self.truth = Truth()
        self.scan_var = scan_var
        self.dets: dict[int, list[Any]] = {1: [make_detector("timing", "timing"),
                                               make_detector("gasdet", "gasdet")]}
        self.epics = make_detector("epics", "epics", rate_hz=1000.0)
        if epix:
            self.dets[2] = [make_detector("epix100", "epix", **(epix_params or {}))]
        if acqiris:
            self.dets[3] = [make_detector("acqiris", "acqiris", samples=400,
                                          peak_times=(100.0, 250.0))]
        self.names: dict[int, list[Names]] = {}
        for node, dets in self.dets.items():
            self.names[node] = [Names.create(d.det_name, d.det_type, d.xtc_fields(),
                                             node_id=node, index=k, det_id=d.det_id, alg=d.alg)
                                for k, d in enumerate(dets)]
        self.epics_names = Names.create("epics", "epics", self.epics.xtc_fields(), node_id=1,
                                        index=10, alg=Alg.of("raw", 1, 0, 0))
        self.runinfo = runinfo_names(1)
        self.scan_names = Names.create("scan", "scan", [
            Field("step", DataType.UINT32), Field(scan_var, DataType.DOUBLE)],
            node_id=1, index=NAMES_ID_STEPINFO, alg=Alg.of("raw", 2, 0, 0))
        self.writers = [StreamWriter(root, expt, run, s, chunk_bytes=chunk_bytes)
                        for s in range(streams)]
        self.nevents = 0
        self.nstep = 0
        self._epics_now: dict[str, float] = {}

    def scan_value(self, step: int) -> float:
        return 0.5 * step

    # -- dgrams -----------------------------------------------------------------------------
    def _next_shot(self) -> Shot:
        shot = self.timing.shot(self.slot)
        self.slot += 1
        return shot

    def _dgram(self, service: TransitionId, shot: Shot, parents: list[ParentBlock],
               stream: int) -> Dgram:
        enc = make_dgram(service, shot.seconds, shot.nanoseconds, parents,
                         root_src=event_src(stream), readout_groups=1)
        return Dgram(enc.tobytes())

    def _transition(self, service: TransitionId, blocks1: list | None = None) -> None:
        shot = self._next_shot()
        parents = [ParentBlock(segment_src(1), blocks1 or [])]
        parents += [ParentBlock(segment_src(n), []) for n in self.dets if n != 1]
        for s, w in enumerate(self.writers):
            w.write(self._dgram(service, shot, parents, s))

    def open(self) -> None:
        for w in self.writers:
            w.open()
        conf = [NamesBlock(n) for n in [*self.names[1], self.epics_names, self.runinfo,
                                         self.scan_names]]
        shot = self._next_shot()
        for s, w in enumerate(self.writers):
            parents = [ParentBlock(segment_src(1), conf)]
            parents += [ParentBlock(segment_src(n), [NamesBlock(x) for x in self.names[n]])
                        for n in self.dets if n != 1]
            w.write(self._dgram(T.Configure, shot, parents, s))
        self._transition(T.BeginRun, [ShapesDataBlock(self.runinfo, {"expt": self.expt,
                                                                       "runnum": self.run})])
        self._slow_update()

    def _slow_update(self) -> None:
        shot = self.timing.shot(self.slot)
        values = self.epics.read(shot)
        self._epics_now = {k: float(v) for k, v in values.items()}
        self._transition(T.SlowUpdate, [ShapesDataBlock(self.epics_names, values)])

    def begin_step(self) -> None:
        self._transition(T.BeginStep, [ShapesDataBlock(self.scan_names, {
            "step": self.nstep, self.scan_var: self.scan_value(self.nstep)})])
        self._transition(T.Enable)

    def events(self, n: int) -> None:
        for _ in range(n):
            if self.slow_every and self.nevents and self.nevents % self.slow_every == 0:
                self._slow_update()
            shot = self._next_shot()
            parents = [ParentBlock(segment_src(node), [
                ShapesDataBlock(nm, d.read(shot)) for nm, d in zip(self.names[node], dets,
                                                                    strict=True)])
                for node, dets in self.dets.items()]
            s = self.nevents % self.nstreams
            self.writers[s].write(self._dgram(T.L1Accept, shot, parents, s))
            self.truth.shots.append(shot)
            self.truth.step_of.append(self.nstep)
            self.truth.epics.append(dict(self._epics_now))
            self.nevents += 1

    def end_step(self) -> None:
        self._transition(T.Disable)
        self._transition(T.EndStep)
        self.truth.scan.append(self.scan_value(self.nstep))
        self.nstep += 1

    def step(self) -> None:
        self.begin_step()
        self.events(self.events_per_step)
        self.end_step()

    def flush(self) -> None:
        for w in self.writers:
            w.flush()

    def close(self, end_run: bool = True) -> None:
        if end_run:
            self._transition(T.EndRun)
        for w in self.writers:
            w.close(complete=end_run)

    def record(self) -> Truth:
        self.open()
        for _ in range(self.steps):
            self.step()
        self.close()
        return self.truth

    def detector(self, name: str) -> Any:
        for dets in self.dets.values():
            for d in dets:
                if d.det_name == name:
                    return d
        raise KeyError(name)


def record(root: Path, expt: str = "tst", run: int = 1, **kw: Any) -> tuple[SimRun, Truth]:
    sim = SimRun(root, expt, run, **kw)
    return sim, sim.record()


def timestamps(truth: Truth) -> np.ndarray:
    return np.array([s.timestamp64 for s in truth.shots], np.uint64)
