// Building DOM safely. User data only ever becomes text nodes or attribute values set
// through the DOM API; nothing here (or anywhere in web/) assigns innerHTML.

import { formatDate, formatWhen, relativeTime } from "./i18n.js";

/**
 * `h("a.link", {href: "#/"}, "text", child)`: an element with classes from the tag,
 * properties/attributes from `props` (`on*` functions become listeners, `class`,
 * `dataset`, `aria-*` and others become attributes), and children (strings become
 * text nodes; null/false are skipped; arrays are flattened).
 */
export function h(tag, props, ...children) {
  const [name, ...classes] = tag.split(".");
  const el = document.createElement(name || "div");
  if (classes.length) el.className = classes.join(" ");
  if (props) {
    for (const [key, value] of Object.entries(props)) {
      if (value == null || value === false) continue;
      if (key.startsWith("on") && typeof value === "function") {
        el.addEventListener(key.slice(2).toLowerCase(), value);
      } else if (key === "class") {
        el.classList.add(...String(value).split(/\s+/).filter(Boolean));
      } else if (key === "dataset") {
        Object.assign(el.dataset, value);
      } else if (key === "style" && typeof value === "object") {
        for (const [prop, v] of Object.entries(value)) el.style.setProperty(prop, v);
      } else if (key in el && !key.includes("-") && key !== "list" && key !== "form") {
        el[key] = value;
      } else {
        el.setAttribute(key, value === true ? "" : String(value));
      }
    }
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child == null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Replace all children of `el`. */
export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

/** A <time> with a relative label ("3 minutes ago") and the full date as its title. */
export function timeEl(iso) {
  const date = new Date(iso);
  return h("time", { dateTime: iso, title: formatDate(date) }, relativeTime(date));
}

export const ago = (date, now = Date.now()) => relativeTime(date, now);
export { formatDate };

/** Refresh every relative time under `root` (called once a minute). */
export function refreshTimes(root = document) {
  for (const el of root.querySelectorAll("time[datetime]")) {
    const date = new Date(el.dateTime);
    if (el.dataset.absolute) {
      el.textContent = formatWhen(date);
    } else {
      el.textContent = relativeTime(date);
      el.title = formatDate(date);
    }
  }
}
