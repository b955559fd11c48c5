// Sign in, and join with an invite (the page at /join/<code>).

import { post } from "../api.js";
import { field, handleForm } from "../components.js";
import { h } from "../dom.js";
import { t, tParts } from "../i18n.js";

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
  const form = h("form.stack", { "aria-label": t("auth.signIn") },
    field(t("auth.handle"), { name: "handle", autocomplete: "username", required: true, autocapitalize: "none", spellcheck: false }),
    field(t("auth.password"), { name: "password", type: "password", autocomplete: "current-password", required: true }),
    h("button.primary", { type: "submit" }, t("auth.signIn")));
  handleForm(form, async (data) => {
    const res = await post("/api/login", { handle: data.get("handle").trim(), password: data.get("password") });
    onSignedIn(res.user);
  });
  shell(root, t("auth.signInTitle"), t("auth.signInLead"), form,
    h("p.muted", null, t("auth.inviteOnly")), notice);
  form.querySelector("input").focus();
}

export function joinView(root, { code }, onSignedIn) {
  const adult = new Date();
  adult.setFullYear(adult.getFullYear() - 18);
  const form = h("form.stack", { "aria-label": t("auth.joinLabel") },
    h("input", { type: "hidden", name: "invite", value: code }),
    field(t("auth.handle"), { name: "handle", autocomplete: "username", required: true, minLength: 3, maxLength: 20, autocapitalize: "none", spellcheck: false },
      t("auth.handleHint")),
    field(t("auth.displayName"), { name: "display_name", autocomplete: "nickname", required: true }),
    field(t("auth.password"), { name: "password", type: "password", autocomplete: "new-password", required: true, minLength: 8 }, t("auth.passwordHint")),
    field(t("auth.birthdate"), { name: "birthdate", type: "date", required: true, max: adult.toISOString().slice(0, 10) }, t("auth.birthdateHint")),
    h("button.primary", { type: "submit" }, t("auth.join")));
  handleForm(form, async (data) => {
    const body = Object.fromEntries(["invite", "handle", "display_name", "password", "birthdate"].map((k) => [k, data.get(k)]));
    body.handle = body.handle.trim().toLowerCase();
    const res = await post("/api/signup", body);
    onSignedIn(res.user);
  });
  shell(root, t("auth.invitedTitle"), t("auth.invitedLead"), form,
    h("p.muted", null, tParts("auth.alreadyMember", { link: h("a", { href: "/" }, t("auth.signIn")) })));
  form.querySelector("input:not([type=hidden])").focus();
}
