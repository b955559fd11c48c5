// Languages: one catalogue per language (web/js/i18n/<lang>.json, the same keys in
// each), the chosen locale, and the Intl helpers that format numbers, plurals, dates
// and relative times in it. Views never hold user-facing literals: they call
// `t("nav.home")`, `t("nav.unread", { count: 3 })`.
//
// A catalogue value is a string with `{param}` placeholders, or, for counts, an object
// of plural categories (`{"one": "{count} member", "other": "{count} members"}`)
// chosen by `Intl.PluralRules` from `params.count`. The language follows the browser
// unless the member picked one in the page; the pick is remembered in localStorage.

export const LANGUAGES = [
  // Endonyms: a language's own name, marked with its `lang`, is the same on every page.
  { code: "ja", name: "日本語" },
  { code: "en", name: "English" },
];
const SUPPORTED = new Set(LANGUAGES.map((l) => l.code));
const FALLBACK = "en";
const STORAGE_KEY = "echohub:lang";

let lang = FALLBACK;
let catalogue = {};
let fallback = {};
let plurals = new Intl.PluralRules(FALLBACK);
let numbers = new Intl.NumberFormat(FALLBACK);
let relative = new Intl.RelativeTimeFormat(FALLBACK, { numeric: "auto" });
let absolute = new Intl.DateTimeFormat(FALLBACK, { dateStyle: "medium", timeStyle: "short" });
const listeners = new Set();

/** The language for this visit: the remembered pick, else the browser's first known. */
export function preferredLanguage(stored = readStored(), wanted = navigator.languages || [navigator.language]) {
  if (stored && SUPPORTED.has(stored)) return stored;
  for (const tag of wanted) {
    const base = String(tag || "").toLowerCase().split("-")[0];
    if (SUPPORTED.has(base)) return base;
  }
  return FALLBACK;
}

function readStored() {
  try {
    return localStorage.getItem(STORAGE_KEY);
  } catch {
    return null;
  }
}

async function fetchCatalogue(code) {
  // `no-cache`: revalidated on every load, so a new key never meets an old catalogue.
  const resp = await fetch(new URL(`./i18n/${code}.json`, import.meta.url), { cache: "no-cache" });
  if (!resp.ok) throw new Error(`catalogue ${code}: ${resp.status}`);
  return resp.json();
}

function use(code, data) {
  lang = code;
  catalogue = data;
  plurals = new Intl.PluralRules(code);
  numbers = new Intl.NumberFormat(code);
  relative = new Intl.RelativeTimeFormat(code, { numeric: "auto" });
  absolute = new Intl.DateTimeFormat(code, { dateStyle: "medium", timeStyle: "short" });
  document.documentElement.lang = code;
}

/** Load the preferred language (and English, the fallback for a missing key). */
export async function loadLanguage(code = preferredLanguage()) {
  const [data, en] = await Promise.all([
    fetchCatalogue(code).catch(() => null),
    code === FALLBACK ? null : fetchCatalogue(FALLBACK).catch(() => ({})),
  ]);
  if (data == null) {
    // The shell is offline or the catalogue is gone: English, or nothing at all.
    fallback = en ?? {};
    use(FALLBACK, fallback);
    return lang;
  }
  fallback = en ?? data;
  use(code, data);
  return lang;
}

/** Switch language in the page: remember the pick, load it, tell the listeners. */
export async function setLanguage(code) {
  if (!SUPPORTED.has(code)) throw new Error(`unsupported language ${code}`);
  try {
    localStorage.setItem(STORAGE_KEY, code);
  } catch {
    // Storage disabled: the pick lasts for this page only.
  }
  await loadLanguage(code);
  for (const fn of listeners) fn(lang);
}

/** `fn(lang)` after every switch; returns the unsubscribe function. */
export function onLanguageChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

export const currentLanguage = () => lang;

/** Whether the catalogue has `key` (e.g. a translation for a server error code). */
export function has(key) {
  return Object.hasOwn(catalogue, key) || Object.hasOwn(fallback, key);
}

/**
 * The text for `key` in the current language, placeholders filled from `params`.
 * A plural entry picks its form from `params.count` (formatted for the locale).
 * A missing key shows the key itself, so it is seen and fixed, never hidden.
 */
export function t(key, params = {}) {
  let value = Object.hasOwn(catalogue, key) ? catalogue[key] : fallback[key];
  let rules = plurals;
  if (!Object.hasOwn(catalogue, key) && Object.hasOwn(fallback, key)) rules = new Intl.PluralRules(FALLBACK);
  if (value == null) return key;
  if (typeof value === "object") {
    const count = Number(params.count ?? 0);
    value = value[rules.select(count)] ?? value.other;
  }
  return String(value).replace(/\{(\w+)\}/g, (whole, name) => {
    if (!Object.hasOwn(params, name)) return whole;
    const v = params[name];
    return typeof v === "number" ? numbers.format(v) : String(v);
  });
}

/**
 * Like `t`, for a sentence with elements in it (a member's link, an event's title):
 * a list of strings and the nodes from `params`, in the language's own word order.
 * `tParts("notif.like", { who: memberLink(m) })` -> [<a>, "さんがイイネ！しました"].
 */
export function tParts(key, params = {}) {
  const strings = {};
  for (const [k, v] of Object.entries(params)) if (!(v instanceof Node)) strings[k] = v;
  return t(key, strings)
    .split(/(\{\w+\})/)
    .filter(Boolean)
    .map((part) => {
      const name = part.match(/^\{(\w+)\}$/)?.[1];
      return name && params[name] instanceof Node ? params[name] : part;
    });
}

/** A server error (an ApiError or `{code, message}`) in the member's language. */
export function errorText(err) {
  const code = err?.code;
  if (code && has(`error.${code}`)) return t(`error.${code}`, err.params || {});
  return err?.message || t("error.unknown");
}

export const formatNumber = (n) => numbers.format(n);

/** A date and time in the locale (`2026年12月5日 21:00` / `Dec 5, 2026, 9:00 PM`). */
export function formatDate(date, options = null) {
  const d = date instanceof Date ? date : new Date(date);
  return options ? new Intl.DateTimeFormat(lang, options).format(d) : absolute.format(d);
}

/** A day and time to plan by: "Tue, Dec 8, 2026, 3:00 AM" / "2026年12月8日(火) 3:00". */
export function formatWhen(date) {
  return formatDate(date, { year: "numeric", month: "short", day: "numeric", weekday: "short", hour: "numeric", minute: "2-digit" });
}

/** "3 minutes ago" / "3 分前"; past a week, the date itself. */
export function relativeTime(date, now = Date.now()) {
  const d = date instanceof Date ? date : new Date(date);
  const seconds = Math.round((d.getTime() - now) / 1000);
  const abs = Math.abs(seconds);
  if (abs < 45) return relative.format(0, "second");
  if (abs < 3600) return relative.format(Math.round(seconds / 60), "minute");
  if (abs < 86400) return relative.format(Math.round(seconds / 3600), "hour");
  if (abs < 86400 * 7) return relative.format(Math.round(seconds / 86400), "day");
  return absolute.format(d);
}

/**
 * Translate the static page: `data-i18n` sets the text, `data-i18n-<attr>` an
 * attribute (`data-i18n-aria-label="nav.home"`).
 */
export function translateStatic(root = document) {
  for (const el of root.querySelectorAll("*")) {
    for (const { name, value } of [...el.attributes]) {
      if (name === "data-i18n") el.textContent = t(value);
      else if (name.startsWith("data-i18n-")) el.setAttribute(name.slice("data-i18n-".length), t(value));
    }
  }
}
