"""A JSON HTTP server on a free loopback port, in a thread, for the local cloud stand-ins."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar


class JsonHandler(BaseHTTPRequestHandler):
    """Quiet request handler with one way to answer: a JSON body and its status."""

    content_type: ClassVar[str] = "application/json; charset=utf-8"
    extra_headers: ClassVar[dict[str, str]] = {}

    def log_message(self, *args: Any) -> None:  # keep test and demo output clean
        pass

    def _send(self, status: int, body: dict[str, Any]) -> None:
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
