// Footprints: who visited my profile, newest first, with live arrivals from `me`.

import { api } from "../api.js";
import { memberLink } from "../components.js";
import { h, timeEl } from "../dom.js";
import { errorText, t } from "../i18n.js";

export async function footprintsView(root, _params, ctx) {
  const list = h("ol.footprints", { "aria-label": t("footprints.listLabel") });
  const empty = h("p.empty", null, t("footprints.empty"));
  const status = h("p.feed-status", { role: "status" });
  root.append(
    h("section.card", null,
      h("h1", null, t("footprints.title")),
      h("p.muted", null, t("footprints.intro")),
      status, list, empty),
  );
  const row = (item, fresh) =>
    h(`li.footprint${fresh ? ".arrived" : ""}`, { dataset: { visitor: item.visitor.handle } },
      memberLink(item.visitor), " ", timeEl(item.at));
  const place = (item, fresh) => {
    for (const el of list.querySelectorAll("li")) if (el.dataset.visitor === item.visitor.handle) el.remove();
    list.prepend(row(item, fresh));
    empty.hidden = true;
  };
  // Live first, then the list, so an arrival in between is not missed.
  const onFootprint = (e) => place(e.detail.data, true);
  ctx.notifications.addEventListener("footprint", onFootprint);
  try {
    const data = await api("GET", "/api/footprints");
    const live = [...list.children];
    list.replaceChildren();
    for (const item of data.items) list.append(row(item, false));
    for (const el of live.reverse()) {
      for (const old of list.querySelectorAll("li")) if (old.dataset.visitor === el.dataset.visitor) old.remove();
      list.prepend(el);
    }
  } catch (err) {
    status.textContent = errorText(err);
  }
  empty.hidden = list.children.length > 0;
  return () => ctx.notifications.removeEventListener("footprint", onFootprint);
}
