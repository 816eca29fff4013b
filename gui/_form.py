"""The form of one node: its name, a choice of reference for each input (only those of an
accepted type), the gating filter, and its parameters in a pyqtgraph ParameterTree built from
the operation's :class:`ami.ops.Param` specs (limits, choices, help text)."""

from __future__ import annotations

from typing import Any

from PyQt5.QtCore import pyqtSignal
from PyQt5.QtWidgets import QComboBox, QFormLayout, QLabel, QLineEdit, QVBoxLayout, QWidget
from pyqtgraph.parametertree import Parameter, ParameterTree

from ami.graph import Node
from ami.ops import OpSpec, Param, port_accepts

from ._model import Ref

NONE = "(none)"


def param_tree_spec(p: Param, value: Any) -> dict[str, Any]:
    """A pyqtgraph Parameter description of one operation parameter. Optional (nullable)
    numbers are text fields: empty means "not set"."""
    tip = p.doc or p.name
    if p.nullable or (p.kind in ("int", "float") and value is None):
        return {"name": p.name, "type": "str", "value": "" if value is None else str(value),
                "tip": f"{tip} (empty: not set)"}
    if p.kind == "choice":
        return {"name": p.name, "type": "list", "limits": list(p.choices), "value": value,
                "tip": tip}
    if p.kind in ("str", "expression"):
        return {"name": p.name, "type": "str", "value": "" if value is None else str(value),
                "tip": tip}
    spec: dict[str, Any] = {"name": p.name, "type": p.kind, "value": value, "tip": tip}
    if p.min is not None or p.max is not None:
        spec["limits"] = (p.min, p.max)
    if p.kind == "float":
        spec["decimals"] = 8
    return spec


def param_value(p: Param, raw: Any) -> Any:
    """The value to put in the graph from what the form holds."""
    if isinstance(raw, str) and p.kind in ("int", "float"):
        text = raw.strip()
        if not text:
            return None
        try:
            return int(text) if p.kind == "int" else float(text)
        except ValueError:
            return text  # the manager's validation says what is wrong
    if p.kind == "int" and isinstance(raw, float) and raw.is_integer():
        return int(raw)
    return raw


class NodeForm(QWidget):
    """Edits one node; ``node()`` gives the edited node. ``changed`` fires on any edit."""

    changed = pyqtSignal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.spec: OpSpec | None = None
        self.original: Node | None = None
        layout = QVBoxLayout(self)
        self.header = QLabel("Select a node, or pick a source and add an operation.")
        self.header.setWordWrap(True)
        layout.addWidget(self.header)
        self.fields = QFormLayout()
        layout.addLayout(self.fields)
        self.name = QLineEdit()
        self.name.textEdited.connect(lambda _t: self.changed.emit())
        self.inputs: dict[str, QComboBox] = {}
        self.filter = QComboBox()
        self.filter.currentTextChanged.connect(lambda _t: self.changed.emit())
        self.tree = ParameterTree(showHeader=False)
        self.params: Parameter | None = None
        layout.addWidget(self.tree, 1)
        self.setEnabled(False)

    def clear(self) -> None:
        while self.fields.rowCount():
            self.fields.removeRow(0)
        self.name = QLineEdit()
        self.name.textEdited.connect(lambda _t: self.changed.emit())
        self.filter = QComboBox()
        self.filter.currentTextChanged.connect(lambda _t: self.changed.emit())
        self.inputs = {}
        self.tree.clear()
        self.params = None
        self.spec = self.original = None
        self.setEnabled(False)

    def edit(self, node: Node, spec: OpSpec, refs: list[Ref], filters: list[str]) -> None:
        """Show ``node``; ``refs`` are what its inputs may read, ``filters`` the filter nodes."""
        self.clear()
        self.spec, self.original = spec, node
        self.header.setText(f"<b>{spec.name}</b> ({spec.category}, {spec.kind}): {spec.doc}")
        self.name.setText(node.name)
        self.fields.addRow("name", self.name)
        if spec.variadic:
            self.fields.addRow("inputs", QLabel("the names in the expression"))
        for port in spec.inputs:
            box = QComboBox()
            box.setEditable(True)
            if port.optional:
                box.addItem(NONE)
            for r in refs:
                if port_accepts(port.type, r.type):
                    box.addItem(r.ref)
            current = node.inputs.get(port.name)
            if current:
                if box.findText(current) < 0:
                    box.addItem(current)
                box.setCurrentText(current)
            box.currentTextChanged.connect(lambda _t: self.changed.emit())
            box.setToolTip(f"{port.type}{' (optional)' if port.optional else ''} {port.doc}")
            self.inputs[port.name] = box
            self.fields.addRow(f"{port.name} ({port.type})", box)
        self.filter.addItem(NONE)
        self.filter.addItems([f for f in filters if f != node.name])
        self.filter.setCurrentText(node.filter or NONE)
        self.fields.addRow("only events passing", self.filter)
        children = [param_tree_spec(p, node.params.get(p.name, p.default)) for p in spec.params]
        self.params = Parameter.create(name="parameters", type="group", children=children)
        self.params.sigTreeStateChanged.connect(lambda *_: self.changed.emit())
        self.tree.setParameters(self.params, showTop=False)
        self.setEnabled(True)

    def node(self) -> Node | None:
        """The node as edited (None if nothing is being edited)."""
        if self.spec is None or self.original is None:
            return None
        inputs = dict(self.original.inputs) if self.spec.variadic else {}
        for port, box in self.inputs.items():
            text = box.currentText().strip()
            if text and text != NONE:
                inputs[port] = text
        params = dict(self.original.params)
        if self.params is not None:
            for p in self.spec.params:
                params[p.name] = param_value(p, self.params.child(p.name).value())
        flt = self.filter.currentText()
        return Node(self.name.text().strip() or self.original.name, self.spec.name, inputs,
                    params, None if flt in ("", NONE) else flt)

    def set_param(self, name: str, value: Any) -> None:
        """Change one parameter's field (e.g. when a rectangle or cursor moved)."""
        if self.params is not None and self.spec is not None:
            p = self.spec.param(name)
            self.params.child(name).setValue(str(value) if p.nullable else value,
                                             blockSignal=None)
