// Invite friends: create an invite link (which makes you friends with whoever joins
// through it, unless unticked), copy it, and see and revoke the invites you made.

import { api, del, enc, post } from "../api.js";
import { field, handleForm, toast } from "../components.js";
import { formatDate, h, replace } from "../dom.js";
import { errorText, t } from "../i18n.js";

function copyRow(url) {
  const input = h("input.invite-url", { type: "text", readOnly: true, value: url, "aria-label": t("invite.link") });
  const copy = h("button.plain", { type: "button" }, t("invite.copy"));
  copy.addEventListener("click", async () => {
    input.select();
    try {
      await navigator.clipboard.writeText(url);
      copy.textContent = t("invite.copied");
    } catch {
      copy.textContent = t("invite.selectAndCopy");
    }
  });
  return h("div.row", null, input, copy);
}

export async function inviteView(root) {
  const out = h("div.invite-result", { "aria-live": "polite" });
  const list = h("ul.invite-list");
  const befriend = h("input", { type: "checkbox", name: "befriend", id: "invite-befriend", checked: true });
  const form = h("form.stack", { "aria-label": t("invite.formLabel") },
    field(t("invite.uses"), { name: "uses", type: "number", min: 1, max: 100, value: 5 }),
    field(t("invite.days"), { name: "expires_in_days", type: "number", min: 1, max: 90, value: 14 }),
    h("div.check", null, befriend, h("label", { htmlFor: "invite-befriend" }, t("invite.befriend"))),
    h("button.primary", { type: "submit" }, t("invite.create")));

  const row = (inv) => {
    const revoke = h("button.plain.danger", { type: "button", dataset: { code: inv.code } }, t("invite.revoke"));
    revoke.addEventListener("click", async () => {
      if (!window.confirm(t("invite.revokeConfirm"))) return;
      revoke.disabled = true;
      try {
        await del(`/api/invites/${enc(inv.code)}`);
        toast(t("invite.revoked"));
        await paintList();
      } catch (err) {
        toast(errorText(err));
        revoke.disabled = false;
      }
    });
    const state = inv.expired || inv.uses_left <= 0
      ? h("span.tag", null, t(inv.expired ? "invite.expired" : "invite.usedUp"))
      : t("invite.summary", { count: inv.uses_left, date: formatDate(inv.expires_at) });
    return h("li.invite-item.card", { dataset: { code: inv.code } },
      copyRow(inv.url),
      h("p.muted", null, state, inv.befriend ? [" · ", t("invite.makesFriends")] : null),
      revoke);
  };

  async function paintList() {
    try {
      const page = await api("GET", "/api/invites");
      replace(list, page.items.length ? page.items.map(row) : h("li.muted", null, t("invite.none")));
    } catch (err) {
      replace(list, h("li.form-error", null, errorText(err)));
    }
  }

  handleForm(form, async (data) => {
    const inv = await post("/api/invites", {
      uses: Number(data.get("uses")),
      expires_in_days: Number(data.get("expires_in_days")),
      befriend: befriend.checked,
    });
    const url = inv.url || `${location.origin}/join/${inv.code}`;
    replace(out, copyRow(url),
      h("p.muted", null, t("invite.summary", { count: inv.uses_left, date: formatDate(inv.expires_at) })));
    await paintList();
  });
  root.append(
    h("section.card", null, h("h1", null, t("invite.title")), h("p.muted", null, t("invite.intro")), form, out),
    h("section", { "aria-labelledby": "invites-mine" }, h("h2", { id: "invites-mine" }, t("invite.yours")), list));
  await paintList();
}
