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
const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');
const nodeCrypto = require('node:crypto');
const fc = require('fast-check');
const k = require('keyseal');

const SEED = Number(process.env.KEYSEAL_FC_SEED || 20261124);
const SCALE = Number(process.env.KEYSEAL_FC_SCALE || 1);
const runs = (n) => ({ seed: SEED, numRuns: Math.max(1, Math.round(n * SCALE)) });

const VECTORS = process.env.KEYSEAL_VECTORS ||
  path.join(__dirname, '..', '..', 'tests', 'vectors', 'python', 'python-interop.json');
const vectors = JSON.parse(fs.readFileSync(VECTORS, 'utf8'));
const b64 = (s) => new Uint8Array(Buffer.from(s, 'base64'));

const CODES = new Set(['malformed', 'authentication', 'bad_key', 'not_utf8', 'randomness']);
let calls = 0;
/** How the calls ended (result or code), reported by the main property. */
const tally = {};

// ---- The specification, written against node:crypto ---------------------------------------

const tagOf = Object.getOwnPropertyDescriptor(
  Object.getPrototypeOf(Uint8Array.prototype), Symbol.toStringTag).get;

/** The bytes a call must read from `v`, or null when `v` is not a readable Uint8Array. */
function readable(v) {
  if (tagOf.call(v) !== 'Uint8Array') return null; // any realm; not a Proxy, not a look-alike
  try {
    return new Uint8Array(v); // throws for a detached or out-of-bounds view
  } catch {
    return null;
  }
}

const keyOf = (v) => {
  const b = readable(v);
  return b && b.length === 32 ? b : null;
};
const isText = (v) => typeof v === 'string' && v.isWellFormed();
const fatalUtf8 = new TextDecoder('utf-8', { fatal: true });

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

/** Runs a call: `{ ok, value }` or `{ code }` of the KeysealError it threw (anything else fails). */
function outcome(fn) {
  calls++;
  try {
    const value = fn();
    tally.returned = (tally.returned || 0) + 1;
    return { ok: true, value };
  } catch (e) {
    tally[e?.code] = (tally[e?.code] || 0) + 1;
    assert.ok(e instanceof Error, `threw a non-Error: ${String(e)}`);
    assert.equal(e.name, 'KeysealError', `threw ${e.name}: ${e.message}`);
    assert.ok(CODES.has(e.code), `undocumented code ${e.code}`);
    assert.equal(typeof e.message, 'string');
    return { ok: false, code: e.code };
  }
}

function expectCode(out, code) {
  assert.deepEqual(out.ok ? 'returned' : out.code, code);
}

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

// ---- Hostile hosts --------------------------------------------------------------------------

const realCrypto = globalThis.crypto;
const realGetRandomValues = realCrypto.getRandomValues.bind(realCrypto);
const HOSTS = ['normal', 'throws', 'throws-non-error', 'fills-nothing', 're-enters', 'no-crypto'];

/** Runs `fn` with crypto.getRandomValues (or crypto itself) misbehaving as `host` says. */
function withHost(host, fn) {
  if (host === 'normal') return fn();
  let reentering = false;
  const patched = {
    throws: () => { throw new Error('no entropy'); },
    'throws-non-error': () => { throw Symbol('odd'); }, // eslint-disable-line no-throw-literal
    'fills-nothing': (a) => a,
    're-enters': (a) => {
      if (!reentering) {
        reentering = true;
        try {
          const inner = outcome(() => k.encrypt('inner', new Uint8Array(32)));
          assert.ok(inner.ok || inner.code === 'randomness');
          outcome(() => k.generateKey());
        } finally {
          reentering = false;
        }
      }
      return realGetRandomValues(a);
    },
  }[host];
  if (host === 'no-crypto') {
    Object.defineProperty(globalThis, 'crypto', {
      configurable: true, get() { throw new Error('no crypto'); },
    });
  } else {
    realCrypto.getRandomValues = patched;
  }
  try {
    return fn();
  } finally {
    if (host === 'no-crypto') {
      Object.defineProperty(globalThis, 'crypto', {
        configurable: true, enumerable: true, writable: true, value: realCrypto,
      });
    } else {
      delete realCrypto.getRandomValues;
    }
  }
}

// ---- Arbitraries ----------------------------------------------------------------------------

const foreignU8 = vm.runInNewContext('(n) => new Uint8Array(n)');

/** The same bytes in the shapes a caller may hold them (all readable Uint8Arrays). */
function shapes(bytesArb) {
  return fc.tuple(bytesArb, fc.nat(7), fc.constantFrom(
    'plain', 'offset', 'buffer', 'shared', 'resizable', 'resizable-fixed', 'foreign', 'lying-length',
  )).map(([bytes, off, shape]) => {
    const n = bytes.length;
    switch (shape) {
      case 'offset': {
        const big = new Uint8Array(n + off + 3);
        big.set(bytes, off);
        return big.subarray(off, off + n);
      }
      case 'buffer': return Buffer.from(bytes);
      case 'shared': {
        const s = new Uint8Array(new SharedArrayBuffer(n));
        s.set(bytes);
        return s;
      }
      case 'resizable': {
        const s = new Uint8Array(new ArrayBuffer(n, { maxByteLength: n + 64 }));
        s.set(bytes);
        return s;
      }
      case 'resizable-fixed': {
        const s = new Uint8Array(new ArrayBuffer(n + off, { maxByteLength: n + 64 }), off, n);
        s.set(bytes);
        return s;
      }
      case 'foreign': {
        const s = foreignU8(n);
        s.set(bytes);
        return s;
      }
      case 'lying-length': {
        const s = Uint8Array.from(bytes);
        let reads = 0;
        Object.defineProperty(s, 'length', { get: () => n + (reads++ % 3) - 1 });
        return s;
      }
      default: return Uint8Array.from(bytes);
    }
  });
}

/** A few fixed keys (the vectors' among them), so that tokens and keys sometimes match. */
const KEYS = [...new Set(vectors.tokens.map((v) => v.key_b64))].slice(0, 3).map(b64)
  .concat([new Uint8Array(32), new Uint8Array(32).fill(255)]);
const keyBytesArb = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...KEYS) },
  { weight: 1, arbitrary: fc.uint8Array({ minLength: 32, maxLength: 32 }) },
);
const dataBytesArb = fc.uint8Array({ maxLength: 300 });

function detached(n) {
  const buf = new ArrayBuffer(n);
  const view = new Uint8Array(buf);
  structuredClone(buf, { transfer: [buf] });
  return view;
}

const freedHandle = () => {
  const h = new k.KeysealKey(KEYS[0]);
  h.free();
  return h;
};

/** Values that are not readable Uint8Arrays, however much they look like one. */
const hostileArb = fc.oneof(
  fc.nat(64).map(detached),
  fc.tuple(fc.nat(64), fc.nat(64)).map(([n, cut]) => {
    const rab = new ArrayBuffer(n + 8, { maxByteLength: n + 8 });
    const view = new Uint8Array(rab, 8, n);
    rab.resize(Math.min(cut, n + 7)); // the view is now out of bounds
    return view;
  }),
  fc.tuple(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.constantFrom(
    {}, { get() { throw new Error('get trap'); } },
    { getPrototypeOf() { throw new Error('proto trap'); } },
    { getPrototypeOf: () => Uint8Array.prototype, get: () => 32 },
  )).map(([a, handler]) => new Proxy(a, handler)),
  fc.constantFrom(Int8Array, Uint8ClampedArray, Uint16Array, Int32Array, Float32Array,
    Float64Array, BigInt64Array).chain((T) => fc.nat(16).map((n) => new T(n))),
  fc.nat(40).map((n) => new DataView(new ArrayBuffer(n))),
  fc.nat(40).map((n) => new ArrayBuffer(n)),
  fc.array(fc.nat(255), { minLength: 32, maxLength: 32 }),
  fc.constant(null).map(() => ({ length: 32, 0: 1, get 1() { throw new Error('getter'); } })),
  fc.constant(null).map(() => Object.create(Uint8Array.prototype)),
  fc.constant(null).map(freedHandle),
  fc.constant(null).map(() => Symbol('s')),
  fc.constant(null).map(() => () => 1),
  fc.anything({
    withBoxedValues: true, withMap: true, withSet: true, withNullPrototype: true,
    withBigInt: true, withDate: true, withTypedArray: true, withSparseArray: true,
    withObjectString: true,
  }),
);

/** Any UTF-16 string, lone surrogates included. */
const anyStringArb = fc.oneof(
  fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)) }),
  fc.string({ unit: 'binary' }),
  fc.string({ unit: 'grapheme' }),
);
const textArb = fc.oneof(anyStringArb, fc.constantFrom('', 'v2:', 'x'.repeat(5000)));

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

const keyArgArb = fc.oneof({ weight: 3, arbitrary: shapes(keyBytesArb) },
  { weight: 1, arbitrary: shapes(fc.uint8Array({ maxLength: 40 })) }, { weight: 2, arbitrary: hostileArb });
const dataArgArb = fc.oneof({ weight: 3, arbitrary: shapes(dataBytesArb) }, { weight: 1, arbitrary: hostileArb },
  { weight: 1, arbitrary: textArb });
const textArgArb = fc.oneof({ weight: 4, arbitrary: textArb }, { weight: 1, arbitrary: hostileArb },
  { weight: 1, arbitrary: shapes(dataBytesArb) });
const tokenArgArb = fc.oneof({ weight: 4, arbitrary: tokenArb }, { weight: 1, arbitrary: hostileArb },
  { weight: 1, arbitrary: textArb });
const hostArb = fc.oneof({ weight: 6, arbitrary: fc.constant('normal') }, fc.constantFrom(...HOSTS));

// ---- The calls, each checked against the specification --------------------------------------

/** Live handles, one per key of KEYS, shared by the runs. */
const handles = KEYS.map((key) => new k.KeysealKey(key));

/** A call's runner, shown in a counterexample as the export and its arguments. */
function call(name, args, run) {
  run[fc.toStringMethod] = () => `${name}(${args.map((a) => fc.stringify(a)).join(', ')})`;
  return run;
}

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
    assert.equal(out.value, typeof v === 'string' && v.startsWith('v2:'));
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
  assert.ok(calls >= 100_000 * Math.min(SCALE, 1), `${calls} calls`);
  stillWorks();
  t.diagnostic(`${calls} calls, seed ${SEED}: ${JSON.stringify(tally)}`);
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
