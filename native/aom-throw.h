/*
 * libaom reports internal errors (a failed allocation, a corrupt stream) by longjmp back to the
 * API call. A standalone module has no emscripten JS runtime for setjmp/longjmp, so setjmp
 * always returns 0 and longjmp throws to JS instead (js_throw, src/codecs/standalone.ts): the
 * exception unwinds every WASM frame and the caller drops the instance, never reusing
 * libaom's state. Included once by each libaom glue, after defining AOM_THROW_MESSAGE.
 */
#include <setjmp.h>

extern void js_throw(const char *message) __attribute__((noreturn));

int setjmp(jmp_buf env) {
  (void)env;
  return 0;
}

void longjmp(jmp_buf env, int value) {
  (void)env;
  (void)value;
  js_throw(AOM_THROW_MESSAGE);
}
