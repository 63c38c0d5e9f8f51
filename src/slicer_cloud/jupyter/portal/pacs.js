// The portal's PACS section: the newest studies of each configured DICOMweb server (from the
// compute API's /api/dicomweb routes, through the same proxy and login as the rest of the page),
// each study's image series with an "Open in viewer" link (?open=dicomweb:SERVER/STUDY/SERIES).
"use strict";

(function () {
  const base = document.body.dataset.baseUrl;
  const api = base + "slicer-api/api/dicomweb/";
  const viewer = base + "slicer-viewer/";
  const section = document.getElementById("pacs");
  if (!section) return;
  const list = document.getElementById("pacs-studies");

  function node(tag, text, attrs = {}) {
    const n = document.createElement(tag);
    if (text) n.textContent = text;
    for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v);
    return n;
  }

  async function get(url) {
    const response = await fetch(url, { credentials: "same-origin", headers: { "X-XSRFToken": document.body.dataset.xsrf } });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(body.detail || response.statusText);
    return body;
  }

  async function showSeries(study, row) {
    const holder = row.querySelector(".pacs-series");
    if (holder.childElementCount) { holder.replaceChildren(); return; }
    holder.append(node("span", "Loading the series…", { class: "hint" }));
    try {
      const series = await get(`${api}studies/${encodeURIComponent(study.study)}/series?server=${encodeURIComponent(study.server)}`);
      holder.replaceChildren();
      for (const s of series) {
        if (["SR", "PR", "KO"].includes(s.modality)) continue;
        const ref = `dicomweb:${study.server}/${study.study}/${s.series}`;
        const line = node("div", "", { class: "pacs-series-line" });
        line.append(node("span", `${s.modality} · ${s.description || "(no description)"} · ${s.instances} images `));
        line.append(node("a", s.modality === "SEG" ? "Open segmentation" : "Open in viewer",
          { class: "button open-pacs", href: viewer + "?open=" + encodeURIComponent(ref), target: "_blank", rel: "noopener" }));
        holder.append(line);
      }
    } catch (error) {
      holder.replaceChildren(node("span", `Could not list the series: ${error.message}`, { class: "error" }));
    }
  }

  async function load() {
    let servers;
    try {
      servers = await get(api + "servers");
    } catch (_) {
      return;  // the API is not up yet or has no DICOMweb routes: the section stays hidden
    }
    if (!servers.length) return;
    section.hidden = false;
    try {
      const studies = await get(api + "recent?limit=10");
      list.replaceChildren();
      for (const study of studies) {
        if (study.error) {
          list.append(node("li", `${study.server}: ${study.error}`, { class: "error" }));
          continue;
        }
        const row = node("li", "", { class: "pacs-study" });
        const title = node("button", `${study.patient_name || "(no name)"} · ${study.date} · ${study.description || "(no description)"} · ${study.modalities} (${study.server})`,
          { type: "button", class: "linklike" });
        title.addEventListener("click", () => showSeries(study, row));
        row.append(title, node("div", "", { class: "pacs-series" }));
        list.append(row);
      }
      if (!studies.length) list.append(node("li", "No studies on the configured servers yet.", { class: "hint" }));
    } catch (error) {
      list.replaceChildren(node("li", `Could not reach the PACS: ${error.message}`, { class: "error" }));
    }
  }

  load();
})();
