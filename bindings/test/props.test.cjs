'use strict';
// Property tests of the npm boundary (fast-check): arbitrary JS values, odd typed arrays,
// proxies, getters, detached and resizable buffers, freed handles and a misbehaving
// crypto.getRandomValues, into every export. Each call ends in a result or a KeysealError with a
// documented code; results agree with node:crypto (AES-256-GCM, SHA-256, PBKDF2) and with the
// Python module's vectors; the module still works after 100 000 such calls.
// Fixed seed and bounded runs in `make test`; KEYSEAL_FC_SEED and KEYSEAL_FC_SCALE (a factor on
// every run count) explore further.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const nodeCrypto = require('node:crypto');
const {
  k, fc, SEED, SCALE, runs, vectors, b64, stats, tally, readable, keyOf, isText, fatalUtf8, outcome,
  expectCode, withHost, shapes, KEYS, keyBytesArb, dataBytesArb, freedHandle, hostileArb,
  anyStringArb, textArb, keyArgArb, dataArgArb, textArgArb, hostArb, call,
} = require('./props-common.cjs');

// ---- The specification of v2 tokens, written against node:crypto ----------------------------

function nodeEncrypt(bytes, key, iv) {
  const c = nodeCrypto.createCipheriv('aes-256-gcm', key, iv);
  const raw = Buffer.concat([iv, c.update(bytes), c.final(), c.getAuthTag()]);
  const s = raw.toString('base64url');
  return `v2:${s}${'='.repeat((4 - (s.length % 4)) % 4)}`;
}

/** node:crypto's reading of a token (lenient base64), or null when it does not verify. */
function nodeDecrypt(token, key) {
  const body = token.startsWith('v2:') ? token.slice(3) : token;
  const raw = Buffer.from(body, 'base64url');
  if (raw.length < 28) return null;
  try {
    const d = nodeCrypto.createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12));
    d.setAuthTag(raw.subarray(raw.length - 16));
    return new Uint8Array(Buffer.concat([d.update(raw.subarray(12, raw.length - 16)), d.final()]));
  } catch {
    return null;
  }
}

/** Whether `token` is exactly what `encrypt` writes: "v2:"-optional, padded base64url. */
function canonical(token) {
  const body = token.startsWith('v2:') ? token.slice(3) : token;
  if (body.length % 4 !== 0 || !/^[A-Za-z0-9_-]*={0,2}$/.test(body)) return false;
  const s = Buffer.from(body, 'base64url').toString('base64url');
  return `${s}${'='.repeat((4 - (s.length % 4)) % 4)}` === body;
}

const TOKEN_RE = /^v2:[A-Za-z0-9_-]*={0,2}$/;
const sha256 = (s) => nodeCrypto.createHash('sha256').update(s, 'utf8').digest('hex');

/** A token result: well formed, and node:crypto reads back `bytes` with `key`. */
function checkToken(out, bytes, key, randomnessMayFail) {
  if (!out.ok && randomnessMayFail && out.code === 'randomness') return;
  assert.ok(out.ok, `expected a token, got ${out.code}`);
  assert.match(out.value, TOKEN_RE);
  assert.equal(out.value.length, 3 + 4 * Math.ceil((bytes.length + 28) / 3));
  assert.deepEqual(nodeDecrypt(out.value, key), bytes);
}

/** What decrypt (asText) or decryptBytes must do with `token` and a valid `key`. */
function checkDecrypt(out, token, key, asText) {
  if (typeof token !== 'string') return expectCode(out, 'malformed');
  const plain = nodeDecrypt(token, key);
  if (canonical(token)) {
    // node:crypto and the package read the same bytes: their verdicts agree.
    if (plain === null) {
      assert.ok(!out.ok && ['malformed', 'authentication'].includes(out.code), JSON.stringify(out));
      return;
    }
    if (asText) {
      let text = null;
      try { text = fatalUtf8.decode(plain); } catch { /* not UTF-8 */ }
      if (text === null) return expectCode(out, 'not_utf8');
      assert.ok(out.ok, `expected the plaintext, got ${out.code}`);
      return assert.equal(out.value, text);
    }
    assert.ok(out.ok, `expected the plaintext, got ${out.code}`);
    return assert.deepEqual(out.value, plain);
  }
  // Other spellings (standard alphabet, no padding, junk): never more than node:crypto reads.
  if (out.ok) {
    assert.notEqual(plain, null, 'decrypted what node:crypto cannot');
    assert.deepEqual(asText ? Buffer.from(out.value) : out.value, asText ? Buffer.from(plain) : plain);
  } else {
    assert.ok(['malformed', 'authentication', 'not_utf8'].includes(out.code), out.code);
  }
}

/** Tokens: made by node:crypto with one of KEYS, then sometimes damaged or respelled. */
const tokenArb = fc.oneof(
  { weight: 3, arbitrary: fc.tuple(fc.nat(KEYS.length - 1), fc.oneof(dataBytesArb, textArb.map((s) => Buffer.from(s))),
    fc.uint8Array({ minLength: 12, maxLength: 12 }), fc.nat(), fc.constantFrom('as-is', 'flip', 'cut', 'unprefixed', 'standard', 'unpadded', 'junk'),
  ).map(([ki, bytes, iv, at, how]) => {
    const t = nodeEncrypt(Buffer.from(bytes), KEYS[ki], iv);
    const i = 3 + (at % (t.length - 3));
    switch (how) {
      case 'flip': return t.slice(0, i) + (t[i] === 'A' ? 'B' : 'A') + t.slice(i + 1);
      case 'cut': return t.slice(0, i);
      case 'unprefixed': return t.slice(3);
      case 'standard': return t.replace(/-/g, '+').replace(/_/g, '/');
      case 'unpadded': return t.replace(/=+$/, '');
      case 'junk': return t.slice(0, i) + '\uD800 %' + t.slice(i);
      default: return t;
    }
  }) },
  { weight: 1, arbitrary: fc.constantFrom(...vectors.tokens.map((v) => v.token),
    ...vectors.rejected_tokens.map((v) => v.token)) },
  { weight: 1, arbitrary: anyStringArb.map((s) => `v2:${s}`) },
);

const tokenArgArb = fc.oneof({ weight: 4, arbitrary: tokenArb }, { weight: 1, arbitrary: hostileArb },
  { weight: 1, arbitrary: textArb });

// ---- The calls, each checked against the specification --------------------------------------

/** Live handles, one per key of KEYS, shared by the runs. */
const handles = KEYS.map((key) => new k.KeysealKey(key));


const CALLS = {
  encrypt: fc.tuple(textArgArb, keyArgArb).map(([p, key]) => call('encrypt', [p, key], (host) => {
    const kb = keyOf(key);
    const out = withHost(host, () => outcome(() => k.encrypt(p, key)));
    if (!kb) return expectCode(out, 'bad_key');
    if (!isText(p)) return expectCode(out, 'malformed');
    checkToken(out, new Uint8Array(Buffer.from(p)), kb, host !== 'normal');
  })),
  encryptBytes: fc.tuple(dataArgArb, keyArgArb).map(([d, key]) => call('encryptBytes', [d, key], (host) => {
    const kb = keyOf(key);
    const bytes = readable(d);
    const out = withHost(host, () => outcome(() => k.encryptBytes(d, key)));
    if (!kb) return expectCode(out, 'bad_key');
    if (!bytes) return expectCode(out, 'malformed');
    checkToken(out, bytes, kb, host !== 'normal');
  })),
  decrypt: fc.tuple(tokenArgArb, keyArgArb).map(([t, key]) => call('decrypt', [t, key], (host) => {
    const kb = keyOf(key);
    const out = withHost(host, () => outcome(() => k.decrypt(t, key)));
    if (!kb) return expectCode(out, 'bad_key');
    checkDecrypt(out, t, kb, true);
  })),
  decryptBytes: fc.tuple(tokenArgArb, keyArgArb).map(([t, key]) => call('decryptBytes', [t, key], (host) => {
    const kb = keyOf(key);
    const out = withHost(host, () => outcome(() => k.decryptBytes(t, key)));
    if (!kb) return expectCode(out, 'bad_key');
    checkDecrypt(out, t, kb, false);
  })),
  hash: textArgArb.map((s) => call('hash', [s], (host) => {
    const out = withHost(host, () => outcome(() => k.hash(s)));
    if (!isText(s)) return expectCode(out, 'malformed');
    assert.ok(out.ok);
    assert.equal(out.value, sha256(s));
  })),
  isEncrypted: fc.oneof(tokenArgArb, textArgArb).map((v) => call('isEncrypted', [v], (host) => {
    const out = withHost(host, () => outcome(() => k.isEncrypted(v)));
    assert.ok(out.ok, 'isEncrypted never throws');
    assert.equal(out.value, typeof v === 'string' && (v.startsWith('v2:') || v.startsWith('v3:')));
  })),
  // Valid master keys run PBKDF2 (100 000 iterations): checked in their own property below.
  derivePoolKey: fc.oneof(hostileArb, shapes(fc.uint8Array({ maxLength: 31 }))).map((m) => call('derivePoolKey', [m], (host) => {
    const out = withHost(host, () => outcome(() => k.derivePoolKey(m)));
    // fc.anything() may, rarely, make a 32-byte Uint8Array: that one is a valid master key.
    if (keyOf(m)) return assert.ok(out.ok);
    expectCode(out, 'bad_key');
  })),
  generateKey: fc.array(hostileArb, { maxLength: 2 }).map((args) => call('generateKey', args, (host) => {
    const out = withHost(host, () => outcome(() => k.generateKey(...args)));
    if (!out.ok) return expectCode(out, host === 'normal' ? 'returned' : 'randomness');
    assert.ok(out.value instanceof Uint8Array);
    assert.equal(out.value.length, 32);
  })),
  KeysealKey: keyArgArb.map((key) => call('new KeysealKey', [key], (host) => {
    const kb = keyOf(key);
    const out = withHost(host, () => outcome(() => new k.KeysealKey(key)));
    if (!kb) return expectCode(out, 'bad_key');
    assert.ok(out.ok);
    assert.deepEqual(out.value.exportKey(), kb);
    out.value.free();
    expectCode(outcome(() => out.value.exportKey()), 'bad_key');
  })),
  'KeysealKey.generate': fc.constant(call('KeysealKey.generate', [], (host) => {
    const out = withHost(host, () => outcome(() => k.KeysealKey.generate()));
    if (!out.ok) return expectCode(out, host === 'normal' ? 'returned' : 'randomness');
    assert.equal(out.value.exportKey().length, 32);
    out.value.free();
  })),
  handle: fc.tuple(fc.nat(KEYS.length), fc.constantFrom('encrypt', 'encryptBytes', 'decrypt', 'decryptBytes', 'exportKey', 'free'),
    fc.oneof(textArgArb, dataArgArb, tokenArgArb)).map(([hi, method, arg]) => call(
    `${hi === KEYS.length ? 'freed' : method === 'free' ? 'fresh' : `handles[${hi}]`}.${method}`, [arg], (host) => {
    const freed = hi === KEYS.length;
    // free() runs on a fresh handle: the shared ones stay alive.
    const h = freed ? freedHandle() : method === 'free' ? new k.KeysealKey(KEYS[hi]) : handles[hi];
    const kb = freed ? null : KEYS[hi];
    const out = withHost(host, () => outcome(() => h[method](arg)));
    if (method === 'free') {
      assert.ok(out.ok, 'free() never throws');
      return expectCode(outcome(() => h.encrypt('x')), 'bad_key');
    }
    if (freed) return expectCode(out, 'bad_key');
    switch (method) {
      case 'encrypt':
        if (!isText(arg)) return expectCode(out, 'malformed');
        return checkToken(out, new Uint8Array(Buffer.from(arg)), kb, host !== 'normal');
      case 'encryptBytes': {
        const bytes = readable(arg);
        if (!bytes) return expectCode(out, 'malformed');
        return checkToken(out, bytes, kb, host !== 'normal');
      }
      case 'decrypt': return checkDecrypt(out, arg, kb, true);
      case 'decryptBytes': return checkDecrypt(out, arg, kb, false);
      default: // exportKey ignores its arguments
        assert.ok(out.ok);
        return assert.deepEqual(out.value, kb);
    }
  })),
};

function stillWorks() {
  const key = KEYS[0];
  const v = vectors.tokens[0];
  assert.equal(k.decrypt(v.token, b64(v.key_b64)), v.plaintext);
  assert.equal(k.decrypt(k.encrypt('still works', key), key), 'still works');
  assert.equal(k.hash('abc'), sha256('abc'));
  assert.deepEqual(k.derivePoolKey(b64(vectors.pool_keys[0].master_key_b64)),
    b64(vectors.pool_keys[0].pool_key_b64));
  for (const h of handles) assert.equal(h.decrypt(h.encrypt('h')), 'h');
}

test('every export, arbitrary arguments and hosts: a result that node:crypto agrees with, or a KeysealError', (t) => {
  const exports = Object.keys(CALLS);
  const callArb = fc.oneof(...exports.map((name) => CALLS[name].map((run) => ({ name, run }))));
  fc.assert(fc.property(callArb, hostArb, ({ run }, host) => {
    run(host);
  }), runs(100_000));
  assert.ok(stats.calls >= 100_000 * Math.min(SCALE, 1), `${stats.calls} calls`);
  stillWorks();
  t.diagnostic(`${stats.calls} calls, seed ${SEED}: ${JSON.stringify(tally)}`);
});

test('round trips with every key shape: encrypt then decrypt (functions and KeysealKey)', () => {
  fc.assert(fc.property(shapes(keyBytesArb), shapes(keyBytesArb), textArb, shapes(dataBytesArb),
    (key, sameKey, text, data) => {
      const h = new k.KeysealKey(sameKey);
      try {
        if (isText(text)) {
          assert.equal(k.decrypt(k.encrypt(text, key), key), text);
          assert.equal(h.decrypt(k.encrypt(text, sameKey)), text);
        }
        const bytes = readable(data);
        assert.deepEqual(k.decryptBytes(h.encryptBytes(data), sameKey), bytes);
      } finally {
        h.free();
      }
    }), runs(2000));
});

test('the Python vectors, through every key shape', () => {
  const cases = vectors.tokens.map((v) => ({ ...v, key: b64(v.key_b64) }));
  const caseArb = fc.constantFrom(...cases)
    .chain((v) => shapes(fc.constant(v.key)).map((key) => ({ v, key })));
  fc.assert(fc.property(caseArb, ({ v, key }) => {
    assert.equal(k.decrypt(v.token, key), v.plaintext);
    assert.deepEqual(k.decryptBytes(v.token, key), new Uint8Array(Buffer.from(v.plaintext)));
  }), runs(300));
  for (const v of vectors.api_key_hashes) assert.equal(k.hash(v.api_key), v.sha256_hex);
});

test('derivePoolKey equals node:crypto PBKDF2-HMAC-SHA256 (100 000 iterations)', () => {
  fc.assert(fc.property(shapes(fc.uint8Array({ minLength: 32, maxLength: 32 })), (m) => {
    const expected = nodeCrypto.pbkdf2Sync(readable(m), 'stargazer:api_key_pool', 100_000, 32, 'sha256');
    assert.deepEqual(k.derivePoolKey(m), new Uint8Array(expected));
  }), runs(6));
  for (const v of vectors.pool_keys) {
    assert.deepEqual(k.derivePoolKey(b64(v.master_key_b64)), b64(v.pool_key_b64));
  }
});
