// Wrangler (and the vitest pool, which reuses its module rules) turns a `.wasm?module` import
// into a precompiled WebAssembly.Module: Workers forbid compiling WASM from bytes at run time.
declare module "*.wasm" {
  const module: WebAssembly.Module;
  export default module;
}
