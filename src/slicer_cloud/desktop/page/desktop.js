// The desktop page: one noVNC connection to this server's websocket bridge, with remote resize,
// clipboard both ways, and reconnection after a drop. Its state is mirrored on <body>
// (data-state, data-connects) for people and for tests.
import RFB from "./novnc/core/rfb.js";

const $ = (id) => document.getElementById(id);
const screen = $("screen");
const clipText = $("clipboard-text");

const RETRY_FIRST_MS = 500;
const RETRY_MAX_MS = 10000;

let rfb = null;
let attempts = 0;
let connects = 0;
let retryTimer = null;

function setState(state, text) {
  document.body.dataset.state = state;
  $("state-text").textContent = text;
}

function socketUrl() {
  // Relative to the page, so the desktop works behind any URL prefix.
  const url = new URL("websockify", window.location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  url.search = "";
  url.hash = "";
  return url.href;
}

function connect() {
  retryTimer = null;
  setState("connecting", attempts ? `Reconnecting (attempt ${attempts})…` : "Connecting…");
  rfb = new RFB(screen, socketUrl(), { shared: true });
  rfb.resizeSession = true;    // the remote screen follows the browser window
  rfb.scaleViewport = false;
  rfb.clipViewport = false;
  rfb.focusOnClick = true;
  rfb.qualityLevel = 6;
  rfb.compressionLevel = 2;
  rfb.addEventListener("connect", onConnect);
  rfb.addEventListener("disconnect", onDisconnect);
  rfb.addEventListener("clipboard", onRemoteClipboard);
  rfb.addEventListener("desktopname", (event) => { document.title = event.detail.name; });
  rfb.addEventListener("securityfailure", (event) => {
    setState("refused", `The VNC server refused the connection: ${event.detail.reason || "no reason given"}`);
  });
}

function onConnect() {
  attempts = 0;
  connects += 1;
  document.body.dataset.connects = String(connects);
  setState("connected", "Connected");
  rfb.focus();
}

async function onDisconnect() {
  rfb = null;
  attempts += 1;
  // A refused status means the token cookie is gone or the service restarted with a new token:
  // retrying cannot help, so say what to do instead.
  try {
    const response = await fetch("status", { cache: "no-store" });
    if (response.status === 403) {
      setState("refused", "Access refused: open the URL printed by slicer-cloud (with ?token=) again.");
      return;
    }
  } catch (error) {
    // the server is unreachable: keep retrying
  }
  const delay = Math.min(RETRY_FIRST_MS * 2 ** (attempts - 1), RETRY_MAX_MS);
  setState("disconnected", `Disconnected; reconnecting in ${Math.ceil(delay / 1000)} s…`);
  retryTimer = setTimeout(connect, delay);
}

function reconnectNow() {
  if (retryTimer !== null) {
    clearTimeout(retryTimer);
    connect();
  }
}

// -- clipboard ---------------------------------------------------------------------------------
function onRemoteClipboard(event) {
  clipText.value = event.detail.text;
  $("clipboard-note").textContent = "Received from the remote desktop.";
  const button = $("clipboard-toggle");
  button.classList.add("flash");
  setTimeout(() => button.classList.remove("flash"), 1500);
  if (navigator.clipboard && navigator.clipboard.writeText) {
    navigator.clipboard.writeText(event.detail.text).catch(() => {});
  }
}

function sendClipboard() {
  if (!rfb) {
    $("clipboard-note").textContent = "Not connected.";
    return;
  }
  rfb.clipboardPasteFrom(clipText.value);
  $("clipboard-note").textContent = "Sent: paste it on the remote desktop.";
  rfb.focus();
}

async function pullLocalClipboard() {
  // Only where the browser already granted clipboard reading: never prompt on focus.
  if (!rfb || !navigator.clipboard || !navigator.clipboard.readText || !navigator.permissions) return;
  try {
    const permission = await navigator.permissions.query({ name: "clipboard-read" });
    if (permission.state !== "granted") return;
    const text = await navigator.clipboard.readText();
    if (text && text !== clipText.value) {
      clipText.value = text;
      rfb.clipboardPasteFrom(text);
    }
  } catch (error) {
    // unsupported permission name or denied: the panel still works
  }
}

function toggleClipboard() {
  const panel = $("clipboard-panel");
  panel.hidden = !panel.hidden;
  $("clipboard-toggle").setAttribute("aria-expanded", String(!panel.hidden));
}

// -- banner ------------------------------------------------------------------------------------
async function showStatus() {
  try {
    const response = await fetch("status", { cache: "no-store" });
    if (!response.ok) return;
    const status = await response.json();
    if (!status.slicer_installed && status.message) {
      $("banner-text").textContent = status.message;
      $("banner").hidden = false;
    }
  } catch (error) {
    // the connection state already tells the user
  }
}

$("banner-close").addEventListener("click", () => { $("banner").hidden = true; });
$("clipboard-toggle").addEventListener("click", toggleClipboard);
$("clipboard-send").addEventListener("click", sendClipboard);
$("fullscreen").addEventListener("click", () => {
  if (document.fullscreenElement) document.exitFullscreen();
  else document.documentElement.requestFullscreen().catch(() => {});
});
window.addEventListener("online", reconnectNow);
window.addEventListener("focus", pullLocalClipboard);

showStatus();
connect();
