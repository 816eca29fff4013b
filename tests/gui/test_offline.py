"""The GUI's parts without a running AMI: operations menu and forms, view kinds, renderers,
saving, sessions."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from ami.comm import ViewUpdate
from ami.graph import Graph, Node
from ami.ops import default_registry
from gui import AmiClient, ClientConfig, GraphEditor, MainWindow, Session, SessionError, ViewWindow
from gui._form import param_value
from gui._model import Ref, new_node, ops_for, view_kind
from gui._render_base import save_csv

SOURCES = {"cam:raw": {"type": "image", "det_name": "cam", "det_type": "opal"},
           "acq:wave": {"type": "array1d", "det_name": "acq", "det_type": "acqiris"},
           "gasdet:energy": {"type": "scalar", "det_name": "gasdet", "det_type": "bld"}}
T = 1_100_000_000.0
RNG = np.random.default_rng(0)
VALUES = {
    "image": RNG.normal(100, 10, (40, 60)),
    "line": np.sin(np.linspace(0, 6, 200)),
    "hist1d": {"edges": np.linspace(0, 1, 11), "counts": np.arange(10.0), "underflow": 1.0,
               "overflow": 2.0, "nan": 0.0},
    "hist2d": {"xedges": np.linspace(0, 1, 6), "yedges": np.linspace(0, 2, 5),
               "counts": RNG.random((5, 4)), "outside": 0.0, "nan": 0.0},
    "strip": {"keys": np.arange(50.0), "x": np.arange(50.0), "y": RNG.random(50)},
    "scatter": {"keys": np.arange(50.0), "x": RNG.random(50), "y": RNG.random(50)},
    "binned": {"values": np.arange(5.0), "mean": RNG.random(5), "counts": np.ones(5)},
    "scalar": 3.25,
    "table": {"positions": np.arange(6.0).reshape(3, 2), "values": np.arange(3.0)},
}


def update(view: str, value, k: int = 1) -> ViewUpdate:
    return ViewUpdate(view=view, heartbeat=k, time=T, events=12, graph_version=1, value=value)


@pytest.fixture
def editor(qtbot) -> GraphEditor:
    ed = GraphEditor()
    qtbot.addWidget(ed)
    ed.auto_apply.setChecked(False)
    ed.set_sources(SOURCES)
    return ed


def test_every_operation_is_in_the_menu_and_gets_a_form(editor: GraphEditor) -> None:
    registry = default_registry()
    listed = {s.name for specs in ops_for(None, registry).values() for s in specs}
    assert listed == set(registry.names())
    for spec in registry.all():
        editor.add_operation(spec.name, "gasdet:energy" if spec.variadic else None, view=False)
        node = editor.form.node()
        assert node is not None and node.op == spec.name
        spec.check(node.params)  # the form's values are valid parameters


def test_menu_is_filtered_by_the_input_type() -> None:
    registry = default_registry()
    image_ops = {s.name for v in ops_for("image", registry).values() for s in v}
    scalar_ops = {s.name for v in ops_for("scalar", registry).values() for s in v}
    assert {"roi", "projection", "azimuthal", "calculator", "running_mean"} <= image_ops
    assert "find_edges" not in image_ops and "roi" not in scalar_ops
    assert {"histogram1d", "strip_chart", "filter"} <= scalar_ops


def test_cascade_roi_projection_and_views(editor: GraphEditor) -> None:
    editor.shapes["cam:raw"] = (64, 96)
    assert editor.select_ref("cam:raw")
    roi = editor.add_operation("roi")
    assert roi.params | {} == {**roi.params, "r0": 16, "r1": 48, "c0": 24, "c1": 72}
    editor.select_ref(f"{roi.name}.area")
    proj = editor.add_operation("projection")
    assert proj.inputs == {"image": f"{roi.name}.area"}
    assert editor.graph.views[proj.name] == f"{proj.name}.profile"
    assert editor.check() == []
    editor.set_view("cam:raw", True)
    assert editor.graph.views["cam_raw"] == "cam:raw"
    editor.set_view(proj.name, False)  # spelled without the port: the same view
    assert proj.name not in editor.graph.views


def test_form_edits_parameters_and_renames(editor: GraphEditor) -> None:
    node = editor.add_operation("threshold", "cam:raw")
    editor.form.params.child("lo").setValue(5.0)
    editor.form.params.child("hi").setValue("250")
    editor.form.name.setText("thr")
    editor.commit_form()
    thr = editor.graph.node("thr")
    assert thr.params == {"lo": 5.0, "hi": 250.0} and node.name not in editor.graph.names()
    assert "thr.data" in editor.graph.views.values()
    spec = default_registry().get("threshold")
    assert param_value(spec.param("hi"), "") is None


def test_validation_problems_are_shown(editor: GraphEditor) -> None:
    editor.graph = Graph((Node("r", "roi", {"image": "gasdet:energy"}),))
    editor.apply()
    assert "not applied" in editor.message.text() and "scalar" in editor.message.text()


def test_graph_json_save_and_load(editor: GraphEditor, tmp_path) -> None:
    editor.add_operation("histogram1d", "gasdet:energy")
    path = tmp_path / "g.json"
    editor.save_graph(path)
    saved = editor.graph
    editor.graph = Graph()
    editor.load_graph(path)
    assert editor.graph == saved
    assert json.loads(path.read_text())["schema"] == "ami-graph"


@pytest.mark.parametrize("kind", list(VALUES))
def test_each_view_kind_renders_and_saves(qtbot, kind: str, tmp_path) -> None:
    op = {"strip": "strip_chart", "scatter": "scatter"}.get(kind)
    assert view_kind(VALUES[kind], op) == kind
    win = ViewWindow(kind, op=op)
    qtbot.addWidget(win)
    win.show()
    for k in range(5):  # only the latest is drawn
        win.set_update(update(kind, VALUES[kind], k))
    assert win.redraw() and win.draws == 1 and win.renderer.kind == kind
    assert "heartbeat 4" in win.info.text() and "12 events" in win.info.text()
    assert win.save_png(tmp_path / "v.png")
    assert win.save_data(tmp_path / "v.csv")
    assert (tmp_path / "v.csv").stat().st_size > 0


def test_csv_of_columns(tmp_path) -> None:
    save_csv(tmp_path / "c.csv", {"x": np.arange(3.0), "y": np.array([1.0, 4.0, 9.0])})
    lines = (tmp_path / "c.csv").read_text().splitlines()
    assert lines[0] == "x,y" and lines[-1] == "2,9"


def test_new_node_cursors_in_the_trace() -> None:
    spec = default_registry().get("cursor_ratio")
    node = new_node(spec, Ref("acq:wave", "array1d"), Graph(), (400,))
    assert node.params == {"a": 100.0, "b": 200.0, "c": 200.0, "d": 300.0}


def test_session_round_trip_restores_graph_views_and_settings(qtbot, tmp_path) -> None:
    config = ClientConfig("ipc:///nonexistent/command", "ipc:///nonexistent/results")
    win = MainWindow(AmiClient(config))  # never started: no I/O
    qtbot.addWidget(win)
    win.editor.auto_apply.setChecked(False)
    win.editor.graph = Graph((), {"image": "cam:raw", "energy": "gasdet:energy"})
    image = win.open_view("image")
    image.set_update(update("image", VALUES["image"]))
    image.redraw()
    image.renderer.set_colormap("inferno")
    win.open_view("energy").kind_box.setCurrentText("table")
    path = tmp_path / "session.json"
    win.save_session(path)
    other = MainWindow(AmiClient(config))
    qtbot.addWidget(other)
    other.editor.auto_apply.setChecked(False)
    other.load_session(path)
    assert other.editor.graph == win.editor.graph
    assert set(other.windows) == {"image", "energy"}
    assert other.windows["energy"].forced_kind == "table"
    other.windows["image"].set_update(update("image", VALUES["image"]))
    other.windows["image"].redraw()
    assert other.windows["image"].renderer.cmap.currentText() == "inferno"
    data = json.loads(path.read_text())
    data["version"] = 99
    path.write_text(json.dumps(data))
    with pytest.raises(SessionError, match="version 99"):
        Session.load(path)


@pytest.mark.skipif(shutil.which("xvfb-run") is None,
                    reason="xvfb-run is absent (Debian: xvfb xauth and the libxcb packages)")
def test_real_x11_window_under_xvfb(tmp_path) -> None:
    script = ("import os; os.environ.pop('QT_QPA_PLATFORM', None)\n"
              "from PyQt5.QtWidgets import QApplication\n"
              "app = QApplication([]); assert app.platformName() == 'xcb'\n"
              "from gui import AmiClient, ClientConfig, MainWindow\n"
              "w = MainWindow(AmiClient(ClientConfig('ipc:///x/c', 'ipc:///x/r'))); w.show()\n"
              "app.processEvents(); w.grab().save(os.environ['OUT']); w.close()\n")
    out = tmp_path / "x11.png"
    env = {"OUT": str(out), "PATH": "/usr/bin:/bin"}
    subprocess.run(["xvfb-run", "-a", "-s", "-screen 0 1280x1024x24", sys.executable, "-c",
                    script], check=True, timeout=60, env=env, cwd=str(_repo()))
    assert out.stat().st_size > 1000


def _repo():
    from pathlib import Path

    return Path(__file__).resolve().parents[2]
