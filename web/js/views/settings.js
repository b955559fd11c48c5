// Settings: one's display name and bio (PATCH /api/me), and one's password
// (PUT /api/me/password; the other sessions end). The avatar joins here with media.

import { api, patch, put } from "../api.js";
import { field, handleForm, toast } from "../components.js";
import { h } from "../dom.js";
import { currentLanguage, LANGUAGES, setLanguage, t } from "../i18n.js";
import { visibleLength } from "../markup.js";

const MAX_NAME = 50;
const MAX_BIO = 160;

/** A live "n / max" under a text input, counting characters as the server does. */
function counted(input, max) {
  const counter = h("p.hint.counter", { id: `${input.id}-count`, "aria-live": "polite" });
  const paint = () => {
    const used = visibleLength(input.value.trim());
    counter.textContent = t("settings.counter", { used, max });
    counter.classList.toggle("over", used > max);
  };
  input.addEventListener("input", paint);
  input.setAttribute("aria-describedby", counter.id);
  paint();
  return counter;
}

export async function settingsView(root, _params, ctx) {
  const me = await api("GET", "/api/me");
  const nameField = field(t("settings.displayName"), { name: "display_name", value: me.display_name, required: true, autocomplete: "nickname" });
  const bioField = field(t("settings.bio"), { name: "bio", tag: "textarea", rows: 3, value: me.bio || "" }, t("settings.bioHint"));
  const name = nameField.querySelector("input");
  const bio = bioField.querySelector("textarea");
  nameField.append(counted(name, MAX_NAME));
  bioField.append(counted(bio, MAX_BIO));
  // A bio is one paragraph: Enter saves rather than starting a new line.
  bio.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.isComposing) {
      e.preventDefault();
      profileForm.requestSubmit();
    }
  });
  const profileForm = h("form.stack", { "aria-labelledby": "settings-profile" },
    h("h2", { id: "settings-profile" }, t("settings.profile")),
    nameField, bioField,
    h("button.primary", { type: "submit" }, t("settings.save")));
  handleForm(profileForm, async (data) => {
    const updated = await patch("/api/me", {
      display_name: String(data.get("display_name")),
      // Pasted line breaks become spaces: the server keeps one paragraph.
      bio: String(data.get("bio")).replace(/\s*[\r\n]+\s*/g, " "),
    });
    ctx.me = { ...ctx.me, display_name: updated.display_name, bio: updated.bio };
    bio.value = updated.bio;
    toast(t("settings.saved"));
  });

  const passwordForm = h("form.stack", { "aria-labelledby": "settings-password" },
    h("h2", { id: "settings-password" }, t("settings.password")),
    // For password managers: whose password this is.
    h("input", { type: "text", name: "username", value: me.handle, autocomplete: "username", hidden: true, readOnly: true }),
    field(t("settings.oldPassword"), { name: "old", type: "password", required: true, autocomplete: "current-password" }),
    field(t("settings.newPassword"), { name: "new", type: "password", required: true, minLength: 8, autocomplete: "new-password" }, t("settings.newPasswordHint")),
    h("button.primary", { type: "submit" }, t("settings.changePassword")));
  handleForm(passwordForm, async (data) => {
    const result = await put("/api/me/password", { old: String(data.get("old")), new: String(data.get("new")) });
    passwordForm.reset();
    toast(t("settings.passwordChanged", { count: result.sessions_ended }));
  });

  // The page's language, also at the foot of every page (out of reach below an endless
  // feed): the same choice, remembered on this device.
  const language = h("select", { id: "settings-language", name: "language" },
    LANGUAGES.map(({ code, name }) => h("option", { value: code, lang: code, selected: code === currentLanguage() }, name)));
  language.addEventListener("change", () => setLanguage(language.value));
  const languageSection = h("section.card", { "aria-labelledby": "settings-language-title" },
    h("h2", { id: "settings-language-title" }, t("language.label")),
    h("div.field", null, h("label", { htmlFor: "settings-language" }, t("language.label")), language));

  root.append(h("h1", null, t("settings.title")),
    h("section.card", null, profileForm),
    languageSection,
    h("section.card", null, passwordForm));
}
