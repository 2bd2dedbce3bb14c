// Loaded first into every Node.js process of a micro (NODE_OPTIONS=--require): a server that
// names no host listens on $HOST (127.0.0.1), not on every interface.
//
// Space's Node apps call `app.listen(process.env.PORT)`, which Node binds to `::`: there the
// micro is reachable from the network past the gate, without a login. A host the app names
// itself (even 0.0.0.0) is left as it is; space-dev then says so in the log.
"use strict";

const net = require("net");

const HOST = process.env.HOST || "127.0.0.1";
const listen = net.Server.prototype.listen;

function isPort(value) {
  return typeof value === "number" || (typeof value === "string" && /^\d+$/.test(value));
}

net.Server.prototype.listen = function (...args) {
  const first = args[0];
  if (isPort(first)) {
    // listen(port[, host][, backlog][, callback]): a host is a string after the port.
    if (typeof args[1] !== "string") args.splice(1, 0, HOST);
  } else if (first !== null && typeof first === "object" && !Array.isArray(first)
             && first.host === undefined && first.path === undefined
             && first.fd === undefined && first.handle === undefined && first._handle === undefined
             && !(first instanceof net.Server) && !(first instanceof net.Socket)) {
    // listen({port, ...}): the options a server is given, with the host added.
    args[0] = { ...first, host: HOST };
  }
  return listen.apply(this, args);
};
