import { expect, it } from "vitest";

const MiB = 2 ** 20;
const tick = (ms = 10) => new Promise((r) => setTimeout(r, ms));

/** A touched WASM memory of `mib`, dropped; returns a WeakRef to it, after it has aged through several scavenges. */
async function garbage(mib: number): Promise<WeakRef<object>> {
  let m: WebAssembly.Memory | null = new WebAssembly.Memory({ initial: (mib * MiB) / 65536 });
  new Uint8Array(m.buffer).fill(1);
  const ref = new WeakRef(m);
  // Age it: allocate young garbage so that it is promoted to old space.
  for (let i = 0; i < 50; i++) {
    const junk = [];
    for (let k = 0; k < 20000; k++) junk.push({ k, s: "x" + k });
    await tick(5);
  }
  m = null;
  return ref;
}

async function timeToCollect(ref: WeakRef<object>, nudge: () => void, max = 8000): Promise<number> {
  const t = Date.now();
  while (Date.now() - t < max) {
    await tick(20);
    if (ref.deref() === undefined) return Date.now() - t;
    nudge();
  }
  return -1;
}

it("gc probe", async () => {
  const results: Record<string, number[]> = {};
  const nudges: Record<string, () => void> = {
    none: () => {},
    wasm64: () => void new WebAssembly.Memory({ initial: 1024 }),
    wasm256: () => void new WebAssembly.Memory({ initial: 4096 }),
    ab64: () => void new ArrayBuffer(64 * MiB),
    ab160: () => void new ArrayBuffer(160 * MiB),
    ab256: () => void new ArrayBuffer(256 * MiB),
  };
  for (let round = 0; round < 2; round++) {
    for (const [name, nudge] of Object.entries(nudges)) {
      const ref = await garbage(48);
      (results[name] ??= []).push(await timeToCollect(ref, nudge));
    }
  }
  console.log("GCPROBE", JSON.stringify(results));
  expect(true).toBe(true);
}, 300_000);
