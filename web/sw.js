// The service worker: keeps the static shell (the page, its scripts, styles, catalogues
// and icons) so Echo Hub opens, installs on a phone's home screen, and says honestly
// that it is offline when there is no network.
//
// What it never keeps: API answers, the socket, anyone's media, anything not in the
// shell. The shell is served network-first: while the server answers, every load gets
// the current files (no stale script survives a deploy, or another test's change); the
// cache is only the fallback when the network fails. A new VERSION drops old caches.

const VERSION = "shell-v1";
const SHELL = ["/", "/css/app.css", "/js/app.js", "/js/i18n.js", "/js/i18n/en.json", "/js/i18n/ja.json",
  "/manifest.webmanifest", "/img/icon.svg"];

/** Same-origin paths that belong to the shell; everything else passes through. */
function inShell(url) {
  if (url.origin !== self.location.origin) return false;
  const p = url.pathname;
  return p === "/" || p === "/manifest.webmanifest" || /^\/(js|css|img)\//.test(p);
}

self.addEventListener("install", (event) => {
  // `reload`: straight from the network, never the HTTP cache's copy.
  event.waitUntil(caches.open(VERSION).then((cache) => cache.addAll(SHELL.map((u) => new Request(u, { cache: "reload" }))))
    .then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((names) => Promise.all(names.filter((n) => n !== VERSION).map((n) => caches.delete(n))))
      .then(() => self.clients.claim()),
  );
});

// The page lists the shell files it loaded (its modules vary with the views), so the
// whole shell is there offline after one visit. Only shell paths are accepted.
self.addEventListener("message", (event) => {
  const urls = Array.isArray(event.data?.cache) ? event.data.cache : [];
  const wanted = urls.map((u) => new URL(u, self.location.origin)).filter(inShell).slice(0, 200);
  event.waitUntil(caches.open(VERSION).then((cache) => Promise.all(wanted.map((u) =>
    cache.match(u.pathname).then((hit) => hit || cache.add(new Request(u.pathname, { cache: "reload" })).catch(() => null))))));
});

self.addEventListener("fetch", (event) => {
  const { request } = event;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  // A page load under any path (/, /join/<code>) is the shell; nothing else is touched.
  const navigation = request.mode === "navigate" && url.origin === self.location.origin;
  if (!navigation && !inShell(url)) return;
  const key = navigation ? "/" : url.pathname;
  event.respondWith(networkFirst(request, key));
});

async function networkFirst(request, key) {
  const cache = await caches.open(VERSION);
  try {
    const response = await fetch(request);
    if (response.ok && response.type === "basic") cache.put(key, response.clone());
    return response;
  } catch (err) {
    const cached = await cache.match(key);
    if (cached) return cached;
    throw err;
  }
}
