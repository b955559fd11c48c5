// Pieces shared by the views: a post card, a live feed list with infinite scroll, the
// composer with its character counter, forms that show server errors by their field.

import { api, ApiError, del, enc, post, withQuery } from "./api.js";
import { h, replace, timeEl } from "./dom.js";
import { renderBody, renderSegments } from "./effects.js";
import { errorText, formatNumber, t } from "./i18n.js";
import { checkEcho, MAX_GRAPHEMES, visibleLength, wrapSelection } from "./markup.js";
import { attachments, avatar, mediaGrid } from "./media.js";

/** A link to a member's profile showing their display name and @handle. */
export function memberLink(member) {
  return h(
    "a.member",
    { href: `#/u/${enc(member.handle)}` },
    avatar(member),
    h("span.display-name", null, member.display_name || member.handle),
    " ",
    h("span.handle", null, `@${member.handle}`),
  );
}

/**
 * A post card. `ctx.me` decides whether delete is offered; likes toggle in place.
 * The card carries `data-echo-id` so a `post.deleted` anywhere removes it everywhere.
 */
export function postCard(p, ctx) {
  const mine = ctx.me && p.author.handle === ctx.me.handle;
  const card = h("article.echo", { dataset: { echoId: p.id }, "aria-label": t("echo.by", { name: p.author.display_name || p.author.handle }) });
  const meta = h(
    "header.echo-meta",
    null,
    memberLink(p.author),
    h("span.dot", { "aria-hidden": "true" }, "·"),
    h("a.permalink", { href: `#/e/${enc(p.id)}` }, timeEl(p.created_at)),
    p.visibility === "friends" ? h("span.tag", { title: t("echo.friendsOnlyTitle") }, t("echo.friendsOnly")) : null,
    p.community ? communityTag(p.community) : null,
  );
  // Context for a reply, from the post itself (no request): whom it answers.
  const context = p.in_reply_to
    ? h("p.reply-context", null, h("a", { href: `#/e/${enc(p.in_reply_to.id)}` },
        t("echo.replyTo", { who: `@${p.in_reply_to.author.handle}` })))
    : null;
  card.append(meta, ...(context ? [context] : []), renderBody(p));
  if (p.media?.length) card.append(mediaGrid(p.media));
  const actions = h("footer.echo-actions");
  const replyPanel = h("div.reply-panel");
  const replyButton = h("button.reply", { type: "button", "aria-expanded": "false" });
  // Replies this page has counted (a reply posted here and then arriving live is one).
  const counted = new Set();
  const paintReplies = () => {
    const n = p.reply_count || 0;
    replace(replyButton, h("span", { "aria-hidden": "true" }, "↩"), " ", t("echo.reply"),
      n ? h("span.reply-count", { title: t("echo.replyCount", { count: n }) }, " ", formatNumber(n)) : null);
  };
  paintReplies();
  card.addEventListener("echohub:replied", (e) => {
    if (counted.has(e.detail.id)) return;
    counted.add(e.detail.id);
    p.reply_count = (p.reply_count || 0) + 1;
    paintReplies();
  });
  replyButton.addEventListener("click", () => {
    const open = replyButton.getAttribute("aria-expanded") === "true";
    replyButton.setAttribute("aria-expanded", String(!open));
    replyPanel.replaceChildren();
    if (open) return;
    const form = composer({
      placeholder: t("echo.replyPlaceholder"),
      label: t("echo.replyLabel", { name: p.author.display_name || p.author.handle }),
      extra: () => ({ reply_to: p.id }),
      onPost: async (body) => {
        const created = await createEcho(body);
        replyButton.setAttribute("aria-expanded", "false");
        replyPanel.replaceChildren();
        replyButton.focus();
        toast(t("echo.replied"));
        announceReply(created);
      },
    });
    // The reply keeps to the answered post's audience anyway; friends-only stays so.
    if (p.visibility === "friends") form.querySelector("select.visibility").value = "friends";
    replyPanel.append(form);
    form.querySelector("textarea").focus();
  });
  actions.append(replyButton);
  const likeButton = h("button.like", { type: "button", "aria-pressed": String(!!p.liked) });
  // Likes are private: only the author sees the count. A fresh post (just made, or
  // arrived live) carries none yet, and it has none: it starts at zero.
  if (mine && typeof p.like_count !== "number") p.like_count = 0;
  const paintLike = () => {
    // A toggle keeps its name; aria-pressed says whether it is on.
    likeButton.setAttribute("aria-pressed", String(!!p.liked));
    replace(likeButton, h("span", { "aria-hidden": "true" }, p.liked ? "♥" : "♡"), " ", t("echo.like"),
      mine ? h("span.like-count", { title: t("echo.likeCount", { count: p.like_count }) }, " ", formatNumber(p.like_count)) : null);
  };
  paintLike();
  // The author's `like` notification bumps the count on every card of the post.
  card.addEventListener("echohub:liked", () => {
    if (mine) {
      p.like_count += 1;
      paintLike();
    }
  });
  likeButton.addEventListener("click", async () => {
    likeButton.disabled = true;
    const was = p.liked;
    try {
      await api(was ? "DELETE" : "POST", `/api/echoes/${enc(p.id)}/like`);
      p.liked = !was;
      if (mine) p.like_count = Math.max(0, p.like_count + (p.liked ? 1 : -1));
      paintLike();
    } catch (err) {
      toast(errorText(err));
    } finally {
      likeButton.disabled = false;
    }
  });
  actions.append(likeButton);
  if (mine) {
    const who = h("button.linkish.likers", { type: "button" }, t("echo.whoLiked"));
    who.addEventListener("click", async () => {
      try {
        const data = await api("GET", `/api/echoes/${enc(p.id)}/likes`);
        const items = data.items || [];
        const list = h("ul.likers-list");
        for (const item of items) list.append(h("li", null, memberLink(item.by || item.user || item)));
        if (!items.length) list.append(h("li.muted", null, t("echo.noLikes")));
        card.querySelector(".likers-list")?.remove();
        card.append(list);
      } catch (err) {
        toast(errorText(err));
      }
    });
    actions.append(who);
  }
  if (mine) {
    const remove = h("button.linkish.danger.delete", { type: "button" }, t("echo.delete"));
    remove.addEventListener("click", async () => {
      if (!window.confirm(t("echo.deleteConfirm"))) return;
      try {
        await del(`/api/echoes/${enc(p.id)}`);
        removePostEverywhere(p.id);
      } catch (err) {
        toast(errorText(err));
      }
    });
    actions.append(remove);
  } else {
    // Someone else's post: anyone may report it. Moderators remove posts where they
    // moderate (the moderation page), not from their own feeds.
    const panel = h("div.echo-panel");
    const open = (button, make) => () => {
      const wasOpen = button.getAttribute("aria-expanded") === "true";
      for (const b of actions.querySelectorAll("[aria-expanded]")) b.setAttribute("aria-expanded", "false");
      panel.replaceChildren();
      if (wasOpen) return;
      button.setAttribute("aria-expanded", "true");
      const close = () => {
        button.setAttribute("aria-expanded", "false");
        panel.replaceChildren();
        button.focus();
      };
      panel.append(make(close));
      panel.querySelector("input")?.focus();
    };
    const report = h("button.linkish.report", { type: "button", "aria-expanded": "false" }, t("echo.report"));
    report.addEventListener("click", open(report, (close) => reportForm({ echo: p.id }, close)));
    actions.append(report);
    card.append(actions, replyPanel, panel);
    return card;
  }
  card.append(actions, replyPanel);
  return card;
}

/** Tell every card of the answered post, and any open thread, that `reply` exists. */
export function announceReply(reply) {
  if (!reply?.reply_to) return;
  for (const card of document.querySelectorAll("article.echo")) {
    if (card.dataset.echoId === String(reply.reply_to)) {
      card.dispatchEvent(new CustomEvent("echohub:replied", { detail: reply }));
    }
  }
  document.dispatchEvent(new CustomEvent("echohub:reply", { detail: reply }));
}

export const MAX_REASON = 500;

/**
 * A one-line reason form: `onSubmit(reason)` sends it (an ApiError shows by the input,
 * the server's message as it is); `onDone(result)` may replace the form afterwards.
 * With `required`, the browser asks for some text; length is counted like the server
 * (graphemes after NFC, at most 500).
 */
export function reasonForm({ label, submit, onSubmit, onCancel = null, onDone = null, required = false, danger = false, placeholder = "" }) {
  const form = h("form.reason-form", { "aria-label": submit });
  const input = field(label, { name: "reason", required, autocomplete: "off", placeholder, enterKeyHint: "send" }, t("reason.hint", { max: MAX_REASON }));
  form.append(input, h("div.row", null,
    h(`button.${danger ? "danger" : "primary"}`, { type: "submit" }, submit),
    onCancel ? h("button.plain", { type: "button", onclick: onCancel }, t("common.cancel")) : null));
  handleForm(form, async (data) => {
    const reason = String(data.get("reason") ?? "").trim();
    if (visibleLength(reason.normalize("NFC")) > MAX_REASON) {
      throw new ApiError(400, { code: "invalid_reason", message: t("error.invalid_reason"), field: "reason" });
    }
    const result = await onSubmit(reason);
    onDone?.(result, form);
  });
  return form;
}

/** Report a post (`{echo: id}`) or a member (`{user: handle}`): a reason is required. */
export function reportForm(target, close) {
  return reasonForm({
    label: target.echo ? t("report.whyEcho") : t("report.whyMember", { handle: target.user }),
    submit: t("report.send"),
    required: true,
    placeholder: t("report.placeholder"),
    onCancel: close,
    onSubmit: (reason) => post("/api/reports", { ...target, reason }),
    onDone: (_report, form) => {
      form.replaceWith(h("p.report-sent", { role: "status", tabIndex: -1 }, t("report.sent")));
    },
  });
}

const communityNames = new Map(); // id -> Promise<name>

/** A link to a post's community, labelled with its name once known. */
export function communityTag(id) {
  const tag = h("a.tag", { href: `#/c/${enc(id)}` }, t("communities.community"));
  if (!communityNames.has(id)) {
    communityNames.set(id, api("GET", `/api/communities/${enc(id)}`).then((c) => c.name, () => null));
  }
  communityNames.get(id).then((name) => {
    if (name) tag.textContent = name;
  });
  return tag;
}

export function removePostEverywhere(id) {
  for (const el of document.querySelectorAll("[data-echo-id]")) {
    if (el.dataset.echoId === String(id)) el.remove();
  }
}

/**
 * A list of posts: newest first, de-duplicated by id, pages fetched with `before`
 * as the sentinel scrolls into view, live posts prepended through `hub` on `topic`.
 * `accept(post)` filters live posts (e.g. a community's own feed). With
 * `watchAuthors` (a list without a topic of its own, like discover), each shown
 * author's `user:{handle}` topic is followed for deletions, so a post deleted or
 * removed by a moderator leaves the page live as it does from the other feeds.
 */
export class FeedList {
  constructor({ url, ctx, topic = null, accept = null, empty = t("feed.empty"), limit = null, label, watchAuthors = false }) {
    this.url = url;
    this.ctx = ctx;
    this.topic = topic;
    this.accept = accept;
    this.watchAuthors = watchAuthors;
    this.watched = new Set();
    this.limit = limit;
    this.next = null;
    this.done = false;
    this.loading = false;
    this.ids = new Set();
    this.list = h("div.feed", { role: "feed", "aria-busy": "false", "aria-label": label || t("feed.label") });
    this.emptyEl = h("p.empty", { hidden: true }, empty);
    this.sentinel = h("div.sentinel", { "aria-hidden": "true" });
    this.more = h("button.more", { type: "button", hidden: true, onclick: () => this.loadMore() }, t("feed.loadMore"));
    this.status = h("p.feed-status", { role: "status" });
    // Posts arriving live while the member reads further down: a pill says how many
    // and takes them up; a polite live region tells screen readers either way.
    this.unseen = 0;
    this.arrivedLately = 0;
    this.pill = h("button.new-posts", { type: "button", hidden: true, onclick: () => this.showNew() });
    this.announcer = h("p.sr-only.feed-announcer", { role: "status" });
    this.el = h("section.feed-wrap", null, this.pill, this.list, this.emptyEl, this.status, this.more, this.sentinel, this.announcer);
    this.offs = [];
    this.failed = false;
    this.onScroll = () => {
      if (this.unseen && this.atTop()) this.clearUnseen();
    };
    window.addEventListener("scroll", this.onScroll, { passive: true });
  }

  /** Whether the top of the list is in view (under the sticky top bar). */
  atTop() {
    const bar = document.getElementById("topbar");
    const under = bar && !bar.hidden ? bar.getBoundingClientRect().bottom : 0;
    return this.list.getBoundingClientRect().top >= under - 1;
  }

  noteArrival() {
    if (!this.atTop()) {
      this.unseen += 1;
      this.pill.textContent = t("feed.newPosts", { count: this.unseen });
      this.pill.hidden = false;
    }
    // One announcement for a burst, not one per post.
    this.arrivedLately += 1;
    clearTimeout(this.announceTimer);
    this.announceTimer = setTimeout(() => {
      this.announcer.textContent = t("feed.newPosts", { count: this.arrivedLately });
      this.arrivedLately = 0;
    }, 800);
  }

  clearUnseen() {
    this.unseen = 0;
    this.pill.hidden = true;
  }

  /** The pill: up to the newest post, focused so reading goes on from there. */
  showNew() {
    const first = this.list.firstElementChild;
    this.clearUnseen();
    if (!first) return;
    first.tabIndex = -1;
    first.scrollIntoView({ block: "start" });
    first.focus({ preventScroll: true });
  }

  /** Subscribe first, then load page one, so nothing posted in between is lost. */
  async start() {
    // Failed to load (offline): load again as soon as the network or the socket is back.
    const retry = () => {
      if (this.failed && !this.stopped) this.reload();
    };
    const onStatus = (e) => {
      if (e.detail.status === "open") retry();
    };
    const hub = this.ctx.hub; // the session's hub (ctx.hub is null once signed out)
    hub.addEventListener("status", onStatus);
    window.addEventListener("online", retry);
    this.offs.push(() => {
      hub.removeEventListener("status", onStatus);
      window.removeEventListener("online", retry);
    });
    if (this.topic) {
      let acked = false;
      let early = false;
      const { off, ready } = this.ctx.hub.listen(this.topic, (ev) => this.onEvent(ev), {
        onReset: () => this.reload(),
        onAck: () => {
          // Shown from HTTP before the socket was live: load again, now gap-free.
          if (!acked && early) this.reload();
          acked = true;
        },
      });
      this.offs.push(off);
      // Offline or slow: show what HTTP has rather than nothing; the first ack reloads.
      await Promise.race([ready, delay(3000)]);
      early = !acked;
    }
    await this.reload();
    if (this.limit == null) {
      this.observer = new IntersectionObserver((entries) => {
        if (entries.some((e) => e.isIntersecting)) this.loadMore();
      }, { rootMargin: "400px" });
      this.observer.observe(this.sentinel);
    }
    return this;
  }

  stop() {
    this.stopped = true;
    for (const off of this.offs) off();
    this.offs = [];
    this.observer?.disconnect();
    window.removeEventListener("scroll", this.onScroll);
    clearTimeout(this.announceTimer);
  }

  watch(author) {
    if (!this.watchAuthors || this.stopped || this.watched.has(author.handle)) return;
    this.watched.add(author.handle);
    this.offs.push(this.ctx.hub.subscribe(`user:${author.handle}`, (ev) => {
      if (ev.type === "post.deleted") this.onEvent(ev);
    }));
  }

  onEvent(ev) {
    if (ev.type === "post.created") {
      if (!this.accept || this.accept(ev.data)) this.prepend(ev.data, { live: true });
    } else if (ev.type === "post.deleted") {
      removePostEverywhere(ev.data.id);
      this.ids.delete(ev.data.id);
      this.paintEmpty();
    }
  }

  prepend(p, { live = false } = {}) {
    if (this.ids.has(p.id)) return;
    this.ids.add(p.id);
    const card = postCard(p, this.ctx);
    card.classList.add("arrived");
    this.list.prepend(card);
    if (live && p.author?.handle !== this.ctx.me?.handle) this.noteArrival();
    if (this.limit != null) {
      while (this.list.children.length > this.limit) {
        const last = this.list.lastElementChild;
        this.ids.delete(last.dataset.echoId);
        last.remove();
      }
    }
    this.paintEmpty();
  }

  append(posts) {
    for (const p of posts) {
      if (this.ids.has(p.id)) continue;
      this.ids.add(p.id);
      this.list.append(postCard(p, this.ctx));
      this.watch(p.author);
    }
    this.paintEmpty();
  }

  paintEmpty() {
    // A page that failed to load is not an empty feed: the status line says what failed.
    this.emptyEl.hidden = this.list.children.length > 0 || this.loading || this.failed;
  }

  async reload() {
    this.next = null;
    this.done = false;
    this.loadingPromise = null;
    const fresh = await this.fetchPage(null);
    if (!fresh) return;
    this.failed = false;
    this.clearUnseen();
    this.ids.clear();
    this.list.replaceChildren();
    this.append(fresh.items);
    this.setNext(fresh.next);
  }

  setNext(next) {
    this.next = next ?? null;
    this.done = this.next == null || this.limit != null;
    this.more.hidden = this.done;
  }

  async fetchPage(before) {
    this.loading = true;
    this.list.setAttribute("aria-busy", "true");
    this.status.textContent = t("feed.loading");
    try {
      return await api("GET", withQuery(this.url, { before, limit: this.limit }));
    } catch (err) {
      // Forbidden (a closed community, a blocked profile): the empty text explains.
      this.status.textContent = err.status === 403 ? "" : errorText(err);
      this.failed = err.status !== 403 && !before;
      return null;
    } finally {
      this.loading = false;
      this.list.setAttribute("aria-busy", "false");
      if (this.status.textContent === t("feed.loading")) this.status.textContent = "";
      this.paintEmpty();
    }
  }

  async loadMore() {
    if (this.done || this.loading || this.next == null) return;
    const page = await this.fetchPage(this.next);
    if (!page) return;
    this.append(page.items);
    this.setNext(page.next);
  }
}

export const delay = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Call `reload` when the browser is back online or the socket is open again, while
 * `failed()` says the page could not load; returns the function that stops listening.
 * A list that said "cannot reach the server" must not go on saying it once it can.
 */
export function reloadWhenBack(ctx, failed, reload) {
  const retry = () => {
    if (failed()) reload();
  };
  const onStatus = (e) => {
    if (e.detail.status === "open") retry();
  };
  const hub = ctx.hub;
  hub?.addEventListener("status", onStatus);
  window.addEventListener("online", retry);
  return () => {
    hub?.removeEventListener("status", onStatus);
    window.removeEventListener("online", retry);
  };
}

const MAX_TOASTS = 3;

/**
 * Show a short message at the bottom of the screen. The same message twice is one
 * toast (its time starts again, a count says how often), and at most three show.
 */
export function toast(message, { timeout = 4000 } = {}) {
  const box = document.getElementById("toasts");
  if (!box) return;
  const text = String(message);
  let el = [...box.children].find((x) => x.dataset.message === text);
  if (el) {
    const times = Number(el.dataset.times) + 1;
    el.dataset.times = String(times);
    replace(el, text, h("span.toast-times", null, ` ×${formatNumber(times)}`));
    clearTimeout(Number(el.dataset.timer));
  } else {
    el = h("div.toast", { dataset: { message: text, times: "1" } }, text);
    box.append(el);
    while (box.children.length > MAX_TOASTS) box.firstElementChild.remove();
  }
  const shown = el;
  el.dataset.timer = String(setTimeout(() => shown.remove(), timeout));
}

/**
 * Wire a form to an async submit: disables while busy, clears and shows errors. An
 * ApiError with a `field` goes under the input named like it; others at the form's end.
 */
export function handleForm(form, submit) {
  const general = h("p.form-error", { role: "alert" });
  form.append(general);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    for (const el of form.querySelectorAll(".field-error")) el.remove();
    for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
    general.textContent = "";
    const button = form.querySelector("[type=submit]");
    if (button) button.disabled = true;
    try {
      await submit(new FormData(form));
    } catch (err) {
      showError(form, err, general);
    } finally {
      if (button) button.disabled = false;
    }
  });
}

export function showError(form, err, general) {
  const input = err instanceof ApiError && err.field ? form.querySelector(`[name="${CSS.escape(err.field)}"]`) : null;
  if (input) {
    const id = `${input.id || input.name}-error`;
    const msg = h("p.field-error", { id, role: "alert" }, errorText(err));
    input.setAttribute("aria-invalid", "true");
    input.setAttribute("aria-describedby", id);
    const holder = input.closest(".field");
    if (holder) holder.append(msg);
    else input.after(msg);
  } else {
    general.textContent = errorText(err);
  }
}

/** A labelled input: `field("Handle", {name: "handle", …})`. */
export function field(label, props, hint) {
  const id = props.id || `f-${props.name}-${Math.random().toString(36).slice(2, 7)}`;
  const input = props.tag === "textarea"
    ? h("textarea", { ...props, tag: null, id })
    : props.tag === "select"
      ? h("select", { ...props, tag: null, options: null, id }, (props.options || []).map(([v, t]) => h("option", { value: v }, t)))
      : h("input", { type: "text", ...props, id });
  return h("div.field", null, h("label", { htmlFor: id }, label), input, hint ? h("p.hint", null, hint) : null);
}

/**
 * The composer: a one-line text area with effect buttons, a live counter that counts
 * like the server (graphemes after NFC, markup excluded), a preview and errors.
 * `onPost(body)` does the posting; `extra` adds fields to the body (community).
 */
export function composer({ onPost, extra = () => ({}), placeholder = t("composer.placeholder"), showVisibility = true, label = t("composer.label") }) {
  const id = `composer-${Math.random().toString(36).slice(2, 7)}`;
  const textarea = h("textarea.composer-text", {
    id,
    name: "text",
    rows: 2,
    placeholder,
    autocomplete: "off",
    "aria-describedby": `${id}-count ${id}-error`,
    lang: document.documentElement.lang,
  });
  const counter = h("span.counter", { id: `${id}-count`, "aria-live": "polite" });
  const error = h("p.composer-error", { id: `${id}-error`, role: "alert" });
  const preview = h("div.preview", { "aria-label": t("composer.preview"), hidden: true });
  const wrapButton = (effect, label, key) =>
    h("button.fx-button", {
      type: "button",
      title: t("composer.effectTitle", { effect: label, key: `Ctrl+${key}` }),
      "aria-keyshortcuts": `Control+${key}`,
      dataset: { effect },
      onclick: () => wrap(effect),
    }, label);
  const visibility = h("select.visibility", { name: "visibility", "aria-label": t("composer.visibility") },
    h("option", { value: "public" }, t("composer.public")),
    h("option", { value: "friends" }, t("composer.friends")));
  const submit = h("button.primary.post-button", { type: "submit" }, t("composer.submit"));
  // Photos or a video: uploaded as they are added; the post carries their ids.
  const media = attachments({ onChange: () => update() });
  const form = h(
    "form.composer",
    { "aria-label": label, novalidate: true },
    h("label.sr-only", { htmlFor: id }, t("composer.textLabel")),
    textarea,
    h("div.composer-bar", null,
      h("div.fx-buttons", { role: "group", "aria-label": t("composer.effects") },
        wrapButton("shake", t("composer.shake"), "Shift+S"), wrapButton("big", t("composer.big"), "Shift+B")),
      showVisibility ? visibility : null,
      h("span.composer-send", null, counter, submit)),
    media.element,
    error,
    preview,
  );
  media.bind(form, textarea);

  function wrap(effect) {
    const next = wrapSelection(textarea.value, textarea.selectionStart, textarea.selectionEnd, effect);
    if (!next) {
      error.textContent = t("error.wrap_bracket");
      return;
    }
    textarea.value = next.value;
    textarea.focus();
    textarea.setSelectionRange(next.start, next.end);
    update();
  }

  let state = checkEcho("");
  function update() {
    state = checkEcho(textarea.value);
    const remaining = MAX_GRAPHEMES - state.length;
    counter.textContent = `${state.length}/${MAX_GRAPHEMES}`;
    counter.dataset.count = String(state.length);
    counter.classList.toggle("over", remaining < 0);
    counter.classList.toggle("near", remaining >= 0 && remaining <= 10);
    counter.setAttribute("aria-label", remaining >= 0 ? t("composer.left", { count: remaining }) : t("composer.over", { count: -remaining }));
    const showError = state.error && state.error.code !== "text_required" && state.error.code !== "text_blank";
    error.textContent = showError ? errorText(state.error) : "";
    submit.disabled = !!state.error || media.busy();
    const hasEffect = state.segments.some((s) => "effect" in s);
    preview.hidden = !hasEffect || !!state.error;
    if (!preview.hidden) replace(preview, h("span.preview-label", null, t("composer.preview")), h("p.echo-text", null, renderSegments(state.segments)));
    else preview.replaceChildren();
  }

  textarea.addEventListener("input", (e) => {
    // One line only: line breaks typed or pasted become spaces (not mid-IME).
    if (!e.isComposing && /[\r\n\u2028\u2029\v\f\x85]/.test(textarea.value)) {
      const at = textarea.selectionStart;
      textarea.value = textarea.value.replace(/\r\n|[\r\n\u2028\u2029\v\f\x85]/g, " ");
      textarea.setSelectionRange(at, at);
    }
    update();
  });
  textarea.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
      e.preventDefault();
      form.requestSubmit();
    } else if (e.ctrlKey && e.shiftKey && (e.key === "S" || e.key === "s")) {
      e.preventDefault();
      wrap("shake");
    } else if (e.ctrlKey && e.shiftKey && (e.key === "B" || e.key === "b")) {
      e.preventDefault();
      wrap("big");
    }
  });
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    update();
    if (state.error) {
      error.textContent = errorText(state.error);
      textarea.focus();
      return;
    }
    if (media.busy()) {
      error.textContent = t("media.waitUpload");
      return;
    }
    submit.disabled = true;
    try {
      const body = { text: textarea.value, ...extra() };
      if (showVisibility) body.visibility = visibility.value;
      await media.flush();
      const ids = media.ids();
      if (ids.length) body.media = ids;
      await onPost(body);
      textarea.value = "";
      media.clear();
      update();
    } catch (err) {
      error.textContent = errorText(err);
      submit.disabled = false;
    }
    textarea.focus();
  });
  update();
  return form;
}

/** Post and return the created post. */
export function createEcho(body) {
  return post("/api/echoes", body);
}
