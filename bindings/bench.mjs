// `make bench-js`: the npm package (pkg/) side by side with WebCrypto and node:crypto, in one
// Node process. Same work for every contestant: AES-256-GCM with a fresh random 12-byte nonce,
// output as the keyseal token "v2:" + padded base64url(nonce || ciphertext || tag), and back;
// for the v3 rows, "v3:" + padded base64url(header || nonce || ciphertext || tag) with the
// header and a table/row/column context as associated data.
// Prints a Markdown table (paste into BENCHMARKS.md) and writes target/bench-js.json.
import { createRequire } from 'node:module';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import nodeCrypto from 'node:crypto';

const root = fileURLToPath(new URL('..', import.meta.url));
const require = createRequire(import.meta.url);
const keyseal = require(`${root}pkg/index.cjs`);
const ROUND_MS = Number(process.env.BENCH_ROUND_MS || 700);
const ROUNDS = Number(process.env.BENCH_ROUNDS || 3);

const key = nodeCrypto.randomBytes(32);
const keyU8 = new Uint8Array(key);
const handle = new keyseal.KeysealKey(keyU8);
const subtleKey = await crypto.subtle.importKey('raw', key, 'AES-GCM', false, ['encrypt', 'decrypt']);

const b64url = (buf) => {
  const s = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength).toString('base64url');
  return s + '='.repeat((4 - (s.length % 4)) % 4);
};
const unb64 = (token) => Buffer.from(token.startsWith('v2:') ? token.slice(3) : token, 'base64url');

// node:crypto, a new cipher per call (as a service would write it).
const node = {
  encrypt(plain) {
    const iv = nodeCrypto.randomBytes(12);
    const c = nodeCrypto.createCipheriv('aes-256-gcm', key, iv);
    return `v2:${b64url(Buffer.concat([iv, c.update(plain), c.final(), c.getAuthTag()]))}`;
  },
  decrypt(token) {
    const raw = unb64(token);
    const d = nodeCrypto.createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12));
    d.setAuthTag(raw.subarray(raw.length - 16));
    return Buffer.concat([d.update(raw.subarray(12, raw.length - 16)), d.final()]);
  },
};
// v3: header (0x03, u32 BE version) and context encoding, as the package builds them.
const V3_VERSION = 2;
const ROW = ['users', '4242', 'api_token'];
const v3Header = Buffer.from([3, 0, 0, 0, V3_VERSION]);
const v3Aad = Buffer.concat([v3Header, Buffer.from([0, 0, 0, ROW.length]),
  ...ROW.flatMap((p) => [Buffer.from([0, 0, 0, Buffer.byteLength(p)]), Buffer.from(p)])]);
const nodeV3 = {
  encrypt(plain) {
    const iv = nodeCrypto.randomBytes(12);
    const c = nodeCrypto.createCipheriv('aes-256-gcm', key, iv);
    c.setAAD(v3Aad);
    return `v3:${b64url(Buffer.concat([v3Header, iv, c.update(plain), c.final(), c.getAuthTag()]))}`;
  },
  decrypt(token) {
    const raw = Buffer.from(token.slice(3), 'base64url');
    const d = nodeCrypto.createDecipheriv('aes-256-gcm', key, raw.subarray(5, 17));
    d.setAAD(Buffer.concat([raw.subarray(0, 5), v3Aad.subarray(5)]));
    d.setAuthTag(raw.subarray(raw.length - 16));
    return Buffer.concat([d.update(raw.subarray(17, raw.length - 16)), d.final()]);
  },
};
// WebCrypto, awaited per call.
const web = {
  async encrypt(plain) {
    const iv = crypto.getRandomValues(new Uint8Array(12));
    const ct = new Uint8Array(await crypto.subtle.encrypt({ name: 'AES-GCM', iv }, subtleKey, plain));
    const out = new Uint8Array(12 + ct.length);
    out.set(iv);
    out.set(ct, 12);
    return `v2:${b64url(out)}`;
  },
  async decrypt(token) {
    const raw = unb64(token);
    return new Uint8Array(await crypto.subtle.decrypt(
      { name: 'AES-GCM', iv: raw.subarray(0, 12) }, subtleKey, raw.subarray(12)));
  },
};

const webV3 = {
  async encrypt(plain) {
    const iv = crypto.getRandomValues(new Uint8Array(12));
    const ct = new Uint8Array(await crypto.subtle.encrypt(
      { name: 'AES-GCM', iv, additionalData: v3Aad }, subtleKey, plain));
    const out = new Uint8Array(17 + ct.length);
    out.set(v3Header);
    out.set(iv, 5);
    out.set(ct, 17);
    return `v3:${b64url(out)}`;
  },
  async decrypt(token) {
    const raw = Buffer.from(token.slice(3), 'base64url');
    return new Uint8Array(await crypto.subtle.decrypt(
      { name: 'AES-GCM', iv: raw.subarray(5, 17), additionalData: v3Aad }, subtleKey, raw.subarray(17)));
  },
};

async function measure(fn, isAsync) {
  const rates = [];
  for (let w = 0; w < 200; w++) isAsync ? await fn() : fn();
  for (let r = 0; r < ROUNDS; r++) {
    let n = 0;
    const start = performance.now();
    let now = start;
    while (now - start < ROUND_MS) {
      for (let i = 0; i < 32; i++) isAsync ? await fn() : fn();
      n += 32;
      now = performance.now();
    }
    rates.push((n * 1000) / (now - start));
  }
  rates.sort((a, b) => a - b);
  return rates[Math.floor(rates.length / 2)];
}

const secret = 'sk-live-' + 'A1b2C3d4'.repeat(7); // 64 bytes of ASCII, like an API key
const secretBytes = Buffer.from(secret);
const big = nodeCrypto.randomBytes(1 << 20);
const bigU8 = new Uint8Array(big);
const MiB = 1 << 20;

// Cross-check before timing: every contestant reads every other's tokens.
for (const t of [keyseal.encrypt(secret, keyU8), handle.encrypt(secret), node.encrypt(secretBytes),
  await web.encrypt(secretBytes)]) {
  if (keyseal.decrypt(t, keyU8) !== secret || node.decrypt(t).toString() !== secret ||
    Buffer.from(await web.decrypt(t)).toString() !== secret) throw new Error('tokens disagree');
}

for (const t of [keyseal.encryptV3(secret, keyU8, V3_VERSION, ROW), handle.encryptV3(secret, V3_VERSION, ROW),
  nodeV3.encrypt(secretBytes), await webV3.encrypt(secretBytes)]) {
  if (keyseal.decryptV3(t, keyU8, ROW) !== secret || nodeV3.decrypt(t).toString() !== secret ||
    Buffer.from(await webV3.decrypt(t)).toString() !== secret) throw new Error('v3 tokens disagree');
}

const tok64 = handle.encrypt(secret);
const tok64v3 = handle.encryptV3(secret, V3_VERSION, ROW);
const tokBig = handle.encryptBytes(bigU8);
const rows = [];
async function row(name, cases, unit) {
  const r = { name, unit };
  for (const [who, fn, isAsync] of cases) r[who] = await measure(fn, isAsync) * (unit === 'MB/s' ? MiB / 1e6 : 1);
  rows.push(r);
  process.stderr.write(`${name}: done\n`);
}
await row('encrypt 64 B', [
  ['keyseal', () => keyseal.encrypt(secret, keyU8)],
  ['keysealKey', () => handle.encrypt(secret)],
  ['node', () => node.encrypt(secretBytes)],
  ['webcrypto', () => web.encrypt(secretBytes), true],
], 'ops/s');
await row('decrypt 64 B', [
  ['keyseal', () => keyseal.decrypt(tok64, keyU8)],
  ['keysealKey', () => handle.decrypt(tok64)],
  ['node', () => node.decrypt(tok64).toString()],
  ['webcrypto', () => web.decrypt(tok64).then((b) => Buffer.from(b).toString()), true],
], 'ops/s');
await row('encrypt 64 B, v3 with a row context', [
  ['keyseal', () => keyseal.encryptV3(secret, keyU8, V3_VERSION, ROW)],
  ['keysealKey', () => handle.encryptV3(secret, V3_VERSION, ROW)],
  ['node', () => nodeV3.encrypt(secretBytes)],
  ['webcrypto', () => webV3.encrypt(secretBytes), true],
], 'ops/s');
await row('decrypt 64 B, v3 with a row context', [
  ['keyseal', () => keyseal.decryptV3(tok64v3, keyU8, ROW)],
  ['keysealKey', () => handle.decryptV3(tok64v3, ROW)],
  ['node', () => nodeV3.decrypt(tok64v3).toString()],
  ['webcrypto', () => webV3.decrypt(tok64v3).then((b) => Buffer.from(b).toString()), true],
], 'ops/s');
await row('encrypt 1 MiB', [
  ['keyseal', () => keyseal.encryptBytes(bigU8, keyU8)],
  ['keysealKey', () => handle.encryptBytes(bigU8)],
  ['node', () => node.encrypt(big)],
  ['webcrypto', () => web.encrypt(big), true],
], 'MB/s');
await row('decrypt 1 MiB', [
  ['keyseal', () => keyseal.decryptBytes(tokBig, keyU8)],
  ['keysealKey', () => handle.decryptBytes(tokBig)],
  ['node', () => node.decrypt(tokBig)],
  ['webcrypto', () => web.decrypt(tokBig), true],
], 'MB/s');

// Size and start-up: each load in a fresh process.
const wasmPath = `${root}pkg/keyseal_bg.wasm`;
const wasmBytes = readFileSync(wasmPath);
const gz = gzipSync(wasmBytes, { level: 9 }).length;
const probe = `
  const t0 = performance.now();
  const bytes = require('fs').readFileSync(${JSON.stringify(wasmPath)});
  const t1 = performance.now();
  const m = new WebAssembly.Module(bytes);
  const t2 = performance.now();
  const k = require(${JSON.stringify(`${root}pkg/index.cjs`)});
  const t3 = performance.now();
  k.encrypt('x', new Uint8Array(32));
  console.log(JSON.stringify({ compile: t2 - t1, require: t3 - t2 }));`;
const loads = [];
for (let i = 0; i < 9; i++) loads.push(JSON.parse(execFileSync(process.execPath, ['-e', probe])));
const med = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const compileMs = med(loads.map((l) => l.compile));
const requireMs = med(loads.map((l) => l.require));

const f = (x) => (x >= 1000 ? Math.round(x).toLocaleString('en-US') : x.toFixed(1));
const ratio = (a, b) => `${(a / b).toFixed(2)}×`;
console.log(`Node ${process.version}, ${nodeCrypto.getCiphers().length ? 'OpenSSL ' + process.versions.openssl : ''}, ${(await import('node:os')).cpus()[0].model}\n`);
console.log('| case | keyseal (Uint8Array key) | keyseal (KeysealKey) | node:crypto | WebCrypto | KeysealKey / node:crypto | KeysealKey / WebCrypto | keyseal / node:crypto |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
for (const r of rows) {
  console.log(`| ${r.name} (${r.unit}) | ${f(r.keyseal)} | ${f(r.keysealKey)} | ${f(r.node)} | ${f(r.webcrypto)} | ` +
    `${ratio(r.keysealKey, r.node)} | ${ratio(r.keysealKey, r.webcrypto)} | ${ratio(r.keyseal, r.node)} |`);
}
const byName = Object.fromEntries(rows.map((r) => [r.name, r]));
const ns = (opsPerS) => 1e9 / opsPerS;
for (const op of ['encrypt', 'decrypt']) {
  const v2 = byName[`${op} 64 B`];
  const v3 = byName[`${op} 64 B, v3 with a row context`];
  console.log(`- ${op} 64 B, v3 (row context) over v2: KeysealKey ${(ns(v3.keysealKey) - ns(v2.keysealKey)).toFixed(0)} ns ` +
    `(${f(ns(v2.keysealKey))} → ${f(ns(v3.keysealKey))} ns), Uint8Array key ${(ns(v3.keyseal) - ns(v2.keyseal)).toFixed(0)} ns per call`);
}
console.log(`\n- keyseal_bg.wasm: ${wasmBytes.length.toLocaleString('en-US')} bytes, ${gz.toLocaleString('en-US')} gzipped (${(gz / 1024).toFixed(1)} KiB)`);
console.log(`- WebAssembly.Module compile of it: ${compileMs.toFixed(2)} ms; require('keyseal') (read, compile, instantiate, glue): ${requireMs.toFixed(2)} ms (medians of 9 fresh processes)`);
mkdirSync(`${root}target`, { recursive: true });
writeFileSync(`${root}target/bench-js.json`, JSON.stringify({ node: process.version, rows, wasm: wasmBytes.length, gzipped: gz, compileMs, requireMs }, null, 2));
handle.free();
