// Loaded first into every Node.js process of a micro (NODE_OPTIONS=--require): a request that
// did not come through the gate is refused before the app's code sees it, whatever the server
// (Express, Koa, Fastify, Next, Vite, SvelteKit: all are `http.Server`s).
//
// A micro listens on 127.0.0.1:$PORT, where a page on any other local origin can send it
// requests (a no-cors fetch, a form) and, with DNS rebinding, read the answers. The gate proves
// itself on every request it forwards: `X-Space-Gate` carries the per-run secret this process
// finds in SPACE_DEV_GATE_PROOF, which no page knows (nor can a page add a custom header to a
// request for another origin without a CORS preflight, which never carries it and is refused).
//
// A request without the proof passes only when it names a loopback Host and comes from a process
// of the same app (its server-side rendering fetching its own port, another micro of the app).
// On Linux the calling process is looked up in /proc, once per connection: the socket's owner
// must have the app's proof in its environment. Where /proc cannot tell, a request a browser
// marked as sent by a page (Sec-Fetch-Site, Sec-Fetch-Dest, Origin) is refused, others pass.
// The python side (site/_space_dev_guard.py) keeps the same rules.
"use strict";

const http = require("http");
const crypto = require("crypto");
const fs = require("fs");

const PROOF = process.env.SPACE_DEV_GATE_PROOF;
const PROOF_HEADER = "x-space-gate";
const PROBE_HEADER = "x-space-probe";
const GUARD_HEADER = "X-Space-Guard";
const LOOPBACK_NAMES = new Set(["localhost", "127.0.0.1", "::1"]);
// What a browser adds to a page's request and server-side clients do not (Node's own fetch sends
// Sec-Fetch-Mode, so that one is no sign); what decides where /proc cannot tell.
const BROWSER_MARKS = ["sec-fetch-site", "sec-fetch-dest", "origin"];
const NOTE_EVERY_MS = 60000;
const PASS = "pass";
const PROBE = "probe";
const CHECKED = Symbol("space-dev: caller of this app");
const REQUEST_EVENTS = new Set(["request", "upgrade", "connect", "checkContinue", "checkExpectation"]);

function hostName(header) {
  const text = header.trim().toLowerCase();
  if (text.startsWith("[")) return text.slice(1).split("]")[0];
  const colon = text.lastIndexOf(":");
  const name = colon >= 0 && /^\d+$/.test(text.slice(colon + 1)) ? text.slice(0, colon) : text;
  return name.replace(/\.+$/, "");
}

// The socket table holding a connection of `host`, and the address as it writes it
// ("0100007F:1F90" for 127.0.0.1:8080); null for what is not an IP address.
function tableAddress(host, port) {
  let text = String(host).split("%")[0];
  if (/^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(text)) text = text.slice(7); // a v4 client
  let bytes;
  let table;
  if (text.includes(":")) {
    let tail = null;
    const v4 = text.match(/^(.*:)(\d+\.\d+\.\d+\.\d+)$/);
    if (v4) {
      text = `${v4[1]}0:0`;
      tail = v4[2].split(".").map(Number);
    }
    const [head, rest] = text.split("::");
    const front = head ? head.split(":") : [];
    const back = rest === undefined ? null : rest ? rest.split(":") : [];
    const groups = back === null ? front
      : [...front, ...Array(Math.max(0, 8 - front.length - back.length)).fill("0"), ...back];
    if (groups.length !== 8) return null;
    bytes = [];
    for (const group of groups) {
      const value = parseInt(group || "0", 16);
      bytes.push(value >> 8, value & 255);
    }
    if (tail) bytes.splice(12, 4, ...tail);
    table = "/proc/net/tcp6";
  } else {
    bytes = text.split(".").map(Number);
    if (bytes.length !== 4 || bytes.some((b) => !(b >= 0 && b <= 255))) return null;
    table = "/proc/net/tcp";
  }
  // The kernel prints each 32-bit word of the address in the machine's order (little-endian).
  let hex = "";
  for (let i = 0; i < bytes.length; i += 4) {
    for (let j = 3; j >= 0; j--) hex += bytes[i + j].toString(16).padStart(2, "0");
  }
  return { table, text: `${hex.toUpperCase()}:${port.toString(16).toUpperCase().padStart(4, "0")}` };
}

// The inode of the client's socket of the connection `socket` serves: the socket whose own
// address is the connection's remote one and which is connected to its local one.
function socketInode(socket) {
  const client = tableAddress(socket.remoteAddress, socket.remotePort);
  const server = tableAddress(socket.localAddress, socket.localPort);
  if (!client || !server) return { inode: null, readable: fs.existsSync("/proc/net/tcp") };
  let text;
  try {
    text = fs.readFileSync(client.table, "latin1");
  } catch {
    return { inode: null, readable: false };
  }
  const lines = text.split("\n");
  for (let i = 1; i < lines.length; i++) {
    const fields = lines[i].trim().split(/\s+/);
    if (fields.length >= 10 && fields[1] === client.text && fields[2] === server.text) {
      return { inode: fields[9], readable: true };
    }
  }
  return { inode: null, readable: true };
}

// Whether the process at the other end belongs to this app; null where /proc cannot tell.
function fromThisApp(marker, socket) {
  const { inode, readable } = socketInode(socket);
  if (!readable) return null;
  if (inode === null) return false;
  const link = `socket:[${inode}]`;
  let pids;
  try {
    pids = fs.readdirSync("/proc").filter((p) => /^\d+$/.test(p));
  } catch {
    return null;
  }
  for (const pid of pids) {
    let environ;
    try {
      environ = Buffer.concat([Buffer.from([0]), fs.readFileSync(`/proc/${pid}/environ`)]);
    } catch {
      continue;
    }
    if (environ.indexOf(marker) < 0) continue;
    let fds;
    try {
      fds = fs.readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        if (fs.readlinkSync(`/proc/${pid}/fd/${fd}`) === link) return true;
      } catch {
        // the descriptor closed meanwhile
      }
    }
  }
  return false;
}

function install() {
  const proof = Buffer.from(PROOF);
  const marker = Buffer.from(`\0SPACE_DEV_GATE_PROOF=${PROOF}\0`);
  const appAddress = process.env.DETA_SPACE_APP_HOSTNAME || "localhost";
  let notedAt = -NOTE_EVERY_MS;

  function verdict(req) {
    const headers = req.headers;
    const given = headers[PROOF_HEADER];
    if (typeof given === "string") {
      const sent = Buffer.from(given);
      if (sent.length === proof.length && crypto.timingSafeEqual(sent, proof)) {
        return headers[PROBE_HEADER] !== undefined ? PROBE : PASS;
      }
    }
    const host = headers.host;
    if (host !== undefined && !LOOPBACK_NAMES.has(hostName(host))) {
      return `its Host (${host.slice(0, 80)}) is not a loopback name (DNS rebinding?)`;
    }
    const socket = req.socket;
    if (socket[CHECKED] === undefined) {
      socket[CHECKED] = fromThisApp(marker, socket);
    }
    if (socket[CHECKED] === false) {
      return "it did not come through the gate, nor from a process of the app";
    }
    if (socket[CHECKED] === null && BROWSER_MARKS.some((mark) => headers[mark] !== undefined)) {
      return "a browser page sent it straight to the micro's port";
    }
    return PASS;
  }

  function note(req, why) {
    const now = Date.now();
    if (now - notedAt < NOTE_EVERY_MS) return;
    notedAt = now;
    const port = req.socket && req.socket.localPort;
    process.stderr.write(`space-dev: refused ${req.method} ${String(req.url).slice(0, 100)} `
      + `on port ${port}: ${why} (requests to a micro must come through its app's address)\n`);
  }

  function answer(event, req, second, result) {
    const probe = result === PROBE;
    const status = probe ? 204 : 403;
    const body = probe ? "" : `space-dev: this micro answers only requests that come through its `
      + `app at http://${appAddress}/ ; this one was refused: ${result}.\n`;
    if (!probe) note(req, result);
    if (event === "upgrade" || event === "connect") {
      const length = Buffer.byteLength(body);
      second.end(`HTTP/1.1 ${status} ${probe ? "No Content" : "Forbidden"}\r\n`
        + `${probe ? `${GUARD_HEADER}: on\r\n` : ""}Content-Type: text/plain; charset=utf-8\r\n`
        + `Content-Length: ${length}\r\nConnection: close\r\n\r\n${body}`);
      return;
    }
    const headers = { "Content-Type": "text/plain; charset=utf-8", "Content-Length": Buffer.byteLength(body) };
    if (probe) headers[GUARD_HEADER] = "on";
    else headers.Connection = "close";
    second.writeHead(status, headers);
    second.end(body);
  }

    const emit = http.Server.prototype.emit;
  http.Server.prototype.emit = function (event, req, second) {
    if (REQUEST_EVENTS.has(event) && req && req.headers) {
      let result;
      try {
        result = verdict(req);
      } catch (err) {
        result = `the check failed (${err && err.message})`;
      }
      if (result !== PASS) {
        answer(event, req, second, result);
        return true;
      }
    }
    // The proof stays in the request: a Node server that hands requests on to its own worker
    // processes with their headers (Next.js 13's dev server did) passes it on with them.
    return emit.apply(this, arguments);
  };
}

if (PROOF) install();

module.exports = { tableAddress }; // for the tests, which compare it with the python side's
