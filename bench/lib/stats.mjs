// Small helpers for the benchmark: timing, medians, tables, SSIM on RGBA buffers.
import { ssim } from "ssim.js";

export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

export async function timed(fn) {
  const t = performance.now();
  const value = await fn();
  return { ms: performance.now() - t, value };
}

/** Mean SSIM of two same-sized RGBA images (ssim.js, its default Wang et al. window). */
export function ssimOf(a, b) {
  if (a.width !== b.width || a.height !== b.height) throw new Error(`size mismatch ${a.width}x${a.height} vs ${b.width}x${b.height}`);
  return ssim(a, b).mssim;
}

export function table(title, headers, rows, note) {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells) => `| ${cells.map((c, i) => String(c).padEnd(widths[i])).join(" | ")} |`;
  const md = [`### ${title}`, "", line(headers), `| ${widths.map((w) => "-".repeat(w)).join(" | ")} |`, ...rows.map(line)];
  if (note) md.push("", note);
  return md.join("\n");
}

export const fmtMs = (ms) => `${ms.toFixed(ms < 10 ? 1 : 0)} ms`;
export const fmtMB = (b) => `${(b / 2 ** 20).toFixed(1)} MiB`;
export const fmtKB = (b) => `${(b / 1024).toFixed(1)} KiB`;
export const ratio = (a, b) => (b ? `${(a / b).toFixed(2)}x` : "n/a");
