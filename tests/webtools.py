"""Helpers for the web tests: a replayed session with its dashboard in a subprocess, HTTP and SSE clients.

Every request goes to this machine's loopback address only.
"""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "audio_fixtures"
RUN_FILE = str(FIXTURES / "treadmill_run.flac")


def wait_for(condition, timeout: float, what: str, interval: float = 0.02):
    """Poll ``condition()`` until it returns something true; its value, or AssertionError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


class Session:
    """``stepsound run ... --web`` in a subprocess; ``base`` is its loopback URL, ``token`` its token (or None)."""

    def __init__(self, tmp_path, *argv, web: str = "127.0.0.1:0", json_name: str = "session.json"):
        self.json_path = Path(tmp_path) / json_name
        cmd = [sys.executable, "-m", "stepsound", "run", "--db", "none", "--no-display",
               "--json", str(self.json_path), "--web", web, *argv]
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env=env)
        self.lines: list[str] = []
        self._out: list[str] = []
        threading.Thread(target=self._drain, args=(self.proc.stderr, self.lines), daemon=True).start()
        threading.Thread(target=self._drain, args=(self.proc.stdout, self._out), daemon=True).start()
        url = wait_for(lambda: next((ln.split("live dashboard: ", 1)[1].strip() for ln in list(self.lines)
                                     if "live dashboard: " in ln), None) or self._dead(), 30, "the dashboard URL")
        parts = urllib.parse.urlsplit(url)
        self.port = parts.port
        self.token = urllib.parse.parse_qs(parts.query).get("token", [None])[0]
        self.base = f"http://127.0.0.1:{self.port}"
        self.url = url

    def _dead(self):
        if self.proc.poll() is not None:
            time.sleep(0.2)
            raise AssertionError(f"stepsound exited {self.proc.returncode}: {''.join(self.lines)}")
        return None

    @staticmethod
    def _drain(stream, into):
        for line in stream:
            into.append(line)

    def link(self, path: str) -> str:
        """``path`` on the loopback address, with the token when the session has one."""
        if self.token:
            path += ("&" if "?" in path else "?") + urllib.parse.urlencode({"token": self.token})
        return self.base + path

    def wait(self, timeout: float = 60) -> int:
        return self.proc.wait(timeout)

    def document(self) -> dict:
        return json.loads(self.json_path.read_text())

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def http(url: str, *, method: str = "GET", data: bytes | None = None, headers: dict | None = None,
         timeout: float = 10):
    """(status, headers, body) of one request; HTTP errors are answers too."""
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as res:
            return res.status, dict(res.headers), res.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def state(session_or_base, path: str = "/api/state") -> dict:
    url = session_or_base.link(path) if isinstance(session_or_base, Session) else session_or_base + path
    status, _, body = http(url)
    assert status == 200, (status, body)
    return json.loads(body)


class EventReader:
    """Reads ``/api/events`` on a thread: ``frames`` maps seq → (arrival time, raw JSON text)."""

    def __init__(self, url: str):
        host, port, path = _split(url)
        self.sock = socket.create_connection((host, port), timeout=30)
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: text/event-stream\r\n\r\n".encode())
        self.frames: dict[int, tuple[float, str]] = {}
        self.ended = False
        self.closed = False
        self.status_line = None
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self):
        buf = b""
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                buf += chunk
                if self.status_line is None and b"\r\n\r\n" in buf:
                    head, buf = buf.split(b"\r\n\r\n", 1)
                    self.status_line = head.split(b"\r\n", 1)[0].decode()
                while b"\n\n" in buf and self.status_line is not None:
                    event, buf = buf.split(b"\n\n", 1)
                    fields = dict(line.split(": ", 1) for line in event.decode().split("\n")
                                  if ": " in line and not line.startswith(":"))
                    if fields.get("event") == "end":
                        self.ended = True
                    elif "id" in fields and "data" in fields:
                        self.frames[int(fields["id"])] = (time.monotonic(), fields["data"])
        except OSError:
            pass
        self.closed = True

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class StalledClient:
    """Asks for ``path`` and then never reads (a tiny receive buffer, so the server's writes soon block)."""

    def __init__(self, url: str, *, read_head: int = 0):
        host, port, path = _split(url)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
        self.sock.settimeout(10)
        self.sock.connect((host, port))
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
        if read_head:
            self.sock.recv(read_head)       # takes a few bytes of the answer, then stalls mid-response

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def _split(url: str):
    parts = urllib.parse.urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return parts.hostname, parts.port, path


def steps_of(doc: dict) -> list:
    """What a session's own records hold of its steps and outcome (wall-clock values left out)."""
    summary = {k: v for k, v in doc["summary"].items() if k not in ("status",)}
    return [doc["steps"], doc["cadence"], doc["cues"], doc["clicks_s"], summary]


def own_page_headers(session: Session, csrf: str) -> dict:
    """What the dashboard's own script sends with a POST."""
    return {"Content-Type": "application/json", "X-Stepsound-CSRF": csrf,
            "Origin": f"http://127.0.0.1:{session.port}"}


def csrf_of(page: bytes) -> str:
    return re.search(rb'name="stepsound-csrf" content="([^"]+)"', page).group(1).decode()
