// Home: the composer, the Follow feed (live on `home`) or Discover, and the box of
// friends' latest five.

import { composer, createEcho, FeedList, toast } from "../components.js";
import { h } from "../dom.js";

export async function homeView(root, { tab }, ctx) {
  const follow = tab === "follow";
  const feed = new FeedList({
    url: follow ? "/api/feed/home" : "/api/feed/discover",
    topic: follow ? "home" : null,
    ctx,
    label: follow ? "Home feed" : "Discover",
    watchAuthors: !follow,
    empty: follow
      ? "Your feed is quiet. Post an Echo, or follow people from Discover."
      : "Nothing to discover yet: posts liked by people you follow in the last day show up here.",
  });
  const friends = new FeedList({
    url: "/api/feed/friends",
    ctx,
    limit: 5,
    label: "Friends' latest",
    empty: "When you and someone follow each other, their latest Echoes appear here.",
  });
  const tabs = h("nav.tabs", { "aria-label": "Feeds" },
    h("a", { href: "#/", "aria-current": follow ? "page" : null }, "Follow"),
    h("a", { href: "#/discover", "aria-current": follow ? null : "page" }, "Discover"));
  const form = composer({
    onPost: async (body) => {
      const created = await createEcho(body);
      // Shown at once; the live event for it is then a duplicate and skipped.
      if (follow) feed.prepend(created);
      toast("Echo posted");
    },
  });
  root.append(
    h("div.layout", null,
      h("div.column.main-column", null,
        h("h1.sr-only", null, "Home"),
        form,
        tabs,
        feed.el),
      h("aside.column.side-column", { "aria-labelledby": "friends-latest" },
        h("h2", { id: "friends-latest" }, "Friends' latest"),
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
  return () => {
    feed.stop();
    friends.stop();
    offFriends();
    clearTimeout(timer);
  };
}
