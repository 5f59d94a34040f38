"""Prometheus metrics (prometheus_client), one registry per app so several apps can live in one process."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    """requests by route and status; queue depth and active generations; time to first token and
    decode speed histograms; prompt and completion token counters."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "clearlm_requests", "HTTP requests by route and status", ["route", "status"], registry=r
        )
        self.queue_depth = Gauge("clearlm_queue_depth", "requests waiting for a generation slot", registry=r)
        self.active = Gauge("clearlm_active_generations", "generations running now", registry=r)
        self.ttft = Histogram(
            "clearlm_time_to_first_token_seconds",
            "arrival to first generated token",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64),
            registry=r,
        )
        self.tokens_per_second = Histogram(
            "clearlm_tokens_per_second",
            "decode speed of each generation after its first token",
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500),
            registry=r,
        )
        self.tokens_in = Counter("clearlm_prompt_tokens", "prompt tokens read", registry=r)
        self.tokens_out = Counter("clearlm_completion_tokens", "tokens generated", registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)
