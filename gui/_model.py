"""What the editor needs to know about a graph, without Qt: the references a node may read and
their types, the operations that accept a type, new nodes with default parameters, and which
kind of view shows a value."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from ami.graph import Graph, Node
from ami.ops import REQUIRED, OpSpec, Registry, default_registry, port_accepts

CURSOR_PARAMS = ("at", "a", "b", "c", "d")
ROI_PARAMS = ("r0", "r1", "c0", "c1")


@dataclass(frozen=True)
class Ref:
    """A value a node may read: a source (``epix:raw``) or a node output (``r.sum``)."""

    ref: str
    type: str
    node: str | None = None  # the node producing it, None for a source


def source_types(sources: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {name: str(info.get("type", "any")) for name, info in sources.items()}


def references(graph: Graph, sources: dict[str, str], registry: Registry,
               before: str | None = None) -> list[Ref]:
    """Sources, then the outputs of the graph's nodes (those listed before ``before`` only,
    when given, so that a node cannot read itself)."""
    out = [Ref(name, typ) for name, typ in sorted(sources.items())]
    for node in graph.nodes:
        if node.name == before:
            break
        if node.op not in registry:
            continue
        spec = registry.get(node.op)
        for port in spec.outputs:
            out.append(Ref(f"{node.name}.{port.name}", port.type, node.name))
    return out


def first_input(spec: OpSpec) -> str | None:
    """The type of the operation's first input (None for calculators and filters)."""
    if spec.variadic or not spec.inputs:
        return None
    return spec.inputs[0].type


def ops_for(type_: str | None, registry: Registry) -> dict[str, list[OpSpec]]:
    """Operations by category whose first input accepts ``type_`` (all when None); calculators
    and filters accept anything."""
    out: dict[str, list[OpSpec]] = {}
    for spec in registry.all():
        first = first_input(spec)
        if type_ is None or first is None or port_accepts(first, type_):
            out.setdefault(spec.category, []).append(spec)
    return out


def unique_name(base: str, taken: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9_]", "_", base) or "node"
    if not re.match(r"[A-Za-z_]", base):
        base = "n_" + base
    if base not in taken:
        return base
    return next(f"{base}{i}" for i in itertools.count(1) if f"{base}{i}" not in taken)


def default_params(spec: OpSpec) -> dict[str, Any]:
    """Every parameter with its default (required ones: a neutral value the user edits)."""
    out: dict[str, Any] = {}
    for p in spec.params:
        if p.default is not REQUIRED:
            out[p.name] = p.default
        elif p.kind == "int":
            out[p.name] = 0
        elif p.kind == "float":
            out[p.name] = 0.0
        elif p.kind == "bool":
            out[p.name] = False
        elif p.kind == "choice":
            out[p.name] = p.choices[0] if p.choices else ""
        else:
            out[p.name] = ""
    return out


def expression_name(ref: str) -> str:
    """How an expression names a reference: ``gasdet:f11`` -> ``gasdet.f11``."""
    return ref.replace(":", ".")


def new_node(spec: OpSpec, ref: Ref | None, graph: Graph,
             shape: tuple[int, ...] | None = None) -> Node:
    """A node of ``spec`` reading ``ref`` on its first input, with default parameters (an
    ROI covering the middle of an image of known ``shape``)."""
    stem = spec.name if ref is None else f"{spec.name}_{ref.ref.split('.')[0].split(':')[0]}"
    name = unique_name(stem, set(graph.names()))
    params = default_params(spec)
    inputs: dict[str, str] = {}
    if spec.variadic:
        if ref is not None:
            params["expression"] = (f"{expression_name(ref.ref)} > 0" if spec.kind == "filter"
                                    else expression_name(ref.ref))
    elif ref is not None and spec.inputs:
        inputs[spec.inputs[0].name] = ref.ref
    if spec.name == "roi" and shape is not None and len(shape) >= 2:
        rows, cols = shape[-2], shape[-1]
        params.update(r0=rows // 4, r1=3 * rows // 4, c0=cols // 4, c1=3 * cols // 4)
    if spec.name in ("cursor_integral", "cursor_moments", "cursor_ratio", "cursor_difference",
                     "cursor_value", "roi_1d") and shape is not None and len(shape) == 1:
        n = shape[0]
        params.update({k: v for k, v in dict(at=n / 2, a=n / 4, b=n / 2, c=n / 2, d=3 * n / 4,
                                             x0=n // 4, x1=3 * n // 4).items() if k in params})
    return Node(name, spec.name, inputs, params)


def node_output_ref(node: Node, registry: Registry) -> str:
    """The reference of a node's main (first) output."""
    if node.op in registry:
        outs = registry.get(node.op).outputs
        if len(outs) > 1:
            return f"{node.name}.{outs[0].name}"
    return node.name


def view_kind(value: Any, op: str | None = None) -> str:
    """Which view shows ``value``: image, line, hist1d, hist2d, strip, scatter, binned, scalar
    or table."""
    if isinstance(value, dict):
        keys = set(value)
        if {"xedges", "yedges", "counts"} <= keys:
            return "hist2d"
        if {"edges", "counts"} <= keys:
            return "hist1d"
        if {"keys", "x", "y"} <= keys:
            if op == "scatter":
                return "scatter"
            if op == "strip_chart":
                return "strip"
            x, k = np.asarray(value["x"]), np.asarray(value["keys"])
            return "strip" if x.shape == k.shape and np.array_equal(x, k) else "scatter"
        if {"values", "mean", "counts"} <= keys:
            return "binned"
        return "table"
    if isinstance(value, np.ndarray):
        if value.ndim >= 2 and min(value.shape[-2:]) > 4:
            return "image"
        if value.ndim == 1 and value.size > 1:
            return "line"
        return "table"
    if isinstance(value, bool | int | float | np.generic):
        return "scalar"
    return "table"


def ref_node(ref: str) -> str | None:
    return None if ":" in ref else ref.split(".", 1)[0]


def readers(graph: Graph, ref: str, ops: tuple[str, ...], port: str) -> list[Node]:
    """Nodes of the given operations whose input ``port`` reads ``ref`` (or the same node
    output spelled without its port)."""
    want = {ref}
    if "." in ref:
        node, _, _ = ref.partition(".")
        want.add(node)
    out = []
    for n in graph.nodes:
        if n.op in ops and n.inputs.get(port) in want:
            out.append(n)
    return out


def registry() -> Registry:
    """The operations the GUI offers (those of the AMI service)."""
    return default_registry()
