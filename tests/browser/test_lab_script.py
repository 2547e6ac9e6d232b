"""The README's first command, `bash scripts/lab.sh`, starts JupyterLab on the quickstart wherever it is run.

Jupyter refuses to start as root without ``--allow-root`` ("Running as root is not recommended"); containers
and course machines run as root, so the script passes it then. The test runs the script's server command
(``XW_SKIP_SETUP=1`` skips the install step) on loopback with a free port and ``--no-browser``, checks that the
server answers and serves the quickstart notebook, and stops it. Under CI (root) this is the root case.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from lab_server import free_port

ROOT = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 180


def _get(url: str, token: str) -> tuple[int, bytes, str]:
    request = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=30) as response:  # follows redirects
        return response.status, response.read(), response.url


def test_lab_script_starts_jupyterlab_on_the_quickstart(tmp_path: Path) -> None:
    port, token = free_port(), secrets.token_hex(16)
    env = dict(os.environ, XW_SKIP_SETUP="1", PYTHON=sys.executable, JUPYTER_CONFIG_DIR=str(tmp_path / "config"),
               JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"), JUPYTERLAB_SETTINGS_DIR=str(tmp_path / "settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "workspaces"))
    log = tmp_path / "lab.log"
    command = ["bash", str(ROOT / "scripts" / "lab.sh"), "--no-browser", "--ip=127.0.0.1", f"--port={port}",
               "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}"]
    # its own process group: the script execs jupyter, which starts nothing else until a kernel is asked for
    process = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
                               start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            assert process.poll() is None, f"scripts/lab.sh exited ({process.returncode}):\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"no answer within {STARTUP_SECONDS} s:\n{log.read_text()[-3000:]}"
            try:
                status, *_ = _get(f"{base}/api/status", token)
                break
            except OSError:
                time.sleep(0.3)
        assert status == 200
        # the server's root is notebooks/ (whatever the working directory) and serves the quickstart
        status, body, _ = _get(f"{base}/api/contents/quickstart.ipynb?content=0", token)
        assert status == 200 and json.loads(body)["type"] == "notebook"
        # the printed URL and the server's root both open the quickstart (a container has no browser to open)
        status, page, url = _get(f"{base}/?token={token}", token)
        assert status == 200 and b"jupyter-config-data" in page and "/lab/tree/quickstart.ipynb" in url, url
        text = log.read_text()
        assert f"127.0.0.1:{port}/lab/tree/quickstart.ipynb?token=" in text, text[-3000:]
        assert "Running as root is not recommended" not in text
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
