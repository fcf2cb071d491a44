'use strict';
// What the property tests of the npm boundary share (props.test.cjs for every export,
// props-v3.test.cjs for the v3 ones): the package, fast-check's seed and scale, the reading of
// arguments a call must make (written without the package), the outcome of a call, hostile
// hosts, and the arbitraries of keys, data, text and hostile values.
// Fixed seed and bounded runs in `make test`; KEYSEAL_FC_SEED and KEYSEAL_FC_SCALE (a factor on
// every run count) explore further.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');
const fc = require('fast-check');
const k = require('keyseal');

const SEED = Number(process.env.KEYSEAL_FC_SEED || 20261124);
const SCALE = Number(process.env.KEYSEAL_FC_SCALE || 1);
const runs = (n) => ({ seed: SEED, numRuns: Math.max(1, Math.round(n * SCALE)) });

const VECTORS = process.env.KEYSEAL_VECTORS ||
  path.join(__dirname, '..', '..', 'tests', 'vectors', 'python', 'python-interop.json');
const vectors = JSON.parse(fs.readFileSync(VECTORS, 'utf8'));
const b64 = (s) => new Uint8Array(Buffer.from(s, 'base64'));

const CODES = new Set(['malformed', 'authentication', 'bad_key', 'not_utf8', 'randomness',
  'invalid_argument']);
/** How many calls were made (`stats.calls`), for the main properties to report. */
const stats = { calls: 0 };
/** How the calls ended (result or code), reported by the main property. */
const tally = {};

// ---- How a call must read its arguments (written without the package) ----------------------

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

/** Runs a call: `{ ok, value }` or `{ code }` of the KeysealError it threw (anything else fails). */
function outcome(fn) {
  stats.calls++;
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

const keyArgArb = fc.oneof({ weight: 3, arbitrary: shapes(keyBytesArb) },
  { weight: 1, arbitrary: shapes(fc.uint8Array({ maxLength: 40 })) }, { weight: 2, arbitrary: hostileArb });
const dataArgArb = fc.oneof({ weight: 3, arbitrary: shapes(dataBytesArb) }, { weight: 1, arbitrary: hostileArb },
  { weight: 1, arbitrary: textArb });
const textArgArb = fc.oneof({ weight: 4, arbitrary: textArb }, { weight: 1, arbitrary: hostileArb },
  { weight: 1, arbitrary: shapes(dataBytesArb) });
const hostArb = fc.oneof({ weight: 6, arbitrary: fc.constant('normal') }, fc.constantFrom(...HOSTS));

/** A call's runner, shown in a counterexample as the export and its arguments. */
function call(name, args, run) {
  run[fc.toStringMethod] = () => `${name}(${args.map((a) => fc.stringify(a)).join(', ')})`;
  return run;
}

module.exports = {
  k, fc, SEED, SCALE, runs, vectors, b64, CODES, stats, tally, readable, keyOf, isText, fatalUtf8,
  outcome, expectCode, HOSTS, withHost, shapes, KEYS, keyBytesArb, dataBytesArb, detached,
  freedHandle, hostileArb, anyStringArb, textArb, keyArgArb, dataArgArb, textArgArb, hostArb, call,
};
