'use strict';
// CommonJS entry (Node): the wasm-bindgen `nodejs` glue loads keyseal_bg.wasm synchronously.
const wasm = require('./keyseal_node.cjs');

module.exports = {
  encrypt: wasm.encrypt,
  decrypt: wasm.decrypt,
  encryptBytes: wasm.encryptBytes,
  decryptBytes: wasm.decryptBytes,
  hash: wasm.hash,
  isEncrypted: wasm.isEncrypted,
  derivePoolKey: wasm.derivePoolKey,
  generateKey: wasm.generateKey,
  KeysealKey: wasm.KeysealKey,
  ENCRYPTED_PREFIX: wasm.encryptedPrefix(),
};
