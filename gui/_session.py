"""Session files: the graph, the open views with their settings, and the window layout, as
versioned JSON (Qt's geometry and dock state are kept base64-encoded)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SESSION_SCHEMA = "ami-gui-session"
SESSION_VERSION = 1


class SessionError(ValueError):
    """A session file that cannot be read; the message says why."""


@dataclass
class Session:
    graph: dict[str, Any] = field(default_factory=dict)
    views: list[dict[str, Any]] = field(default_factory=list)
    geometry: bytes = b""
    state: bytes = b""
    manager: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"schema": SESSION_SCHEMA, "version": SESSION_VERSION, "manager": self.manager,
                "graph": self.graph, "views": self.views,
                "geometry": base64.b64encode(self.geometry).decode(),
                "state": base64.b64encode(self.state).decode()}

    @classmethod
    def from_dict(cls, data: Any) -> Session:
        if not isinstance(data, dict) or data.get("schema") != SESSION_SCHEMA:
            raise SessionError("this is not an AMI GUI session file")
        if data.get("version") != SESSION_VERSION:
            raise SessionError(f"session version {data.get('version')!r} is not supported "
                               f"(this GUI reads version {SESSION_VERSION})")
        views = data.get("views", [])
        if not isinstance(views, list) or not all(isinstance(v, dict) and
                                                  isinstance(v.get("view"), str) for v in views):
            raise SessionError("'views' must be a list of objects with a 'view' name")
        try:
            geometry = base64.b64decode(data.get("geometry", ""))
            state = base64.b64decode(data.get("state", ""))
        except ValueError as exc:
            raise SessionError(f"window layout is corrupt ({exc})") from None
        graph = data.get("graph", {})
        if not isinstance(graph, dict):
            raise SessionError("'graph' must be a graph object")
        return cls(graph, views, geometry, state, str(data.get("manager", "")))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> Session:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise SessionError(f"cannot read {path}: {exc}") from None
        return cls.from_dict(data)
