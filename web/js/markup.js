// Effect markup and character counting, ported from server/domain/effects.py and
// server/domain/echo.py so the composer's counter and errors agree with the server.
//
// Pure: no DOM. Positions in error messages are code points of the NFC source, as the
// server counts them. The server stays the authority; this is only a preview.

export const EFFECTS = ["shake", "big"];
export const MAX_DEPTH = 2;
export const MAX_GRAPHEMES = 150;
export const MAX_BYTES = 4096;
export const MAX_MARKS_PER_GRAPHEME = 8;

const LINE_BREAKS = new Set("\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029");
const BIDI_CONTROLS = new Set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069");
const BLANK = /^[\s\p{Default_Ignorable_Code_Point}]*$/u;
const CONTROL = /^[\p{Cc}\p{Cs}]$/u;
const MARK = /[\p{Mn}\p{Me}]/gu;
// An effect name runs to the first space, bracket, dollar or backslash. (JS `\s` also
// matches U+FEFF, which Python's does not; it is part of a name there.)
const NAME_STOP = /[\s[\]$\\]/u;
const endsName = (ch) => ch !== "\ufeff" && NAME_STOP.test(ch);
const NAME_IN_MESSAGE = 20;

const segmenter =
  typeof Intl !== "undefined" && Intl.Segmenter
    ? new Intl.Segmenter(undefined, { granularity: "grapheme" })
    : null;

/** A markup error as the server reports it: `code`, `message`, `field: "text"`. */
export class MarkupError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
    this.field = "text";
  }
}

/** True if `text` has no visible character (whitespace and default-ignorables only). */
export function isBlank(text) {
  return BLANK.test(text);
}

/** Extended grapheme clusters in `text` (the server's `visible_length`). */
export function visibleLength(text) {
  if (!segmenter) return Array.from(text).length;
  let n = 0;
  for (const _ of segmenter.segment(text)) n += 1;
  return n;
}

/** The graphemes of `text`, for renderers that animate per character. */
export function graphemes(text) {
  if (!segmenter) return Array.from(text);
  return Array.from(segmenter.segment(text), (s) => s.segment);
}

/** The most combining marks (Mn, Me) in one grapheme of `text` (the server's rule). */
export function mostMarksInAGrapheme(text) {
  let most = 0;
  for (const g of graphemes(text)) most = Math.max(most, (g.match(MARK) || []).length);
  return most;
}

function shown(name) {
  const cps = Array.from(name);
  return `'${cps.length > NAME_IN_MESSAGE ? cps.slice(0, NAME_IN_MESSAGE).join("") + "…" : name}'`;
}

function opensAt(cps, i) {
  return cps[i] === "$" && cps[i + 1] === "[";
}

/** Recursive descent over code points; `pos` only moves forward (as on the server). */
class Parser {
  constructor(source) {
    this.cps = Array.from(source);
    this.pos = 0;
  }

  sequence(depth, opened) {
    const cps = this.cps;
    const end = cps.length;
    const out = [];
    let buf = "";
    let closed = false;
    while (this.pos < end) {
      const ch = cps[this.pos];
      if (ch === "\\") {
        let runEnd = this.pos;
        while (runEnd < end && cps[runEnd] === "\\") runEnd += 1;
        const run = runEnd - this.pos;
        if (opensAt(cps, runEnd)) {
          buf += "\\".repeat(Math.floor(run / 2));
          if (run % 2) {
            buf += "$[";
            runEnd += 2;
          }
        } else {
          buf += "\\".repeat(run);
        }
        this.pos = runEnd;
      } else if (opensAt(cps, this.pos)) {
        if (buf) {
          out.push({ text: buf });
          buf = "";
        }
        out.push(this.effect(depth + 1));
      } else if (ch === "]" && opened) {
        this.pos += 1;
        closed = true;
        break;
      } else {
        buf += ch;
        this.pos += 1;
      }
    }
    if (!closed && opened) {
      throw new MarkupError(
        "unclosed_effect",
        `effect ${shown(opened.name)} at position ${opened.at} is never closed`,
      );
    }
    if (buf) out.push({ text: buf });
    return out;
  }

  effect(depth) {
    const cps = this.cps;
    const at = this.pos;
    if (depth > MAX_DEPTH) {
      throw new MarkupError(
        "effects_too_deep",
        `effects nest at most ${MAX_DEPTH} deep; the effect at position ${at} is ${depth} deep`,
      );
    }
    let p = at + 2;
    let name = "";
    while (p < cps.length && !endsName(cps[p])) name += cps[p++];
    this.pos = p;
    const atEnd = p >= cps.length;
    if (atEnd && (!name || EFFECTS.includes(name))) {
      throw new MarkupError("unclosed_effect", `'$[' at position ${at} is never closed`);
    }
    if (!name) throw new MarkupError("unknown_effect", `missing effect name at position ${at}`);
    if (!EFFECTS.includes(name)) {
      throw new MarkupError("unknown_effect", `unknown effect ${shown(name)} at position ${at}`);
    }
    if (cps[p] !== " ") {
      throw new MarkupError(
        "unknown_effect",
        `effect ${shown(name)} at position ${at} must be followed by one space`,
      );
    }
    this.pos += 1;
    const children = this.sequence(depth, { at, name });
    if (isBlank(plainText(children))) {
      throw new MarkupError("empty_effect", `empty effect ${shown(name)} at position ${at}`);
    }
    return { effect: name, children };
  }
}

/** Segments of `source` in the wire form (`{text}` / `{effect, children}`), or throws. */
export function parseMarkup(source) {
  return new Parser(source).sequence(0, null);
}

/** The visible text of wire-form segments. */
export function plainText(segments) {
  let out = "";
  for (const s of segments) out += "text" in s ? s.text : plainText(s.children);
  return out;
}

function describe(ch) {
  return "U+" + ch.codePointAt(0).toString(16).toUpperCase().padStart(4, "0");
}

/**
 * Everything the composer needs about a draft, checked in the server's order.
 * Returns `{length, remaining, segments, text, error}`; `error` is null or
 * `{code, message, field}`; `length` counts visible characters even when the text
 * is too long (and is the best effort count of the raw text when markup is broken).
 */
export function checkEcho(raw) {
  const source = raw.normalize("NFC");
  const result = { length: 0, remaining: MAX_GRAPHEMES, segments: [], text: "", error: null };
  const fail = (code, message) => {
    result.error = { code, message, field: "text" };
    return result;
  };
  const count = (text) => {
    result.length = visibleLength(text);
    result.remaining = MAX_GRAPHEMES - result.length;
  };
  count(source);
  if (!source) return fail("text_required", "text is required");
  const size = new TextEncoder().encode(source).length;
  if (size > MAX_BYTES) {
    return fail("text_too_large", `text is ${size} bytes of UTF-8; the limit is ${MAX_BYTES}`);
  }
  const cps = Array.from(source);
  let at = cps.findIndex((ch) => LINE_BREAKS.has(ch));
  if (at >= 0) return fail("text_multiline", `text must be one line; line break at position ${at}`);
  at = cps.findIndex((ch) => BIDI_CONTROLS.has(ch) || CONTROL.test(ch));
  if (at >= 0) {
    return fail(
      "text_control_character",
      `control character ${describe(cps[at])} at position ${at} is not allowed`,
    );
  }
  try {
    result.segments = parseMarkup(source);
  } catch (err) {
    if (err instanceof MarkupError) return fail(err.code, err.message);
    throw err;
  }
  result.text = plainText(result.segments);
  count(result.text);
  if (isBlank(result.text)) return fail("text_blank", "text must contain a visible character");
  if (result.length > MAX_GRAPHEMES) {
    return fail("text_too_long", `text is ${result.length} characters; the limit is ${MAX_GRAPHEMES}`);
  }
  const most = mostMarksInAGrapheme(result.text);
  if (most > MAX_MARKS_PER_GRAPHEME) {
    return fail(
      "text_too_many_marks",
      `text has a character with ${most} combining marks; the limit is ${MAX_MARKS_PER_GRAPHEME}`,
    );
  }
  return result;
}

/**
 * Wrap `value.slice(start, end)` in `$[effect …]` and return `{value, start, end}` with
 * the new selection around the wrapped text. An empty selection inserts `$[effect ]`
 * with the caret inside. A `]` inside the selection would end the effect early, so the
 * selection is refused (returns null) rather than producing different text.
 */
export function wrapSelection(value, start, end, effect) {
  const inner = value.slice(start, end);
  if (inner.includes("]")) return null;
  const open = `$[${effect} `;
  const next = value.slice(0, start) + open + inner + "]" + value.slice(end);
  return { value: next, start: start + open.length, end: start + open.length + inner.length };
}
