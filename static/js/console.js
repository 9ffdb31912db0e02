// The browser console (templates/instances/console.html): asks the portal for a console
// session, connects its websocket to the portal's console proxy (never to Proxmox), and shows
// the server's serial terminal with xterm.js or its screen with noVNC (both from our static
// files, loaded only when needed).
//
// The proxy's first message is the text "ready"; then the terminal speaks termproxy's
// messages ("0:<length>:<data>" input, "1:<cols>:<rows>:" size, "2" ping) and the screen RFB.
// A console that cannot start, or ends, is closed with a reason this page shows.

const form = document.getElementById("console-form");
const statusLine = document.getElementById("console-status");
const screen = document.getElementById("console-screen");
// Module scripts have no document.currentScript; the page's nonce is on our script element.
const nonce = document.querySelector("script[type=module][nonce]")?.nonce || "";
const encoder = new TextEncoder();
let current = null;

function say(text) {
  statusLine.textContent = text;
}

// xterm.js adds <style> elements of its own; under the page's CSP they need its nonce.
function withStyleNonce(build) {
  const create = document.createElement;
  document.createElement = function (name, options) {
    const element = create.call(document, name, options);
    if (String(name).toLowerCase() === "style") {
      element.nonce = nonce;
    }
    return element;
  };
  try {
    return build();
  } finally {
    document.createElement = create;
  }
}

async function loadTerminal() {
  const [{ Terminal }, { FitAddon }] = await Promise.all([
    import(form.dataset.xterm),
    import(form.dataset.xtermFit),
  ]);
  return (socket) => {
    const fit = new FitAddon();
    const terminal = withStyleNonce(() => {
      const made = new Terminal({ cursorBlink: true, fontSize: 14, scrollback: 2000 });
      made.loadAddon(fit);
      made.open(screen);
      return made;
    });
    const send = (message) => socket.readyState === WebSocket.OPEN && socket.send(message);
    terminal.onData((data) => send(`0:${encoder.encode(data).length}:${data}`));
    terminal.onResize(({ cols, rows }) => send(`1:${cols}:${rows}:`));
    socket.addEventListener("message", (event) => {
      if (typeof event.data !== "string") {
        terminal.write(new Uint8Array(event.data));
      }
    });
    const refit = () => fit.fit();
    window.addEventListener("resize", refit);
    fit.fit();
    send(`1:${terminal.cols}:${terminal.rows}:`);
    const ping = setInterval(() => send("2"), 30000);
    terminal.focus();
    return () => {
      clearInterval(ping);
      window.removeEventListener("resize", refit);
      terminal.dispose();
    };
  };
}

async function loadScreen() {
  const { default: RFB } = await import(form.dataset.novnc);
  return (socket) => {
    const rfb = new RFB(screen, socket);
    let connected = true;
    rfb.scaleViewport = true;
    rfb.addEventListener("disconnect", () => {
      connected = false;
    });
    rfb.focus();
    return () => connected && rfb.disconnect();
  };
}

async function open(kind) {
  if (current) {
    current.stop();
  }
  const session = { stop: () => {}, ended: false };
  current = session;
  for (const button of form.querySelectorAll("button[name=kind]")) {
    button.setAttribute("aria-pressed", String(button.value === kind));
  }
  screen.replaceChildren();
  say("Connecting…");
  let attach;
  let answer;
  try {
    attach = await (kind === "screen" ? loadScreen() : loadTerminal());
    const body = new FormData(form);
    body.set("kind", kind);
    const response = await fetch(form.action, { method: "POST", body, credentials: "same-origin" });
    answer = await response.json();
    if (!response.ok) {
      say(answer.error || "The console could not be opened; try again.");
      return;
    }
  } catch {
    say("The console could not be opened; reload the page and try again.");
    return;
  }
  if (current !== session) {
    return;
  }
  // The session's token goes as a subprotocol, never in the URL; the proxy answers "binary".
  const socket = new WebSocket(answer.url, ["binary", answer.protocol]);
  socket.binaryType = "arraybuffer";
  let detach = () => {};
  session.stop = () => {
    session.ended = true;
    detach();
    socket.close();
  };
  socket.addEventListener("message", function ready(event) {
    if (event.data !== "ready") {
      return;
    }
    socket.removeEventListener("message", ready);
    detach = attach(socket);
    say(kind === "screen" ? "Connected to the screen." : "Connected to the serial terminal.");
  });
  socket.addEventListener("close", (event) => {
    if (session.ended) {
      return;
    }
    session.ended = true;
    say(`${event.reason || "The console closed."} Choose a console above to open it again.`);
  });
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  open(event.submitter?.value || form.querySelector("button[name=kind]").value);
});
open(form.querySelector("button[name=kind]").value);
