// Helpers every section of the portal uses: window.SlicerPortal. Each section (portal.js: data,
// process and jobs; running.js: what runs for this user; ...) is a script of its own.
"use strict";

(function () {
  const BASE = document.body.dataset.baseUrl;

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else if (value !== undefined && value !== null && value !== false) node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children) node.append(child);
    return node;
  }

  async function request(url, options = {}) {
    const headers = { ...(options.headers || {}) };
    // On every request, GET included: behind JupyterHub (4.1 and later) a cookie-authenticated fetch
    // that is not a page navigation is refused without it.
    headers["X-XSRFToken"] = document.body.dataset.xsrf;
    const response = await fetch(url, { credentials: "same-origin", ...options, headers });
    if (!response.ok) {
      let message = response.statusText;
      try {
        const body = await response.json();
        message = body.detail || body.error || body.message || message;
      } catch (_) { /* not JSON */ }
      throw new Error(`${message} (HTTP ${response.status})`);
    }
    return response.status === 204 ? null : response.json();
  }

  function setStatus(text, isError = false) {
    const status = document.getElementById("status");
    status.textContent = text;
    status.classList.toggle("error", isError);
  }

  function bytes(n) {
    if (n >= 1024 ** 3) return (n / 1024 ** 3).toFixed(1) + " GB";
    return Math.round(n / 1024 ** 2) + " MB";
  }

  window.SlicerPortal = {
    BASE,
    API: BASE + "slicer-api/api/",
    VIEWER: BASE + "slicer-viewer/",
    el,
    request,
    postJSON: (url, body) =>
      request(url, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) }),
    setStatus,
    bytes,
  };
})();
