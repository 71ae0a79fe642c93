/**
 * Global setup of `npm run test:corpus`: the full sweep over `../shared/corpora` (the corpus
 * README's real test images, hostile files and bombs). Without the corpora it fails loudly:
 * this suite exists to run them, and a sweep over nothing would pass for the wrong reason.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import sharp from "sharp";
import type { TestProject } from "vitest/node";
import globalSetup from "../global-setup";
import { BOMBS, CORPUS_PER_SET, type CorpusFile } from "./sample";

const CORPUS = resolve(dirname(fileURLToPath(import.meta.url)), "../../../shared/corpora");

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  if (!existsSync(resolve(CORPUS, "MANIFEST.tsv"))) {
    throw new Error(`npm run test:corpus needs the corpora at ${CORPUS} (MANIFEST.tsv not found). ` + "`npm test` runs without them.");
  }
  const closeBase = await globalSetup(project);
  const corpus = sampleCorpus();
  project.provide("corpus", corpus);
  // The sample is too large to hand over in one message: the tests fetch each file from this
  // loopback server, which serves exactly the sampled files and nothing else.
  const pngFiles = readFileSync(resolve(CORPUS, "MANIFEST.tsv"), "utf8")
    .trim()
    .split("\n")
    .slice(1)
    .map((row) => row.split("\t"))
    .filter(([path, , , kind]) => kind === "png" && /^(pngsuite|png-extra)\//.test(path) && existsSync(resolve(CORPUS, path)))
    .map(([path]) => path);
  project.provide("pngFiles", pngFiles);
  // Every AV1 image sequence (ftyp major brand avis), whatever its set.
  const sequenceFiles = readFileSync(resolve(CORPUS, "MANIFEST.tsv"), "utf8")
    .trim()
    .split("\n")
    .slice(1)
    .map((row) => row.split("\t")[0])
    .filter((path) => existsSync(resolve(CORPUS, path)) && statSync(resolve(CORPUS, path)).size > 12 && readFileSync(resolve(CORPUS, path)).toString("latin1", 4, 12) === "ftypavis");
  project.provide("sequenceFiles", sequenceFiles);
  // Every JPEG and WebP with an ICC profile, up to 4 MP: the colour sweep compares the worker's
  // sRGB with sharp's colour-managed decode of the same file (the reference, served at ref/).
  const references = new Map<string, Buffer>();
  const iccFiles: { path: string; ext: string }[] = [];
  for (const row of readFileSync(resolve(CORPUS, "MANIFEST.tsv"), "utf8").trim().split("\n").slice(1)) {
    const [path, , , kind] = row.split("\t");
    const file = resolve(CORPUS, path);
    if (!["jpeg", "webp"].includes(kind) || !existsSync(file) || statSync(file).size > 3_000_000) continue;
    try {
      const meta = await sharp(file).metadata();
      if (!meta.icc || !meta.width || !meta.height || meta.width * meta.height > 4_000_000 || meta.pages) continue;
      references.set(path, await sharp(file).rotate().toColourspace("srgb").removeAlpha().png().toBuffer());
      iccFiles.push({ path, ext: kind === "jpeg" ? "jpg" : "webp" });
    } catch {
      // sharp refuses it: no reference to compare with.
    }
  }
  project.provide("iccFiles", iccFiles);
  const allowed = new Set([...corpus.map((f) => f.path), ...pngFiles, ...sequenceFiles, ...iccFiles.map((f) => f.path)]);
  const server = createServer((req, res) => {
    const path = decodeURIComponent((req.url ?? "/").slice(1));
    if (path.startsWith("ref/") && references.has(path.slice(4))) {
      res.writeHead(200, { "Content-Type": "image/png", Connection: "close" }).end(references.get(path.slice(4)));
      return;
    }
    if (!allowed.has(path)) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "Content-Type": "application/octet-stream", Connection: "close" }).end(readFileSync(resolve(CORPUS, path)));
  });
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  project.provide("corpusUrl", `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  return async () => {
    await new Promise((done) => server.close(() => done(undefined)));
    await closeBase();
  };
}

/**
 * A deterministic sample of every set in MANIFEST.tsv that is on disk: the first files of each
 * set by content hash (an arbitrary but stable order), skipping files over 1.5 MB to keep the
 * sweep within CI's time, plus every decompression bomb the corpus README lists.
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
    for (const f of [...picked, ...extra]) chosen.push({ set, path: f.path, kind: f.kind });
  }
  return chosen;
}
