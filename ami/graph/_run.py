"""Running a :class:`Plan`: the per-event part in a worker, the per-heartbeat part in the global
collector. Pure computation: values in, accumulator states and view values out, no I/O.

An operation that raises on an event is recorded against its node (count and message) and gives
no output for that event, so only what depends on it skips the event; the graph runs on.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from ami.ops import Accumulator, Latest

from ._plan import Plan, PlannedNode

MAX_ERROR_TEXT = 500
_MISSING = object()


def plain(value: Any) -> Any:
    """A result as numbers, arrays, text and dicts (what the wire carries)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


class NodeErrors:
    """Per node: how many events raised and the latest exception text."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.messages: dict[str, str] = {}

    def record(self, node: str, exc: BaseException) -> None:
        self.counts[node] = self.counts.get(node, 0) + 1
        self.messages[node] = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_TEXT]

    def take(self) -> dict[str, list[Any]]:
        """``{node: [count, message]}`` since the last take."""
        out = {n: [c, self.messages[n]] for n, c in self.counts.items()}
        self.counts, self.messages = {}, {}
        return out


class _Step:
    """One node ready to run: its op, the references it reads, its gate and where its outputs go
    (None for an output nothing reads)."""

    __slots__ = ("gate", "kind", "name", "node", "op", "outs", "refs")

    def __init__(self, node: PlannedNode, op: Any) -> None:
        self.node, self.op, self.name, self.kind = node, op, node.name, node.kind
        self.refs = tuple(r for _, r in node.inputs)
        self.gate = None if node.filter is None else f"{node.filter}.pass"
        used = node.used
        self.outs = tuple(f"{node.name}.{port}" if used is None or port in used else None
                          for port in node.outputs)


def _call(step: _Step, args: list[Any], values: dict[str, Any], key: float) -> None:
    kind = step.kind
    if kind == "map":
        out = step.op(*args)
        outs = step.outs
        if len(outs) == 1:
            if outs[0] is not None:
                values[outs[0]] = out
        else:
            for ref, v in zip(outs, out, strict=True):
                if ref is not None:
                    values[ref] = v
    elif kind == "filter":
        passed = bool(step.op(*args))
        if step.outs[0] is not None:
            values[step.outs[0]] = passed
    else:
        step.op.update(args[0] if len(args) == 1 else tuple(args), key=key)


def _run_nodes(steps: list[_Step], values: dict[str, Any], key: float,
               errors: NodeErrors) -> None:
    for step in steps:
        gate = step.gate
        if gate is not None and values.get(gate) is not True:
            continue
        args = []
        for ref in step.refs:
            v = values.get(ref, _MISSING)
            if v is _MISSING:
                break
            args.append(v)
        else:
            try:
                _call(step, args, values, key)
            except Exception as exc:
                errors.record(step.name, exc)


class EventStage:
    """The worker's part: maps, filters and accumulators run on every event.

    :meth:`take` hands over the accumulators' partial states of the heartbeat (with a ``Latest``
    per viewed per-event value) and starts fresh ones.
    """

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.errors = NodeErrors()
        self._nodes = [n for n in plan.nodes if n.stage == "event"]
        self._view_refs = sorted({r for r in plan.views.values()
                                  if plan.stages.get(r, "event") == "event"})
        self._steps: list[_Step] = []
        self._accs: dict[str, Accumulator] = {}
        self._latest: dict[str, Latest] = {}
        self._build()

    def _build(self) -> None:
        self._steps = []
        self._accs = {}
        for node in self._nodes:
            op = node.build()
            if node.kind == "accumulator":
                self._accs[f"node:{node.name}"] = op
            self._steps.append(_Step(node, op))
        self._latest = {f"view:{r}": Latest() for r in self._view_refs}

    def process(self, sources: dict[str, Any], key: float) -> None:
        """Run every per-event node on one event's source values (``key``: its time)."""
        values = dict(sources)
        _run_nodes(self._steps, values, key, self.errors)
        for name, latest in self._latest.items():
            v = values.get(name[5:], _MISSING)
            if v is not _MISSING:
                try:
                    latest.update(v, key=key)
                except (TypeError, ValueError) as exc:
                    self.errors.record(name, exc)

    def take(self) -> dict[str, Accumulator]:
        """The partial states of this heartbeat, by key; the stage restarts empty."""
        out: dict[str, Accumulator] = {**self._accs, **self._latest}
        self._accs = {}
        for step in self._steps:
            if step.kind == "accumulator":
                step.op = self._accs[f"node:{step.name}"] = step.node.build()
        self._latest = {k: Latest() for k in self._latest}
        return out


class HeartbeatStage:
    """The global collector's part: the totals since the graph was set (every heartbeat's merged
    states folded in), the nodes that read accumulated values, and the views.

    ``previous`` hands over the totals of nodes whose definition did not change.
    """

    def __init__(self, plan: Plan, previous: HeartbeatStage | None = None) -> None:
        self.plan = plan
        self.errors = NodeErrors()
        keep = {} if previous is None else previous._keepable()
        self._totals: dict[str, Accumulator] = {}
        self._mean_n: dict[str, Any] = {}
        self._steps: list[_Step] = []
        self._signatures = {n.name: n.signature for n in plan.nodes}
        for node in plan.nodes:
            if node.kind == "accumulator" and f"node:{node.name}" in keep.get(node.signature, {}):
                self._totals[f"node:{node.name}"] = keep[node.signature][f"node:{node.name}"]
            if node.stage == "heartbeat":
                op = self._totals.get(f"node:{node.name}") or node.build()
                if node.kind == "accumulator":
                    self._totals[f"node:{node.name}"] = op
                self._steps.append(_Step(node, op))

    def _keepable(self) -> dict[str, dict[str, Accumulator]]:
        out: dict[str, dict[str, Accumulator]] = {}
        for key, acc in self._totals.items():
            name = key[5:]
            if key.startswith("node:") and name in self._signatures:
                out.setdefault(self._signatures[name], {})[key] = acc
        return out

    def merge(self, states: dict[str, Accumulator]) -> None:
        """Fold in one heartbeat's merged partial states."""
        for key, acc in states.items():
            total = self._totals.get(key)
            try:
                if total is None:
                    self._totals[key] = acc
                else:
                    total.merge(acc)
            except (TypeError, ValueError) as exc:
                self.errors.record(key.partition(":")[2], exc)

    def evaluate(self, key: float) -> dict[str, Any]:
        """Every view's value after the latest merge (None where there is nothing yet)."""
        values: dict[str, Any] = {}
        for node in self.plan.nodes:
            if node.kind == "accumulator" and node.stage == "event":
                self._publish_total(node, values)
        for step in self._steps:
            _run_nodes([step], values, key, self.errors)
            if step.kind == "accumulator":
                self._publish_total(step.node, values)
        out: dict[str, Any] = {}
        for view, ref in self.plan.views.items():
            latest = self._totals.get(f"view:{ref}")
            if latest is not None:
                out[view] = plain(latest.result())
            else:
                out[view] = plain(values.get(ref))
        return out

    def _publish_total(self, node: PlannedNode, values: dict[str, Any]) -> None:
        acc = self._totals.get(f"node:{node.name}")
        port = next(iter(node.outputs))
        if acc is None:
            return
        if getattr(acc, "kind", "") == "mean_n":  # shown once full, then started again
            if getattr(acc, "ready", False):
                self._mean_n[node.name] = acc.result()
                acc.reset()
            if node.name in self._mean_n:
                values[f"{node.name}.{port}"] = plain(self._mean_n[node.name])
            return
        values[f"{node.name}.{port}"] = plain(acc.result())
