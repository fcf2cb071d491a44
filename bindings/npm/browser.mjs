// ES module entry for browsers, bundlers, Deno and other web-like runtimes: fetches and
// instantiates keyseal_bg.wasm once, at import (top-level await), so every function is
// synchronous afterwards.
import init, * as wasm from './keyseal_web.js';

await init({ module_or_path: new URL('./keyseal_bg.wasm', import.meta.url) });

export {
  encrypt,
  decrypt,
  encryptBytes,
  decryptBytes,
  hash,
  isEncrypted,
  derivePoolKey,
  generateKey,
  KeysealKey,
} from './keyseal_web.js';
export const ENCRYPTED_PREFIX = wasm.encryptedPrefix();
