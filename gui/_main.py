"""The control-room window: the operations editor in the middle, one dock per open view (dock,
tab or float them), a status bar with the connection, events/s, heartbeat age, workers and
drops. A QTimer (at most 30 Hz) takes the latest update of each view from the client and
redraws only the views that changed."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from PyQt5.QtCore import QByteArray, Qt, QTimer
from PyQt5.QtGui import QCloseEvent
from PyQt5.QtWidgets import (
    QAction,
    QDockWidget,
    QFileDialog,
    QLabel,
    QListWidget,
    QMainWindow,
    QWidget,
)

from ami.comm import Status, ViewUpdate
from ami.graph import Graph

from ._client import AmiClient
from ._editor import GraphEditor
from ._model import readers, ref_node
from ._session import Session, SessionError
from ._viewwin import ViewWindow

MAX_REDRAW_HZ = 30.0


class MainWindow(QMainWindow):
    """Handed a client (not started): :meth:`start` starts it and the redraw timer."""

    def __init__(self, client: AmiClient, *, redraw_hz: float = MAX_REDRAW_HZ,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.client = client
        self.setWindowTitle(f"AMI — {client.config.command}")
        self.resize(1280, 800)
        self.editor = GraphEditor()
        self.setCentralWidget(self.editor)
        self.windows: dict[str, ViewWindow] = {}
        self.docks: dict[str, QDockWidget] = {}
        self.status: Status | None = None
        self.manager_status: dict[str, Any] = {}
        self.reapplied = 0
        self._last_applied: Graph | None = None
        self.view_list = QListWidget()
        self.view_list.itemDoubleClicked.connect(lambda item: self._open(item.text()))
        views_dock = QDockWidget("Views (double-click to open)", self)
        views_dock.setObjectName("views-list")
        views_dock.setWidget(self.view_list)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, views_dock)
        self.view_list.setMinimumWidth(140)
        self._status_bar()
        self._menus()
        client.sources_changed.connect(self.editor.set_sources)
        client.graph_changed.connect(self._remote_graph)
        client.connected_changed.connect(self._connection)
        client.manager_status.connect(self._manager_status)
        self.editor.apply_requested.connect(self._apply)
        self.editor.open_view_requested.connect(self._open)
        self.editor.graph_edited.connect(self._graph_edited)
        self.timer = QTimer(self)
        self.timer.setInterval(int(1000 / min(redraw_hz, MAX_REDRAW_HZ)))
        self.timer.timeout.connect(self.tick)
        self.ticks = 0
        self.redraws = 0

    # -- set-up ------------------------------------------------------------------------------
    def _status_bar(self) -> None:
        bar = self.statusBar()
        assert bar is not None
        self.conn_label = QLabel("connecting…")
        self.rate_label = QLabel("- events/s")
        self.age_label = QLabel("heartbeat -")
        self.workers_label = QLabel("workers -")
        self.drops_label = QLabel("drops -")
        for w in (self.conn_label, self.rate_label, self.age_label, self.workers_label,
                  self.drops_label):
            w.setContentsMargins(8, 0, 8, 0)
            bar.addPermanentWidget(w)

    def _menus(self) -> None:
        menu_bar = self.menuBar()
        assert menu_bar is not None
        file_menu = menu_bar.addMenu("&File")
        assert file_menu is not None
        items: list[tuple[str, Any, str | None]] = [
            ("Load graph…", self.editor._ask_load, "Ctrl+O"),
            ("Save graph…", self.editor._ask_save, "Ctrl+S"),
            ("Open session…", self._ask_load_session, None),
            ("Save session…", self._ask_save_session, None),
            ("Save every view as PNG…", self._ask_snapshots, None),
            ("Quit", self.close, "Ctrl+Q"),
        ]
        for text, fn, key in items:
            action = QAction(text, self)
            if key:
                action.setShortcut(key)
            action.triggered.connect(fn)
            file_menu.addAction(action)
        view_menu = menu_bar.addMenu("&Views")
        assert view_menu is not None
        action = QAction("Open every view", self)
        action.triggered.connect(self.open_all_views)
        view_menu.addAction(action)

    def start(self) -> None:
        self.client.start()
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()
        self.client.stop()

    # -- manager events ----------------------------------------------------------------------
    def _connection(self, up: bool) -> None:
        self.conn_label.setText(f"connected to {self.client.config.command}" if up else
                                f"connection lost to {self.client.config.command} — "
                                "reconnecting")
        self.conn_label.setStyleSheet("" if up else "color: #d33; font-weight: bold")

    def _manager_status(self, status: dict[str, Any]) -> None:
        self.manager_status = status

    def _remote_graph(self, graph: dict[str, Any], version: int) -> None:
        empty = not graph.get("nodes") and not graph.get("views")
        if empty and version == 0 and self._last_applied is not None \
                and self._last_applied.nodes and not self.editor.pending_applies:
            # a restarted manager: give it back the graph this GUI had applied
            self.reapplied += 1
            self.editor.graph = self._last_applied
            self.editor.show_message("the manager restarted: graph applied again")
            self.editor.apply()
            return
        self.editor.set_remote_graph(graph, version)
        self._graph_edited()

    def _apply(self, graph: dict[str, Any]) -> None:
        def done(ok: bool, result: Any, error: str) -> None:
            if ok:
                self._last_applied = Graph.from_dict(graph)
            self.editor.applied(ok, result, error)

        self.client.request("set_graph", done, graph=graph)

    def _graph_edited(self) -> None:
        graph = self.editor.graph
        views = list(graph.views)
        listed = [self.view_list.item(i) for i in range(self.view_list.count())]
        if views != [item.text() for item in listed if item is not None]:
            self.view_list.clear()
            self.view_list.addItems(views)
        for name, win in self.windows.items():
            ref = graph.views.get(name, win.ref)
            win.ref = ref
            node = ref_node(ref)
            win.op = graph.node(node).op if node and node in graph.names() else None
            win.set_nodes(readers(graph, ref, ("roi",), "image")
                          + readers(graph, ref, ("cursor_value", "cursor_integral",
                                                 "cursor_ratio", "cursor_difference",
                                                 "cursor_moments"), "y"))

    # -- views -------------------------------------------------------------------------------
    def _open(self, name: str) -> None:
        self.open_view(name)

    def open_view(self, name: str, *, floating: bool = False) -> ViewWindow:
        """Open (or raise) the dock of view ``name``."""
        if name in self.windows:
            self.docks[name].show()
            self.docks[name].raise_()
            return self.windows[name]
        ref = self.editor.graph.views.get(name, "")
        win = ViewWindow(name, ref)
        win.params_edited.connect(self.editor.set_params)
        dock = QDockWidget(name, self)
        dock.setObjectName(f"view:{name}")
        dock.setWidget(win)
        dock.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, False)
        dock.visibilityChanged.connect(lambda _v: self._subscribe())
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
        others = [d for n, d in self.docks.items() if not d.isFloating()]
        if others and not floating:
            self.tabifyDockWidget(others[-1], dock)
        dock.setFloating(floating)
        self.windows[name], self.docks[name] = win, dock
        dock.show()
        dock.raise_()
        self._graph_edited()
        self._subscribe()
        return win

    def close_view(self, name: str) -> None:
        dock = self.docks.pop(name, None)
        self.windows.pop(name, None)
        if dock is not None:
            self.removeDockWidget(dock)
            dock.deleteLater()
        self._subscribe()

    def open_all_views(self) -> None:
        for name in self.editor.graph.views:
            self.open_view(name)

    def _subscribe(self) -> None:
        self.client.subscribe(set(self.windows))

    def tick(self) -> None:
        """Take the latest updates and redraw the views that changed (the UI timer)."""
        self.ticks += 1
        updates, status = self.client.take()
        for name, msg in updates.items():
            win = self.windows.get(name)
            if win is not None:
                win.set_update(msg)
                self._note_shape(win.ref, msg)
        for win in self.windows.values():
            if win.redraw():
                self.redraws += 1
        if status is not None:
            self.status = status
        self._show_status()

    def _note_shape(self, ref: str, msg: ViewUpdate) -> None:
        shape = getattr(msg.value, "shape", None)
        if ref and shape is not None:
            self.editor.shapes[ref] = tuple(shape)

    def _show_status(self) -> None:
        s = self.status
        if s is None or self.client.status_age() > 5.0:
            self.rate_label.setText("no results")
            return
        members = {w: c for w, c in s.workers.items() if not w.startswith("collector:")}
        rate = sum(float(c.get("rate", 0.0)) for c in members.values())
        missing = [w for w, c in s.workers.items() if c.get("state") == "missing"]
        self.rate_label.setText(f"{rate:,.0f} events/s")
        self.age_label.setText(f"heartbeat {s.heartbeat} · age {s.age:.1f} s")
        self.workers_label.setText(f"workers {len(members)}" +
                                   (f" ({len(missing)} missing)" if missing else ""))
        self.workers_label.setStyleSheet("color: #d33" if missing else "")
        st = self.client.stats
        self.drops_label.setText(f"drops {s.dropped} · late {s.late} · "
                                 f"GUI skipped {st.superseded}")

    def status_line(self) -> str:
        """One line of the live status (for the headless mode)."""
        s = self.status
        conn = "up" if self.client.connected else "DOWN"
        if s is None:
            return f"manager {conn} · no results yet"
        members = {w: c for w, c in s.workers.items() if not w.startswith("collector:")}
        rate = sum(float(c.get("rate", 0.0)) for c in members.values())
        return (f"manager {conn} · heartbeat {s.heartbeat} · {rate:,.0f} events/s · "
                f"age {s.age:.1f} s · workers {len(members)} · dropped {s.dropped} · "
                f"late {s.late} · views {sum(w.draws for w in self.windows.values())} draws")

    # -- saving ------------------------------------------------------------------------------
    def save_snapshots(self, folder: str | Path) -> list[Path]:
        """One PNG per open view (and the main window) in ``folder``."""
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for name, win in self.windows.items():
            path = out / f"{name}.png"
            if win.save_png(path):
                written.append(path)
        path = out / "main_window.png"
        if self.grab().save(str(path)):
            written.append(path)
        return written

    def session(self) -> Session:
        return Session(self.editor.graph.to_dict(), [w.settings() for w in self.windows.values()],
                       bytes(self.saveGeometry()), bytes(self.saveState()),
                       self.client.config.command)

    def save_session(self, path: str | Path) -> None:
        self.session().save(path)

    def load_session(self, path: str | Path) -> None:
        """Apply a session's graph, open its views with their settings, restore the layout."""
        try:
            session = Session.load(path)
        except SessionError as exc:
            self.editor.show_message(str(exc), error=True)
            return
        if session.graph:
            self.editor.graph = Graph.from_dict(session.graph)
            self.editor._set(self.editor.graph)
        for name in list(self.windows):
            self.close_view(name)
        for settings in session.views:
            win = self.open_view(settings["view"])
            win.restore(settings)
            if settings.get("kind"):
                win.kind_box.setCurrentText(str(settings["kind"]))
        if session.geometry:
            self.restoreGeometry(QByteArray(session.geometry))
        if session.state:
            self.restoreState(QByteArray(session.state))

    def _ask_save_session(self) -> None:
        name, _ = QFileDialog.getSaveFileName(self, "Save session", "session.json",
                                              "AMI GUI session (*.json)")
        if name:
            self.save_session(name)

    def _ask_load_session(self) -> None:
        name, _ = QFileDialog.getOpenFileName(self, "Open session", "",
                                              "AMI GUI session (*.json)")
        if name:
            self.load_session(name)

    def _ask_snapshots(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder for the PNG files")
        if folder:
            self.save_snapshots(folder)

    def closeEvent(self, event: QCloseEvent | None) -> None:
        self.stop()
        super().closeEvent(event)


def wait_connected(window: MainWindow, timeout: float) -> bool:
    """Spin the event loop until the client is connected (for scripts)."""
    from PyQt5.QtWidgets import QApplication

    end = time.monotonic() + timeout
    while not window.client.connected and time.monotonic() < end:
        QApplication.processEvents()
        window.client._stop.wait(0.02)
    return window.client.connected
