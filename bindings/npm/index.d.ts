/**
 * keyseal: AES-256-GCM secret tokens, byte-for-byte compatible with the keyseal Rust crate
 * and the Python module it replaces. Runs as WebAssembly in Node 20+, browsers and edge workers.
 *
 * A `v2:` token (the default, the format the Python module reads) is
 * `"v2:" + base64url_padded(nonce[12] || ciphertext || tag[16])`, with a fresh random nonce
 * (from `crypto.getRandomValues`) for every call. A `v3:` token ({@link encryptV3}) adds an
 * authenticated header naming the key version, and can be bound to a {@link Context}:
 * `"v3:" + base64url_padded(0x03 || version[4, big-endian] || nonce[12] || ciphertext || tag[16])`.
 *
 * Every failure throws a {@link KeysealError}: a JS `Error` whose `name` is `"KeysealError"`
 * and whose `code` is one of {@link KeysealErrorCode}. No input makes the module trap.
 *
 * @packageDocumentation
 */

/**
 * The stable `code` of a {@link KeysealError}:
 * - `"malformed"`: the input is not of the expected shape: not a token (bad base64, fewer than
 *   28 bytes), not a string or `Uint8Array`, a string with a lone surrogate (which has no
 *   UTF-8 form), or an input too large for WebAssembly memory or for a JS string;
 * - `"authentication"`: the token does not open with this key: a different key, or the token
 *   was altered or truncated (the two cannot be told apart, by design);
 * - `"bad_key"`: a key is not a `Uint8Array` of exactly 32 bytes;
 * - `"not_utf8"`: `decrypt` found bytes that are not UTF-8 text (use `decryptBytes`);
 * - `"randomness"`: `crypto.getRandomValues` is unavailable or failed;
 * - `"invalid_argument"`: a key version that is not a whole number from 1 to 4294967295.
 *
 * For `v3:` tokens, `"malformed"` also covers a missing `v3:` prefix, text that is not canonical
 * padded base64url, a header with another format byte or key version 0, and a context that is
 * not an array of strings and `Uint8Array`s; a wrong key version, another context or an edited
 * header is `"authentication"`.
 */
export type KeysealErrorCode =
  | "malformed"
  | "authentication"
  | "bad_key"
  | "not_utf8"
  | "randomness"
  | "invalid_argument";

/** What every keyseal function throws on failure (a plain `Error` with these fields). */
export interface KeysealError extends Error {
  /** Always `"KeysealError"`. */
  name: "KeysealError";
  /** Which kind of failure; stable across versions. */
  code: KeysealErrorCode;
}

/** The prefix of every token: `"v2:"`. */
export const ENCRYPTED_PREFIX: string;

/**
 * Encrypts text into a `v2:` token (AES-256-GCM, fresh random nonce).
 * @param plaintext - any string without lone surrogates (UTF-8 encoded before encryption)
 * @param key - a 32-byte key, e.g. from {@link generateKey} or {@link derivePoolKey}
 * @returns the token, `"v2:..."`
 * @throws {KeysealError} `bad_key`, `malformed` or `randomness`
 */
export function encrypt(plaintext: string, key: Uint8Array): string;

/**
 * Decrypts a token (with or without the `v2:` prefix) into text. Reads tokens made by this
 * package, the Rust crate and the Python module.
 * @param token - a token from {@link encrypt}
 * @param key - the 32-byte key it was made with
 * @returns the text
 * @throws {KeysealError} `bad_key`, `malformed`, `authentication` or `not_utf8`
 */
export function decrypt(token: string, key: Uint8Array): string;

/**
 * Encrypts bytes into a `v2:` token.
 * @param plaintext - any bytes (copied; the array is not changed)
 * @param key - a 32-byte key
 * @returns the token
 * @throws {KeysealError} `bad_key`, `malformed` or `randomness`
 */
export function encryptBytes(plaintext: Uint8Array, key: Uint8Array): string;

/**
 * Decrypts a token into bytes.
 * @param token - a token from {@link encrypt} or {@link encryptBytes}
 * @param key - the 32-byte key it was made with
 * @returns a new `Uint8Array` with the plaintext
 * @throws {KeysealError} `bad_key`, `malformed` or `authentication`
 */
export function decryptBytes(token: string, key: Uint8Array): Uint8Array;

/**
 * What a `v3:` token is bound to: parts such as a table, a row id and a column, each a string
 * (its UTF-8 bytes) or bytes; at most 65 536 parts. The same parts must be given again to
 * decrypt. Parts are length-prefixed, so `["a:b", "c"]` and `["a", "b:c"]` differ, and no
 * context (`undefined` or `[]`) differs from `[""]`.
 */
export type Context = ReadonlyArray<string | Uint8Array>;

/** The format of a token, from {@link tokenFormat}. */
export type TokenFormat =
  | { readonly format: "v2" }
  | { readonly format: "v3"; readonly keyVersion: number };

/**
 * Encrypts text into a `v3:` token under version `version` of a key, bound to `context`.
 * Opt-in: the Python module reads only `v2:` tokens.
 * @param plaintext - any string without lone surrogates (UTF-8 encoded before encryption)
 * @param key - version `version` of the 32-byte data key
 * @param version - the key version written in the token's header, 1 to 4294967295
 * @param context - what the token is bound to, e.g. `["users", "42", "api_token"]`
 * @returns the token, `"v3:..."`
 * @throws {KeysealError} `bad_key`, `invalid_argument`, `malformed` or `randomness`
 */
export function encryptV3(
  plaintext: string,
  key: Uint8Array,
  version: number,
  context?: Context,
): string;

/**
 * Encrypts bytes into a `v3:` token; see {@link encryptV3}.
 * @throws {KeysealError} `bad_key`, `invalid_argument`, `malformed` or `randomness`
 */
export function encryptBytesV3(
  plaintext: Uint8Array,
  key: Uint8Array,
  version: number,
  context?: Context,
): string;

/**
 * Decrypts a `v3:` token into text. Read the key version first with {@link tokenFormat} and
 * pass that version's key: no other key is tried.
 * @param token - a `v3:` token
 * @param key - the key of the version the token names
 * @param context - the context it was made with (none if omitted)
 * @returns the text
 * @throws {KeysealError} `bad_key`, `malformed`, `authentication` (wrong key or version, other
 *   context, altered token) or `not_utf8`
 */
export function decryptV3(token: string, key: Uint8Array, context?: Context): string;

/**
 * Decrypts a `v3:` token into bytes; see {@link decryptV3}.
 * @throws {KeysealError} `bad_key`, `malformed` or `authentication`
 */
export function decryptBytesV3(token: string, key: Uint8Array, context?: Context): Uint8Array;

/**
 * The format of a token and, for `v3:`, the key version that decrypts it. Reads only the
 * prefix and the 5-byte header: a token it accepts may still fail to decrypt.
 * @throws {KeysealError} `malformed` (not a string, neither prefix, or a bad `v3:` header)
 */
export function tokenFormat(token: string): TokenFormat;

/**
 * The lookup hash of an API key: lowercase hex SHA-256 of its UTF-8 bytes (64 characters).
 * @throws {KeysealError} `malformed` for a non-string or a lone surrogate
 */
export function hash(apiKey: string): string;

/**
 * Whether a value is a token (starts with `v2:` or `v3:`) rather than legacy plaintext. A cheap
 * prefix test; never throws (non-strings give `false`).
 */
export function isEncrypted(value: string): boolean;

/**
 * The pool key derived from a master key: PBKDF2-HMAC-SHA256, salt `stargazer:api_key_pool`,
 * 100 000 iterations, 32 bytes. Slow on purpose (tens of milliseconds).
 * @param masterKey - the 32-byte master key
 * @returns a new 32-byte key
 * @throws {KeysealError} `bad_key`
 */
export function derivePoolKey(masterKey: Uint8Array): Uint8Array;

/**
 * A new random 32-byte key from `crypto.getRandomValues`.
 * @throws {KeysealError} `randomness`
 */
export function generateKey(): Uint8Array;

/**
 * A 32-byte key kept inside WebAssembly memory together with its expanded AES key schedule:
 * the fast way to encrypt or decrypt many values with one key. Call {@link KeysealKey.free}
 * when done: the key bytes and schedule are zeroized then (a finalizer frees forgotten
 * handles, but not promptly). Using a freed handle throws.
 *
 * @example
 * const k = new KeysealKey(keyBytes);
 * try { token = k.encrypt("secret"); } finally { k.free(); }
 */
export class KeysealKey {
  /**
   * Copies a 32-byte key into WebAssembly memory.
   * @throws {KeysealError} `bad_key`
   */
  constructor(key: Uint8Array);
  /** A new random key, made inside WebAssembly memory. @throws {KeysealError} `randomness` */
  static generate(): KeysealKey;
  /** A copy of the key's 32 bytes (to store it, wrapped, somewhere). */
  exportKey(): Uint8Array;
  /** Like {@link encrypt}, with this key. */
  encrypt(plaintext: string): string;
  /** Like {@link decrypt}, with this key. */
  decrypt(token: string): string;
  /** Like {@link encryptBytes}, with this key. */
  encryptBytes(plaintext: Uint8Array): string;
  /** Like {@link decryptBytes}, with this key. */
  decryptBytes(token: string): Uint8Array;
  /** Like {@link encryptV3}, with this key (which must be version `version`). */
  encryptV3(plaintext: string, version: number, context?: Context): string;
  /** Like {@link encryptBytesV3}, with this key. */
  encryptBytesV3(plaintext: Uint8Array, version: number, context?: Context): string;
  /** Like {@link decryptV3}, with this key. */
  decryptV3(token: string, context?: Context): string;
  /** Like {@link decryptBytesV3}, with this key. */
  decryptBytesV3(token: string, context?: Context): Uint8Array;
  /**
   * Zeroizes and frees the key; the handle is unusable afterwards. Where the engine has
   * `Symbol.dispose`, `using k = new KeysealKey(...)` calls it too.
   */
  free(): void;
  /**
   * The same as {@link KeysealKey.free}: what `using k = new KeysealKey(...)` calls when the
   * block ends. Defined where the engine has `Symbol.dispose` (Node 20+, Bun, Deno, current
   * Chromium).
   */
  [Symbol.dispose](): void;
}

declare global {
  // `Symbol.dispose` for projects whose `lib` predates explicit resource management (it
  // merges with TypeScript's own declaration in `esnext.disposable`).
  interface SymbolConstructor {
    readonly dispose: unique symbol;
  }
}
