"""``ami local`` as a child process on ipc:// endpoints in a folder: for the GUI's tests,
screenshots and benchmarks (and for trying the GUI without a DAQ)."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from ._client import ClientConfig


class LocalAmi:
    """Starts ``python -m ami local --source SOURCE --ipc FOLDER -n WORKERS`` and stops it
    (SIGTERM, then SIGKILL after ``stop_timeout`` s)."""

    def __init__(self, source: str, *, workers: int = 1, folder: str | Path | None = None,
                 graph: str | Path | None = None, hz: float = 10.0,
                 stop_timeout: float = 10.0) -> None:
        self.source, self.workers, self.hz = source, workers, hz
        self.folder = Path(folder) if folder else None
        self.graph = graph
        self.stop_timeout = stop_timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    @property
    def client_config(self) -> ClientConfig:
        assert self.folder is not None, "start() first"
        return ClientConfig(f"ipc://{self.folder / 'command'}", f"ipc://{self.folder / 'results'}")

    def command(self) -> list[str]:
        assert self.folder is not None
        cmd = [sys.executable, "-m", "ami", "local", "--source", self.source, "-n",
               str(self.workers), "--ipc", str(self.folder), "--heartbeat-hz", str(self.hz)]
        return cmd + (["--graph", str(self.graph)] if self.graph else [])

    def start(self) -> LocalAmi:
        if self.folder is None:  # short path: ipc socket names are limited to ~107 bytes
            self._tmp = tempfile.TemporaryDirectory(prefix="amigui-")
            self.folder = Path(self._tmp.name)
        self.proc = subprocess.Popen(self.command(), stdout=subprocess.DEVNULL)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(self.stop_timeout)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            self.proc = None

    def close(self) -> None:
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> LocalAmi:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
