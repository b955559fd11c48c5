"""The HTTP API as an OpenAPI 3.1 document, served at `GET /api/openapi.json`.

One `Operation` per method and path, listed by area below: adding an endpoint means
adding a line here (the test in tests/integration/test_openapi.py fails for any /api
route of the app that this document does not describe, and for any operation here that
the app does not route). Request bodies are described precisely (schemathesis builds
its requests from them); answers name their shape where a client relies on it, and
every error is the one `Error` shape of SPEC section 5.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

Schema = dict[str, Any]

# --- shared shapes -------------------------------------------------------------------

STRING: Schema = {"type": "string"}
ID: Schema = {"type": "string", "minLength": 1, "maxLength": 64}
HANDLE: Schema = {"type": "string", "pattern": "^[A-Za-z0-9_]{3,20}$"}
TIME: Schema = {"type": "string", "format": "date-time"}
OBJECT: Schema = {"type": "object"}
NULLABLE_ID: Schema = {"type": ["string", "null"], "maxLength": 64}


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(required: tuple[str, ...] = (), /, **properties: Schema) -> Schema:
    schema: Schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    return schema


def page_of(item: Schema) -> Schema:
    return obj(("items", "next"), items={"type": "array", "items": item},
               next={"type": ["string", "null"]})  # fmt: skip


COMPONENTS: dict[str, Schema] = {
    "Error": obj(
        ("error",),
        error=obj(
            ("code", "message"),
            code={"type": "string", "pattern": "^[a-z][a-z0-9_]*$"},
            message={"type": "string", "minLength": 1},
            field={"type": "string"},
            retry_after={"type": "integer", "minimum": 1},
        ),
    ),  # fmt: skip
    "Author": obj(("handle", "display_name"), handle=STRING, display_name=STRING,
                  avatar={"type": "string", "description": "their picture (absent: none)"}),
    "Media": obj(
        ("id", "type", "url", "preview_url", "width", "height", "blurhash", "alt"),
        id=ID,
        type={"enum": ["image", "video"]},
        url={"type": "string", "description": "the file (an image's large rendition)"},
        preview_url={"type": "string", "description": "the small rendition or poster"},
        width={"type": "integer", "minimum": 1},
        height={"type": "integer", "minimum": 1},
        blurhash={"type": "string"},
        alt={"type": "string", "maxLength": 1500},
        duration={"type": "number", "description": "a video's seconds"},
    ),  # fmt: skip
    "User": obj(
        ("id", "handle", "display_name", "role"),
        id=ID,
        handle=STRING,
        display_name=STRING,
        role={"enum": ["member", "moderator", "admin"]},
        created_at=TIME,
        bio=STRING,
        bio_segments={"type": "array"},
        avatar={"type": ["string", "null"]},
    ),  # fmt: skip
    # A member as search and suggestions list them.
    "MemberCard": obj(
        ("handle", "display_name", "bio", "following"),
        handle=STRING,
        display_name=STRING,
        avatar=STRING,
        bio=STRING,
        following={"type": "boolean"},
        friends={"type": "integer", "minimum": 1},
    ),  # fmt: skip
    "Invite": obj(
        ("code", "url", "uses_left", "expires_at"),
        code=STRING,
        url=STRING,
        uses={"type": "integer"},
        uses_left={"type": "integer"},
        expires_at=TIME,
        created_at=TIME,
        befriend={"type": "boolean"},
        expired={"type": "boolean"},
    ),  # fmt: skip
    "Post": obj(
        ("id", "author", "text", "segments", "visibility", "created_at"),
        id=ID,
        author=ref("Author"),
        text=STRING,
        segments={"type": "array"},
        visibility={"enum": ["public", "friends"]},
        community={"type": ["string", "null"]},
        reply_to={"type": ["string", "null"]},
        in_reply_to={
            "oneOf": [{"type": "null"}, obj(("id", "author"), id=ID, author=ref("Author"))]
        },
        reply_count={"type": "integer", "minimum": 0},
        media={"type": "array", "items": ref("Media"), "maxItems": 4},
        created_at=TIME,
    ),  # fmt: skip
    "SignedIn": obj(("user", "token"), user=ref("User"), token=STRING),
    "Notification": obj(
        ("id", "type", "data", "at", "read"),
        id={"type": "string", "pattern": "^[0-9]{1,19}$"},
        type=STRING,
        data={},
        at=TIME,
        read={"type": "boolean"},
    ),  # fmt: skip
}

REASON = obj(reason={"type": "string", "maxLength": 600})
EVENT_FIELDS: dict[str, Schema] = {
    "title": {"type": "string", "minLength": 1, "maxLength": 120},
    "description": {"type": "string", "maxLength": 2000},
    "starts_at": TIME,
    "ends_at": {"type": ["string", "null"], "format": "date-time"},
    "place": {"type": ["string", "null"], "maxLength": 200},
    "community": NULLABLE_ID,
    "capacity": {"type": ["integer", "null"], "minimum": 1, "maximum": 100000},
}


@dataclass(frozen=True)
class Param:
    name: str
    schema: Schema
    description: str = ""


BEFORE = Param("before", {"type": "string", "maxLength": 64}, "cursor of the next page")
LIMIT = Param("limit", {"type": "integer", "minimum": 1, "maximum": 100}, "items per page")
PAGED = (BEFORE, LIMIT)


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    summary: str
    tag: str
    body: Schema | None = None
    # The success status and what it carries.
    status: int = 200
    answer: Schema = field(default_factory=lambda: OBJECT)
    query: tuple[Param, ...] = ()
    signed_in: bool = True
    body_type: str = "application/json"

    def to_openapi(self) -> Schema:
        params = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                  for name in re.findall(r"{(\w+)}", self.path)]  # fmt: skip
        params += [{"name": p.name, "in": "query", "required": False, "schema": p.schema,
                    **({"description": p.description} if p.description else {})}
                   for p in self.query]  # fmt: skip
        operation: Schema = {
            "operationId": f"{self.method.lower()}_{_slug(self.path)}",
            "summary": self.summary,
            "tags": [self.tag],
            "responses": {
                str(self.status): {
                    "description": "done",
                    "content": {"application/json": {"schema": self.answer}},
                },
                "default": {"$ref": "#/components/responses/Error"},
            },
        }
        if params:
            operation["parameters"] = params
        if self.body is not None:
            operation["requestBody"] = {
                "required": True, "content": {self.body_type: {"schema": self.body}},
            }  # fmt: skip
        if not self.signed_in:
            operation["security"] = []
        return operation


def _slug(path: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", path.removeprefix("/api/").lower()).strip("_")


OPERATIONS: list[Operation] = []


def add(method: str, path: str, summary: str, tag: str, **kwargs: Any) -> None:
    OPERATIONS.append(Operation(method, path, summary, tag, **kwargs))


# --- accounts ----------------------------------------------------------------------------

add("POST", "/api/signup", "sign up with an invite", "accounts", signed_in=False, status=201,
    body=obj(("invite", "handle", "password", "display_name", "birthdate"),
             invite={"type": "string", "minLength": 1, "maxLength": 200}, handle=HANDLE,
             password={"type": "string", "minLength": 8, "maxLength": 1024},
             display_name={"type": "string", "minLength": 1, "maxLength": 50},
             birthdate={"type": "string", "format": "date"}),
    answer=ref("SignedIn"))  # fmt: skip
add("POST", "/api/login", "sign in (a new session each time)", "accounts", signed_in=False,
    body=obj(("handle", "password"), handle=STRING, password=STRING),
    answer=ref("SignedIn"))  # fmt: skip
add("POST", "/api/logout", "end the current session", "accounts")
UNREAD = obj(("unread_notifications",), unread_notifications={"type": "integer", "minimum": 0})
add("GET", "/api/me", "the signed-in member", "accounts",
    answer={"allOf": [ref("User"), UNREAD]})  # fmt: skip
# Lengths are in characters as a reader counts them (grapheme clusters), which JSON
# Schema cannot say: 50 and 160 of them, at most 32 UTF-8 bytes each.
add("PATCH", "/api/me", "edit one's profile (at least one field; no others)", "profiles",
    body=obj(display_name={"type": "string", "minLength": 1, "maxLength": 1600},
             bio={"type": ["string", "null"], "maxLength": 5120}, avatar=NULLABLE_ID),
    answer=ref("User"))  # fmt: skip
add("PUT", "/api/me/password", "change one's password (other sessions end)", "profiles",
    body=obj(("old", "new"), old=STRING, new={"type": "string", "minLength": 8}),
    answer=obj(("ok", "sessions_ended"), ok={"type": "boolean"},
               sessions_ended={"type": "integer", "minimum": 0}))  # fmt: skip
add("POST", "/api/invites", "create an invite", "accounts", status=201,
    body=obj(uses={"type": "integer", "minimum": 1, "maximum": 100},
             expires_in_days={"type": "integer", "minimum": 1, "maximum": 90},
             befriend={"type": "boolean"}),
    answer=obj(("code", "url", "uses_left", "expires_at"), code=STRING, url=STRING,
               uses_left={"type": "integer"}, expires_at=TIME))  # fmt: skip
add("GET", "/api/invites", "my invites, newest first", "accounts",
    answer=page_of(ref("Invite")))  # fmt: skip
add("DELETE", "/api/invites/{code}", "revoke one of my invites", "accounts",
    answer=obj(("code", "revoked"), code=STRING, revoked={"const": True}))  # fmt: skip
add("PUT", "/api/admin/users/{handle}/role", "grant or revoke moderator (admins)", "accounts",
    body=obj(("role",), role={"enum": ["member", "moderator"]}), answer=ref("User"))  # fmt: skip

# --- members and the graph ---------------------------------------------------------------

add("GET", "/api/users/{handle}", "a profile (leaves a footprint from the app)", "members")
add("GET", "/api/users/{handle}/echoes", "a member's posts", "members", query=PAGED,
    answer=page_of(ref("Post")))  # fmt: skip
for _edge in ("follow", "block", "mute"):
    add("POST", f"/api/users/{{handle}}/{_edge}", f"{_edge} a member", "members")
    add("DELETE", f"/api/users/{{handle}}/{_edge}", f"un{_edge} a member", "members")
add("GET", "/api/footprints", "my recent visitors", "members",
    answer=page_of(obj(("visitor", "at"), visitor=ref("Author"), at=TIME)))  # fmt: skip
add("GET", "/api/search", "search members (name or handle prefix) or posts (words)",
    "discovery",
    query=(Param("q", {"type": "string", "maxLength": 100}),
           Param("type", {"enum": ["members", "posts"]}), *PAGED),
    answer=page_of({"oneOf": [ref("MemberCard"), ref("Post")]}))  # fmt: skip
add("GET", "/api/suggestions", "people you may know", "discovery",
    answer=page_of(ref("MemberCard")))  # fmt: skip
add("GET", "/api/tags/{tag}", "posts with a tag", "discovery", query=PAGED,
    answer=obj(("tag", "items", "next"), tag=STRING,
               items={"type": "array", "items": ref("Post")},
               next={"type": ["string", "null"]}))  # fmt: skip

# --- posts and feeds ----------------------------------------------------------------------

add("POST", "/api/echoes", "post an Echo", "echoes", status=201, answer=ref("Post"),
    body=obj(("text",), text={"type": "string", "minLength": 1, "maxLength": 4096},
             visibility={"enum": ["public", "friends"]}, community=NULLABLE_ID,
             reply_to=NULLABLE_ID,
             media={"type": "array", "items": ID, "maxItems": 4}))  # fmt: skip
add("GET", "/api/echoes/{id}", "one post", "echoes", answer=ref("Post"))
add("DELETE", "/api/echoes/{id}", "delete a post (author, community owner, moderator)",
    "echoes")  # fmt: skip
add("GET", "/api/echoes/{id}/thread", "a post's thread", "echoes", query=PAGED,
    answer=obj(("post", "ancestors", "items", "next"), post=ref("Post"),
               ancestors={"type": "array", "items": ref("Post"), "maxItems": 20},
               items={"type": "array", "items": ref("Post")},
               next={"type": ["string", "null"]}))  # fmt: skip
add("POST", "/api/echoes/{id}/like", "like a post", "echoes")
add("DELETE", "/api/echoes/{id}/like", "take a like back", "echoes")
add("GET", "/api/echoes/{id}/likes", "who liked my post (its author only)", "echoes")
for _feed in ("home", "friends", "discover"):
    add("GET", f"/api/feed/{_feed}", f"the {_feed} feed", "echoes", query=PAGED,
        answer=page_of(ref("Post")))  # fmt: skip

# --- notifications ------------------------------------------------------------------------

READ_STATE = obj(("read_until", "unread"), read_until=STRING,
                 unread={"type": "integer", "minimum": 0})  # fmt: skip
add("GET", "/api/notifications", "my notifications, newest first", "notifications",
    query=PAGED,
    answer=obj(("items", "next", "unread", "read_until"),
               items={"type": "array", "items": ref("Notification")},
               next={"type": ["string", "null"]}, unread={"type": "integer", "minimum": 0},
               read_until=STRING))  # fmt: skip
add("POST", "/api/notifications/read", "mark notifications read up to a cursor",
    "notifications", body=obj(("until",), until={"type": "string", "maxLength": 64}),
    answer=READ_STATE)  # fmt: skip

# --- media --------------------------------------------------------------------------------

add("POST", "/api/media", "upload an image or a video", "media", status=201,
    answer=ref("Media"), body_type="multipart/form-data",
    body=obj(("file",), file={"type": "string", "contentMediaType": "application/octet-stream"},
             alt={"type": "string", "maxLength": 1500}))  # fmt: skip
add("GET", "/api/media/{id}", "one media item (the uploader's own)", "media",
    answer=ref("Media"))  # fmt: skip
add("PATCH", "/api/media/{id}", "change an unattached media item's alt text", "media",
    answer=ref("Media"),
    body=obj(("alt",), alt={"type": "string", "maxLength": 1500}))  # fmt: skip
add("DELETE", "/api/media/{id}", "delete an unattached media item", "media")

# --- events -------------------------------------------------------------------------------

add("POST", "/api/events", "announce an event", "events", status=201,
    body=obj(("title", "description", "starts_at"), **EVENT_FIELDS))  # fmt: skip
add("GET", "/api/events", "upcoming events", "events", query=PAGED)
add("GET", "/api/events/{id}", "one event", "events")
add("PATCH", "/api/events/{id}", "edit an event (its host)", "events", body=obj(**EVENT_FIELDS))
add("POST", "/api/events/{id}/cancel", "cancel an event (its host)", "events")
add("PUT", "/api/events/{id}/rsvp", "RSVP (409 event_full when full)", "events",
    body=obj(("status",), status={"enum": ["going", "interested", "none"]}))  # fmt: skip

# --- communities --------------------------------------------------------------------------

add("POST", "/api/communities", "create a community", "communities", status=201,
    body=obj(("name", "description", "join_policy"),
             name={"type": "string", "minLength": 1, "maxLength": 50},
             description={"type": "string", "maxLength": 500},
             join_policy={"enum": ["open", "approval"]}))  # fmt: skip
add("GET", "/api/communities", "browse communities", "communities",
    query=(Param("mine", {"enum": ["0", "1"]}), *PAGED))  # fmt: skip
add("GET", "/api/communities/{id}", "one community", "communities")
add("GET", "/api/communities/{id}/echoes", "a community's posts", "communities", query=PAGED)
add("GET", "/api/communities/{id}/events", "a community's events", "communities", query=PAGED)
add("GET", "/api/communities/{id}/members", "a community's members", "communities",
    query=PAGED)  # fmt: skip
add("GET", "/api/communities/{id}/requests", "pending join requests (owner)", "communities",
    query=PAGED)  # fmt: skip
add("POST", "/api/communities/{id}/join", "join, or ask to", "communities")
add("POST", "/api/communities/{id}/leave", "leave (or withdraw a request)", "communities")
for _verdict in ("approve", "reject"):
    add("POST", f"/api/communities/{{id}}/requests/{{handle}}/{_verdict}",
        f"{_verdict} a join request (owner)", "communities")  # fmt: skip

# --- moderation ---------------------------------------------------------------------------

add("POST", "/api/reports", "report a post or a member", "moderation", status=201,
    body=obj(("reason",), echo=ID, user=STRING,
             reason={"type": "string", "minLength": 1, "maxLength": 500}))  # fmt: skip
add("GET", "/api/mod/reports", "reports (moderators)", "moderation",
    query=(Param("status", {"enum": ["open", "resolved", "all"]}), *PAGED))  # fmt: skip
add("POST", "/api/mod/reports/{id}/resolve", "resolve a report", "moderation", body=REASON)
add("POST", "/api/mod/echoes/{id}/remove", "remove a post", "moderation", body=REASON)
add("POST", "/api/mod/users/{handle}/suspend", "suspend a member", "moderation", body=REASON)
add("POST", "/api/mod/users/{handle}/unsuspend", "unsuspend a member", "moderation",
    body=REASON)  # fmt: skip
add("GET", "/api/mod/audit", "the audit log", "moderation", query=PAGED)

# --- this document ------------------------------------------------------------------------

add("GET", "/api/openapi.json", "this document", "meta", signed_in=False)


def document(operations: list[Operation] | None = None) -> Schema:
    """The whole document (a fresh dict each time)."""
    paths: dict[str, Schema] = {}
    for op in operations if operations is not None else OPERATIONS:
        paths.setdefault(op.path, {})[op.method.lower()] = op.to_openapi()
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Echo Hub",
            "version": "1",
            "description": "The HTTP API of Echo Hub (SPEC section 5). Changes made with "
            "the session cookie must come from the app's own origin (see the README's "
            "Security section); scripts use Authorization: Bearer.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}, {"cookie": []}],
        "paths": paths,
        "components": {
            "schemas": COMPONENTS,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "cookie": {"type": "apiKey", "in": "cookie", "name": "echohub_session"},
            },
            "responses": {
                "Error": {
                    "description": "a refusal, in the one error shape",
                    "content": {"application/json": {"schema": ref("Error")}},
                }
            },
        },
    }
