"""A minimal keep-alive HTTP server speaking the service's /next and /last, for client tests."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeService:
    """Answers /next/<user> with `next_track(track)`; records (path, body); counts connections.
    `status` forces an error answer for every request when set."""

    def __init__(self, next_track=lambda track: track + 1, port: int = 0):
        self.requests: list[tuple[str, dict]] = []
        self.connections = 0
        self.status: int | None = None
        service = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # no 40 ms delayed-ACK stalls on keep-alive

            def setup(self):
                super().setup()
                service.connections += 1

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                service.requests.append((self.path, body))
                user = int(self.path.rsplit("/", 1)[1])
                if service.status is not None:
                    self.reply(service.status, {"message": "bad track"})
                elif self.path.startswith("/next/"):
                    self.reply(200, {"user": user, "track": next_track(body["track"])})
                else:
                    self.reply(200, {"user": user})

            def do_GET(self):  # /track/<id>: tracks 0..9 exist
                track = int(self.path.rsplit("/", 1)[1])
                if track < 10:
                    self.reply(
                        200, {"track": track, "artist": "A", "title": f"t{track}", "genre": "g"}
                    )
                else:
                    self.reply(404, {"message": "unknown track"})

            def reply(self, status, payload):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()
