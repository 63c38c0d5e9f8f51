// slicer-cloud viewer: browser-side helpers that do not belong on the websocket.
// Uploads go over plain HTTP to the gateway, streamed to disk there; the session is then told
// which staged file to open.
(function () {
  "use strict";

  function gatewayBase() {
    // The page lives at <base>s/<session>/ ; the gateway's API at <base>api/.
    const path = window.location.pathname;
    const at = path.lastIndexOf("/s/");
    return at >= 0 ? path.slice(0, at + 1) : "/";
  }

  async function upload(file) {
    const url = gatewayBase() + "api/upload?name=" + encodeURIComponent(file.name);
    const response = await fetch(url, {
      method: "POST",
      body: file,
      credentials: "same-origin",
      headers: { "Content-Type": "application/octet-stream" },
    });
    let payload = {};
    try {
      payload = await response.json();
    } catch (e) {
      payload = { error: response.status + " " + response.statusText };
    }
    if (!response.ok) {
      throw new Error(payload.error || response.statusText);
    }
    return payload.staged;
  }

  document.addEventListener("change", async function (event) {
    const input = event.target;
    if (!input || input.id !== "sc-upload-input" || !input.files || !input.files.length) {
      return;
    }
    const file = input.files[0];
    input.value = "";
    try {
      await window.trame.trigger("sc_upload_started", [file.name, file.size]);
      const staged = await upload(file);
      await window.trame.trigger("sc_open_upload", [staged, file.name]);
    } catch (error) {
      await window.trame.trigger("sc_upload_failed", [file.name, String(error.message || error)]);
    }
  });

  // 3D in the browser needs WebGL2; the session decides (with its own GPU or not) once told.
  function hasWebGL2() {
    try {
      const gl = document.createElement("canvas").getContext("webgl2");
      return !!gl;
    } catch (e) {
      return false;
    }
  }

  function reportWebGL2() {
    const trame = window.trame;
    if (!trame || !trame.state || !trame.state.set) {
      setTimeout(reportWebGL2, 100);
      return;
    }
    trame.state.set("sc_webgl2", hasWebGL2());
  }
  reportWebGL2();

  window.slicerCloud = { upload: upload, gatewayBase: gatewayBase, hasWebGL2: hasWebGL2 };
})();
