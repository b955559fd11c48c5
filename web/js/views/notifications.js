// Notifications: likes, follows, event news and RSVPs, community requests; live from
// the `me` topic. Opening the page marks them read (the badge clears).

import { enc, post } from "../api.js";
import { memberLink, toast } from "../components.js";
import { h, timeEl } from "../dom.js";

/** The member a notification is about, whatever the payload calls them. */
export function actorOf(data) {
  return data?.by || data?.user || data?.visitor || data?.requester || data?.member || data?.host || null;
}

/** `{id, title}` of the event a notification is about. */
export function eventOf(data) {
  const ev = data?.event && typeof data.event === "object" ? data.event : data;
  return { id: ev?.id ?? data?.event, title: ev?.title ?? "an event" };
}

/** `{id, name}` of the community a notification is about. */
export function communityOf(data) {
  const c = data?.community && typeof data.community === "object" ? data.community : data;
  return { id: c?.id ?? data?.community, name: c?.name ?? "a community" };
}

export function describe(n) {
  const d = n.data || {};
  const who = actorOf(d);
  const person = who ? memberLink(who) : "Someone";
  const ev = eventOf(d);
  const evLink = ev.id ? h("a", { href: `#/events/${enc(ev.id)}` }, ev.title) : ev.title;
  const com = communityOf(d);
  const comLink = com.id ? h("a", { href: `#/c/${enc(com.id)}` }, com.name) : com.name;
  switch (n.type) {
    case "like":
      return [person, " liked your Echo"];
    case "follow":
      return [person, " followed you"];
    case "event.announced":
      return [person, " announced ", evLink];
    case "event.updated":
      return [evLink, " was updated"];
    case "event.cancelled":
      return [evLink, " was cancelled"];
    case "event.starting":
      return [evLink, " is starting now"];
    case "event.rsvp":
      return [person, d.status === "going" ? " is going to " : d.status === "interested" ? " is interested in " : " changed their RSVP for ", evLink];
    case "community.join_requested":
      return [person, " asked to join ", comLink];
    case "community.joined":
      return who && who.handle !== undefined ? [person, " joined ", comLink] : ["You joined ", comLink];
    case "community.join_rejected":
      return ["Your request to join ", comLink, " was declined"];
    default:
      return [n.type];
  }
}

function item(n) {
  const li = h("li.notification", { dataset: { type: n.type } }, h("p", null, describe(n)), n.at ? timeEl(n.at) : null);
  if (n.type === "community.join_requested") {
    const who = actorOf(n.data);
    const com = communityOf(n.data);
    if (who && com.id) {
      const decide = (verdict) => async () => {
        try {
          await post(`/api/communities/${enc(com.id)}/requests/${enc(who.handle)}/${verdict}`);
          actions.replaceChildren(verdict === "approve" ? "Approved" : "Declined");
        } catch (err) {
          toast(err.message);
        }
      };
      const actions = h("div.row", null,
        h("button.primary", { type: "button", onclick: decide("approve") }, "Approve"),
        h("button.plain", { type: "button", onclick: decide("reject") }, "Decline"));
      li.append(actions);
    }
  }
  return li;
}

export function notificationsView(root, _params, ctx) {
  const store = ctx.notifications;
  const list = h("ol.notifications", { "aria-label": "Notifications" });
  const empty = h("p.empty", null, "No notifications yet.");
  const paint = () => {
    list.replaceChildren(...store.items.map(item));
    empty.hidden = store.items.length > 0;
  };
  root.append(h("section.card", null, h("h1", null, "Notifications"), list, empty));
  paint();
  store.markAllRead();
  const onNew = () => {
    paint();
    store.markAllRead();
  };
  store.addEventListener("notification", onNew);
  return () => store.removeEventListener("notification", onNew);
}
