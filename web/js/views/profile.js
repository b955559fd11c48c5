// A member's profile: who they are, follow / block / mute, and their archive (live on
// `user:{handle}`). Opening it leaves a footprint (the server's doing).

import { api, enc, put } from "../api.js";
import { FeedList, composer, createEcho, reportForm, toast } from "../components.js";
import { formatDate, h, replace } from "../dom.js";
import { guessLang, renderSegments } from "../effects.js";
import { errorText, formatNumber, t, tParts } from "../i18n.js";
import { avatar, avatarControls } from "../media.js";

export async function profileView(root, { handle }, ctx) {
  const self = handle === ctx.me.handle;
  let profile;
  try {
    profile = await api("GET", `/api/users/${enc(handle)}`);
  } catch (err) {
    root.append(h("section.card", null, h("h1", null, `@${handle}`), h("p.form-error", null, err.status === 404 ? t("profile.notFound") : errorText(err))));
    return null;
  }
  const head = h("section.profile-head.card");
  // Made once, so its status line survives the repaint a new picture causes.
  const pictureControls = self
    ? avatarControls(profile, (me) => {
      profile = { ...profile, avatar: me.avatar };
      ctx.me.avatar = me.avatar;
      paint();
    })
    : null;
  const paint = () => {
    const rel = profile.relationship || {};
    const badges = [];
    if (rel.friends) badges.push(h("span.tag.friends", null, t("profile.friends")));
    else if (rel.followed_by) badges.push(h("span.tag", null, t("profile.followsYou")));
    if (rel.muting) badges.push(h("span.tag", null, t("profile.muted")));
    if (rel.blocking) badges.push(h("span.tag.danger", null, t("profile.blocked")));
    if (profile.role === "moderator" || profile.role === "admin") {
      badges.push(h("span.tag", null, t(profile.role === "admin" ? "profile.adminTag" : "profile.moderatorTag")));
    }
    const buttons = self
      ? [h("a.button", { href: "#/settings" }, t("profile.editProfile")), h("a.button", { href: "#/footprints" }, t("profile.myFootprints")), h("a.button", { href: "#/invite" }, t("invite.title"))]
      : [
          toggle("follow", rel.following, t("profile.follow"), t("profile.following"), "primary"),
          toggle("mute", rel.muting, t("profile.mute"), t("profile.unmute")),
          toggle("block", rel.blocking, t("profile.block"), t("profile.unblock"), "danger"),
          reportButton,
          // Only admins are told a member's role; they appoint and revoke moderators.
          profile.role === "member" || profile.role === "moderator" ? roleButton() : null,
        ];
    replace(
      head,
      profile.avatar
        ? h("div.avatar.has-picture", null, avatar(profile, "large"))
        : h("div.avatar", { "aria-hidden": "true" }, initial(profile.display_name || profile.handle)),
      h("div.profile-names", null,
        h("h1", null, profile.display_name || profile.handle),
        h("p.handle", null, `@${profile.handle}`, " ", badges),
        profile.bio ? h("p.bio", { lang: guessLang(profile.bio) }, renderSegments(profile.bio_segments)) : null,
        h("p.stats", null,
          h("span", { dataset: { stat: "followers" } },
            tParts("profile.followers", { count: profile.followers ?? 0, n: h("strong", null, formatNumber(profile.followers ?? 0)) })),
          " · ",
          h("span", { dataset: { stat: "following" } },
            tParts("profile.followingCount", { count: profile.following ?? 0, n: h("strong", null, formatNumber(profile.following ?? 0)) })),
          profile.created_at ? [" · ", t("profile.joined", { date: formatDate(profile.created_at, { dateStyle: "medium" }) })] : null)),
      h("div.profile-actions", null, buttons,
        pictureControls),
    );
  };
  const toggle = (what, on, offLabel, onLabel, kind = "") => {
    const b = h(`button.${kind || "plain"}`, { type: "button", "aria-pressed": String(!!on), dataset: { action: what } }, on ? onLabel : offLabel);
    b.addEventListener("click", async () => {
      if (what === "block" && !on && !window.confirm(t("profile.blockConfirm", { handle }))) return;
      b.disabled = true;
      try {
        profile = await api(on ? "DELETE" : "POST", `/api/users/${enc(handle)}/${what}`);
        // Follows, mutes and blocks change which authors feed `home`: the server
        // works out its channels at `sub`, so subscribe again (resuming, not losing).
        ctx.hub.resubscribe("home");
        paint();
        head.querySelector(`[data-action="${what}"]`)?.focus();
      } catch (err) {
        toast(errorText(err));
        b.disabled = false;
      }
    });
    return b;
  };
  const roleButton = () => {
    const moderator = profile.role === "moderator";
    const b = h("button.plain", { type: "button", dataset: { action: "role" } },
      t(moderator ? "profile.removeModerator" : "profile.makeModerator"));
    b.addEventListener("click", async () => {
      b.disabled = true;
      try {
        const user = await put(`/api/admin/users/${enc(handle)}/role`, { role: moderator ? "member" : "moderator" });
        profile = { ...profile, role: user.role };
        toast(t(user.role === "moderator" ? "profile.nowModerator" : "profile.noLongerModerator", { handle }));
        paint();
        head.querySelector('[data-action="role"]')?.focus();
      } catch (err) {
        toast(errorText(err));
        b.disabled = false;
      }
    });
    return b;
  };
  // Reporting a member: a small form under the profile card (kept across repaints).
  const reportBox = h("div.report-box");
  const reportButton = h("button.plain", { type: "button", "aria-expanded": "false", dataset: { action: "report" } }, t("profile.report"));
  reportButton.addEventListener("click", () => {
    const opening = reportButton.getAttribute("aria-expanded") !== "true";
    reportButton.setAttribute("aria-expanded", String(opening));
    reportBox.replaceChildren();
    if (!opening) return;
    reportBox.append(h("section.card", { "aria-label": t("profile.reportLabel", { handle }) }, reportForm({ user: profile.handle }, () => {
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
    label: t("profile.echoesBy", { handle }),
    empty: t(self ? "profile.emptySelf" : "profile.empty"),
  });
  root.append(h("h2", null, t(self ? "profile.myArchive" : "profile.archive")), archive.el);
  // A new name or bio shows at once (the archive's topic carries `profile.updated`).
  const offProfile = ctx.hub.subscribe(`user:${handle}`, (ev) => {
    if (ev.type !== "profile.updated" || ev.data.handle !== profile.handle) return;
    const { display_name, bio, bio_segments } = ev.data;
    profile = { ...profile, display_name, bio, bio_segments };
    paint();
  });
  await archive.start();
  return () => {
    archive.stop();
    offProfile();
  };
}

function initial(name) {
  const first = Array.from(name.trim())[0] || "?";
  return first.toUpperCase();
}
