/**
 * @module bitstream
 * The picture size a codec will allocate for, read from the coded stream's own headers: the AV1
 * sequence header (AV1 spec 5.5) and the HEVC sequence parameter set (H.265 7.3.2.2). A HEIF
 * container's `ispe` is only a claim; decoders size their frames from these, so a file whose
 * stream is larger than its container says must be refused before any decoder sees it (a
 * 1,166-byte AVIF with an 8192x8192 stream under a 1024x1024 `ispe` took workerd to 1.4 GB).
 */

/** MSB-first bit reader over a byte range; reading past the end throws. */
class Bits {
  #pos = 0;
  constructor(
    private readonly b: Uint8Array,
    private readonly start = 0,
    private readonly end = b.length,
  ) {}

  bit(): number {
    const at = this.start + (this.#pos >> 3);
    if (at >= this.end) throw new RangeError("bitstream header ends early");
    const v = (this.b[at] >> (7 - (this.#pos & 7))) & 1;
    this.#pos++;
    return v;
  }

  /** f(n) / u(n): n bits, n <= 32. */
  f(n: number): number {
    let v = 0;
    for (let i = 0; i < n; i++) v = v * 2 + this.bit();
    return v;
  }

  skip(n: number): void {
    for (let i = 0; i < n; i++) this.bit();
  }

  /** AV1 uvlc() (4.10.3). */
  uvlc(): number {
    let zeros = 0;
    while (!this.bit()) if (++zeros >= 32) return 2 ** 32 - 1;
    return this.f(zeros) + 2 ** zeros - 1;
  }

  /** H.265 ue(v), Exp-Golomb (9.2). */
  ue(): number {
    let zeros = 0;
    while (!this.bit()) if (++zeros > 31) throw new RangeError("Exp-Golomb code too long");
    return this.f(zeros) + 2 ** zeros - 1;
  }
}

export interface CodedSize {
  width: number;
  height: number;
}

/** AV1 leb128() (4.10.5): value and bytes used. */
function leb128(b: Uint8Array, at: number, end: number): { value: number; length: number } {
  let value = 0;
  for (let i = 0; i < 8; i++) {
    if (at + i >= end) throw new RangeError("leb128 ends early");
    value += (b[at + i] & 0x7f) * 2 ** (7 * i);
    if (!(b[at + i] & 0x80)) return { value, length: i + 1 };
  }
  throw new RangeError("leb128 too long");
}

/**
 * The maximum frame size of the first sequence header OBU in `b[start, end)` (AV1 Image Item
 * data or av1C's configOBUs), or null when there is none. AV1 5.3.1 OBU header, 5.5.1
 * sequence_header_obu up to max_frame_height_minus_1.
 */
export function av1SequenceSize(b: Uint8Array, start: number, end: number): CodedSize | null {
  const info = firstSequenceHeader(b, start, end);
  return info && { width: info.width, height: info.height };
}

function firstSequenceHeader(b: Uint8Array, start: number, end: number): Av1SequenceInfo | null {
  let at = start;
  while (at < end) {
    const header = b[at];
    const type = (header >> 3) & 15;
    const extension = (header >> 2) & 1;
    const hasSize = (header >> 1) & 1;
    let body = at + 1 + extension;
    let size = end - body;
    if (hasSize) {
      const s = leb128(b, body, end);
      body += s.length;
      size = s.value;
    }
    if (type === 1) return sequenceHeader(new Bits(b, body, Math.min(end, body + size)));
    // Without a size field the OBU runs to the end (5.3.1): nothing follows it.
    if (!hasSize) return null;
    at = body + size;
  }
  return null;
}

/** What `av1C` repeats of a sequence header (AV1-ISOBMFF 2.3.3): profile, first operating point's level and tier, and the size. */
export interface Av1SequenceInfo extends CodedSize {
  profile: number;
  level: number;
  tier: number;
}

/** Like av1SequenceSize, with the profile, level and tier `av1C` needs. */
export function av1SequenceInfo(b: Uint8Array): Av1SequenceInfo | null {
  return firstSequenceHeader(b, 0, b.length);
}

function sequenceHeader(r: Bits): Av1SequenceInfo {
  const profile = r.f(3); // seq_profile
  r.f(1); // still_picture
  const reduced = r.f(1);
  let level = 0;
  let tier = 0;
  if (reduced) {
    level = r.f(5); // seq_level_idx[0]
  } else {
    let bufferDelayLength = 0;
    const timingInfo = r.f(1);
    let decoderModelInfo = 0;
    if (timingInfo) {
      r.f(32); // num_units_in_display_tick
      r.f(32); // time_scale
      if (r.f(1)) r.uvlc(); // equal_picture_interval, num_ticks_per_picture_minus_1
      decoderModelInfo = r.f(1);
      if (decoderModelInfo) {
        bufferDelayLength = r.f(5) + 1;
        r.f(32); // num_units_in_decoding_tick
        r.f(5); // buffer_removal_time_length_minus_1
        r.f(5); // frame_presentation_time_length_minus_1
      }
    }
    const initialDisplayDelay = r.f(1);
    const points = r.f(5) + 1;
    for (let i = 0; i < points; i++) {
      r.f(12); // operating_point_idc
      const pointLevel = r.f(5);
      const pointTier = pointLevel > 7 ? r.f(1) : 0; // seq_tier
      if (i === 0) [level, tier] = [pointLevel, pointTier];
      if (decoderModelInfo && r.f(1)) r.skip(2 * bufferDelayLength + 1);
      if (initialDisplayDelay && r.f(1)) r.f(4);
    }
  }
  const widthBits = r.f(4) + 1;
  const heightBits = r.f(4) + 1;
  return { width: r.f(widthBits) + 1, height: r.f(heightBits) + 1, profile, level, tier };
}

/** NAL unit payload without emulation-prevention bytes (H.265 7.4.2: 00 00 03 -> 00 00). */
function rbsp(b: Uint8Array, start: number, end: number): Uint8Array {
  const out = new Uint8Array(end - start);
  let n = 0;
  let zeros = 0;
  for (let i = start; i < end; i++) {
    if (zeros >= 2 && b[i] === 3) {
      zeros = 0;
      continue;
    }
    zeros = b[i] === 0 ? zeros + 1 : 0;
    out[n++] = b[i];
  }
  return out.subarray(0, n);
}

/** profile_tier_level(1, maxSubLayersMinus1) (H.265 7.3.3). */
function skipProfileTierLevel(r: Bits, maxSubLayersMinus1: number): void {
  r.skip(88); // general profile space, tier, idc, compatibility and constraint flags
  r.f(8); // general_level_idc
  const profile: number[] = [];
  const level: number[] = [];
  for (let i = 0; i < maxSubLayersMinus1; i++) {
    profile.push(r.f(1));
    level.push(r.f(1));
  }
  if (maxSubLayersMinus1 > 0) for (let i = maxSubLayersMinus1; i < 8; i++) r.f(2);
  for (let i = 0; i < maxSubLayersMinus1; i++) {
    if (profile[i]) r.skip(88);
    if (level[i]) r.f(8);
  }
}

/** pic_width/height_in_luma_samples of an SPS NAL unit (2-byte NAL header first). */
function spsSize(nal: Uint8Array): CodedSize {
  const r = new Bits(rbsp(nal, 2, nal.length));
  r.f(4); // sps_video_parameter_set_id
  const maxSubLayersMinus1 = r.f(3);
  r.f(1); // sps_temporal_id_nesting_flag
  skipProfileTierLevel(r, maxSubLayersMinus1);
  r.ue(); // sps_seq_parameter_set_id
  if (r.ue() === 3) r.f(1); // chroma_format_idc, separate_colour_plane_flag
  return { width: r.ue(), height: r.ue() };
}

/**
 * The largest coded picture of the SPS NAL units in an `hvcC` box body (ISO/IEC 14496-15
 * 8.3.3.1: 22 bytes of configuration, then arrays of NAL units by type; SPS is type 33), or
 * null when it holds none.
 */
export function hevcConfigSize(b: Uint8Array, start: number, end: number): CodedSize | null {
  if (start + 23 > end) throw new RangeError("hvcC ends early");
  let at = start + 22;
  const arrays = b[at++];
  let found: CodedSize | null = null;
  for (let a = 0; a < arrays; a++) {
    if (at + 3 > end) throw new RangeError("hvcC ends early");
    const type = b[at] & 0x3f;
    const count = (b[at + 1] << 8) | b[at + 2];
    at += 3;
    for (let n = 0; n < count; n++) {
      if (at + 2 > end) throw new RangeError("hvcC ends early");
      const len = (b[at] << 8) | b[at + 1];
      at += 2;
      if (at + len > end) throw new RangeError("hvcC NAL unit ends early");
      if (type === 33) {
        const size = spsSize(b.subarray(at, at + len));
        if (!found || size.width * size.height > found.width * found.height) found = size;
      }
      at += len;
    }
  }
  return found;
}
