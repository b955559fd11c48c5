"""Every route, hit with wrongly typed bodies, odd ids, bad cursors and no/bad sessions:
never a 5xx, always the spec's error shape. Seeded, so a failure replays."""

from __future__ import annotations

import json
import random
from typing import Any

from tests.support import signup

VALUES: list[Any] = [None, 0, -1, 1.5, True, "", "x", "a" * 5000, [], [1], {}, {"a": 1},
                     "2026-13-40", "9999-01-01T00:00:00Z", "ffffffffffffffffffff", "../../etc",
                     "\u0000", 2**70, "open", "approval", "going", "member"]  # fmt: skip
FIELDS = ["text", "visibility", "community", "reply_to", "title", "description", "starts_at",
          "ends_at", "place", "capacity", "status", "name", "join_policy", "role", "uses",
          "expires_in_days", "invite", "handle", "password", "display_name",
          "birthdate", "echo", "user", "reason"]  # fmt: skip
ROUTES = """
POST /api/signup|POST /api/login|POST /api/logout|GET /api/me|POST /api/invites
GET /api/users/{h}|GET /api/users/{h}/echoes|POST /api/users/{h}/follow
DELETE /api/users/{h}/follow|POST /api/users/{h}/block|DELETE /api/users/{h}/block
POST /api/users/{h}/mute|DELETE /api/users/{h}/mute|GET /api/footprints|POST /api/echoes
GET /api/echoes/{id}|DELETE /api/echoes/{id}|POST /api/echoes/{id}/like
DELETE /api/echoes/{id}/like|GET /api/echoes/{id}/likes|GET /api/feed/home
GET /api/feed/friends|GET /api/feed/discover|POST /api/events|GET /api/events
GET /api/events/{id}|PATCH /api/events/{id}|POST /api/events/{id}/cancel
PUT /api/events/{id}/rsvp|POST /api/communities|GET /api/communities
GET /api/communities/{id}|POST /api/communities/{id}/join|POST /api/communities/{id}/leave
POST /api/communities/{id}/requests/{h}/approve|POST /api/communities/{id}/requests/{h}/reject
GET /api/communities/{id}/echoes|GET /api/communities/{id}/events
GET /api/communities/{id}/members|GET /api/communities/{id}/requests
PUT /api/admin/users/{h}/role|POST /api/reports|GET /api/mod/reports
POST /api/mod/reports/{id}/resolve|POST /api/mod/echoes/{id}/remove
POST /api/mod/users/{h}/suspend|POST /api/mod/users/{h}/unsuspend|GET /api/mod/audit
"""


async def test_no_route_answers_5xx_or_a_malformed_error(app_client: Any, rdb: Any) -> None:
    admin = await signup(app_client, rdb, "fuzzer", admin=True)
    other = await signup(app_client, rdb, "target")
    event = await (
        await app_client.post(
            "/api/events",
            headers=admin.auth,
            json={"title": "t", "description": "d", "starts_at": "2030-01-01T00:00:00Z"},
        )
    ).json()
    club = await (
        await app_client.post(
            "/api/communities",
            headers=admin.auth,
            json={"name": "c", "description": "d", "join_policy": "approval"},
        )
    ).json()
    echo = await (await app_client.post("/api/echoes", headers=admin.auth,
                                        json={"text": "hi"})).json()  # fmt: skip
    ids = [event["id"], club["id"], echo["id"], "nope", "ffffffffffffffffffff", "a" * 300]
    handles = ["target", "fuzzer", "NOBODY", "ab", "a" * 40]
    auths = [admin.auth, other.auth, {}, {"Authorization": "Bearer nonsense"}]
    rnd = random.Random(20261122)
    routes = [r.split(" ", 1) for line in ROUTES.strip().splitlines() for r in line.split("|")]
    failures = []
    for method, template in routes:
        for _ in range(6):
            path = template.replace("{h}", rnd.choice(handles)).replace("{id}", rnd.choice(ids))
            query = rnd.choice(["", "?before=x", "?before=0", "?before=" + "9" * 30,
                                "?limit=0", "?limit=abc", "?limit=1000", "?limit=3",
                                "?status=x", "?status=all"])  # fmt: skip
            body = rnd.choice([{f: rnd.choice(VALUES) for f in rnd.sample(FIELDS, 4)},
                               rnd.choice(VALUES)])  # fmt: skip
            app_client.session.cookie_jar.clear()
            resp = await app_client.request(
                method, path + query, data=json.dumps(body).encode(),
                headers={**rnd.choice(auths), "Content-Type": "application/json"},
            )  # fmt: skip
            text = await resp.text()
            shaped = True
            if resp.status >= 400:
                try:
                    error = json.loads(text)["error"]
                    shaped = isinstance(error["code"], str) and isinstance(error["message"], str)
                except (ValueError, KeyError, TypeError):
                    shaped = False
            if resp.status >= 500 or not shaped:
                failures.append((method, path + query, body, resp.status, text[:200]))
    assert failures == []
