'use strict';
// Hostile arguments and a hostile host: every call ends in a result or a KeysealError, and the
// module keeps working afterwards. Runs in its own process (node --test isolates files), as it
// patches globalThis.crypto.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const k = require('keyseal');

const CODES = new Set(['malformed', 'authentication', 'bad_key', 'not_utf8', 'randomness',
  'invalid_argument']);
const key32 = (fill) => new Uint8Array(32).fill(fill);

/** Runs `fn`; returns the KeysealError code it threw, or undefined if it returned. */
function codeOf(fn) {
  try {
    fn();
    return undefined;
  } catch (e) {
    assert.ok(e instanceof Error, `an Error, got ${e}`);
    assert.equal(e.name, 'KeysealError', `a KeysealError, got ${e.name}: ${e.message}`);
    assert.ok(CODES.has(e.code), `a documented code, got ${e.code}`);
    return e.code;
  }
}

function throwsCode(fn, code) {
  assert.equal(codeOf(fn), code);
}

/** The module still encrypts, decrypts and hashes correctly. */
function stillWorks() {
  const key = key32(77);
  assert.equal(k.decrypt(k.encrypt('still works', key), key), 'still works');
  assert.deepEqual(k.decryptBytes(k.encryptBytes(new Uint8Array([1, 2]), key), key),
    new Uint8Array([1, 2]));
  assert.equal(k.hash(''), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  const h = new k.KeysealKey(key);
  assert.equal(h.decrypt(h.encrypt('x')), 'x');
  assert.equal(h.decryptV3(h.encryptV3('y', 2, ['c']), ['c']), 'y');
  h.free();
  assert.equal(k.decryptV3(k.encryptV3('v3 works', key, 1, ['r', '1']), key, ['r', '1']), 'v3 works');
}

/** A Uint8Array whose `length` property says something else on every read. */
function shiftingLength(n) {
  const a = new Uint8Array(n);
  let reads = 0;
  Object.defineProperty(a, 'length', { get: () => n + (reads++ % 2) });
  return a;
}

function detached(n) {
  const buf = new ArrayBuffer(n);
  const view = new Uint8Array(buf);
  structuredClone(buf, { transfer: [buf] });
  return view;
}

/** Byte arguments that are refused: they once threw a plain TypeError and leaked slots. */
const hostileBytes = () => [
  new Proxy(key32(1), {}),
  new Proxy(key32(1), { getPrototypeOf() { throw new Error('trap'); } }),
  new Proxy(key32(1), { get() { throw new Error('trap'); } }),
  detached(32),
  detached(0),
];

test('a Uint8Array whose length property changes is read at its real length (once trapped)', () => {
  const key = shiftingLength(32).fill(7);
  const token = k.encrypt('lying length', key);
  assert.equal(k.decrypt(token, key32(7)), 'lying length');
  assert.equal(k.decrypt(token, key), 'lying length');
  const h = new k.KeysealKey(key);
  assert.deepEqual(h.exportKey(), key32(7));
  h.free();
  assert.deepEqual(k.derivePoolKey(key), k.derivePoolKey(key32(7)));
  for (const short of [shiftingLength(31), shiftingLength(0)]) {
    throwsCode(() => k.encrypt('x', short), 'bad_key');
    throwsCode(() => new k.KeysealKey(short), 'bad_key');
  }
  const data = shiftingLength(5).fill(9);
  assert.deepEqual(k.decryptBytes(k.encryptBytes(data, key32(1)), key32(1)),
    new Uint8Array(5).fill(9));
  stillWorks();
});

test('Proxy and detached arguments end in KeysealError (once threw a plain TypeError)', () => {
  const token = k.encrypt('x', key32(1));
  for (const bad of hostileBytes()) {
    throwsCode(() => k.encrypt('x', bad), 'bad_key');
    throwsCode(() => k.decrypt(token, bad), 'bad_key');
    throwsCode(() => k.encryptBytes(new Uint8Array(1), bad), 'bad_key');
    throwsCode(() => k.decryptBytes(token, bad), 'bad_key');
    throwsCode(() => k.derivePoolKey(bad), 'bad_key');
    throwsCode(() => new k.KeysealKey(bad), 'bad_key');
    throwsCode(() => k.encryptBytes(bad, key32(1)), 'malformed');
    const h = new k.KeysealKey(key32(1));
    throwsCode(() => h.encryptBytes(bad), 'malformed');
    h.free();
    // The same arguments to the v3 functions, and as context parts.
    throwsCode(() => k.encryptV3('x', bad, 1), 'bad_key');
    throwsCode(() => k.decryptV3('v3:x', bad), 'bad_key');
    throwsCode(() => k.encryptBytesV3(bad, key32(1), 1), 'malformed');
    throwsCode(() => k.encryptV3('x', key32(1), 1, [bad]), 'malformed');
    throwsCode(() => k.decryptBytesV3('v3:x', key32(1), ['ok', bad]), 'malformed');
  }
  stillWorks();
});

test('resizable and growable buffers: read as they are at the call', () => {
  const rab = new ArrayBuffer(32, { maxByteLength: 64 });
  const tracking = new Uint8Array(rab);
  tracking.fill(5);
  const token = k.encrypt('r', tracking);
  assert.equal(k.decrypt(token, key32(5)), 'r');
  rab.resize(40);
  throwsCode(() => k.decrypt(token, tracking), 'bad_key');
  const fixed = new Uint8Array(rab, 0, 32);
  rab.resize(16); // `fixed` is now out of bounds
  throwsCode(() => k.decrypt(token, fixed), 'bad_key');
  throwsCode(() => k.encryptBytes(fixed, key32(5)), 'malformed');
  const shared = new Uint8Array(new SharedArrayBuffer(32)).fill(5);
  assert.equal(k.decrypt(token, shared), 'r');
  stillWorks();
});

test('a million hostile calls leave the module working (slots once leaked after ~500)', () => {
  const started = Date.now();
  const badData = hostileBytes();
  const badKeys = [...badData, shiftingLength(31), 'k'.repeat(32), null];
  const key = key32(3);
  const h = new k.KeysealKey(key);
  const freed = new k.KeysealKey(key);
  freed.free();
  for (let i = 0; i < 1_000_000; i++) {
    const b = badKeys[i % badKeys.length];
    const d = badData[i % badData.length];
    try {
      switch (i % 8) {
        case 0: k.encrypt('x', b); break;
        case 1: k.encryptBytes(i & 1 ? d : 'text', key); break;
        case 2: h.encryptBytes(i & 1 ? d : 42); break;
        case 3: freed.encrypt('x'); break;
        case 4: k.encryptV3('x', key, 1, [d]); break;
        case 5: h.decryptV3('v3:AwAAAAE', i & 1 ? d : [d]); break;
        case 6: k.encryptBytesV3(d, key, i & 1 ? 0 : 1); break;
        default: new k.KeysealKey(b);
      }
      assert.fail('accepted a hostile argument');
    } catch (e) {
      if (e.name !== 'KeysealError') throw e;
    }
  }
  h.free();
  stillWorks();
  const seconds = (Date.now() - started) / 1000;
  assert.ok(seconds < 30, `took ${seconds} s`);
});

test('a freed KeysealKey throws KeysealError bad_key (was "null pointer passed to rust")', () => {
  const h = new k.KeysealKey(key32(5));
  const token = h.encrypt('before');
  h.free();
  h.free(); // twice is harmless
  throwsCode(() => h.encrypt('x'), 'bad_key');
  throwsCode(() => h.decrypt(token), 'bad_key');
  throwsCode(() => h.encryptBytes(new Uint8Array(1)), 'bad_key');
  throwsCode(() => h.decryptBytes(token), 'bad_key');
  throwsCode(() => h.exportKey(), 'bad_key');
  throwsCode(() => h.encryptV3('x', 1), 'bad_key');
  throwsCode(() => h.decryptV3(token), 'bad_key');
  throwsCode(() => h.encryptBytesV3(new Uint8Array(1), 1), 'bad_key');
  throwsCode(() => h.decryptBytesV3(token), 'bad_key');
  const g = k.KeysealKey.generate();
  g[Symbol.dispose]();
  throwsCode(() => g.exportKey(), 'bad_key');
  stillWorks();
});

/** Replaces crypto.getRandomValues for the duration of `fn`. */
function withRandom(patched, fn) {
  const desc = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(crypto), 'getRandomValues');
  const orig = crypto.getRandomValues;
  crypto.getRandomValues = patched(orig.bind(crypto));
  try {
    return fn();
  } finally {
    delete crypto.getRandomValues;
    assert.equal(crypto.getRandomValues, desc.value);
  }
}

/** Encrypts until the nonce pool needs more randomness (at most one pool's worth of calls). */
function drainPool(key) {
  const out = [];
  for (let i = 0; i < 400; i++) out.push(codeOf(() => k.encrypt('d', key)));
  return out;
}

test('getRandomValues throwing: randomness, and the pool stays usable', () => {
  const key = key32(8);
  const codes = withRandom(() => () => { throw new Error('no entropy today'); }, () => drainPool(key));
  assert.ok(codes.includes('randomness'), 'the refill failed');
  throwsCode(() => withRandom(() => () => { throw new Error('x'); }, () => k.generateKey()),
    'randomness');
  stillWorks();
  const seen = new Set();
  for (let i = 0; i < 1000; i++) seen.add(k.encrypt('n', key).slice(0, 19));
  assert.equal(seen.size, 1000, 'no nonce handed out twice');
});

test('getRandomValues filling nothing: randomness, never all-zero nonces or keys', () => {
  const key = key32(8);
  const codes = withRandom(() => (a) => a, () => drainPool(key));
  assert.ok(codes.includes('randomness'));
  throwsCode(() => withRandom(() => (a) => a, () => k.generateKey()), 'randomness');
  throwsCode(() => withRandom(() => (a) => a, () => k.KeysealKey.generate()), 'randomness');
  stillWorks();
});

test('a crypto getter that throws on first use does not leave the pool borrowed', () => {
  const realCrypto = globalThis.crypto;
  Object.defineProperty(globalThis, 'crypto', {
    configurable: true, get() { throw new Error('no crypto here'); },
  });
  try {
    const key = key32(9);
    const codes = drainPool(key);
    assert.ok(codes.includes('randomness'));
    throwsCode(() => k.generateKey(), 'randomness');
  } finally {
    Object.defineProperty(globalThis, 'crypto', {
      configurable: true, enumerable: true, writable: true, value: realCrypto,
    });
  }
  stillWorks();
});

test('encrypt re-entered from getRandomValues: randomness inside, no trap, nonces unique', () => {
  const key = key32(10);
  const inner = [];
  const seen = new Set();
  let depth = 0;
  withRandom((orig) => (a) => {
    if (depth === 0) {
      depth++;
      try {
        inner.push(codeOf(() => seen.add(k.encrypt('inner', key).slice(0, 19))));
        inner.push(codeOf(() => k.generateKey()));
      } finally {
        depth--;
      }
    }
    return orig(a);
  }, () => {
    for (let i = 0; i < 800; i++) seen.add(k.encrypt('outer', key).slice(0, 19));
  });
  assert.ok(inner.length >= 2, 'the pool was refilled under the patch');
  assert.ok(inner.every((c) => c === 'randomness' || c === undefined), inner.join());
  assert.ok(inner.includes('randomness'));
  assert.equal(seen.size, 800 + inner.filter((c, i) => i % 2 === 0 && c === undefined).length);
  stillWorks();
});

// wasm-bindgen's class methods pass `this.__wbg_ptr` to Rust, which rejects a null one by
// throwing a plain Error through wasm (leaking a slot) before any keyseal code runs, and
// trusts any other number: the package's glue checks a brand first (bindings/npm/entries.mjs).
test('KeysealKey methods called on another object: KeysealError, and the module keeps working', () => {
  const real = new k.KeysealKey(key32(5));
  const forged = Object.create(k.KeysealKey.prototype);
  forged.__wbg_ptr = real.__wbg_ptr; // a pointer copied from a live key is not a key
  const methods = ['encrypt', 'decrypt', 'encryptBytes', 'decryptBytes', 'exportKey', 'free',
    'encryptV3', 'decryptV3', 'encryptBytesV3', 'decryptBytesV3'];
  for (let i = 0; i < 2000; i++) {
    for (const self of [{}, forged, null, undefined, 42]) {
      const m = methods[i % methods.length];
      throwsCode(() => k.KeysealKey.prototype[m].call(self, 'x'), 'bad_key');
    }
  }
  assert.equal(real.decrypt(real.encrypt('still mine')), 'still mine');
  real.free();
  stillWorks();
});

test('v3: a context whose getters or Proxy traps throw, or that is revoked: malformed, no trap', () => {
  const key = key32(12);
  const revoked = Proxy.revocable([], {});
  revoked.revoke();
  const lengthTrap = new Proxy(['a'], { get(t, p) { if (p === 'length') throw new Error('len'); return t[p]; } });
  const hugeLength = new Proxy([], { get(t, p) { return p === 'length' ? 2 ** 32 - 1 : 'x'; } });
  const nonError = ['a'];
  Object.defineProperty(nonError, 0, { get() { throw Symbol('odd'); } }); // eslint-disable-line no-throw-literal
  for (let i = 0; i < 20_000; i++) {
    for (const ctx of [revoked.proxy, lengthTrap, hugeLength, nonError]) {
      throwsCode(() => k.encryptV3('x', key, 1, ctx), 'malformed');
    }
  }
  // A Proxy of an array that behaves is an array: its parts are read as given.
  const fine = new Proxy(['users', '42'], {});
  assert.equal(k.decryptV3(k.encryptV3('p', key, 1, fine), key, ['users', '42']), 'p');
  stillWorks();
});

test('v3: a context getter that encrypts (re-entering wasm) gets its answer; the outer call too', () => {
  const key = key32(13);
  const inner = [];
  const ctx = [];
  Object.defineProperty(ctx, 0, { get() { inner.push(k.encryptV3('inner', key, 1, ['in'])); return 'out'; } });
  const token = k.encryptV3('outer', key, 1, ctx);
  assert.equal(k.decryptV3(token, key, ['out']), 'outer');
  assert.equal(k.decryptV3(inner[0], key, ['in']), 'inner');
  stillWorks();
});
