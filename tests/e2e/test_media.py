"""Media in Chromium: attaching a picture with alt text in the composer, seeing it live
on another member's open page (blurhash first, then the picture), the viewer, and a
profile picture shown beside the member's name."""

from __future__ import annotations

import re

from PIL import Image
from playwright.sync_api import FilePayload, expect

from tests import media_files as mf
from tests.e2e.conftest import MemberFactory


def test_attach_a_picture_and_another_member_sees_it_with_its_alt(member: MemberFactory) -> None:
    aki, ben = member("Aki"), member("Ben")
    ben.api("POST", f"/api/users/{aki.handle}/follow")
    aki.goto()
    ben.goto()
    ben.page.evaluate("window.__sameDocument = true")

    picker = aki.page.locator(".composer input[type=file]")
    picker.set_input_files({"name": "cat.jpg", "mimeType": "image/jpeg",
                            "buffer": mf.photo((1200, 800))})  # fmt: skip
    expect(aki.page.locator(".attachment-state")).to_have_text("Ready")
    aki.page.get_by_label(re.compile("Describe cat.jpg")).fill("A red square on a grey sky")
    aki.page.get_by_role("textbox", name="Your Echo").fill("look at this")
    aki.page.get_by_role("button", name="Echo", exact=True).click()
    expect(aki.page.locator(".attachments")).to_be_hidden()  # cleared after posting

    card = ben.page.locator(".feed .echo", has_text="look at this")
    picture = card.locator(".media-grid img")
    expect(picture).to_have_attribute("alt", "A red square on a grey sky")
    expect(card.locator(".media-grid canvas.blurhash")).to_have_count(1)
    picture.evaluate("img => img.decode()")
    assert picture.evaluate("img => img.naturalWidth") == 640  # the small rendition
    assert ben.page.evaluate("window.__sameDocument") is True  # arrived live

    # The viewer: the large picture with its alt text as a caption; Escape closes it.
    card.get_by_role("button", name="A red square on a grey sky").click()
    viewer = ben.page.get_by_role("dialog", name="Image viewer")
    expect(viewer).to_be_visible()
    expect(viewer.locator("figcaption")).to_have_text("A red square on a grey sky")
    big = viewer.locator("img")
    big.evaluate("img => img.decode()")
    assert big.evaluate("img => img.naturalWidth") == 1200
    ben.page.keyboard.press("Escape")
    expect(viewer).to_have_count(0)


def test_five_pictures_are_refused_in_the_composer(member: MemberFactory) -> None:
    aki = member("Many")
    aki.goto()
    files: list[FilePayload] = [{"name": f"p{i}.png", "mimeType": "image/png",
              "buffer": mf.encoded(Image.new("RGB", (20 + i, 20)), "PNG")}
             for i in range(5)]  # fmt: skip
    aki.page.locator(".composer input[type=file]").set_input_files(files)
    expect(aki.page.locator(".attach-error")).to_contain_text("up to 4 images")
    expect(aki.page.locator(".attachment")).to_have_count(4)
    expect(aki.page.locator(".attachment-state", has_text="Ready")).to_have_count(4)


def test_a_profile_picture_shows_beside_the_name(member: MemberFactory) -> None:
    aki = member("Pic")
    aki.goto(f"#/u/{aki.handle}")
    aki.page.locator(".avatar-controls input[type=file]").set_input_files(
        {"name": "me.png", "mimeType": "image/png", "buffer": mf.photo((500, 300))})
    expect(aki.page.locator(".avatar-status")).to_have_text("Your picture is changed.")
    expect(aki.page.locator(".profile-head img.avatar-large")).to_be_visible()
    aki.api("POST", "/api/echoes", {"text": "with my face"})
    aki.goto()
    face = aki.page.locator(".feed .echo", has_text="with my face").locator(".member img")
    face.evaluate("img => img.decode()")
    assert face.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [300, 300]


DROP_AND_PASTE = """([kind, bytes]) => {
  const data = new DataTransfer();
  data.items.add(new File([new Uint8Array(bytes)], `dropped.png`, { type: "image/png" }));
  const form = document.querySelector("form.composer");
  const how = { bubbles: true, cancelable: true };
  if (kind === "drop") {
    form.dispatchEvent(new DragEvent("dragover", { dataTransfer: data, ...how }));
    form.dispatchEvent(new DragEvent("drop", { dataTransfer: data, ...how }));
  } else {
    const box = form.querySelector("textarea");
    box.dispatchEvent(new ClipboardEvent("paste", { clipboardData: data, ...how }));
  }
}"""


def test_drop_and_paste_attach_and_a_video_plays_only_when_asked(member: MemberFactory) -> None:
    aki = member("Drop")
    aki.goto()
    png = list(mf.encoded(Image.new("RGB", (40, 30), (0, 128, 0)), "PNG"))
    aki.page.evaluate(DROP_AND_PASTE, ["drop", png])
    aki.page.evaluate(DROP_AND_PASTE, ["paste", png])
    expect(aki.page.locator(".attachment-state", has_text="Ready")).to_have_count(2)
    aki.page.get_by_role("button", name="Remove dropped.png").first.click()
    expect(aki.page.locator(".attachment")).to_have_count(1)

    # A video posted through the API shows in the native player: controls, no autoplay.
    resp = aki.context.request.post(
        f"{aki.base}/api/media", headers={"Origin": aki.base},
        multipart={"file": {"name": "clip.mp4", "mimeType": "video/mp4", "buffer": mf.video(1.0)}},
    )  # fmt: skip
    assert resp.status == 201, resp.text()
    aki.api("POST", "/api/echoes", {"text": "a clip", "media": [resp.json()["id"]]})
    video = aki.page.locator(".feed .echo", has_text="a clip").locator("video")
    expect(video).to_have_attribute("controls", "")
    assert video.evaluate("v => [v.autoplay, v.muted, v.paused]") == [False, False, True]
    expect(video).to_have_attribute("poster", re.compile(r"^/media/[0-9a-f]{40}\.webp$"))


def test_the_page_decodes_the_servers_blurhash(member: MemberFactory) -> None:
    """Parity: the page's decoder turns the server's encoding back into the colours."""
    from server.domain.media import blurhash

    aki = member("Hash")
    aki.goto()
    left_red = bytes(v for _y in range(16) for x in range(32)
                     for v in ((230, 20, 20) if x < 16 else (20, 20, 230)))  # fmt: skip
    value = blurhash(left_red, 32, 16)
    pixels = aki.page.evaluate(
        """async (hash) => {
            const { decodeBlurhash } = await import("/js/media.js");
            const px = decodeBlurhash(hash, 32, 16);
            const at = (x, y) => Array.from(px.slice(4 * (x + y * 32), 4 * (x + y * 32) + 3));
            return [at(2, 8), at(29, 8), decodeBlurhash("not a hash", 4, 4)];
        }""",
        value,
    )
    left, right, bad = pixels
    assert left[0] > 150 > left[2] and right[2] > 150 > right[0]
    assert bad is None
