"""The graph model: JSON round trips, sources from Names, validation messages."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ami.graph import (
    SCHEMA_VERSION,
    EventStage,
    Graph,
    GraphError,
    HeartbeatStage,
    Node,
    sources_from_names,
    validate,
)
from daq.xtc import Alg, DataType, Field, Names

SOURCES = {"cam:raw": "image", "gasdet:energy": "scalar", "timing:laser": "scalar",
           "acq:waveforms": "image", "acq:trace": "array1d"}


def _problems(graph: Graph) -> list[str]:
    with pytest.raises(GraphError) as info:
        validate(graph, SOURCES)
    return info.value.problems


def test_json_round_trip(tmp_path):
    g = Graph((Node("r", "roi", {"image": "cam:raw"}, {"r0": 2}, filter="f"),
               Node("f", "filter", params={"expression": "timing.laser > 0"})), {"v": "r.sum"})
    g.save(tmp_path / "g.json")
    assert Graph.load(tmp_path / "g.json") == g
    assert json.loads((tmp_path / "g.json").read_text())["version"] == SCHEMA_VERSION


def test_unsupported_version_is_refused():
    with pytest.raises(GraphError, match="version 99 is not supported"):
        Graph.from_dict({"schema": "ami-graph", "version": 99, "nodes": []})


def test_malformed_node_is_refused():
    with pytest.raises(GraphError, match="'inputs' must map"):
        Graph.from_dict({"version": 1, "nodes": [{"name": "a", "op": "roi", "inputs": [1]}]})
    with pytest.raises(GraphError, match="node name must start"):
        Graph.from_dict({"version": 1, "nodes": [{"name": "1a", "op": "roi"}]})


def test_unknown_source_suggests_the_closest():
    problems = _problems(Graph((Node("r", "roi", {"image": "cam:rwa"}),)))
    assert problems == ["node 'r', input 'image': unknown source 'cam:rwa'; did you mean "
                        "'cam:raw'?"]


def test_type_mismatch_says_what_was_expected():
    problems = _problems(Graph((Node("r", "roi", {"image": "gasdet:energy"}),)))
    assert problems == ["node 'r': input 'image' needs an array but 'gasdet:energy' is a "
                        "scalar"]


def test_cycle_is_named():
    g = Graph((Node("a", "projection", {"image": "b.area"}),
               Node("b", "roi", {"image": "a"})))
    assert _problems(g) == ["nodes form a cycle: a -> b -> a"]


def test_bad_parameter_and_unknown_operation():
    g = Graph((Node("a", "roi", {"image": "cam:raw"}, {"r0": "x"}),
               Node("b", "histogram", {"value": "a.sum"})))
    problems = _problems(g)
    assert "node 'a': roi: r0 must be a whole number, got 'x'" in problems
    assert any("unknown operation 'histogram'; did you mean" in p for p in problems)


def test_unconnected_input_and_ambiguous_output():
    problems = _problems(Graph((Node("a", "roi", {"image": "cam:raw"}),
                                Node("b", "running_sum", {"value": "a"}),
                                Node("c", "projection"))))
    assert any("node 'a' has outputs area, sum" in p for p in problems)
    assert "node 'c': input 'image' is not connected" in problems


def test_filter_must_be_a_filter_node():
    g = Graph((Node("a", "roi", {"image": "cam:raw"}), Node("b", "pixel", {"image": "cam:raw"},
                                                           filter="a")))
    assert _problems(g) == ["node 'b': 'a' is a map node, not a filter"]


def test_mixing_event_and_heartbeat_values_is_explained():
    g = Graph((Node("m", "running_mean", {"value": "cam:raw"}),
               Node("d", "background_subtract", {"data": "cam:raw", "reference": "m"})))
    assert "mixes per-event values" in _problems(g)[0]


def test_expression_names_resolve_to_sources_and_nodes():
    g = Graph((Node("r", "roi", {"image": "cam:raw"}),
               Node("c", "calculator", {"s": "r.sum"}, {"expression": "s / gasdet.energy"})))
    plan = validate(g, SOURCES)
    assert plan.node("c").inputs == (("s", "r.sum"), ("gasdet.energy", "gasdet:energy"))
    assert set(plan.sources) == {"cam:raw", "gasdet:energy"}


def test_sources_are_named_and_typed_from_names():
    raw, fex = Alg.of("raw"), Alg.of("fex")
    all_names = [
        Names.create("cspad", "cspad", [Field("raw", DataType.UINT16, 3)], node_id=1, index=0),
        Names.create("acq", "acqiris", [Field("waveforms", DataType.INT16, 2),
                                        Field("note", DataType.CHARSTR, 1)],
                     node_id=1, index=1, alg=raw),
        Names.create("acq", "acqiris", [Field("waveforms", DataType.INT16, 2)],
                     node_id=1, index=2, alg=fex),
        Names.create("gasdet", "bld", [Field("energy", DataType.DOUBLE)], node_id=2, index=0),
        Names.create("epix", "epix", [Field("raw", DataType.UINT16, 2)], node_id=3, index=0,
                     segment=0),
        Names.create("epix", "epix", [Field("raw", DataType.UINT16, 2)], node_id=3, index=1,
                     segment=1),
    ]
    types = {n: s.type for n, s in sources_from_names(all_names).items()}
    assert types == {"cspad:raw": "array", "acq:waveforms:raw": "image",
                     "acq:waveforms:fex": "image", "gasdet:energy": "scalar",
                     "epix:raw:s0": "image", "epix:raw:s1": "image"}


def test_stages_run_a_graph_and_report_errors():
    g = Graph((Node("r", "roi", {"image": "cam:raw"}, {"r0": 0, "r1": 2, "c0": 0, "c1": 2}),
               Node("on", "filter", params={"expression": "timing.laser > 0"}),
               Node("s", "running_sum", {"value": "r.sum"}, filter="on"),
               Node("bad", "pixel", {"image": "cam:raw"}, {"tile": 0}),
               Node("m", "running_mean", {"value": "cam:raw"}),
               Node("p", "projection", {"image": "m"})),
              {"s": "s", "bad": "bad", "p": "p"})
    stage = EventStage(validate(g, SOURCES))
    for i in range(4):
        stage.process({"cam:raw": np.full((3, 3), float(i)), "timing:laser": i % 2}, float(i))
    errors = stage.errors.take()
    assert errors["bad"][0] == 4 and "tile" in errors["bad"][1]
    total = HeartbeatStage(stage.plan)
    total.merge(stage.take())
    views = total.evaluate(0.0)
    assert views["s"] == 4 * (1 + 3)  # events 1 and 3 pass the filter; 2x2 ROI
    assert views["bad"] is None
    np.testing.assert_allclose(views["p"], [4.5, 4.5, 4.5])
