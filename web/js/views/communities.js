// Communities: browse and create; a community's page with join (or request), pending
// requests for the owner, and its feed (live on `community:{id}`).

import { api, enc, post } from "../api.js";
import { FeedList, composer, createEcho, field, handleForm, memberLink, reloadWhenBack, toast } from "../components.js";
import { h, replace } from "../dom.js";
import { guessLang } from "../effects.js";
import { errorText, t, tParts } from "../i18n.js";
import { remember, remembered } from "../known.js";
import { announceForm, eventSummary, phase } from "./events.js";
import { actorOf, communityOf } from "./notifications.js";

/** "owner", "member", "pending" or "none", wherever the payload says it. */
export function membershipOf(c, me) {
  if (c.owner && c.owner.handle === me.handle) return "owner";
  const m = c.membership ?? c.my_membership ?? c.viewer ?? c.role;
  if (typeof m === "string") return m === "requested" ? "pending" : m;
  if (c.is_member || c.member) return "member";
  if (c.pending || c.requested || c.request_pending) return "pending";
  return "none";
}

function summary(c) {
  return h("li.community-item.card", { dataset: { communityId: c.id } },
    h("h3", { lang: guessLang(c.name) }, h("a", { href: `#/c/${enc(c.id)}` }, c.name)),
    c.description ? h("p", { lang: guessLang(c.description) }, c.description) : null,
    h("p.muted", null,
      t(c.join_policy === "approval" ? "communities.byApproval" : "communities.open"),
      c.members != null || c.member_count != null ? [" · ", t("communities.members", { count: Number(c.members ?? c.member_count) })] : ""));
}

export async function communitiesView(root, _params, ctx) {
  const list = h("ul.communities");
  const empty = h("p.empty", null, t("communities.empty"));
  const failure = h("p.empty.offline-state", { role: "status", hidden: true });
  const form = h("form.stack", { "aria-label": t("communities.create") },
    field(t("communities.name"), { name: "name", required: true, maxLength: 50 }),
    field(t("communities.description"), { name: "description", tag: "textarea", rows: 3 }),
    field(t("communities.whoCanJoin"), { name: "join_policy", tag: "select", options: [["open", t("communities.policyOpen")], ["approval", t("communities.policyApproval")]] }),
    h("button.primary", { type: "submit" }, t("communities.createButton")));
  handleForm(form, async (data) => {
    const c = await post("/api/communities", {
      name: data.get("name"),
      description: data.get("description") || "",
      join_policy: data.get("join_policy"),
    });
    remember(ctx.me, "communities", c.id);
    location.hash = `#/c/${enc(c.id)}`;
  });
  root.append(
    h("section.card", null, h("h1", null, t("nav.communities")), h("details.announce", null, h("summary", null, t("communities.create")), form)),
    h("h2", null, t("communities.browse")), list, empty, failure);
  let items = null;
  try {
    items = (await api("GET", "/api/communities")).items;
  } catch (err) {
    if (err.status !== 404 && err.status !== 405) {
      // Offline: say so rather than "no communities yet".
      failure.hidden = false;
      failure.textContent = errorText(err);
      items = [];
    }
  }
  if (items == null) {
    const ids = new Set(remembered(ctx.me, "communities"));
    for (const n of ctx.notifications.items) if (n.type.startsWith("community.")) {
      const { id } = communityOf(n.data);
      if (id) ids.add(String(id));
    }
    const got = await Promise.all([...ids].map((id) => api("GET", `/api/communities/${enc(id)}`).catch(() => null)));
    items = got.filter(Boolean);
  }
  list.replaceChildren(...items.map(summary));
  empty.hidden = items.length > 0 || !failure.hidden;
  // Offline at first: the list loads by itself once the server can be reached.
  return reloadWhenBack(ctx, () => !failure.hidden, async () => {
    try {
      const again = (await api("GET", "/api/communities")).items;
      failure.hidden = true;
      list.replaceChildren(...again.map(summary));
      empty.hidden = again.length > 0;
    } catch {
      // Still unreachable: the next "online" or reconnect tries again.
    }
  });
}

export async function communityView(root, { id }, ctx) {
  let c;
  try {
    c = await api("GET", `/api/communities/${enc(id)}`);
  } catch (err) {
    root.append(h("section.card", null, h("h1", null, t("communities.community")), h("p.form-error", null, errorText(err))));
    return null;
  }
  remember(ctx.me, "communities", c.id);
  let membership = membershipOf(c, ctx.me);
  const head = h("section.card.community-head");
  const requests = h("ul.requests", { "aria-label": t("communities.requests") });
  const paint = () => {
    const action = membership === "none"
      ? h("button.primary.join", { type: "button", onclick: join }, t(c.join_policy === "approval" ? "communities.requestToJoin" : "communities.join"))
      : membership === "pending"
        ? h("span.tag", null, t("communities.pending"))
        : h("span.tag.friends", null, t(membership === "owner" ? "communities.owner" : "communities.member"));
    replace(head,
      h("h1", { lang: guessLang(c.name) }, c.name),
      c.description ? h("p", { lang: guessLang(c.description) }, c.description) : null,
      h("p.muted", null, t(c.join_policy === "approval" ? "communities.byApproval" : "communities.open"),
        c.owner ? [" · ", tParts("communities.runBy", { who: memberLink(c.owner) })] : null),
      h("div.row", null, action, c.members != null ? h("span.muted.member-count", null, t("communities.members", { count: Number(c.members) })) : null));
  };
  async function join() {
    try {
      // `{status, community}`: the community as it now stands for me.
      const res = await post(`/api/communities/${enc(c.id)}/join`);
      if (res?.community) c = res.community;
      membership = membershipOf(c, ctx.me);
      paint();
      if (membership === "member") refreshFeed();
    } catch (err) {
      toast(errorText(err));
    }
  }
  paint();
  root.append(head);

  // The owner's pending requests arrive on `me`; approve or reject from here.
  const addRequest = (n) => {
    const who = actorOf(n.data);
    if (!who || String(communityOf(n.data).id) !== String(c.id)) return;
    for (const el of requests.children) if (el.dataset.handle === who.handle) return;
    const li = h("li", { dataset: { handle: who.handle } }, memberLink(who), " ");
    const decide = (verdict) => async () => {
      try {
        await post(`/api/communities/${enc(c.id)}/requests/${enc(who.handle)}/${verdict}`);
        li.remove();
      } catch (err) {
        toast(errorText(err));
      }
    };
    li.append(h("button.primary", { type: "button", onclick: decide("approve") }, t("notif.approve")), " ",
      h("button.plain", { type: "button", onclick: decide("reject") }, t("notif.decline")));
    requests.append(li);
  };
  const onNote = (e) => {
    const ev = e.detail;
    if (ev.type === "community.join_requested" && membership === "owner") addRequest(ev);
    if ((ev.type === "community.joined" || ev.type === "community.join_rejected") && String(communityOf(ev.data).id) === String(c.id)) {
      const who = actorOf(ev.data);
      if (!who || who.handle === ctx.me.handle) {
        membership = ev.type === "community.joined" ? "member" : "none";
        paint();
        if (membership === "member") refreshFeed();
      }
    }
  };
  ctx.notifications.addEventListener("notification", onNote);
  if (membership === "owner" && c.join_policy === "approval") {
    const none = h("p.muted", null, t("communities.noRequests"));
    const watch = new MutationObserver(() => { none.hidden = requests.children.length > 0; });
    watch.observe(requests, { childList: true });
    root.append(h("section.card", null, h("h2", null, t("communities.requests")), requests, none));
    try {
      const pending = await api("GET", `/api/communities/${enc(c.id)}/requests`);
      for (const item of pending.items) addRequest({ data: { ...item, community: { id: c.id } } });
    } catch (err) {
      toast(errorText(err));
    }
  }

  // Events in this community (for those who may read it), and announcing one here.
  const eventsBox = h("section.card", null, h("h2", null, t("nav.events")));
  const readable = membership === "member" || membership === "owner" || c.join_policy === "open";
  if (readable) root.append(eventsBox);
  if (membership === "member" || membership === "owner") eventsBox.append(announceForm(ctx, c.id));
  const eventList = h("ol.events");
  eventsBox.append(eventList);
  try {
    const evs = await api("GET", `/api/communities/${enc(c.id)}/events`);
    eventList.append(...evs.items.filter((ev) => phase(ev) !== "past").map(eventSummary));
    if (!eventList.children.length) eventList.append(h("li.muted", null, t("communities.noEvents")));
  } catch (err) {
    eventList.append(h("li.muted", null, errorText(err)));
  }

  const feedBox = h("div");
  root.append(h("h2", null, t("communities.feed")), feedBox);
  let feed = null;
  const refreshFeed = async () => {
    feed?.stop();
    const canPost = membership === "member" || membership === "owner";
    feed = new FeedList({
      url: `/api/communities/${enc(c.id)}/echoes`,
      topic: `community:${c.id}`,
      ctx,
      label: t("communities.feedLabel", { name: c.name }),
      empty: t(canPost ? "communities.feedEmpty" : "communities.feedJoin"),
    });
    replace(feedBox,
      canPost ? composer({ onPost: async (body) => feed.prepend(await createEcho(body)), extra: () => ({ community: c.id }), placeholder: t("communities.composerPlaceholder", { name: c.name }) }) : null,
      feed.el);
    await feed.start();
  };
  await refreshFeed();
  return () => {
    feed?.stop();
    ctx.notifications.removeEventListener("notification", onNote);
  };
}
