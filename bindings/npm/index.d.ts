/**
 * keyseal: AES-256-GCM secret tokens, byte-for-byte compatible with the keyseal Rust crate
 * and the Python module it replaces. Runs as WebAssembly in Node 20+, browsers and edge workers.
 *
 * A token is `"v2:" + base64url_padded(nonce[12] || ciphertext || tag[16])`, with a fresh
 * random nonce (from `crypto.getRandomValues`) for every call.
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
 * - `"randomness"`: `crypto.getRandomValues` is unavailable or failed.
 */
export type KeysealErrorCode =
  | "malformed"
  | "authentication"
  | "bad_key"
  | "not_utf8"
  | "randomness";

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
 * The lookup hash of an API key: lowercase hex SHA-256 of its UTF-8 bytes (64 characters).
 * @throws {KeysealError} `malformed` for a non-string or a lone surrogate
 */
export function hash(apiKey: string): string;

/**
 * Whether a value is a token (starts with `v2:`) rather than legacy plaintext. A cheap prefix
 * test; never throws (non-strings give `false`).
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
