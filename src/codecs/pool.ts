/**
 * @module codecs/pool
 * One idle instance per codec module, kept between jobs. A fresh instance pays for every page
 * of memory it touches the first time (the kernel hands out a zeroed page on each first write):
 * measured 3 ms per MiB on the bench machine, 20 of mozjpeg's 42 ms for an 800x450 JPEG inside
 * workerd (22 ms on an instance that had encoded before). Only an instance whose memory never
 * grew past its initial size is kept, and only jobs of at most POOL_JOB_PIXELS take it, so a
 * pooled instance is as large as a fresh one and every memory prediction (produce/budget) holds
 * unchanged. A larger job gets a fresh instance: one that reuses a heap with the last job's
 * leftovers grows differently (measured: mozjpeg at 2000x1500 peaked 2.9 MB above a fresh
 * instance). In practice this is mozjpeg and @jsquash/webp at web sizes (16 MiB initial).
 * Only after work that ended cleanly: an instance an error went through is dropped. The
 * isolate's memory gate (produce/admission) counts idle instances as used, and drains the pool
 * when a job needs the room.
 */

/**
 * Jobs of at most this many pixels (800x600) take a pooled instance. Measured in Node at up to
 * 800x600, an instance that had encoded a 64x64 image first ended every encode at the same size
 * as a fresh one: mozjpeg 16.19 MiB throughout; @jsquash/webp 16.00, 19.25 at 800x600.
 */
export const POOL_JOB_PIXELS = 480_000;
/** Largest instance kept: mozjpeg's and @jsquash/webp's initial 16 MiB fit. */
export const POOL_INSTANCE_MAX_BYTES = 24 * 2 ** 20;
/** All idle instances together. */
export const POOL_MAX_BYTES = 40 * 2 ** 20;

const idle = new Map<WebAssembly.Module, { instance: unknown; bytes: number }>();
let idleBytes = 0;

/** The idle instance of `module`, now the caller's, if there is one. */
export function takePooled<T>(module: WebAssembly.Module): T | undefined {
  const slot = idle.get(module);
  if (!slot) return undefined;
  idle.delete(module);
  idleBytes -= slot.bytes;
  return slot.instance as T;
}

/**
 * Gives back an instance whose work ended cleanly, with its memory now and when the caller got
 * it; kept if that memory never grew, is small and there is room, else dropped.
 */
export function returnToPool(module: WebAssembly.Module, instance: unknown, bytes: number, initialBytes: number): void {
  if (bytes > initialBytes || idle.has(module) || bytes > POOL_INSTANCE_MAX_BYTES || idleBytes + bytes > POOL_MAX_BYTES) return;
  idle.set(module, { instance, bytes });
  idleBytes += bytes;
}

/** Memory held by idle instances. */
export const pooledBytes = (): number => idleBytes;

/** Drops every idle instance (V8 frees them at its next collection); returns their bytes. */
export function drainPool(): number {
  const dropped = idleBytes;
  idle.clear();
  idleBytes = 0;
  return dropped;
}
