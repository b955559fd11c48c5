// Rendering an Echo from the server's `segments`. The server has already parsed the
// markup; this only maps the tree to elements. Text goes in as text nodes, so no post
// can inject markup, whatever it contains.

import { h } from "./dom.js";

export const KNOWN_EFFECTS = new Set(["shake", "big"]);

const WEB_LINK = /^https?:\/\//i;

/** The element for a mention, link or tag leaf, or null for plain text. The server
 * found them (clients never parse text); a link is followed only if it is http(s). */
function leafLink(seg) {
  if (typeof seg.mention === "string") {
    return h("a.mention", { href: `#/u/${encodeURIComponent(seg.mention)}` }, seg.text);
  }
  if (typeof seg.tag === "string") {
    return h("a.tag", { href: `#/t/${encodeURIComponent(seg.tag)}` }, seg.text);
  }
  if (typeof seg.link === "string" && WEB_LINK.test(seg.link)) {
    return h("a.link", { href: seg.link, rel: "noopener nofollow ugc", target: "_blank" }, seg.text);
  }
  return null;
}

/** A DocumentFragment for wire segments (`{text}`, `{effect, children}`, and
 * `{mention|link|tag, text}`). */
export function renderSegments(segments, depth = 0) {
  const frag = document.createDocumentFragment();
  for (const seg of segments || []) {
    if (typeof seg.text === "string") {
      frag.append(leafLink(seg) || document.createTextNode(seg.text));
    } else if (seg && Array.isArray(seg.children)) {
      // An effect this client does not know still shows its text, unstyled.
      const known = KNOWN_EFFECTS.has(seg.effect) && depth < 2;
      const span = h("span", { class: known ? `fx fx-${seg.effect}` : "fx" });
      span.append(renderSegments(seg.children, depth + 1));
      frag.append(span);
    }
  }
  return frag;
}

/** Render a post's body: its segments, or its plain text when segments are missing. */
export function renderBody(post) {
  const body = h("p.echo-text", { lang: guessLang(post.text) });
  if (Array.isArray(post.segments) && post.segments.length) {
    body.append(renderSegments(post.segments));
  } else {
    body.append(document.createTextNode(post.text ?? ""));
  }
  return body;
}

const KANA_OR_HAN = /[\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Han}]/u;

/** `ja` for text with kana or kanji, so CJK fonts and line breaking are Japanese. */
export function guessLang(text) {
  return KANA_OR_HAN.test(text || "") ? "ja" : null;
}
