// Home: the composer, the Follow feed (live on `home`) or Discover, and the box of
// friends' latest five.

import { composer, createEcho, FeedList, toast } from "../components.js";
import { h } from "../dom.js";
import { t } from "../i18n.js";
import { suggestionsCard } from "./search.js";

export async function homeView(root, { tab }, ctx) {
  const follow = tab === "follow";
  const feed = new FeedList({
    url: follow ? "/api/feed/home" : "/api/feed/discover",
    topic: follow ? "home" : null,
    ctx,
    label: t(follow ? "home.feedLabel" : "home.discover"),
    watchAuthors: !follow,
    empty: t(follow ? "home.emptyFollow" : "home.emptyDiscover"),
  });
  const friends = new FeedList({
    url: "/api/feed/friends",
    ctx,
    limit: 5,
    label: t("home.friendsLatest"),
    empty: t("home.emptyFriends"),
  });
  const tabs = h("nav.tabs", { "aria-label": t("home.feeds") },
    h("a", { href: "#/", "aria-current": follow ? "page" : null }, t("home.follow")),
    h("a", { href: "#/discover", "aria-current": follow ? null : "page" }, t("home.discover")));
  const form = composer({
    onPost: async (body) => {
      const created = await createEcho(body);
      // Shown at once; the live event for it is then a duplicate and skipped.
      if (follow) feed.prepend(created);
      toast(t("composer.posted"));
    },
  });
  root.append(
    h("div.layout", null,
      h("div.column.main-column", null,
        h("h1.sr-only", null, t("nav.home")),
        form,
        tabs,
        feed.el),
      h("aside.column.side-column", { "aria-labelledby": "friends-latest" },
        h("h2", { id: "friends-latest" }, t("home.friendsLatest")),
        friends.el)),
  );
  // Friends' box: refetch (debounced) whenever the home topic changes.
  let timer = null;
  const offFriends = ctx.hub.subscribe("home", (ev) => {
    if (ev.type !== "post.created" || ev.data.author.handle === ctx.me.handle) return;
    clearTimeout(timer);
    timer = setTimeout(() => friends.reload(), 300);
  });
  await Promise.all([feed.start(), friends.start()]);
  // An empty home or Discover (a newcomer's first minute): people to follow.
  if (!feed.list.children.length) {
    const people = await suggestionsCard(ctx);
    if (people) feed.el.after(people);
  }
  return () => {
    feed.stop();
    friends.stop();
    offFriends();
    clearTimeout(timer);
  };
}
