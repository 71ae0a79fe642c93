/**
 * Runs in Node before the suite: reads the real files the tests need from the repo (`samples/`,
 * `test/fixtures/`), generates the rest (`test/generate.ts`), and hands them to the
 * workerd-side tests through `provide`. A missing file fails the run; it is never skipped.
 */
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { TestProject } from "vitest/node";
import { FILES, type FixtureName } from "./fixtures";
import { generated } from "./generate";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const fixtures = {} as Record<FixtureName, string>;
  for (const [name, rel] of Object.entries(FILES)) fixtures[name] = readFileSync(resolve(ROOT, rel)).toString("base64");
  for (const [name, bytes] of Object.entries(await generated(ROOT))) fixtures[name] = bytes.toString("base64");
  project.provide("fixtures", fixtures);
  const receiver = await callbackReceiver();
  project.provide("callbackUrl", receiver.url);
  return () => receiver.close();
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
