"""A JSON HTTP server on a free loopback port, in a thread, for the local cloud stand-ins."""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Literal
from urllib.parse import parse_qs, urlsplit

FaultKind = Literal["truncate", "body", "status", "reset", "delay"]


@dataclass(frozen=True)
class HttpFault:
    """How a loopback peer answers requests whose path contains `match`:

    - `truncate`: the real answer cut to `keep` of its bytes (a fraction), status 200 and a
      Content-Length that matches, as a proxy that dropped the rest would send it;
    - `body`: status 200 with `body` as is (not JSON, or JSON of the wrong shape);
    - `status`: `status` with `body` (default: a short HTML error page, as a gateway sends);
    - `reset`: no answer, the connection reset (TCP RST);
    - `delay`: the real answer after `delay` seconds (past the client's read timeout).
    """

    match: str
    kind: FaultKind
    status: int = 503
    body: bytes = b"<html><body><h1>503 Service Unavailable</h1></body></html>"
    keep: float = 0.5
    delay: float = 0.0


def first_fault(faults: list[HttpFault], path: str) -> HttpFault | None:
    return next((f for f in faults if f.match in path), None)


def send_with_fault(handler: BaseHTTPRequestHandler, fault: HttpFault, status: int,
                    body: dict[str, Any], content_type: str) -> None:
    """Answer `handler`'s request as `fault` says instead of `status`/`body`."""
    if fault.kind == "reset":
        handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                      struct.pack("ii", 1, 0))
        handler.connection.close()
        handler.close_connection = True
        return
    if fault.kind == "delay":
        time.sleep(fault.delay)
    data = json.dumps(body).encode()
    if fault.kind == "truncate":
        data = data[: int(len(data) * fault.keep)]
    elif fault.kind in ("body", "status"):
        data = fault.body
    if fault.kind == "status":
        status = fault.status
        content_type = "text/html"
    elif fault.kind == "body":
        status = 200
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    try:
        handler.wfile.write(data)
    except OSError:  # the client gave up first (a delay past its read timeout)
        handler.close_connection = True


class JsonHandler(BaseHTTPRequestHandler):
    """Quiet request handler with one way to answer: a JSON body and its status, unless one
    of the peer's `faults` matches the path (every peer misbehaves the same way)."""

    content_type: ClassVar[str] = "application/json; charset=utf-8"
    extra_headers: ClassVar[dict[str, str]] = {}
    faults: ClassVar[list[HttpFault]] = []

    def log_message(self, *args: Any) -> None:  # keep test and demo output clean
        pass

    def _split(self) -> tuple[str, dict[str, str]]:
        """The request's path as sent and the first value of each query parameter."""
        parts = urlsplit(self.path)
        return parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()}

    def _received(self, log: list[Any], latency: float) -> tuple[str, dict[str, str]]:
        """Note the request in the peer's log, wait out its latency, then `_split`."""
        log.append(self.path)
        if latency:
            time.sleep(latency)
        return self._split()

    def _send(self, status: int, body: dict[str, Any]) -> None:
        fault = first_fault(self.faults, self.path)
        if fault is not None:
            send_with_fault(self, fault, status, body, self.content_type)
            return
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", self.content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in self.extra_headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    # socketserver's default listen backlog is 5: more simultaneous connects than that (a
    # collector with 16 workers, one connection per HTTP/1.0 request) get their SYN dropped
    # and retried a second later, which would look like a slow collector
    request_queue_size = 128


class LoopbackServer:
    """Serves one handler class on 127.0.0.1; `stop` leaves no socket or thread behind."""

    def __init__(self) -> None:
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def serve(self, handler: type[BaseHTTPRequestHandler], name: str) -> str:
        self._server = _Server(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        name=name, daemon=True)
        self._thread.start()
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        """Stop serving, close the socket and join the thread: nothing is left running."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join()
            self._thread = None
