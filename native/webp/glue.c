/*
 * Our glue over libwebp's decoder (src/webp/decode.h): a WebP still decoded straight to the
 * size the pipeline asks for, with libwebp's own rescaler working row by row inside the decoder
 * (WebPDecoderConfig.options.use_scaling), so a 24 MP WebP asked at 1200w never exists in
 * memory at full size: only the scaled RGBA does. Nothing here knows about HTTP or files.
 */
#include <stdint.h>
#include <stdlib.h>
#include "src/webp/decode.h"

typedef struct {
  WebPDecoderConfig config;
  int decoded;
} Dec;

/* Reads the features (size, alpha, animation); NULL when the bitstream header is invalid. */
Dec* dec_open(const uint8_t* data, size_t len) {
  Dec* d = (Dec*)calloc(1, sizeof(Dec));
  if (!d) return NULL;
  if (!WebPInitDecoderConfig(&d->config) || WebPGetFeatures(data, len, &d->config.input) != VP8_STATUS_OK) {
    free(d);
    return NULL;
  }
  return d;
}

int dec_width(Dec* d) { return d->config.input.width; }
int dec_height(Dec* d) { return d->config.input.height; }
int dec_has_animation(Dec* d) { return d->config.input.has_animation; }

/*
 * Decodes to `out_w` x `out_h` RGBA (not premultiplied; libwebp premultiplies around its
 * rescaler itself). Returns libwebp's VP8StatusCode: 0 is success, 7 a truncated file.
 */
int dec_decode(Dec* d, const uint8_t* data, size_t len, int out_w, int out_h) {
  WebPDecoderConfig* c = &d->config;
  c->output.colorspace = MODE_RGBA;
  if (out_w != c->input.width || out_h != c->input.height) {
    c->options.use_scaling = 1;
    c->options.scaled_width = out_w;
    c->options.scaled_height = out_h;
  }
  int status = WebPDecode(data, len, c);
  d->decoded = status == VP8_STATUS_OK;
  return status;
}

uint8_t* dec_pixels(Dec* d) { return d->decoded ? d->config.output.u.RGBA.rgba : NULL; }
int dec_stride(Dec* d) { return d->decoded ? d->config.output.u.RGBA.stride : 0; }

void dec_close(Dec* d) {
  if (!d) return;
  WebPFreeDecBuffer(&d->config.output);
  free(d);
}
