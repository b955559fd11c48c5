// Finding people and echoes: the search box in the top bar (members as you type), the
// search page (members and echoes for a query), and "people you may know" for empty
// home and Discover pages.

import { api, enc, post, withQuery } from "../api.js";
import { FeedList, memberLink, toast } from "../components.js";
import { h, replace } from "../dom.js";
import { errorText, t } from "../i18n.js";

// Wait for a pause in typing before asking (the server limits searches per minute).
const DEBOUNCE_MS = 250;
const BOX_RESULTS = 6;

/** A member row: name and @handle linking to the profile, the bio, and a follow
 * button unless one follows them already. */
export function memberRow(member, ctx, { note = null } = {}) {
  const row = h("li.member-row", null, h("div.member-row-names", null, memberLink(member),
    member.bio ? h("p.member-bio.muted", null, member.bio) : null,
    note ? h("p.member-note.muted", null, note) : null));
  if (member.handle !== ctx.me.handle && !member.following) {
    const follow = h("button.plain", { type: "button" }, t("profile.follow"));
    follow.addEventListener("click", async () => {
      follow.disabled = true;
      try {
        await post(`/api/users/${enc(member.handle)}/follow`);
        replace(follow, t("profile.following"));
        follow.setAttribute("aria-pressed", "true");
        ctx.hub.resubscribe("home");
      } catch (err) {
        toast(errorText(err));
        follow.disabled = false;
      }
    });
    row.append(follow);
  }
  return row;
}

/** "People you may know": members several of one's friends follow. Resolves to the
 * card, or null when there is nobody to suggest. */
export async function suggestionsCard(ctx) {
  let page;
  try {
    page = await api("GET", "/api/suggestions");
  } catch {
    return null;
  }
  if (!page.items.length) return null;
  const id = `people-${Math.random().toString(36).slice(2, 7)}`;
  return h("section.card.suggestions", { "aria-labelledby": id },
    h("h2", { id }, t("people.title")),
    h("ul.member-list", null, page.items.map((m) =>
      memberRow(m, ctx, { note: t("people.friendsFollow", { count: m.friends }) }))));
}

/** The search box in the top bar: members as you type, and a link to search echoes. */
export function mountSearchBox(form, ctx) {
  const input = form.querySelector("input[type=search]");
  const results = form.querySelector(".search-results");
  const status = form.querySelector(".search-status");
  let timer = null;
  let asked = 0;
  // A search box may not carry aria-expanded: the live status says what was found,
  // and the results follow the box (Tab or the arrow keys reach them).
  const close = () => {
    results.hidden = true;
  };
  const show = (query, items) => {
    const postsLink = h("li", null, h("a.search-posts", { href: `#/search/${enc(query)}` },
      t("search.postsFor", { q: query })));
    replace(results,
      items.map((m) => h("li", null, memberLink(m))),
      items.length ? null : h("li.muted.search-none", null, t("search.noMembers")),
      postsLink);
    results.hidden = false;
    status.textContent = t("search.found", { count: items.length });
  };
  const ask = async () => {
    const query = input.value.trim();
    const mine = ++asked;
    if (!query) {
      close();
      status.textContent = "";
      return;
    }
    try {
      const page = await api("GET", withQuery("/api/search", { q: query, limit: BOX_RESULTS }));
      if (mine === asked) show(query, page.items);
    } catch (err) {
      if (mine !== asked) return;
      replace(results, h("li.muted", null, errorText(err)));
      results.hidden = false;
    }
  };
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(ask, DEBOUNCE_MS);
  });
  input.addEventListener("focus", () => {
    if (input.value.trim() && results.children.length) {
      results.hidden = false;
    }
  });
  form.addEventListener("keydown", (e) => {
    const links = [...results.querySelectorAll("a")];
    const at = links.indexOf(document.activeElement);
    if (e.key === "Escape") {
      close();
      input.focus();
    } else if (e.key === "ArrowDown" && !results.hidden && links.length) {
      e.preventDefault();
      links[Math.min(at + 1, links.length - 1)].focus();
    } else if (e.key === "ArrowUp" && at >= 0) {
      e.preventDefault();
      if (at === 0) input.focus();
      else links[at - 1].focus();
    }
  });
  // Enter searches echoes for what was typed.
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const query = input.value.trim();
    if (query) {
      close();
      ctx.navigate(`#/search/${enc(query)}`);
    }
  });
  results.addEventListener("click", (e) => {
    if (e.target.closest("a")) {
      close();
      input.value = "";
    }
  });
  document.addEventListener("click", (e) => {
    if (!form.contains(e.target)) close();
  });
}

/** The search page: the members and the echoes a query finds. */
export async function searchView(root, { query }, ctx) {
  ctx.setTitle?.(t("search.title", { q: query }));
  const members = h("ul.member-list");
  const membersBox = h("section.card", { "aria-labelledby": "search-members" },
    h("h2", { id: "search-members" }, t("search.members")), members);
  const echoes = new FeedList({
    url: withQuery("/api/search", { q: query, type: "posts" }),
    ctx,
    label: t("search.posts"),
    empty: t("search.noPosts"),
  });
  root.append(h("h1", null, t("search.title", { q: query })), membersBox,
    h("h2", null, t("search.posts")), echoes.el);
  const [page] = await Promise.all([
    api("GET", withQuery("/api/search", { q: query, limit: 20 })).catch((err) => ({ error: err })),
    echoes.start(),
  ]);
  if (page.error) replace(members, h("li.form-error", null, errorText(page.error)));
  else if (!page.items.length) replace(members, h("li.muted", null, t("search.noMembers")));
  else replace(members, page.items.map((m) => memberRow(m, ctx)));
  return () => echoes.stop();
}
