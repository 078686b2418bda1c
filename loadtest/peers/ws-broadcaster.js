// The Node.js peer of showgate's seat stream, for the fan-out benchmark:
// `ws` 8 and `ioredis`, one Redis subscription per process, each delta
// encoded once into one Buffer and sent to every socket. A socket gets a
// small snapshot when it connects, as showgate's do, so the same client
// (`sg-load ws-worker`) measures both.
//
// Environment: REDIS_URL, CHANNEL (the Redis channel to follow), PORT
// (0: any). Prints "LISTENING <port>" once it accepts sockets.
"use strict";
const http = require("http");
const { WebSocketServer } = require("ws");
const Redis = require("ioredis");

const server = http.createServer((_req, res) => { res.writeHead(404); res.end(); });
const wss = new WebSocketServer({ server, perMessageDeflate: false, maxPayload: 64 * 1024 });
const snapshot = JSON.stringify({ type: "snapshot", showId: "peer", epoch: "peer", version: 0, seats: [] });
wss.on("connection", (ws) => ws.send(snapshot));

const sub = new Redis(process.env.REDIS_URL || "redis://127.0.0.1:6379");
sub.subscribe(process.env.CHANNEL);
sub.on("message", (_channel, payload) => {
  const delta = JSON.parse(payload);
  const frame = Buffer.from(JSON.stringify({ type: "delta", fromVersion: delta.version, ...delta }));
  for (const ws of wss.clients) ws.send(frame, { binary: false });
});

server.listen(Number(process.env.PORT || 0), "127.0.0.1", () => {
  console.log(`LISTENING ${server.address().port}`);
});
