"""Media over real HTTP on a real engine: uploads (good and hostile), media on posts and
their live events, serving with visibility, and the sweep."""

from __future__ import annotations

import asyncio
import io
import os
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from PIL import Image

from server.settings import Settings
from tests import media_files as mf
from tests.conftest import TEST_SETTINGS
from tests.support import Member, call, receive_until, signup


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return TEST_SETTINGS.with_(data_dir=str(tmp_path), media_workers=1)


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in (root / "media").rglob("*") if p.is_file())


async def upload(client: Any, who: Member, data: bytes, *, alt: str | None = None,
                 name: str = "photo.jpg", ctype: str = "image/jpeg") -> Any:  # fmt: skip
    form = aiohttp.FormData()
    form.add_field("file", io.BytesIO(data), filename=name, content_type=ctype)
    if alt is not None:
        form.add_field("alt", alt)
    return await client.post("/api/media", data=form, headers=who.auth)


async def uploaded(client: Any, who: Member, data: bytes, **kw: Any) -> dict[str, Any]:
    resp = await upload(client, who, data, **kw)
    assert resp.status == 201, await resp.text()
    return dict(await resp.json())


async def fetch(client: Any, who: Member | None, url: str, **headers: str) -> Any:
    auth = who.auth if who is not None else {}
    return await client.get(url, headers={**auth, **headers})


async def picture(client: Any, who: Member, url: str) -> Image.Image:
    resp = await fetch(client, who, url)
    assert resp.status == 200, await resp.text()
    im = Image.open(io.BytesIO(await resp.read()))
    im.load()
    return im


# --- uploads ----------------------------------------------------------------------------


async def test_upload_answers_the_item_and_serves_its_renditions(
    app_client: Any, rdb: Any, tmp_path: Path
) -> None:
    aki = await signup(app_client, rdb, "aki")
    item = await uploaded(app_client, aki, mf.photo((3000, 1000)), alt="a red square")
    assert set(item) == {"id", "type", "url", "preview_url", "width", "height", "blurhash",
                         "alt"}  # fmt: skip
    assert (item["type"], item["width"], item["height"], item["alt"]) == (
        "image", 2048, 683, "a red square")
    assert len(item["blurhash"]) == 28
    large = await picture(app_client, aki, item["url"])
    small = await picture(app_client, aki, item["preview_url"])
    assert large.size == (2048, 683) and max(small.size) == 640
    assert await call(app_client, "get", f"/api/media/{item['id']}", aki, 200) == item
    assert len(files_under(tmp_path)) == 2  # the two renditions; the upload itself is gone


async def test_metadata_is_stripped_and_orientation_applied(app_client: Any, rdb: Any) -> None:
    aki = await signup(app_client, rdb, "aki")
    # Orientation 6: the stored picture is turned 90 degrees clockwise to show upright.
    item = await uploaded(app_client, aki, mf.exif_photo(orientation=6, gps=True))
    assert (item["width"], item["height"]) == (200, 400)
    resp = await fetch(app_client, aki, item["url"])
    raw = await resp.read()
    for secret in (b"SecretCam", b"Exif", b"GPS", b"ICC_PROFILE", b"XMP"):
        assert secret not in raw
    im = Image.open(io.BytesIO(raw))
    assert not im.getexif() and "icc_profile" not in im.info
    rgb = im.convert("RGB")
    # The red half was on the left; turned clockwise it is on top.
    top, bottom = mf.rgb_at(rgb, (100, 50)), mf.rgb_at(rgb, (100, 350))
    assert top[0] > 200 > top[2] and bottom[2] > 200 > bottom[0]


@pytest.mark.parametrize(
    ("make", "size", "check"),
    [
        (mf.cmyk_jpeg, (120, 80), lambda px: px[0] > 200 and px[1] < 60),  # CMYK red
        (mf.grey16_png, (100, 50), lambda px: 110 < px[0] < 146),  # 16-bit mid grey
        (mf.palette_png, (64, 64), None),
        (mf.animated_gif, (120, 80), None),
    ],
)
async def test_awkward_pictures(app_client: Any, rdb: Any, make: Any, size: Any,
                                check: Any) -> None:  # fmt: skip
    aki = await signup(app_client, rdb, "aki")
    item = await uploaded(app_client, aki, make())
    assert (item["width"], item["height"]) == size
    im = await picture(app_client, aki, item["url"])
    if make is mf.palette_png:
        rgba = im.convert("RGBA")
        r, g, b, a = mf.rgb_at(rgba, (32, 32))
        assert mf.rgb_at(rgba, (2, 2))[3] == 0 and a == 255 and g > 240 and r < 16 and b < 16
    elif make is mf.animated_gif:
        assert getattr(im, "n_frames", 1) == 4  # still animated
    else:
        assert check(im.convert("RGB").getpixel((10, 10)))


BAD_UPLOADS = [
    ("empty", b"", 400, "empty_file"),
    ("svg disguised as a JPEG", mf.svg_as_jpeg(), 415, "unsupported_media"),
    ("html disguised as a JPEG", mf.html_as_jpeg(), 415, "unsupported_media"),
    ("a JPEG signature before HTML", mf.polyglot(), 415, "unsupported_media"),
    ("a JPEG with HTML after its end", mf.with_html_after("JPEG"), 415, "unsupported_media"),
    ("a PNG with HTML after its end", mf.with_html_after("PNG"), 415, "unsupported_media"),
    ("a zip bomb in a PNG text chunk", mf.png_text_bomb(), 422, "image_too_large"),
    ("a 50,000 x 50,000 header", mf.png_header_only(50_000, 50_000), 422, "image_too_large"),
    ("a truncated JPEG", mf.truncated(mf.photo()), 422, "media_unreadable"),
]


@pytest.mark.parametrize(("what", "data", "status", "code"), BAD_UPLOADS,
                         ids=[b[0] for b in BAD_UPLOADS])  # fmt: skip
async def test_bad_uploads_are_refused_and_leave_nothing(
    app_client: Any, rdb: Any, tmp_path: Path, what: str, data: bytes, status: int, code: str
) -> None:
    aki = await signup(app_client, rdb, "aki")
    resp = await upload(app_client, aki, data)
    assert resp.status == status, await resp.text()
    error = (await resp.json())["error"]
    assert (error["code"], error.get("field")) == (code, "file")
    assert files_under(tmp_path) == []
    assert await rdb.keys("eh:media:[0-9a-f]*") == []
    assert await rdb.zcard("eh:media:pending") == 0


async def test_upload_over_the_limit_is_413_at_once(app_client: Any, rdb: Any,
                                                    tmp_path: Path) -> None:  # fmt: skip
    aki = await signup(app_client, rdb, "aki")
    # A PNG signature: the image limit (16 MB) applies while it streams in.
    body = b"\x89PNG\r\n\x1a\n" + b"\x00" * (17 * 1024 * 1024)
    resp = await upload(app_client, aki, body, name="x.png", ctype="image/png")
    assert resp.status == 413
    assert (await resp.json())["error"]["code"] == "file_too_large"
    assert files_under(tmp_path) == []


async def test_bad_forms(app_client: Any, rdb: Any) -> None:
    aki = await signup(app_client, rdb, "aki")
    resp = await app_client.post("/api/media", json={"file": "x"}, headers=aki.auth)
    assert resp.status == 415
    assert (await resp.json())["error"]["code"] == "unsupported_content_type"
    form = aiohttp.FormData(default_to_multipart=True)
    form.add_field("alt", "no file")
    resp = await app_client.post("/api/media", data=form, headers=aki.auth)
    assert (await resp.json())["error"]["code"] == "file_required"
    resp = await upload(app_client, aki, mf.photo(), alt="x" * 1501)
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "alt_too_long"
    app_client.session.cookie_jar.clear()
    resp = await upload(app_client, Member("nobody", "not-a-token", {}), mf.photo())
    assert resp.status == 401


FORM = "multipart/form-data; boundary=x"
PART = b'--x\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n'
MALFORMED_FORMS = [
    ("multipart/form-data", b"no boundary", "invalid_multipart"),
    (FORM, b"no starting boundary", "invalid_multipart"),
    (FORM, b'--x\r\nContent-Disposition: form-data; name="file"\r\n\r\nno end',
     "invalid_multipart"),
    ("multipart/form-data; boundary=" + "x" * 200, b"--x\r\n", "invalid_multipart"),
    (FORM, b"--x\r\n\r\n--x--\r\n", "unknown_field"),
    (FORM, PART % (b"alt", b"\xff\xfe") + b"--x--\r\n", "invalid_alt"),
    (FORM, b"".join(PART % (b"p%d" % i, b"v") for i in range(9)) + b"--x--\r\n", "unknown_field"),
    (FORM, PART % (b"file", b"a") + PART % (b"file", b"b") + b"--x--\r\n", "unknown_field"),
    (FORM, b'--x\r\nContent-Type: multipart/mixed; boundary=y\r\nContent-Disposition: '
           b'form-data; name="file"\r\n\r\n--y\r\n\r\nz\r\n--y--\r\n--x--\r\n', "invalid_body"),
]


@pytest.mark.parametrize(("ctype", "body", "code"), MALFORMED_FORMS)
async def test_malformed_forms_are_400_and_leave_nothing(
    app_client: Any, rdb: Any, tmp_path: Path, ctype: str, body: bytes, code: str
) -> None:
    aki = await signup(app_client, rdb, "aki")
    resp = await app_client.post("/api/media", data=body,
                                 headers={**aki.auth, "Content-Type": ctype})  # fmt: skip
    assert resp.status == 400, await resp.text()
    assert (await resp.json())["error"]["code"] == code
    assert files_under(tmp_path) == []


async def test_client_stopping_mid_upload_leaves_no_temporary_file(
    app_client: Any, rdb: Any, tmp_path: Path
) -> None:
    aki = await signup(app_client, rdb, "aki")
    boundary = "xyzzy"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"a.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n").encode()  # fmt: skip
    request = (f"POST /api/media HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               f"Authorization: Bearer {aki.token}\r\n"
               f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
               f"Content-Length: {10 * 1024 * 1024}\r\n\r\n").encode()  # fmt: skip
    port = app_client.server.port
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request + head + mf.photo() + b"\x00" * (2 * 1024 * 1024))
    await writer.drain()
    tmp = tmp_path / "media" / "tmp"
    deadline = time.monotonic() + 5
    while not any(tmp.iterdir()) and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert any(tmp.iterdir()), "the upload never started streaming to disk"
    writer.transport.abort()  # the client goes away mid-body
    deadline = time.monotonic() + 10
    while any(tmp.iterdir()) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert list(tmp.iterdir()) == []
    assert files_under(tmp_path) == []
    del reader


# --- posts ------------------------------------------------------------------------------


async def post(client: Any, who: Member, status: int = 201, **body: Any) -> dict[str, Any]:
    return await call(client, "post", "/api/echoes", who, status, {"text": "look", **body})


async def test_post_carries_media_live_and_claims_all_or_none(app_client: Any, rdb: Any) -> None:
    aki = await signup(app_client, rdb, "aki")
    ben = await signup(app_client, rdb, "ben")
    ws = await app_client.ws_connect("/ws", headers=ben.auth)
    await ws.send_json({"op": "sub", "id": 1, "topic": "public"})
    await receive_until(ws, lambda f: f["op"] == "ack")
    items = [await uploaded(app_client, aki, mf.photo((300 + i, 200)), alt=f"pic {i}")
             for i in range(5)]  # fmt: skip
    ids = [i["id"] for i in items]
    # Five: refused before anything is claimed.
    error = (await post(app_client, aki, 400, media=ids))["error"]
    assert error["code"] == "too_many_media"
    # Someone else's media: refused, and none of the author's is claimed either.
    theirs = await uploaded(app_client, ben, mf.photo())
    error = (await post(app_client, aki, 404, media=[ids[0], theirs["id"]]))["error"]
    assert (error["code"], error["field"]) == ("media_not_found", "media")
    assert await rdb.hget(f"eh:media:{ids[0]}", "post") == ""
    created = await post(app_client, aki, media=ids[:4])
    assert created["media"] == items[:4]
    frames = await receive_until(ws, lambda f: f["op"] == "event")
    assert frames[-1]["data"]["media"] == items[:4]
    # Already attached: refused.
    error = (await post(app_client, aki, 409, media=[ids[0]]))["error"]
    assert error["code"] == "media_attached"
    fetched = await call(app_client, "get", f"/api/echoes/{created['id']}", ben, 200)
    assert [m["alt"] for m in fetched["media"]] == ["pic 0", "pic 1", "pic 2", "pic 3"]
    feed = await call(app_client, "get", "/api/users/aki/echoes", ben, 200)
    assert feed["items"][0]["media"] == items[:4]
    # A post without media says so.
    assert (await post(app_client, aki))["media"] == []
    await ws.close()


async def test_bad_media_lists(app_client: Any, rdb: Any) -> None:
    aki = await signup(app_client, rdb, "aki")
    one = await uploaded(app_client, aki, mf.photo())
    cases: list[tuple[object, int, str]] = [
        ("x", 400, "invalid_media"), ([1], 400, "invalid_media"), ([None], 400, "invalid_media"),
        ([{"id": one["id"]}], 400, "invalid_media"), ([one["id"], 1], 400, "invalid_media"),
        (["nothex" * 3], 404, "media_not_found"),
        ([one["id"], one["id"]], 400, "duplicate_media")]  # fmt: skip
    for media, status, code in cases:
        error = (await post(app_client, aki, status, media=media))["error"]
        assert (error["code"], error["field"]) == (code, "media")
    # The socket's post op answers the same.
    ws = await app_client.ws_connect("/ws", headers=aki.auth)
    for n, (media, _, code) in enumerate(cases, start=1):
        await ws.send_json({"op": "post", "id": n, "text": "x", "media": media})
        answer = (await receive_until(ws, lambda f, n=n: f.get("id") == n))[-1]
        assert answer["op"] == "error", answer
        assert answer["code"] == code
    await ws.close()
    assert await rdb.zcard(f"eh:posts:{aki.user['id']}") == 0
    assert await rdb.hget(f"eh:media:{one['id']}", "post") == ""


async def test_two_concurrent_posts_claiming_the_same_media(app_client: Any, rdb: Any) -> None:
    aki = await signup(app_client, rdb, "aki")
    for _ in range(3):
        item = await uploaded(app_client, aki, mf.photo())
        body = {"text": "race", "media": [item["id"]]}
        answers = await asyncio.gather(*[
            app_client.post("/api/echoes", json=body, headers=aki.auth) for _ in range(4)])
        statuses = sorted(r.status for r in answers)
        assert statuses == [201, 409, 409, 409]
    assert await rdb.zcard(f"eh:posts:{aki.user['id']}") == 3


# --- serving ----------------------------------------------------------------------------


async def test_serving_headers_304_and_ranges(app_client: Any, rdb: Any) -> None:
    aki = await signup(app_client, rdb, "aki")
    item = await uploaded(app_client, aki, mf.photo())
    resp = await fetch(app_client, aki, item["url"])
    body = await resp.read()
    assert resp.headers["Content-Type"] == "image/webp" or resp.headers["Content-Type"] in (
        "image/jpeg", "image/png")
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert "immutable" in resp.headers["Cache-Control"]
    assert "private" in resp.headers["Cache-Control"]
    etag = resp.headers["ETag"]
    again = await fetch(app_client, aki, item["url"], **{"If-None-Match": etag})
    assert again.status == 304 and await again.read() == b""
    part = await fetch(app_client, aki, item["url"], Range="bytes=10-19")
    assert part.status == 206 and await part.read() == body[10:20]
    assert part.headers["Content-Range"] == f"bytes 10-19/{len(body)}"
    tail = await fetch(app_client, aki, item["url"], Range="bytes=-5")
    assert tail.status == 206 and await tail.read() == body[-5:]
    beyond = await fetch(app_client, aki, item["url"], Range=f"bytes={len(body)}-")
    assert beyond.status == 416
    for bad in ("/media/../../etc/passwd", "/media/abc.webp", "/media/" + "0" * 40 + ".webp"):
        assert (await fetch(app_client, aki, bad)).status == 404


async def test_who_may_see_a_posts_media(app_client: Any, rdb: Any) -> None:
    aki, ben, cho = [await signup(app_client, rdb, h) for h in ("aki", "ben", "cho")]
    # aki and ben are friends; cho is not, and is later blocked by aki.
    await call(app_client, "post", "/api/users/ben/follow", aki, 200)
    await call(app_client, "post", "/api/users/aki/follow", ben, 200)
    unattached = await uploaded(app_client, aki, mf.photo((500, 400)))
    public = await uploaded(app_client, aki, mf.photo((510, 400)))
    friends = await uploaded(app_client, aki, mf.photo((520, 400)))
    await post(app_client, aki, media=[public["id"]])
    await post(app_client, aki, media=[friends["id"]], visibility="friends")
    app_client.session.cookie_jar.clear()  # "None" below: no session at all
    table = [
        (unattached, {"aki": 200, "ben": 404, "cho": 404, None: 404}),
        (public, {"aki": 200, "ben": 200, "cho": 200, None: 404}),
        (friends, {"aki": 200, "ben": 200, "cho": 404, None: 404}),
    ]
    members = {"aki": aki, "ben": ben, "cho": cho, None: None}
    for item, expected in table:
        for who, status in expected.items():
            for url in (item["url"], item["preview_url"]):
                resp = await fetch(app_client, members[who], url)
                assert resp.status == status, (item["id"], who, url)
                assert resp.headers["X-Content-Type-Options"] == "nosniff"
    # A closed community's post: its members only (aki owns it, ben joins by approval).
    club = await call(app_client, "post", "/api/communities", aki, 201,
                      {"name": "Closed club", "description": "x", "join_policy": "approval"})
    inside = await uploaded(app_client, aki, mf.photo((530, 400)))
    await post(app_client, aki, media=[inside["id"]], community=club["id"])
    assert (await fetch(app_client, ben, inside["url"])).status == 404
    await call(app_client, "post", f"/api/communities/{club['id']}/join", ben, 200)
    await call(app_client, "post", f"/api/communities/{club['id']}/requests/ben/approve", aki,
               200)  # fmt: skip
    assert (await fetch(app_client, ben, inside["url"])).status == 200
    assert (await fetch(app_client, cho, inside["url"])).status == 404
    await call(app_client, "post", "/api/users/cho/block", aki, 200)
    assert (await fetch(app_client, cho, public["url"])).status == 404
    # Only the owner reads the item through the API, and only unattached items change.
    assert (await fetch(app_client, ben, f"/api/media/{unattached['id']}")).status == 404
    await call(app_client, "patch", f"/api/media/{unattached['id']}", aki, 200, {"alt": "new"})
    error = (await call(app_client, "patch", f"/api/media/{public['id']}", aki, 409,
                        {"alt": "x"}))["error"]  # fmt: skip
    assert error["code"] == "media_attached"
    await call(app_client, "delete", f"/api/media/{public['id']}", aki, 409)
    await call(app_client, "delete", f"/api/media/{unattached['id']}", ben, 404)


# --- cleanup ----------------------------------------------------------------------------


async def test_a_deleted_posts_media_is_gone_at_once_for_everyone(app_client: Any,
                                                                   rdb: Any) -> None:  # fmt: skip
    aki = await signup(app_client, rdb, "aki")
    ben = await signup(app_client, rdb, "ben")
    item = await uploaded(app_client, aki, mf.photo((900, 600)))
    created = await post(app_client, aki, media=[item["id"]])
    urls = (item["url"], item["preview_url"])
    for who in (aki, ben):
        for url in urls:
            assert (await fetch(app_client, who, url)).status == 200
    await call(app_client, "delete", f"/api/echoes/{created['id']}", aki, 200)
    for who in (aki, ben):  # the author too: the README's promise
        for url in urls:
            resp = await fetch(app_client, who, url)
            assert resp.status == 404, (who.handle, url)
            assert (await resp.json())["error"]["code"] == "not_found"


async def test_sweep_deletes_unattached_and_dropped_media(app_client: Any, rdb: Any,
                                                          tmp_path: Path) -> None:  # fmt: skip
    from server.services.container import FEATURES

    media = app_client.server.app[FEATURES].media
    aki = await signup(app_client, rdb, "aki")
    kept = await uploaded(app_client, aki, mf.photo((600, 400)))
    posted = await uploaded(app_client, aki, mf.photo((610, 400)))
    same = await uploaded(app_client, aki, mf.photo((610, 400)))  # the same bytes again
    created = await post(app_client, aki, media=[posted["id"]])
    assert same["url"] == posted["url"]  # content-addressed: stored once
    assert await media.sweep() == 0
    count = len(files_under(tmp_path))
    # Deleting the post drops its media; within the grace period it stays.
    await call(app_client, "delete", f"/api/echoes/{created['id']}", aki, 200)
    assert await media.sweep() == 0
    assert (await fetch(app_client, aki, posted["url"])).status == 200  # `same` is aki's
    # Past the grace period and the 24 hours: `posted` and both unattached go...
    assert await media.sweep(unattached_ttl=-1, grace=-1) == 3
    assert files_under(tmp_path) == [] and count == 2  # small pictures: one file each
    assert await rdb.keys("eh:file:*") == [] and await rdb.keys("eh:filedel:*") == []
    assert (await fetch(app_client, aki, kept["url"])).status == 404
    # What a process that died mid-upload left behind goes once it is an hour old.
    tmp = tmp_path / "media" / "tmp"
    (tmp / "upload-old").write_bytes(b"x")
    (tmp / "work-old").mkdir()
    (tmp / "upload-fresh").write_bytes(b"y")
    an_hour_ago = time.time() - 3700
    for old in ("upload-old", "work-old"):
        os.utime(tmp / old, (an_hour_ago, an_hour_ago))
    await media.sweep()
    assert sorted(p.name for p in tmp.iterdir()) == ["upload-fresh"]
    (tmp / "upload-fresh").unlink()
    # ...and a deleted item leaves nothing either.
    item = await uploaded(app_client, aki, mf.photo())
    await call(app_client, "delete", f"/api/media/{item['id']}", aki, 200)
    assert files_under(tmp_path) == []
    assert os.listdir(tmp_path / "media" / "tmp") == []



# --- avatars ----------------------------------------------------------------------------


async def test_avatar_is_a_square_crop_shown_to_members_and_on_posts(
    app_client: Any, rdb: Any, tmp_path: Path
) -> None:
    from server.services.container import FEATURES

    media = app_client.server.app[FEATURES].media
    aki = await signup(app_client, rdb, "aki")
    ben = await signup(app_client, rdb, "ben")
    wide = await uploaded(app_client, aki, mf.photo((900, 300)))
    me = await call(app_client, "patch", "/api/me", aki, 200, {"avatar": wide["id"]})
    url = me["avatar"]
    assert url.startswith("/media/avatars/aki?v=")
    square = await picture(app_client, ben, url)
    assert square.size == (300, 300)
    # The picture is the avatar's now: it cannot go on a post, nor be deleted.
    assert (await post(app_client, aki, 409, media=[wide["id"]]))["error"]["code"] == (
        "media_attached")
    await call(app_client, "delete", f"/api/media/{wide['id']}", aki, 409)
    created = await post(app_client, aki)
    assert created["author"] == {"handle": "aki", "display_name": "Aki", "avatar": url}
    profile = await call(app_client, "get", "/api/users/aki", ben, 200)
    assert profile["avatar"] == url
    # Not someone else's picture, not a video.
    theirs = await uploaded(app_client, ben, mf.photo())
    error = (await call(app_client, "patch", "/api/me", aki, 404,
                        {"avatar": theirs["id"]}))["error"]  # fmt: skip
    assert (error["code"], error["field"]) == ("media_not_found", "avatar")
    clip = await uploaded(app_client, aki, mf.video(1.0), name="a.mp4", ctype="video/mp4")
    error = (await call(app_client, "patch", "/api/me", aki, 400,
                        {"avatar": clip["id"]}))["error"]  # fmt: skip
    assert (error["code"], error["field"]) == ("not_an_image", "avatar")
    # A new avatar drops the old one; none at all drops that too; the sweep takes them.
    tall = await uploaded(app_client, aki, mf.photo((300, 600)))
    second = (await call(app_client, "patch", "/api/me", aki, 200, {"avatar": tall["id"]}))
    assert second["avatar"] != url and (await picture(app_client, ben, url)).size == (300, 300)
    await call(app_client, "patch", "/api/me", aki, 200, {"avatar": None})
    assert (await fetch(app_client, ben, url)).status == 404
    await media.sweep(grace=-1)
    assert not await rdb.exists(f"eh:media:{wide['id']}", f"eh:media:{tall['id']}")
    app_client.session.cookie_jar.clear()
    assert (await fetch(app_client, None, "/media/avatars/aki?v=x")).status == 404


async def test_a_video_upload_is_served_with_ranges(app_client: Any, rdb: Any) -> None:
    aki = await signup(app_client, rdb, "aki")
    item = await uploaded(app_client, aki, mf.video(1.0), name="clip.mov",
                          ctype="application/octet-stream")  # fmt: skip
    assert item["type"] == "video" and 0.9 < item["duration"] < 1.2
    assert (item["width"], item["height"]) == (64, 48)
    resp = await fetch(app_client, aki, item["url"], Range="bytes=0-7")
    assert resp.status == 206 and resp.headers["Content-Type"] == "video/mp4"
    assert (await resp.read())[4:8] == b"ftyp"
    poster = await picture(app_client, aki, item["preview_url"])
    assert poster.size == (64, 48)
    created = await post(app_client, aki, media=[item["id"]])
    assert created["media"] == [item]
    other = await uploaded(app_client, aki, mf.photo())
    again = await uploaded(app_client, aki, mf.video(1.0), name="clip.mp4")
    error = (await post(app_client, aki, 400, media=[other["id"], again["id"]]))["error"]
    assert error["code"] == "too_many_media"
    resp = await upload(app_client, aki, mf.video(61, fps=1, audio=None), name="long.mp4")
    assert resp.status == 422 and (await resp.json())["error"]["code"] == "video_too_long"


async def test_two_processes_share_the_files_and_a_socket_post_carries_media(
    two_servers: Any, rdb: Any
) -> None:
    a, b = two_servers
    aki = await signup(a, rdb, "aki")
    ben = await signup(a, rdb, "ben")
    item = await uploaded(a, aki, mf.photo((700, 500)), alt="🐱")
    # The other process names and finds the same file (one secret, in the engine).
    again = await uploaded(b, aki, mf.photo((700, 500)))
    assert again["url"] == item["url"]
    watcher = await b.ws(ben)
    await watcher.send_json({"op": "sub", "id": 1, "topic": "public"})
    await receive_until(watcher, lambda f: f["op"] == "ack")
    poster = await a.ws(aki)
    await poster.send_json({"op": "post", "id": 2, "text": "via the socket",
                            "media": [item["id"]]})  # fmt: skip
    ack = (await receive_until(poster, lambda f: f.get("id") == 2))[-1]
    assert ack["op"] == "ack" and ack["post"]["media"] == [item]
    event = (await receive_until(watcher, lambda f: f["op"] == "event"))[-1]
    assert event["data"]["media"] == [item]
    resp = await b.get(item["url"], headers=ben.auth)
    assert resp.status == 200 and resp.headers["X-Content-Type-Options"] == "nosniff"
    assert await resp.read()  # read to the end: the connection goes back to the pool
    await poster.close()
    await watcher.close()
