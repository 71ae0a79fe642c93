/**
 * Runs in Node before the suite: reads the real corpus files the tests need from
 * `../shared/corpora` and hands them to the workerd-side tests through `provide`. A missing
 * file fails the run; it is never skipped.
 */
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { TestProject } from "vitest/node";
import { FIXTURES, type FixtureName } from "./fixtures";

const CORPUS = resolve(dirname(fileURLToPath(import.meta.url)), "../../shared/corpora");

export default function setup(project: TestProject): void {
  const fixtures = {} as Record<FixtureName, string>;
  for (const [name, rel] of Object.entries(FIXTURES) as [FixtureName, string][]) {
    fixtures[name] = readFileSync(resolve(CORPUS, rel)).toString("base64");
  }
  project.provide("fixtures", fixtures);
}
