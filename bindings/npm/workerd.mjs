// Entry for Cloudflare Workers (workerd): the runtime compiles imported .wasm files itself
// and forbids compiling wasm from bytes at run time.
import module from './keyseal_bg.wasm';
import { initSync, encryptedPrefix } from './keyseal_web.js';

initSync({ module });

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
export const ENCRYPTED_PREFIX = encryptedPrefix();
