"""What the fake LLM upstreams (fake_openai.py, sdk_fake_anthropic.py) have
in common: a quiet HTTP/1.1 handler that answers JSON or starts a chunked
event stream, and a threaded server that runs in the background of a
test (`with FakeX() as fake: ...`)."""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # The header real APIs put their request id in.
    request_id_header = "x-request-id"

    def log_message(self, fmt, *args):  # quiet
        pass

    def _json(self, status: int, obj) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header(self.request_id_header, "req_" + hashlib.md5(data).hexdigest()[:24])
        self.end_headers()
        self.wfile.write(data)

    def _start_events(self) -> None:
        """Starts a 200 text/event-stream reply; send events with _chunk and
        end with _end_chunks."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _end_chunks(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


class FakeServer:
    """A threaded HTTP server on a free loopback port (or the one given)
    whose handler appends every request it accepts to `requests`."""

    handler = FakeHandler
    thread_name = "fake-upstream"

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.httpd = ThreadingHTTPServer((host, port), self.handler)
        self.httpd.daemon_threads = True
        self.httpd.requests = []
        self.thread = None

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    @property
    def requests(self) -> list:
        return self.httpd.requests

    def start(self):
        self.thread = threading.Thread(target=self.httpd.serve_forever, name=self.thread_name, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
