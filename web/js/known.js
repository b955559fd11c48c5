// Ids this browser has met (events, communities), per member, in localStorage: the
// fallback for listing pages when the server offers no listing endpoint.

const KEEP = 50;

function key(me, kind) {
  return `echohub:known:${kind}:${me.handle}`;
}

export function remembered(me, kind) {
  try {
    const ids = JSON.parse(localStorage.getItem(key(me, kind)) || "[]");
    return Array.isArray(ids) ? ids.map(String) : [];
  } catch {
    return [];
  }
}

export function remember(me, kind, id) {
  const ids = remembered(me, kind).filter((x) => x !== String(id));
  ids.unshift(String(id));
  try {
    localStorage.setItem(key(me, kind), JSON.stringify(ids.slice(0, KEEP)));
  } catch {
    // Storage unavailable: the list is just shorter.
  }
}
