"""With a constants store, workers offer DET:calib and DET:image sources computed from raw."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ami.graph import Graph, Node
from ami.runtime import WorkerCore
from calib import Calibrator, CalibSources, CalibStore, deploy_truth
from daq.sim import make_detector
from daq.timing import TimingConfig, TimingSystem
from daq.xtc import (
    Dgram,
    Names,
    NamesBlock,
    ParentBlock,
    ShapesDataBlock,
    TransitionId,
    make_dgram,
    segment_src,
)


def test_worker_offers_and_computes_calibrated_sources(tmp_path: Path) -> None:
    store = CalibStore(tmp_path / "calib")
    deploy_truth(store, "epix100", "epix")
    det = make_detector("epix100", "epix")
    names = Names.create("epix", "epix100", det.xtc_fields(), node_id=1, index=0,
                         alg=det.alg)
    sources = CalibSources(store)
    core = WorkerCore("w0", derive=lambda dets: sources.for_run(dets, 5))
    cfg = make_dgram(TransitionId.Configure, 1, 0, [ParentBlock(segment_src(1),
                                                                  [NamesBlock(names)])])
    announced = core.configure(Dgram(cfg.tobytes()))
    assert announced["epix:calib"].type == "image" and "epix:image" in announced
    graph = Graph(nodes=(Node("cal", "latest", {"value": "epix:calib"}),
                         Node("img", "latest", {"value": "epix:image"})),
                  views={"cal": "cal", "img": "img"})
    core.set_graph(graph, 1)
    assert core.graph_error == ""
    timing = TimingSystem(TimingConfig.from_dict({"beam_rate": 120.0,
                                                  "start_time": 1.7e9})).start()
    shot = timing.shot(3)
    raw = det.read(shot)["raw"]
    ev = make_dgram(TransitionId.L1Accept, shot.seconds, shot.nanoseconds, [ParentBlock(
        segment_src(1), [ShapesDataBlock(names, {"raw": raw})])])
    core.on_dgram(Dgram(ev.tobytes()))
    assert core.stage is not None
    states = core.stage.take()
    want = Calibrator.from_store(store, "epix100", "epix", 5).calib(raw)
    np.testing.assert_allclose(states["node:cal"].result(), want)
    image = states["node:img"].result()
    assert image.ndim == 2 and np.isfinite(image).any()
    assert core.counters["errors"] == 0
