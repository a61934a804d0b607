"""The remote agent's client-side cost per request against a minimal local keep-alive server.

    python bench/bench_remote_client.py [--requests 5000]

The server (a subprocess, so it does not share our interpreter) answers /next at once and
reports the time it spent inside its handler; the client's cost is the rest of the round trip.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from sim.agents import RemoteAgent

SERVER = r"""
import json, sys, time
from http.server import BaseHTTPRequestHandler, HTTPServer
spent = [0.0, 0]
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    def do_POST(self):
        t = time.perf_counter()
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.send(json.dumps({"user": 1, "track": body["track"] + 1}).encode())
        spent[0] += time.perf_counter() - t; spent[1] += 1
    def do_GET(self):
        self.send(json.dumps({"seconds": spent[0], "requests": spent[1]}).encode())
    def send(self, data):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def log_message(self, *a):
        pass
server = HTTPServer(("127.0.0.1", 0), H)
print(server.server_address[1], flush=True)
server.serve_forever()
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=5000)
    args = parser.parse_args()
    server = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{server.stdout.readline().strip()}"
        with RemoteAgent(url) as agent:
            for _ in range(200):  # warm up the connection and both interpreters
                agent.recommend({"user": 1, "track": 1}, 0.5)
            before = agent.http.get(f"{url}/stats", timeout=5).json()
            started, cpu_started = time.perf_counter(), time.process_time()
            for i in range(args.requests):
                agent.recommend({"user": 1, "track": i}, 0.5)
            wall = (time.perf_counter() - started) / args.requests
            client_cpu = (time.process_time() - cpu_started) / args.requests
            after = agent.http.get(f"{url}/stats", timeout=5).json()
        server_s = (after["seconds"] - before["seconds"]) / (after["requests"] - before["requests"])
        client_s = wall - server_s
        print(json.dumps({"requests": args.requests, "round_trip_ms": round(wall * 1e3, 3),
                          "server_handler_ms": round(server_s * 1e3, 3),
                          "client_side_ms": round(client_s * 1e3, 3),
                          "client_cpu_ms": round(client_cpu * 1e3, 3)}))  # fmt: skip
        print(f"remote agent: {wall * 1e3:.3f} ms per request round trip, of which "
              f"{server_s * 1e3:.3f} ms in the server's handler; client side and transport "
              f"{client_s * 1e3:.3f} ms = {client_s / server_s:.1f}x the server-side time; "
              f"client CPU {client_cpu * 1e3:.3f} ms per request (requests + json)")  # fmt: skip
    finally:
        server.terminate()
        server.wait(5)


if __name__ == "__main__":
    main()
