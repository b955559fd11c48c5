// Moderation, for moderators and admins: the live `mod` stream (every post, deletion,
// report and moderator's action) with its filter, the reports to handle, and the
// audit log.
//
// Sockets: the page's socket holds one unfiltered `mod` subscription, which keeps the
// reports and the audit log live whatever the stream shows. The server keeps one
// subscription per topic and socket, so a filtered stream needs a socket of its own:
// applying a filter opens a second EchoHub for it (changing the filter unsubscribes
// there and subscribes again with the new one), and clearing the filter closes it.

import { api, enc, post, withQuery } from "../api.js";
import { communityTag, delay, memberLink, reasonForm } from "../components.js";
import { append, h, replace, timeEl } from "../dom.js";
import { EchoHub } from "../echohub.js";
import { renderBody } from "../effects.js";
import { errorText, t, tParts } from "../i18n.js";

export const isModerator = (me) => !!me && (me.role === "moderator" || me.role === "admin");

const STREAM_KEEP = 200; // events shown on the stream
const POSTS_KEEP = 2000; // posts remembered, to say what a deletion removed
const STATUSES = [["open", "mod.statusOpen"], ["resolved", "mod.statusResolved"], ["all", "mod.statusAll"]];

/** `{reason}` for a moderator's action, or `{}` when none was given (it is optional). */
const reasonBody = (reason) => (reason ? { reason } : {});

const quote = (text) => h("q.mod-quote", null, text);

/** The post a report or an action is about, shown as it was (a snapshot). */
function echoSnapshot(echo, state) {
  state.keep(echo);
  return h("blockquote.mod-echo", { dataset: { modEcho: echo.id } },
    h("div.echo-meta", null, memberLink(echo.author), echo.community ? communityTag(echo.community) : null),
    renderBody(echo),
    h("span.tag.danger.removed-tag", { hidden: true }, t("mod.removedTag")));
}

/** What a report is about: "an Echo by X" or the member. */
function reportTarget(r) {
  return r.echo ? tParts("mod.anEchoBy", { who: memberLink(r.echo.author) }) : r.user ? memberLink(r.user) : t("mod.something");
}

/** One line for an audit entry (also a `mod.action` on the stream). */
function describeAction(a) {
  const actor = memberLink(a.actor);
  const user = a.user ? memberLink(a.user) : t("notif.someone");
  switch (a.action) {
    case "remove_echo":
      return tParts("mod.didRemove", { actor, user });
    case "suspend":
      return tParts("mod.didSuspend", { actor, user });
    case "unsuspend":
      return tParts("mod.didUnsuspend", { actor, user });
    case "resolve_report":
      return a.echo
        ? tParts("mod.didResolveEcho", { actor, user: memberLink(a.echo.author) })
        : tParts("mod.didResolve", { actor, target: a.user ? memberLink(a.user) : t("mod.something") });
    default:
      return tParts("mod.didOther", { actor, action: a.action });
  }
}

/**
 * A list kept newest first by id (ids sort in creation order), one row per id, so
 * live arrivals and pages loaded over HTTP merge without duplicates or races.
 */
class IdList {
  constructor(el, make) {
    this.el = el;
    this.make = make; // (item, fresh) => row element
    this.rows = new Map();
  }

  put(item, fresh = false) {
    const old = this.rows.get(item.id);
    if (old) return old;
    const row = this.make(item, fresh);
    row.dataset.id = item.id;
    let before = null;
    for (const el of this.el.children) {
      if (el.dataset.id < item.id) {
        before = el;
        break;
      }
    }
    this.el.insertBefore(row, before);
    this.rows.set(item.id, row);
    return row;
  }

  clear() {
    this.rows.clear();
    this.el.replaceChildren();
  }
}

/**
 * A paged list over HTTP (`items`, `next`) with a "Load more" button. Pages merge
 * into `list` (what arrived live meanwhile stays); clear it first to start afresh.
 */
function pager(url, list, status, more, params = () => ({})) {
  let next = null;
  let generation = 0;
  const load = async (before) => {
    const mine = ++generation;
    more.disabled = true;
    status.textContent = t("feed.loading");
    try {
      const page = await api("GET", withQuery(url, { ...params(), before }));
      if (mine !== generation) return;
      for (const item of page.items) list.put(item);
      next = page.next ?? null;
      status.textContent = "";
    } catch (err) {
      if (mine === generation) status.textContent = errorText(err);
    } finally {
      if (mine === generation) {
        more.disabled = false;
        more.hidden = next == null;
      }
    }
  };
  more.addEventListener("click", () => next != null && load(next));
  return { reload: () => load(null) };
}

// --- reports -------------------------------------------------------------------------

function reportsSection(state) {
  let status = "open";
  const ol = h("ol.mod-list.mod-reports", { "aria-label": t("mod.reports") });
  const empty = h("p.empty");
  const statusLine = h("p.feed-status", { role: "status" });
  const more = h("button.more", { type: "button", hidden: true }, t("feed.loadMore"));
  const rows = new Map(); // report id -> {report, paint}
  const list = new IdList(ol, (report, fresh) => reportRow(report, fresh));
  const clear = () => {
    rows.clear();
    list.clear();
  };
  const paintEmpty = () => {
    empty.textContent = t(status === "open" ? "mod.noOpen" : status === "resolved" ? "mod.noResolved" : "mod.noReports");
    empty.hidden = ol.children.length > 0;
  };
  const { reload } = pager("/api/mod/reports", list, statusLine, more, () => ({ status }));
  const switcher = h("div.segmented", { role: "group", "aria-label": t("mod.whichReports") },
    STATUSES.map(([value, label]) => h("button", {
      type: "button",
      "aria-pressed": String(value === status),
      dataset: { status: value },
      onclick: async () => {
        status = value;
        for (const b of switcher.children) b.setAttribute("aria-pressed", String(b.dataset.status === status));
        clear();
        await reload();
        paintEmpty();
      },
    }, t(label))));

  function reportRow(report, fresh) {
    const li = h(`li.mod-report${fresh ? ".arrived" : ""}`, { dataset: { reportId: report.id } });
    const target = report.echo?.author?.handle ?? report.user?.handle ?? null;
    const error = h("p.form-error", { role: "alert" });
    const note = h("input", { type: "text", name: "reason", autocomplete: "off", id: `note-${report.id}`, placeholder: t("mod.notePlaceholder") });
    const act = (button, run) => async () => {
      error.textContent = "";
      button.disabled = true;
      try {
        await run(note.value.trim());
        note.value = "";
      } catch (err) {
        error.textContent = errorText(err);
      } finally {
        button.disabled = false;
      }
    };
    const resolve = h("button.primary", { type: "button" }, t("mod.resolve"));
    resolve.addEventListener("click", act(resolve, async (reason) => {
      const done = await post(`/api/mod/reports/${enc(report.id)}/resolve`, reasonBody(reason));
      entry.report = done;
      paint();
    }));
    const remove = report.echo ? h("button.danger", { type: "button" }, t("mod.removeEcho")) : null;
    remove?.addEventListener("click", act(remove, async (reason) => {
      if (!window.confirm(t("mod.removeConfirm"))) return;
      await post(`/api/mod/echoes/${enc(report.echo.id)}/remove`, reasonBody(reason));
      state.removed.add(report.echo.id);
      state.markRemoved(report.echo.id);
    }));
    const suspend = target ? h("button.danger", { type: "button" }, t("mod.suspend", { handle: target })) : null;
    suspend?.addEventListener("click", act(suspend, async (reason) => {
      if (!window.confirm(t("mod.suspendConfirm", { handle: target }))) return;
      await post(`/api/mod/users/${enc(target)}/suspend`, reasonBody(reason));
      state.suspended.add(target);
      paintAll();
    }));
    const actions = h("div.mod-actions", null,
      h("div.field", null, h("label", { htmlFor: note.id }, t("mod.note")), note),
      h("div.row", null, resolve, remove, suspend),
      error);
    const statusTag = h("span.tag");
    const suspendedTag = h("span.tag.danger", { hidden: true }, t("mod.suspendedTag"));
    const resolution = h("p.muted.resolution");
    append(li, [
      h("header.echo-meta", null, tParts("mod.reported", { who: memberLink(report.reporter), target: h("span", null, reportTarget(report)) }),
        h("span.dot", { "aria-hidden": "true" }, "·"), timeEl(report.created_at), statusTag, suspendedTag),
      report.echo ? echoSnapshot(report.echo, state) : null,
      h("p.mod-reason", null, h("span.muted", null, t("mod.reason")), " ", quote(report.reason)),
      resolution,
      actions]);
    const entry = { report, paint: null };
    function paint() {
      const r = entry.report;
      const open = r.status === "open";
      li.dataset.status = r.status;
      statusTag.textContent = t(r.status === "open" ? "mod.statusOpen" : "mod.statusResolved");
      statusTag.classList.toggle("live", open);
      actions.hidden = !open;
      resolution.hidden = open;
      if (!open) {
        replace(resolution,
          r.resolved_by ? tParts("mod.resolvedBy", { who: memberLink(r.resolved_by) }) : t("mod.statusResolved"),
          r.resolved_at ? [" ", timeEl(r.resolved_at)] : null,
          r.resolution ? [": ", quote(r.resolution)] : null);
      }
      suspendedTag.hidden = !(target && state.suspended.has(target));
      if (suspend) suspend.hidden = suspendedTag.hidden === false;
      const gone = !!report.echo && state.removed.has(report.echo.id);
      if (remove) remove.hidden = gone;
      const tag = li.querySelector(".removed-tag");
      if (tag) tag.hidden = !gone;
    }
    entry.paint = paint;
    rows.set(report.id, entry);
    paint();
    return li;
  }

  function paintAll() {
    for (const entry of rows.values()) entry.paint();
  }

  function onEvent(ev) {
    const d = ev.data;
    if (ev.type === "report.created") {
      if (status !== "resolved") list.put(d, true);
    } else if (ev.type === "mod.action" && d.action === "resolve_report") {
      const entry = rows.get(d.report);
      if (entry && entry.report.status === "open") {
        entry.report = { ...entry.report, status: "resolved", resolved_by: d.actor, resolved_at: d.at, resolution: d.reason };
        entry.paint();
      }
    } else {
      paintAll(); // a removal or a suspension shows on the reports it concerns
    }
    paintEmpty();
  }

  const el = h("section.card.mod-section", { "aria-labelledby": "mod-reports-title" },
    h("div.mod-section-head", null, h("h2", { id: "mod-reports-title" }, t("mod.reports")), switcher),
    ol, empty, statusLine, more);
  return {
    el,
    onEvent,
    /** Load the first page; `fresh` drops what is shown first (after a lost gap). */
    async reload(fresh = false) {
      if (fresh) clear();
      await reload();
      paintEmpty();
    },
  };
}

// --- audit log -----------------------------------------------------------------------

function auditSection(state) {
  const ol = h("ol.mod-list.mod-audit", { "aria-label": t("mod.audit") });
  const empty = h("p.empty", null, t("mod.noActions"));
  const statusLine = h("p.feed-status", { role: "status" });
  const more = h("button.more", { type: "button", hidden: true }, t("feed.loadMore"));
  const list = new IdList(ol, (a, fresh) => {
    const li = h(`li.audit-entry${fresh ? ".arrived" : ""}`, { dataset: { action: a.action } },
      h("p", null, describeAction(a), h("span.dot", { "aria-hidden": "true" }, " · "), timeEl(a.at)),
      a.action === "remove_echo" && a.echo ? echoSnapshot(a.echo, state) : null,
      a.reason ? h("p.mod-reason", null, h("span.muted", null, t("mod.reason")), " ", quote(a.reason)) : null);
    if (a.action === "suspend" && a.user) {
      const error = h("p.form-error", { role: "alert" });
      const lift = h("button.plain", { type: "button" }, t("mod.lift", { handle: a.user.handle }));
      lift.addEventListener("click", async () => {
        error.textContent = "";
        lift.disabled = true;
        try {
          await post(`/api/mod/users/${enc(a.user.handle)}/unsuspend`);
        } catch (err) {
          error.textContent = errorText(err);
        } finally {
          lift.disabled = false;
        }
      });
      li.append(h("div.row", null, lift), error);
    }
    return li;
  });
  const { reload } = pager("/api/mod/audit", list, statusLine, more);
  const el = h("section.card.mod-section", { "aria-labelledby": "mod-audit-title" },
    h("h2", { id: "mod-audit-title" }, t("mod.audit")), ol, empty, statusLine, more);
  const paintEmpty = () => { empty.hidden = ol.children.length > 0; };
  return {
    el,
    onEvent(ev) {
      if (ev.type !== "mod.action") return;
      list.put(ev.data, true);
      paintEmpty();
    },
    async reload(fresh = false) {
      if (fresh) list.clear();
      await reload();
      paintEmpty();
    },
  };
}

// --- the live stream -----------------------------------------------------------------

function streamSection(ctx, state) {
  const ol = h("ol.mod-list.mod-stream", { "aria-label": t("mod.streamLabel") });
  const empty = h("p.empty", null, t("mod.waiting"));
  const live = h("p.mod-live", { role: "status" });
  const filterError = h("p.form-error.filter-error", { role: "alert" });

  const input = (label, name, props = {}) => {
    const id = `mod-filter-${name}`;
    return h("div.field", null, h("label", { htmlFor: id }, label),
      h("input", { type: "text", name, id, autocomplete: "off", spellcheck: false, ...props }));
  };
  // The community is picked by name (suggested from the list); the filter sends its id.
  const communities = h("datalist", { id: "mod-communities" });
  const communityNames = new Map(); // id -> name
  const communityIds = new Map(); // name, lower-cased -> id
  const communityIdOf = (text) => {
    const byName = communityIds.get(text.toLocaleLowerCase());
    if (byName) return byName;
    if (communityNames.has(text) || !communityNames.size) return text;
    return null;
  };
  const form = h("form.mod-filter", { "aria-label": t("mod.filterLabel"), novalidate: true },
    h("div.row3", null,
      input(t("mod.filterCommunity"), "community", { list: "mod-communities", placeholder: t("mod.filterCommunityPlaceholder") }),
      input(t("mod.filterMember"), "member", { placeholder: t("mod.filterMemberPlaceholder"), autocapitalize: "none" }),
      input(t("mod.filterKeyword"), "keyword", { placeholder: t("mod.filterKeywordPlaceholder") })),
    communities,
    h("div.row", null,
      h("button.primary", { type: "submit" }, t("mod.apply")),
      h("button.plain", { type: "button", onclick: () => { form.reset(); apply(null); } }, t("mod.clear"))),
    filterError);

  let active = null; // the filter the stream shows now (null: everything)
  let wanted = null; // the filter asked for, until its ack (or refusal)
  let streamHub = null; // the filtered stream's own socket
  let offFiltered = null;
  let stopped = false; // the stream was ended by the server (no longer a moderator)

  const describe = (f) => {
    if (!f) return t("mod.everything");
    const parts = [];
    if (f.community) parts.push(t("mod.showCommunity", { name: communityNames.get(f.community) ?? f.community }));
    if (f.member) parts.push(t("mod.showMember", { handle: f.member }));
    if (f.keyword) parts.push(t("mod.showKeyword", { keyword: f.keyword }));
    return new Intl.ListFormat(document.documentElement.lang, { type: "conjunction" }).format(parts);
  };
  const paintLive = () => {
    const hub = active ? streamHub : ctx.hub;
    const connected = !stopped && hub?.status === "open";
    live.dataset.status = connected ? "open" : "waiting";
    live.textContent = stopped ? t("mod.stopped") : t(connected ? "mod.liveShowing" : "mod.connectingShowing", { what: describe(active) });
    empty.hidden = ol.children.length > 0;
  };

  function show(ev) {
    const d = ev.data || {};
    // Deletions pass every filter: a filtered stream shows those of posts it shows.
    if (ev.type === "post.deleted" && active && !ol.querySelector(`[data-echo="${CSS.escape(d.id)}"], [data-mod-echo="${CSS.escape(d.id)}"]`)) return;
    const tagOf = { "post.created": t("mod.tagEcho"), "post.deleted": t("mod.tagDeleted"), "report.created": t("mod.tagReport"), "mod.action": t("mod.tagAction") };
    const li = h("li.mod-event.arrived", { dataset: { type: ev.type } }, h("span.tag.type", null, tagOf[ev.type] || ev.type), " ");
    if (ev.type === "post.created") {
      state.keep(d);
      li.dataset.echo = d.id;
      append(li, [memberLink(d.author), h("span.dot", { "aria-hidden": "true" }, " · "), timeEl(d.created_at),
        d.community ? [" ", communityTag(d.community)] : null,
        d.visibility === "friends" ? [" ", h("span.tag", null, t("echo.friendsOnly"))] : null,
        renderBody(d), h("span.tag.danger.removed-tag", { hidden: !state.removed.has(d.id) }, t("mod.removedTag"))]);
      const panel = h("div.echo-panel");
      const remove = h("button.linkish.danger", { type: "button", "aria-expanded": "false" }, t("mod.removeEllipsis"));
      remove.addEventListener("click", () => {
        const opening = remove.getAttribute("aria-expanded") !== "true";
        remove.setAttribute("aria-expanded", String(opening));
        panel.replaceChildren();
        if (!opening) return;
        const close = () => {
          remove.setAttribute("aria-expanded", "false");
          panel.replaceChildren();
        };
        panel.append(reasonForm({
          label: t("echo.removeWhy"),
          submit: t("echo.removeSubmit"),
          danger: true,
          onCancel: close,
          onSubmit: (reason) => post(`/api/mod/echoes/${enc(d.id)}/remove`, reasonBody(reason)),
          onDone: () => {
            state.removed.add(d.id);
            state.markRemoved(d.id);
            close();
          },
        }));
        panel.querySelector("input")?.focus();
      });
      li.append(h("div.echo-actions", null, remove), panel);
      if (state.removed.has(d.id)) remove.hidden = true;
    } else if (ev.type === "post.deleted") {
      const known = state.posts.get(d.id);
      append(li, [known ? tParts("mod.deletedKnown", { who: memberLink(known.author), text: quote(known.text) }) : t("mod.deletedUnknown", { id: d.id }),
        d.community ? [" ", communityTag(d.community)] : null]);
    } else if (ev.type === "report.created") {
      append(li, [tParts("mod.reported", { who: memberLink(d.reporter), target: h("span", null, reportTarget(d)) }), h("span.dot", { "aria-hidden": "true" }, " · "), timeEl(d.created_at),
        d.echo ? echoSnapshot(d.echo, state) : null,
        h("p.mod-reason", null, h("span.muted", null, t("mod.reason")), " ", quote(d.reason))]);
    } else if (ev.type === "mod.action") {
      append(li, [describeAction(d), h("span.dot", { "aria-hidden": "true" }, " · "), timeEl(d.at),
        d.reason ? h("p.mod-reason", null, h("span.muted", null, t("mod.reason")), " ", quote(d.reason)) : null]);
    } else {
      return;
    }
    ol.prepend(li);
    while (ol.children.length > STREAM_KEEP) ol.lastElementChild.remove();
    paintLive();
  }

  // Everything, from the page's socket (shared with the reports and audit log).
  const onAll = (ev) => {
    if (!active) show(ev);
  };

  /** Show the stream with filter `f` (null: everything). */
  function apply(f, since = null) {
    if (stopped) return;
    filterError.textContent = "";
    const previous = active;
    const previousCursor = active ? streamHub?.cursor("mod") : null;
    wanted = f;
    // The old filtered subscription goes first (`unsub`), then the new one (`sub`).
    offFiltered?.();
    offFiltered = null;
    if (!f) {
      streamHub?.close();
      streamHub = null;
      if (active) ol.replaceChildren();
      active = null;
      paintLive();
      return;
    }
    if (!streamHub) {
      streamHub = new EchoHub();
      streamHub.addEventListener("status", paintLive);
      streamHub.connect();
    }
    let acked = false;
    offFiltered = streamHub.subscribe("mod", (ev) => {
      if (active === f) show(ev);
    }, {
      filter: f,
      since,
      onAck: () => {
        if (acked || wanted !== f) return;
        acked = true;
        if (active !== f && since == null) ol.replaceChildren();
        active = f;
        paintLive();
      },
      onError: (err) => {
        if (wanted !== f) return;
        // A refused filter (`bad_filter`): say why, and keep showing what was shown
        // (resumed from where it stopped); everything, if that was refused as well.
        apply(previous === f ? null : previous, previousCursor);
        filterError.textContent = errorText(err);
      },
    });
    if (since != null) active = f;
    paintLive();
  }

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const data = new FormData(form);
    const f = {};
    const community = String(data.get("community") || "").trim();
    const member = String(data.get("member") || "").trim().replace(/^@/, "");
    const keyword = String(data.get("keyword") || "").trim();
    if (community) {
      const id = communityIdOf(community);
      if (id == null) {
        filterError.textContent = t("mod.noSuchCommunity", { name: community });
        form.elements.community.focus();
        return;
      }
      f.community = id;
    }
    if (member) f.member = member;
    if (keyword) f.keyword = keyword;
    apply(Object.keys(f).length ? f : null);
  });

  const el = h("section.card.mod-section.mod-stream-section", { "aria-labelledby": "mod-stream-title" },
    h("h2", { id: "mod-stream-title" }, t("mod.stream")), form, live, ol, empty);
  return {
    el,
    onAll,
    paintLive,
    async fillCommunities() {
      try {
        const page = await api("GET", "/api/communities");
        for (const c of page.items || []) {
          communityNames.set(c.id, c.name);
          communityIds.set(String(c.name).toLocaleLowerCase(), c.id);
        }
        replace(communities, (page.items || []).map((c) => h("option", { value: c.name })));
      } catch {
        // No list: the community is taken as typed (an id).
      }
    },
    stop() {
      stopped = true;
      offFiltered?.();
      offFiltered = null;
      streamHub?.close();
      streamHub = null;
      form.hidden = true;
    },
  };
}

// --- the page ------------------------------------------------------------------------

export async function moderationView(root, _params, ctx) {
  if (!isModerator(ctx.me)) {
    root.append(h("section.card", null, h("h1", null, t("nav.moderation")),
      h("p.muted", null, t("mod.onlyModerators"))));
    return null;
  }
  // What this page learnt live: removed posts and suspended members, so every list
  // shows them the same way.
  const state = {
    posts: new Map(), // post id -> the post as last seen, to say what a deletion removed
    keep(p) {
      this.posts.delete(p.id);
      this.posts.set(p.id, p);
      if (this.posts.size > POSTS_KEEP) this.posts.delete(this.posts.keys().next().value);
    },
    removed: new Set(),
    suspended: new Set(),
    markRemoved(id) {
      for (const el of root.querySelectorAll("[data-mod-echo], [data-echo]")) {
        if ((el.dataset.modEcho ?? el.dataset.echo) !== String(id)) continue;
        const tag = el.querySelector(":scope > .removed-tag") ?? el.querySelector(".removed-tag");
        if (tag) tag.hidden = false;
        const remove = el.querySelector(":scope > .echo-actions");
        if (remove) remove.hidden = true;
      }
      reports.onEvent({ type: "post.deleted", data: { id } });
    },
  };
  const stream = streamSection(ctx, state);
  const reports = reportsSection(state);
  const audit = auditSection(state);
  root.append(
    h("h1", null, t("nav.moderation")),
    h("div.mod-layout", null,
      h("div.column", null, reports.el, audit.el),
      h("div.column", null, stream.el)));

  const onEvent = (ev) => {
    const d = ev.data || {};
    if (ev.type === "post.created") state.keep(d);
    if (ev.type === "post.deleted") state.removed.add(d.id);
    if (ev.type === "mod.action") {
      if (d.action === "remove_echo" && d.echo) state.removed.add(d.echo.id);
      if (d.action === "suspend" && d.user) state.suspended.add(d.user.handle);
      if (d.action === "unsuspend" && d.user) state.suspended.delete(d.user.handle);
    }
    stream.onAll(ev);
    if (ev.type === "post.deleted") state.markRemoved(d.id);
    else if (ev.type === "mod.action" && d.action === "remove_echo" && d.echo) state.markRemoved(d.echo.id);
    reports.onEvent(ev);
    audit.onEvent(ev);
  };
  const revoked = h("p.banner.danger.mod-revoked", { role: "alert", hidden: true });
  root.querySelector("h1").after(revoked);
  const { off, ready } = ctx.hub.listen("mod", onEvent, {
    // The socket was away too long to replay what it missed: load the lists afresh.
    onReset: () => {
      reports.reload(true);
      audit.reload(true);
    },
    // Refused, or ended by the server: this member is no longer a moderator.
    onError: (err) => {
      revoked.textContent = err.code === "forbidden" ? t("mod.revokedForbidden") : t("mod.revoked", { reason: errorText(err) });
      revoked.hidden = false;
      stream.stop();
      stream.paintLive();
    },
  });
  const onStatus = () => stream.paintLive();
  ctx.hub.addEventListener("status", onStatus);
  stream.paintLive();
  // Live first, then the lists, so nothing reported in between is missed.
  await Promise.race([ready, delay(3000)]);
  await Promise.all([reports.reload(), audit.reload(), stream.fillCommunities()]);
  stream.paintLive();
  return () => {
    off();
    stream.stop();
    ctx.hub.removeEventListener("status", onStatus);
  };
}
