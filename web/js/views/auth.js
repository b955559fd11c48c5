// Sign in, and join with an invite (the page at /join/<code>).

import { post } from "../api.js";
import { field, handleForm } from "../components.js";
import { h } from "../dom.js";

function shell(root, title, intro, form, footer, notice = null) {
  root.append(
    h("section.auth", null,
      h("div.auth-brand", { "aria-hidden": "true" }, "◉"),
      h("h1", null, title),
      notice ? h("p.banner.danger.signed-out", { role: "alert" }, notice) : null,
      h("p.lead", null, intro),
      form,
      footer),
  );
}

export function signInView(root, { notice = null } = {}, onSignedIn) {
  const form = h("form.stack", { "aria-label": "Sign in" },
    field("Handle", { name: "handle", autocomplete: "username", required: true, autocapitalize: "none", spellcheck: false }),
    field("Password", { name: "password", type: "password", autocomplete: "current-password", required: true }),
    h("button.primary", { type: "submit" }, "Sign in"));
  handleForm(form, async (data) => {
    const res = await post("/api/login", { handle: data.get("handle").trim(), password: data.get("password") });
    onSignedIn(res.user);
  });
  shell(root, "Sign in to Echo Hub", "Short Echoes, playful effects and footprints from your friends — live.", form,
    h("p.muted", null, "New here? Echo Hub is invite-only: ask a member for an invite link."), notice);
  form.querySelector("input").focus();
}

export function joinView(root, { code }, onSignedIn) {
  const adult = new Date();
  adult.setFullYear(adult.getFullYear() - 18);
  const form = h("form.stack", { "aria-label": "Join Echo Hub" },
    h("input", { type: "hidden", name: "invite", value: code }),
    field("Handle", { name: "handle", autocomplete: "username", required: true, minLength: 3, maxLength: 20, autocapitalize: "none", spellcheck: false },
      "3–20 letters a–z, digits or _"),
    field("Display name", { name: "display_name", autocomplete: "nickname", required: true }),
    field("Password", { name: "password", type: "password", autocomplete: "new-password", required: true, minLength: 8 }, "At least 8 characters"),
    field("Birth date", { name: "birthdate", type: "date", required: true, max: adult.toISOString().slice(0, 10) }, "You must be 18 or older"),
    h("button.primary", { type: "submit" }, "Join"));
  handleForm(form, async (data) => {
    const body = Object.fromEntries(["invite", "handle", "display_name", "password", "birthdate"].map((k) => [k, data.get(k)]));
    body.handle = body.handle.trim().toLowerCase();
    const res = await post("/api/signup", body);
    onSignedIn(res.user);
  });
  shell(root, "You're invited", "Pick a handle and join your friends on Echo Hub.", form,
    h("p.muted", null, "Already a member? ", h("a", { href: "/" }, "Sign in")));
  form.querySelector("input:not([type=hidden])").focus();
}
