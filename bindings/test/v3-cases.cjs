'use strict';
// The `v3:` token cases, run against require('keyseal') and import 'keyseal' as cases.cjs is:
// the vectors made by pyca/cryptography from the documented layout (tests/vectors/v3), tokens
// checked against node:crypto, contexts, header edits, and typed errors for bad arguments.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const nodeCrypto = require('node:crypto');

// Next to the Python vectors (KEYSEAL_VECTORS, set by scripts/test-npm.sh) or in the repo.
const PY_VECTORS = process.env.KEYSEAL_VECTORS ||
  path.join(__dirname, '..', '..', 'tests', 'vectors', 'python', 'python-interop.json');
const V3_VECTORS = path.join(path.dirname(PY_VECTORS), '..', 'v3', 'v3-vectors.json');
const vectors = JSON.parse(fs.readFileSync(V3_VECTORS, 'utf8'));

const b64 = (s) => new Uint8Array(Buffer.from(s, 'base64'));
const hex = (s) => new Uint8Array(Buffer.from(s, 'hex'));
const key32 = (fill) => new Uint8Array(32).fill(fill);
const V3_RE = /^v3:[A-Za-z0-9_-]*={0,2}$/;

function throwsCode(fn, code) {
  assert.throws(fn, (e) => {
    assert.ok(e instanceof Error, 'an Error');
    assert.equal(e.name, 'KeysealError');
    assert.equal(e.code, code, `code of: ${e.message}`);
    return true;
  });
}

/** The documented layout, with node:crypto: the reader the package must agree with. */
function contextEncoding(parts) {
  const chunks = [Buffer.alloc(4)];
  chunks[0].writeUInt32BE(parts.length);
  for (const p of parts) {
    const b = typeof p === 'string' ? Buffer.from(p, 'utf8') : Buffer.from(p);
    const len = Buffer.alloc(4);
    len.writeUInt32BE(b.length);
    chunks.push(len, b);
  }
  return Buffer.concat(chunks);
}

function nodeDecryptV3(token, key, parts = []) {
  const raw = Buffer.from(token.slice(3), 'base64url');
  const header = raw.subarray(0, 5);
  const d = nodeCrypto.createDecipheriv('aes-256-gcm', key, raw.subarray(5, 17));
  d.setAAD(Buffer.concat([header, contextEncoding(parts)]));
  d.setAuthTag(raw.subarray(raw.length - 16));
  return {
    version: header.readUInt32BE(1),
    plain: new Uint8Array(Buffer.concat([d.update(raw.subarray(17, raw.length - 16)), d.final()])),
  };
}

function run(k, label) {
  const t = (name, fn) => test(`${label}: v3: ${name}`, fn);

  t('exports the v3 API', () => {
    for (const f of ['encryptV3', 'encryptBytesV3', 'decryptV3', 'decryptBytesV3', 'tokenFormat']) {
      assert.equal(typeof k[f], 'function', f);
    }
  });

  t('every vector (made by pyca/cryptography) decrypts under its version and context', () => {
    assert.equal(vectors.tokens.length, 25);
    for (const v of vectors.tokens) {
      const key = b64(v.key_b64);
      const parts = v.context_hex.map(hex);
      assert.deepEqual(k.tokenFormat(v.token), { format: 'v3', keyVersion: v.key_version });
      assert.ok(k.isEncrypted(v.token));
      assert.deepEqual(k.decryptBytesV3(v.token, key, parts), hex(v.plaintext_hex));
      if (v.plaintext === null) {
        throwsCode(() => k.decryptV3(v.token, key, parts), 'not_utf8');
      } else {
        assert.equal(k.decryptV3(v.token, key, parts), v.plaintext);
        // Parts that are UTF-8 may be given as strings: the same bytes.
        const asText = parts.map((p) => {
          try { return new TextDecoder('utf-8', { fatal: true }).decode(p); } catch { return p; }
        });
        assert.equal(k.decryptV3(v.token, key, asText), v.plaintext);
      }
      const h = new k.KeysealKey(key);
      try {
        assert.deepEqual(h.decryptBytesV3(v.token, parts), hex(v.plaintext_hex));
      } finally {
        h.free();
      }
    }
  });

  t('every rejected vector throws its code', () => {
    assert.equal(vectors.rejected.length, 23);
    for (const v of vectors.rejected) {
      const key = b64(v.key_b64);
      const parts = v.context_hex.map(hex);
      throwsCode(() => k.decryptBytesV3(v.token, key, parts), v.code);
      if (v.code === 'authentication') assert.equal(k.tokenFormat(v.token).format, 'v3', v.why);
    }
  });

  t('tokens read by node:crypto from the layout; version in the header', () => {
    const key = k.generateKey();
    const row = ['users', '42', new Uint8Array([0, 255])];
    for (const version of [1, 2, 255, 65536, 4294967295]) {
      for (const text of ['', 'a', 'clé 🔑', 'x'.repeat(1000)]) {
        const token = k.encryptV3(text, key, version, row);
        assert.match(token, V3_RE);
        const bytes = Buffer.from(text);
        assert.equal(token.length, 3 + 4 * Math.ceil((bytes.length + 33) / 3));
        const got = nodeDecryptV3(token, key, row);
        assert.equal(got.version, version);
        assert.deepEqual(got.plain, new Uint8Array(bytes));
        assert.deepEqual(k.tokenFormat(token), { format: 'v3', keyVersion: version });
      }
      const data = new Uint8Array([0, 1, 0xfe, 0xff]);
      const token = k.encryptBytesV3(data, key, version);
      assert.deepEqual(nodeDecryptV3(token, key).plain, data);
      assert.deepEqual(k.decryptBytesV3(token, key), data);
      assert.deepEqual(k.decryptBytesV3(token, key, []), data);
      assert.deepEqual(k.decryptBytesV3(token, key, null), data);
    }
    assert.deepEqual(k.tokenFormat(k.encrypt('x', key)), { format: 'v2' });
  });

  t('a token moved to another row, or with the context split differently, fails', () => {
    const key = key32(3);
    const token = k.encryptV3('sk-1', key, 1, ['users', '42', 'api_token']);
    for (const other of [['users', '43', 'api_token'], ['users', '42', 'refresh'], ['users', '4', '2api_token'],
      [], undefined, ['users', '42', 'api_token', '']]) {
      throwsCode(() => k.decryptV3(token, key, other), 'authentication');
    }
    const abc = k.encryptV3('s', key, 1, ['a:b', 'c']);
    throwsCode(() => k.decryptV3(abc, key, ['a', 'b:c']), 'authentication');
    assert.equal(k.decryptV3(abc, key, [new Uint8Array(Buffer.from('a:b')), 'c']), 's');
    const none = k.encryptV3('s', key, 1);
    throwsCode(() => k.decryptV3(none, key, ['']), 'authentication');
    throwsCode(() => k.decryptV3(token, key32(4), ['users', '42', 'api_token']), 'authentication');
  });

  t('header edits: another version is authentication, version 0 and format bytes malformed', () => {
    const key = key32(5);
    const raw = Buffer.from(k.encryptV3('secret', key, 5).slice(3), 'base64url');
    const spell = (b) => {
      const s = Buffer.from(b).toString('base64url');
      return `v3:${s}${'='.repeat((4 - (s.length % 4)) % 4)}`;
    };
    for (const [at, value, code] of [[4, 6, 'authentication'], [1, 1, 'authentication'],
      [4, 0, 'malformed'], [0, 2, 'malformed'], [0, 4, 'malformed']]) {
      const b = Buffer.from(raw);
      b[at] = value;
      throwsCode(() => k.decryptV3(spell(b), key), code);
      if (code === 'malformed') throwsCode(() => k.tokenFormat(spell(b)), 'malformed');
    }
    // The v2 functions do not read v3 tokens, nor v3 functions v2 tokens.
    const v3 = k.encryptV3('x', key, 1);
    assert.throws(() => k.decrypt(v3, key), (e) => e.name === 'KeysealError');
    throwsCode(() => k.decryptV3(k.encrypt('x', key), key), 'malformed');
    for (const bad of ['v3:', 'v3:AwAA', 'v3:AwAAAA==', v3.slice(3), v3.replace(/=+$/, ''), `${v3} `,
      `v4:${v3.slice(3)}`, 'plain']) {
      throwsCode(() => k.decryptV3(bad, key), 'malformed');
    }
    throwsCode(() => k.tokenFormat('plain'), 'malformed');
    throwsCode(() => k.tokenFormat(42), 'malformed');
    assert.ok(k.isEncrypted(v3));
    assert.ok(!k.isEncrypted('v4:x'));
  });

  t('bad versions are invalid_argument; bad contexts malformed; never a trap', () => {
    const key = key32(6);
    for (const version of [0, -1, 1.5, NaN, Infinity, 4294967296, '1', 1n, null, undefined, {}]) {
      throwsCode(() => k.encryptV3('x', key, version), 'invalid_argument');
      throwsCode(() => k.encryptBytesV3(new Uint8Array(1), key, version), 'invalid_argument');
    }
    const revoked = Proxy.revocable([], {});
    revoked.revoke();
    const throwing = ['a'];
    Object.defineProperty(throwing, 1, { get() { throw new Error('getter'); }, enumerable: true });
    const long = new Array(65537).fill('');
    for (const ctx of ['users', 42, {}, { length: 1, 0: 'a' }, [1], [null], [undefined], [{}],
      [new Uint16Array(2)], [['nested']], ['\uD800'], revoked.proxy, throwing, long,
      new Proxy(['a'], { get() { throw new Error('trap'); } }), [Symbol('s')]]) {
      throwsCode(() => k.encryptV3('x', key, 1, ctx), 'malformed');
      throwsCode(() => k.decryptV3('v3:AwAAAAE', key, ctx), 'malformed');
    }
    assert.equal(k.decryptV3(k.encryptV3('ok', key, 1, new Array(65536).fill('')), key,
      new Array(65536).fill('')), 'ok');
    // A genuine array from another realm, and one with a stable getter, are read as arrays.
    const getter = [];
    Object.defineProperty(getter, 0, { get: () => 'g', enumerable: true });
    assert.equal(k.decryptV3(k.encryptV3('ok', key, 1, getter), key, ['g']), 'ok');
    throwsCode(() => k.encryptV3('x', new Uint8Array(31), 1), 'bad_key');
    throwsCode(() => k.decryptV3('v3:x', 'key'), 'bad_key');
    throwsCode(() => k.encryptV3(42, key, 1), 'malformed');
    throwsCode(() => k.encryptBytesV3('text', key, 1), 'malformed');
    // The module still works.
    assert.equal(k.decryptV3(k.encryptV3('still', key, 1, ['r']), key, ['r']), 'still');
  });

  t('contexts staged in wasm memory bind as part by part; a Uint8Array context is malformed, not read as glue-encoded parts', () => {
    const key = key32(8);
    // Strings of every UTF-8 width (the glue encodes them itself), bytes of every shape the
    // glue takes, and parts it leaves to wasm (lone surrogate, a getter that throws later).
    const mixed = ['', 'users', 'é', '€', '\u{1F600}', 'a\u{10FFFF}z', new Uint8Array([0, 255]),
      Buffer.from('buf'), new Uint8Array(new SharedArrayBuffer(2))];
    const token = k.encryptV3('ok', key, 1, mixed);
    assert.equal(nodeDecryptV3(token, key, mixed).version, 1, 'node:crypto reads the same AAD');
    assert.equal(k.decryptV3(token, key, mixed.map((p) => (typeof p === 'string'
      ? new Uint8Array(Buffer.from(p, 'utf8')) : new Uint8Array(p)))), 'ok');
    // Only arrays are contexts: a Uint8Array, whatever its bytes (even the encoding the glue
    // used to hand wasm, "ksc", 1, then u32 LE length + bytes), is malformed.
    const wire = (...parts) => {
      const chunks = [Buffer.from([0x6b, 0x73, 0x63, 1])];
      for (const p of parts) {
        const b = Buffer.from(p);
        const len = Buffer.alloc(4);
        len.writeUInt32LE(b.length);
        chunks.push(len, b);
      }
      return new Uint8Array(Buffer.concat(chunks));
    };
    const row = k.encryptV3('row', key, 1, ['users', '42']);
    assert.equal(k.decryptV3(row, key, ['users', '42']), 'row');
    for (const bad of [wire('users', '42'), wire(), new Uint8Array(0), new Uint8Array([1, 2, 3])]) {
      throwsCode(() => k.decryptV3(row, key, bad), 'malformed');
      throwsCode(() => k.encryptV3('x', key, 1, bad), 'malformed');
      const h = new k.KeysealKey(key);
      throwsCode(() => h.decryptV3(row, bad), 'malformed');
      h.free();
    }
    // A lying own length cannot change what is bound.
    const liar = new Uint8Array([1, 2, 3]);
    Object.defineProperty(liar, 'length', { get: () => 1 });
    const t3 = k.encryptV3('l', key, 1, [liar]);
    assert.equal(k.decryptV3(t3, key, [new Uint8Array([1, 2, 3])]), 'l');
  });

  t('a staged context is only ever read by its own call', () => {
    const key = key32(9);
    const a = k.encryptV3('a', key, 1, ['users', '1']);
    // A call refused before it reads its context (bad key, freed handle, bad version) leaves
    // nothing staged for the next call, which passes its context the slow way (a Proxy).
    const freed = new k.KeysealKey(key);
    freed.free();
    for (const refused of [() => k.decryptV3(a, 'no key', ['users', '1']),
      () => freed.decryptV3(a, ['users', '1']), () => k.encryptV3('x', key, 0, ['users', '1']),
      () => k.encryptBytesV3('not bytes', key, 1, ['users', '1'])]) {
      assert.throws(refused, (e) => e.name === 'KeysealError');
      throwsCode(() => k.decryptV3(a, key, new Proxy(['users', '2'], {})), 'authentication');
      throwsCode(() => k.decryptV3(a, key), 'authentication');
      assert.equal(k.decryptV3(a, key, new Proxy(['users', '1'], {})), 'a');
    }
    // A later part's getter that detaches an earlier part's buffer: wasm reads the array and
    // refuses the detached part, rather than binding what the glue had measured.
    const early = new Uint8Array([1, 2, 3]);
    const ctx = [early];
    Object.defineProperty(ctx, 1, {
      get() { structuredClone(early.buffer, { transfer: [early.buffer] }); return 'later'; },
      enumerable: true,
    });
    throwsCode(() => k.encryptV3('x', key, 1, ctx), 'malformed');
    // Contexts large enough to grow wasm memory while staging, then small ones again.
    const big = ['x'.repeat(1 << 20), new Uint8Array(1 << 20).fill(7)];
    const t = k.encryptV3('big', key, 1, big);
    assert.equal(nodeDecryptV3(t, key, big).version, 1);
    assert.equal(k.decryptV3(t, key, big), 'big');
    assert.equal(k.decryptV3(a, key, ['users', '1']), 'a');
  });

  t('KeysealKey v3 methods; a freed handle is bad_key', () => {
    const key = key32(7);
    const h = new k.KeysealKey(key);
    const token = h.encryptV3('via handle', 4, ['t', '1']);
    assert.equal(k.decryptV3(token, key, ['t', '1']), 'via handle');
    assert.equal(h.decryptV3(k.encryptV3('via fn', key, 4, ['t']), ['t']), 'via fn');
    assert.deepEqual(h.decryptBytesV3(h.encryptBytesV3(new Uint8Array([9]), 4)), new Uint8Array([9]));
    h.free();
    throwsCode(() => h.encryptV3('x', 1), 'bad_key');
    throwsCode(() => h.decryptV3(token, ['t', '1']), 'bad_key');
    throwsCode(() => h.encryptBytesV3(new Uint8Array(1), 1), 'bad_key');
    throwsCode(() => h.decryptBytesV3(token), 'bad_key');
  });
}

module.exports = { run };
