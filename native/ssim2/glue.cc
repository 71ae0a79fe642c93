/*
 * SSIMULACRA 2 (libjxl 0.11.2's tools/ssimulacra2.cc, compiled unchanged) over two 8-bit sRGB
 * RGBA images of the same size, so the worker can score an encoded candidate against its source
 * pixels. The score is the one libjxl's `ssimulacra2 original.png distorted.png` prints for an
 * opaque sRGB PNG pair (the tool's higher-is-better scale, 100 = identical).
 *
 * Colour: the tool decodes each PNG to floats in [0, 1] tagged sRGB, and ComputeSSIMULACRA2
 * converts both to linear sRGB through libjxl's colour management (JxlGetDefaultCms, over lcms2
 * or skcms) before its XYB conversion. For sRGB to linear sRGB that CMS only applies libjxl's
 * sRGB decoding curve (jxl_cms.cc: same primaries, so lcms itself is skipped). Here the glue
 * does that step itself, with the same curve (TF_SRGB) on the same values, once per 8-bit level
 * into a table, and hands ssimulacra2 images already in linear sRGB. Its TransformTo calls are
 * then from linear sRGB to linear sRGB, which the stand-in CMS below serves as a copy; no ICC
 * engine is linked. Any other conversion asked of it fails (js_throw), never silently.
 *
 * Numerics: WASM SIMD has no fused multiply-add, which the tool's x86 AVX2 build uses, so
 * scores differ from the tool's by up to about 0.3 (see native/build.sh build_ssim2).
 *
 * Alpha is ignored: the pixels are taken as opaque, as the tool does for a PNG without alpha.
 *
 * Memory: ComputeSSIMULACRA2 holds about a dozen full-size float RGB images at once (the inputs,
 * their copies, XYB, products, five blurred maps): about 155 bytes per pixel, so a 1200x800 pair
 * grows the memory to 145 MiB (768x512: 61 MiB).
 *
 * Errors (a size under 8x8, a failed allocation inside libjxl): the imported js_throw, which
 * throws a JS exception through the WASM frames (src/codecs/standalone.ts); the caller drops
 * the instance. libjxl is built without exceptions; its Status results are checked here.
 */
#include <jxl/cms.h>
#include <jxl/cms_interface.h>
#include <jxl/memory_manager.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <utility>

#include <hwy/highway.h>

#include "lib/jxl/cms/transfer_functions-inl.h"
#include "lib/jxl/color_encoding_internal.h"
#include "lib/jxl/image.h"
#include "lib/jxl/image_bundle.h"
#include "lib/jxl/image_metadata.h"
#include "tools/no_memory_manager.h"
#include "tools/ssimulacra2.h"

extern "C" void js_throw(const char *message) __attribute__((noreturn));

namespace {

// ---- The stand-in CMS: linear sRGB to linear sRGB only (a copy). ----

struct IdentityTransform {
  size_t channels;  // 1 (grey) or 3
  float *src;
  float *dst;
};

bool SameEncoding(const JxlColorEncoding &a, const JxlColorEncoding &b) {
  return a.color_space == b.color_space && a.white_point == b.white_point &&
         a.primaries == b.primaries && a.transfer_function == b.transfer_function;
}

void *IdentityInit(void * /*init_data*/, size_t num_threads, size_t pixels_per_thread,
                   const JxlColorProfile *in, const JxlColorProfile *out,
                   float /*intensity_target*/) {
  // Only ever asked for linear sRGB to itself (see above); anything else would need a real CMS.
  if (num_threads != 1 || in->num_channels != out->num_channels ||
      !SameEncoding(in->color_encoding, out->color_encoding)) {
    js_throw("ssim2: a colour conversion other than linear sRGB to itself was asked for");
  }
  IdentityTransform *t = static_cast<IdentityTransform *>(malloc(sizeof(IdentityTransform)));
  size_t floats = pixels_per_thread * in->num_channels;
  t->channels = in->num_channels;
  t->src = static_cast<float *>(malloc(floats * sizeof(float)));
  t->dst = static_cast<float *>(malloc(floats * sizeof(float)));
  if (!t->src || !t->dst) js_throw("ssim2: out of memory");
  return t;
}

float *IdentitySrc(void *data, size_t /*thread*/) { return static_cast<IdentityTransform *>(data)->src; }
float *IdentityDst(void *data, size_t /*thread*/) { return static_cast<IdentityTransform *>(data)->dst; }

JXL_BOOL IdentityRun(void *data, size_t /*thread*/, const float *in, float *out, size_t num_pixels) {
  const IdentityTransform *t = static_cast<IdentityTransform *>(data);
  if (in != out) memmove(out, in, num_pixels * t->channels * sizeof(float));
  return JXL_TRUE;
}

void IdentityDestroy(void *data) {
  IdentityTransform *t = static_cast<IdentityTransform *>(data);
  free(t->src);
  free(t->dst);
  free(t);
}

JXL_BOOL NoFieldsFromIcc(void * /*user_data*/, const uint8_t * /*icc*/, size_t /*size*/,
                         JxlColorEncoding * /*c*/, JXL_BOOL * /*cmyk*/) {
  return JXL_FALSE;
}

const JxlCmsInterface kIdentityCms = {nullptr, NoFieldsFromIcc, nullptr, IdentityInit,
                                      IdentitySrc, IdentityDst, IdentityRun, IdentityDestroy};

// ---- 8-bit sRGB to linear sRGB ----

HWY_ALIGN float linear_of[256];

// linear_of[v]: what the tool gets for an 8-bit sample v: v * (1/255) as libjxl reads a PNG
// (enc_external_image.cc), then the sRGB decoding of its CMS (jxl_cms.cc BeforeTransform:
// TF_SRGB().DisplayFromEncoded, a rational polynomial close to the IEC 61966-2-1 curve).
void InitLinearTable() {
  if (linear_of[255] != 0.0f) return;
  namespace hn = hwy::HWY_NAMESPACE;
  const hn::ScalableTag<float> d;
  HWY_ALIGN float encoded[256];
  for (int v = 0; v < 256; v++) encoded[v] = v * (1.0f / 255);
  for (size_t i = 0; i < 256; i += hn::Lanes(d)) {
    hn::Store(jxl::HWY_NAMESPACE::TF_SRGB().DisplayFromEncoded(hn::Load(d, encoded + i)), d, linear_of + i);
  }
}

// Three linear-sRGB float planes from RGBA bytes.
jxl::Image3F LinearPlanes(const uint8_t *rgba, size_t width, size_t height) {
  auto image = jxl::Image3F::Create(jpegxl::tools::NoMemoryManager(), width, height);
  if (!image.ok()) js_throw("ssim2: out of memory");
  jxl::Image3F planes = std::move(image).value_();
  for (size_t y = 0; y < height; y++) {
    const uint8_t *p = rgba + y * width * 4;
    float *r = planes.PlaneRow(0, y);
    float *g = planes.PlaneRow(1, y);
    float *b = planes.PlaneRow(2, y);
    for (size_t x = 0; x < width; x++, p += 4) {
      r[x] = linear_of[p[0]];
      g[x] = linear_of[p[1]];
      b[x] = linear_of[p[2]];
    }
  }
  return planes;
}

}  // namespace

// libjxl's default CMS, as ssimulacra2.cc asks for it: the stand-in above (jxl_cms.cc, and the
// lcms2 or skcms it needs, are not built).
extern "C" const JxlCmsInterface *JxlGetDefaultCms() { return &kIdentityCms; }

extern "C" {

// The SSIMULACRA 2 score of `dist_rgba` against `ref_rgba` (8-bit sRGB RGBA, width x height
// each, rows packed).
double ssim2_score(const uint8_t *ref_rgba, const uint8_t *dist_rgba, int width, int height) {
  if (!ref_rgba || !dist_rgba) js_throw("ssim2: missing pixels");
  if (width < 8 || height < 8) js_throw("ssim2: the minimum image size is 8x8 pixels");
  InitLinearTable();
  JxlMemoryManager *memory_manager = jpegxl::tools::NoMemoryManager();
  jxl::ImageMetadata metadata;
  metadata.SetUintSamples(8);
  metadata.color_encoding = jxl::ColorEncoding::LinearSRGB(false);
  jxl::ImageBundle ref(memory_manager, &metadata);
  jxl::ImageBundle dist(memory_manager, &metadata);
  if (!ref.SetFromImage(LinearPlanes(ref_rgba, width, height), jxl::ColorEncoding::LinearSRGB(false)) ||
      !dist.SetFromImage(LinearPlanes(dist_rgba, width, height), jxl::ColorEncoding::LinearSRGB(false))) {
    js_throw("ssim2: could not set up the images");
  }
  auto result = ComputeSSIMULACRA2(ref, dist);
  // libjxl's Status carries no message; a failed allocation is the only failure expected here.
  if (!result.ok()) js_throw("ssim2: SSIMULACRA 2 failed (out of memory?)");
  return std::move(result).value_().Score();
}

}  // extern "C"
