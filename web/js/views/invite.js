// Invite friends: create an invite link and copy it.

import { post } from "../api.js";
import { field, handleForm } from "../components.js";
import { formatDate, h, replace } from "../dom.js";

export function inviteView(root) {
  const out = h("div.invite-result", { "aria-live": "polite" });
  const form = h("form.stack", { "aria-label": "Create an invite" },
    field("Uses", { name: "uses", type: "number", min: 1, max: 100, value: 5 }),
    field("Valid for (days)", { name: "expires_in_days", type: "number", min: 1, max: 90, value: 14 }),
    h("button.primary", { type: "submit" }, "Create invite link"));
  handleForm(form, async (data) => {
    const inv = await post("/api/invites", { uses: Number(data.get("uses")), expires_in_days: Number(data.get("expires_in_days")) });
    const url = inv.url || `${location.origin}/join/${inv.code}`;
    const input = h("input.invite-url", { type: "text", readOnly: true, value: url, "aria-label": "Invite link" });
    const copy = h("button.plain", { type: "button" }, "Copy");
    copy.addEventListener("click", async () => {
      input.select();
      try {
        await navigator.clipboard.writeText(url);
        copy.textContent = "Copied";
      } catch {
        copy.textContent = "Select and copy";
      }
    });
    replace(out, h("div.row", null, input, copy),
      h("p.muted", null, `${inv.uses_left} uses left · expires ${formatDate(inv.expires_at)}`));
  });
  root.append(h("section.card", null, h("h1", null, "Invite friends"),
    h("p.muted", null, "Echo Hub is invite-only. Share a link with people you know."), form, out));
}
