/**
 * Runs in Node before the suite: reads the real corpus files the tests need from
 * `../shared/corpora` and hands them to the workerd-side tests through `provide`. A missing
 * file fails the run; it is never skipped.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { TestProject } from "vitest/node";
import { BOMBS, CORPUS_PER_SET, FIXTURES, type CorpusFile, type FixtureName } from "./fixtures";

const CORPUS = resolve(dirname(fileURLToPath(import.meta.url)), "../../shared/corpora");

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const fixtures = {} as Record<FixtureName, string>;
  for (const [name, rel] of Object.entries(FIXTURES) as [FixtureName, string][]) {
    fixtures[name] = readFileSync(resolve(CORPUS, rel)).toString("base64");
  }
  project.provide("fixtures", fixtures);
  const corpus = sampleCorpus();
  project.provide("corpus", corpus);

  // The corpus sample is too large to hand over in one message: the tests fetch each file from
  // this loopback server, which serves exactly the sampled files and nothing else.
  const allowed = new Set(corpus.map((f) => f.path));
  const server = createServer((req, res) => {
    const path = decodeURIComponent((req.url ?? "/").slice(1));
    if (!allowed.has(path)) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "Content-Type": "application/octet-stream", Connection: "close" }).end(readFileSync(resolve(CORPUS, path)));
  });
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  project.provide("corpusUrl", `http://127.0.0.1:${(server.address() as AddressInfo).port}`);

  const receiver = await callbackReceiver();
  project.provide("callbackUrl", receiver.url);
  return async () => {
    await new Promise((done) => server.close(() => done(undefined)));
    await receiver.close();
  };
}

/**
 * A stand-in for an origin's callback endpoint, on loopback: `POST /cb/<tag>` records the JSON
 * it receives; a tag `fail-N-...` answers 500 to its first N deliveries, to exercise retries.
 * `GET /received/<tag>` returns every delivery attempt recorded for that tag.
 */
async function callbackReceiver(): Promise<{ url: string; close: () => Promise<void> }> {
  const attempts = new Map<string, { status: number; body: unknown; at: number }[]>();
  const server = createServer((req, res) => {
    const [, kind, tag] = (req.url ?? "/").split("/");
    if (req.method === "GET" && kind === "received") {
      res.writeHead(200, { "Content-Type": "application/json", Connection: "close" }).end(JSON.stringify(attempts.get(tag) ?? []));
      return;
    }
    let raw = "";
    req.on("data", (c) => (raw += c));
    req.on("end", () => {
      const list = attempts.get(tag) ?? [];
      const failFirst = Number(/^fail-(\d+)-/.exec(tag)?.[1] ?? 0);
      const status = list.length < failFirst ? 500 : 200;
      let body: unknown = raw;
      try {
        body = JSON.parse(raw);
      } catch {}
      list.push({ status, body, at: Date.now() });
      attempts.set(tag, list);
      res.writeHead(status, { Connection: "close" }).end(status === 200 ? "ok" : "try again");
    });
  });
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise((done) => server.close(() => done())),
  };
}

/**
 * A deterministic sample of every set in MANIFEST.tsv that is on disk: the first files of each
 * set by content hash (an arbitrary but stable order), skipping files over 1.5 MB to keep the
 * suite within CI's time, plus every decompression bomb the corpus README lists.
 */
function sampleCorpus(): CorpusFile[] {
  const rows = readFileSync(resolve(CORPUS, "MANIFEST.tsv"), "utf8").trim().split("\n").slice(1);
  const bySet = new Map<string, { path: string; sha: string; kind: string }[]>();
  for (const row of rows) {
    const [path, , sha, kind] = row.split("\t");
    const file = resolve(CORPUS, path);
    if (!existsSync(file) || statSync(file).size > 1_500_000) continue;
    const parts = path.split("/");
    const set = ["pngsuite", "pillow-testimages", "sharp-fixtures"].includes(parts[0]) ? parts[0] : `${parts[0]}/${parts[1]}`;
    bySet.set(set, [...(bySet.get(set) ?? []), { path, sha, kind }]);
  }
  const chosen: CorpusFile[] = [];
  for (const [set, files] of [...bySet].sort()) {
    const picked = files.sort((a, b) => (a.sha < b.sha ? -1 : 1)).slice(0, CORPUS_PER_SET);
    const extra = files.filter((f) => BOMBS.includes(f.path) && !picked.includes(f));
    for (const f of [...picked, ...extra]) {
      chosen.push({ set, path: f.path, kind: f.kind });
    }
  }
  return chosen;
}
