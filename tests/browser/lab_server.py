"""A real Jupyter server (JupyterLab or Notebook 7) on loopback with token auth, isolated config dirs."""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

STARTUP_SECONDS = 180  # a JupyterLab server starts in seconds, but a loaded 2-core CI machine can take minutes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class JupyterServer:
    url: str
    token: str
    root: Path
    process: subprocess.Popen
    log: Path

    def api(self, path: str, method: str = "GET", timeout: float = 60.0) -> object:
        """One REST call; ``timeout`` is generous since deleting a session waits for its kernel to shut down,
        which takes seconds on a loaded machine."""
        request = urllib.request.Request(
            f"{self.url}{path}", method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
        return json.loads(body) if body else None

    def shutdown_sessions(self) -> None:
        """Kernels outlive the browser: delete every session explicitly."""
        for session in self.api("/api/sessions") or []:
            self.api(f"/api/sessions/{session['id']}", method="DELETE")

    def stop(self) -> None:
        try:
            self.shutdown_sessions()
        except OSError:
            pass
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start_server(tmp: Path, app: str = "lab", extra_args: list[str] | None = None) -> JupyterServer:
    """Start ``jupyter lab`` (``app="lab"``) or ``jupyter notebook`` in ``tmp``; wait until it answers."""
    root = tmp / "root"
    root.mkdir(parents=True, exist_ok=True)
    settings = tmp / "settings"
    notify = settings / "@jupyterlab" / "apputils-extension"
    notify.mkdir(parents=True, exist_ok=True)
    (notify / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    env = dict(os.environ)
    env.update(
        JUPYTER_CONFIG_DIR=str(tmp / "config"),
        JUPYTER_RUNTIME_DIR=str(tmp / "runtime"),
        JUPYTER_DATA_DIR_EXTRA="",
        JUPYTERLAB_SETTINGS_DIR=str(settings),
        JUPYTERLAB_WORKSPACES_DIR=str(tmp / "workspaces"),
        PYTHONUNBUFFERED="1",
    )
    port = free_port()
    token = secrets.token_hex(16)
    log = tmp / "server.log"
    command = [
        sys.executable, "-m", "jupyter", app, "--no-browser", "--allow-root", "--ip=127.0.0.1",
        f"--port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
    ]
    if app == "lab":
        command.append("--LabApp.expose_app_in_browser=True")
    else:
        command.append("--JupyterNotebookApp.expose_app_in_browser=True")
    command += extra_args or []
    process = subprocess.Popen(command, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    server = JupyterServer(f"http://127.0.0.1:{port}", token, root, process, log)
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"jupyter {app} exited early:\n{log.read_text()[-3000:]}")
        try:
            server.api("/api/status", timeout=10)
            return server
        except OSError:
            time.sleep(0.3)
    server.stop()
    raise RuntimeError(f"jupyter {app} did not answer within {STARTUP_SECONDS} s:\n{log.read_text()[-3000:]}")


def write_notebook(path: Path, cells: list[str]) -> None:
    """A minimal nbformat-4 notebook with the given code cells and the python3 kernel."""
    notebook = {
        "cells": [
            {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": src}
            for src in cells
        ],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.write_text(json.dumps(notebook))
