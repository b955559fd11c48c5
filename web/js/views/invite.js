// Invite friends: create an invite link and copy it.

import { post } from "../api.js";
import { field, handleForm } from "../components.js";
import { formatDate, h, replace } from "../dom.js";
import { t } from "../i18n.js";

export function inviteView(root) {
  const out = h("div.invite-result", { "aria-live": "polite" });
  const form = h("form.stack", { "aria-label": t("invite.formLabel") },
    field(t("invite.uses"), { name: "uses", type: "number", min: 1, max: 100, value: 5 }),
    field(t("invite.days"), { name: "expires_in_days", type: "number", min: 1, max: 90, value: 14 }),
    h("button.primary", { type: "submit" }, t("invite.create")));
  handleForm(form, async (data) => {
    const inv = await post("/api/invites", { uses: Number(data.get("uses")), expires_in_days: Number(data.get("expires_in_days")) });
    const url = inv.url || `${location.origin}/join/${inv.code}`;
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
    replace(out, h("div.row", null, input, copy),
      h("p.muted", null, t("invite.summary", { count: inv.uses_left, date: formatDate(inv.expires_at) })));
  });
  root.append(h("section.card", null, h("h1", null, t("invite.title")),
    h("p.muted", null, t("invite.intro")), form, out));
}
