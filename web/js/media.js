// Media: the blurhash placeholder, the grid on a post, the viewer (keyboard and swipe),
// attaching photos or a video in the composer (picker, drag and drop, paste) with alt
// text, and avatars. Everything is built with the DOM API; user text (alt, names)
// only ever becomes text or attribute values.

import { ApiError, del, enc, patch, upload } from "./api.js";
import { h } from "./dom.js";
import { errorText, t } from "./i18n.js";

export const MAX_IMAGES = 4;
export const MAX_ALT = 1500;
const IMAGE_TYPES = ["image/jpeg", "image/png", "image/webp", "image/gif"];
const VIDEO_TYPES = ["video/mp4", "video/webm"];

// --- blurhash (the reference decoder, https://blurha.sh) --------------------------------

const B83 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~";
const d83 = (s) => [...s].reduce((v, c) => v * 83 + B83.indexOf(c), 0);
const toLinear = (v) => (v / 255 <= 0.04045 ? v / 255 / 12.92 : ((v / 255 + 0.055) / 1.055) ** 2.4);
const toSrgb = (v) => {
  const x = Math.max(0, Math.min(1, v));
  return Math.round((x <= 0.0031308 ? x * 12.92 : 1.055 * x ** (1 / 2.4) - 0.055) * 255);
};
const signPow = (v, e) => Math.sign(v) * Math.abs(v) ** e;

/** RGBA pixels (width x height) of a blurhash, or null for a malformed one. */
export function decodeBlurhash(hash, width, height) {
  if (typeof hash !== "string" || hash.length < 6 || [...hash].some((c) => !B83.includes(c))) return null;
  const size = d83(hash[0]);
  const nx = (size % 9) + 1;
  const ny = Math.floor(size / 9) + 1;
  if (hash.length !== 4 + 2 * nx * ny) return null;
  const maxAc = (d83(hash[1]) + 1) / 166;
  const dc = d83(hash.slice(2, 6));
  const colors = [[toLinear(dc >> 16), toLinear((dc >> 8) & 255), toLinear(dc & 255)]];
  for (let i = 1; i < nx * ny; i++) {
    const v = d83(hash.slice(4 + i * 2, 6 + i * 2));
    colors.push([Math.floor(v / 361), Math.floor(v / 19) % 19, v % 19].map((q) => signPow((q - 9) / 9, 2) * maxAc));
  }
  const pixels = new Uint8ClampedArray(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let r = 0, g = 0, b = 0;
      for (let j = 0; j < ny; j++) {
        for (let i = 0; i < nx; i++) {
          const basis = Math.cos((Math.PI * x * i) / width) * Math.cos((Math.PI * y * j) / height);
          const c = colors[i + j * nx];
          r += c[0] * basis;
          g += c[1] * basis;
          b += c[2] * basis;
        }
      }
      const at = 4 * (x + y * width);
      pixels[at] = toSrgb(r);
      pixels[at + 1] = toSrgb(g);
      pixels[at + 2] = toSrgb(b);
      pixels[at + 3] = 255;
    }
  }
  return pixels;
}

/** A small canvas painted with the blurhash, stretched by CSS under the image. */
function placeholder(item) {
  const w = 32;
  const ht = Math.max(1, Math.round((32 * (item.height || 1)) / (item.width || 1)));
  const canvas = h("canvas.blurhash", { width: w, height: Math.min(ht, 64), "aria-hidden": "true" });
  const pixels = decodeBlurhash(item.blurhash, canvas.width, canvas.height);
  const g = pixels && canvas.getContext("2d");
  if (g) g.putImageData(new ImageData(pixels, canvas.width, canvas.height), 0, 0);
  return canvas;
}

// --- on posts --------------------------------------------------------------------------------

/** The media of a post: a grid of images (each opens the viewer), or a video player. */
export function mediaGrid(items) {
  const grid = h(`div.media-grid.count-${Math.min(items.length, MAX_IMAGES)}`);
  items.forEach((item, index) => {
    if (item.type === "video") {
      // The native player: controls, no autoplay (never muted autoplay), the poster first.
      grid.append(h("div.media-item.video", null,
        h("video", {
          controls: true, preload: "metadata", playsInline: true, poster: item.preview_url,
          src: item.url, width: item.width, height: item.height,
          "aria-label": item.alt || t("media.video"),
        })));
      return;
    }
    const img = h("img", {
      src: item.preview_url, alt: item.alt || "", width: item.width, height: item.height,
      loading: "lazy", decoding: "async",
    });
    const holder = placeholder(item);
    img.addEventListener("load", () => holder.classList.add("loaded"), { once: true });
    const open = h("button.media-item", { type: "button", title: item.alt || null },
      holder, img,
      item.alt ? null : h("span.sr-only", null, t("media.image", { n: index + 1, count: items.length })));
    open.addEventListener("click", () => openViewer(items.filter((m) => m.type !== "video"), index, open));
    grid.append(open);
  });
  return grid;
}

/** The viewer: one image at a time, large, with its alt text; arrows, swipe, Escape. */
export function openViewer(items, start, opener) {
  let index = start;
  const img = h("img.viewer-image", { alt: "" });
  const caption = h("figcaption.viewer-alt");
  const position = h("p.viewer-position", { "aria-live": "polite" });
  const prev = h("button.viewer-prev", { type: "button", "aria-label": t("media.previous") }, "‹");
  const next = h("button.viewer-next", { type: "button", "aria-label": t("media.next") }, "›");
  const close = h("button.viewer-close", { type: "button", "aria-label": t("media.close") }, "×");
  const dialog = h("dialog.media-viewer", { "aria-label": t("media.viewer") },
    close, h("figure", null, img, caption), h("div.viewer-nav", null, prev, position, next));
  const show = (i) => {
    index = (i + items.length) % items.length;
    const item = items[index];
    img.src = item.url;
    img.alt = item.alt || "";
    img.width = item.width;
    img.height = item.height;
    caption.textContent = item.alt || "";
    caption.hidden = !item.alt;
    position.textContent = t("media.position", { n: index + 1, count: items.length });
    prev.hidden = next.hidden = position.hidden = items.length < 2;
  };
  prev.addEventListener("click", () => show(index - 1));
  next.addEventListener("click", () => show(index + 1));
  close.addEventListener("click", () => dialog.close());
  dialog.addEventListener("keydown", (e) => {
    if (e.key === "ArrowLeft") show(index - 1);
    else if (e.key === "ArrowRight") show(index + 1);
  });
  // Swipe: a horizontal drag of more than 50 px turns the page.
  let from = null;
  dialog.addEventListener("pointerdown", (e) => { from = e.clientX; });
  dialog.addEventListener("pointerup", (e) => {
    if (from === null) return;
    const dx = e.clientX - from;
    from = null;
    if (Math.abs(dx) > 50 && items.length > 1) show(index + (dx < 0 ? 1 : -1));
  });
  // A click on the backdrop (the dialog itself, not its content) closes it.
  dialog.addEventListener("click", (e) => { if (e.target === dialog) dialog.close(); });
  dialog.addEventListener("close", () => {
    dialog.remove();
    opener?.focus();
  });
  show(start);
  document.body.append(dialog);
  dialog.showModal();
  close.focus();
  return dialog;
}

// --- in the composer -----------------------------------------------------------------------

/**
 * Attachments for the composer: `element` (the list and the add button), `bind(form,
 * textarea)` for drag and drop and paste, `ids()`, `busy()`, `flush()` (saves changed
 * alt texts), `clear()`. `onChange()` is called when the state changes.
 */
export function attachments({ onChange = () => {} } = {}) {
  const entries = [];
  const id = `attach-${Math.random().toString(36).slice(2, 7)}`;
  const input = h("input.sr-only", {
    type: "file", id, multiple: true, tabIndex: -1, "aria-hidden": "true",
    accept: [...IMAGE_TYPES, ...VIDEO_TYPES].join(","),
  });
  const add = h("button.plain.attach-button", { type: "button", "aria-describedby": `${id}-hint` },
    h("span", { "aria-hidden": "true" }, "🖼 "), t("media.attach"));
  const hint = h("span.sr-only", { id: `${id}-hint` }, t("media.attachHint"));
  const list = h("ul.attachments", { "aria-label": t("media.attached"), hidden: true });
  const status = h("p.attach-error", { role: "alert" });
  add.addEventListener("click", () => input.click());
  input.addEventListener("change", () => {
    addFiles([...input.files]);
    input.value = "";
  });

  function addFiles(files) {
    status.textContent = "";
    for (const file of files) {
      const isImage = IMAGE_TYPES.includes(file.type);
      const isVideo = VIDEO_TYPES.includes(file.type);
      if (!isImage && !isVideo) {
        status.textContent = t("media.unsupported", { name: file.name || "?" });
        continue;
      }
      const hasVideo = entries.some((e) => e.video);
      if (hasVideo || (isVideo && entries.length) || entries.length >= MAX_IMAGES) {
        status.textContent = t("media.tooMany");
        break;
      }
      start(file, isVideo);
    }
    onChange();
  }

  function start(file, video) {
    const entry = { file, video, id: null, alt: "", savedAlt: "", uploading: true, url: null };
    const name = file.name || t(video ? "media.video" : "media.imageOne");
    const thumb = video
      ? h("span.attachment-thumb.video", { "aria-hidden": "true" }, "▶")
      : h("img.attachment-thumb", { alt: "", src: (entry.url = URL.createObjectURL(file)) });
    const state = h("span.attachment-state", { "aria-live": "polite" }, t("media.uploading"));
    const altId = `${id}-alt-${entries.length}-${Math.random().toString(36).slice(2, 5)}`;
    const alt = h("textarea.attachment-alt", {
      id: altId, rows: 2, maxLength: MAX_ALT * 2, placeholder: t("media.altPlaceholder"),
      lang: document.documentElement.lang,
    });
    const remove = h("button.linkish.danger.attachment-remove", { type: "button" }, t("media.remove"));
    remove.setAttribute("aria-label", t("media.removeNamed", { name }));
    entry.el = h("li.attachment", null, thumb,
      h("div.attachment-body", null,
        h("label", { htmlFor: altId }, t("media.altLabel", { name })), alt,
        h("div.attachment-bar", null, state, remove)));
    alt.addEventListener("input", () => { entry.alt = alt.value; });
    alt.addEventListener("change", () => saveAlt(entry).catch((err) => { status.textContent = errorText(err); }));
    remove.addEventListener("click", async () => {
      entries.splice(entries.indexOf(entry), 1);
      entry.el.remove();
      if (entry.url) URL.revokeObjectURL(entry.url);
      list.hidden = !entries.length;
      onChange();
      add.focus();
      if (entry.id) await del(`/api/media/${enc(entry.id)}`).catch(() => {});
    });
    entries.push(entry);
    list.append(entry.el);
    list.hidden = false;
    const form = new FormData();
    form.append("file", file);
    upload("/api/media", form).then((item) => {
      entry.id = item.id;
      entry.item = item;
      state.textContent = t("media.ready");
      if (entry.alt) saveAlt(entry).catch((err) => { status.textContent = errorText(err); });
    }, (err) => {
      entry.failed = true;
      state.textContent = t("media.failed", { message: errorText(err) });
      state.classList.add("error");
    }).finally(() => {
      entry.uploading = false;
      onChange();
    });
  }

  async function saveAlt(entry) {
    if (!entry.id || entry.alt === entry.savedAlt) return;
    const wanted = entry.alt;
    await patch(`/api/media/${enc(entry.id)}`, { alt: wanted });
    entry.savedAlt = wanted;
  }

  return {
    element: h("div.composer-media", null, input, list, status, h("div.attach-row", null, add, hint)),
    bind(form, textarea) {
      form.addEventListener("dragover", (e) => {
        if ([...(e.dataTransfer?.types || [])].includes("Files")) {
          e.preventDefault();
          form.classList.add("dropping");
        }
      });
      form.addEventListener("dragleave", () => form.classList.remove("dropping"));
      form.addEventListener("drop", (e) => {
        form.classList.remove("dropping");
        if (!e.dataTransfer?.files?.length) return;
        e.preventDefault();
        addFiles([...e.dataTransfer.files]);
      });
      textarea.addEventListener("paste", (e) => {
        const files = [...(e.clipboardData?.files || [])];
        if (!files.length) return;
        e.preventDefault();
        addFiles(files);
      });
    },
    busy: () => entries.some((e) => e.uploading),
    failed: () => entries.some((e) => e.failed),
    ids: () => entries.filter((e) => e.id && !e.failed).map((e) => e.id),
    async flush() {
      for (const entry of entries) await saveAlt(entry);
    },
    clear() {
      for (const entry of entries) if (entry.url) URL.revokeObjectURL(entry.url);
      entries.length = 0;
      list.replaceChildren();
      list.hidden = true;
      status.textContent = "";
      onChange();
    },
  };
}

// --- avatars ---------------------------------------------------------------------------------

/**
 * A member's picture, or their initial when they have none (or it cannot be loaded).
 * Decorative beside their name (alt ""); the initial comes from CSS, so it adds no text.
 */
export function avatar(member, size = "small") {
  const initial = [...(member.display_name || member.handle || "?")][0].toUpperCase();
  const fallback = () => h(`span.avatar-${size}.initial`, { dataset: { initial }, "aria-hidden": "true" });
  if (!member.avatar) return fallback();
  const img = h(`img.avatar-${size}`, { src: member.avatar, alt: "", loading: "lazy", decoding: "async" });
  img.addEventListener("error", () => img.replaceWith(fallback()), { once: true });
  return img;
}

/**
 * The controls to change or remove one's own picture. `onChange(me)` gets the member
 * as the server answers after the change.
 */
export function avatarControls(me, onChange) {
  const input = h("input.sr-only", { type: "file", accept: IMAGE_TYPES.join(","), tabIndex: -1, "aria-hidden": "true" });
  const change = h("button.plain.avatar-change", { type: "button" }, t("media.changeAvatar"));
  const remove = h("button.linkish.danger.avatar-remove", { type: "button", hidden: !me.avatar }, t("media.removeAvatar"));
  const status = h("p.avatar-status", { role: "status" });
  change.addEventListener("click", () => input.click());
  input.addEventListener("change", async () => {
    const file = input.files[0];
    input.value = "";
    if (!file) return;
    status.textContent = t("media.uploading");
    change.disabled = true;
    try {
      const form = new FormData();
      form.append("file", file);
      const item = await upload("/api/media", form);
      const updated = await patch("/api/me", { avatar: item.id });
      remove.hidden = !updated.avatar;
      onChange(updated);
      status.textContent = t("media.avatarChanged");
    } catch (err) {
      status.textContent = errorText(err instanceof ApiError ? err : new ApiError(0, {}));
    } finally {
      change.disabled = false;
    }
  });
  remove.addEventListener("click", async () => {
    try {
      const updated = await patch("/api/me", { avatar: null });
      remove.hidden = !updated.avatar;
      onChange(updated);
      status.textContent = t("media.avatarRemoved");
    } catch (err) {
      status.textContent = errorText(err);
    }
  });
  return h("div.avatar-controls", null, input, change, " ", remove, status);
}
