// A GIF89a whose one frame (frameW x frameH, at 0,0) is a single colour index on a
// screenW x screenH logical screen, LZW-coded as Poskanzer's compress codes GIF data (the code
// width grows once the next free code passes it; a clear code when the table is full). A
// constant frame codes runs of 1, 2, 3, ... pixels per code, so 262 million pixels take 178 KB:
// the shape of issue 30's frame bomb. Checked by decoding small ones with libvips.
export function constantGif(screenW, screenH, frameW, frameH) {
  const MIN = 2, CLEAR = 4, EOI = 5, FIRST = 6;
  const out = [];
  let acc = 0, nacc = 0, nBits = MIN + 1, maxcode = (1 << nBits) - 1, free = FIRST, clearFlag = false;
  const bytes = [];
  const output = (code) => {
    acc |= code << nacc; nacc += nBits;
    while (nacc >= 8) { bytes.push(acc & 255); acc >>>= 8; nacc -= 8; }
    if (free > maxcode || clearFlag) {
      if (clearFlag) { nBits = MIN + 1; maxcode = (1 << nBits) - 1; clearFlag = false; }
      else { nBits++; maxcode = nBits === 12 ? 4096 : (1 << nBits) - 1; }
    }
  };
  const codeOf = (len) => (len === 1 ? 0 : FIRST + len - 2);
  output(CLEAR);
  let left = frameW * frameH;
  let maxLen = 1; // longest run in the table
  while (left > 0) {
    const len = Math.min(maxLen, left);
    // The encoder extends w while w+0 is in the table: a run of maxLen, or what is left.
    output(codeOf(len));
    left -= len;
    if (left === 0) break;
    if (free < 4096) { free++; maxLen = len + 1; }
    else { clearFlag = true; free = FIRST; maxLen = 1; output(CLEAR); }
  }
  output(EOI);
  if (nacc > 0) bytes.push(acc & 255);
  const u16 = (v) => [v & 255, v >> 8];
  out.push(...Buffer.from("GIF89a"), ...u16(screenW), ...u16(screenH), 0x81, 0, 0);
  out.push(200, 30, 30, 30, 200, 30, 30, 30, 200, 255, 255, 255);
  out.push(0x2c, 0, 0, 0, 0, ...u16(frameW), ...u16(frameH), 0, MIN);
  const head = Buffer.from(out);
  const blocks = [];
  for (let i = 0; i < bytes.length; i += 255) { const n = Math.min(255, bytes.length - i); blocks.push(Buffer.from([n, ...bytes.slice(i, i + n)])); }
  return Buffer.concat([head, ...blocks, Buffer.from([0, 0x3b])]);
}
