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
