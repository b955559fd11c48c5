// A member's profile: who they are, follow / block / mute, and their archive (live on
// `user:{handle}`). Opening it leaves a footprint (the server's doing).

import { api, enc } from "../api.js";
import { FeedList, composer, createEcho, reportForm, toast } from "../components.js";
import { formatDate, h, replace } from "../dom.js";

export async function profileView(root, { handle }, ctx) {
  const self = handle === ctx.me.handle;
  let profile;
  try {
    profile = await api("GET", `/api/users/${enc(handle)}`);
  } catch (err) {
    root.append(h("section.card", null, h("h1", null, `@${handle}`), h("p.form-error", null, err.status === 404 ? "No such member, or you cannot see them." : err.message)));
    return null;
  }
  const head = h("section.profile-head.card");
  const paint = () => {
    const rel = profile.relationship || {};
    const badges = [];
    if (rel.friends) badges.push(h("span.tag.friends", null, "Friends"));
    else if (rel.followed_by) badges.push(h("span.tag", null, "Follows you"));
    if (rel.muting) badges.push(h("span.tag", null, "Muted"));
    if (rel.blocking) badges.push(h("span.tag.danger", null, "Blocked"));
    const buttons = self
      ? [h("a.button", { href: "#/footprints" }, "My footprints"), h("a.button", { href: "#/invite" }, "Invite friends")]
      : [
          toggle("follow", rel.following, "Follow", "Following", "primary"),
          toggle("mute", rel.muting, "Mute", "Unmute"),
          toggle("block", rel.blocking, "Block", "Unblock", "danger"),
          reportButton,
        ];
    replace(
      head,
      h("div.avatar", { "aria-hidden": "true" }, initial(profile.display_name || profile.handle)),
      h("div.profile-names", null,
        h("h1", null, profile.display_name || profile.handle),
        h("p.handle", null, `@${profile.handle}`, " ", badges),
        h("p.stats", null,
          h("span", { dataset: { stat: "followers" } }, h("strong", null, String(profile.followers ?? 0)), " followers"),
          " · ",
          h("span", { dataset: { stat: "following" } }, h("strong", null, String(profile.following ?? 0)), " following"),
          profile.created_at ? [" · joined ", formatDate(profile.created_at)] : null)),
      h("div.profile-actions", null, buttons),
    );
  };
  const toggle = (what, on, offLabel, onLabel, kind = "") => {
    const b = h(`button.${kind || "plain"}`, { type: "button", "aria-pressed": String(!!on), dataset: { action: what } }, on ? onLabel : offLabel);
    b.addEventListener("click", async () => {
      if (what === "block" && !on && !window.confirm(`Block @${handle}? Follows both ways are removed.`)) return;
      b.disabled = true;
      try {
        profile = await api(on ? "DELETE" : "POST", `/api/users/${enc(handle)}/${what}`);
        // Follows, mutes and blocks change which authors feed `home`: the server
        // works out its channels at `sub`, so subscribe again (resuming, not losing).
        ctx.hub.resubscribe("home");
        paint();
        head.querySelector(`[data-action="${what}"]`)?.focus();
      } catch (err) {
        toast(err.message);
        b.disabled = false;
      }
    });
    return b;
  };
  // Reporting a member: a small form under the profile card (kept across repaints).
  const reportBox = h("div.report-box");
  const reportButton = h("button.plain", { type: "button", "aria-expanded": "false", dataset: { action: "report" } }, "Report member");
  reportButton.addEventListener("click", () => {
    const opening = reportButton.getAttribute("aria-expanded") !== "true";
    reportButton.setAttribute("aria-expanded", String(opening));
    reportBox.replaceChildren();
    if (!opening) return;
    reportBox.append(h("section.card", { "aria-label": `Report @${handle}` }, reportForm({ user: profile.handle }, () => {
      reportButton.setAttribute("aria-expanded", "false");
      reportBox.replaceChildren();
      reportButton.focus();
    })));
    reportBox.querySelector("input")?.focus();
  });
  paint();
  root.append(head, reportBox);
  if (self) {
    root.append(composer({ onPost: async (body) => { archive.prepend(await createEcho(body)); } }));
  }
  const archive = new FeedList({
    url: `/api/users/${enc(handle)}/echoes`,
    topic: `user:${handle}`,
    ctx,
    label: `Echoes by @${handle}`,
    empty: self ? "You have not posted yet." : "No Echoes to show.",
  });
  root.append(h("h2", null, self ? "My archive" : "Archive"), archive.el);
  await archive.start();
  return () => archive.stop();
}

function initial(name) {
  const first = Array.from(name.trim())[0] || "?";
  return first.toUpperCase();
}
