// Starts `wrangler dev` on loopback (for the benchmark and the browser test) and stops it;
// finds workerd's RSS.
import { spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

const ROOT = new URL("../..", import.meta.url).pathname;

export async function startWrangler({ port, script, name, vars = {}, persistTo }) {
  const args = [join(ROOT, "node_modules/wrangler/bin/wrangler.js"), "dev", "--ip", "127.0.0.1", "--port", String(port), "--persist-to", persistTo, "--log-level", "warn"];
  if (script) args.push("--config", script);
  for (const [k, v] of Object.entries(vars)) args.push("--var", `${k}:${v}`);
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, WRANGLER_SEND_METRICS: "false" }, detached: true });
  let log = "";
  child.stdout.on("data", (d) => (log += d));
  child.stderr.on("data", (d) => (log += d));
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 90_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`wrangler exited:\n${log}`);
    try {
      await fetch(`${base}/`);
      return { base, child, stop: () => stopTree(child), log: () => log };
    } catch {
      await new Promise((r) => setTimeout(r, 300));
    }
  }
  stopTree(child);
  throw new Error(`wrangler did not become ready on ${base}:\n${log}`);
}

function stopTree(child) {
  try {
    process.kill(-child.pid, "SIGTERM");
  } catch {}
}

/** workerd processes started under `rootPid`, with current and peak RSS in bytes (Linux /proc). */
export function workerdMemory(rootPid) {
  const children = new Map();
  for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      children.set(Number(pid), ppid);
    } catch {}
  }
  const inTree = (pid) => {
    for (let p = pid, i = 0; p && i < 20; p = children.get(p), i++) if (p === rootPid) return true;
    return false;
  };
  let rss = 0;
  let hwm = 0;
  for (const pid of children.keys()) {
    if (!inTree(pid)) continue;
    let cmd = "";
    try {
      cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8");
    } catch {
      continue;
    }
    if (!cmd.includes("workerd")) continue;
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    rss += Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) * 1024;
    hwm += Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) * 1024;
  }
  return { rss, hwm };
}
