// Preloaded into the Portkey gateway (`node --require`) for the benchmark. Every TCP connection to an
// address outside 127.0.0.0/8 and ::1, and every DNS lookup of a name other than localhost, fails with
// EACCES and is reported on stderr. So the gateway cannot reach any host but the bench upstream. Node's
// `fetch` (undici), `http`, `https` and `ws` all connect through `net.Socket.prototype.connect`.
'use strict';
const dns = require('node:dns');
const net = require('node:net');

function isLoopback(host) {
  if (host === undefined || host === null || host === '' || host === 'localhost') return true;
  if (net.isIPv4(host)) return host.startsWith('127.');
  if (net.isIPv6(host)) return host === '::1' || host.startsWith('::ffff:127.');
  return false;
}

function blocked(what) {
  process.stderr.write(`loopback-guard: blocked ${what}\n`);
  const error = new Error(`loopback-guard: ${what} is outside loopback`);
  error.code = 'EACCES';
  return error;
}

const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function guardedConnect(...args) {
  // connect(options), connect([options, …]) as net.connect passes it, or connect(port, host).
  let options = null;
  if (Array.isArray(args[0])) options = args[0][0];
  else if (typeof args[0] === 'object' && args[0] !== null) options = args[0];
  let host;
  if (options) host = options.host;
  else if (typeof args[1] === 'string') host = args[1];
  const isPath = options ? options.path !== undefined : typeof args[0] === 'string' && args[1] === undefined;
  if (!isPath && !isLoopback(host)) {
    const error = blocked(`connection to ${host}`);
    process.nextTick(() => this.destroy(error));
    return this;
  }
  return connect.apply(this, args);
};

const lookup = dns.lookup;
dns.lookup = function guardedLookup(hostname, options, callback) {
  const done = typeof options === 'function' ? options : callback;
  if (!isLoopback(hostname)) {
    process.nextTick(() => done(blocked(`DNS lookup of ${hostname}`)));
    return;
  }
  return lookup.call(this, hostname, options, callback);
};
