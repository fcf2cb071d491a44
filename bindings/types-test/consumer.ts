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
  encryptV3,
  encryptBytesV3,
  decryptV3,
  decryptBytesV3,
  tokenFormat,
  ENCRYPTED_PREFIX,
  KeysealKey,
  type Context,
  type KeysealError,
  type KeysealErrorCode,
  type TokenFormat,
} from 'keyseal';

const key: Uint8Array = generateKey();
const token: string = encrypt('sk-live-123', key);
const text: string = decrypt(token, key);
const tokenOfBytes: string = encryptBytes(new Uint8Array([1, 2, 3]), key);
const bytes: Uint8Array = decryptBytes(tokenOfBytes, key);
const lookup: string = hash('mhu_abc');
const encrypted: boolean = isEncrypted(token) && token.startsWith(ENCRYPTED_PREFIX);
const pool: Uint8Array = derivePoolKey(key);

const row: Context = ['users', '42', new Uint8Array([0xff])];
const v3: string = encryptV3('sk-live-123', key, 2, row);
const v3Bytes: string = encryptBytesV3(new Uint8Array([1]), key, 2);
const format: TokenFormat = tokenFormat(v3);
const version: number = format.format === 'v3' ? format.keyVersion : 1;
const v3Text: string = decryptV3(v3, key, row);
const v3Back: Uint8Array = decryptBytesV3(v3Bytes, key);
void [version, v3Text, v3Back];

const handle = new KeysealKey(pool);
try {
  const t: string = handle.encrypt(text);
  const back: string = handle.decrypt(t);
  const tb: string = handle.encryptBytes(bytes);
  const bb: Uint8Array = handle.decryptBytes(tb);
  const exported: Uint8Array = handle.exportKey();
  const t3: string = handle.encryptV3(text, 3, ['t']);
  const back3: string = handle.decryptV3(t3, ['t']);
  const bb3: Uint8Array = handle.decryptBytesV3(handle.encryptBytesV3(bytes, 3));
  void [back, bb, exported, back3, bb3];
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
    case 'invalid_argument': return 'a key version is a whole number from 1';
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
// @ts-expect-error a context is an array of parts, not one string
encryptV3('x', key, 1, 'users:42');
// @ts-expect-error keyVersion exists only on v3 formats
const noVersion: number = tokenFormat(token).keyVersion;
// @ts-expect-error ENCRYPTED_PREFIX is a constant
ENCRYPTED_PREFIX = 'v3:';

export { lookup, encrypted, wrong, notACode, noVersion };
