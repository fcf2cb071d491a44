'use strict';
// Property tests of the v3 exports (fast-check): encryptV3, encryptBytesV3, decryptV3,
// decryptBytesV3, tokenFormat and the KeysealKey v3 methods get arbitrary JS values (hostile
// keys, data, versions, contexts: proxies, getters, revoked proxies, lone surrogates) under
// misbehaving hosts. Each call ends in a result that node:crypto, reading the documented
// layout, agrees with, or in a KeysealError with the code the specification names.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const nodeCrypto = require('node:crypto');
const {
  k, fc, SEED, SCALE, runs, stats, tally, readable, keyOf, isText, fatalUtf8, outcome, expectCode,
  withHost, shapes, KEYS, dataBytesArb, freedHandle, hostileArb, anyStringArb, textArb, keyArgArb,
  dataArgArb, textArgArb, hostArb, call,
} = require('./props-common.cjs');

// ---- The specification of v3 tokens, written against node:crypto ----------------------------

const MAX_PARTS = 65536;
const V3_RE = /^v3:[A-Za-z0-9_-]*={0,2}$/;
const pad = (s) => `${s}${'='.repeat((4 - (s.length % 4)) % 4)}`;

/** The parts a call must read from a context argument, or null when it is malformed. */
function contextOf(v) {
  if (v === undefined || v === null) return [];
  let isArray;
  try {
    isArray = Array.isArray(v);
  } catch {
    return null; // a revoked Proxy
  }
  if (!isArray) return null;
  let len;
  try {
    len = Reflect.get(v, 'length');
  } catch {
    return null;
  }
  if (typeof len !== 'number' || !Number.isInteger(len) || len < 0 || len > MAX_PARTS) return null;
  const parts = [];
  for (let i = 0; i < len; i++) {
    let p;
    try {
      p = Reflect.get(v, i);
    } catch {
      return null;
    }
    if (typeof p === 'string') {
      if (!p.isWellFormed()) return null;
      parts.push(Buffer.from(p, 'utf8'));
    } else {
      const b = readable(p);
      if (!b) return null;
      parts.push(Buffer.from(b));
    }
  }
  return parts;
}

const versionOk = (v) => typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 0xffffffff;

function aad(version, parts) {
  const head = Buffer.alloc(9);
  head[0] = 3;
  head.writeUInt32BE(version, 1);
  head.writeUInt32BE(parts.length, 5);
  const chunks = [head];
  for (const p of parts) {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(p.length);
    chunks.push(len, p);
  }
  return Buffer.concat(chunks);
}

function nodeEncryptV3(bytes, key, version, parts, iv) {
  const c = nodeCrypto.createCipheriv('aes-256-gcm', key, iv);
  c.setAAD(aad(version, parts));
  const sealed = Buffer.concat([c.update(bytes), c.final(), c.getAuthTag()]);
  return `v3:${pad(Buffer.concat([aad(version, []).subarray(0, 5), iv, sealed]).toString('base64url'))}`;
}

/** node:crypto's verdict on a v3 token: `{ plain }`, or `{ code }` as the layout says. */
function nodeDecryptV3(token, key, parts) {
  if (!token.startsWith('v3:')) return { code: 'malformed' };
  const body = token.slice(3);
  if (body.length % 4 !== 0 || !/^[A-Za-z0-9_-]*={0,2}$/.test(body)) return { code: 'malformed' };
  const raw = Buffer.from(body, 'base64url');
  if (pad(raw.toString('base64url')) !== body) return { code: 'malformed' }; // not canonical
  if (raw.length < 33 || raw[0] !== 3 || raw.readUInt32BE(1) === 0) return { code: 'malformed' };
  try {
    const d = nodeCrypto.createDecipheriv('aes-256-gcm', key, raw.subarray(5, 17));
    d.setAAD(aad(raw.readUInt32BE(1), parts));
    d.setAuthTag(raw.subarray(raw.length - 16));
    return { plain: new Uint8Array(Buffer.concat([d.update(raw.subarray(17, raw.length - 16)), d.final()])) };
  } catch {
    return { code: 'authentication' };
  }
}

/** What tokenFormat must answer: an object, or the code it throws. */
function formatOf(t) {
  if (typeof t !== 'string') return 'malformed';
  if (t.startsWith('v2:')) return { format: 'v2' };
  if (!t.startsWith('v3:')) return 'malformed';
  const head = t.slice(3, 11);
  if (!/^[A-Za-z0-9_-]{8}$/.test(head)) return 'malformed';
  const h = Buffer.from(head, 'base64url');
  if (h[0] !== 3 || h.readUInt32BE(1) === 0) return 'malformed';
  return { format: 'v3', keyVersion: h.readUInt32BE(1) };
}

function checkTokenV3(out, bytes, key, version, parts, randomnessMayFail) {
  if (!out.ok && randomnessMayFail && out.code === 'randomness') return;
  assert.ok(out.ok, `expected a token, got ${out.code}`);
  assert.match(out.value, V3_RE);
  assert.equal(out.value.length, 3 + 4 * Math.ceil((bytes.length + 33) / 3));
  assert.deepEqual(formatOf(out.value), { format: 'v3', keyVersion: version });
  assert.deepEqual(nodeDecryptV3(out.value, key, parts).plain, new Uint8Array(bytes));
}

function checkDecryptV3(out, token, key, parts, asText) {
  if (typeof token !== 'string') return expectCode(out, 'malformed');
  const want = nodeDecryptV3(token, key, parts);
  if (want.code) return expectCode(out, want.code);
  if (!asText) {
    assert.ok(out.ok, `expected the plaintext, got ${out.code}`);
    return assert.deepEqual(out.value, want.plain);
  }
  let text = null;
  try { text = fatalUtf8.decode(want.plain); } catch { /* not UTF-8 */ }
  if (text === null) return expectCode(out, 'not_utf8');
  assert.ok(out.ok, `expected the plaintext, got ${out.code}`);
  assert.equal(out.value, text);
}

// ---- Arbitraries ----------------------------------------------------------------------------

const versionArb = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(1, 2, 255, 256, 65536, 0xffffffff) },
  { weight: 3, arbitrary: fc.integer({ min: 1, max: 0xffffffff }) },
  { weight: 1, arbitrary: fc.constantFrom(0, -1, 1.5, NaN, Infinity, 2 ** 32, '1', 1n, null, undefined, {}, [1]) },
);

/** A few fixed contexts, so that tokens and the context given sometimes match. */
const CONTEXTS = [[], [''], ['a:b', 'c'], ['a', 'b:c'], ['users', '42', 'api_token'],
  ['users', '43', 'api_token']];
const partArb = fc.oneof(
  { weight: 8, arbitrary: anyStringArb.filter((p) => p.isWellFormed()) },
  { weight: 1, arbitrary: anyStringArb },
  { weight: 6, arbitrary: shapes(dataBytesArb) },
  { weight: 1, arbitrary: hostileArb },
);
/** A context made only when the call runs: fast-check cannot hold a revoked Proxy itself. */
class Late {
  constructor(name, make) {
    this.name = name;
    this.make = make;
  }

  [fc.toStringMethod]() {
    return this.name;
  }
}
const made = (v) => (v === revoked ? v.make() : v); // identity: `instanceof` runs Proxy traps
const revoked = new Late('<revoked Proxy>', () => {
  const r = Proxy.revocable([], {});
  r.revoke();
  return r.proxy;
});
const contextArb = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(undefined, null, ...CONTEXTS) },
  { weight: 4, arbitrary: fc.array(partArb, { maxLength: 5 }) },
  { weight: 1, arbitrary: fc.array(partArb, { maxLength: 3 }).map((a) => new Proxy(a, {})) },
  { weight: 1, arbitrary: fc.constant(revoked) },
  { weight: 1, arbitrary: fc.constant(null).map(() => new Proxy(['a'], { get() { throw new Error('trap'); } })) },
  { weight: 1, arbitrary: fc.constant(null).map(() => {
    const a = ['a', 'b'];
    Object.defineProperty(a, 1, { get() { throw new Error('getter'); } });
    return a;
  }) },
  { weight: 1, arbitrary: fc.oneof(hostileArb, anyStringArb) },
);

/**
 * v3 tokens made by node:crypto with one of KEYS (index from `keyIndexArb`) and one of CONTEXTS,
 * then sometimes damaged or respelled: `{ t, ki, ci }`, so a call can be given the right key and
 * context.
 */
const madeTokenArb = (keyIndexArb) => fc.tuple(keyIndexArb, fc.oneof(dataBytesArb, textArb.map((s) => Buffer.from(s))),
    fc.constantFrom(1, 2, 7, 0xffffffff), fc.nat(CONTEXTS.length - 1), fc.uint8Array({ minLength: 12, maxLength: 12 }),
    fc.nat(), fc.constantFrom('as-is', 'as-is', 'as-is', 'as-is', 'as-is', 'as-is', 'flip', 'cut', 'unprefixed', 'v2-prefix', 'standard', 'unpadded',
      'junk', 'version', 'version-0', 'format'),
  ).map(([ki, bytes, version, ci, iv, at, how]) => {
    const parts = CONTEXTS[ci].map((p) => Buffer.from(p));
    const t = nodeEncryptV3(Buffer.from(bytes), KEYS[ki], version, parts, Buffer.from(iv));
    const i = 3 + (at % (t.length - 3));
    const raw = Buffer.from(t.slice(3), 'base64url');
    const respell = (b) => `v3:${pad(b.toString('base64url'))}`;
    switch (how) {
      case 'flip': return { t: t.slice(0, i) + (t[i] === 'A' ? 'B' : 'A') + t.slice(i + 1), ki, ci };
      case 'cut': return { t: t.slice(0, i), ki, ci };
      case 'unprefixed': return { t: t.slice(3), ki, ci };
      case 'v2-prefix': return { t: `v2:${t.slice(3)}`, ki, ci };
      case 'standard': return { t: t.replace(/-/g, '+').replace(/_/g, '/'), ki, ci };
      case 'unpadded': return { t: t.replace(/=+$/, ''), ki, ci };
      case 'junk': return { t: t.slice(0, i) + '\uD800 %' + t.slice(i), ki, ci };
      case 'version': raw.writeUInt32BE((version % 0xffffffff) + 1, 1); return { t: respell(raw), ki, ci };
      case 'version-0': raw.writeUInt32BE(0, 1); return { t: respell(raw), ki, ci };
      case 'format': raw[0] = at % 256; return { t: respell(raw), ki, ci };
      default: return { t, ki, ci };
    }
  });
/** v3 tokens and near-tokens. */
const tokenV3Arb = fc.oneof(
  { weight: 4, arbitrary: madeTokenArb(fc.nat(KEYS.length - 1)).map(({ t }) => t) },
  { weight: 1, arbitrary: anyStringArb.map((s) => `v3:${s}`) },
  { weight: 1, arbitrary: fc.string({ unit: fc.constantFrom(...'AwE-_=') }).map((s) => `v3:${s}`) },
);
const tokenArgArb = fc.oneof({ weight: 5, arbitrary: tokenV3Arb }, { weight: 1, arbitrary: hostileArb },
  { weight: 1, arbitrary: textArb });
const contextFor = fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...CONTEXTS) }, { weight: 1, arbitrary: contextArb });
/** Keys for the functions: mostly one of KEYS (tokens are made with them), else any argument. */
const fnKeyArb = fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...KEYS) }, { weight: 1, arbitrary: keyArgArb });

// ---- The calls ------------------------------------------------------------------------------

const handles = KEYS.map((key) => new k.KeysealKey(key));

/** encryptV3 / encryptBytesV3 (function or method), checked against the specification. */
function encryptCase(name, text, hi) {
  const plainArb = text ? textArgArb : dataArgArb;
  const keyArb = hi === undefined ? fnKeyArb : fc.constant(null);
  return fc.tuple(plainArb, keyArb, versionArb, contextArb).map(([p, key, version, late]) => call(name, [p, key, version, late], (host) => {
    const ctx = made(late);
    const h = hi === undefined ? null : hi === KEYS.length ? freedHandle() : handles[hi];
    const kb = h ? (hi === KEYS.length ? null : KEYS[hi]) : keyOf(key);
    const method = text ? 'encryptV3' : 'encryptBytesV3';
    const out = withHost(host, () => outcome(() => (h ? h[method](p, version, ctx) : k[method](p, key, version, ctx))));
    if (!kb) return expectCode(out, 'bad_key');
    if (!versionOk(version)) return expectCode(out, 'invalid_argument');
    const parts = contextOf(ctx);
    if (!parts) return expectCode(out, 'malformed');
    const bytes = text ? (isText(p) ? Buffer.from(p) : null) : readable(p);
    if (!bytes) return expectCode(out, 'malformed');
    checkTokenV3(out, bytes, kb, version, parts, host !== 'normal');
  }));
}

function decryptCase(name, text, hi) {
  const keyArb = hi === undefined ? fnKeyArb : fc.constant(null);
  // Mostly a token with the key and context it was made with, else anything.
  const matched = madeTokenArb(hi === undefined || hi === KEYS.length ? fc.nat(KEYS.length - 1) : fc.constant(hi))
    .map(({ t, ki, ci }) => [t, hi === undefined ? KEYS[ki] : null, CONTEXTS[ci]]);
  const argsArb = fc.oneof({ weight: 2, arbitrary: matched },
    { weight: 1, arbitrary: fc.tuple(tokenArgArb, keyArb, contextFor) });
  return argsArb.map(([t, key, late]) => call(name, [t, key, late], (host) => {
    const ctx = made(late);
    const h = hi === undefined ? null : hi === KEYS.length ? freedHandle() : handles[hi];
    const kb = h ? (hi === KEYS.length ? null : KEYS[hi]) : keyOf(key);
    const method = text ? 'decryptV3' : 'decryptBytesV3';
    const out = withHost(host, () => outcome(() => (h ? h[method](t, ctx) : k[method](t, key, ctx))));
    if (!kb) return expectCode(out, 'bad_key');
    const parts = contextOf(ctx);
    if (!parts) return expectCode(out, 'malformed');
    checkDecryptV3(out, t, kb, parts, text);
  }));
}

const handleIndex = fc.nat(KEYS.length); // KEYS.length: a freed handle
const CALLS = {
  encryptV3: encryptCase('encryptV3', true),
  encryptBytesV3: encryptCase('encryptBytesV3', false),
  decryptV3: decryptCase('decryptV3', true),
  decryptBytesV3: decryptCase('decryptBytesV3', false),
  'KeysealKey.encryptV3': handleIndex.chain((hi) => encryptCase(`handles[${hi}].encryptV3`, true, hi)),
  'KeysealKey.encryptBytesV3': handleIndex.chain((hi) => encryptCase(`handles[${hi}].encryptBytesV3`, false, hi)),
  'KeysealKey.decryptV3': handleIndex.chain((hi) => decryptCase(`handles[${hi}].decryptV3`, true, hi)),
  'KeysealKey.decryptBytesV3': handleIndex.chain((hi) => decryptCase(`handles[${hi}].decryptBytesV3`, false, hi)),
  tokenFormat: fc.oneof(tokenArgArb, textArgArb).map((t) => call('tokenFormat', [t], (host) => {
    const out = withHost(host, () => outcome(() => k.tokenFormat(t)));
    const want = formatOf(t);
    if (typeof want === 'string') return expectCode(out, want);
    assert.ok(out.ok, `expected a format, got ${out.code}`);
    assert.deepEqual({ ...out.value }, want);
  })),
};

function stillWorks() {
  const key = KEYS[0];
  assert.equal(k.decryptV3(k.encryptV3('still works', key, 3, ['r']), key, ['r']), 'still works');
  for (const h of handles) assert.equal(h.decryptV3(h.encryptV3('h', 1)), 'h');
}

test('every v3 export, arbitrary arguments and hosts: what node:crypto reads from the layout, or the specified KeysealError', (t) => {
  const names = Object.keys(CALLS);
  const callArb = fc.oneof(...names.map((name) => CALLS[name]));
  fc.assert(fc.property(callArb, hostArb, (run, host) => {
    run(host);
  }), runs(30_000));
  assert.ok(stats.calls >= 30_000 * Math.min(SCALE, 1), `${stats.calls} calls`);
  stillWorks();
  t.diagnostic(`${stats.calls} calls, seed ${SEED}: ${JSON.stringify(tally)}`);
});

test('v3 round trips: any bytes, version and context (strings and byte parts) through functions and handles', () => {
  const goodContext = fc.array(fc.oneof(anyStringArb.filter((s) => s.isWellFormed()), shapes(dataBytesArb)),
    { maxLength: 6 });
  fc.assert(fc.property(fc.nat(KEYS.length - 1), shapes(dataBytesArb), fc.integer({ min: 1, max: 0xffffffff }), goodContext,
    (ki, data, version, ctx) => {
      const key = KEYS[ki];
      const bytes = readable(data);
      const token = k.encryptBytesV3(data, key, version, ctx);
      assert.deepEqual(k.tokenFormat(token), { format: 'v3', keyVersion: version });
      assert.deepEqual(handles[ki].decryptBytesV3(token, ctx), bytes);
      assert.deepEqual(nodeDecryptV3(token, key, contextOf(ctx)).plain, bytes);
      // The same parts as bytes: the same context.
      assert.deepEqual(k.decryptBytesV3(token, key, contextOf(ctx).map((p) => new Uint8Array(p))), bytes);
    }), runs(2000));
});

test('v3: two different contexts never open each other\'s tokens', () => {
  const ctxArb = fc.array(fc.oneof(fc.string({ maxLength: 4 }), fc.uint8Array({ maxLength: 4 })), { maxLength: 4 });
  fc.assert(fc.property(ctxArb, ctxArb, (a, b) => {
    const pa = contextOf(a);
    const pb = contextOf(b);
    fc.pre(!(pa.length === pb.length && pa.every((p, i) => p.equals(pb[i]))));
    const token = k.encryptV3('s', KEYS[0], 1, a);
    expectCode(outcome(() => k.decryptV3(token, KEYS[0], b)), 'authentication');
  }), runs(3000));
});
