// My notifications: the `me` topic, kept for the whole page. There is no HTTP list of
// notifications, so the latest are kept in localStorage with the topic's cursor: on the
// next visit the socket resumes from it and the server replays what came meanwhile.

const KEEP = 100;
const LISTED = new Set([
  "like",
  "follow",
  "event.announced",
  "event.updated",
  "event.cancelled",
  "event.starting",
  "event.rsvp",
  "community.join_requested",
  "community.joined",
  "community.join_rejected",
]);

export class Notifications extends EventTarget {
  constructor(hub, me) {
    super();
    this.hub = hub;
    this.handle = me.handle;
    this.key = `echohub:notifications:${me.handle}`;
    const saved = load(this.key);
    this.items = saved.items;
    this.cursor = saved.cursor;
    this.seen = saved.seen;
  }

  start() {
    const me = this.hub.listen("me", (ev) => this.receive(ev), {
      since: this.cursor,
      onAck: ({ cursor }) => {
        this.cursor = cursor; // after `recovered: false`, the new starting point
        this.save();
      },
    });
    this.off = me.off;
    this.ready = me.ready; // settled once notifications are live
    // Announcements travel with the host's posts (the `home` topic), not on `me`.
    this.offHome = this.hub.subscribe("home", (ev) => {
      if (ev.type === "event.announced" && ev.data?.host?.handle !== this.handle) this.receive(ev, false);
    });
    this.changed();
  }

  get unread() {
    return this.items.filter((n) => n.cursor && this.isNewer(n.cursor)).length;
  }

  isNewer(cursor) {
    if (this.seen == null) return true;
    try {
      return BigInt(cursor) > BigInt(this.seen);
    } catch {
      return false;
    }
  }

  receive(ev, fromMe = true) {
    if (fromMe) this.cursor = ev.cursor;
    if (LISTED.has(ev.type)) {
      this.items.unshift({ type: ev.type, data: ev.data, cursor: ev.cursor, at: ev.data?.at ?? new Date().toISOString() });
      this.items.length = Math.min(this.items.length, KEEP);
      this.dispatchEvent(new CustomEvent("notification", { detail: ev }));
    }
    this.dispatchEvent(new CustomEvent(ev.type, { detail: ev }));
    this.save();
    this.changed();
  }

  markAllRead() {
    if (this.items.length) this.seen = this.items[0].cursor;
    this.save();
    this.changed();
  }

  changed() {
    this.dispatchEvent(new Event("change"));
  }

  save() {
    try {
      localStorage.setItem(this.key, JSON.stringify({ items: this.items, cursor: this.cursor, seen: this.seen }));
    } catch {
      // Storage full or disabled: notifications still work for this page.
    }
  }
}

function load(key) {
  try {
    const data = JSON.parse(localStorage.getItem(key) || "null");
    if (data && Array.isArray(data.items)) return { items: data.items, cursor: data.cursor ?? null, seen: data.seen ?? null };
  } catch {
    // fall through
  }
  return { items: [], cursor: null, seen: null };
}
