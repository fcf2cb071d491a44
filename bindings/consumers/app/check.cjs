'use strict';
// What every consumer build runs: the package's functions on one known vector made by the
// Python module, with nothing but the package and the platform (no Buffer: this runs in
// browsers too). The test runner (../run.mjs) compares the result with the vector.

const b64 = (s) => Uint8Array.from(atob(s.replace(/-/g, '+').replace(/_/g, '/')), (c) => c.charCodeAt(0));
const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');

/** The error code a call throws (`null` when it does not throw). */
function codeOf(fn) {
  try {
    fn();
    return null;
  } catch (e) {
    return e && e.name === 'KeysealError' ? e.code : `not a KeysealError: ${e}`;
  }
}

/**
 * @param keyseal - the package as this consumer loaded it (`import * as` or `require`)
 * @param v - `{ key_b64, token, plaintext, api_key, master_key_b64 }`
 */
module.exports = function check(keyseal, v) {
  const key = b64(v.key_b64);
  const fresh = keyseal.encrypt(v.plaintext, key);
  const k = new keyseal.KeysealKey(key);
  const viaHandle = k.decrypt(fresh);
  // What `using k = new KeysealKey(...)` calls at the end of the block; the key is gone after.
  const dispose = typeof Symbol.dispose === 'symbol' ? k[Symbol.dispose] : undefined;
  if (typeof dispose === 'function') dispose.call(k);
  return {
    prefix: keyseal.ENCRYPTED_PREFIX,
    decrypted: keyseal.decrypt(v.token, key),
    hash: keyseal.hash(v.api_key),
    poolKeyHex: hex(keyseal.derivePoolKey(b64(v.master_key_b64))),
    roundTrip: keyseal.decrypt(fresh, key) === v.plaintext && viaHandle === v.plaintext,
    wrongKey: codeOf(() => keyseal.decrypt(v.token, new Uint8Array(32))),
    disposed: typeof dispose === 'function' ? codeOf(() => k.encrypt('x')) !== null : 'no Symbol.dispose',
  };
};
