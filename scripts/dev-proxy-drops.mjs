#!/usr/bin/env node
// `node scripts/dev-proxy-drops.mjs`: requests wrangler dev loses before they reach the worker.
// On one wrangler dev with wrangler.toml's defaults: 30 concurrent full-size reads of a 9 MB
// original (which leave 30 kept-alive connections), then at once 60 concurrent 12 MP -> WebP
// sizes, sent through the dev server's address (its ProxyWorker), then to the user worker's
// own address, then to it again with a new connection per request (node:http, no agent).
// Prints how many of the 60 were answered each way (no answer in 60 s: "unanswered"; a socket
// the server closed: the error). Needs ../shared/corpora (two Unsplash photos).
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { get } from "node:http";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import sharp from "sharp";
import { startWrangler } from "./lib/wrangler.mjs";

const ROOT = resolve(new URL("..", import.meta.url).pathname);
const PHOTOS = resolve(ROOT, "../shared/corpora/photos/unsplash");
const TOKEN = "probe-token-0123456789abcdef";
const big = await sharp(join(PHOTOS, "rachel-hisko-rEM3cK8F1pk-unsplash.jpg")).jpeg({ quality: 100, chromaSubsampling: "4:4:4" }).toBuffer();
const p12 = readFileSync(join(PHOTOS, "fatih-kgqu_qs3B78-unsplash.jpg"));

/** GET on a connection of its own (no keep-alive pool): resolves with the status. */
const getFresh = (url) =>
  new Promise((resolve, reject) => {
    const req = get(url, { agent: false, timeout: 60_000 }, (res) => {
      res.resume();
      res.on("end", () => resolve(String(res.statusCode)));
    });
    req.on("timeout", () => req.destroy(Object.assign(new Error("unanswered"), { name: "TimeoutError" })));
    req.on("error", reject);
  });

for (const [direct, fresh] of [[false, false], [true, false], [true, true]]) {
  const persist = mkdtempSync(join(tmpdir(), "proxy-drops-"));
  const w = await startWrangler({ port: 8786, vars: { API_TOKENS: TOKEN }, persistTo: persist, direct });
  try {
    for (const [key, body] of [["a/big.jpg", big], ["a/p12.jpg", p12]]) {
      await fetch(`${w.base}/_api/objects/${key}`, { method: "PUT", body, headers: { Authorization: `Bearer ${TOKEN}` } });
    }
    await Promise.all(Array.from({ length: 30 }, async () => (await fetch(`${w.base}/a/big.jpg?caplist=jpg`)).arrayBuffer()));
    const answers = await Promise.all(
      Array.from({ length: 60 }, async (_, i) => {
        const url = `${w.base}/a/p12_${300 + i}_0.jpg?caplist=webp`;
        try {
          if (fresh) return await getFresh(url);
          const res = await fetch(url, { signal: AbortSignal.timeout(60_000) });
          await res.arrayBuffer();
          return String(res.status);
        } catch (e) {
          return e.name === "TimeoutError" ? "unanswered" : `${e.message} (${e.cause?.code ?? e.code ?? "?"})`;
        }
      }),
    );
    const count = Object.entries(answers.reduce((m, a) => ({ ...m, [a]: (m[a] ?? 0) + 1 }), {})).map(([k, v]) => `${v} x ${k}`);
    console.log(`${direct ? "to the user worker directly" : "through wrangler dev's ProxyWorker"}${fresh ? ", a new connection per request" : ""}: ${count.join(", ")}`);
  } finally {
    w.stop();
    rmSync(persist, { recursive: true, force: true });
  }
}
