"""A small HTTP server for stepsound's pages (standard library only).

Why ``http.server.ThreadingHTTPServer`` and server-sent events: the pages
need one push channel from the session to a few browsers (a laptop, a phone)
and a handful of POSTs back; a thread per connection is plenty for that,
needs no dependency, and every thread only reads an immutable snapshot (see
:mod:`stepsound.web.state`), so nothing the server does can reach the
session's audio path.

Security (the same for ``run --web`` and ``serve``)
----------------------------------------------------
* Bound to a loopback address (the default, ``127.0.0.1``) the server
  answers only requests whose ``Host`` is that address, ``localhost`` or
  another loopback name (a web page that re-points its own name at
  127.0.0.1 -- DNS rebinding -- gets 403).
* Bound to any other address it needs a token, made with
  :func:`secrets.token_urlsafe` at start and printed in the URL: every
  request without it gets 401, with a wrong one 403 (query ``token=``,
  header ``X-Stepsound-Token`` or ``Authorization: Bearer``).
* A request that changes something is a POST from the server's own page:
  the token (where one is needed), the page's CSRF token in
  ``X-Stepsound-CSRF``, and an ``Origin`` (or ``Referer``) of this very
  server; a GET never changes anything.
* No cross-origin headers, a content security policy that allows only this
  server's own scripts, styles and images, no cookies.  Every script and
  style is in the package (``stepsound/web/static``); nothing is fetched
  from elsewhere.
"""
from __future__ import annotations

import errno
import hmac
import ipaddress
import json
import os
import secrets
import socket
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from stepsound.errors import ParameterError, StepsoundError

__all__ = ["DEFAULT_PORT", "WebAddress", "parse_web_address", "Request", "Response", "Stream", "WebServer",
           "static_file"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
#: Seconds a client may take to send its request, or to take what is sent to it, before it is dropped.
CLIENT_TIMEOUT_S = 10.0
#: Connections served at once (each is a thread); more are closed at once.
MAX_CONNECTIONS = 32
#: Kernel send buffer per connection [bytes] (Linux doubles it).
SEND_BUFFER = 32 * 1024
#: Largest request body accepted [bytes].
MAX_BODY = 4096

STATIC_DIR = os.path.join(os.path.dirname(__file__), "static")
_STATIC_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
                 ".html": "text/html; charset=utf-8", ".svg": "image/svg+xml"}


@dataclass(frozen=True)
class WebAddress:
    """Where a server listens.

    Attributes
    ----------
    host : str
        Address or name to bind (``0.0.0.0``, ``::`` for every interface).
    port : int
        0 picks a free port.
    """

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT

    @property
    def loopback(self) -> bool:
        """True for 127.0.0.0/8, ::1 and ``localhost``: only this machine can connect."""
        return _is_loopback(self.host)

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def _is_loopback(host: str) -> bool:
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_web_address(text: str | None, option: str = "--web") -> WebAddress:
    """``"8765"``, ``"0.0.0.0:8765"``, ``"[::]:8765"``, ``"localhost:0"`` → :class:`WebAddress`.

    An empty value (the option given without one) is the default
    ``127.0.0.1:8765``.

    Raises
    ------
    ParameterError
        One line naming the option and the value.
    """
    if text is None or not str(text).strip():
        return WebAddress()
    raw = str(text).strip()
    host, port_text = DEFAULT_HOST, raw
    if raw.startswith("["):
        close = raw.find("]")
        if close < 0 or not raw[close + 1:].startswith(":"):
            raise ParameterError(f"{option} {raw!r}: write an IPv6 address as [ADDRESS]:PORT, e.g. [::1]:8765")
        host, port_text = raw[1:close], raw[close + 2:]
    elif ":" in raw:
        if raw.count(":") > 1:
            raise ParameterError(f"{option} {raw!r}: write an IPv6 address as [ADDRESS]:PORT, e.g. [::1]:8765")
        host, port_text = raw.split(":")
        if not host:
            raise ParameterError(f"{option} {raw!r}: no host before ':' (e.g. 127.0.0.1:8765, or 0.0.0.0:8765 "
                                 "for every interface)")
    try:
        port = int(port_text)
    except ValueError:
        raise ParameterError(f"{option} {raw!r}: the port must be a number 0-65535 (e.g. {DEFAULT_PORT})") from None
    if not 0 <= port <= 65535:
        raise ParameterError(f"{option} {raw!r}: the port must be a number 0-65535 (e.g. {DEFAULT_PORT})")
    if any(c.isspace() or c in "/?#@" for c in host):
        raise ParameterError(f"{option} {raw!r}: {host!r} is not a host name or address")
    return WebAddress(host, port)


@dataclass
class Request:
    """What a route sees of a request."""

    method: str
    path: str
    query: dict
    headers: dict
    body: bytes = b""
    server: "WebServer" = None

    def url(self, path: str, **params) -> str:
        """``path`` with the access token (when one is needed) and ``params`` in its query."""
        return self.server.link(path, **params)


@dataclass
class Response:
    """A whole response."""

    status: int = 200
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: dict = field(default_factory=dict)

    @classmethod
    def json(cls, doc, status: int = 200) -> "Response":
        return cls(status, json.dumps(doc, separators=(",", ":"), allow_nan=False).encode(),
                   "application/json")

    @classmethod
    def html(cls, text: str, status: int = 200) -> "Response":
        return cls(status, text.encode(), "text/html; charset=utf-8")

    @classmethod
    def text(cls, text: str, status: int = 200) -> "Response":
        return cls(status, (text + "\n").encode())


@dataclass
class Stream:
    """A response written bit by bit (server-sent events).

    Attributes
    ----------
    run : callable
        ``run(write)``; ``write(bytes)`` sends and flushes, and raises
        ``OSError`` when the client is gone or takes longer than
        :data:`CLIENT_TIMEOUT_S` to take it.
    content_type : str
    """

    run: Callable
    content_type: str = "text/event-stream; charset=utf-8"


def static_file(name: str) -> Response:
    """A file of ``stepsound/web/static`` (404 for anything else)."""
    if not name or "/" in name or "\\" in name or name.startswith("."):
        return Response.text("not found", 404)
    path = os.path.join(STATIC_DIR, name)
    ext = os.path.splitext(name)[1]
    if ext not in _STATIC_TYPES or not os.path.isfile(path):
        return Response.text("not found", 404)
    with open(path, "rb") as fh:
        return Response(200, fh.read(), _STATIC_TYPES[ext])


#: Sent with every answer: our own scripts, styles and images only; no framing; no referrer.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
    "Cross-Origin-Resource-Policy": "same-origin",
}


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address, handler, owner: "WebServer", family: int):
        self.address_family = family
        self.owner = owner
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self._conns: set = set()
        self._conns_lock = threading.Lock()
        super().__init__(address, handler)

    def server_bind(self):
        if self.address_family == socket.AF_INET6:
            try:
                self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            except (OSError, AttributeError):
                pass
        super().server_bind()

    def process_request(self, request, client_address):
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)      # too many at once: closed, nothing queued
            return
        with self._conns_lock:
            self._conns.add(request)
        try:
            # what the kernel holds for a client that stops reading stays small (then writes block, and time out)
            request.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
        except OSError:
            pass
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._forget(request)
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._forget(request)

    def _forget(self, request):
        with self._conns_lock:
            if request in self._conns:
                self._conns.discard(request)
                self._slots.release()

    def open_connections(self) -> int:
        with self._conns_lock:
            return len(self._conns)

    def cut_all(self) -> None:
        """Shut every open connection down (unblocks threads writing to a stalled client)."""
        with self._conns_lock:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Handler(BaseHTTPRequestHandler):
    server_version = "stepsound"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    timeout = CLIENT_TIMEOUT_S

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass    # nothing on the terminal: the session's display is there

    def do_GET(self):
        self._serve("GET")

    def do_HEAD(self):
        self._serve("HEAD")

    def do_POST(self):
        self._serve("POST")

    def _other(self):
        owner: WebServer = self.server.owner
        split = urllib.parse.urlsplit(self.path)
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(split.query, keep_blank_values=True).items()}
        req = Request(self.command, split.path, query, {k.lower(): v for k, v in self.headers.items()}, b"", owner)
        refusal = owner.check(req)      # without the token: 401/403 like any other request
        self.close_connection = True    # a body we do not read must not be taken for the next request
        self._send(refusal or Response.text("method not allowed", 405), {"Allow": "GET, HEAD, POST"})

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = do_CONNECT = _other

    def _serve(self, method: str) -> None:
        owner: WebServer = self.server.owner
        split = urllib.parse.urlsplit(self.path)
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(split.query, keep_blank_values=True).items()}
        headers = {k.lower(): v for k, v in self.headers.items()}
        body = b""
        if method == "POST":
            try:
                length = int(headers.get("content-length", "0"))
            except ValueError:
                length = -1
            if not 0 <= length <= MAX_BODY:
                self._send(Response.text("request body too large or without a length", 413))
                return
            body = self.rfile.read(length)
        req = Request(method, split.path, query, headers, body, owner)
        refusal = owner.check(req)
        if refusal is not None:
            extra = {"WWW-Authenticate": 'Bearer realm="stepsound"'} if refusal.status == 401 else {}
            self._send(refusal, extra)
            return
        try:
            res = owner.app.handle(req)
        except StepsoundError as exc:
            res = Response.text(str(exc), 500)
        except Exception as exc:  # a bug: an answer, not a dead connection
            res = Response.text(f"internal error: {type(exc).__name__}: {exc}", 500)
        if isinstance(res, Stream):
            self._stream(res)
        else:
            self._send(res, head_only=method == "HEAD")

    def _send(self, res: Response, extra: dict | None = None, head_only: bool = False) -> None:
        try:
            self.send_response(res.status)
            headers = dict(SECURITY_HEADERS)
            headers.update(res.headers)
            headers.update(extra or {})
            headers["Content-Type"] = res.content_type
            headers["Content-Length"] = str(len(res.body))
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            if not head_only:
                self.wfile.write(res.body)
            self.wfile.flush()
        except OSError:
            self.close_connection = True

    def _stream(self, res: Stream) -> None:
        self.close_connection = True
        try:
            self.send_response(200)
            for k, v in SECURITY_HEADERS.items():
                self.send_header(k, v)
            self.send_header("Content-Type", res.content_type)
            self.send_header("Connection", "close")
            self.send_header("X-Accel-Buffering", "no")
            self.end_headers()
            self.wfile.flush()

            def write(data: bytes) -> None:
                self.wfile.write(data)
                self.wfile.flush()

            res.run(write)
        except OSError:
            pass        # the client went away or stalled past CLIENT_TIMEOUT_S: its thread ends


class WebServer:
    """An HTTP server for one app, on a thread of its own.

    Parameters
    ----------
    address : WebAddress
    app : object
        Has ``handle(request) -> Response | Stream`` (called on server
        threads) and optionally ``close()``.
    command : str
        The subcommand, for error messages (``run``, ``serve``).

    Attributes
    ----------
    token : str or None
        The access token: None on a loopback address, else a fresh
        :func:`secrets.token_urlsafe` (every request must carry it).
    csrf : str
        The token the server's own pages send with every POST.
    """

    def __init__(self, address: WebAddress, app, *, command: str = "run"):
        self.address = address
        self.app = app
        self.command = command
        self.token = None if address.loopback else secrets.token_urlsafe(24)
        self.csrf = secrets.token_urlsafe(24)
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._closed = False

    # -- life ----------------------------------------------------------------------------
    def start(self) -> "WebServer":
        """Bind and start serving.

        Raises
        ------
        StepsoundError
            One line: the port is in use, the address is not this machine's,
            the port needs privileges, the name does not resolve.
        """
        where = f"{self.command}: --web {self.address}"
        try:
            infos = socket.getaddrinfo(self.address.host.strip("[]"), self.address.port, type=socket.SOCK_STREAM,
                                       flags=socket.AI_PASSIVE)
        except (socket.gaierror, UnicodeError) as exc:
            raise StepsoundError(f"{where}: cannot resolve {self.address.host!r} ({exc})") from None
        family, _, _, _, sockaddr = infos[0]
        try:
            self._httpd = _HTTPServer(sockaddr, _Handler, self, family)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                msg = f"port {self.address.port} is already in use (another stepsound?); choose another port"
            elif exc.errno == errno.EADDRNOTAVAIL:
                msg = "that address is not one of this machine's"
            elif exc.errno == errno.EACCES:
                msg = "not allowed to listen there (ports below 1024 need privileges)"
            else:
                msg = exc.strerror or str(exc)
            raise StepsoundError(f"{where}: {msg}") from None
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="stepsound-web", daemon=True)
        self._thread.start()
        return self

    def close(self, grace_s: float = 0.0) -> None:
        """Stop serving and drop every connection (idempotent).

        Parameters
        ----------
        grace_s : float [seconds]
            Wait up to this long for open connections to end by themselves
            (an event stream sending its end); then they are cut, whatever the
            clients do.
        """
        if self._closed:
            return
        self._closed = True
        if self._httpd is not None and grace_s > 0:
            deadline = time.monotonic() + grace_s
            while self._httpd.open_connections() and time.monotonic() < deadline:
                time.sleep(0.02)
        closer = getattr(self.app, "close", None)
        if closer is not None:
            closer()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.cut_all()
            self._httpd.server_close()

    def __enter__(self):
        return self.start() if self._httpd is None else self

    def __exit__(self, *exc):
        self.close()
        return False

    # -- where ---------------------------------------------------------------------------
    @property
    def port(self) -> int:
        """The port listened on (the one the system picked for port 0)."""
        return self._httpd.server_address[1] if self._httpd is not None else self.address.port

    def link(self, path: str, **params) -> str:
        """A path of this server with the token (if any) and ``params`` in its query."""
        q = dict(params)
        if self.token:
            q["token"] = self.token
        return path + ("?" + urllib.parse.urlencode(q) if q else "")

    def urls(self) -> list[str]:
        """Full URLs to open: this machine's own name for a loopback server, else its network addresses."""
        host = self.address.host.strip("[]")
        if self.address.loopback:
            hosts = ["localhost" if host == "localhost" else host]
        elif host in ("0.0.0.0", "::", ""):
            hosts = _own_addresses(ipv6=host == "::") or [socket.gethostname()]
        else:
            hosts = [host]
        return [f"http://{'[' + h + ']' if ':' in h else h}:{self.port}{self.link('/')}" for h in hosts]

    # -- the rules -----------------------------------------------------------------------
    def _host_ok(self, host_header: str) -> bool:
        host = host_header.strip().lower()
        if host.startswith("["):
            name = host[1:host.find("]")] if "]" in host else host
        else:
            name = host.rsplit(":", 1)[0] if ":" in host else host
        return _is_loopback(name)

    def _origin_ok(self, req: Request) -> bool:
        host = req.headers.get("host", "")
        origin = req.headers.get("origin")
        if origin is not None:
            return origin in (f"http://{host}", f"https://{host}")
        referer = req.headers.get("referer")
        if referer is not None:
            parts = urllib.parse.urlsplit(referer)
            return parts.netloc == host and parts.scheme in ("http", "https")
        return False

    def check(self, req: Request) -> Response | None:
        """None if ``req`` may be served, else the refusal (401, 403)."""
        if self.address.loopback and not self._host_ok(req.headers.get("host", "")):
            return Response.text("forbidden: this server answers to its loopback address only", 403)
        if self.token is not None:
            given = req.query.get("token") or req.headers.get("x-stepsound-token")
            auth = req.headers.get("authorization", "")
            if not given and auth.lower().startswith("bearer "):
                given = auth[7:].strip()
            if not given:
                return Response.text("unauthorized: open the link with its token, as printed in the terminal", 401)
            if not hmac.compare_digest(given.encode(), self.token.encode()):
                return Response.text("forbidden: wrong token", 403)
        if req.method == "POST":
            csrf = req.headers.get("x-stepsound-csrf", "")
            if not hmac.compare_digest(csrf.encode(), self.csrf.encode()):
                return Response.text("forbidden: changes are made from this server's own page only", 403)
            if not self._origin_ok(req):
                return Response.text("forbidden: changes are made from this server's own page only", 403)
        return None


def _interface_addresses() -> list[str]:
    """IPv4 addresses of this machine's network interfaces (Linux; asks the kernel, sends nothing)."""
    found: list[str] = []
    try:
        import fcntl
        import struct

        names = [name for _, name in socket.if_nameindex()]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            for name in names:
                try:
                    packed = fcntl.ioctl(probe.fileno(), 0x8915,   # SIOCGIFADDR
                                         struct.pack("256s", name.encode()[:15]))
                except OSError:
                    continue    # no IPv4 address on it
                found.append(socket.inet_ntoa(packed[20:24]))
    except (ImportError, OSError, AttributeError):
        pass
    return found


def _own_addresses(ipv6: bool = False) -> list[str]:
    """This machine's non-loopback addresses, for the printed link (nothing is sent anywhere)."""
    found: list[str] = []
    if not ipv6:
        found = [a for a in _interface_addresses() if not _is_loopback(a)]
        if found:
            return found
    try:
        infos = socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET6 if ipv6 else socket.AF_INET)
    except (socket.gaierror, UnicodeError, OSError):
        return found
    for info in infos:
        addr = info[4][0]
        if not _is_loopback(addr) and addr not in found and not addr.startswith("fe80"):
            found.append(addr)
    return found


def print_qr(url: str, out) -> bool:
    """Print ``url`` as a QR code in the terminal (for a phone's camera); False if it cannot be drawn."""
    try:
        import segno
    except ImportError:
        return False
    try:
        segno.make(url, error="m").terminal(out=out, compact=True, border=2)
    except (OSError, ValueError, UnicodeError):
        return False
    return True
