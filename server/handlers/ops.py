"""Operations: liveness, readiness (engine reachable), Prometheus metrics."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Iterator

import orjson
from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from server import openapi
from server.handlers.common import json_response, plain_error
from server.services.container import SERVICES, Services
from server.settings import address_in

routes = web.RouteTableDef()
# How long /readyz waits for the engine's PING before saying it is not ready.
READY_TIMEOUT = 1.0
REGISTRY = web.AppKey("registry", CollectorRegistry)
# None while this process can recover from what went wrong, else why it cannot (set by
# the runner when a supervisor watches the embedded engine).
LIVENESS: web.AppKey[Callable[[], str | None]] = web.AppKey("liveness")


@routes.get("/api/openapi.json")
async def openapi_document(request: web.Request) -> web.Response:
    return web.Response(body=_openapi_bytes(), content_type="application/json")


@functools.cache
def _openapi_bytes() -> bytes:
    return orjson.dumps(openapi.document())


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    """Liveness: 200 unless the process cannot recover (an engine that is merely down
    is readiness's business: requests get 503 until it is back)."""
    liveness = request.app.get(LIVENESS)
    why = liveness() if liveness is not None else None
    if why is not None:
        return plain_error(503, "unrecoverable", why)
    return json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    """Ready: the engine answers and the bus listens. Answers within READY_TIMEOUT even
    when the engine hangs, and at once once the engine is known not to answer."""
    svc = request.app[SERVICES]
    engine = svc.engine
    if engine.unresponsive:
        return plain_error(503, "engine_unavailable", "the storage engine is not answering")
    try:
        await asyncio.wait_for(asyncio.shield(engine.call("PING")), READY_TIMEOUT)
    except Exception:
        return plain_error(503, "engine_unavailable", "the storage engine is unreachable")
    if not svc.bus.connected:
        # Requests would work, but live events would not reach this process yet.
        return plain_error(503, "engine_unavailable", "the event bus is reconnecting")
    return json_response({"status": "ready"})


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    allow = request.app[SERVICES].settings.metrics_allow
    # ECHOHUB_METRICS_ALLOW: the client's address (behind a trusted proxy, the one it
    # forwarded) must be in one of the networks; unset, anyone who reaches the port.
    if allow is not None and not address_in(request.remote, allow):
        return plain_error(403, "forbidden", "metrics are not available to this address")
    body = generate_latest(request.app[REGISTRY])
    return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4"})


class HubCollector(Collector):
    """Reads the hub's plain counters at scrape time: nothing is paid per delivery."""

    def __init__(self, svc: Services) -> None:
        self.svc = svc

    def collect(self) -> Iterator[Metric]:
        hub, bus = self.svc.hub, self.svc.bus
        stats = hub.stats
        yield GaugeMetricFamily("echohub_connections", "Open websocket connections",
                                value=hub.connection_count)  # fmt: skip
        yield GaugeMetricFamily("echohub_subscriptions", "Topic subscriptions on this process",
                                value=hub.subscription_count)  # fmt: skip
        yield GaugeMetricFamily("echohub_bus_channels", "Bus channels this process listens to",
                                value=len(hub.channels))  # fmt: skip
        yield GaugeMetricFamily("echohub_bus_connected", "1 when the bus listener is connected",
                                value=1 if bus.connected else 0)  # fmt: skip
        yield CounterMetricFamily("echohub_connections_opened", "Websockets accepted",
                                  value=stats.connections_total)  # fmt: skip
        yield CounterMetricFamily("echohub_events_in", "Events received from the bus",
                                  value=stats.events_in)  # fmt: skip
        yield CounterMetricFamily("echohub_frames_out", "Frames written to sockets",
                                  value=stats.frames_out)  # fmt: skip
        yield CounterMetricFamily("echohub_bytes_out", "Bytes written to sockets",
                                  value=stats.bytes_out)  # fmt: skip
        yield CounterMetricFamily("echohub_socket_writes", "Coalesced transport writes",
                                  value=stats.writes)  # fmt: skip
        yield CounterMetricFamily("echohub_slow_consumer_closes", "Sockets closed with 4008",
                                  value=stats.slow_closes)  # fmt: skip
        yield CounterMetricFamily("echohub_bus_reconnects", "Bus reconnections",
                                  value=bus.reconnects)  # fmt: skip
        buckets = []
        running = 0
        for bound, count in zip(stats.latency_buckets, stats.latency_counts, strict=False):
            running += count
            buckets.append((repr(bound), running))
        running += stats.latency_counts[-1]
        buckets.append(("+Inf", running))
        yield HistogramMetricFamily(
            "echohub_fanout_latency_seconds",
            "From publish (engine clock) to dispatch on this process",
            buckets=buckets,
            sum_value=stats.latency_sum,
        )
