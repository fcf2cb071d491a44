'use strict';
// Secrets do not stay in WebAssembly memory: after each call, the package's whole linear memory
// is scanned for the key, plaintext or API key it was given or returned. Runs in its own process
// (node --test isolates files): it catches the instance the package creates, whose memory is
// not exported, by wrapping WebAssembly.Instance while the package loads.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const nodeCrypto = require('node:crypto');

let memory = null;
const RealInstance = WebAssembly.Instance;
WebAssembly.Instance = function Instance(module, imports) {
  const instance = new RealInstance(module, imports);
  memory = instance.exports.memory;
  return instance;
};
const k = require('keyseal');
WebAssembly.Instance = RealInstance;

/** Every 8-byte window of `secret` that is found in wasm memory (none, if nothing stayed). */
function leftInMemory(secret) {
  assert.ok(memory instanceof WebAssembly.Memory, 'caught the instance memory');
  const bytes = typeof secret === 'string' ? Buffer.from(secret, 'utf8') : Buffer.from(secret);
  assert.ok(bytes.length >= 8);
  const mem = Buffer.from(memory.buffer);
  const found = [];
  for (let i = 0; i + 8 <= bytes.length; i++) {
    if (mem.indexOf(bytes.subarray(i, i + 8)) !== -1) found.push(i);
  }
  return found;
}

function assertGone(secret, what) {
  assert.deepEqual(leftInMemory(secret), [], `${what}: bytes still in wasm memory`);
}

const randomKey = () => new Uint8Array(nodeCrypto.randomBytes(32));
const randomText = (label) => `${label}:${nodeCrypto.randomBytes(24).toString('base64')}`;

test('scanner sanity: a live KeysealKey holds its key, found by the scan', () => {
  const key = randomKey();
  const h = new k.KeysealKey(key);
  assert.notDeepEqual(leftInMemory(key), [], 'the scan finds a key that is there');
  h.free();
  assertGone(key, 'KeysealKey after free()');
});

test('a Uint8Array key is not left in wasm memory by encrypt, decrypt or derivePoolKey', () => {
  const key = randomKey();
  const token = k.encrypt('x', key);
  assertGone(key, 'encrypt');
  k.decrypt(token, key);
  assertGone(key, 'decrypt');
  k.decryptBytes(k.encryptBytes(new Uint8Array([1, 2, 3]), key), key);
  assertGone(key, 'encryptBytes/decryptBytes');
  const pool = k.derivePoolKey(key);
  assertGone(key, 'derivePoolKey (master key)');
  assertGone(pool, 'derivePoolKey (pool key)');
  assert.throws(() => k.decrypt(k.encrypt('y', randomKey()), key), { code: 'authentication' });
  assertGone(key, 'decrypt with the wrong key');
});

test('generated keys are not left in wasm memory (generateKey, KeysealKey.generate)', () => {
  for (let i = 0; i < 20; i++) {
    assertGone(k.generateKey(), 'generateKey');
  }
  const h = k.KeysealKey.generate();
  const exported = h.exportKey();
  h.encrypt('z');
  h.free();
  assertGone(exported, 'KeysealKey.generate after free()');
});

test('new KeysealKey(k): used, then free(), leaves no copy of k', () => {
  const key = randomKey();
  const h = new k.KeysealKey(key);
  const token = h.encrypt('with the handle');
  assert.equal(h.decrypt(token), 'with the handle');
  h.decryptBytes(h.encryptBytes(new Uint8Array(100)));
  h.exportKey();
  h.free();
  assertGone(key, 'KeysealKey after free()');
});

test('the input and output of hash() are not left in wasm memory (ASCII and not)', () => {
  for (const label of ['sk_live', 'clé-ключ-🔑']) {
    const apiKey = randomText(label);
    const digest = k.hash(apiKey);
    assert.equal(digest, nodeCrypto.createHash('sha256').update(apiKey, 'utf8').digest('hex'));
    assertGone(apiKey, `hash(${label}…)`);
    assertGone(digest, `the lookup hash of ${label}…`);
  }
});

test('plaintext is not left in wasm memory by encrypt and decrypt, strings and bytes', () => {
  const key = randomKey();
  const h = new k.KeysealKey(key);
  for (const label of ['secret', 'sécrét-секрет-秘密']) {
    const text = randomText(label).repeat(3);
    const token = k.encrypt(text, key);
    assertGone(text, 'encrypt');
    assert.equal(k.decrypt(token, key), text);
    assertGone(text, 'decrypt');
    assert.equal(h.decrypt(h.encrypt(text)), text);
    assertGone(text, 'KeysealKey encrypt/decrypt');
    const bytes = new Uint8Array(Buffer.from(text));
    assert.deepEqual(k.decryptBytes(k.encryptBytes(bytes, key), key), bytes);
    assert.deepEqual(h.decryptBytes(h.encryptBytes(bytes)), bytes);
    assertGone(bytes, 'encryptBytes/decryptBytes');
    assert.throws(() => k.decrypt(k.encryptBytes(new Uint8Array([0xff, ...bytes]), key), key),
      { code: 'not_utf8' });
    assertGone(bytes, 'decrypt of bytes that are not UTF-8');
  }
  h.free();
  assertGone(key, 'KeysealKey after free()');
});

test('v3: keys and plaintext are not left in wasm memory (functions and KeysealKey)', () => {
  const key = randomKey();
  const row = ['users', '42', new Uint8Array([7, 7])];
  for (const label of ['secret', 'sécrét-секрет-秘密']) {
    const text = randomText(label).repeat(3);
    const token = k.encryptV3(text, key, 3, row);
    assertGone(text, 'encryptV3');
    assertGone(key, 'encryptV3 (key)');
    assert.equal(k.decryptV3(token, key, row), text);
    assertGone(text, 'decryptV3');
    assertGone(key, 'decryptV3 (key)');
    const bytes = new Uint8Array(Buffer.from(text));
    assert.deepEqual(k.decryptBytesV3(k.encryptBytesV3(bytes, key, 3), key), bytes);
    assertGone(bytes, 'encryptBytesV3/decryptBytesV3');
    assert.throws(() => k.decryptV3(k.encryptBytesV3(new Uint8Array([0xff, ...bytes]), key, 1), key),
      { code: 'not_utf8' });
    assertGone(bytes, 'decryptV3 of bytes that are not UTF-8');
    assert.throws(() => k.decryptV3(token, key, ['users', '43']), { code: 'authentication' });
    assertGone(key, 'decryptV3 with another context');
    const h = new k.KeysealKey(key);
    assert.equal(h.decryptV3(h.encryptV3(text, 9, row), row), text);
    assert.deepEqual(h.decryptBytesV3(h.encryptBytesV3(bytes, 9)), bytes);
    assertGone(text, 'KeysealKey encryptV3/decryptV3');
    h.free();
    assertGone(key, 'KeysealKey after free()');
  }
});
