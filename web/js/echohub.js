// The Echo Hub socket client: one websocket per page, many topics over it.
//
//   const hub = new EchoHub();            // same-origin /ws, session cookie
//   const off = hub.subscribe("home", (ev) => …, { onReset: () => reloadOverHttp() });
//   hub.addEventListener("status", () => hub.status);   // "connecting" | "open" | …
//   hub.addEventListener("ended", (e) => e.detail.code); // 4001 / 4003: sign in again
//   hub.connect();
//
// What it promises (SPEC section 6):
// - Topics are multiplexed: each `subscribe` adds a handler; the first handler of a
//   topic sends `sub`, the last one's `off()` sends `unsub`.
// - It reconnects by itself after any close except 4001 (session ended) and 4003
//   (suspended), with exponential backoff and full jitter so a restarted server is not
//   hit by every client at once; 1001 (server going away) retries almost at once.
//   It does not sit out a long wait needlessly: the browser's `online` event, or the
//   server answering a cheap probe (`/healthz`, about once a second, jittered), starts
//   the reconnect at once.
// - On reconnect every topic is re-subscribed with `since` = the cursor of the last
//   event seen on it, so the server replays what was missed, in order. Replayed events
//   at or before that cursor are dropped, so a handler never sees one twice.
// - `recovered: false` (the gap is too old) calls the topic's `onReset`: the caller
//   reloads over HTTP. A refused upgrade (401) is told apart from a network failure by
//   asking `/api/me`; a missing session ends the client like 4001.
//
// No DOM: it works in any page (and in tests through page.evaluate).

export const SUBPROTOCOL = "echohub.v1.json";
export const NO_RECONNECT = new Set([4001, 4003]);

/** Compare two decimal cursors: negative, zero or positive. */
export function compareCursors(a, b) {
  try {
    const x = BigInt(a);
    const y = BigInt(b);
    return x < y ? -1 : x > y ? 1 : 0;
  } catch {
    return 0;
  }
}

/** Delay before reconnect attempt `attempt` (0-based): full jitter, capped. */
export function backoffDelay(attempt, { base = 500, max = 15000, random = Math.random } = {}) {
  const ceiling = Math.min(max, base * 2 ** Math.min(attempt, 16));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

export class EchoHub extends EventTarget {
  /**
   * Options: `url` (default same-origin `/ws`), `protocol`, `base`/`max` backoff in ms,
   * `pingEvery` ms (an application ping that notices a dead peer), `checkSession`
   * (async, true while the session is valid; default GET /api/me).
   */
  constructor(options = {}) {
    super();
    const loc = globalThis.location;
    this.url =
      options.url ?? `${loc.protocol === "https:" ? "wss:" : "ws:"}//${loc.host}/ws`;
    this.protocol = options.protocol ?? SUBPROTOCOL;
    this.base = options.base ?? 500;
    this.max = options.max ?? 15000;
    this.pingEvery = options.pingEvery ?? 25000;
    this.checkSession = options.checkSession ?? defaultCheckSession;
    this.probe = options.probe ?? defaultProbe;
    this.probeEvery = options.probeEvery ?? 1000;
    this.prober = null;
    this.status = "idle";
    this.topics = new Map(); // topic -> {handlers, cursor, onReset, acked}
    this.ws = null;
    this.attempt = 0;
    this.nextId = 1;
    this.pending = new Map(); // request id -> {resolve, reject, topic?}
    this.timer = null;
    this.pinger = null;
    this.awaitingPong = null;
    this.stopped = false;
    this.onOnline = () => this.retryNow();
    // The browser lost the network: the socket is as good as dead (it could take a
    // ping interval to notice), so drop it now; `online` brings it back.
    this.onOffline = () => {
      const ws = this.ws;
      if (!ws || this.stopped) return;
      this.dropped(ws, true, 1006, "offline");
      ws.close();
    };
  }

  connect() {
    this.stopped = false;
    globalThis.addEventListener?.("online", this.onOnline);
    globalThis.addEventListener?.("offline", this.onOffline);
    if (!this.ws) this.open();
    return this;
  }

  /** Close for good (sign-out): no reconnect. */
  close() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.stopProbing();
    this.stopPinging();
    globalThis.removeEventListener?.("online", this.onOnline);
    globalThis.removeEventListener?.("offline", this.onOffline);
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.close(1000, "bye");
    }
    this.setStatus("closed");
  }

  /**
   * Listen to `topic`. `handler(event)` gets each `{type, data, cursor, topic}` in order.
   * `since` starts from a known cursor (replaying what came after it); `onReset` is
   * called when the server cannot fill a gap; `onAck` once the subscription is live
   * (after each (re)connect); `onError(err)` if the server refuses it. `filter` (an
   * object, e.g. `{member: "aki"}` on `mod`) goes with every `sub` of the topic; it is
   * set by the topic's first subscriber. Returns `off()`.
   */
  subscribe(topic, handler, { since = null, onReset = null, onAck = null, onError = null, filter = null } = {}) {
    let entry = this.topics.get(topic);
    if (!entry) {
      entry = { handlers: new Set(), cursor: since, filter, onReset: new Set(), onAck: new Set(), onError: new Set(), acked: false };
      this.topics.set(topic, entry);
      this.sendSub(topic);
    } else if (entry.acked && onAck) {
      queueMicrotask(() => onAck({ topic, cursor: entry.cursor }));
    }
    const listener = { handler };
    entry.handlers.add(listener);
    if (onReset) entry.onReset.add(onReset);
    if (onAck) entry.onAck.add(onAck);
    if (onError) entry.onError.add(onError);
    return () => {
      entry.handlers.delete(listener);
      if (onReset) entry.onReset.delete(onReset);
      if (onAck) entry.onAck.delete(onAck);
      if (onError) entry.onError.delete(onError);
      if (entry.handlers.size === 0 && this.topics.get(topic) === entry) {
        this.topics.delete(topic);
        if (this.isOpen()) this.request({ op: "unsub", topic }).catch(() => {});
      }
    };
  }

  /**
   * `subscribe`, plus `ready`: a promise settled by the first ack (or refusal) of this
   * subscription. Load over HTTP after `ready`, and nothing published in between is
   * lost: whatever the HTTP answer misses arrives as an event.
   */
  listen(topic, handler, options = {}) {
    let settle;
    const ready = new Promise((resolve) => (settle = resolve));
    const off = this.subscribe(topic, handler, {
      ...options,
      onAck: (info) => {
        settle(true);
        options.onAck?.(info);
      },
      onError: (err) => {
        settle(false);
        options.onError?.(err);
      },
    });
    return { off, ready };
  }

  /** Re-send `sub` for a topic (e.g. `home` after following someone: new channels). */
  resubscribe(topic) {
    const entry = this.topics.get(topic);
    if (entry) {
      entry.acked = false;
      this.sendSub(topic);
    }
  }

  /** The cursor of the last event seen on `topic` (or its ack), or null. */
  cursor(topic) {
    return this.topics.get(topic)?.cursor ?? null;
  }

  isOpen() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  /** Send a request frame; resolves with the ack/pong, rejects with an error frame. */
  request(frame) {
    if (!this.isOpen()) return Promise.reject(new Error("not connected"));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.ws.send(JSON.stringify({ ...frame, id }));
    });
  }

  /** Post over the socket: `{text, visibility?}` → the created post. */
  async post(body) {
    const ack = await this.request({ op: "post", ...body });
    return ack.post;
  }

  // -- internals ---------------------------------------------------------------

  setStatus(status, detail = {}) {
    this.status = status;
    this.dispatchEvent(new CustomEvent("status", { detail: { status, ...detail } }));
  }

  open() {
    clearTimeout(this.timer);
    this.stopProbing();
    this.setStatus(this.attempt ? "reconnecting" : "connecting");
    let ws;
    try {
      ws = new WebSocket(this.url, this.protocol);
    } catch (err) {
      this.scheduleReconnect(false);
      return;
    }
    this.ws = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
      this.attempt = 0;
      this.setStatus("open");
      for (const topic of this.topics.keys()) this.sendSub(topic);
      this.startPinging();
    };
    ws.onmessage = (msg) => {
      let frame;
      try {
        frame = JSON.parse(msg.data);
      } catch {
        return;
      }
      this.receive(frame);
    };
    ws.onclose = (ev) => this.dropped(ws, opened, ev.code, ev.reason);
  }

  /** `ws` is gone (closed, or given up on): settle what waited on it, then retry. */
  dropped(ws, opened, code, reason) {
    if (this.ws !== ws) return;
    this.ws = null;
    ws.onopen = ws.onmessage = ws.onclose = null;
    this.stopPinging();
    for (const { reject } of this.pending.values()) reject(new Error("connection closed"));
    this.pending.clear();
    for (const entry of this.topics.values()) entry.acked = false;
    if (this.stopped) return;
    if (NO_RECONNECT.has(code)) {
      this.end(code, reason);
      return;
    }
    this.scheduleReconnect(opened, code);
  }

  async scheduleReconnect(wasOpen, code = 1006) {
    if (!wasOpen) {
      // The upgrade failed. Without a session (401) retrying would never succeed.
      let valid = true;
      try {
        valid = await this.checkSession();
      } catch {
        valid = true; // the server is down: keep trying
      }
      if (this.stopped) return;
      if (!valid) {
        this.end(4001, "session ended");
        return;
      }
    }
    const delay =
      code === 1001 && this.attempt === 0
        ? Math.round(Math.random() * 250)
        : backoffDelay(this.attempt, { base: this.base, max: this.max });
    this.attempt += 1;
    this.setStatus("waiting", { delay, code });
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.open(), delay);
    if (delay > this.probeEvery) this.startProbing();
  }

  /**
   * While waiting to reconnect, ask the server (jittered, about once per `probeEvery`)
   * whether it answers; when it does, reconnect at once instead of sitting out the
   * backoff. Stops at the next attempt, whichever starts it.
   */
  startProbing() {
    this.stopProbing();
    const tick = async () => {
      let answered = false;
      try {
        answered = await this.probe();
      } catch {
        answered = false;
      }
      if (this.prober !== tick) return;
      if (answered) this.retryNow();
      else this.proberTimer = setTimeout(tick, this.probeEvery * (0.75 + Math.random() / 2));
    };
    this.prober = tick;
    this.proberTimer = setTimeout(tick, this.probeEvery * (0.75 + Math.random() / 2));
  }

  stopProbing() {
    this.prober = null;
    clearTimeout(this.proberTimer);
  }

  /** Skip the wait (the browser came back online, or the user asked). */
  retryNow() {
    if (!this.stopped && !this.ws) {
      clearTimeout(this.timer);
      this.open();
    }
  }

  end(code, reason) {
    this.stopped = true;
    clearTimeout(this.timer);
    this.stopProbing();
    this.setStatus("ended", { code });
    this.dispatchEvent(new CustomEvent("ended", { detail: { code, reason } }));
  }

  sendSub(topic) {
    if (!this.isOpen()) return;
    const entry = this.topics.get(topic);
    const frame = { op: "sub", topic };
    if (entry.cursor != null) frame.since = entry.cursor;
    if (entry.filter != null) frame.filter = entry.filter;
    this.request(frame).then(
      (ack) => {
        if (this.topics.get(topic) !== entry) return;
        entry.acked = true;
        const reset = ack.recovered === false;
        // Without `since`, or when the gap was lost, the ack's cursor is the start.
        if (entry.cursor == null || reset) entry.cursor = ack.cursor;
        if (reset) for (const fn of entry.onReset) safely(fn, { topic, cursor: ack.cursor });
        for (const fn of entry.onAck) safely(fn, { topic, cursor: entry.cursor, recovered: ack.recovered });
      },
      (err) => {
        // A refused `sub` (forbidden, not found) is an error frame; the socket lives on.
        if (err && err.code && this.topics.get(topic) === entry) {
          for (const fn of entry.onError) safely(fn, err);
          this.dispatchEvent(new CustomEvent("suberror", { detail: { topic, error: err } }));
        }
      },
    );
  }

  receive(frame) {
    switch (frame.op) {
      case "event": {
        const entry = this.topics.get(frame.topic);
        if (!entry) return;
        if (entry.cursor != null && frame.cursor != null) {
          if (compareCursors(frame.cursor, entry.cursor) <= 0) return; // already seen
        }
        if (frame.cursor != null) entry.cursor = frame.cursor;
        for (const { handler } of [...entry.handlers]) safely(handler, frame);
        this.dispatchEvent(new CustomEvent("event", { detail: frame }));
        return;
      }
      case "ack":
      case "pong": {
        const waiter = this.pending.get(frame.id);
        if (waiter) {
          this.pending.delete(frame.id);
          waiter.resolve(frame);
        }
        return;
      }
      case "error": {
        const waiter = this.pending.get(frame.id);
        const err = Object.assign(new Error(frame.message || frame.code), frame);
        if (waiter) {
          this.pending.delete(frame.id);
          waiter.reject(err);
          return;
        }
        const entry = frame.topic != null ? this.topics.get(frame.topic) : null;
        if (entry) {
          // The server ended a live subscription (a moderator demoted loses `mod`): its
          // listeners hear of it as of a refused `sub`.
          entry.acked = false;
          for (const fn of entry.onError) safely(fn, err);
          this.dispatchEvent(new CustomEvent("suberror", { detail: { topic: frame.topic, error: err } }));
        }
        this.dispatchEvent(new CustomEvent("error", { detail: err }));
        return;
      }
      default:
    }
  }

  startPinging() {
    this.stopPinging();
    if (!this.pingEvery) return;
    this.pinger = setInterval(() => {
      const ws = this.ws;
      if (!ws || ws.readyState !== WebSocket.OPEN) return;
      // No pong within a ping period: the peer is gone though TCP has not noticed.
      // Do not wait for a close handshake the peer will never answer.
      const guard = setTimeout(() => {
        this.dropped(ws, true, 4000, "no pong");
        ws.close(4000, "no pong");
      }, this.pingEvery);
      this.request({ op: "ping" }).then(
        () => clearTimeout(guard),
        () => clearTimeout(guard),
      );
    }, this.pingEvery);
  }

  stopPinging() {
    clearInterval(this.pinger);
    this.pinger = null;
  }
}

function safely(fn, arg) {
  try {
    fn(arg);
  } catch (err) {
    console.error(err);
  }
}

/** True when the server answers at all (up and serving), false on a network error. */
async function defaultProbe() {
  try {
    const resp = await fetch("/healthz", { cache: "no-store", credentials: "omit" });
    return resp.ok;
  } catch {
    return false;
  }
}

async function defaultCheckSession() {
  const resp = await fetch("/api/me", { credentials: "same-origin" });
  if (resp.status === 401) return false;
  return true;
}
