// Notifications: the server's history of likes, replies, mentions, follows, visits,
// event news and RSVPs, community requests; live from the `me` topic. Opening the page
// marks them read on every device (the badge clears everywhere).

import { enc, post } from "../api.js";
import { memberLink, toast } from "../components.js";
import { h, timeEl } from "../dom.js";
import { errorText, t, tParts } from "../i18n.js";

/** The member a notification is about, whatever the payload calls them. */
export function actorOf(data) {
  return data?.by || data?.user || data?.visitor || data?.requester || data?.member || data?.host || null;
}

/** `{id, title}` of the event a notification is about. */
export function eventOf(data) {
  const ev = data?.event && typeof data.event === "object" ? data.event : data;
  return { id: ev?.id ?? data?.event, title: ev?.title ?? t("notif.anEvent") };
}

/** `{id, name}` of the community a notification is about. */
export function communityOf(data) {
  const c = data?.community && typeof data.community === "object" ? data.community : data;
  return { id: c?.id ?? data?.community, name: c?.name ?? t("notif.aCommunity") };
}

export function describe(n) {
  const d = n.data || {};
  const who = actorOf(d);
  const person = who ? memberLink(who) : t("notif.someone");
  const ev = eventOf(d);
  const evLink = ev.id ? h("a", { href: `#/events/${enc(ev.id)}` }, ev.title) : ev.title;
  const com = communityOf(d);
  const comLink = com.id ? h("a", { href: `#/c/${enc(com.id)}` }, com.name) : com.name;
  const parts = { who: person, event: evLink, community: comLink };
  const say = (key) => tParts(key, parts);
  switch (n.type) {
    case "like":
      return say("notif.like");
    case "reply":
      return say("notif.reply");
    case "mention":
      return say("notif.mention");
    case "footprint":
      return say("notif.footprint");
    case "mod.action":
      return d.action === "remove_echo" ? say("notif.modRemoved") : [t("notif.other")];
    case "follow":
      return say("notif.follow");
    case "event.announced":
      return say("notif.eventAnnounced");
    case "event.updated":
      return say("notif.eventUpdated");
    case "event.cancelled":
      return say("notif.eventCancelled");
    case "event.starting":
      return say("notif.eventStarting");
    case "event.rsvp":
      return say(d.status === "going" ? "notif.rsvpGoing" : d.status === "interested" ? "notif.rsvpInterested" : "notif.rsvpChanged");
    case "community.join_requested":
      return say("notif.joinRequested");
    case "community.joined":
      return who && who.handle !== undefined ? say("notif.joined") : say("notif.youJoined");
    case "community.join_rejected":
      return say("notif.joinRejected");
    default:
      return [t("notif.other")];
  }
}

/** What a notification is about: the post's words, linking to its page. */
function about(n) {
  const d = n.data || {};
  if (n.type === "mod.action") return d.reason ? h("p.notification-about", null, t("notif.modReason", { reason: d.reason })) : null;
  if (typeof d.echo !== "string") return null;
  const deleted = Array.isArray(d.deleted) && d.deleted.includes("echo");
  if (deleted || typeof d.text !== "string") return h("p.notification-about.muted", null, t("notif.deletedPost"));
  return h("p.notification-about", null, h("a", { href: `#/e/${enc(d.echo)}` }, h("q", null, d.text)));
}

function item(n) {
  const li = h("li.notification", { dataset: { type: n.type }, class: n.read === false ? "unread" : null },
    n.read === false ? h("span.sr-only", null, t("notif.unread")) : null,
    h("p", null, describe(n)), about(n), n.at ? timeEl(n.at) : null);
  if (n.type === "community.join_requested" && n.handled) {
    li.append(h("div.row", null, t(n.handled)));
  } else if (n.type === "community.join_requested") {
    const who = actorOf(n.data);
    const com = communityOf(n.data);
    if (who && com.id) {
      const decide = (verdict) => async () => {
        try {
          await post(`/api/communities/${enc(com.id)}/requests/${enc(who.handle)}/${verdict}`);
          n.handled = verdict === "approve" ? "notif.approved" : "notif.declined";
          actions.replaceChildren(t(n.handled));
        } catch (err) {
          // Handled already (on another device, or by the requester): say so, no button.
          if (err.status === 404 || err.status === 409) {
            n.handled = "notif.handled";
            actions.replaceChildren(t(n.handled));
          }
          else toast(errorText(err));
        }
      };
      const actions = h("div.row", null,
        h("button.primary", { type: "button", onclick: decide("approve") }, t("notif.approve")),
        h("button.plain", { type: "button", onclick: decide("reject") }, t("notif.decline")));
      li.append(actions);
    }
  }
  return li;
}

export function notificationsView(root, _params, ctx) {
  const store = ctx.notifications;
  const list = h("ol.notifications", { "aria-label": t("nav.notifications") });
  const empty = h("p.empty", null, t("notif.empty"));
  const more = h("button.more", { type: "button", hidden: true }, t("feed.loadMore"));
  const markRead = h("button.plain.mark-read", { type: "button", onclick: () => store.markAllRead() }, t("notif.markRead"));
  more.addEventListener("click", async () => {
    more.disabled = true;
    try {
      await store.loadMore();
    } catch (err) {
      toast(errorText(err));
    } finally {
      more.disabled = false;
    }
  });
  let painted = "";
  const paint = () => {
    // Repainted only when what shows changed, so nothing moves under the pointer.
    const shown = JSON.stringify(store.items.map((n) => [n.id, n.read, n.handled, n.data?.deleted]));
    if (shown !== painted) list.replaceChildren(...store.items.map(item));
    painted = shown;
    empty.hidden = store.items.length > 0;
    more.hidden = store.next == null;
    markRead.hidden = store.unread === 0;
  };
  root.append(h("section.card", null, h("div.row", null, h("h1", null, t("nav.notifications")), markRead), list, empty, more));
  paint();
  store.markAllRead();
  store.checkPending();
  // New ones are read as they arrive while the page is open; reloads and read marks
  // from other devices repaint.
  const onNew = () => store.markAllRead();
  store.addEventListener("notification", onNew);
  const onReload = () => {
    store.markAllRead();
    store.checkPending();
  };
  store.addEventListener("reload", onReload);
  store.addEventListener("change", paint);
  return () => {
    store.removeEventListener("notification", onNew);
    store.removeEventListener("reload", onReload);
    store.removeEventListener("change", paint);
  };
}
