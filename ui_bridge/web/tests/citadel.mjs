// Starts Citadel (embedded defaults, a fresh data directory, the `docs` collection ingested) for
// the Node and browser tests: `python -m tests.ui_bridge.citadel_server` from the repository,
// with the project's virtualenv (CITADEL_PYTHON overrides it).
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const START_TIMEOUT_MS = 180_000;

// `env` adds to the environment (CITADEL_CONFIG: a project whose graphs it serves too).
export async function startCitadel(env = {}) {
  const python = process.env.CITADEL_PYTHON ?? join(ROOT, ".venv", "bin", "python");
  if (!existsSync(python)) throw new Error(`no Python at ${python}: run \`make install\` first`);
  const child = spawn(python, ["-m", "tests.ui_bridge.citadel_server"], {
    cwd: ROOT,
    stdio: ["pipe", "pipe", "inherit"],
    env: { ...process.env, ...env, PYTHONUNBUFFERED: "1" },
  });
  const exited = new Promise((resolve) => child.once("exit", resolve));
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("Citadel did not start in time")), START_TIMEOUT_MS);
    createInterface({ input: child.stdout }).on("line", (line) => {
      if (line.startsWith("READY ")) {
        clearTimeout(timer);
        resolve(line.slice("READY ".length).trim());
      }
    });
    exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`Citadel exited (${code}) before it was ready`));
    });
  });
  return {
    url,
    async stop() {
      child.stdin.end();
      const killer = setTimeout(() => child.kill("SIGKILL"), 30_000);
      await exited;
      clearTimeout(killer);
    },
  };
}

export async function json(url, init) {
  const response = await fetch(url, init);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status} ${await response.text()}`);
  return response.json();
}
