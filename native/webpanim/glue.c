/*
 * Our glue over libwebp's animation layer (src/webp/mux.h WebPAnimEncoder, src/webp/demux.h
 * WebPAnimDecoder). The encoder takes one composited canvas at a time and does the inter-frame
 * work itself (sub-rectangles, blending and disposal choices, key frames), which is what makes
 * an animated WebP small; only the previous canvases and the encoded frames are kept, never
 * every input frame. The decoder gives each frame of an animated WebP as a full canvas.
 * Nothing here knows about HTTP or files.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "src/webp/encode.h"
#include "src/webp/mux.h"
#include "src/webp/demux.h"

typedef struct {
  WebPAnimEncoder* enc;
  WebPConfig config;
  WebPPicture pic;
  int width, height;
  uint8_t* rgba;  // the canvas the caller fills before each anim_enc_add
  WebPData out;
} Enc;

/*
 * `loop`: 0 plays forever (WebP container spec, ANIM chunk). `quality` 0-100, `method` 0-6.
 * `lossless`: VP8L frames (`quality` is then libwebp's compression effort).
 */
Enc* anim_enc_new(int width, int height, int loop, float quality, int method, int lossless) {
  Enc* e = (Enc*)calloc(1, sizeof(Enc));
  if (!e) return NULL;
  WebPAnimEncoderOptions opts;
  if (!WebPAnimEncoderOptionsInit(&opts) || !WebPConfigInit(&e->config) || !WebPPictureInit(&e->pic)) {
    free(e);
    return NULL;
  }
  opts.anim_params.loop_count = loop;
  // Transparent canvas background: a GIF's disposal to background shows what is behind the image.
  opts.anim_params.bgcolor = 0x00000000;
  e->config.quality = quality;
  e->config.method = method;
  e->config.lossless = lossless ? 1 : 0;
  e->enc = WebPAnimEncoderNew(width, height, &opts);
  if (!e->enc || !WebPValidateConfig(&e->config)) {
    WebPAnimEncoderDelete(e->enc);
    free(e);
    return NULL;
  }
  e->width = width;
  e->height = height;
  e->pic.width = width;
  e->pic.height = height;
  e->pic.use_argb = 1;
  e->rgba = (uint8_t*)malloc((size_t)width * height * 4);
  if (!e->rgba || !WebPPictureAlloc(&e->pic)) {
    WebPAnimEncoderDelete(e->enc);
    free(e->rgba);
    free(e);
    return NULL;
  }
  return e;
}

/* The RGBA canvas the caller fills before each anim_enc_add (width*height*4 bytes). */
uint8_t* anim_enc_canvas(Enc* e) { return e->rgba; }

/* Adds the canvas shown from `timestamp_ms` on. 1 on success. */
int anim_enc_add(Enc* e, int timestamp_ms) {
  if (!WebPPictureImportRGBA(&e->pic, anim_enc_canvas(e), e->width * 4)) return 0;
  return WebPAnimEncoderAdd(e->enc, &e->pic, timestamp_ms, &e->config);
}

/* Ends the animation at `end_ms` (the last frame's duration) and assembles the file. */
int anim_enc_finish(Enc* e, int end_ms) {
  if (!WebPAnimEncoderAdd(e->enc, NULL, end_ms, NULL)) return 0;
  WebPDataInit(&e->out);
  return WebPAnimEncoderAssemble(e->enc, &e->out);
}

const uint8_t* anim_enc_data(Enc* e) { return e->out.bytes; }
size_t anim_enc_size(Enc* e) { return e->out.size; }
const char* anim_enc_error(Enc* e) { return WebPAnimEncoderGetError(e->enc); }

void anim_enc_free(Enc* e) {
  if (!e) return;
  WebPDataClear(&e->out);
  WebPPictureFree(&e->pic);
  WebPAnimEncoderDelete(e->enc);
  free(e->rgba);
  free(e);
}

typedef struct {
  WebPAnimDecoder* dec;
  WebPAnimInfo info;
  uint8_t* frame;
  int timestamp;
} Dec;

/* An animated (or still) WebP in memory, which must outlive the decoder; NULL when invalid. */
Dec* anim_dec_new(const uint8_t* data, size_t len) {
  Dec* d = (Dec*)calloc(1, sizeof(Dec));
  if (!d) return NULL;
  WebPAnimDecoderOptions opts;
  if (!WebPAnimDecoderOptionsInit(&opts)) {
    free(d);
    return NULL;
  }
  opts.color_mode = MODE_RGBA;
  opts.use_threads = 0;
  WebPData in = {data, len};
  d->dec = WebPAnimDecoderNew(&in, &opts);
  if (!d->dec || !WebPAnimDecoderGetInfo(d->dec, &d->info)) {
    WebPAnimDecoderDelete(d->dec);
    free(d);
    return NULL;
  }
  return d;
}

int anim_dec_width(Dec* d) { return d->info.canvas_width; }
int anim_dec_height(Dec* d) { return d->info.canvas_height; }
int anim_dec_loop(Dec* d) { return d->info.loop_count; }
int anim_dec_frames(Dec* d) { return d->info.frame_count; }

/* 1: the next frame's canvas is ready; 0: no more frames; -1: a decode error. */
int anim_dec_next(Dec* d) {
  if (!WebPAnimDecoderHasMoreFrames(d->dec)) return 0;
  return WebPAnimDecoderGetNext(d->dec, &d->frame, &d->timestamp) ? 1 : -1;
}

uint8_t* anim_dec_pixels(Dec* d) { return d->frame; }
/* When the frame just decoded ends (ms from the start). */
int anim_dec_timestamp(Dec* d) { return d->timestamp; }

void anim_dec_free(Dec* d) {
  if (!d) return;
  WebPAnimDecoderDelete(d->dec);
  free(d);
}

/*
 * A still WebP encoded from rows (the codec-layer issue: "WebP from a YUV picture filled row by
 * row"). The encoder needs the whole picture, but as YUV 4:2:0 it is 1.5 bytes a pixel (2.5
 * with alpha) where RGBA is 4: a 24 MP photo's picture is 36 MB, not 96. Each band of RGBA rows
 * is converted by libwebp's own importer into a band-sized picture, then its planes are copied
 * into the full picture, turned by the EXIF orientation (CIPA DC-008) on the way, so rows can
 * arrive in stored order whatever the display orientation.
 */
typedef struct {
  WebPConfig config;
  WebPPicture pic;   /* the whole picture, display orientation */
  WebPPicture band;  /* one band, stored orientation */
  int sw, sh;        /* stored size */
  int orientation;
  int alpha;
  int max_rows;
  int y;             /* next stored row */
  uint8_t* rgba;     /* the caller's band: sw * max_rows * 4 bytes */
  WebPMemoryWriter out;
  /* Sharp YUV (see rows_enc_new): stored rows [wy, wy + wn) held as RGBA in `win`, and the
   * next row not yet converted. */
  int sharp;
  uint8_t* win;
  int wy, wn, cy;
} Rows;

/* Sharp YUV converts SHARP_CHUNK rows at a time, each with up to SHARP_CONTEXT rows of context
 * either side (even, so chroma rows stay aligned). libwebp's iterative conversion
 * (sharpyuv/sharpyuv.c: kNumIterations 4, each reading the chroma rows above and below)
 * reaches at most 4 chroma rows, 8 luma rows, from a row: converted with 8 rows of context,
 * the kept rows see what a whole-picture conversion would have shown them. */
#define SHARP_CHUNK 32
#define SHARP_CONTEXT 8

/* Stored (x, y) of a plane of stored size w x h to its display position (the inverse of the
 * lookup in src/produce/orient.ts). */
static void place(int o, int w, int h, int x, int y, int* X, int* Y) {
  switch (o) {
    case 2: *X = w - 1 - x; *Y = y; break;
    case 3: *X = w - 1 - x; *Y = h - 1 - y; break;
    case 4: *X = x; *Y = h - 1 - y; break;
    case 5: *X = y; *Y = x; break;
    case 6: *X = h - 1 - y; *Y = x; break;
    case 7: *X = h - 1 - y; *Y = w - 1 - x; break;
    case 8: *X = y; *Y = w - 1 - x; break;
    default: *X = x; *Y = y; break;
  }
}

/* Copies `rows` rows of a band plane (stored rows y0.. of a plane of stored size w x h). */
static void copy_plane(int o, const uint8_t* src, int src_stride, uint8_t* dst, int dst_stride, int w, int h, int y0, int rows) {
  for (int r = 0; r < rows && y0 + r < h; r++) {
    const uint8_t* s = src + (size_t)r * src_stride;
    if (o < 2 || o > 8) {
      memcpy(dst + (size_t)(y0 + r) * dst_stride, s, w);
      continue;
    }
    for (int x = 0; x < w; x++) {
      int X, Y;
      place(o, w, h, x, y0 + r, &X, &Y);
      dst[(size_t)Y * dst_stride + X] = s[x];
    }
  }
}

/*
 * `sw` x `sh` stored rows arriving `max_rows` at most at a time (even, so 4:2:0 chroma rows
 * never straddle two bands); `alpha`: keep an alpha plane; `low_memory`: see below; `sharp`:
 * 0 libwebp's averaging RGB to YUV conversion, 1 its sharp one for chunks with colour edges
 * (colour_edges), 2 the sharp one everywhere. NULL when out of memory or invalid.
 */
Rows* rows_enc_new(int sw, int sh, int orientation, int alpha, float quality, int method, int max_rows, int low_memory, int sharp) {
  if (sw <= 0 || sh <= 0 || max_rows <= 0 || (max_rows & 1)) return NULL;
  Rows* e = (Rows*)calloc(1, sizeof(Rows));
  if (!e) return NULL;
  if (!WebPConfigInit(&e->config) || !WebPPictureInit(&e->pic) || !WebPPictureInit(&e->band)) {
    free(e);
    return NULL;
  }
  e->config.quality = quality;
  e->config.method = method;
  /* low_memory: no token buffer, so the picture is most of the memory; but then libwebp makes
   * every macroblock decision twice (frame_enc.c VP8EncLoop runs StatLoop, a full analysis
   * pass at method >= 3, before the coding pass). With the token buffer (VP8EncTokenLoop) it
   * decides once and keeps the tokens, about 2 bytes each: the fast path for web sizes. */
  e->config.low_memory = low_memory ? 1 : 0;
  e->sw = sw;
  e->sh = sh;
  e->orientation = orientation;
  e->alpha = alpha;
  e->max_rows = max_rows;
  int swap = orientation >= 5 && orientation <= 8;
  e->pic.width = swap ? sh : sw;
  e->pic.height = swap ? sw : sh;
  e->pic.use_argb = 0;
  e->pic.colorspace = alpha ? WEBP_YUV420A : WEBP_YUV420;
  e->band.width = sw;
  e->band.height = max_rows;
  e->band.use_argb = 0;
  e->rgba = (uint8_t*)malloc((size_t)sw * max_rows * 4);
  e->sharp = sharp;
  if (sharp) e->win = (uint8_t*)malloc((size_t)sw * (SHARP_CHUNK + 2 * SHARP_CONTEXT + max_rows) * 4);
  if (!WebPValidateConfig(&e->config) || !e->rgba || (sharp && !e->win) || !WebPPictureAlloc(&e->pic)) {
    WebPPictureFree(&e->pic);
    free(e->rgba);
    free(e->win);
    free(e);
    return NULL;
  }
  return e;
}

uint8_t* rows_enc_band(Rows* e) { return e->rgba; }

/* Copies `n` converted rows of the band picture, from its row `off` (even), to stored rows
 * y0.. of the whole picture. */
static void store_rows(Rows* e, const WebPPicture* b, int off, int y0, int n) {
  int o = e->orientation;
  int cw = (e->sw + 1) / 2, ch = (e->sh + 1) / 2;
  copy_plane(o, b->y + (size_t)off * b->y_stride, b->y_stride, e->pic.y, e->pic.y_stride, e->sw, e->sh, y0, n);
  copy_plane(o, b->u + (size_t)(off / 2) * b->uv_stride, b->uv_stride, e->pic.u, e->pic.uv_stride, cw, ch, y0 / 2, (n + 1) / 2);
  copy_plane(o, b->v + (size_t)(off / 2) * b->uv_stride, b->uv_stride, e->pic.v, e->pic.uv_stride, cw, ch, y0 / 2, (n + 1) / 2);
  if (e->alpha) {
    if (b->a) {
      copy_plane(o, b->a + (size_t)off * b->a_stride, b->a_stride, e->pic.a, e->pic.a_stride, e->sw, e->sh, y0, n);
    } else {
      /* An opaque band: libwebp made no alpha plane for it. */
      for (int r = 0; r < n; r++) {
        for (int x = 0; x < e->sw; x++) {
          int X, Y;
          place(o, e->sw, e->sh, x, y0 + r, &X, &Y);
          e->pic.a[(size_t)Y * e->pic.a_stride + X] = 0xff;
        }
      }
    }
  }
}

/* `rows` RGBA rows at `rgba` into the band picture, converted to YUV(A): libwebp's own
 * conversion, or its sharp (iterative) one. 1 on success. */
static int convert(Rows* e, const uint8_t* rgba, int rows, int sharp) {
  WebPPicture* b = &e->band;
  if (b->height != rows || b->use_argb != sharp) {
    WebPPictureFree(b);
    b->width = e->sw;
    b->height = rows;
    b->use_argb = sharp;
  }
  if (!(e->alpha ? WebPPictureImportRGBA(b, rgba, e->sw * 4) : WebPPictureImportRGBX(b, rgba, e->sw * 4))) return 0;
  return !sharp || WebPPictureSharpARGBToYUVA(b);
}

/*
 * Whether a chunk of `rows` RGBA rows has enough colour edges for the sharp conversion to pay:
 * at least SHARP_EDGES_PER_MILLE of its 2x2 blocks span more than SHARP_EDGE_RANGE in Cb or Cr
 * (B - Y, R - Y; BT.601 luma). Averaging a block's colour is exact for a flat block and wrong
 * where it straddles an edge between colours; the sharp conversion costs about half the
 * encode's time again, so it is spent only on chunks it changes.
 */
#define SHARP_EDGE_RANGE 24
#define SHARP_EDGES_PER_MILLE 25
static int colour_edges(const Rows* e, const uint8_t* rgba, int rows) {
  const size_t stride = (size_t)e->sw * 4;
  long blocks = 0, edges = 0;
  for (int y = 0; y + 1 < rows; y += 2) {
    for (int x = 0; x + 1 < e->sw; x += 2) {
      int cb_min = 1 << 20, cb_max = -(1 << 20), cr_min = 1 << 20, cr_max = -(1 << 20);
      for (int k = 0; k < 4; k++) {
        const uint8_t* p = rgba + (size_t)(y + (k >> 1)) * stride + (size_t)(x + (k & 1)) * 4;
        const int luma = (77 * p[0] + 150 * p[1] + 29 * p[2]) >> 8;
        const int cb = p[2] - luma, cr = p[0] - luma;
        if (cb < cb_min) cb_min = cb;
        if (cb > cb_max) cb_max = cb;
        if (cr < cr_min) cr_min = cr;
        if (cr > cr_max) cr_max = cr;
      }
      blocks++;
      if (cb_max - cb_min > SHARP_EDGE_RANGE || cr_max - cr_min > SHARP_EDGE_RANGE) edges++;
    }
  }
  return blocks > 0 && edges * 1000 >= blocks * SHARP_EDGES_PER_MILLE;
}

/* Sharp YUV: converts every chunk whose context has arrived (all that is left at the end). */
static int sharp_flush(Rows* e) {
  const size_t row = (size_t)e->sw * 4;
  while (e->cy < e->sh) {
    int out_end = e->cy + SHARP_CHUNK < e->sh ? e->cy + SHARP_CHUNK : e->sh;
    int need_end = out_end + SHARP_CONTEXT < e->sh ? out_end + SHARP_CONTEXT : e->sh;
    if (e->wy + e->wn < need_end) return 1;
    const uint8_t* chunk = e->win + (size_t)(e->cy - e->wy) * row;
    if (e->sharp == 2 || colour_edges(e, chunk, out_end - e->cy)) {
      int in_start = e->cy - SHARP_CONTEXT > e->wy ? e->cy - SHARP_CONTEXT : e->wy;
      if (!convert(e, e->win + (size_t)(in_start - e->wy) * row, need_end - in_start, 1)) return 0;
      store_rows(e, &e->band, e->cy - in_start, e->cy, out_end - e->cy);
    } else {
      /* The averaging conversion is per 2x2 block: no context needed. */
      if (!convert(e, chunk, out_end - e->cy, 0)) return 0;
      store_rows(e, &e->band, 0, e->cy, out_end - e->cy);
    }
    e->cy = out_end;
    /* Only the next chunk's context above it stays. */
    int keep = e->cy - SHARP_CONTEXT;
    if (keep > e->wy) {
      memmove(e->win, e->win + (size_t)(keep - e->wy) * row, (size_t)(e->wy + e->wn - keep) * row);
      e->wn -= keep - e->wy;
      e->wy = keep;
    }
  }
  return 1;
}

/* Takes `n` rows from the band buffer (even unless they are the last). 1 on success. */
int rows_enc_write(Rows* e, int n) {
  if (n <= 0 || n > e->max_rows || e->y + n > e->sh || ((n & 1) && e->y + n != e->sh)) return 0;
  if (e->sharp) {
    memcpy(e->win + (size_t)e->wn * e->sw * 4, e->rgba, (size_t)n * e->sw * 4);
    e->wn += n;
    e->y += n;
    return sharp_flush(e);
  }
  if (!convert(e, e->rgba, n, 0)) return 0;
  store_rows(e, &e->band, 0, e->y, n);
  e->y += n;
  return 1;
}

/* Encodes the filled picture; 1 on success. The band's memory is returned first. */
int rows_enc_finish(Rows* e) {
  if (e->y != e->sh || (e->sharp && e->cy != e->sh)) return 0;
  WebPPictureFree(&e->band);
  free(e->rgba);
  free(e->win);
  e->rgba = NULL;
  e->win = NULL;
  WebPMemoryWriterInit(&e->out);
  e->pic.writer = WebPMemoryWrite;
  e->pic.custom_ptr = &e->out;
  return WebPEncode(&e->config, &e->pic);
}

const uint8_t* rows_enc_data(Rows* e) { return e->out.mem; }
size_t rows_enc_size(Rows* e) { return e->out.size; }
int rows_enc_error(Rows* e) { return e->pic.error_code; }

void rows_enc_free(Rows* e) {
  if (!e) return;
  WebPMemoryWriterClear(&e->out);
  WebPPictureFree(&e->pic);
  WebPPictureFree(&e->band);
  free(e->rgba);
  free(e->win);
  free(e);
}
