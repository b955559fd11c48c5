// My notifications: the server's history (GET /api/notifications), kept live by the
// `me` topic. Every device shows the same list and the same read marks: marking read
// is one POST, and the server tells every device (`notifications.read`).
//
// Each time `me` is (re)subscribed, the first page is loaded again over HTTP, so a
// notification sent while this page was offline still shows; live ones are added by
// id (their cursor), so one fetched and also received is shown once.

import { api, post, withQuery } from "./api.js";

const PAGE = 30;

export class Notifications extends EventTarget {
  constructor(hub, me) {
    super();
    this.hub = hub;
    this.handle = me.handle;
    this.items = [];
    this.readUntil = null;
    this.unread = Number(me.unread_notifications) || 0;
    this.next = null;
    this.loaded = false;
  }

  start() {
    const me = this.hub.listen("me", (ev) => this.receive(ev), { onAck: () => this.load() });
    this.off = me.off;
    this.ready = me.ready; // settled once notifications are live
    // Announcements travel with the host's posts (the `home` topic), not on `me`.
    this.offHome = this.hub.subscribe("home", (ev) => {
      if (ev.type === "event.announced" && ev.data?.host?.handle !== this.handle) this.announce(ev);
    });
    this.changed();
  }

  /** The first page from the server (on every subscription, so gaps never stay). */
  async load() {
    try {
      const page = await api("GET", withQuery("/api/notifications", { limit: PAGE }));
      const live = this.items.filter((n) => n.live && !page.items.some((i) => i.id === n.id));
      this.items = [...live, ...page.items].sort(newestFirst);
      this.next = page.next;
      this.readUntil = page.read_until;
      // A notification that arrived live while the page was on its way is not in the
      // server's count (nor in the page): keep counting it, not the stale number.
      this.unread = page.unread + live.filter((n) => !n.read).length;
      this.loaded = true;
      this.dispatchEvent(new Event("reload"));
      this.changed();
    } catch {
      // Offline: the next subscription loads again.
    }
  }

  /** The next (older) page, for the notifications page's "more" button. */
  async loadMore() {
    if (this.next == null) return false;
    const page = await api("GET", withQuery("/api/notifications", { before: this.next, limit: PAGE }));
    const known = new Set(this.items.map((n) => n.id));
    this.items.push(...page.items.filter((n) => !known.has(n.id)));
    this.next = page.next;
    this.changed();
    return true;
  }

  receive(ev) {
    if (ev.data?.decided) {
      // Not a notification: I answered a join request (maybe on another device), so
      // its Approve/Decline buttons are stale everywhere.
      const said = ev.type === "community.joined" ? "notif.approved" : "notif.declined";
      this.markDecided(ev.data.community?.id, ev.data.user?.handle, said);
      return;
    }
    if (ev.type === "notifications.read") {
      this.readUntil = ev.data.read_until;
      this.unread = ev.data.unread;
      for (const n of this.items) n.read = !isNewer(n.id, this.readUntil);
    } else if (!this.items.some((n) => n.id === ev.cursor)) {
      const at = ev.data?.at ?? new Date().toISOString();
      this.items.unshift({ id: ev.cursor, type: ev.type, data: ev.data, at, read: false, live: true });
      this.unread += 1;
      this.dispatchEvent(new CustomEvent("notification", { detail: ev }));
    }
    this.dispatchEvent(new CustomEvent(ev.type, { detail: ev }));
    this.changed();
  }

  /** Mark the join requests of `handle` to `community` as answered (`said`: the
   * catalogue key of what became of it). */
  markDecided(community, handle, said = "notif.handled") {
    let changed = false;
    for (const n of this.items) {
      if (n.type === "community.join_requested" && !n.handled && n.data?.community?.id === community && n.data?.user?.handle === handle) {
        n.handled = said;
        changed = true;
      }
    }
    if (changed) this.changed();
  }

  /** Which listed join requests are still pending (one request per community), so a
   * page opened later shows no button for one answered elsewhere. */
  async checkPending() {
    const open = this.items.filter((n) => n.type === "community.join_requested" && !n.handled && n.data?.community?.id);
    for (const id of new Set(open.map((n) => n.data.community.id))) {
      try {
        const pending = await api("GET", `/api/communities/${encodeURIComponent(id)}/requests`);
        const waiting = new Set((pending.items || []).map((r) => r.user?.handle));
        for (const n of open) if (n.data.community.id === id && !waiting.has(n.data.user?.handle)) n.handled = "notif.handled";
      } catch {
        // No longer the owner, or offline: the buttons stay; a click says what happened.
      }
    }
    this.changed();
  }

  /** An announcement seen on `home` (not kept by the server: it is not on `me`). */
  announce(ev) {
    this.dispatchEvent(new CustomEvent(ev.type, { detail: ev }));
  }

  /** Mark everything shown read, on every device. */
  async markAllRead() {
    const newest = this.items.find((n) => n.id && /^\d+$/.test(n.id));
    if (!newest || this.unread === 0) return;
    try {
      const result = await post("/api/notifications/read", { until: newest.id });
      this.readUntil = result.read_until;
      this.unread = result.unread;
      for (const n of this.items) n.read = !isNewer(n.id, this.readUntil);
      this.changed();
    } catch {
      // Offline: it stays unread here and everywhere, which is the truth.
    }
  }

  changed() {
    this.dispatchEvent(new Event("change"));
  }
}

function isNewer(cursor, than) {
  if (than == null) return true;
  try {
    return BigInt(cursor) > BigInt(than);
  } catch {
    return false;
  }
}

function newestFirst(a, b) {
  return isNewer(a.id, b.id) ? -1 : isNewer(b.id, a.id) ? 1 : 0;
}
