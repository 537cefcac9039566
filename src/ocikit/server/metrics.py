"""Counters served at ``/metrics`` in the Prometheus text exposition format (no dependency)."""

from __future__ import annotations

import time
from collections import defaultdict


class Metrics:
    """Request counts and durations by route kind, method and status; bytes in and out."""

    def __init__(self) -> None:
        self.started = time.time()
        self.requests: defaultdict[tuple[str, str, int], int] = defaultdict(int)
        self.seconds: defaultdict[tuple[str, str], float] = defaultdict(float)
        self.bytes_received = 0
        self.in_flight = 0
        self.blobs_committed = 0
        self.manifests_stored = 0

    def observe(self, kind: str, method: str, status: int, seconds: float) -> None:
        self.requests[(kind, method, status)] += 1
        self.seconds[(kind, method)] += seconds

    def render(self) -> str:
        lines = [
            "# HELP ocikit_http_requests_total HTTP requests by route, method and status.",
            "# TYPE ocikit_http_requests_total counter",
        ]
        for (kind, method, status), n in sorted(self.requests.items()):
            lines.append(f'ocikit_http_requests_total{{route="{kind}",method="{method}",status="{status}"}} {n}')
        lines += ["# HELP ocikit_http_request_seconds_total Time spent answering, by route and method.",
                  "# TYPE ocikit_http_request_seconds_total counter"]
        for (kind, method), s in sorted(self.seconds.items()):
            lines.append(f'ocikit_http_request_seconds_total{{route="{kind}",method="{method}"}} {s:.6f}')
        for name, help_, typ, value in [
            ("ocikit_http_requests_in_flight", "Requests being answered.", "gauge", self.in_flight),
            ("ocikit_upload_bytes_total", "Blob bytes received.", "counter", self.bytes_received),
            ("ocikit_blobs_committed_total", "Blobs verified and committed.", "counter", self.blobs_committed),
            ("ocikit_manifests_stored_total", "Manifests stored.", "counter", self.manifests_stored),
            ("ocikit_start_time_seconds", "Start time of the server.", "gauge", self.started),
        ]:
            lines += [f"# HELP {name} {help_}", f"# TYPE {name} {typ}", f"{name} {value}"]
        return "\n".join(lines) + "\n"
