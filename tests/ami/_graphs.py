"""The graph the runtime tests run, and its answer computed in one process."""

from __future__ import annotations

from typing import Any

from ami.graph import EventStage, Graph, HeartbeatStage, Node, validate
from daq.xtc import Decoder, NamesLookup, TransitionId

from . import _data


def graph() -> Graph:
    return Graph((
        Node("r", "roi", {"image": "cam:raw"}, {"r0": 2, "r1": 10, "c0": 3, "c1": 20}),
        Node("on", "filter", params={"expression": "timing.laser > 0"}),
        Node("s", "running_sum", {"value": "r.sum"}, filter="on"),
        Node("h", "histogram1d", {"value": "gasdet:energy"}, {"nbins": 16, "lo": 0, "hi": 4}),
        Node("m", "running_mean", {"value": "cam:raw"}),
        Node("p", "projection", {"image": "m"}),
        Node("bad", "pixel", {"image": "cam:raw"}, {"tile": 0}),
    ), {"s": "s", "h": "h", "p": "p", "bad": "bad", "e": "gasdet:energy"})


def single_process(n_events: int) -> dict[str, Any]:
    """Every view after all events, computed by one stage fed every event."""
    dgrams = _data.dgrams(n_events)
    decoder = Decoder(NamesLookup.from_configure(dgrams[0]))
    g = graph()
    plan = validate(g, {"cam:raw": "image", "gasdet:energy": "scalar", "timing:laser": "scalar",
                        "timing:fiducial": "scalar"})
    stage = EventStage(plan)
    for d in dgrams:
        if d.service != TransitionId.L1Accept:
            continue
        values = {f"{it.det_name}:{k}": v for it in decoder.decode(d).items
                  for k, v in it.values.items()}
        stage.process(values, d.seconds + d.nanoseconds * 1e-9)
    total = HeartbeatStage(plan)
    total.merge(stage.take())
    return total.evaluate(0.0)


def events_per_heartbeat(n_events: int, hz: float = 10.0) -> dict[int, int]:
    from ami.runtime import Heartbeats

    hb = Heartbeats(hz)
    counts: dict[int, int] = {}
    for i in range(n_events):
        k = hb.of(*_data.event_time(i))
        counts[k] = counts.get(k, 0) + 1
    return counts
