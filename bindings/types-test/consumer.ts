// A TypeScript consumer of the package's shipped types (pkg/index.d.ts), checked with
// `tsc --noEmit --strict` by `make test-www-types`: every export is used with its declared
// type, and misuse must not compile (each @ts-expect-error is a line tsc has to reject).
import {
  encrypt,
  decrypt,
  encryptBytes,
  decryptBytes,
  hash,
  isEncrypted,
  derivePoolKey,
  generateKey,
  ENCRYPTED_PREFIX,
  KeysealKey,
  type KeysealError,
  type KeysealErrorCode,
} from 'keyseal';

const key: Uint8Array = generateKey();
const token: string = encrypt('sk-live-123', key);
const text: string = decrypt(token, key);
const tokenOfBytes: string = encryptBytes(new Uint8Array([1, 2, 3]), key);
const bytes: Uint8Array = decryptBytes(tokenOfBytes, key);
const lookup: string = hash('mhu_abc');
const encrypted: boolean = isEncrypted(token) && token.startsWith(ENCRYPTED_PREFIX);
const pool: Uint8Array = derivePoolKey(key);

const handle = new KeysealKey(pool);
try {
  const t: string = handle.encrypt(text);
  const back: string = handle.decrypt(t);
  const tb: string = handle.encryptBytes(bytes);
  const bb: Uint8Array = handle.decryptBytes(tb);
  const exported: Uint8Array = handle.exportKey();
  void [back, bb, exported];
} finally {
  handle.free();
}
KeysealKey.generate().free();

/** What a caller writes to tell the failures apart; `never` proves the union is covered. */
function describe(code: KeysealErrorCode): string {
  switch (code) {
    case 'malformed': return 'not a token';
    case 'authentication': return 'wrong key or altered token';
    case 'bad_key': return 'a key must be 32 bytes';
    case 'not_utf8': return 'not text: use decryptBytes';
    case 'randomness': return 'no crypto.getRandomValues';
    default: {
      const unreachable: never = code;
      return unreachable;
    }
  }
}

function isKeysealError(e: unknown): e is KeysealError {
  return e instanceof Error && e.name === 'KeysealError';
}

try {
  decrypt(token, generateKey());
} catch (e: unknown) {
  if (!isKeysealError(e)) throw e;
  const name: 'KeysealError' = e.name;
  const message: string = `${describe(e.code)}: ${e.message}`;
  void [name, message];
}

// Misuse the types must refuse.
// @ts-expect-error a key is bytes, not a string
encrypt('x', 'not a key');
// @ts-expect-error plaintext for encrypt is a string (encryptBytes takes bytes)
encrypt(new Uint8Array(1), key);
// @ts-expect-error decrypt returns a string
const wrong: Uint8Array = decrypt(token, key);
// @ts-expect-error not an error code
const notACode: KeysealErrorCode = 'timeout';
// @ts-expect-error ENCRYPTED_PREFIX is a constant
ENCRYPTED_PREFIX = 'v3:';

export { lookup, encrypted, wrong, notACode };
