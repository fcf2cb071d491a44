// The package's browser entry (browser.mjs: fetch + top-level await) in headless Chromium:
// a page served over HTTP imports it as a plain ES module, as a site would, and reports back.
// Skipped where no Chromium is installed (scripts/setup-wasm.sh installs it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, extname, resolve, sep } from 'node:path';
import { createRequire } from 'node:module';

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const require = createRequire(import.meta.url);
const pkgDir = resolve(require.resolve('keyseal/package.json'), '..');
const node = require('keyseal');

const key = new Uint8Array(32).map((_, i) => i);
const fromNode = node.encrypt('made in node 🔑', key);
const row = ['users', '42', 'api_token'];
const fromNodeV3 = node.encryptV3('v3 made in node', key, 7, row);

const page = `<!doctype html><meta charset="utf-8"><body>running</body><script type="module">
const out = {};
try {
  const k = await import('/keyseal/browser.mjs');
  const key = new Uint8Array(${JSON.stringify(Array.from(key))});
  out.exports = Object.keys(k).sort();
  out.prefix = k.ENCRYPTED_PREFIX;
  out.fromNode = k.decrypt(${JSON.stringify(fromNode)}, key);
  out.fromBrowser = k.encrypt('made in the browser', key);
  out.roundTrip = k.decrypt(k.encrypt('héllo', key), key);
  const h = new k.KeysealKey(k.generateKey());
  out.handle = h.decryptBytes(h.encryptBytes(new Uint8Array([1, 2, 3]))).join(',');
  h.free();
  out.hash = k.hash('');
  const row = ${JSON.stringify(row)};
  out.fromNodeV3 = k.decryptV3(${JSON.stringify(fromNodeV3)}, key, row);
  out.formatV3 = k.tokenFormat(${JSON.stringify(fromNodeV3)});
  out.fromBrowserV3 = k.encryptV3('v3 made in the browser', key, 9, row);
  try { k.decryptV3(${JSON.stringify(fromNodeV3)}, key, ['users', '43', 'api_token']); out.movedV3 = 'no error'; }
  catch (e) { out.movedV3 = e.name + ':' + e.code; }
  for (const [name, f] of [['badKey', () => k.encrypt('x', new Uint8Array(31))],
      ['auth', () => k.decrypt(k.encrypt('x', k.generateKey()), key)],
      ['lone', () => k.encrypt('\\uD800', key)]]) {
    try { f(); out[name] = 'no error'; } catch (e) { out[name] = e.name + ':' + e.code; }
  }
} catch (e) { out.error = String(e && e.stack || e); }
document.body.textContent = 'RESULT' + JSON.stringify(out) + 'END';
</script>`;

const TYPES = { '.mjs': 'text/javascript', '.js': 'text/javascript', '.wasm': 'application/wasm' };

test('browser entry in headless Chromium', { skip: !existsSync(CHROMIUM) && `no ${CHROMIUM}` }, async () => {
  const server = createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    if (url.pathname === '/') {
      res.writeHead(200, { 'content-type': 'text/html' });
      return res.end(page);
    }
    const file = resolve(pkgDir, `.${url.pathname.replace(/^\/keyseal/, '')}`);
    if (!file.startsWith(pkgDir + sep) || !existsSync(file)) {
      res.writeHead(404);
      return res.end();
    }
    res.writeHead(200, { 'content-type': TYPES[extname(file)] || 'application/octet-stream' });
    res.end(readFileSync(file));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const profile = mkdtempSync(join(tmpdir(), 'keyseal-chromium-'));
  try {
    const url = `http://127.0.0.1:${server.address().port}/`;
    const dom = await new Promise((resolveRun, reject) => {
      execFile(CHROMIUM, ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync',
        `--user-data-dir=${profile}`, '--virtual-time-budget=10000', '--dump-dom', url],
      { timeout: 60000 }, (err, stdout) => (err ? reject(err) : resolveRun(stdout)));
    });
    const m = /RESULT(.*)END/s.exec(dom);
    assert.ok(m, `page did not finish: ${dom.slice(0, 500)}`);
    const out = JSON.parse(m[1]);
    assert.equal(out.error, undefined);
    assert.deepEqual(out.exports, ['ENCRYPTED_PREFIX', 'KeysealKey', 'decrypt', 'decryptBytes',
      'decryptBytesV3', 'decryptV3', 'derivePoolKey', 'encrypt', 'encryptBytes', 'encryptBytesV3',
      'encryptV3', 'generateKey', 'hash', 'isEncrypted', 'tokenFormat']);
    assert.equal(out.prefix, 'v2:');
    assert.equal(out.fromNode, 'made in node 🔑');
    assert.equal(node.decrypt(out.fromBrowser, key), 'made in the browser');
    assert.equal(out.roundTrip, 'héllo');
    assert.equal(out.handle, '1,2,3');
    assert.equal(out.hash, 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    assert.equal(out.badKey, 'KeysealError:bad_key');
    assert.equal(out.auth, 'KeysealError:authentication');
    assert.equal(out.lone, 'KeysealError:malformed');
    assert.equal(out.fromNodeV3, 'v3 made in node');
    assert.deepEqual(out.formatV3, { format: 'v3', keyVersion: 7 });
    assert.equal(node.decryptV3(out.fromBrowserV3, key, row), 'v3 made in the browser');
    assert.equal(out.movedV3, 'KeysealError:authentication');
  } finally {
    server.close();
    rmSync(profile, { recursive: true, force: true });
  }
});
