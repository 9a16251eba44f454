"""Git smart-HTTP server stand-in: the real ``git http-backend`` behind HTTP Basic auth.

Bare repositories under ``root`` are served as GitLab serves them over https, so the code
under test clones with the real git client over a real socket on 127.0.0.1. Every request
is recorded with the username it carried (never the password), so tests can tell which
credential a client sent, or that it sent none.
"""

from __future__ import annotations

import base64
import binascii
import os
import subprocess
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast
from urllib.parse import unquote, urlsplit

from tests.loopback import Loopback

REALM = 'Basic realm="git"'


@dataclass(frozen=True)
class GitRequest:
    """One request as the server saw it."""

    method: str
    path: str  # without the query string
    query: str
    user: str | None  # the Basic-auth username sent, accepted or not; None without one
    status: int  # what the server answered


class GitHTTP:
    """Threaded HTTP server on 127.0.0.1 serving bare repositories under root."""

    def __init__(self, root: Path, accounts: dict[str, str]) -> None:
        self.root = Path(root)
        self.accounts = dict(accounts)
        self.requests: list[GitRequest] = []
        self.url = ""
        self._lock = threading.Lock()
        self._loop: Loopback | None = None

    def start(self) -> GitHTTP:
        self.root.mkdir(parents=True, exist_ok=True)
        server = _Server(("127.0.0.1", 0), _Handler)
        server.standin = self
        self._loop = Loopback(server)
        self.url = f"http://127.0.0.1:{self._loop.port}"
        self._loop.start()
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.stop()
            self._loop = None

    def __enter__(self) -> GitHTTP:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def publish(self, source: Path, name: str = "spec.git") -> str:
        """Serve a bare clone of the repository at source as name; its URL."""
        subprocess.run(["git", "clone", "--quiet", "--bare", str(source), str(self.root / name)],
                       check=True, capture_output=True, env=_git_env())
        return f"{self.url}/{name}"

    def users(self) -> set[str | None]:
        """Every username the server was sent (None: a request without credentials)."""
        with self._lock:
            return {r.user for r in self.requests}

    # --- request handling (called from server threads) ---------------------

    def _check(self, authorization: str | None) -> tuple[str | None, bool]:
        """The username sent and whether the pair is an accepted account."""
        if not authorization or not authorization.startswith("Basic "):
            return None, False
        try:
            decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None, False
        user, sep, password = decoded.partition(":")
        return user, bool(sep) and self.accounts.get(user) == password

    def _record(self, request: GitRequest) -> None:
        with self._lock:
            self.requests.append(request)


def _git_env() -> dict[str, str]:
    """The environment without GIT_* variables that would redirect a git command."""
    return {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}


@dataclass
class _Reply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def _parse_cgi(output: bytes) -> _Reply:
    """Split CGI output into status, headers and body (RFC 3875, section 6)."""
    ends = [(i, len(sep)) for sep in (b"\r\n\r\n", b"\n\n") if (i := output.find(sep)) >= 0]
    if not ends:
        return _Reply(502, [("Content-Type", "text/plain")], b"bad CGI output\n")
    at, width = min(ends)
    status, headers = 200, []
    for line in output[:at].decode("latin-1").splitlines():
        name, _, value = line.partition(":")
        if name.strip().lower() == "status":
            status = int(value.split()[0])
        elif name.strip():
            headers.append((name.strip(), value.strip()))
    return _Reply(status, headers, output[at + width:])


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    standin: GitHTTP


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as git's curl expects of a real server

    @property
    def standin(self) -> GitHTTP:
        return cast(_Server, self.server).standin

    def log_message(self, *args: Any) -> None:
        pass  # keep pytest output clean

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _body(self) -> bytes:
        # Always drain the body, even for a 401, so the keep-alive connection stays in sync.
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline().strip():  # trailers
                pass
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _serve(self) -> None:
        body = self._body()
        parts = urlsplit(self.path)
        user, accepted = self.standin._check(self.headers.get("Authorization"))
        reply = self._backend(parts.path, parts.query, user, body) if accepted else \
            _Reply(401, [("WWW-Authenticate", REALM), ("Content-Type", "text/plain")],
                   b"authentication required\n")
        self.standin._record(GitRequest(self.command, parts.path, parts.query, user,
                                        reply.status))
        self._send(reply)

    def _backend(self, path: str, query: str, user: str | None, body: bytes) -> _Reply:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.standin.root),
            "GIT_PROJECT_ROOT": str(self.standin.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "GATEWAY_INTERFACE": "CGI/1.1",
            "SERVER_PROTOCOL": self.request_version,
            "REQUEST_METHOD": self.command,
            "PATH_INFO": unquote(path),
            "QUERY_STRING": query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_USER": user or "",
            "REMOTE_ADDR": self.client_address[0],
        }
        # gzip bodies are inflated by http-backend itself; protocol v2 is asked for by header.
        for header in ("Content-Encoding", "Git-Protocol"):
            if value := self.headers.get(header):
                env["HTTP_" + header.upper().replace("-", "_")] = value
        proc = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True,
                              timeout=60, check=False)
        if proc.returncode and not proc.stdout:
            return _Reply(500, [("Content-Type", "text/plain")], proc.stderr)
        return _parse_cgi(proc.stdout)

    def _send(self, reply: _Reply) -> None:
        try:
            self.send_response(reply.status)
            for name, value in reply.headers:
                if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
