// The chat page's server: the CopilotKit runtime (single-route endpoint /api/copilotkit) with one
// AG-UI HttpAgent per Citadel graph, the built page (dist/), and /api/threads, the user's threads
// from Citadel's thread API. Run it with `make ui` (or `npm start`); it needs Citadel running.
//
//   CITADEL_URL      Citadel's base URL (default http://127.0.0.1:8000)
//   CITADEL_UI_HOST  address to bind (default 127.0.0.1)
//   CITADEL_UI_PORT  port (default 3000; 0 = any free port)
process.env.COPILOTKIT_TELEMETRY_DISABLED ??= "true"; // no calls home (before the runtime loads)

import http from "node:http";
import { readFile, stat } from "node:fs/promises";
import { extname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import { HttpAgent } from "@ag-ui/client";
import { CitadelAgentRunner } from "./citadel-runner.mjs";

const { CopilotRuntime, createCopilotRuntimeHandler } = await import("@copilotkit/runtime/v2");
const { createCopilotNodeHandler } = await import("@copilotkit/runtime/v2/node");

const HERE = fileURLToPath(new URL(".", import.meta.url));
const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript",
  ".css": "text/css",
  ".svg": "image/svg+xml",
  ".json": "application/json",
  ".woff2": "font/woff2",
};
const FORWARDED = ["authorization", "cookie"];

function forwardHeaders(req) {
  return Object.fromEntries(FORWARDED.filter((h) => req.headers[h]).map((h) => [h, req.headers[h]]));
}

async function citadelJson(citadelUrl, path, init = {}) {
  const response = await fetch(`${citadelUrl}${path}`, init);
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status} ${await response.text()}`);
  return response.json();
}

function send(res, status, body, type = "application/json") {
  res.writeHead(status, { "content-type": type, "cache-control": "no-store" });
  res.end(typeof body === "string" || Buffer.isBuffer(body) ? body : JSON.stringify(body));
}

async function serveStatic(res, distDir, pathname) {
  const relative = normalize(decodeURIComponent(pathname)).replace(/^([/\\])+/, "");
  let file = join(distDir, relative);
  if (!file.startsWith(distDir) || !(await stat(file).catch(() => null))?.isFile()) {
    file = join(distDir, "index.html"); // the page routes itself (?thread=...)
  }
  try {
    send(res, 200, await readFile(file), TYPES[extname(file)] ?? "application/octet-stream");
  } catch {
    send(res, 404, "the page is not built: run `make ui` (or `npm run build`)", "text/plain");
  }
}

export async function startServer({
  citadelUrl = "http://127.0.0.1:8000",
  host = "127.0.0.1",
  port = 3000,
  distDir = join(HERE, "..", "dist"),
} = {}) {
  citadelUrl = citadelUrl.replace(/\/+$/, "");
  const { agents: described } = await citadelJson(citadelUrl, "/agui");
  const agents = Object.fromEntries(
    described.map((a) => [
      a.name,
      new HttpAgent({ agentId: a.name, description: a.description, url: `${citadelUrl}/agui/${a.name}` }),
    ]),
  );
  const runtime = new CopilotRuntime({
    agents,
    runner: new CitadelAgentRunner({ citadelUrl, agentNames: Object.keys(agents) }),
  });
  const copilot = createCopilotNodeHandler(
    createCopilotRuntimeHandler({ runtime, basePath: "/api/copilotkit", mode: "single-route" }),
  );
  const listing = described.map(({ name, description, state_keys }) => ({ name, description, stateKeys: state_keys }));

  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, "http://page");
    try {
      if (url.pathname.startsWith("/api/copilotkit")) return await copilot(req, res);
      if (url.pathname === "/api/agents") return send(res, 200, { agents: listing });
      if (url.pathname === "/api/threads" && req.method === "GET") {
        const found = await citadelJson(citadelUrl, "/threads/search", {
          method: "POST",
          headers: { "content-type": "application/json", ...forwardHeaders(req) },
          body: JSON.stringify({ limit: 50, sort_by: "updated_at", sort_order: "desc" }),
        });
        const threads = found
          .filter((t) => t.metadata?.graph_id && !t.metadata?.stateless)
          .map((t) => ({
            threadId: t.thread_id,
            title: t.title,
            graph: t.metadata.graph_id,
            status: t.status,
            updatedAt: t.updated_at,
          }));
        return send(res, 200, { threads });
      }
      if (url.pathname.startsWith("/api/")) return send(res, 404, { error: "not found" });
      return await serveStatic(res, distDir, url.pathname);
    } catch (error) {
      console.error(error);
      if (!res.headersSent) send(res, 502, { error: error.message });
    }
  });
  await new Promise((resolve) => server.listen(port, host, resolve));
  const address = server.address();
  return {
    url: `http://${host}:${address.port}`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(resolve);
      }),
  };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === normalize(process.argv[1])) {
  const started = await startServer({
    citadelUrl: process.env.CITADEL_URL,
    host: process.env.CITADEL_UI_HOST,
    port: Number(process.env.CITADEL_UI_PORT ?? 3000),
  });
  console.log(`Citadel chat page on ${started.url} (Citadel at ${process.env.CITADEL_URL ?? "http://127.0.0.1:8000"})`);
}
