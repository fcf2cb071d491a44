// The demo page (www/) in headless Chromium, as a person would use it: Debian's chromium driven
// by playwright-core. Encrypts and decrypts, decrypts tokens made by the Python module, checks
// that errors show their code in the page (a wrong key shows `authentication`), that no request
// leaves localhost and no exception goes uncaught, and saves a screenshot under target/www/.
//   node bindings/browser-test/demo.mjs        (after `make npm`; `make test-www-browser` does both)
// Environment: CHROMIUM (default /usr/bin/chromium), KEYSEAL_VECTORS (the Python vectors).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { CHROMIUM, openOnlyOrigin } from '../chromium.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const OUT = path.join(ROOT, 'target', 'www');
const SHOT = path.join(OUT, 'demo.png');
const VECTORS = process.env.KEYSEAL_VECTORS ||
  path.join(ROOT, 'tests', 'vectors', 'python', 'python-interop.json');
const TIME_LIMIT_MS = 90_000;

const say = (s) => console.log(`test-www-browser: ${s}`);
const vectors = JSON.parse(fs.readFileSync(VECTORS, 'utf8'));
const b64 = (s) => new Uint8Array(Buffer.from(s, 'base64'));

// The same package on the Node side, to check what the page made.
const node = await import(pathToFileURL(path.join(ROOT, 'pkg', 'index.mjs')).href);
const { start } = await import(pathToFileURL(path.join(ROOT, 'www', 'serve.mjs')).href);

const timer = setTimeout(() => {
  console.error(`test-www-browser: FAILED: over the ${TIME_LIMIT_MS / 1000} s limit`);
  process.exit(1);
}, TIME_LIMIT_MS);

fs.mkdirSync(OUT, { recursive: true });
const profile = fs.mkdtempSync(path.join(OUT, 'chromium-profile-'));
const { server, url } = await start(0);
const origin = new URL(url).origin;
let context;
let failed = false;
try {
  say(`serving ${url}; ${CHROMIUM} (fresh profile ${path.relative(ROOT, profile)})`);
  // Nothing but our own origin: anything else is refused and counted as a failure.
  const opened = await openOnlyOrigin(profile, origin, {
    viewport: { width: 1200, height: 900 },
    deviceScaleFactor: 1,
    colorScheme: 'light',
  });
  context = opened.context;
  const { page, offsite, errors: uncaught } = opened;
  say(`Chromium ${context.browser()?.version() ?? '(version unknown)'}`);

  await page.goto(url);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 20_000 });
  assert.match(await page.textContent('#status'), /^ready/);
  say('page loaded the package from /pkg/ (import map -> browser.mjs -> keyseal_bg.wasm)');

  const val = (sel) => page.inputValue(sel);
  const status = async (sel) => ({
    code: await page.getAttribute(sel, 'data-code'),
    text: (await page.textContent(sel)).trim(),
  });
  /** Clicks `button` and expects `statusSel` to show error `code`. */
  async function expectError(button, statusSel, code) {
    await page.click(button);
    const s = await status(statusSel);
    assert.equal(s.code, code, `${statusSel} shows ${JSON.stringify(s.text)}`);
    assert.ok(s.text.startsWith(code + ' ') && s.text.length > code.length + 3, s.text);
    return s.text;
  }

  // 1. Generate a key, encrypt, decrypt in the page; the token also opens in Node.
  await page.click('#generate');
  const keyB64 = await val('#key');
  assert.match(keyB64, /^[A-Za-z0-9_-]{43}=$/);
  const secret = 'sk-live-héllo 🔑 wörld';
  await page.fill('#plaintext', secret);
  await page.click('#encrypt');
  const token = await val('#token-out');
  assert.match(token, /^v2:[A-Za-z0-9_-]+={0,2}$/);
  assert.equal(node.decrypt(token, b64(keyB64)), secret, 'the page token opens in Node');
  await page.click('#encrypt');
  assert.notEqual(await val('#token-out'), token, 'a fresh nonce per encryption');
  await page.click('#to-decrypt');
  await page.click('#decrypt');
  assert.equal(await val('#plaintext-out'), secret);
  assert.equal((await status('#decrypt-status')).code, null);
  say('generate key, encrypt, decrypt: ok (and Node decrypts the page\'s token)');

  // 2. Tokens made by the Python module (with and without the v2: prefix).
  const fromPython = vectors.tokens.filter((v) => /[^\x00-\x7f]/.test(v.plaintext)).slice(0, 3);
  assert.ok(fromPython.some((v) => !v.token.startsWith('v2:')), 'a legacy unprefixed token');
  for (const v of fromPython) {
    await page.fill('#key', v.key_b64);
    await page.fill('#token-in', v.token);
    await page.click('#decrypt');
    assert.equal(await val('#plaintext-out'), v.plaintext, v.token);
  }
  say(`decrypted ${fromPython.length} Python tokens: ${fromPython.map((v) => JSON.stringify(v.plaintext)).join(', ')}`);

  // 3. Errors show in the page with their code.
  const [a, b] = vectors.tokens.filter((v) => v.plaintext.length > 0);
  await page.fill('#key', b.key_b64);
  await page.fill('#token-in', a.token);
  const authText = await expectError('#decrypt', '#decrypt-status', 'authentication');
  assert.equal(await val('#plaintext-out'), '');
  await page.fill('#key', a.key_b64);
  await page.fill('#token-in', 'v2:not a token!');
  await expectError('#decrypt', '#decrypt-status', 'malformed');
  await page.fill('#key', 'AAAA');
  await expectError('#encrypt', '#encrypt-status', 'bad_key');
  await page.fill('#key', 'not base64 at all!');
  await expectError('#encrypt', '#encrypt-status', 'bad_key');
  say(`errors in the page: authentication ("${authText}"), malformed, bad_key`);

  // 4. isEncrypted and the lookup hash.
  for (const h of vectors.api_key_hashes.slice(0, 4)) {
    await page.fill('#inspect', h.api_key);
    assert.equal(await page.textContent('#hash-out'), h.sha256_hex, JSON.stringify(h.api_key));
    assert.equal(await page.textContent('#is-encrypted'), 'false');
  }
  await page.fill('#inspect', token);
  assert.equal(await page.textContent('#is-encrypted'), 'true');
  say('isEncrypted and hash: ok (Python lookup hashes)');

  // 5. Pool key from a master key.
  const pk = vectors.pool_keys[0];
  await page.fill('#master', pk.master_key_b64);
  await page.click('#derive');
  assert.equal(await val('#pool-out'), pk.pool_key_b64);
  say('pool key: ok (Python vector)');

  // The state for the screenshot: a fresh key, a secret encrypted, a wrong-key failure shown.
  await page.click('#generate');
  await page.fill('#plaintext', 'sk-live-4f9c2a7e1b');
  await page.click('#encrypt');
  await page.fill('#token-in', a.token);
  await page.click('#decrypt');
  await page.fill('#inspect', 'mhu_abc');
  await page.click('#master-from-key');
  await page.click('#derive');
  assert.equal((await status('#decrypt-status')).code, 'authentication');
  await page.screenshot({ path: SHOT, fullPage: true });

  // Without its .wasm the page says so in the page, not only in the console.
  const broken = await context.newPage();
  const brokenErrors = [];
  broken.on('pageerror', (e) => brokenErrors.push(e.message));
  await broken.route('**/pkg/keyseal_bg.wasm', (route) => route.fulfill({ status: 404, body: 'gone' }));
  await broken.goto(url);
  await broken.waitForSelector('#page-error:not([hidden])', { timeout: 20_000 });
  assert.match(await broken.textContent('#page-error'), /Could not load the keyseal package/);
  assert.equal(await broken.textContent('#status'), 'not loaded');
  assert.deepEqual(brokenErrors, []);
  await broken.close();
  say('a missing .wasm is reported in the page');

  assert.deepEqual(uncaught, [], 'no uncaught exceptions or console errors');
  assert.equal(await page.isHidden('#page-error'), true, 'no page error banner');
  assert.deepEqual(offsite, [], 'no request beyond localhost');
  say('no uncaught exception, no request beyond localhost');
  say(`screenshot: ${SHOT}`);
  say('PASSED');
} catch (e) {
  failed = true;
  console.error('test-www-browser: FAILED:', e);
} finally {
  await context?.close().catch(() => {});
  server.close();
  fs.rmSync(profile, { recursive: true, force: true });
  clearTimeout(timer);
}
process.exit(failed ? 1 : 0);
