"""The operation registry: every spec builds and runs, and parameter errors read well."""

from __future__ import annotations

import numpy as np
import pytest

from ami.ops import (
    PORT_TYPES,
    Accumulator,
    OpSpec,
    ParamError,
    Registry,
    UnknownOperationError,
    default_registry,
    port_accepts,
)

REGISTRY = default_registry()
RNG = np.random.default_rng(0)
SAMPLES = {
    "scalar": 2.0,
    "bool": True,
    "array1d": np.sin(np.linspace(0, 20, 128)) * 5,
    "waveform": np.sin(np.linspace(0, 20, 128)) * 5,
    "image": RNG.uniform(0, 10, (16, 20)),
    "array": RNG.uniform(0, 10, (16, 20)),
    "any": np.arange(4.0),
}
REQUIRED_PARAMS = {
    "find_edges": {"threshold": 2.0},
    "calculator": {"expression": "a * 2 + b"},
    "filter": {"expression": "a > 1 and b < 3"},
}


def sample_inputs(spec: OpSpec) -> list[object]:
    if spec.variadic:
        return [2.0, 1.0]  # a, b
    inputs = [SAMPLES[p.type] for p in spec.inputs if not p.optional]
    if spec.name == "mask":
        inputs[1] = np.ones((16, 20), dtype=bool)
    if spec.name == "template_match":
        inputs[1] = SAMPLES["waveform"][10:30]
    return inputs


def test_names_are_unique_and_described() -> None:
    names = REGISTRY.names()
    assert len(names) == len(set(names)) == len(REGISTRY) >= 30
    for spec in REGISTRY.all():
        assert spec.doc and spec.category and spec.outputs
        assert spec.kind in ("map", "filter", "accumulator")
        for port in (*spec.inputs, *spec.outputs):
            assert port.type in PORT_TYPES
        assert spec.variadic or spec.inputs


@pytest.mark.parametrize("spec", REGISTRY.all(), ids=lambda s: s.name)
def test_every_operation_builds_from_defaults_and_runs(spec: OpSpec) -> None:
    op = spec.make(**REQUIRED_PARAMS.get(spec.name, {}))
    inputs = sample_inputs(spec)
    if spec.kind == "accumulator":
        assert isinstance(op, Accumulator)
        value = inputs[0] if len(inputs) == 1 else tuple(inputs)
        op.update(value, key=1.0)
        op.update(value, key=2.0)
        assert op.result() is not None
        return
    out = op(*inputs)
    if spec.kind == "filter":
        assert out is True
    elif len(spec.outputs) > 1:
        assert isinstance(out, tuple) and len(out) == len(spec.outputs)
    else:
        assert not isinstance(out, tuple)


def test_defaults_pass_their_own_checks() -> None:
    for spec in REGISTRY.all():
        for param in spec.params:
            if not param.required:
                assert param.check(spec.name, param.default) == param.default


def test_calculator_and_filter_take_inputs_in_name_order() -> None:
    calc = REGISTRY.get("calculator").make(expression="(roi.sum - bkg) / gasdet.energy")
    assert calc.names == ("roi.sum", "bkg", "gasdet.energy")
    assert calc(10.0, 2.0, 4.0) == 2.0
    keep = REGISTRY.get("filter").make(expression="gasdet.energy > 1.5 and timing.laser")
    assert keep(2.0, True) is True and keep(2.0, False) is False
    with pytest.raises(ValueError, match="one true/false value"):
        keep(np.array([2.0, 3.0]), True)


def test_azimuthal_op_adapts_to_the_image_shape() -> None:
    op = REGISTRY.get("azimuthal").make(center_row=8, center_col=8, nbins=5)
    q, intensity = op(np.ones((16, 16)))
    assert q.shape == intensity.shape == (5,)
    q2, _ = op(np.ones((32, 32)))
    assert q2[-1] > q[-1]


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("roi", {"r0": 20, "r1": 10}, r"^roi: r1 \(10\) must be greater than r0 \(20\)$"),
        ("roi", {"r00": 1}, r"roi: unknown parameter 'r00'; did you mean 'r0'\?"),
        ("roi", {"r0": "ten"}, r"roi: r0 must be a whole number, got 'ten'"),
        ("roi", {"r0": 1.5}, r"roi: r0 must be a whole number, got 1.5"),
        ("roi", {"tile": -1}, r"roi: tile \(-1\) must be at least 0"),
        ("roi", {"r0": True}, "whole number"),
        ("histogram1d", {"nbins": 0}, r"histogram1d: nbins \(0\) must be at least 1"),
        ("histogram1d", {"lo": 5.0, "hi": 1.0}, r"histogram1d: hi \(1\.0\) must be greater"),
        ("histogram1d", {"lo": float("nan")}, "must be a finite number"),
        ("find_edges", {}, "find_edges: parameter 'threshold' is required"),
        ("find_edges", {"threshold": 0.0}, "threshold .* must differ from baseline"),
        ("find_edges", {"threshold": 1.0, "fraction": 1.5}, r"fraction \(1.5\) must be at most"),
        ("azimuthal", {"unit": "k"}, "azimuthal: unit must be one of 'q', 'r', '2theta'"),
        ("azimuthal", {"photon_energy": None}, "needs a wavelength"),
        ("azimuthal", {"q_min": 0.1}, "both range ends"),
        ("projection", {"mean": "yes"}, "projection: mean must be true or false"),
        ("threshold", {"lo": 3.0, "hi": 1.0}, r"threshold: hi \(1\.0\) must not be less"),
        ("calculator", {"expression": "1 +"}, r"calculator: expected a number.*column 4"),
        ("calculator", {"expression": 5}, "calculator: expression must be text"),
        ("mean_vs_scan", {"resolution": 0.0}, "resolution .* must be a positive number"),
        ("cfd", {"threshold": None}, "threshold must be given"),
    ],
)
def test_parameter_errors_read_well(name: str, params: dict, message: str) -> None:
    with pytest.raises(ParamError, match=message):
        REGISTRY.get(name).make(**params)


def test_numpy_numbers_are_accepted_as_parameters() -> None:
    op = REGISTRY.get("roi").make(r0=np.int64(1), r1=np.int32(3), count_threshold=np.float32(1))
    assert op(np.ones((5, 5)))[1] == 10.0  # rows 1-2, all 5 columns
    assert REGISTRY.get("mask").make(fill=float("nan"))(np.ones(2), np.array([1, 0]))[1] != 1


def test_unknown_operation_suggests_a_name() -> None:
    with pytest.raises(UnknownOperationError, match="unknown operation 'histogram'; did you mean"):
        REGISTRY.get("histogram")
    assert "roi" in REGISTRY and "nope" not in REGISTRY


def test_registry_is_fresh_each_time_and_refuses_duplicates() -> None:
    mine = default_registry()
    spec = mine.get("roi")
    with pytest.raises(ValueError, match="already registered"):
        mine.register(spec)
    assert len(Registry.of([spec])) == 1
    assert set(mine.by_category()) == {
        "roi",
        "image",
        "waveform",
        "cursor",
        "expression",
        "accumulate",
    }


@pytest.mark.parametrize(
    ("input_type", "output_type", "ok"),
    [
        ("array", "image", True),
        ("array", "waveform", True),
        ("waveform", "array1d", True),
        ("array1d", "waveform", True),
        ("image", "array1d", False),
        ("scalar", "bool", True),
        ("bool", "scalar", False),
        ("scalar", "array", False),
        ("any", "image", True),
        ("image", "any", True),
    ],
)
def test_port_compatibility(input_type: str, output_type: str, ok: bool) -> None:
    assert port_accepts(input_type, output_type) is ok
