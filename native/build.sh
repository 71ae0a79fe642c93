#!/usr/bin/env bash
# `npm run build:native`: rebuilds every .wasm under native/ from scratch, from Debian's source
# packages and our own glue (native/<name>/glue.c), with Debian's emscripten. Needs root (apt)
# or the packages already installed. The built .wasm files and each library's licence are
# committed; the libraries' sources never are.
#   native/jpeg/jpeg.wasm   libjpeg-turbo (Debian bookworm 2.1.5): scaled, row-streaming decode;
#                           row-streaming encode
#   native/webp/webp.wasm   libwebp (Debian bookworm 1.2.4): decode straight to a scaled size
#   native/webpanim/webpanim.wasm  libwebp + libwebpmux + libwebpdemux (1.2.4), SIMD: animated
#                           WebP encode (WebPAnimEncoder) and decode (WebPAnimDecoder); still
#                           WebP encoded from rows (a YUV picture filled band by band)
#   native/gif/gif.wasm     giflib (Debian bookworm 5.2.1): frame-by-frame decode from memory
#   native/av1seq/av1seq.wasm  libaom (Debian trixie 3.12.1), encoder only, SIMD: AVIF stills
#                           and grid tiles (all-intra, tune=iq), AV1 image sequences (animated AVIF)
#   native/av1dec/av1dec.wasm  libaom (bookworm 3.6.0), decoder only, SIMD, 8 to 12 bits: animated AVIF
#                           sources frame by frame, YCbCr to RGBA in our glue
#   native/resize/resize.wasm  our own code only, SIMD: the resampler's two inner loops
#   native/ssim2/ssim2.wasm  libjxl (Debian trixie 0.11.2)'s SSIMULACRA 2 (tools/ssimulacra2.cc)
#                           and the few libjxl files it needs, over highway 1.2.0, SIMD: scores an
#                           encoded candidate against its source pixels
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="${CODEC_BUILD_DIR:-$(mktemp -d /tmp/codec-build.XXXXXX)}"
# emcc's JS optimizer needs Debian's node modules when run with the system Node.
export NODE_PATH=/usr/share/nodejs

need_apt=()
command -v emcc >/dev/null || need_apt+=(emscripten)
command -v cmake >/dev/null || need_apt+=(cmake)
command -v dpkg-source >/dev/null || need_apt+=(dpkg-dev)
command -v nasm >/dev/null || need_apt+=(nasm)
if [ ${#need_apt[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
# Source packages need a deb-src line for the mirror the machine already uses.
if ! grep -rqs '^Types:.*deb-src\|^deb-src ' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    sed -i 's/^Types: deb$/Types: deb deb-src/' /etc/apt/sources.list.d/debian.sources
  else
    sed -n 's/^deb /deb-src /p' /etc/apt/sources.list >> /etc/apt/sources.list
  fi
  apt-get update -qq
fi

source_of() { # package -> unpacked source directory under $work
  (cd "$work" && [ -d "$1"-*/ ] 2>/dev/null || apt-get source -qq "$1" >/dev/null 2>&1)
  ls -d "$work/$1"-*/ | head -1
}

build_jpeg() {
  local src; src="$(source_of libjpeg-turbo)"
  mkdir -p "$src/build-wasm"
  (cd "$src/build-wasm" &&
    emcmake cmake .. -DWITH_SIMD=0 -DENABLE_SHARED=0 -DSIZE_T=4 -DWITH_TURBOJPEG=0 -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_FLAGS=-O3 >/dev/null &&
    emmake make -j"$(nproc)" jpeg-static >/dev/null)
  # A standalone module (no emscripten JS glue): src/codecs/standalone.ts provides its few
  # imports. The initial memory is small so a thumbnail's decoder stays small.
  emcc -O3 -msimd128 "$here/jpeg/glue.c" -I"$src" -I"$src/build-wasm" "$src/build-wasm/libjpeg.a" \
    -o "$here/jpeg/jpeg.wasm" --no-entry -sSTANDALONE_WASM -sIMPORTED_MEMORY -sALLOW_MEMORY_GROWTH=1 \
    -sINITIAL_MEMORY=1MB -sTOTAL_STACK=256KB -sMAXIMUM_MEMORY=1GB -sERROR_ON_UNDEFINED_SYMBOLS=0 \
    -sEXPORTED_FUNCTIONS=_malloc,_free,_dec_open,_dec_width,_dec_height,_dec_progressive,_dec_components,_dec_start,_dec_out_height,_dec_cmyk,_dec_read,_dec_close,_enc_start,_enc_write,_enc_finish,_enc_size,_enc_free \
    2> >(grep -v 'undefined symbol: js_throw' >&2)
  cp "$src/LICENSE.md" "$here/jpeg/LICENSE.md"
  cp "$src/README.ijg" "$here/jpeg/README.ijg"
  echo "built native/jpeg/jpeg.wasm ($(stat -c %s "$here/jpeg/jpeg.wasm") bytes) from $(basename "$src")"
}

# libwebp's command-line tools are never built: only its libraries.
WEBP_NO_TOOLS=(-DWEBP_BUILD_ANIM_UTILS=OFF -DWEBP_BUILD_CWEBP=OFF -DWEBP_BUILD_DWEBP=OFF -DWEBP_BUILD_GIF2WEBP=OFF
  -DWEBP_BUILD_IMG2WEBP=OFF -DWEBP_BUILD_VWEBP=OFF -DWEBP_BUILD_WEBPINFO=OFF -DWEBP_BUILD_WEBPMUX=OFF -DWEBP_BUILD_EXTRAS=OFF)

build_webp() {
  local src; src="$(source_of libwebp)"
  mkdir -p "$src/build-wasm"
  (cd "$src/build-wasm" &&
    emcmake cmake .. "${WEBP_NO_TOOLS[@]}" -DWEBP_ENABLE_SIMD=OFF -DWEBP_USE_THREAD=OFF -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_FLAGS=-O3 >/dev/null &&
    emmake make -j"$(nproc)" webpdecoder >/dev/null)
  emcc -O3 "$here/webp/glue.c" -I"$src" "$src/build-wasm/libwebpdecoder.a" \
    -o "$here/webp/webp.wasm" --no-entry -sSTANDALONE_WASM -sIMPORTED_MEMORY -sALLOW_MEMORY_GROWTH=1 \
    -sINITIAL_MEMORY=1MB -sTOTAL_STACK=256KB -sMAXIMUM_MEMORY=1GB -sERROR_ON_UNDEFINED_SYMBOLS=0 \
    -sEXPORTED_FUNCTIONS=_malloc,_free,_dec_open,_dec_width,_dec_height,_dec_has_animation,_dec_decode,_dec_pixels,_dec_stride,_dec_close
  cp "$src/COPYING" "$here/webp/COPYING"
  cp "$src/PATENTS" "$here/webp/PATENTS"
  echo "built native/webp/webp.wasm ($(stat -c %s "$here/webp/webp.wasm") bytes) from $(basename "$src")"
}

build_webpanim() {
  local src; src="$(source_of libwebp)"
  mkdir -p "$src/build-wasm-anim"
  # WASM SIMD (libwebp's SSE2 paths through emscripten's SSE headers): workerd runs it, and an
  # animation is many encodes.
  (cd "$src/build-wasm-anim" &&
    emcmake cmake .. "${WEBP_NO_TOOLS[@]}" -DWEBP_BUILD_LIBWEBPMUX=ON -DWEBP_ENABLE_SIMD=ON -DWEBP_USE_THREAD=OFF -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_C_FLAGS="-O3 -msimd128" >/dev/null &&
    emmake make -j"$(nproc)" webp webpdemux libwebpmux >/dev/null)
  local b="$src/build-wasm-anim"
  emcc -O3 -msimd128 "$here/webpanim/glue.c" -I"$src" "$b/libwebpmux.a" "$b/libwebpdemux.a" "$b/libwebp.a" \
    -o "$here/webpanim/webpanim.wasm" --no-entry -sSTANDALONE_WASM -sIMPORTED_MEMORY -sALLOW_MEMORY_GROWTH=1 \
    -sINITIAL_MEMORY=1MB -sTOTAL_STACK=256KB -sMAXIMUM_MEMORY=1GB -sERROR_ON_UNDEFINED_SYMBOLS=0 \
    -sEXPORTED_FUNCTIONS=_malloc,_free,_anim_enc_new,_anim_enc_canvas,_anim_enc_add,_anim_enc_finish,_anim_enc_data,_anim_enc_size,_anim_enc_error,_anim_enc_free,_anim_dec_new,_anim_dec_width,_anim_dec_height,_anim_dec_loop,_anim_dec_frames,_anim_dec_next,_anim_dec_pixels,_anim_dec_timestamp,_anim_dec_free,_rows_enc_new,_rows_enc_band,_rows_enc_write,_rows_enc_finish,_rows_enc_data,_rows_enc_size,_rows_enc_error,_rows_enc_free
  cp "$src/COPYING" "$here/webpanim/COPYING"
  cp "$src/PATENTS" "$here/webpanim/PATENTS"
  echo "built native/webpanim/webpanim.wasm ($(stat -c %s "$here/webpanim/webpanim.wasm") bytes) from $(basename "$src")"
}

build_gif() {
  local src; src="$(source_of giflib)"
  # giflib's decoder is five C files; no configure step is needed.
  emcc -O3 "$here/gif/glue.c" -I"$src" "$src/dgif_lib.c" "$src/gif_err.c" "$src/gifalloc.c" "$src/gif_hash.c" "$src/openbsd-reallocarray.c" \
    -o "$here/gif/gif.wasm" --no-entry -sSTANDALONE_WASM -sIMPORTED_MEMORY -sALLOW_MEMORY_GROWTH=1 \
    -sINITIAL_MEMORY=1MB -sTOTAL_STACK=256KB -sMAXIMUM_MEMORY=1GB -sERROR_ON_UNDEFINED_SYMBOLS=0 \
    -sEXPORTED_FUNCTIONS=_malloc,_free,_gif_open,_gif_width,_gif_height,_gif_background,_gif_loop,_gif_error,_gif_next,_gif_frame_left,_gif_frame_top,_gif_frame_width,_gif_frame_height,_gif_frame_indices,_gif_frame_palette,_gif_frame_disposal,_gif_frame_transparent,_gif_frame_delay,_gif_frame_row_ok,_gif_close \
    2> >(grep -v 'undefined symbol: js_read' >&2)
  cp "$src/COPYING" "$here/gif/COPYING"
  echo "built native/gif/gif.wasm ($(stat -c %s "$here/gif/gif.wasm") bytes) from $(basename "$src")"
}

aom_source() {
  # Debian's security update of aom (3.6.0-1+deb12u3) is listed but not on the mirror here;
  # deb12u2 carries the same upstream tarball.
  (cd "$work" && { ls -d aom-3.6*/ >/dev/null 2>&1 || apt-get source -qq aom >/dev/null 2>&1 || apt-get source -qq aom=3.6.0-1+deb12u2 >/dev/null 2>&1; } && ls -d "$work"/aom-3.6*/ | head -1)
}

# Source packages from Debian trixie: a deb-src entry for it, added once.
trixie_deb_src() {
  if ! grep -rqs '^Suites:.*trixie\|^deb-src .* trixie ' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    printf 'Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: trixie\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' > /etc/apt/sources.list.d/trixie-src.sources
    apt-get update -qq
  fi
}

aom_trixie_source() {
  # Debian trixie's aom 3.12.1 (all-intra tune=iq for stills). Its .dsc is not on the mirror,
  # the upstream .orig tarball is: downloaded and unpacked as is (no Debian patch touches
  # what is built here).
  trixie_deb_src
  (cd "$work" && { ls -d aom-3.12*/ >/dev/null 2>&1 || { apt-get source --download-only -qq aom/trixie >/dev/null 2>&1 || true; tar xzf aom_3.12*.orig.tar.gz; }; } && ls -d "$work"/aom-3.12*/ | head -1)
}

# One libaom module: `aom_module NAME BUILD_DIR SIMD EXPORTS CMAKE_FLAGS...` builds libaom in
# BUILD_DIR with the flags every build shares (single-threaded, static dispatch) plus
# CMAKE_FLAGS, and links native/NAME/glue.c into native/NAME/NAME.wasm. SIMD=0: libaom's
# portable C only. SIMD=1: libaom's x86 SSE2-SSE4.1 intrinsics, which emscripten's SSE headers
# map to WASM SIMD (AVX2 and SSE4.2's CRC32 have no WASM mapping in emscripten 3.1.6). Its x86
# assembly (nasm) cannot become WASM: each .asm is assembled for real only to list the
# functions it defines (nm), native/aom-simd/noasm stands in for nasm in the build, and
# native/aom-simd/rtcd-noasm.mjs points libaom's dispatch headers from those functions to their
# C or intrinsics versions. One line of libaom is changed in the unpacked source: its x87
# precision control (inline x86 assembly) is left out under emscripten, where there is no x87.
# libaom's internal errors longjmp back to the API call; without emscripten's JS glue there is
# no longjmp (SUPPORT_LONGJMP=0), so the glue's longjmp throws to JS (native/aom-throw.h).
aom_module() {
  local name="$1" dir="$2" simd="$3" exports="$4"; shift 4
  local src; src="${AOM_SRC:-$(aom_source)}"
  local cflags="-O3 -sSUPPORT_LONGJMP=0" target=(-DAOM_TARGET_CPU=generic)
  mkdir -p "$src/$dir" "$here/$name"
  if [ "$simd" = 1 ]; then
    cflags="$cflags -msimd128"
    target=(-DAOM_TARGET_CPU=x86 -DAS_EXECUTABLE="$here/aom-simd/noasm" -DCMAKE_ASM_NASM_COMPILER="$here/aom-simd/noasm" -DPERL_EXECUTABLE="$here/aom-simd/rtcd-perl" -DENABLE_SSE4_2=0)
    sed -i 's/^#if \(AOM_\)\?ARCH_X86 || \(AOM_\)\?ARCH_X86_64$/#if (\1ARCH_X86 || \2ARCH_X86_64) \&\& !defined(__EMSCRIPTEN__)/' "$src/aom/src/aom_encoder.c"
  fi
  (cd "$src/$dir" &&
    emcmake cmake .. "${target[@]}" -DCONFIG_MULTITHREAD=0 -DCONFIG_RUNTIME_CPU_DETECT=0 \
      "$@" -DCONFIG_WEBM_IO=0 -DCONFIG_LIBYUV=0 \
      -DENABLE_DOCS=0 -DENABLE_EXAMPLES=0 -DENABLE_TESTS=0 -DENABLE_TESTDATA=0 -DENABLE_TOOLS=0 \
      -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_FLAGS="$cflags" -DCMAKE_CXX_FLAGS="$cflags" >/dev/null)
  if [ "$simd" = 1 ]; then
    # Every function libaom's x86 assembly defines, as 32-bit ELF objects name them.
    export AOM_ASM_SYMBOLS="$src/$dir/asm-symbols.txt"
    local obj; obj="$(mktemp)"
    (cd "$src" && find aom_dsp av1 aom_ports aom_scale -name '*.asm' | sort | while read -r f; do
      nasm -f elf32 -I./ -I"$dir"/ -o "$obj" "$f" 2>/dev/null && nm -g --defined-only "$obj" | awk '{print $3}'
    done) | sort -u > "$AOM_ASM_SYMBOLS"
    rm -f "$obj"
    [ -s "$AOM_ASM_SYMBOLS" ] || { echo "no assembly symbols listed for $name" >&2; exit 1; }
    # Generated again by make, through the filter (native/aom-simd/rtcd-perl).
    rm -f "$src/$dir"/config/*_rtcd.h
  fi
  (cd "$src/$dir" && emmake make -j"$(nproc)" aom >/dev/null)
  emcc $cflags "$here/$name/glue.c" -I"$here" -I"$src" -I"$src/$dir" "$src/$dir/libaom.a" \
    -o "$here/$name/$name.wasm" --no-entry -sSTANDALONE_WASM -sIMPORTED_MEMORY -sALLOW_MEMORY_GROWTH=1 \
    -sINITIAL_MEMORY=2MB -sTOTAL_STACK=256KB -sMAXIMUM_MEMORY=1GB -sERROR_ON_UNDEFINED_SYMBOLS=0 \
    -sEXPORTED_FUNCTIONS="$exports" \
    2> >(grep -v 'undefined symbol: js_throw' >&2)
  # An unresolved libaom symbol would be a WASM import no one provides: refuse the build.
  node -e '
    const m = new WebAssembly.Module(require("fs").readFileSync(process.argv[1]));
    const known = new Set(["env.memory", "env.js_throw", "env.emscripten_notify_memory_growth", "env.setTempRet0"]);
    const bad = WebAssembly.Module.imports(m).map((i) => i.module + "." + i.name).filter((n) => !known.has(n) && !n.startsWith("wasi_snapshot_preview1."));
    if (bad.length) { console.error("unresolved in " + process.argv[1] + ": " + bad.join(" ")); process.exit(1); }' "$here/$name/$name.wasm"
  cp "$src/LICENSE" "$here/$name/LICENSE"
  cp "$src/PATENTS" "$here/$name/PATENTS"
  echo "built native/$name/$name.wasm ($(stat -c %s "$here/$name/$name.wasm") bytes) from $(basename "$src")"
}

build_av1seq() {
  # Encoder only, 8-bit only, SIMD: stills (all-intra) and image sequences; trixie's 3.12.1.
  AOM_SRC="$(aom_trixie_source)" aom_module av1seq build-wasm-simd 1 _malloc,_free,_seq_new,_seq_canvas,_seq_add,_seq_data,_seq_size,_seq_key,_seq_translucent,_seq_header,_seq_free \
    -DCONFIG_AV1_DECODER=0 -DCONFIG_AV1_HIGHBITDEPTH=0
}

build_av1dec() {
  # Decoder only; high bit depth on (10- and 12-bit sequences), 8-bit streams still decoded in
  # 8-bit buffers (the glue's allow_lowbitdepth).
  aom_module av1dec build-wasm-dec-simd 1 _malloc,_free,_dec_new,_dec_buffer,_dec_decode,_dec_width,_dec_height,_dec_rgba,_dec_free \
    -DCONFIG_AV1_ENCODER=0 -DCONFIG_AV1_DECODER=1 -DCONFIG_AV1_HIGHBITDEPTH=1
}

build_resize() {
  # No library: the resampler's inner loops, one f32x4 per RGBA pixel.
  emcc -O3 -msimd128 "$here/resize/glue.c" \
    -o "$here/resize/resize.wasm" --no-entry -sSTANDALONE_WASM -sIMPORTED_MEMORY -sALLOW_MEMORY_GROWTH=1 \
    -sINITIAL_MEMORY=256KB -sTOTAL_STACK=64KB -sMAXIMUM_MEMORY=1GB \
    -sEXPORTED_FUNCTIONS=_malloc,_free,_resize_hfilter,_resize_vfilter
  echo "built native/resize/resize.wasm ($(stat -c %s "$here/resize/resize.wasm") bytes)"
}

# Debian trixie's libjxl 0.11.2 and highway 1.2.0 (bookworm's libjxl 0.7 predates SSIMULACRA 2,
# its highway 1.0.3 is too old for libjxl 0.11): upstream .orig tarballs, unpacked as is. The
# .dsc and .debian.tar.xz of jpeg-xl are not on the mirror (apt-get fails after downloading the
# .orig), so no Debian patch is applied; libjxl's ssimulacra2 tool the scores are checked against
# is built from the same .orig. Debian's highway patches concern x86-32, RISC-V and big-endian
# targets only. Prints the two source directories.
jxl_trixie_sources() {
  trixie_deb_src
  (cd "$work" && {
    ls -d libjxl-0.11*/ >/dev/null 2>&1 || { apt-get source --download-only -qq jpeg-xl/trixie >/dev/null 2>&1 || true; tar xzf jpeg-xl_0.11*.orig.tar.gz; }
    ls -d highway-1.2*/ >/dev/null 2>&1 || { apt-get source --download-only -qq highway/trixie >/dev/null 2>&1 || true; tar xzf highway_1.2*.orig.tar.gz; }
  } && ls -d "$work"/libjxl-0.11*/ | head -1 && ls -d "$work"/highway-1.2*/ | head -1)
}

# Every import a module may have: src/codecs/standalone.ts provides these and nothing else.
check_imports() {
  node -e '
    const m = new WebAssembly.Module(require("fs").readFileSync(process.argv[1]));
    const known = new Set(["env.memory", "env.js_throw", "env.emscripten_notify_memory_growth", "env.setTempRet0",
      ...["proc_exit", "environ_sizes_get", "environ_get", "fd_close", "fd_read", "fd_seek", "fd_write"].map((n) => "wasi_snapshot_preview1." + n)]);
    const bad = WebAssembly.Module.imports(m).map((i) => i.module + "." + i.name).filter((n) => !known.has(n));
    if (bad.length) { console.error("unresolved in " + process.argv[1] + ": " + bad.join(" ")); process.exit(1); }' "$1"
}

build_ssim2() {
  # SSIMULACRA 2 exactly as libjxl's `ssimulacra2` tool computes it (native/ssim2/glue.cc), from
  # the tool's own tools/ssimulacra2.cc and tools/gauss_blur.cc, unchanged, and only the libjxl
  # files they link: ImageBundle and its metadata (image_bundle, image_metadata, headers,
  # frame_header, fields; jpeg/jpeg_data for ImageBundle::Copy), ColorEncoding
  # (color_encoding_internal), TransformTo (enc_image_bundle), XYB (enc_xyb) and planes (image,
  # simd_util, memory_manager_internal). No CMake, no libjxl codec, no ICC engine (lcms2,
  # skcms): the glue converts sRGB to linear itself and stands in for the CMS (see glue.cc).
  # Highway: its WASM SIMD target only (HWY_COMPILE_ONLY_STATIC), plus targets.cc and abort.cc
  # for its dispatch tables. WASM SIMD has no fused multiply-add, so the recursive Gaussian and
  # the opsin step round twice where the tool's x86 AVX2 build rounds once: scores differ from
  # the tool's by up to 0.32 (77.13 for 77.45 on a 1200x800 photo against its JPEG at q75;
  # an x86 SSE2 build of the tool gives the same as ours). Emulating the fused operation in f64
  # matched the tool to 8 decimals at twice the time; per-image quality compares scores of this
  # build with each other, so it runs without. libjxl's export headers are generated by its
  # CMake; their trivial static-library versions are written here instead.
  # static-library versions are written here instead.
  local srcs jxl hwy; srcs="$(jxl_trixie_sources)"
  jxl="$(echo "$srcs" | sed -n 1p)"; jxl="${jxl%/}"
  hwy="$(echo "$srcs" | sed -n 2p)"; hwy="${hwy%/}"
  local gen="$work/ssim2-include"
  mkdir -p "$gen/jxl"
  for name in jxl jxl_cms; do
    local up; up="$(echo "$name" | tr a-z A-Z)"
    printf '#ifndef %s_EXPORT_H\n#define %s_EXPORT_H\n#define %s_EXPORT\n#define %s_NO_EXPORT\n#define %s_DEPRECATED __attribute__((__deprecated__))\n#endif\n' \
      "$up" "$up" "$up" "$up" "$up" > "$gen/jxl/${name}_export.h"
  done
  local files=(tools/ssimulacra2.cc tools/gauss_blur.cc tools/no_memory_manager.cc
    lib/jxl/image.cc lib/jxl/image_bundle.cc lib/jxl/enc_image_bundle.cc lib/jxl/enc_xyb.cc
    lib/jxl/color_encoding_internal.cc lib/jxl/image_metadata.cc lib/jxl/headers.cc lib/jxl/frame_header.cc
    lib/jxl/fields.cc lib/jxl/jpeg/jpeg_data.cc lib/jxl/simd_util.cc lib/jxl/memory_manager_internal.cc)
  emcc -std=c++17 -O3 -msimd128 -DNDEBUG -fno-exceptions -fno-rtti -DHWY_COMPILE_ONLY_STATIC=1 \
    -I"$jxl" -I"$jxl/lib/include" -I"$gen" -I"$hwy" \
    "$here/ssim2/glue.cc" "${files[@]/#/$jxl/}" "$hwy/hwy/targets.cc" "$hwy/hwy/abort.cc" \
    -o "$here/ssim2/ssim2.wasm" --no-entry -sSTANDALONE_WASM -sIMPORTED_MEMORY -sALLOW_MEMORY_GROWTH=1 \
    -sINITIAL_MEMORY=2MB -sTOTAL_STACK=256KB -sMAXIMUM_MEMORY=1GB -sERROR_ON_UNDEFINED_SYMBOLS=0 \
    -sEXPORTED_FUNCTIONS=_malloc,_free,_ssim2_score \
    2> >(grep -v 'undefined symbol: js_throw' >&2)
  # A libjxl symbol left out of the list above would be an import no one provides: refuse it.
  check_imports "$here/ssim2/ssim2.wasm"
  cp "$jxl/LICENSE" "$here/ssim2/LICENSE"
  cp "$jxl/PATENTS" "$here/ssim2/PATENTS"
  # Highway is dual-licensed, Apache 2.0 (LICENSE) or BSD-3 (LICENSE-BSD3).
  cp "$hwy/LICENSE" "$here/ssim2/LICENSE.highway"
  cp "$hwy/LICENSE-BSD3" "$here/ssim2/LICENSE-BSD3.highway"
  echo "built native/ssim2/ssim2.wasm ($(stat -c %s "$here/ssim2/ssim2.wasm") bytes) from $(basename "$jxl") and $(basename "$hwy")"
}

for codec in ${CODECS:-jpeg webp webpanim gif av1seq av1dec resize ssim2}; do "build_$codec"; done
