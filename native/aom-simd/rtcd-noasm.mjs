// A filter over libaom's generated dispatch header (config/*_rtcd.h, static dispatch:
// CONFIG_RUNTIME_CPU_DETECT=0), stdin to stdout. x86 assembly cannot become WASM, so each
// `#define fn fn_<flavor>` naming an assembly-only function falls back to the best lower flavor
// written in C intrinsics (which emscripten maps to WASM SIMD), or to C; and the CPU probe
// (aom_ports/x86.h, inline x86 assembly) goes, since static dispatch never reads its flags.
// Usage: perl rtcd.pl ... | node rtcd-noasm.mjs ASM_SYMBOLS_FILE (native/aom-simd/rtcd-perl)
import { readFileSync } from "node:fs";
const listed = new Set(readFileSync(process.argv[2], "utf8").split("\n").filter(Boolean));
// C wrappers whose loops call assembly helpers (convolve.h FUN_CONV_1D over aom_filter_block1d*;
// variance_sse2.c over aom_sub_pixel_variance{4,8,16}xh), so they count as assembly too.
const WRAPS_ASSEMBLY = [/^aom_convolve8_(horiz|vert)_(sse2|ssse3)$/, /^aom_sub_pixel(_avg)?_variance\d+x\d+_(sse2|ssse3)$/];
const asm = { has: (s) => listed.has(s) || WRAPS_ASSEMBLY.some((r) => r.test(s)) };
const ORDER = ["c", "mmx", "sse", "sse2", "sse3", "ssse3", "sse4_1", "sse4_2", "avx", "avx2"];
const text = readFileSync(0, "utf8");
const declared = new Set(text.match(/\b\w+(?=\()/g));
const out = text.replace(/^#define (\w+) (\w+)$/gm, (line, fn, target) => {
  if (!asm.has(target)) return line;
  const flavor = target.slice(fn.length + 1);
  const pick = ORDER.slice(0, ORDER.indexOf(flavor)).reverse().map((f) => `${fn}_${f}`).find((s) => declared.has(s) && !asm.has(s));
  if (!pick) throw new Error(`no C or intrinsics fallback for ${target}`);
  return `#define ${fn} ${pick}`;
});
process.stdout.write(out.replace('#include "aom_ports/x86.h"\n', "").replace("int flags = x86_simd_caps();", "int flags = 0;"));
