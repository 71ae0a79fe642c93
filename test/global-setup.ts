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
  const origin = await originServer();
  project.provide("originUrl", origin.url);
  return async () => {
    await receiver.close();
    await origin.close();
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
 * A stand-in for a web server holding originals (ORIGIN_URL), on loopback. `PUT /files/<path>`
 * sets what `GET /files/<path>` answers: the PUT's body, with its Content-Type, and the status
 * (`X-Answer-Status`), delay before answering (`X-Answer-Delay-Ms`) and Location
 * (`X-Answer-Location`) it names; a path never PUT answers 404. `GET /count/<path>` says how
 * many GETs of `/files/<path>` it has answered (or not yet).
 */
async function originServer(): Promise<{ url: string; close: () => Promise<void> }> {
  const files = new Map<string, { body: Buffer; type: string; status: number; delayMs: number; location?: string }>();
  const counts = new Map<string, number>();
  const server = createServer((req, res) => {
    const url = req.url ?? "/";
    const [, kind] = url.split("/");
    const path = url.slice(kind.length + 2);
    if (req.method === "PUT" && kind === "files") {
      const chunks: Buffer[] = [];
      req.on("data", (c) => chunks.push(c));
      req.on("end", () => {
        const h = (name: string) => req.headers[name] as string | undefined;
        files.set(path, { body: Buffer.concat(chunks), type: h("content-type") ?? "application/octet-stream", status: Number(h("x-answer-status") ?? 200), delayMs: Number(h("x-answer-delay-ms") ?? 0), location: h("x-answer-location") });
        res.writeHead(204, { Connection: "close" }).end();
      });
      return;
    }
    if (req.method === "GET" && kind === "count") {
      res.writeHead(200, { "Content-Type": "application/json", Connection: "close" }).end(JSON.stringify({ count: counts.get(path) ?? 0 }));
      return;
    }
    if (req.method === "GET" && kind === "files") {
      counts.set(path, (counts.get(path) ?? 0) + 1);
      const file = files.get(path);
      if (!file) {
        res.writeHead(404, { "Content-Type": "text/html", Connection: "close" }).end("<html><body>Not Found</body></html>");
        return;
      }
      const timer = setTimeout(() => {
        const headers: Record<string, string> = { "Content-Type": file.type, "Content-Length": String(file.body.length), ETag: `"v-${file.body.length}"`, "Last-Modified": "Mon, 07 Dec 2026 10:00:00 GMT", Connection: "close" };
        if (file.location) headers.Location = file.location;
        res.writeHead(file.status, headers).end(file.body);
      }, file.delayMs);
      res.on("close", () => clearTimeout(timer));
      return;
    }
    res.writeHead(400, { Connection: "close" }).end();
  });
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise((done) => { server.closeAllConnections(); server.close(() => done()); }),
  };
}
