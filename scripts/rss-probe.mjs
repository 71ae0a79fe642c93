// Where one job's RSS goes (a diagnostic, not part of the bench): runs the 24 MP camera JPEG
// (../shared corpora; SRC=p24 for the progressive original, else a baseline re-encode) to
// PATH_SUFFIX (default full-size WebP) three times in one fresh workerd, and prints for each run
// the header, the RSS peak above the post-GC baseline, the change per mapping kind and the
// mappings that changed most (/proc/PID/smaps), and the inspector's heap usage.
// WARM_N=n first runs n jobs of the same kind on a 480-pixel source (WARM_W).
// V8 flags: miniflare has no option for workerd's `v8Flags` config field; the measurements in
// bench section 2's note were taken with a one-line local edit of miniflare's serializeConfig
// (node_modules/miniflare/dist/src/index.js: `config.v8Flags = process.env.WORKERD_V8_FLAGS.split(" ")`
// before it encodes the config), run as WORKERD_V8_FLAGS=--liftoff-only node scripts/rss-probe.mjs.
import { readFileSync, readdirSync, mkdtempSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import sharp from "sharp";
import { forceGc, resetPeak, startWrangler, workerdMemory, workerdPids } from "./lib/wrangler.mjs";
// One inspector call (the bench's forceGc knows only GC), reconnecting as it does.
async function inspect(method) {
  const { default: WebSocket } = await import("ws");
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      const targets = await (await fetch(`http://127.0.0.1:9249/json/list`)).json();
      const url = targets.find((t) => t.webSocketDebuggerUrl).webSocketDebuggerUrl;
      return await new Promise((resolve, reject) => {
        const ws = new WebSocket(url);
        ws.on("open", () => ws.send(JSON.stringify({ id: 1, method })));
        ws.on("message", (raw) => { const m = JSON.parse(String(raw)); if (m.id === 1) { ws.close(); resolve(m.result); } });
        ws.on("close", () => reject(new Error("closed")));
        ws.on("error", reject);
      });
    } catch { await new Promise((r) => setTimeout(r, 300)); }
  }
}
const hu = async () => { const r = await inspect("Runtime.getHeapUsage"); return `used ${(r.usedSize/2**20).toFixed(1)} total ${(r.totalSize/2**20).toFixed(1)} backing ${(r.backingStorageSize/2**20).toFixed(1)}`; };
const TOKEN = "bench-token-0123456789abcdef";
const src24 = readFileSync(new URL("../../shared/corpora/photos/unsplash/rachel-hisko-rEM3cK8F1pk-unsplash.jpg", import.meta.url));
// SRC=png12: the bench's 12 MP PNG (parrots stretched to 4000x3000).
const parrots = readFileSync(new URL("../samples/parrots.png", import.meta.url));
const bytes = process.env.SRC === "p24" ? src24 : process.env.SRC === "png12" ? await sharp(parrots).resize(4000, 3000, { fit: "fill" }).png().toBuffer() : await sharp(src24).jpeg({ quality: 90, progressive: false }).toBuffer();
const ext = process.env.SRC === "png12" ? "png" : "jpg";
const path = process.env.PATH_SUFFIX ?? ".jpg?caplist=webp";
const w = await startWrangler({ port: 8799, vars: { API_TOKENS: TOKEN, WRITE_BACK_FORMATS: "", MEMORY_BUDGET_MB: "4096", CPU_BUDGET_MS: "300000", PEAK_MEMORY_HEADER: "on" }, persistTo: mkdtempSync(join(tmpdir(), "probe-")), inspectorPort: 9249 });
function smaps() {
  const out = {};
  const vmas = {};
  for (const pid of workerdPids(w.child.pid)) {
    const text = readFileSync(`/proc/${pid}/smaps`, "utf8").split("\n");
    let kind = null, size = 0, vkey = null;
    for (const line of text) {
      const m = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$/.exec(line);
      if (m) { size = (parseInt(m[2], 16) - parseInt(m[1], 16)) / 2 ** 20; const perms = m[3]; const name = m[4] || "anon";
        kind = `${name.startsWith("/") ? "file" : name} ${perms}`; vkey = `${pid}:${m[1]} ${perms} ${name} size=${size.toFixed(1)}`; continue; }
      const r = /^Rss:\s+(\d+) kB/.exec(line);
      if (r && kind) { out[kind] = (out[kind] ?? 0) + Number(r[1]) / 1024; vmas[vkey] = Number(r[1]) / 1024; }
    }
  }
  return { out, vmas };
}
// What changed between two readings, above `min` MiB, largest first (`limit` of them).
const diff = (a, b, min = 0.5, limit = Infinity) =>
  Object.keys({ ...a, ...b }).map((k) => [k, (b[k] ?? 0) - (a[k] ?? 0)]).filter(([, d]) => Math.abs(d) > min).sort((x, y) => y[1] - x[1]).slice(0, limit).map(([k, d]) => `${k}: ${d.toFixed(1)}`).join("\n    ");
const vdiff = (a, b) => diff(a, b, 2, 12);
const put = (k, b) => fetch(`${w.base}/_api/objects/${k}`, { method: "PUT", body: b, headers: { Authorization: `Bearer ${TOKEN}` } });
await put(`mem/b24.${ext}`, bytes);
console.log(`source ${ext} ${(bytes.length / 2 ** 20).toFixed(1)} MiB`);
await put("warm/w.jpg", await sharp(readFileSync(new URL("../samples/parrots.png", import.meta.url))).resize(96).jpeg().toBuffer());
await (await fetch(`${w.base}/warm/w_64_0${path}`)).arrayBuffer();
if (process.env.WARM_N) {
  await put("warm/m.jpg", await sharp(readFileSync(new URL("../samples/parrots.png", import.meta.url))).resize(Number(process.env.WARM_W ?? 480)).jpeg().toBuffer());
  for (let i = 0; i < Number(process.env.WARM_N); i++) { const r = await fetch(`${w.base}/warm/m_${Number(process.env.WARM_W ?? 480) - i}_0${path}`); await r.arrayBuffer(); console.log("warm", r.status, r.headers.get("X-Image-Tried"), r.headers.get("X-Image-Peak-Memory")/2**20); }
}
try {
for (const round of [1, 2, 3]) {
  await forceGc(9249);
  await new Promise((r) => setTimeout(r, 1000));
  await forceGc(9249);
  console.log("before: " + await hu());
  const a = smaps(); const base = workerdMemory(w.child.pid).rss; resetPeak(w.child.pid);
  const res = await fetch(`${w.base}/mem/b24${round === 1 ? "" : "_" + [0, 3600, 3000][round - 1] + "_0"}${path}`); const body = await res.arrayBuffer();
  const after = workerdMemory(w.child.pid); const b = smaps();
  console.log(`round ${round}: ${res.status} ${res.headers.get("X-Image-Tried")} header ${(res.headers.get("X-Image-Peak-Memory") / 2 ** 20).toFixed(1)} peak-above-base ${((after.hwm - base) / 2 ** 20).toFixed(1)} rss-after ${((after.rss - base) / 2 ** 20).toFixed(1)}\n  ${diff(a.out, b.out)}\n    ${vdiff(a.vmas, b.vmas)}`);
  console.log("after job: " + await hu());
  if (round === 1) console.log(Object.entries(b.vmas).filter(([, r]) => r > 2).map(([k, r]) => `   VMA ${k} rss ${r.toFixed(1)}`).join("\n"));
  await forceGc(9249); await new Promise((r) => setTimeout(r, 1000)); await forceGc(9249);
  console.log("after GC: " + await hu());
  console.log(`  after GC vs before job:\n  ${(() => { const c = smaps(); return diff(a.out, c.out) + "\n    " + vdiff(a.vmas, c.vmas); })()}`);
}
} finally {
  w.stop();
}
