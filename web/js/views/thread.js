// A post's own page (`#/e/{id}`, its permalink): the conversation above it, the post,
// a reply composer, and its replies oldest first, live. And a tag's page (`#/t/{tag}`).

import { api, enc, withQuery } from "../api.js";
import { announceReply, composer, createEcho, FeedList, postCard, removePostEverywhere, toast } from "../components.js";
import { h } from "../dom.js";
import { errorText, t } from "../i18n.js";

const PAGE = 25;

export async function threadView(root, { id }, ctx) {
  const heading = h("h1", null, t("thread.title"));
  root.append(heading);
  let data;
  try {
    data = await api("GET", withQuery(`/api/echoes/${enc(id)}/thread`, { limit: PAGE }));
  } catch (err) {
    root.append(h("p.empty", null, err.status === 404 ? t("thread.gone") : errorText(err)));
    return null;
  }
  const ids = new Set();
  const replies = h("ol.thread-replies", { "aria-label": t("thread.replies") });
  const empty = h("p.empty", null, t("thread.noReplies"));
  const more = h("button.more", { type: "button", hidden: true }, t("feed.loadMore"));
  let next = null;
  const paint = () => {
    empty.hidden = replies.children.length > 0;
    more.hidden = next == null;
  };
  const addReply = (p) => {
    if (ids.has(p.id)) return;
    ids.add(p.id);
    replies.append(h("li", null, postCard(p, ctx)));
    paint();
  };
  const addPage = (page) => {
    next = page.next;
    for (const p of page.items) addReply(p);
    paint();
  };
  more.addEventListener("click", async () => {
    more.disabled = true;
    try {
      addPage(await api("GET", withQuery(`/api/echoes/${enc(id)}/thread`, { before: next, limit: PAGE })));
    } catch (err) {
      toast(errorText(err));
    } finally {
      more.disabled = false;
    }
  });
  const main = postCard(data.post, ctx);
  main.classList.add("thread-post");
  const form = composer({
    placeholder: t("echo.replyPlaceholder"),
    label: t("echo.replyLabel", { name: data.post.author.display_name || data.post.author.handle }),
    extra: () => ({ reply_to: data.post.id }),
    onPost: async (body) => {
      const created = await createEcho(body);
      toast(t("echo.replied"));
      announceReply(created);
    },
  });
  if (data.post.visibility === "friends") form.querySelector("select.visibility").value = "friends";
  root.append(
    data.ancestors.length
      ? h("ol.thread-ancestors", { "aria-label": t("thread.ancestors") },
          ...data.ancestors.map((p) => h("li", null, postCard(p, ctx))))
      : "",
    main,
    form,
    h("h2", null, t("thread.replies")),
    replies,
    empty,
    more,
  );
  // My counts and lists see replies as they come: mine from this page, others' live.
  // Counted once whichever way they arrive (the card keeps the ids it counted).
  const onReply = (e) => {
    if (e.detail.reply_to === data.post.id) addReply(e.detail);
  };
  document.addEventListener("echohub:reply", onReply);
  const onEvent = (ev) => {
    if (ev.type === "post.created" && ev.data.reply_to) announceReply(ev.data);
    else if (ev.type === "post.deleted") removePostEverywhere(ev.data.id);
  };
  const offs = [ctx.hub.subscribe("public", onEvent), ctx.hub.subscribe("home", onEvent)];
  addPage(data);
  return () => {
    document.removeEventListener("echohub:reply", onReply);
    for (const off of offs) off();
  };
}

/** Whether wire segments carry the tag `tag` (a leaf the server made; no text parsing). */
export function hasTag(segments, tag) {
  return (segments || []).some((s) => s.tag === tag || (Array.isArray(s.children) && hasTag(s.children, tag)));
}

export async function tagView(root, { tag }, ctx) {
  const feed = new FeedList({
    url: `/api/tags/${enc(tag)}`,
    topic: "public",
    accept: (p) => hasTag(p.segments, tag),
    ctx,
    label: t("tag.label", { tag }),
    empty: t("tag.empty"),
  });
  root.append(h("h1", null, t("tag.title", { tag })), feed.el);
  await feed.start();
  return () => feed.stop();
}
