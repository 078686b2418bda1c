// Starts a real showgate (the debug binary) against Redis and a fresh
// Postgres database, and a headless Debian Chromium through playwright-core.
import { spawn, execFileSync } from "node:child_process";
import { createInterface } from "node:readline";
import { randomUUID } from "node:crypto";
import { mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";
import { chromium } from "playwright-core";

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const artifacts = path.join(root, "test-artifacts");
mkdirSync(artifacts, { recursive: true });

const PG = process.env.TEST_POSTGRES_URL || "postgres://postgres@127.0.0.1:5432";
const REDIS = process.env.TEST_REDIS_URL || "redis://127.0.0.1:6379";

export async function startServer(extraEnv = {}) {
  const db = `sg_t_${randomUUID().replaceAll("-", "")}`;
  execFileSync("psql", [`${PG}/postgres`, "-qc", `CREATE DATABASE ${db}`]);
  const bin = process.env.SHOWGATE_BIN || path.join(root, "target/debug/showgate");
  const child = spawn(bin, ["serve"], {
    env: {
      PATH: process.env.PATH,
      BIND: "127.0.0.1:0",
      LOG_FORMAT: "json",
      RUST_LOG: "info",
      REDIS_URL: REDIS,
      REDIS_KEY_PREFIX: `sgtest:${randomUUID()}:`,
      DATABASE_URL: `${PG}/${db}`,
      STATIC_DIR: path.join(root, "static"),
      RATE_LIMIT_IP_PER_SEC: "0",
      RATE_LIMIT_USER_PER_SEC: "0",
      ...extraEnv,
    },
    stdio: ["ignore", "ignore", "pipe"],
  });
  const lines = createInterface({ input: child.stderr });
  const addr = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("showgate did not start within 30 s")), 30000);
    child.on("exit", (code) => reject(new Error(`showgate exited with ${code}`)));
    lines.on("line", (line) => {
      try {
        const v = JSON.parse(line);
        if (v.fields?.message === "showgate listening") { clearTimeout(timer); resolve(v.fields.addr); }
      } catch { /* not JSON */ }
    });
  });
  return { base: `http://${addr}`, stop: () => child.kill("SIGTERM") };
}

export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync"],
  });
}

export async function api(base, method, p, body, token) {
  const headers = { "content-type": "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(base + p, { method, headers, body: body ? JSON.stringify(body) : undefined });
  return { status: res.status, body: await res.json().catch(() => null) };
}

/** A show on the small Audi 1 screen, tomorrow (so it is not in the past). */
export async function aShow(base) {
  const { body } = await api(base, "GET", "/api/v1/movies/dune-3/shows");
  return body.shows.find((s) => s.screenId === "pvr-forum-1" && Date.parse(s.startTime) > Date.now()).id;
}
