// JSON over HTTP with the session cookie. Every failure becomes an ApiError carrying
// the server's `{code, message, field}` so forms can show the message by the field.

export class ApiError extends Error {
  constructor(status, { code = "error", message = "Something went wrong", field = null } = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
  }
}

// The session's CSRF token, from the last answer that carried it (sign-in, sign-up,
// /api/me). Browsers also send Origin or Sec-Fetch-Site, which the server checks first;
// the token covers those that send neither (plain http on a LAN address gets no
// Sec-Fetch-Site), for changes and for profile views that should leave a footprint.
let csrfToken = null;

export async function api(method, path, body) {
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
  if (csrfToken) init.headers["X-CSRF-Token"] = csrfToken;
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(path, init);
  } catch {
    throw new ApiError(0, { code: "offline", message: "Cannot reach the server. Retrying may help." });
  }
  const token = resp.headers.get("X-CSRF-Token");
  if (token) csrfToken = token;
  let data = null;
  const text = await resp.text();
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!resp.ok) {
    const err = new ApiError(resp.status, data?.error ?? { message: `${resp.status} ${resp.statusText}` });
    if (resp.status === 401 && path !== "/api/login" && path !== "/api/signup") {
      window.dispatchEvent(new CustomEvent("echohub:unauthorized"));
    }
    throw err;
  }
  return data;
}

/**
 * Send a multipart form (a file upload): the browser sets its content type with the
 * boundary; the session's CSRF token goes along as with every change.
 */
export async function upload(path, form) {
  const init = { method: "POST", credentials: "same-origin", headers: { Accept: "application/json" }, body: form };
  if (csrfToken) init.headers["X-CSRF-Token"] = csrfToken;
  let resp;
  try {
    resp = await fetch(path, init);
  } catch {
    throw new ApiError(0, { code: "offline", message: "Cannot reach the server. Retrying may help." });
  }
  const data = await resp.json().catch(() => null);
  if (!resp.ok) throw new ApiError(resp.status, data?.error ?? { message: `${resp.status} ${resp.statusText}` });
  return data;
}

export const get = (path) => api("GET", path);
export const post = (path, body = {}) => api("POST", path, body);
export const put = (path, body = {}) => api("PUT", path, body);
export const patch = (path, body = {}) => api("PATCH", path, body);
export const del = (path) => api("DELETE", path);

/** `/api/x?before=…&limit=…` with only the parameters that are set. */
export function withQuery(path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v != null) q.set(k, v);
  const s = q.toString();
  if (!s) return path;
  return `${path}${path.includes("?") ? "&" : "?"}${s}`;
}

export const enc = encodeURIComponent;
