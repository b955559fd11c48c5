// Events: announce one, list them, and an event's page with RSVP and live counts
// (`event:{id}`: event.rsvp, event.updated, event.cancelled, event.starting).

import { api, enc, post, put } from "../api.js";
import { communityTag, delay, field, handleForm, memberLink, reloadWhenBack, toast } from "../components.js";
import { h, replace } from "../dom.js";
import { guessLang } from "../effects.js";
import { errorText, formatNumber, formatWhen, t, tParts } from "../i18n.js";
import { remember, remembered } from "../known.js";

/** Going / interested counts, wherever the payload keeps them. */
export function countsOf(obj) {
  const c = obj?.counts ?? obj ?? {};
  return { going: Number(c.going ?? 0), interested: Number(c.interested ?? 0) };
}

function myRsvp(ev) {
  return ev.my_rsvp ?? ev.rsvp ?? ev.viewer_rsvp ?? ev.status_of_viewer ?? "none";
}

/** Every seat taken (only an event with a capacity fills up). */
export function isFull(ev, counts = countsOf(ev)) {
  return Number(ev.capacity) > 0 && counts.going >= Number(ev.capacity);
}

function isCancelled(ev) {
  return !!(ev.cancelled || ev.cancelled_at || ev.status === "cancelled");
}

/** "now" when the event is under way, "past" after it, else null. */
export function phase(ev, now = Date.now()) {
  const start = Date.parse(ev.starts_at);
  const end = ev.ends_at ? Date.parse(ev.ends_at) : start + 2 * 3600 * 1000;
  if (now >= end) return "past";
  if (now >= start) return "now";
  return null;
}

function toIso(local) {
  return local ? new Date(local).toISOString() : undefined;
}

export function eventSummary(ev) {
  const counts = countsOf(ev);
  const p = phase(ev);
  return h("li.event-item.card", { dataset: { eventId: ev.id } },
    h("h3", { lang: guessLang(ev.title) }, h("a", { href: `#/events/${enc(ev.id)}` }, ev.title)),
    h("p.when", null, formatWhen(ev.starts_at), ev.place ? [" · ", h("span", { lang: guessLang(ev.place) }, ev.place)] : ""),
    h("p.muted", null,
      t("events.summaryCounts", { going: counts.going, interested: counts.interested }), " ",
      isCancelled(ev) ? h("span.tag.danger", null, t("events.cancelledTag"))
        : p === "now" ? h("span.tag.live", null, t("events.nowTag"))
          : isFull(ev, counts) ? h("span.tag.full", null, t("events.fullTag")) : null));
}

/** The "announce an event" form; with `community`, the event belongs to it. */
export function announceForm(ctx, community = null) {
  const form = h("form.stack.event-form", { "aria-label": t("events.announce") },
    field(t("events.fieldTitle"), { name: "title", required: true, maxLength: 100 }),
    field(t("events.fieldDescription"), { name: "description", tag: "textarea", rows: 3 }),
    h("div.row2", null,
      field(t("events.fieldStarts"), { name: "starts_at", type: "datetime-local", required: true }),
      field(t("events.fieldEnds"), { name: "ends_at", type: "datetime-local" })),
    h("div.row2", null,
      field(t("events.fieldPlace"), { name: "place" }),
      field(t("events.fieldCapacity"), { name: "capacity", type: "number", min: 1 })),
    h("button.primary", { type: "submit" }, t("events.announceButton")));
  handleForm(form, async (data) => {
    const body = {
      title: data.get("title"),
      description: data.get("description") || "",
      starts_at: toIso(data.get("starts_at")),
    };
    if (data.get("ends_at")) body.ends_at = toIso(data.get("ends_at"));
    if (data.get("place")) body.place = data.get("place");
    if (data.get("capacity")) body.capacity = Number(data.get("capacity"));
    if (community) body.community = community;
    const ev = await post("/api/events", body);
    remember(ctx.me, "events", ev.id);
    location.hash = `#/events/${enc(ev.id)}`;
  });
  return h("details.announce", null, h("summary", null, t(community ? "events.announceHere" : "events.announce")), form);
}

export async function eventsView(root, _params, ctx) {
  const list = h("ol.events");
  const empty = h("p.empty", null, t("events.empty"));
  // Offline, the page says so instead of claiming there are no events.
  const failure = h("p.empty.offline-state", { role: "status", hidden: true });
  root.append(h("section.card", null, h("h1", null, t("nav.events")), announceForm(ctx)), h("h2", null, t("events.upcoming")), list, empty, failure);

  const known = new Map();
  const paint = () => {
    const items = [...known.values()].filter((ev) => phase(ev) !== "past").sort((a, b) => Date.parse(a.starts_at) - Date.parse(b.starts_at));
    list.replaceChildren(...items.map(eventSummary));
    empty.hidden = items.length > 0 || !failure.hidden;
  };
  // Announcements arriving while the page is open join the list.
  const onNote = (e) => {
    const ev = e.detail.data?.event ?? e.detail.data;
    if (ev?.id && ev.title) {
      known.set(ev.id, ev);
      remember(ctx.me, "events", ev.id);
      paint();
    }
  };
  ctx.notifications.addEventListener("event.announced", onNote);
  let items = null;
  try {
    items = (await api("GET", "/api/events")).items;
  } catch (err) {
    if (err.status !== 404 && err.status !== 405) {
      failure.hidden = false;
      failure.textContent = errorText(err);
      items = [];
    }
  }
  if (items == null) {
    // No listing endpoint: the events this browser has seen (made, announced to me).
    const ids = new Set(remembered(ctx.me, "events"));
    for (const n of ctx.notifications.items) if (n.type.startsWith("event.")) {
      const id = n.data?.event?.id ?? n.data?.event ?? n.data?.id;
      if (id) ids.add(String(id));
    }
    const got = await Promise.all([...ids].map((id) => api("GET", `/api/events/${enc(id)}`).catch(() => null)));
    items = got.filter(Boolean);
    // And the events of my communities.
    try {
      const mine = (await api("GET", "/api/communities")).items.filter((c) => c.membership === "member" || c.membership === "owner");
      const lists = await Promise.all(mine.map((c) => api("GET", `/api/communities/${enc(c.id)}/events`).catch(() => ({ items: [] }))));
      for (const l of lists) items.push(...l.items);
    } catch {
      // Communities unavailable: the list is just shorter.
    }
  }
  for (const ev of items) known.set(ev.id, ev);
  paint();
  // Offline at first: the list loads by itself once the server can be reached.
  const stop = reloadWhenBack(ctx, () => !failure.hidden, async () => {
    try {
      const again = (await api("GET", "/api/events")).items;
      failure.hidden = true;
      for (const ev of again) known.set(ev.id, ev);
      paint();
    } catch {
      // Still unreachable: the next "online" or reconnect tries again.
    }
  });
  return () => {
    stop();
    ctx.notifications.removeEventListener("event.announced", onNote);
  };
}

export async function eventView(root, { id }, ctx) {
  let ev;
  try {
    ev = await api("GET", `/api/events/${enc(id)}`);
  } catch (err) {
    root.append(h("section.card", null, h("h1", null, t("events.event")), h("p.form-error", null, errorText(err))));
    return null;
  }
  remember(ctx.me, "events", ev.id);
  const host = ev.host || ev.author || ev.owner;
  const mine = host && host.handle === ctx.me.handle;
  let counts = countsOf(ev);
  let status = myRsvp(ev);
  let starting = phase(ev) === "now";
  const card = h("article.card.event-page", { dataset: { eventId: ev.id } });
  const live = h("p.live-counts", { role: "status", "aria-live": "polite" });
  const banner = h("p.banner", { role: "alert" });
  const rsvpGroup = h("div.rsvp", { role: "group", "aria-label": t("events.yourRsvp") });
  const edit = h("div.host-tools");
  const fullNote = h("span.full-note.muted", { id: `full-${ev.id}`, hidden: true }, t("events.fullNote"));

  const paintCounts = () => {
    replace(live,
      h("span.count-going", null, tParts(ev.capacity ? "events.goingOfSeats" : "events.going",
        { count: counts.going, n: h("strong", null, formatNumber(counts.going)), seats: Number(ev.capacity) || 0 })),
      " · ",
      h("span.count-interested", null, tParts("events.interested", { count: counts.interested, n: h("strong", null, formatNumber(counts.interested)) })),
      isFull(ev, counts) && !isCancelled(ev) ? [" · ", h("span.tag.full", null, t("events.fullTag"))] : null);
  };
  const paintBanner = () => {
    banner.hidden = !(isCancelled(ev) || starting);
    banner.className = isCancelled(ev) ? "banner danger" : "banner live";
    banner.textContent = isCancelled(ev) ? t("events.cancelledBanner") : starting ? t("events.startingBanner") : "";
  };
  let shownFull = null; // the fullness the RSVP buttons were last drawn for
  const paintRsvp = () => {
    const choice = (value, label) => {
      // Full: no new "going" (one already going may still step back).
      const full = value === "going" && status !== "going" && isFull(ev, counts);
      const b = h("button.plain", {
        type: "button",
        "aria-pressed": String(status === value),
        dataset: { rsvp: value },
        disabled: isCancelled(ev) || full,
        "aria-describedby": full ? fullNote.id : null,
      }, label);
      b.addEventListener("click", async () => {
        const next = status === value ? "none" : value;
        for (const x of rsvpGroup.querySelectorAll("button")) x.disabled = true;
        try {
          const res = await put(`/api/events/${enc(ev.id)}/rsvp`, { status: next });
          status = res.status ?? next;
          counts = countsOf(res);
          paintCounts();
        } catch (err) {
          toast(errorText(err));
          if (err.code === "event_full") counts = { ...counts, going: Math.max(counts.going, Number(ev.capacity) || 0) };
        }
        paintRsvp();
        rsvpGroup.querySelector(`[data-rsvp="${value}"]`)?.focus();
      });
      return b;
    };
    const full = isFull(ev, counts) && status !== "going" && !isCancelled(ev);
    shownFull = full;
    fullNote.hidden = !full;
    replace(rsvpGroup, choice("going", t("events.rsvpGoing")), choice("interested", t("events.rsvpInterested")), fullNote);
  };
  const paint = () => {
    replace(card,
      banner,
      h("h1", { lang: guessLang(ev.title) }, ev.title),
      h("p.when", null, h("time", { dateTime: ev.starts_at, dataset: { absolute: "1" } }, formatWhen(ev.starts_at)),
        ev.ends_at ? [" – ", h("time", { dateTime: ev.ends_at, dataset: { absolute: "1" } }, formatWhen(ev.ends_at))] : null),
      ev.place ? h("p.place", null, h("span", { "aria-hidden": "true" }, "📍 "), h("span", { lang: guessLang(ev.place) }, ev.place)) : null,
      host ? h("p.muted", null, tParts("events.hostedBy", { who: memberLink(host) })) : null,
      ev.community ? h("p.muted", null, tParts("events.inCommunity", { community: communityTag(ev.community) })) : null,
      ev.description ? h("p.description", { lang: guessLang(ev.description) }, ev.description) : null,
      live,
      rsvpGroup,
      edit);
    paintBanner();
    paintCounts();
    paintRsvp();
  };
  paint();
  if (mine && !isCancelled(ev)) {
    const cancel = h("button.danger", { type: "button" }, t("events.cancel"));
    cancel.addEventListener("click", async () => {
      if (!window.confirm(t("events.cancelConfirm"))) return;
      try {
        const res = await post(`/api/events/${enc(ev.id)}/cancel`);
        if (res && res.id) ev = res;
        else ev.cancelled = true;
        paint();
        cancel.remove();
      } catch (err) {
        toast(errorText(err));
      }
    });
    edit.append(cancel);
    root.append(card);
  } else {
    root.append(card);
  }
  const { off, ready } = ctx.hub.listen(`event:${ev.id}`, (e) => {
    const d = e.data || {};
    if (e.type === "event.rsvp") {
      // `{event: id, user, status, going, interested}`: the counts after this RSVP.
      counts = countsOf(d);
      if (d.user && d.user.handle === ctx.me.handle && d.status) {
        status = d.status;
        paintRsvp();
      }
    } else if (e.type === "event.updated") {
      ev = { ...ev, ...d, my_rsvp: status };
      if (d.going != null) counts = countsOf(d);
      paint();
    } else if (e.type === "event.cancelled") {
      ev = { ...ev, ...d, cancelled: true };
      paint();
    } else if (e.type === "event.starting") {
      starting = true;
      paintBanner();
      toast(t("events.startingToast", { title: ev.title }));
    }
    paintCounts();
    // A seat taken or freed by someone else: Going follows, live.
    if ((isFull(ev, counts) && status !== "going" && !isCancelled(ev)) !== shownFull) paintRsvp();
  });
  // Live now: read the counts again, so an RSVP made before the ack is not missed.
  await Promise.race([ready, delay(3000)]);
  try {
    const fresh = await api("GET", `/api/events/${enc(ev.id)}`);
    ev = fresh;
    counts = countsOf(fresh);
    status = myRsvp(fresh);
    paint();
  } catch {
    // Keep what is shown; live events still update it.
  }
  // The start time passing while the page is open shows "starting now" without a
  // server event too (the notification goes to attendees only).
  const wait = Date.parse(ev.starts_at) - Date.now();
  const timer = wait > 0 && wait < 2 ** 31 ? setTimeout(() => { starting = true; paintBanner(); }, wait) : null;
  return () => {
    off();
    clearTimeout(timer);
  };
}
