"""One error mapping for HTTP and the socket: a publish that cannot settle its audience
is `engine_unavailable` (503 over HTTP, an `error` frame on the socket)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from server.services.container import FEATURES
from server.services.publish import Note, Publisher, Target
from server.store.resp import Arg
from tests.support import receive_until, signup


class ChurningPublisher(Publisher):
    """The real publisher on the real engine, except that the author's graph version
    moves right before every guarded publish, as if their blocks changed each time: the
    guard never holds, so the audience never settles."""

    async def publish_guarded(
        self,
        type_: str,
        data: Any,
        targets: Sequence[Target],
        guard: tuple[str, str],
        along: Sequence[Sequence[Arg]] = (),
        settle: str = "",
        notes: Sequence[Note] = (),
    ) -> int | None:
        await self.bus.engine.call("INCR", guard[0])
        return await super().publish_guarded(type_, data, targets, guard, along, settle, notes)


async def test_an_audience_that_keeps_changing_is_503_engine_unavailable(
    app_client: Any, rdb: Any
) -> None:
    member = await signup(app_client, rdb, "churned")
    echoes = app_client.server.app[FEATURES].echoes
    echoes.publisher = ChurningPublisher(echoes.publisher.bus)
    resp = await app_client.post("/api/echoes", json={"text": "hello"}, headers=member.auth)
    assert resp.status == 503, await resp.text()
    body = await resp.json()
    assert body["error"]["code"] == "engine_unavailable" and body["error"]["message"]
    ws = await app_client.ws_connect("/ws", headers=member.auth)
    await ws.send_json({"op": "post", "id": 4, "text": "hello again"})
    frame = (await receive_until(ws, lambda f: f["op"] in ("error", "ack")))[-1]
    assert frame == {"op": "error", "id": 4, "code": "engine_unavailable",
                     "message": body["error"]["message"]}  # fmt: skip
    await ws.close()
