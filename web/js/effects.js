// Rendering an Echo from the server's `segments`. The server has already parsed the
// markup; this only maps the tree to elements. Text goes in as text nodes, so no post
// can inject markup, whatever it contains.

import { h } from "./dom.js";

export const KNOWN_EFFECTS = new Set(["shake", "big"]);

/** A DocumentFragment for wire segments (`{text}` / `{effect, children}`). */
export function renderSegments(segments, depth = 0) {
  const frag = document.createDocumentFragment();
  for (const seg of segments || []) {
    if (typeof seg.text === "string") {
      frag.append(document.createTextNode(seg.text));
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
