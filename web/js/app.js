// The page: session, the one socket, the notification store, and a hash router that
// mounts one view at a time. A view is `(root, params, ctx) => cleanup?`; the cleanup
// unsubscribes its topics when the user navigates away.

import { api, ApiError, enc, post } from "./api.js";
import { announceReply, removePostEverywhere, toast } from "./components.js";
import { refreshTimes } from "./dom.js";
import { EchoHub } from "./echohub.js";
import { LANGUAGES, currentLanguage, errorText, loadLanguage, onLanguageChange, setLanguage, t, translateStatic } from "./i18n.js";
import { Notifications } from "./notifications.js";
import { signInView, joinView } from "./views/auth.js";
import { homeView } from "./views/home.js";
import { profileView } from "./views/profile.js";
import { footprintsView } from "./views/footprints.js";
import { notificationsView } from "./views/notifications.js";
import { eventsView, eventView } from "./views/events.js";
import { communitiesView, communityView } from "./views/communities.js";
import { inviteView } from "./views/invite.js";
import { isModerator, moderationView } from "./views/moderation.js";
import { tagView, threadView } from "./views/thread.js";
import { mountSearchBox, searchView } from "./views/search.js";
import { settingsView } from "./views/settings.js";

// The catalogue first: every view renders its text through it.
await loadLanguage();
translateStatic();

const main = document.getElementById("main");
const topbar = document.getElementById("topbar");
const conn = document.getElementById("conn");
const badge = document.getElementById("notif-badge");
const modNav = document.getElementById("nav-mod");
const moreButton = document.getElementById("nav-more");
const moreMenu = document.getElementById("more-menu");

/** Moderation shows in the bar (wide screens) and in "More" (phones) for moderators. */
function showModeration(on) {
  modNav.hidden = !on;
  for (const el of document.querySelectorAll("[data-mod-only]")) el.hidden = !on;
}

const ctx = { me: null, hub: null, notifications: null, navigate, setTitle };
window.echohub = ctx; // for the console and end-to-end tests
mountSearchBox(document.getElementById("search-box"), ctx);

const routes = [
  [/^\/?$/, (p, root) => homeView(root, { tab: "follow" }, ctx)],
  [/^\/discover$/, (_m, root) => homeView(root, { tab: "discover" }, ctx)],
  [/^\/u\/([^/]+)$/, (m, root) => profileView(root, { handle: decodeURIComponent(m[1]) }, ctx)],
  [/^\/me$/, (_m, root) => profileView(root, { handle: ctx.me.handle }, ctx)],
  [/^\/footprints$/, (_m, root) => footprintsView(root, {}, ctx)],
  [/^\/notifications$/, (_m, root) => notificationsView(root, {}, ctx)],
  [/^\/events$/, (_m, root) => eventsView(root, {}, ctx)],
  [/^\/events\/([^/]+)$/, (m, root) => eventView(root, { id: decodeURIComponent(m[1]) }, ctx)],
  [/^\/communities$/, (_m, root) => communitiesView(root, {}, ctx)],
  [/^\/c\/([^/]+)$/, (m, root) => communityView(root, { id: decodeURIComponent(m[1]) }, ctx)],
  [/^\/invite$/, (_m, root) => inviteView(root, {}, ctx)],
  [/^\/mod$/, (_m, root) => moderationView(root, {}, ctx)],
  [/^\/e\/([^/]+)$/, (m, root) => threadView(root, { id: decodeURIComponent(m[1]) }, ctx)],
  [/^\/t\/([^/]+)$/, (m, root) => tagView(root, { tag: decodeURIComponent(m[1]) }, ctx)],
  [/^\/settings$/, (_m, root) => settingsView(root, {}, ctx)],
  [/^\/search\/(.+)$/, (m, root) => searchView(root, { query: decodeURIComponent(m[1]) }, ctx)],
];

let cleanup = null;
let routeSeq = 0;
let titled = false; // the view set its own title
// Why the member was signed out (a suspension), shown on the sign-in page until the
// next sign-in.
let signedOutNotice = null;

function navigate(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

/** The document title: "<page> · Echo Hub" (WCAG 2.4.2: it follows the route). */
function setTitle(page) {
  titled = true;
  document.title = page ? t("app.title", { page }) : t("app.name");
}

/**
 * Mount the view for the current hash. The title follows the view (its own
 * `ctx.setTitle`, else its first heading), and focus moves to that heading so a
 * screen reader starts reading the new page (not on a language switch: focus stays).
 */
async function route({ moveFocus = true } = {}) {
  routeSeq += 1;
  // What had focus when the page changed (the link followed): focus moves on only if
  // nothing else took it while the view loaded (a member quicker than the network).
  const focusedBefore = document.activeElement;
  if (typeof cleanup === "function") cleanup();
  cleanup = null;
  main.replaceChildren();
  if (!ctx.me) {
    const join = location.pathname.match(/^\/join\/([^/]+)$/);
    cleanup = join
      ? joinView(main, { code: decodeURIComponent(join[1]) }, onSignedIn)
      : signInView(main, { notice: signedOutNotice }, onSignedIn);
    setTitle(t(join ? "auth.invitedTitle" : "auth.signIn"));
    main.setAttribute("aria-busy", "false");
    return;
  }
  const path = (location.hash || "#/").slice(1);
  let view = null;
  for (const [re, make] of routes) {
    const m = path.match(re);
    if (m) {
      view = (root) => make(m, root);
      break;
    }
  }
  for (const a of document.querySelectorAll("[data-nav]")) {
    const name = a.dataset.nav;
    const current =
      (name === "home" && (path === "/" || path === "" || path === "/discover")) ||
      (name === "me" && (path === "/me" || path === `/u/${enc(ctx.me.handle)}`)) ||
      (name !== "home" && name !== "me" && path.startsWith(`/${name}`)) ||
      (name === "communities" && path.startsWith("/c/"));
    if (current) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  if (!view) {
    main.setAttribute("aria-busy", "false");
    main.append(Object.assign(document.createElement("h1"), { textContent: t("app.noSuchPage"), tabIndex: -1 }));
    setTitle(t("app.noSuchPage"));
    if (moveFocus) main.querySelector("h1").focus();
    return;
  }
  const mine = ++routeSeq;
  // Each view renders into its own element, so a slow view that finishes after the
  // user moved on writes into a detached node, not over the next page.
  const root = document.createElement("div");
  root.className = "view";
  main.append(root);
  main.setAttribute("aria-busy", "true");
  titled = false;
  try {
    const done = await view(root);
    // Navigated away while this view was loading: undo it at once.
    if (mine !== routeSeq) {
      if (typeof done === "function") done();
      return;
    }
    cleanup = done;
    // Not busy once the view and my notifications are loaded and live.
    await ctx.notifications?.ready;
  } catch (err) {
    root.append(Object.assign(document.createElement("p"), { className: "form-error", textContent: errorText(err) }));
  } finally {
    if (mine === routeSeq) main.setAttribute("aria-busy", "false");
  }
  if (mine !== routeSeq) return;
  const heading = root.querySelector("h1");
  if (!titled) setTitle(heading?.textContent.trim() || null);
  const untouched = [focusedBefore, document.body, main, null].includes(document.activeElement);
  if (!moveFocus || !untouched) return;
  if (heading) {
    heading.tabIndex = -1;
    heading.focus({ preventScroll: true });
  } else {
    main.focus({ preventScroll: true });
  }
}

function paintStatus(status) {
  const labels = {
    idle: "conn.idle",
    connecting: "conn.connecting",
    open: "conn.open",
    reconnecting: "conn.reconnecting",
    waiting: "conn.reconnecting",
    closed: "conn.closed",
    ended: "conn.ended",
  };
  conn.dataset.status = status;
  // Trying to reach the server while the browser has no network at all: say offline.
  const noNetwork = navigator.onLine === false && ["connecting", "reconnecting", "waiting"].includes(status);
  conn.textContent = t(noNetwork ? "conn.offline" : labels[status] || "conn.idle");
}
for (const name of ["online", "offline"]) window.addEventListener(name, () => paintStatus(conn.dataset.status));

// The link's name is its visible text, then the unread count for screen readers (the
// badge's digits are only shown): "Notifications (3 unread)" (WCAG 2.5.3).
function paintUnread() {
  const n = ctx.notifications?.unread ?? 0;
  document.getElementById("notif-unread").textContent = n ? ` ${t("nav.unread", { count: n })}` : "";
}

function startSession(me) {
  ctx.me = me;
  document.body.dataset.handle = me.handle;
  topbar.hidden = false;
  for (const a of document.querySelectorAll("#nav-me, .nav-me-link")) a.href = `#/u/${enc(me.handle)}`;
  showModeration(isModerator(me));
  const hub = new EchoHub();
  ctx.hub = hub;
  hub.addEventListener("status", (e) => paintStatus(e.detail.status));
  hub.addEventListener("ended", (e) => {
    if (e.detail.code === 4003) {
      // Suspended: every session ended and the socket closed for good (no reconnect).
      endSession(t("session.suspended"));
    } else {
      toast(t("session.ended"));
      endSession();
    }
  });
  // No longer a moderator (demoted while the page is open): the server ends the `mod`
  // subscription with `forbidden`; the page stops offering moderation.
  hub.addEventListener("suberror", (e) => {
    if (e.detail.topic === "mod" && e.detail.error.code === "forbidden" && ctx.me) {
      ctx.me = { ...ctx.me, role: "member" };
      showModeration(false);
    }
  });
  // A deletion on any topic removes the post from every list on the page.
  hub.addEventListener("event", (e) => {
    if (e.detail.type === "post.deleted") removePostEverywhere(e.detail.data.id);
    // A reply seen on any topic counts on every card of the post it answers.
    else if (e.detail.type === "post.created" && e.detail.data?.reply_to) announceReply(e.detail.data);
  });
  ctx.notifications = new Notifications(hub, me);
  ctx.notifications.addEventListener("change", () => {
    const n = ctx.notifications.unread;
    badge.hidden = n === 0;
    badge.textContent = n > 99 ? "99+" : String(n);
    paintUnread();
  });
  ctx.notifications.addEventListener("like", (e) => {
    for (const card of document.querySelectorAll("[data-echo-id]")) {
      if (card.dataset.echoId === String(e.detail.data.echo)) card.dispatchEvent(new CustomEvent("echohub:liked"));
    }
  });
  for (const kind of ["reply", "mention"]) {
    ctx.notifications.addEventListener(kind, (e) => {
      const by = e.detail.data.by || {};
      if (!location.hash.startsWith("#/notifications")) toast(t(`notif.${kind}`, { who: by.display_name || by.handle }));
    });
  }
  ctx.notifications.addEventListener("footprint", (e) => {
    const v = e.detail.data.visitor;
    if (!location.hash.startsWith("#/footprints")) toast(t("footprints.visited", { name: v.display_name || v.handle }));
  });
  ctx.notifications.start();
  hub.connect();
}

function endSession(notice = null) {
  ctx.hub?.close();
  ctx.hub = null;
  ctx.me = null;
  ctx.notifications = null;
  signedOutNotice = notice;
  topbar.hidden = true;
  showModeration(false);
  paintStatus("idle");
  if (location.pathname !== "/") history.replaceState(null, "", "/");
  location.hash = "";
  route();
}

function onSignedIn(user) {
  signedOutNotice = null;
  if (location.pathname !== "/") history.replaceState(null, "", "/#/");
  else location.hash = "#/";
  startSession(user);
  route();
}

// Sign out: in the top bar, and in "More" on phones (where the top bar has no room).
const signOut = async () => {
  try {
    await post("/api/logout");
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 401) toast(errorText(err));
  }
  endSession();
};
for (const id of ["signout", "signout-more"]) document.getElementById(id).addEventListener("click", signOut);

window.addEventListener("echohub:unauthorized", () => {
  if (ctx.me) {
    toast(t("session.ended"));
    endSession();
  }
});
window.addEventListener("hashchange", route);

// "More" on phones: a disclosure. Escape or a click elsewhere closes it (focus back on
// the button when it was inside); following a link closes it too.
function closeMore({ refocus = false } = {}) {
  if (moreMenu.hidden) return;
  const inside = moreMenu.contains(document.activeElement);
  moreMenu.hidden = true;
  moreButton.setAttribute("aria-expanded", "false");
  if (refocus || inside) moreButton.focus();
}
moreButton.addEventListener("click", () => {
  const open = moreMenu.hidden;
  moreMenu.hidden = !open;
  moreButton.setAttribute("aria-expanded", String(open));
});
moreMenu.addEventListener("click", (e) => {
  if (e.target.closest("a, button")) {
    moreMenu.hidden = true;
    moreButton.setAttribute("aria-expanded", "false");
  }
});
document.addEventListener("keydown", (e) => {
  if (e.key === "Escape" && !moreMenu.hidden) closeMore({ refocus: true });
});
document.addEventListener("click", (e) => {
  if (!e.target.closest(".nav-more")) closeMore();
});

// The language switch: endonyms with their own `lang`, the same on every page.
const langSelect = document.getElementById("lang-select");
for (const { code, name } of LANGUAGES) {
  langSelect.append(Object.assign(document.createElement("option"), { value: code, textContent: name, lang: code }));
}
langSelect.value = currentLanguage();
langSelect.addEventListener("change", () => setLanguage(langSelect.value));
onLanguageChange((lang) => {
  langSelect.value = lang;
  translateStatic();
  paintStatus(conn.dataset.status);
  paintUnread();
  // The page is drawn again in the new language; focus goes back to the same control.
  const focused = document.activeElement?.id;
  route({ moveFocus: false }).then(() => {
    if (focused) document.getElementById(focused)?.focus();
  });
});
setInterval(() => refreshTimes(), 60_000);

/**
 * No server at all (offline, or the server is down) before the page knew who is
 * signed in: an honest offline page instead of a sign-in form that cannot work. It
 * tries again when the browser is back online, and on its own every few seconds.
 */
function offlineView() {
  const retry = () => {
    window.removeEventListener("online", retry);
    clearTimeout(timer);
    boot();
  };
  const heading = Object.assign(document.createElement("h1"), { textContent: t("offline.title"), tabIndex: -1 });
  const text = Object.assign(document.createElement("p"), { textContent: t("offline.body") });
  const button = Object.assign(document.createElement("button"), { type: "button", className: "primary", textContent: t("offline.retry") });
  button.addEventListener("click", retry);
  const box = document.createElement("section");
  box.className = "auth offline-page";
  box.append(heading, text, button);
  main.replaceChildren(box);
  main.setAttribute("aria-busy", "false");
  setTitle(t("offline.title"));
  window.addEventListener("online", retry);
  const timer = setTimeout(retry, 5000 + Math.random() * 5000);
}

async function boot() {
  try {
    const me = await api("GET", "/api/me");
    if (location.pathname.startsWith("/join/")) history.replaceState(null, "", "/#/");
    startSession(me);
  } catch (err) {
    if (err instanceof ApiError && err.status === 0) {
      offlineView();
      return;
    }
    if (!(err instanceof ApiError) || err.status !== 401) toast(errorText(err));
  }
  route();
}

/** The service worker keeps the shell (never API answers or media); see /sw.js. */
async function registerShell() {
  if (!("serviceWorker" in navigator)) return;
  try {
    await navigator.serviceWorker.register("/sw.js");
    const ready = await navigator.serviceWorker.ready;
    // Everything this page loaded that belongs to the shell, so it opens offline.
    const urls = [location.origin + "/", ...performance.getEntriesByType("resource").map((e) => e.name)];
    ready.active?.postMessage({ cache: urls });
  } catch {
    // No service worker (private mode, an old browser): the page works as before.
  }
}

boot();
// After the page's own loads (top-level await above may finish after `load`).
if (document.readyState === "complete") registerShell();
else window.addEventListener("load", registerShell);
