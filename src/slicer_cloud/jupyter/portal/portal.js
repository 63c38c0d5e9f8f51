// The portal's data, process and jobs sections. Everything comes from the compute API through
// Jupyter's proxy (<base>slicer-api/), which adds the service's secret; this page only needs
// Jupyter's login.
"use strict";

const { BASE, API, VIEWER, el, request, postJSON, setStatus } = window.SlicerPortal;
const FILE_TYPES = ["image", "geometry", "table", "transform", "file"];
const ACCEPTS = { image: ["volume", "segmentation"], geometry: ["model"], table: ["table"] };
const ACTIVE = ["queued", "running"];
const JOBS_POLL_MS = 1500;

let items = [];
let modules = [];
let selectedItem = null;
let jobEvents = null;
let jobsTimer = null;

function viewerLink(item) {
  return VIEWER + "?open=" + encodeURIComponent(item.path);
}

async function listItems() {
  const found = [];
  for (let offset = 0; offset < 10000; offset += 500) {  // bounded: at most 20 pages
    const page = await request(`${API}items?offset=${offset}&limit=500`);
    found.push(...page.items);
    if (found.length >= page.total || page.items.length === 0) break;
  }
  return found;
}

// Files of the data folder that the API does not know yet are registered (headers checked there).
async function syncFiles() {
  const listing = await request(BASE + "slicer/files");
  document.getElementById("data-hint").textContent = `Data folder: ${listing.root}`;
  let known = await listItems();
  const registered = new Set(known.filter((i) => i.source && i.source.type === "path").map((i) => i.path));
  const failures = [];
  for (const file of listing.files) {
    if (registered.has(file.path)) continue;
    try {
      await postJSON(API + "items", { path: file.path });
    } catch (error) {
      failures.push(`${file.path}: ${error.message}`);
    }
  }
  if (failures.length) setStatus("Some files could not be read: " + failures.join("; "), true);
  known = await listItems();
  return { items: known, failures };
}

function describe(item) {
  const parts = [item.kind];
  if (item.dimensions) parts.push(item.dimensions.join("×"));
  if (item.source && item.source.type === "job") parts.push("result");
  return parts.join(" · ");
}

// A thumbnail is rendered by the API on first request (seconds for a large scan): until it
// arrives the frame says so, and a failure says that too instead of staying black.
function thumbnail(item) {
  const frame = el("div", { class: "thumb loading", "aria-busy": "true" }, el("span", { class: "spinner", "aria-hidden": "true" }), el("span", { class: "thumb-text", text: "Rendering preview…" }));
  const image = el("img", { src: `${API}items/${item.id}/slice.png?size=180`, alt: `${item.name}, middle axial slice` });
  const done = (ok) => {
    frame.classList.remove("loading");
    frame.removeAttribute("aria-busy");
    if (ok) frame.replaceChildren(image);
    else frame.replaceChildren(el("span", { class: "thumb-text", text: "No preview" }));
    frame.classList.toggle("failed", !ok);
  };
  image.addEventListener("load", () => done(true));
  image.addEventListener("error", () => done(false));
  frame.append(image);  // hidden by CSS while loading
  return frame;
}

function card(item) {
  const picture = ["volume", "segmentation"].includes(item.kind)
    ? thumbnail(item)
    : el("div", { class: "noimage", text: item.kind });
  const actions = el("div", { class: "actions" });
  if (["volume", "segmentation", "model"].includes(item.kind)) {
    actions.append(el("a", { class: "button open-viewer", href: viewerLink(item), target: "_blank", rel: "noopener", text: "Open in viewer" }));
  }
  actions.append(el("button", { type: "submit", class: "process", text: "Process", onclick: () => openProcess(item) }));
  return el("div", { class: "card", "data-item-id": item.id, "data-path": item.path },
    picture, el("div", { class: "name", text: item.name }), el("div", { class: "meta", text: describe(item) }), actions);
}

function renderItems() {
  const box = document.getElementById("items");
  box.replaceChildren(...items.map(card));
  if (!items.length) box.append(el("p", { class: "hint", text: "No images yet: put NRRD, NIfTI or MetaImage files in the data folder and reload." }));
}

// --- processing ---------------------------------------------------------------------------
function field(parameter) {
  const id = "param-" + parameter.name;
  const label = parameter.label || parameter.name;
  let input;
  if (FILE_TYPES.includes(parameter.type)) {
    const accepted = ACCEPTS[parameter.type];
    input = el("select", { id, name: parameter.name });
    if (!parameter.required) input.append(el("option", { value: "", text: "(none)" }));
    for (const item of items) {
      if (accepted && !accepted.includes(item.kind)) continue;
      input.append(el("option", { value: item.id, text: item.name, selected: selectedItem && item.id === selectedItem.id && parameter.index === 0 }));
    }
  } else if (parameter.type === "boolean") {
    input = el("input", { id, name: parameter.name, type: "checkbox", checked: parameter.default === true });
  } else if (parameter.elements) {
    input = el("select", { id, name: parameter.name });
    for (const element of parameter.elements) input.append(el("option", { value: element, text: element, selected: element === parameter.default }));
  } else if (["integer", "float", "double"].includes(parameter.type)) {
    const c = parameter.constraints || {};
    input = el("input", {
      id, name: parameter.name, type: "number", value: parameter.default ?? "",
      step: c.step ?? (parameter.type === "integer" ? 1 : "any"), min: c.minimum, max: c.maximum,
    });
  } else {
    const shown = Array.isArray(parameter.default) ? parameter.default.join(",") : parameter.default;
    input = el("input", { id, name: parameter.name, type: "text", value: shown ?? "", placeholder: parameter.type.includes("vector") || ["point", "region"].includes(parameter.type) ? "comma-separated" : "" });
  }
  input.dataset.type = parameter.type;
  return el("label", { for: id }, label, input, el("span", { class: "description", text: parameter.description || "" }));
}

async function showModule(name) {
  const descriptor = await request(API + "modules/" + encodeURIComponent(name));
  document.getElementById("module-description").textContent = descriptor.description || "";
  const inputs = descriptor.parameters.filter((p) => p.channel === "input");
  document.getElementById("fields").replaceChildren(...inputs.map(field));
}

function formParameters() {
  const parameters = {};
  for (const input of document.querySelectorAll("#fields input, #fields select")) {
    const type = input.dataset.type;
    if (input.type === "checkbox") parameters[input.name] = input.checked;
    else if (input.value === "") continue;
    else if (input.type === "number") parameters[input.name] = Number(input.value);
    else if (type.endsWith("-vector") || ["point", "region"].includes(type)) parameters[input.name] = input.value.split(",").map((v) => v.trim());
    else parameters[input.name] = input.value;
  }
  return parameters;
}

async function openProcess(item) {
  selectedItem = item;
  document.getElementById("process").hidden = false;
  document.getElementById("process-item").textContent = "· " + item.name;
  document.getElementById("job").hidden = true;
  if (!modules.length) modules = await request(API + "modules");
  const select = document.getElementById("module");
  const preferred = select.value || (modules.find((m) => m.name === "threshold") || modules[0]).name;
  select.replaceChildren(...modules.map((m) => el("option", { value: m.name, text: `${m.title} (${m.category})`, selected: m.name === preferred })));
  await showModule(select.value);
  document.getElementById("process").scrollIntoView();
}

function followJob(job) {
  const box = document.getElementById("job");
  box.hidden = false;
  document.getElementById("job-title").textContent = `${job.module} job ${job.id}`;
  const stateText = document.getElementById("job-state");
  const progress = document.getElementById("job-progress");
  const result = document.getElementById("job-result");
  result.replaceChildren();
  stateText.textContent = job.state;
  if (jobEvents) jobEvents.close();
  jobEvents = new EventSource(`${API}jobs/${job.id}/events`, { withCredentials: true });
  const update = (event) => {
    const data = JSON.parse(event.data);
    if (data.state) stateText.textContent = data.state;
    if (typeof data.progress === "number") progress.value = data.progress;
    if (data.comment !== undefined) document.getElementById("job-comment").textContent = data.comment || "";
  };
  jobEvents.addEventListener("state", update);
  jobEvents.addEventListener("progress", update);
  jobEvents.addEventListener("end", async (event) => {
    jobEvents.close();
    jobEvents = null;
    const final = JSON.parse(event.data);
    stateText.textContent = final.state;
    stateText.className = "state-" + final.state;
    document.getElementById("job-comment").textContent = "";
    progress.value = 1;
    if (final.state !== "succeeded") {
      result.append(el("p", { class: "state-failed", text: final.error || "The job did not succeed." }));
    } else {
      await showResults(final, result);
      items = await listItems();
      renderItems();
      setStatus(`${items.length} item${items.length === 1 ? "" : "s"}.`);
    }
    renderJobs();
  });
  jobEvents.onerror = () => { /* the browser reconnects; "end" closes the stream for good */ };
}

async function showResults(job, box) {
  const returned = Object.entries(job.return_parameters || {});
  if (returned.length) {
    box.append(el("table", {}, ...returned.map(([k, v]) => el("tr", {}, el("th", { text: k }), el("td", { text: JSON.stringify(v) })))));
  }
  for (const id of job.outputs || []) {
    const output = await request(API + "items/" + id);
    const row = el("p", { class: "output" }, `${output.name} (${output.kind}) `);
    if (["volume", "segmentation", "model"].includes(output.kind)) {
      row.append(el("a", { class: "button open-result", href: viewerLink(output), target: "_blank", rel: "noopener", text: "Open in viewer" }));
    }
    row.append(" ", el("a", { href: `${API}items/${id}/file`, text: "Download" }));
    box.append(row);
  }
}

async function submitJob(event) {
  event.preventDefault();
  const module = document.getElementById("module").value;
  try {
    const job = await postJSON(API + "jobs", { module, parameters: formParameters() });
    followJob(job);
    renderJobs();
  } catch (error) {
    document.getElementById("job").hidden = false;
    document.getElementById("job-state").textContent = "refused";
    document.getElementById("job-result").replaceChildren(el("p", { class: "state-failed", text: error.message }));
  }
}

function jobProgress(job) {
  if (!ACTIVE.includes(job.state)) return el("td", { class: "progress-cell" });
  const value = typeof job.progress === "number" ? job.progress : 0;
  return el("td", { class: "progress-cell" },
    el("progress", { max: "1", value: String(value), "aria-label": `${job.module} progress` }),
    el("span", { class: "percent", text: ` ${Math.round(value * 100)}%` }));
}

async function renderJobs() {
  const rows = document.getElementById("job-rows");
  clearTimeout(jobsTimer);
  try {
    const page = await request(API + "jobs?limit=20");
    rows.replaceChildren(...page.jobs.map((job) => {
      const links = el("td");
      for (const id of job.outputs || []) {
        const item = items.find((i) => i.id === id);
        if (item) links.append(el("a", { href: viewerLink(item), target: "_blank", rel: "noopener", text: item.name }), " ");
      }
      if (job.state === "failed" && job.error) links.append(el("span", { class: "state-failed", text: job.error }));
      return el("tr", { "data-job-id": job.id, "data-state": job.state }, el("td", { text: job.module }),
        el("td", { class: "state-" + job.state, text: job.state }), jobProgress(job),
        el("td", { text: (job.started || job.created || "").replace("T", " ").slice(0, 19) }), links);
    }));
    if (!page.jobs.length) rows.append(el("tr", {}, el("td", { colspan: 5, class: "hint", text: "No jobs yet: Process an item to start one." })));
    const active = page.jobs.filter((job) => ACTIVE.includes(job.state)).length;
    document.getElementById("jobs-summary").textContent = active ? `${active} running` : "";
    // While something runs, follow it; the timer stops by itself once nothing is active.
    if (active) jobsTimer = setTimeout(renderJobs, JOBS_POLL_MS);
  } catch (error) {
    rows.replaceChildren(el("tr", {}, el("td", { colspan: 5, text: error.message })));
  }
}

async function start() {
  document.getElementById("module").addEventListener("change", (e) => showModule(e.target.value));
  document.getElementById("process-form").addEventListener("submit", submitJob);
  document.getElementById("close-process").addEventListener("click", () => { document.getElementById("process").hidden = true; });
  try {
    const synced = await syncFiles();
    items = synced.items;
    renderItems();
    if (!synced.failures.length) setStatus(`${items.length} item${items.length === 1 ? "" : "s"}.`);
    document.body.dataset.ready = "true";
    renderJobs();
  } catch (error) {
    setStatus("The compute service did not answer: " + error.message, true);
  }
}

start();
