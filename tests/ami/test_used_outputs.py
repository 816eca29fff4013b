"""The plan tells each node which of its outputs something reads, and the per-event stage does
only that work, with the same results as computing everything."""

from __future__ import annotations

import numpy as np

from ami.graph import EventStage, Graph, HeartbeatStage, Node, validate
from ami.ops import project

SOURCES = {"cam:raw": "image", "timing:laser": "scalar"}
ROI = {"r0": 1, "r1": 5, "c0": 2, "c1": 7}


def _run(graph: Graph, frames: list[np.ndarray]) -> dict:
    stage = EventStage(validate(graph, SOURCES))
    for i, frame in enumerate(frames):
        stage.process({"cam:raw": frame, "timing:laser": i % 2}, 100.0 + i)
    assert stage.errors.take() == {}
    total = HeartbeatStage(stage.plan)
    total.merge(stage.take())
    return total.evaluate(0.0)


def test_plan_lists_the_outputs_read_by_nodes_filters_and_views():
    g = Graph((Node("r", "roi", {"image": "cam:raw"}, ROI),
               Node("p", "projection", {"image": "r.area"}),
               Node("on", "filter", params={"expression": "timing.laser > 0"}),
               Node("unread", "roi", {"image": "cam:raw"}, ROI),
               Node("s", "running_sum", {"value": "r.com_row"}, filter="on")),
              {"p": "p", "mx": "r.max", "s": "s"})
    plan = validate(g, SOURCES)
    assert plan.node("r").used == {"area", "max", "com_row"}
    assert plan.node("p").used == {"profile"}
    assert plan.node("on").used == {"pass"}
    assert plan.node("unread").used == frozenset()
    assert plan.node("s").used == {"sum"}


def test_area_only_graph_gives_the_projection_of_the_roi():
    frames = [np.random.default_rng(i).random((8, 9)) for i in range(3)]
    frames[1][2, 3] = np.nan
    g = Graph((Node("r", "roi", {"image": "cam:raw"}, ROI),
               Node("p", "projection", {"image": "r.area"})), {"p": "p", "a": "r.area"})
    views = _run(g, frames)
    np.testing.assert_allclose(views["p"], project(frames[-1][1:5, 2:7], 0), rtol=1e-12)
    np.testing.assert_array_equal(views["a"], frames[-1][1:5, 2:7])


def test_statistics_read_downstream_match_a_full_roi():
    frames = [np.random.default_rng(i).random((8, 9)) * 10 for i in range(4)]
    frames[2][1, 2] = np.nan
    nodes = (Node("r", "roi", {"image": "cam:raw"}, {**ROI, "count_threshold": 5.0}),)
    sums = Node("s", "running_sum", {"value": "r.sum"})
    counts = Node("c", "running_sum", {"value": "r.count"})
    only = _run(Graph((*nodes, sums, counts), {"s": "s", "c": "c"}), frames)
    every = _run(Graph((*nodes, sums, counts),
                       {"s": "s", "c": "c", **{o: f"r.{o}" for o in
                                               ("mean", "max", "com_row", "com_col")}}),
                 frames)
    area = [f[1:5, 2:7] for f in frames]
    assert only["s"] == every["s"]
    np.testing.assert_allclose(only["s"], sum(np.nansum(a) for a in area), rtol=1e-12)
    assert only["c"] == every["c"] == sum(int((a > 5).sum()) for a in area)
    assert every["max"] == np.nanmax(area[-1])


def test_accumulators_start_fresh_after_take():
    g = Graph((Node("r", "roi", {"image": "cam:raw"}, ROI),
               Node("s", "running_sum", {"value": "r.sum"})), {"s": "s"})
    stage = EventStage(validate(g, SOURCES))
    stage.process({"cam:raw": np.ones((8, 9))}, 1.0)
    first = stage.take()
    stage.process({"cam:raw": np.ones((8, 9)) * 2}, 2.0)
    second = stage.take()
    assert first["node:s"].result() == 20.0 and second["node:s"].result() == 40.0
