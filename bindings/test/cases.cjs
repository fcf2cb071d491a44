'use strict';
// The JS test cases, run once against require('keyseal') (cjs.test.cjs) and once against
// import 'keyseal' (esm.test.mjs). `keyseal` is the package as a user gets it: built by
// `make npm`, packed with `npm pack` and installed (scripts/test-npm.sh).
const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');

const VECTORS = process.env.KEYSEAL_VECTORS ||
  path.join(__dirname, '..', '..', 'tests', 'vectors', 'python', 'python-interop.json');
const vectors = JSON.parse(fs.readFileSync(VECTORS, 'utf8'));

const b64 = (s) => new Uint8Array(Buffer.from(s, 'base64')); // accepts url-safe too
const key32 = (fill) => new Uint8Array(32).fill(fill);
const TOKEN_RE = /^v2:[A-Za-z0-9_-]*={0,2}$/;

/** Asserts `fn` throws a KeysealError with `code`. */
function throwsCode(fn, code) {
  assert.throws(fn, (e) => {
    assert.ok(e instanceof Error, 'an Error');
    assert.equal(e.name, 'KeysealError');
    assert.equal(e.code, code, `code of: ${e.message}`);
    assert.equal(typeof e.message, 'string');
    return true;
  });
}

const REJECTED_CODE = {
  'tag altered': 'authentication',
  'nonce altered': 'authentication',
  'ciphertext altered': 'authentication',
  'wrong key': 'authentication',
  '27 bytes: shorter than nonce plus tag': 'malformed',
  empty: 'malformed',
  'not base64': 'malformed',
  'truncated base64': 'malformed',
  'plaintext is not UTF-8 (decrypt_bytes succeeds)': 'not_utf8',
};

/** The Python module's master-key parsing, to check what the JS API gets. */
function pythonMasterKey(value) {
  const v = value.trim();
  if (!v || v.length % 4 !== 0 || !/^[A-Za-z0-9_+/-]*={0,2}$/.test(v)) return null;
  return b64(v);
}

function run(k, label) {
  const t = (name, fn) => test(`${label}: ${name}`, fn);

  t('exports the documented API', () => {
    for (const f of ['encrypt', 'decrypt', 'encryptBytes', 'decryptBytes', 'hash',
      'isEncrypted', 'derivePoolKey', 'generateKey']) {
      assert.equal(typeof k[f], 'function', f);
    }
    assert.equal(k.ENCRYPTED_PREFIX, 'v2:');
    assert.equal(typeof k.KeysealKey, 'function');
  });

  t('python-interop: every token decrypts to its plaintext', () => {
    assert.ok(vectors.tokens.length >= 40);
    for (const v of vectors.tokens) {
      const key = b64(v.key_b64);
      assert.equal(k.decrypt(v.token, key), v.plaintext);
      // Some tokens come without the prefix, as the Python module accepts them.
      const body = v.token.startsWith('v2:') ? v.token.slice(3) : v.token;
      assert.equal(k.decrypt(body, key), v.plaintext, 'without the prefix');
      assert.equal(k.decrypt(`v2:${body}`, key), v.plaintext, 'with the prefix');
      assert.deepEqual(k.decryptBytes(v.token, key), new Uint8Array(Buffer.from(v.plaintext)));
      const h = new k.KeysealKey(key);
      try {
        assert.equal(h.decrypt(v.token), v.plaintext);
        assert.equal(k.decrypt(h.encrypt(v.plaintext), key), v.plaintext);
      } finally {
        h.free();
      }
    }
  });

  t('python-interop: every rejected token throws its code', () => {
    assert.ok(vectors.rejected_tokens.length >= 9);
    for (const v of vectors.rejected_tokens) {
      const code = REJECTED_CODE[v.why];
      assert.ok(code, `expected code for "${v.why}"`);
      const key = b64(v.key_b64);
      throwsCode(() => k.decrypt(v.token, key), code);
      if (code === 'not_utf8') {
        assert.deepEqual(k.decryptBytes(v.token, key), b64(v.bytes_b64));
      } else {
        throwsCode(() => k.decryptBytes(v.token, key), code);
      }
    }
  });

  t('python-interop: every pool key', () => {
    for (const v of vectors.pool_keys) {
      assert.deepEqual(k.derivePoolKey(b64(v.master_key_b64)), b64(v.pool_key_b64));
    }
  });

  t('python-interop: every lookup hash', () => {
    for (const v of vectors.api_key_hashes) {
      assert.equal(k.hash(v.api_key), v.sha256_hex);
    }
  });

  t('python-interop: master keys (the JS API takes bytes; lengths checked)', () => {
    for (const v of vectors.master_key_env) {
      const bytes = pythonMasterKey(v.value);
      if (v.resolves_to_b64 === null) {
        if (bytes !== null) throwsCode(() => k.derivePoolKey(bytes), 'bad_key');
      } else {
        assert.deepEqual(bytes, b64(v.resolves_to_b64), v.why);
        assert.equal(k.derivePoolKey(bytes).length, 32);
      }
    }
  });

  t('python-interop: bcrypt cases are not part of the JS API', (c) => {
    c.skip('bcrypt API-key hashes live in the Rust crate (feature issuance), not in the npm package');
  });

  t('round trips: text', () => {
    const key = k.generateKey();
    for (const s of ['', 'a', 'héllo wörld', '密钥 🔑 ключ', '\u0000\uffff', '😀'.repeat(1000),
      'x'.repeat(100000)]) {
      const token = k.encrypt(s, key);
      assert.match(token, TOKEN_RE);
      assert.ok(k.isEncrypted(token));
      assert.equal(k.decrypt(token, key), s);
    }
  });

  t('round trips: bytes, every length 0..300, and via the handle', () => {
    const key = k.generateKey();
    const h = new k.KeysealKey(key);
    for (let n = 0; n <= 300; n++) {
      const data = new Uint8Array(n).map((_, i) => (i * 7 + n) & 255);
      const copy = data.slice();
      const token = k.encryptBytes(data, key);
      assert.deepEqual(data, copy, 'input unchanged');
      assert.equal(token.length, 3 + 4 * Math.ceil((n + 28) / 3));
      assert.deepEqual(k.decryptBytes(token, key), data);
      assert.deepEqual(h.decryptBytes(token), data);
      assert.deepEqual(k.decryptBytes(h.encryptBytes(data), key), data);
    }
    assert.deepEqual(h.exportKey(), key);
    h.free();
  });

  t('fresh nonce per call', () => {
    const key = k.generateKey();
    const seen = new Set();
    for (let i = 0; i < 2000; i++) seen.add(k.encrypt('same', key).slice(0, 19));
    assert.equal(seen.size, 2000);
  });

  t('generateKey: 32 random bytes', () => {
    const a = k.generateKey();
    const b = k.generateKey();
    assert.ok(a instanceof Uint8Array);
    assert.equal(a.length, 32);
    assert.notDeepEqual(a, b);
    const g = k.KeysealKey.generate();
    assert.equal(g.exportKey().length, 32);
    g.free();
  });

  t('wrong key lengths and types are bad_key, never a trap', () => {
    const token = k.encrypt('x', key32(1));
    const bad = [new Uint8Array(0), new Uint8Array(16), new Uint8Array(31), new Uint8Array(33),
      new Uint8Array(64), 'k'.repeat(32), 32, null, undefined, {}, new Array(32).fill(0),
      new Uint16Array(16), new Uint8Array(64).subarray(0, 31)];
    for (const key of bad) {
      throwsCode(() => k.encrypt('x', key), 'bad_key');
      throwsCode(() => k.decrypt(token, key), 'bad_key');
      throwsCode(() => k.encryptBytes(new Uint8Array(1), key), 'bad_key');
      throwsCode(() => k.decryptBytes(token, key), 'bad_key');
      throwsCode(() => k.derivePoolKey(key), 'bad_key');
      throwsCode(() => new k.KeysealKey(key), 'bad_key');
    }
    // The module still works afterwards.
    assert.equal(k.decrypt(token, key32(1)), 'x');
  });

  t('keys: Buffer, subarray views and other realms are accepted', () => {
    const key = key32(9);
    const token = k.encrypt('v', key);
    assert.equal(k.decrypt(token, Buffer.from(key)), 'v');
    const big = new Uint8Array(100);
    big.set(key, 50);
    assert.equal(k.decrypt(token, big.subarray(50, 82)), 'v');
    const foreign = vm.runInNewContext('new Uint8Array(32).fill(9)');
    assert.equal(k.decrypt(token, foreign), 'v');
  });

  t('lone surrogates: malformed, not silently replaced', () => {
    const key = key32(2);
    for (const s of ['\uD800', 'a\uDC00b', 'x\uD83D', '\uDE00\uD83D']) {
      throwsCode(() => k.encrypt(s, key), 'malformed');
      throwsCode(() => k.hash(s), 'malformed');
      const h = new k.KeysealKey(key);
      throwsCode(() => h.encrypt(s), 'malformed');
      h.free();
      throwsCode(() => k.decrypt(`v2:${s}AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA`, key), 'malformed');
      assert.equal(k.isEncrypted(s), false);
    }
    assert.equal(k.decrypt(k.encrypt('\uD83D\uDE00', key), key), '😀');
    assert.equal(k.isEncrypted('v2:\uD800'), true);
  });

  t('wrong input types are malformed, never a trap', () => {
    const key = key32(3);
    for (const v of [123, null, undefined, {}, [], new Uint8Array(3), Symbol('s')]) {
      throwsCode(() => k.encrypt(v, key), 'malformed');
      throwsCode(() => k.decrypt(v, key), 'malformed');
      throwsCode(() => k.decryptBytes(v, key), 'malformed');
      throwsCode(() => k.hash(v), 'malformed');
      assert.equal(k.isEncrypted(v), false);
    }
    for (const v of ['text', 123, null, [1, 2, 3], new Uint16Array(4)]) {
      throwsCode(() => k.encryptBytes(v, key), 'malformed');
    }
  });

  t('isEncrypted is a prefix test', () => {
    assert.equal(k.isEncrypted('v2:'), true);
    assert.equal(k.isEncrypted('v2:anything'), true);
    assert.equal(k.isEncrypted('V2:x'), false);
    assert.equal(k.isEncrypted(''), false);
    assert.equal(k.isEncrypted(`v2:${'a'.repeat(1 << 20)}`), true);
  });

  t('huge inputs: 48 MiB round trips; too large is malformed, never a trap', () => {
    const key = key32(4);
    const h = new k.KeysealKey(key);
    const data = new Uint8Array(48 << 20).fill(7);
    assert.deepEqual(h.decryptBytes(h.encryptBytes(data)), data);
    const text = 'é'.repeat(12 << 20);
    assert.equal(h.decrypt(h.encrypt(text)), text);
    // Its token could not be a JS string: refused before anything is copied.
    throwsCode(() => h.encryptBytes(new Uint8Array(420 << 20)), 'malformed');
    throwsCode(() => k.encrypt('x'.repeat((1 << 29) - 24), key), 'malformed');
    assert.equal(h.decrypt(h.encrypt('still fine')), 'still fine');
    h.free();
  });

  t('KeysealKey: a freed handle throws instead of trapping', () => {
    const h = new k.KeysealKey(key32(5));
    h.free();
    assert.throws(() => h.encrypt('x'));
  });
}

module.exports = { run };
