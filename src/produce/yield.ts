/**
 * @module produce/yield
 * Lets the isolate answer other events in the middle of a long production. One isolate runs one
 * thing at a time: a 12 MP full-size AVIF is seconds of WASM, and while it runs no request of
 * the isolate is even read. Streamed productions are many short codec calls (a band of rows, a
 * grid tile, a frame), so they give the event loop a turn after every WORK_PIXELS of work: a
 * request that arrives meanwhile waits for one step, not the job.
 *
 * A step is counted in pixels, not milliseconds: deployed Workers only advance the clock at I/O
 * (a Spectre mitigation), so a timer inside a CPU stretch would never fire. Measured under
 * `wrangler dev`, without these turns a request sent after a 7 s full-size HEIC -> AVIF whose
 * write-back went to R2 was not read for minutes (until another request arrived).
 */

/** Pixels of decoding or compositing between turns (tens to hundreds of milliseconds of codec work). */
export const WORK_PIXELS = 500_000;

/** A macrotask turn: pending I/O and other requests' events run before this resolves. */
export const turn = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 0));

/** Counts work and takes a turn after every WORK_PIXELS of it. */
export class Turns {
  #work = 0;
  async after(pixels: number): Promise<void> {
    this.#work += pixels;
    if (this.#work < WORK_PIXELS) return;
    this.#work = 0;
    await turn();
  }
}
