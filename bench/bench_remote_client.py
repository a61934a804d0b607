"""The simulator's per-request client cost (`--transport request`: sim.transport.HttpPerRequest)
against a minimal local keep-alive server, and the course client's (requests.Session) as a peer.

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
import urllib.request

import requests

from sim.transport import Steps, http_transport

SERVER = r"""
import json, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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
server = ThreadingHTTPServer(("127.0.0.1", 0), H)
print(server.server_address[1], flush=True)
server.serve_forever()
"""


def stats(url: str) -> dict:
    with urllib.request.urlopen(f"{url}/stats", timeout=5) as r:
        return json.load(r)


def measure(url: str, post, n: int) -> dict:
    """Per-request wall time, client CPU and server handler time for `post(track)`."""
    for _ in range(200):  # warm up the connection and both interpreters
        post(1)
    before = stats(url)
    started, cpu_started = time.perf_counter(), time.process_time()
    for i in range(n):
        post(i)
    wall = (time.perf_counter() - started) / n
    client_cpu = (time.process_time() - cpu_started) / n
    after = stats(url)
    server = (after["seconds"] - before["seconds"]) / (after["requests"] - before["requests"])
    return {"round_trip_ms": wall * 1e3, "server_handler_ms": server * 1e3,
            "client_cpu_ms": client_cpu * 1e3}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=5000)
    args = parser.parse_args()
    server = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{server.stdout.readline().strip()}"
        results = {}
        transport = http_transport(url, "request")
        try:
            results["HttpPerRequest (http.client)"] = measure(
                url, lambda t: transport.send(Steps(["next"], [1], [t], [0.5], [t])), args.requests
            )
        finally:
            transport.close()
        # The peer: a requests.Session, as the course's simulator client posts.
        with requests.Session() as session:
            results["requests.Session (course client)"] = measure(
                url,
                lambda t: session.post(f"{url}/next/1", json={"track": t, "time": 0.5}).json(),
                args.requests,
            )
        for name, r in results.items():
            print(f"{name:34s} round trip {r['round_trip_ms']:.3f} ms, client CPU "
                  f"{r['client_cpu_ms']:.3f} ms/request, server handler "
                  f"{r['server_handler_ms']:.3f} ms")  # fmt: skip
        ours, peer = results.values()
        print(f"client CPU per request: {ours['client_cpu_ms']:.3f} ms vs "
              f"{peer['client_cpu_ms']:.3f} ms = {peer['client_cpu_ms'] / ours['client_cpu_ms']:.1f}x "
              f"less; {args.requests} requests each")  # fmt: skip
    finally:
        server.terminate()
        server.wait(5)


if __name__ == "__main__":
    main()
