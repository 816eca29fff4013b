"""Validation: a :class:`Graph` checked against the sources and the operation registry becomes a
:class:`Plan` (nodes in execution order, inputs resolved, each node placed in a stage), or a
:class:`GraphError` listing every problem in words a scientist reads.

Stages: ``event`` nodes run on every event in the workers; accumulators fold events and their
outputs are ``heartbeat`` values, merged by the collectors; nodes that read accumulated values
run once per heartbeat in the global collector.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ami.expr import ExpressionError
from ami.ops import (
    OpSpec,
    ParamError,
    Registry,
    UnknownOperationError,
    default_registry,
    port_accepts,
)

from ._model import NODE_NAME, Graph, GraphError, Node

_A = {"scalar": "a scalar", "bool": "a true/false value", "array1d": "a 1-D array",
      "waveform": "a waveform", "image": "an image", "array": "an array", "dict": "a table",
      "any": "any value"}


@dataclass(frozen=True)
class PlannedNode:
    """A node ready to build: its spec, checked parameters, input references in call order."""

    name: str
    spec: OpSpec
    params: dict[str, Any]
    inputs: tuple[tuple[str, str], ...]  # (port, reference), in the order the op takes them
    outputs: dict[str, str]  # output port -> type
    stage: str  # "event" or "heartbeat"
    filter: str | None
    signature: str  # identical signatures may keep their accumulated state across edits
    used: frozenset[str] | None = None  # output ports something reads (None: assume all)

    @property
    def kind(self) -> str:
        return self.spec.kind

    def build(self) -> Any:
        """The operation, computing only the outputs in :attr:`used` where it can."""
        return self.spec.make_for(self.used, **self.params)


@dataclass(frozen=True)
class Plan:
    """A validated graph: nodes in execution order, the sources they read, the views."""

    graph: Graph
    nodes: tuple[PlannedNode, ...]
    sources: tuple[str, ...]
    views: dict[str, str]  # view name -> resolved reference
    stages: dict[str, str]  # reference -> stage of its value

    def node(self, name: str) -> PlannedNode:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)


class _Resolver:
    """Turns references into (canonical reference, type); remembers what is missing."""

    def __init__(self, sources: Mapping[str, str],
                 outputs: Mapping[str, Mapping[str, str]]) -> None:
        self.sources = sources
        self.outputs = outputs

    def resolve(self, ref: str) -> tuple[str, str]:
        if ":" in ref:
            if ref in self.sources:
                return ref, self.sources[ref]
            hint = difflib.get_close_matches(ref, list(self.sources), n=1)
            did = f"; did you mean '{hint[0]}'?" if hint else ""
            raise GraphError(f"unknown source '{ref}'{did}")
        node, _, out = ref.partition(".")
        if node not in self.outputs:
            hint = difflib.get_close_matches(node, list(self.outputs), n=1)
            did = f"; did you mean '{hint[0]}'?" if hint else ""
            raise GraphError(f"'{ref}' names no source or node{did}")
        outs = self.outputs[node]
        if not out:
            if len(outs) != 1:
                raise GraphError(f"node '{node}' has outputs {', '.join(outs)}: say which one, "
                                 f"e.g. '{node}.{next(iter(outs))}'")
            out = next(iter(outs))
        if out not in outs:
            raise GraphError(f"node '{node}' has no output '{out}' (it has {', '.join(outs)})")
        return f"{node}.{out}", outs[out]

    def expression_name(self, name: str) -> str:
        """The reference an expression name means when the node does not map it."""
        det, _, fld = name.partition(".")
        if fld and f"{det}:{fld}" in self.sources:
            return f"{det}:{fld}"
        return name


def _ports(node: Node, spec: OpSpec, params: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(port, type, optional) of the node's inputs; expression names for variadic ops."""
    if spec.variadic:
        names = spec.make(**params).names
        return [(n, "any", False) for n in names]
    return [(p.name, p.type, p.optional) for p in spec.inputs]


def validate(graph: Graph, sources: Mapping[str, str], registry: Registry | None = None) -> Plan:
    """Check ``graph`` against ``sources`` (name -> port type); a Plan or GraphError."""
    registry = registry or default_registry()
    problems: list[str] = []
    nodes: dict[str, Node] = {}
    for node in graph.nodes:
        if node.name in nodes:
            problems.append(f"two nodes are named '{node.name}': names must be unique")
        nodes[node.name] = node
    if problems:
        raise GraphError(problems)
    specs: dict[str, OpSpec] = {}
    params: dict[str, dict[str, Any]] = {}
    ports: dict[str, list[tuple[str, str, bool]]] = {}
    for node in nodes.values():
        try:
            specs[node.name] = spec = registry.get(node.op)
            params[node.name] = spec.check(node.params)
            ports[node.name] = _ports(node, spec, params[node.name])
        except UnknownOperationError as exc:
            problems.append(f"node '{node.name}': {exc}")
        except (ParamError, ExpressionError) as exc:
            problems.append(f"node '{node.name}': {exc}")
    if problems:
        raise GraphError(problems)
    outputs = {n: {p.name: p.type for p in specs[n].outputs} for n in nodes}
    resolver = _Resolver(sources, outputs)
    resolved: dict[str, list[tuple[str, str]]] = {}
    for name, node in nodes.items():
        spec = specs[name]
        known = {p for p, _, _ in ports[name]}
        for port in node.inputs:
            if port not in known:
                what = "names" if spec.variadic else "inputs"
                problems.append(f"node '{name}': {node.op} has no input '{port}' (its {what}: "
                                f"{', '.join(sorted(known)) or 'none'})")
        pairs: list[tuple[str, str]] = []
        for port, want, optional in ports[name]:
            ref = node.inputs.get(port)
            if ref is None and spec.variadic:
                ref = resolver.expression_name(port)
            if ref is None:
                if not optional:
                    problems.append(f"node '{name}': input '{port}' is not connected")
                continue
            try:
                canonical, have = resolver.resolve(ref)
            except GraphError as exc:
                problems.append(f"node '{name}', input '{port}': {exc}")
                continue
            if canonical.split(".")[0] == name and ":" not in canonical:
                problems.append(f"node '{name}' reads its own output '{canonical}'")
                continue
            if not port_accepts(want, have):
                problems.append(f"node '{name}': input '{port}' needs {_A[want]} but "
                                f"'{ref}' is {_A[have]}")
                continue
            pairs.append((port, canonical))
        resolved[name] = pairs
        if node.filter is not None:
            if node.filter not in nodes:
                problems.append(f"node '{name}': its filter '{node.filter}' is not a node")
            elif specs[node.filter].kind != "filter":
                kind = specs[node.filter].kind
                problems.append(f"node '{name}': '{node.filter}' is a {kind} node, not a filter")
    if problems:
        raise GraphError(problems)
    order = _topological(nodes, resolved)
    return _finish(graph, nodes, specs, params, resolved, outputs, order, resolver)


def _deps(node: Node, pairs: list[tuple[str, str]]) -> list[str]:
    deps = [ref.split(".")[0] for _, ref in pairs if ":" not in ref]
    if node.filter is not None:
        deps.append(node.filter)
    return deps


def _topological(nodes: dict[str, Node], resolved: dict[str, list[tuple[str, str]]]) -> list[str]:
    """Nodes in an order where every node follows what it reads; GraphError naming a cycle."""
    order: list[str] = []
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = [*path[path.index(name):], name]
            raise GraphError(f"nodes form a cycle: {' -> '.join(cycle)}")
        state[name] = 1
        for dep in _deps(nodes[name], resolved[name]):
            visit(dep, [*path, name])
        state[name] = 2
        order.append(name)

    for name in nodes:
        visit(name, [])
    return order


def _finish(graph: Graph, nodes: dict[str, Node], specs: dict[str, OpSpec],
            params: dict[str, dict[str, Any]], resolved: dict[str, list[tuple[str, str]]],
            outputs: Mapping[str, Mapping[str, str]], order: list[str],
            resolver: _Resolver) -> Plan:
    problems: list[str] = []
    stages: dict[str, str] = {}
    planned: list[PlannedNode] = []
    used_sources: list[str] = []
    for name in order:
        node, spec, pairs = nodes[name], specs[name], resolved[name]
        in_stages = {ref: stages.get(ref, "event") for _, ref in pairs}
        if node.filter is not None:
            in_stages[node.filter] = stages[f"{node.filter}.pass"]
        late = sorted(r for r, s in in_stages.items() if s == "heartbeat")
        early = sorted(r for r, s in in_stages.items() if s == "event")
        if late and early:
            problems.append(
                f"node '{name}' mixes per-event values ({', '.join(early)}) with accumulated "
                f"values ({', '.join(late)}); accumulate the per-event ones too (e.g. with "
                "running_mean)")
            continue
        stage = "heartbeat" if late else "event"
        out_stage = "heartbeat" if spec.kind == "accumulator" else stage
        out_types = dict(outputs[name])
        if spec.kind == "accumulator" and len(pairs) == 1:
            for port, typ in out_types.items():  # an average of images is an image
                if typ == "any":
                    out_types[port] = resolver.resolve(pairs[0][1])[1]
        for port in out_types:
            stages[f"{name}.{port}"] = out_stage
        used_sources.extend(ref for _, ref in pairs if ":" in ref and stage == "event")
        signature = repr((node.op, sorted(params[name].items()), pairs, node.filter))
        planned.append(PlannedNode(name, spec, params[name], tuple(pairs), out_types, stage,
                                   node.filter, signature))
    views: dict[str, str] = {}
    for view, ref in graph.views.items():
        if not NODE_NAME.match(view):
            problems.append(f"view '{view}': a view name holds only letters, digits and '_'")
            continue
        try:
            canonical, _ = resolver.resolve(ref)
        except GraphError as exc:
            problems.append(f"view '{view}': {exc}")
            continue
        if ":" in canonical:
            used_sources.append(canonical)
        views[view] = canonical
    if problems:
        raise GraphError(problems)
    read = {ref for p in planned for _, ref in p.inputs} | set(views.values())
    read |= {f"{p.filter}.pass" for p in planned if p.filter is not None}
    planned = [dataclasses.replace(p, used=frozenset(o for o in p.outputs
                                                     if f"{p.name}.{o}" in read))
               for p in planned]
    return Plan(graph, tuple(planned), tuple(dict.fromkeys(used_sources)), views, stages)
