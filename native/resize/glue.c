// The resampler's two inner loops (src/produce/resample.ts keeps the kernels and the streaming
// logic) in WASM SIMD: an RGBA pixel is one f32x4, so each tap is one multiply-add instead of
// four. Our own code, no library. Same arithmetic as the JS it replaces: colour premultiplied by
// alpha horizontally, divided back after the vertical pass, rounded half to even and clamped
// like a Uint8ClampedArray store.
#include <stdint.h>
#include <stdlib.h>
#include <wasm_simd128.h>

// One source row of 8-bit RGBA into one ring row of premultiplied float RGBA: output pixel o
// sums count[o] source pixels from start[o], weights taps apart. The row is first turned into
// premultiplied floats in `scratch` (src_width pixels), once per source pixel rather than once
// per tap, so each tap is one load and one multiply-add.
void resize_hfilter(const uint8_t *src, int src_width, int out_width, const int32_t *start,
                    const int32_t *count, const float *weights, int taps, float *scratch,
                    float *dst) {
  for (int i = 0; i < src_width; i++) {
    const uint8_t *p = src + i * 4;
    // Four bytes widened to u32 lanes, then to floats: (r, g, b, a).
    v128_t px = wasm_f32x4_convert_u32x4(wasm_u32x4_extend_low_u16x8(wasm_u16x8_extend_low_u8x16(wasm_v128_load32_zero(p))));
    float a = (float)p[3];
    // (r*a, g*a, b*a, a)
    wasm_v128_store(scratch + i * 4, wasm_f32x4_mul(px, wasm_f32x4_make(a, a, a, 1.0f)));
  }
  for (int o = 0; o < out_width; o++) {
    v128_t acc = wasm_f32x4_splat(0.0f);
    const float *p = scratch + start[o] * 4;
    const float *w = weights + o * taps;
    for (int k = 0; k < count[o]; k++, p += 4)
      acc = wasm_f32x4_add(acc, wasm_f32x4_mul(wasm_v128_load(p), wasm_f32x4_splat(w[k])));
    wasm_v128_store(dst + o * 4, acc);
  }
}

// One output row from n ring rows (rows[k] is a float offset into ring) with weights w, into
// 8-bit RGBA: colour divided by alpha where alpha > 0.5, else 0.
void resize_vfilter(const float *ring, const int32_t *rows, const float *w, int n, int width,
                    uint8_t *out) {
  const v128_t zero = wasm_f32x4_splat(0.0f);
  const v128_t max = wasm_f32x4_splat(255.0f);
  for (int x = 0; x < width; x++) {
    v128_t acc = zero;
    for (int k = 0; k < n; k++)
      acc = wasm_f32x4_add(acc, wasm_f32x4_mul(wasm_v128_load(ring + rows[k] + x * 4), wasm_f32x4_splat(w[k])));
    float a = wasm_f32x4_extract_lane(acc, 3);
    v128_t v;
    if (a > 0.5f) {
      v = wasm_f32x4_div(acc, wasm_f32x4_make(a, a, a, 1.0f));
    } else {
      v = wasm_f32x4_replace_lane(zero, 3, a);
    }
    v = wasm_f32x4_nearest(wasm_f32x4_min(wasm_f32x4_max(v, zero), max));
    v128_t i = wasm_i32x4_trunc_sat_f32x4(v);
    uint8_t *q = out + x * 4;
    q[0] = (uint8_t)wasm_i32x4_extract_lane(i, 0);
    q[1] = (uint8_t)wasm_i32x4_extract_lane(i, 1);
    q[2] = (uint8_t)wasm_i32x4_extract_lane(i, 2);
    q[3] = (uint8_t)wasm_i32x4_extract_lane(i, 3);
  }
}
