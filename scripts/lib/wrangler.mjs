// Starts `wrangler dev` on loopback (for the benchmark and the browser test) and stops it;
// finds workerd's RSS.
import { spawn } from "node:child_process";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const ROOT = new URL("../..", import.meta.url).pathname;

/**
 * `direct`: requests go to the user worker's own address (workerd's socket, read from wrangler's
 * debug log) rather than through wrangler dev's ProxyWorker (wrangler 4.86), which, after a burst
 * of large responses, leaves some requests of the next flood unanswered without ever passing them
 * to the worker (`node scripts/dev-proxy-drops.mjs`).
 */
export async function startWrangler({ port, script, name, vars = {}, persistTo, inspectorPort, direct = false }) {
  const args = [join(ROOT, "node_modules/wrangler/bin/wrangler.js"), "dev", "--ip", "127.0.0.1", "--port", String(port), "--persist-to", persistTo, "--log-level", direct ? "debug" : "warn"];
  if (inspectorPort) args.push("--inspector-port", String(inspectorPort));
  if (script) args.push("--config", script);
  for (const [k, v] of Object.entries(vars)) args.push("--var", `${k}:${v}`);
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false" }, detached: true });
  let log = "";
  child.stdout.on("data", (d) => (log += d));
  child.stderr.on("data", (d) => (log += d));
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 90_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`wrangler exited:\n${log}`);
    try {
      await fetch(`${base}/`);
      const user = /"userWorkerUrl":\{"protocol":"http:","hostname":"127\.0\.0\.1","port":"(\d+)"\}/.exec(log);
      if (direct && !user) throw new Error("wrangler dev's debug log names no userWorkerUrl");
      return { base: direct ? `http://127.0.0.1:${user[1]}` : base, proxied: base, child, inspectorPort, stop: () => stopTree(child), log: () => log };
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

/** workerd processes started under `rootPid` (Linux /proc). */
export function workerdPids(rootPid) {
  const parent = new Map();
  for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      parent.set(Number(pid), Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]));
    } catch {}
  }
  const inTree = (pid) => {
    for (let p = pid, i = 0; p && i < 20; p = parent.get(p), i++) if (p === rootPid) return true;
    return false;
  };
  return [...parent.keys()].filter((pid) => {
    if (!inTree(pid)) return false;
    try {
      return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("workerd");
    } catch {
      return false;
    }
  });
}

/** Current and peak RSS (VmRSS, VmHWM) in bytes, summed over the workerd processes under `rootPid`. */
export function workerdMemory(rootPid) {
  let rss = 0;
  let hwm = 0;
  for (const pid of workerdPids(rootPid)) {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    rss += Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) * 1024;
    hwm += Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) * 1024;
  }
  return { rss, hwm };
}

/**
 * A full garbage collection in the worker's isolate, through workerd's inspector (what wrangler
 * dev's `--inspector-port` serves): `HeapProfiler.collectGarbage`, or a heap snapshot (which
 * collects first) where that is not answered. Dropped codec instances are only returned to the
 * OS after a collection, so a job's memory is measured from a collected baseline.
 */
export async function forceGc(inspectorPort) {
  const { default: WebSocket } = await import("ws");
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      const targets = await (await fetch(`http://127.0.0.1:${inspectorPort}/json/list`)).json();
      const url = targets.find((t) => t.webSocketDebuggerUrl)?.webSocketDebuggerUrl;
      if (!url) throw new Error("no inspector target");
      await new Promise((resolve, reject) => {
        const ws = new WebSocket(url);
        const timer = setTimeout(() => (ws.terminate(), reject(new Error("inspector timeout"))), 60_000);
        let id = 0;
        const send = (method) => ws.send(JSON.stringify({ id: ++id, method }));
        ws.on("open", () => send("HeapProfiler.collectGarbage"));
        ws.on("message", (raw) => {
          const msg = JSON.parse(String(raw));
          if (msg.id === 1 && msg.error) send("HeapProfiler.takeHeapSnapshot");
          else if (msg.id !== undefined) {
            clearTimeout(timer);
            ws.close();
            resolve();
          }
        });
        // The first connection is sometimes closed at once: the caller's loop reconnects.
        ws.on("close", () => reject(new Error("inspector closed")));
        ws.on("error", reject);
      });
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 300));
    }
  }
  throw new Error(`could not force a GC through the inspector on port ${inspectorPort}`);
}

/** Resets the peak RSS (VmHWM) of every workerd process under `rootPid` (Linux clear_refs 5). */
export function resetPeak(rootPid) {
  for (const pid of workerdPids(rootPid)) writeFileSync(`/proc/${pid}/clear_refs`, "5");
}
