// "Running for you": the viewer (and its tabs), the desktop and the compute API that this
// server started for the user, with memory and CPU, and a Stop button for each.
"use strict";

(function () {
  const { BASE, el, request, bytes } = window.SlicerPortal;
  const URL = BASE + "slicer/running";
  const POLL_MS = 5000;
  let timer = null;

  function stateText(service) {
    if (!service.running) return "not running";
    if (service.name === "slicer-viewer" && typeof service.tabs === "number") {
      return `running · ${service.tabs} tab${service.tabs === 1 ? "" : "s"}`;
    }
    return "running";
  }

  async function stop(service, button) {
    button.disabled = true;
    button.textContent = "Stopping…";
    try {
      await request(`${URL}/${service.name}/stop`, { method: "POST" });
    } catch (error) {
      window.SlicerPortal.setStatus(`Could not stop ${service.title}: ${error.message}`, true);
    }
    refresh();
  }

  function row(service) {
    const action = el("td");
    if (service.running) {
      const button = el("button", { type: "button", class: "stop", text: "Stop" });
      button.addEventListener("click", () => stop(service, button));
      action.append(button);
    }
    return el("tr", { "data-service": service.name, "data-running": String(service.running) },
      el("td", { text: service.title }),
      el("td", { class: service.running ? "state-running" : "hint", text: stateText(service) }),
      el("td", { class: "memory", text: service.running ? bytes(service.memory_bytes) : "" }),
      el("td", { class: "cpu", text: service.running ? `${service.cpu_percent.toFixed(0)}%` : "" }),
      action);
  }

  async function refresh() {
    clearTimeout(timer);
    const rows = document.getElementById("running-rows");
    try {
      const data = await request(URL);
      rows.replaceChildren(...data.services.map(row));
    } catch (error) {
      rows.replaceChildren(el("tr", {}, el("td", { colspan: 5, text: error.message })));
    }
    if (!document.hidden) timer = setTimeout(refresh, POLL_MS);
  }

  document.addEventListener("visibilitychange", () => { if (!document.hidden) refresh(); });
  refresh();
})();
