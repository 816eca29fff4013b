"""The graph a user edits: named nodes (an operation, its inputs, parameters, an optional gating
filter) and the views that publish outputs. Plain data, saved as JSON with a schema version.

References name where a value comes from: a source (``epix:raw``, always with a colon), a node
output (``roi1.sum``) or a single-output node by its name (``roi1``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCHEMA = "ami-graph"
SCHEMA_VERSION = 1
NODE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
MAX_NODES = 1000
MAX_JSON_BYTES = 1 << 20


class GraphError(ValueError):
    """A graph that cannot run; ``problems`` lists every reason, each one sentence."""

    def __init__(self, problems: list[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("; ".join(self.problems))


@dataclass(frozen=True)
class Node:
    """One operation of the graph.

    ``inputs`` maps the operation's input ports (for calculators and filters: the names used in
    the expression) to references; ``filter`` names a filter node that gates this node.
    """

    name: str
    op: str
    inputs: dict[str, str] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    filter: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "op": self.op}
        if self.inputs:
            out["inputs"] = dict(self.inputs)
        if self.params:
            out["params"] = dict(self.params)
        if self.filter is not None:
            out["filter"] = self.filter
        return out

    @classmethod
    def from_dict(cls, data: Any) -> Node:
        """A node from its JSON form; GraphError naming the node if a field is malformed."""
        if not isinstance(data, dict):
            raise GraphError(f"a node must be a JSON object, got {type(data).__name__}")
        name = data.get("name")
        label = f"node '{name}'" if isinstance(name, str) else "a node"
        unknown = set(data) - {"name", "op", "inputs", "params", "filter"}
        if unknown:
            raise GraphError(f"{label}: unknown field(s) {', '.join(sorted(unknown))}")
        if not isinstance(name, str) or not NODE_NAME.match(name):
            raise GraphError(
                f"{label}: a node name must start with a letter or '_' and hold only letters, "
                "digits and '_' (at most 64)"
            )
        op = data.get("op")
        if not isinstance(op, str):
            raise GraphError(f"{label}: 'op' (the operation's name) must be text")
        inputs = data.get("inputs", {})
        if not isinstance(inputs, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in inputs.items()
        ):
            raise GraphError(f"{label}: 'inputs' must map port names to references (text)")
        params = data.get("params", {})
        if not isinstance(params, dict) or not all(isinstance(k, str) for k in params):
            raise GraphError(f"{label}: 'params' must be an object of parameter values")
        flt = data.get("filter")
        if flt is not None and not isinstance(flt, str):
            raise GraphError(f"{label}: 'filter' must be the name of a filter node")
        return cls(name, op, dict(inputs), dict(params), flt)


@dataclass(frozen=True)
class Graph:
    """Nodes in the user's order and views (published name -> reference)."""

    nodes: tuple[Node, ...] = ()
    views: dict[str, str] = field(default_factory=dict)

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def names(self) -> list[str]:
        return [n.name for n in self.nodes]

    def with_node(self, node: Node) -> Graph:
        """This graph with ``node`` added, or replacing the node of the same name."""
        if node.name in self.names():
            nodes = tuple(node if n.name == node.name else n for n in self.nodes)
        else:
            nodes = (*self.nodes, node)
        return Graph(nodes, dict(self.views))

    def without_node(self, name: str) -> Graph:
        """This graph without node ``name`` and the views that read it."""
        if name not in self.names():
            raise GraphError(f"there is no node named '{name}'")
        views = {v: ref for v, ref in self.views.items() if _ref_node(ref) != name}
        return Graph(tuple(n for n in self.nodes if n.name != name), views)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "version": SCHEMA_VERSION,
            "nodes": [n.to_dict() for n in self.nodes],
            "views": dict(self.views),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, sort_keys=False)

    @classmethod
    def from_dict(cls, data: Any) -> Graph:
        if not isinstance(data, dict):
            raise GraphError("a graph must be a JSON object")
        if data.get("schema", SCHEMA) != SCHEMA:
            raise GraphError(f"this is not an AMI graph (schema {data.get('schema')!r})")
        version = data.get("version")
        if version != SCHEMA_VERSION:
            raise GraphError(
                f"graph file version {version!r} is not supported (this AMI reads version "
                f"{SCHEMA_VERSION})"
            )
        nodes = data.get("nodes", [])
        if not isinstance(nodes, list):
            raise GraphError("'nodes' must be a list")
        if len(nodes) > MAX_NODES:
            raise GraphError(f"a graph holds at most {MAX_NODES} nodes, this one {len(nodes)}")
        views = data.get("views", {})
        if not isinstance(views, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in views.items()
        ):
            raise GraphError("'views' must map view names to references (text)")
        return cls(tuple(Node.from_dict(n) for n in nodes), dict(views))

    @classmethod
    def from_json(cls, text: str | bytes) -> Graph:
        if len(text) > MAX_JSON_BYTES:
            raise GraphError(f"graph text larger than {MAX_JSON_BYTES} bytes")
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise GraphError(f"the graph is not valid JSON ({exc})") from None
        return cls.from_dict(data)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json() + "\n")

    @classmethod
    def load(cls, path: str | Path) -> Graph:
        return cls.from_json(Path(path).read_bytes())


def _ref_node(ref: str) -> str | None:
    """The node a reference reads, None for a source."""
    if ":" in ref:
        return None
    return ref.split(".", 1)[0]
