"""A small stand-in for HyperPod's in-memory checkpoint service, speaking the HTTP API that
amzn-sagemaker-checkpointing's InMemoryCheckpointClient uses:

    GET|POST|DELETE /v1/cp/namespaces/{ns}            (POST ?num_ranks=&steps_retained=)
    GET|POST|DELETE /v1/cp/checkpoints/{ns}/{rank}/{step}   (shard bytes + Shard-Meta header)
    GET             /v1/cp/checkpoints/{ns}/latest?limit=N  (steps with every shard, newest first)

It keeps shards in a dict, retains `steps_retained` complete steps, and can be stopped to play an
unreachable service."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

NAMESPACE = re.compile(r"^/v1/cp/namespaces/(?P<ns>[^/]+)$")
SHARD = re.compile(r"^/v1/cp/checkpoints/(?P<ns>[^/]+)/(?P<rank>\d+)/(?P<step>\d+)$")
LATEST = re.compile(r"^/v1/cp/checkpoints/(?P<ns>[^/]+)/latest$")


class MemoryService:
    def __init__(self) -> None:
        self.namespaces: dict[str, dict[str, int]] = {}
        self.shards: dict[tuple[str, int, int], tuple[bytes, str]] = {}
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> None:
        service = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _reply(self, code: int, body: bytes = b"", headers: dict[str, str] | None = None):
                self.send_response(code)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                self._reply(*service.handle("GET", self.path, b"", dict(self.headers)))

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self._reply(*service.handle("POST", self.path, body, dict(self.headers)))

            def do_DELETE(self) -> None:
                self._reply(*service.handle("DELETE", self.path, b"", dict(self.headers)))

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def complete_steps(self, ns: str) -> list[int]:
        ranks = self.namespaces[ns]["num_ranks"]
        steps: dict[int, int] = {}
        for shard_ns, _, step in self.shards:
            if shard_ns == ns:
                steps[step] = steps.get(step, 0) + 1
        return sorted((s for s, n in steps.items() if n == ranks), reverse=True)

    def handle(
        self, method: str, raw_path: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, bytes, dict[str, str]]:
        url = urlparse(raw_path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        with self.lock:
            if m := NAMESPACE.match(url.path):
                ns = m["ns"]
                if method == "POST":
                    self.namespaces[ns] = {
                        "num_ranks": int(query["num_ranks"]),
                        "steps_retained": int(query["steps_retained"]),
                    }
                    return 200, b"{}", {}
                if ns not in self.namespaces:
                    return 404, b"no such namespace", {}
                if method == "DELETE":
                    del self.namespaces[ns]
                    return 200, b"", {}
                return 200, json.dumps(self.namespaces[ns]).encode(), {}
            if m := LATEST.match(url.path):
                if m["ns"] not in self.namespaces:
                    return 404, b"no such namespace", {}
                steps = self.complete_steps(m["ns"])[: int(query.get("limit", 5))]
                return 200, json.dumps(steps).encode(), {}
            if m := SHARD.match(url.path):
                key = (m["ns"], int(m["rank"]), int(m["step"]))
                if m["ns"] not in self.namespaces:
                    return 404, b"no such namespace", {}
                if method == "POST":
                    self.shards[key] = (body, headers.get("Shard-Meta", "{}"))
                    self._retain(m["ns"])
                    return 200, b"", {}
                if key not in self.shards:
                    return 404, b"no such shard", {}
                if method == "DELETE":
                    del self.shards[key]
                    return 200, b"", {}
                data, meta = self.shards[key]
                return 200, data, {"Shard-Meta": meta}
        return 404, b"unknown path", {}

    def _retain(self, ns: str) -> None:
        keep = set(self.complete_steps(ns)[: self.namespaces[ns]["steps_retained"]])
        newest = max(keep, default=-1)
        for key in [k for k in self.shards if k[0] == ns]:
            if key[2] not in keep and key[2] < newest:
                del self.shards[key]
