"""The operations editor: the source browser, the graph (nodes, their outputs, which outputs are
published as views), the form of the selected node, and the actions that cascade operations,
apply the graph to the manager and save or load it as JSON."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from PyQt5.QtCore import Qt, pyqtSignal
from PyQt5.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMenu,
    QPushButton,
    QSplitter,
    QToolButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ami.graph import Graph, GraphError, Node, validate
from ami.ops import Registry

from ._form import NodeForm
from ._model import Ref, new_node, ops_for, references, registry, source_types

ROLE = Qt.ItemDataRole.UserRole


def view_name(ref: str) -> str:
    """The view name the editor gives a reference: ``epix:raw`` -> ``epix_raw``."""
    return re.sub(r"[^A-Za-z0-9_]", "_", ref)


class GraphEditor(QWidget):
    """Edits a working copy of the graph; ``apply_requested`` carries it to the manager."""

    apply_requested = pyqtSignal(dict)
    open_view_requested = pyqtSignal(str)
    graph_edited = pyqtSignal()

    def __init__(self, ops: Registry | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.registry = ops or registry()
        self.sources: dict[str, dict[str, Any]] = {}
        self.graph = Graph()
        self.remote_version = -1
        self.pending_applies = 0
        self.shapes: dict[str, tuple[int, ...]] = {}
        self._filling = False
        layout = QVBoxLayout(self)
        bar = QHBoxLayout()
        self.add_button = QToolButton()
        self.add_button.setText("Add operation")
        self.add_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.menu = QMenu(self)
        self.menu.aboutToShow.connect(self._fill_menu)
        self.add_button.setMenu(self.menu)
        bar.addWidget(self.add_button)
        self.auto_apply = QCheckBox("apply at once")
        self.auto_apply.setChecked(True)
        bar.addWidget(self.auto_apply)
        for text, fn in (("Apply", self.apply), ("Update node", self.commit_form),
                         ("Remove node", self.remove_selected), ("Load graph…", self._ask_load),
                         ("Save graph…", self._ask_save)):
            b = QPushButton(text)
            b.clicked.connect(fn)
            bar.addWidget(b)
        bar.addStretch(1)
        layout.addLayout(bar)
        split = QSplitter()
        left = QSplitter(Qt.Orientation.Vertical)
        self.source_tree = QTreeWidget()
        self.source_tree.setHeaderLabels(["source", "type", "view"])
        self.graph_tree = QTreeWidget()
        self.graph_tree.setHeaderLabels(["node / output", "type", "view"])
        for tree in (self.source_tree, self.graph_tree):
            tree.itemSelectionChanged.connect(lambda t=tree: self._selected(t))
            tree.itemChanged.connect(self._item_changed)
            tree.itemDoubleClicked.connect(self._double_clicked)
            tree.setColumnWidth(0, 200)
        left.addWidget(self.source_tree)
        left.addWidget(self.graph_tree)
        split.addWidget(left)
        self.form = NodeForm()
        split.addWidget(self.form)
        split.setSizes([420, 420])
        layout.addWidget(split, 1)
        self.message = QLabel("")
        self.message.setWordWrap(True)
        layout.addWidget(self.message)
        self.selected: Ref | None = None

    # -- data from the manager ---------------------------------------------------------------
    def set_sources(self, sources: dict[str, dict[str, Any]]) -> None:
        self.sources = dict(sources)
        self._fill_sources()

    def set_remote_graph(self, graph: dict[str, Any], version: int) -> None:
        """The manager's graph: adopted unless local edits are on their way."""
        self.remote_version = version
        if self.pending_applies:
            return
        try:
            remote = Graph.from_dict(graph) if graph else Graph()
        except GraphError as exc:
            self.show_message(f"the manager's graph cannot be read: {exc}", error=True)
            return
        if remote != self.graph:
            self.graph = remote
            self._refresh()

    # -- the trees ---------------------------------------------------------------------------
    def _fill_sources(self) -> None:
        self._filling = True
        self.source_tree.clear()
        dets: dict[str, QTreeWidgetItem] = {}
        for name, info in sorted(self.sources.items()):
            det = str(info.get("det_name") or name.split(":")[0])
            parent = dets.get(det)
            if parent is None:
                parent = QTreeWidgetItem([det, str(info.get("det_type", "")), ""])
                dets[det] = parent
                self.source_tree.addTopLevelItem(parent)
            item = QTreeWidgetItem([name.split(":", 1)[1] if ":" in name else name,
                                    str(info.get("type", "")), ""])
            item.setData(0, ROLE, Ref(name, str(info.get("type", "any"))))
            self._view_box(item, name)
            parent.addChild(item)
        self.source_tree.expandAll()
        self._filling = False

    def _view_box(self, item: QTreeWidgetItem, ref: str) -> None:
        item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
        shown = self.view_of(ref) is not None
        item.setCheckState(2, Qt.CheckState.Checked if shown else Qt.CheckState.Unchecked)

    def _refresh(self) -> None:
        self._filling = True
        self.graph_tree.clear()
        for node in self.graph.nodes:
            label = f"{node.op}" + (f" (if {node.filter})" if node.filter else "")
            item = QTreeWidgetItem([node.name, label, ""])
            item.setData(0, ROLE, node.name)
            self.graph_tree.addTopLevelItem(item)
            if node.op in self.registry:
                for port in self.registry.get(node.op).outputs:
                    ref = f"{node.name}.{port.name}"
                    child = QTreeWidgetItem([port.name, port.type, ""])
                    child.setData(0, ROLE, Ref(ref, port.type, node.name))
                    self._view_box(child, ref)
                    item.addChild(child)
        self.graph_tree.expandAll()
        self._filling = False
        self._fill_sources()
        self.graph_edited.emit()

    def _selected(self, tree: QTreeWidget) -> None:
        items = tree.selectedItems()
        if not items:
            return
        data = items[0].data(0, ROLE)
        if isinstance(data, Ref):
            self.selected = data
            if data.node:
                self._edit(data.node)
        elif isinstance(data, str):
            node = self.graph.node(data)
            ref = f"{node.name}.{self.registry.get(node.op).outputs[0].name}" \
                if node.op in self.registry else node.name
            typ = self.registry.get(node.op).outputs[0].type if node.op in self.registry \
                else "any"
            self.selected = Ref(ref, typ, node.name)
            self._edit(data)

    def _edit(self, name: str) -> None:
        node = self.graph.node(name)
        if node.op not in self.registry:
            return
        refs = references(self.graph, source_types(self.sources), self.registry, before=name)
        filters = [n.name for n in self.graph.nodes if n.op == "filter"]
        self.form.edit(node, self.registry.get(node.op), refs, filters)

    def _item_changed(self, item: QTreeWidgetItem, column: int) -> None:
        if self._filling or column != 2:
            return
        ref = item.data(0, ROLE)
        if isinstance(ref, Ref):
            self.set_view(ref.ref, item.checkState(2) == Qt.CheckState.Checked)

    def _double_clicked(self, item: QTreeWidgetItem, _column: int) -> None:
        ref = item.data(0, ROLE)
        if isinstance(ref, Ref):
            self.set_view(ref.ref, True)
            self.open_view_requested.emit(self.view_of(ref.ref) or view_name(ref.ref))

    def select_ref(self, ref: str) -> bool:
        """Select a source or node output by reference (as a click would)."""
        for tree in (self.source_tree, self.graph_tree):
            for item in _items(tree):
                data = item.data(0, ROLE)
                if isinstance(data, Ref) and data.ref == ref:
                    tree.setCurrentItem(item)
                    self.selected = data
                    return True
        return False

    # -- editing -----------------------------------------------------------------------------
    def _fill_menu(self) -> None:
        self.menu.clear()
        typ = self.selected.type if self.selected else None
        title = f"operations taking {self.selected.ref} ({typ})" if self.selected else \
            "all operations (select a source or output to filter)"
        self.menu.addSection(title)
        for category, specs in ops_for(typ, self.registry).items():
            sub = self.menu.addMenu(category)
            assert sub is not None
            for spec in specs:
                action = sub.addAction(f"{spec.name} — {spec.doc[:60]}")
                assert action is not None
                action.setToolTip(spec.doc)
                action.triggered.connect(lambda _c=False, n=spec.name: self._add_from_menu(n))

    def _add_from_menu(self, op: str) -> None:
        self.add_operation(op)

    def add_operation(self, op: str, ref: str | None = None, *, view: bool = True) -> Node:
        """Add a node of ``op`` reading ``ref`` (default: the selection), publish its main
        output as a view, select it and (if set) apply."""
        spec = self.registry.get(op)
        target = self._ref(ref) if ref is not None else self.selected
        shape = self.shapes.get(target.ref) if target is not None else None
        node = new_node(spec, target, self.graph, shape)
        graph = self.graph.with_node(node)
        if view:
            out = f"{node.name}.{spec.outputs[0].name}"
            graph = Graph(graph.nodes, {**graph.views, self._new_view_name(node, spec): out})
        self._set(graph)
        self.select_ref(f"{node.name}.{spec.outputs[0].name}")
        self._edit(node.name)
        return node

    def _new_view_name(self, node: Node, spec: Any) -> str:
        return node.name if len(spec.outputs) == 1 else f"{node.name}_{spec.outputs[0].name}"

    def _ref(self, ref: str) -> Ref:
        for r in references(self.graph, source_types(self.sources), self.registry):
            if r.ref == ref:
                return r
        return Ref(ref, "any", None if ":" in ref else ref.split(".")[0])

    def commit_form(self) -> None:
        """Put the form's node into the graph (renaming it if its name changed)."""
        node = self.form.node()
        old = self.form.original
        if node is None or old is None:
            return
        graph = self.graph
        if node.name != old.name:
            nodes = tuple(node if n.name == old.name else Node(
                n.name, n.op, {p: _rename(r, old.name, node.name) for p, r in n.inputs.items()},
                n.params, node.name if n.filter == old.name else n.filter) for n in graph.nodes)
            views = {v: _rename(r, old.name, node.name) for v, r in graph.views.items()}
            graph = Graph(nodes, views)
        else:
            graph = graph.with_node(node)
        self._set(graph)
        self._edit(node.name)

    def set_params(self, name: str, params: dict[str, Any]) -> None:
        """Change some parameters of a node (a dragged rectangle or cursor) and apply."""
        if name not in self.graph.names():
            return
        node = self.graph.node(name)
        self._set(self.graph.with_node(Node(node.name, node.op, dict(node.inputs),
                                            {**node.params, **params}, node.filter)),
                  refresh=False)
        if self.form.original is not None and self.form.original.name == name:
            self._edit(name)

    def remove_selected(self) -> None:
        if self.form.original is not None:
            self.remove_node(self.form.original.name)

    def remove_node(self, name: str) -> None:
        self.form.clear()
        self._set(self.graph.without_node(name))

    def set_view(self, ref: str, on: bool) -> None:
        views = dict(self.graph.views)
        if on and self.view_of(ref) is None:
            views[view_name(ref)] = ref
        elif not on:
            want = self.canonical(ref)
            views = {v: r for v, r in views.items() if self.canonical(r) != want}
        if views != self.graph.views:
            self._set(Graph(self.graph.nodes, views))

    def canonical(self, ref: str) -> str:
        """``node`` -> ``node.port`` for a single-output node; other references unchanged."""
        if ":" in ref or "." in ref or ref not in self.graph.names():
            return ref
        op = self.graph.node(ref).op
        if op in self.registry and len(self.registry.get(op).outputs) == 1:
            return f"{ref}.{self.registry.get(op).outputs[0].name}"
        return ref

    def view_of(self, ref: str) -> str | None:
        """The view publishing ``ref`` (however it is spelled), None if there is none."""
        want = self.canonical(ref)
        for v, r in self.graph.views.items():
            if self.canonical(r) == want:
                return v
        return None

    def _set(self, graph: Graph, refresh: bool = True) -> None:
        self.graph = graph
        if refresh:
            self._refresh()
        else:
            self.graph_edited.emit()
        if self.auto_apply.isChecked():
            self.apply()

    # -- apply, save, load -------------------------------------------------------------------
    def check(self) -> list[str]:
        """Problems of the working graph (empty if it is valid or no sources are known)."""
        if not self.sources:
            return []
        try:
            validate(self.graph, source_types(self.sources), self.registry)
        except GraphError as exc:
            return exc.problems
        return []

    def apply(self) -> None:
        problems = self.check()
        if problems:
            self.show_message("not applied: " + "; ".join(problems), error=True)
            return
        self.pending_applies += 1
        self.apply_requested.emit(self.graph.to_dict())

    def applied(self, ok: bool, result: Any, error: str) -> None:
        """The manager's answer to an apply."""
        self.pending_applies = max(0, self.pending_applies - 1)
        if ok:
            self.show_message(f"applied: graph version {result.get('version')}"
                              if isinstance(result, dict) else "applied")
        else:
            self.show_message(f"refused by the manager: {error}", error=True)

    def show_message(self, text: str, error: bool = False) -> None:
        self.message.setStyleSheet("color: #d33" if error else "color: #393")
        self.message.setText(text)

    def save_graph(self, path: str | Path) -> None:
        self.graph.save(path)
        self.show_message(f"graph saved to {path}")

    def load_graph(self, path: str | Path) -> None:
        try:
            graph = Graph.load(path)
        except (GraphError, OSError) as exc:
            self.show_message(f"cannot load {path}: {exc}", error=True)
            return
        self.form.clear()
        self._set(graph)

    def _ask_load(self) -> None:
        name, _ = QFileDialog.getOpenFileName(self, "Load graph", "", "AMI graph (*.json)")
        if name:
            self.load_graph(name)

    def _ask_save(self) -> None:
        name, _ = QFileDialog.getSaveFileName(self, "Save graph", "graph.json",
                                              "AMI graph (*.json)")
        if name:
            self.save_graph(name)


def _items(tree: QTreeWidget) -> list[QTreeWidgetItem]:
    out: list[QTreeWidgetItem] = []
    stack = [tree.topLevelItem(i) for i in range(tree.topLevelItemCount())]
    while stack:
        item = stack.pop(0)
        if item is None:
            continue
        out.append(item)
        stack.extend(item.child(i) for i in range(item.childCount()))
    return out


def _rename(ref: str, old: str, new: str) -> str:
    if ref == old:
        return new
    return new + ref[len(old):] if ref.startswith(old + ".") else ref
