// The npm package as its users consume it: `npm pack` of pkg/, installed into a scratch
// project (target/consumers/app), then bundled by esbuild and webpack for Node (ESM and
// CommonJS) and for browsers, run by Node, headless Chromium, Bun and Deno, and compiled by
// tsc with `using`. Every build runs app/check.cjs on a vector made by the Python module and
// must give the vector's results. Bundles run from a directory with no node_modules, so they
// only work if they carry the package (or, for browsers, the .wasm the README says to copy).
//   node bindings/consumers/run.mjs     (after `make npm`; `make test-consumers` does both)
// Environment: KEYSEAL_PKG (the built package, default pkg/), CHROMIUM (default
// /usr/bin/chromium), KEYSEAL_VECTORS (the Python vectors).
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';
import webpack from 'webpack';
import { openOnlyOrigin } from '../chromium.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..', '..');
const PKG = path.resolve(process.env.KEYSEAL_PKG || path.join(ROOT, 'pkg'));
const BIN = path.join(ROOT, 'bindings', 'node_modules', '.bin');
const WORK = path.join(ROOT, 'target', 'consumers');
const APP = path.join(WORK, 'app');
const OUT = path.join(WORK, 'out'); // outside APP: no node_modules to fall back on
const VECTORS = process.env.KEYSEAL_VECTORS ||
  path.join(ROOT, 'tests', 'vectors', 'python', 'python-interop.json');
const LIMIT = { timeout: 90_000 };

const say = (s) => console.log(`test-consumers: ${s}`);
const b64hex = (s) => Buffer.from(s, 'base64').toString('hex');

// One vector of each kind, with non-ASCII text so UTF-8 handling shows.
const vectors = JSON.parse(fs.readFileSync(VECTORS, 'utf8'));
const tok = vectors.tokens.find((t) => /[^\x00-\x7f]/.test(t.plaintext));
const hashed = vectors.api_key_hashes.find((h) => h.api_key !== '');
const pool = vectors.pool_keys[0];
const VECTOR = JSON.stringify({
  key_b64: tok.key_b64, token: tok.token, plaintext: tok.plaintext,
  api_key: hashed.api_key, master_key_b64: pool.master_key_b64,
});
const EXPECTED = {
  prefix: 'v2:',
  decrypted: tok.plaintext,
  hash: hashed.sha256_hex,
  poolKeyHex: b64hex(pool.pool_key_b64),
  roundTrip: true,
  wrongKey: 'authentication',
  disposed: true,
};

// The consumer project, as `npm install keyseal` leaves it.
fs.rmSync(WORK, { recursive: true, force: true });
fs.mkdirSync(APP, { recursive: true });
const tarball = execFileSync('npm', ['pack', '--silent', PKG], { cwd: WORK, encoding: 'utf8' })
  .trim().split('\n').pop();
fs.writeFileSync(path.join(APP, 'package.json'),
  '{ "name": "keyseal-consumer", "private": true, "type": "module" }\n');
execFileSync('npm', ['install', '--silent', '--offline', '--no-audit', '--no-fund',
  path.join(WORK, tarball)], { cwd: APP, stdio: 'inherit' });
for (const f of fs.readdirSync(path.join(HERE, 'app'))) {
  fs.copyFileSync(path.join(HERE, 'app', f), path.join(APP, f));
}
// The same `using` consumer as a CommonJS TypeScript file (it gets the .d.cts types).
fs.copyFileSync(path.join(APP, 'using.ts'), path.join(APP, 'using-require.cts'));
say(`installed ${tarball} into ${path.relative(ROOT, APP)}`);

/** Runs a command; its last stdout line (all of it with `whole`) is the JSON result. */
function runJson(cmd, args, { whole = false, ...opts } = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 60_000, ...opts });
  const detail = `${path.basename(cmd)} ${args.join(' ').slice(0, 120)}\n${r.stderr}${r.stdout}`;
  assert.equal(r.status, 0, `exit ${r.status} ${r.signal ?? ''}: ${detail}`);
  return JSON.parse(whole ? r.stdout : r.stdout.trim().split('\n').pop());
}

const nodeRun = (file) => runJson(process.execPath, [file, VECTOR], { cwd: path.dirname(file) });

async function esbuildTo(entry, outfile, options) {
  await esbuild.build({
    entryPoints: [path.join(APP, entry)], outfile, bundle: true, logLevel: 'error', ...options,
  });
  return outfile;
}

function webpackTo(entry, dir, filename, options) {
  return new Promise((resolve, reject) => {
    webpack({
      mode: 'production', devtool: false, context: APP, entry: path.join(APP, entry),
      output: { path: dir, filename, ...options.output },
      target: options.target, experiments: options.experiments ?? {},
      optimization: { minimize: false }, performance: { hints: false },
    }, (err, stats) => {
      if (err) return reject(err);
      if (stats.hasErrors()) return reject(new Error(stats.toString('errors-only')));
      resolve(path.join(dir, filename));
    });
  });
}

/** Serves `dir` on localhost, opens `page` in headless Chromium, returns keysealResult. */
async function inChromium(dir, page) {
  const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript',
    '.wasm': 'application/wasm' };
  const server = http.createServer((req, res) => {
    const file = path.join(dir, path.normalize(new URL(req.url, 'http://x').pathname));
    if (!file.startsWith(dir) || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream' });
    res.end(fs.readFileSync(file));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const origin = `http://127.0.0.1:${server.address().port}`;
  const profile = fs.mkdtempSync(path.join(WORK, 'chromium-'));
  const { context, page: tab, offsite, errors } = await openOnlyOrigin(profile, origin);
  try {
    await tab.goto(`${origin}/${page}#${encodeURIComponent(VECTOR)}`);
    const result = await tab.waitForFunction(() => globalThis.keysealResult, null, { timeout: 20_000 })
      .then((h) => h.jsonValue())
      .catch((e) => ({ error: `no result: ${e.message.split('\n')[0]}; page errors: ${errors.join(' | ')}` }));
    assert.deepEqual(offsite, [], 'requests left localhost');
    assert.deepEqual(errors, [], 'errors in the page');
    return result;
  } finally {
    await context.close();
    server.close();
  }
}

function writePage(dir, script, type) {
  fs.writeFileSync(path.join(dir, 'index.html'),
    `<!doctype html><meta charset="utf-8"><script ${type} src="${script}"></script>\n`);
}

test('every entry exports exactly the API index.d.ts declares', LIMIT, async () => {
  const installed = path.join(APP, 'node_modules', 'keyseal');
  const dts = fs.readFileSync(path.join(installed, 'index.d.ts'), 'utf8');
  const declared = [...dts.matchAll(/^export (?:declare )?(?:function|class|const) (\w+)/gm)]
    .map((m) => m[1]).sort();
  assert.ok(declared.length >= 10, `index.d.ts declares ${declared}`);
  const pkg = JSON.parse(fs.readFileSync(path.join(installed, 'package.json'), 'utf8'));
  const entries = new Set(JSON.stringify(pkg.exports['.']).match(/\.\/[\w.]+\.(?:mjs|cjs)/g));
  assert.deepEqual([...entries].sort(), ['./browser.mjs', './index.cjs', './index.mjs', './workerd.mjs']);
  for (const entry of entries) {
    let names;
    if (entry.endsWith('.cjs')) {
      names = Object.keys((await import(path.join(installed, entry))).default);
    } else {
      // Static ES module exports, read without running the entry (browser.mjs fetches the
      // .wasm, workerd.mjs imports it as a module: neither loads in plain Node).
      const r = await esbuild.build({ entryPoints: [path.join(installed, entry)], bundle: false,
        write: false, metafile: true, format: 'esm', logLevel: 'error', outdir: OUT });
      names = Object.values(r.metafile.outputs)[0].exports;
    }
    assert.deepEqual(names.sort(), declared, entry);
  }
});

test('esbuild bundle for Node, ES module (import): runs from a directory without node_modules', LIMIT, async () => {
  const out = await esbuildTo('cli.mjs', path.join(OUT, 'esbuild-node-esm', 'cli.mjs'),
    { platform: 'node', format: 'esm' });
  assert.deepEqual(nodeRun(out), EXPECTED);
});

test('esbuild bundle for Node, CommonJS (require): finds the .wasm without copying it', LIMIT, async () => {
  const out = await esbuildTo('cli.cjs', path.join(OUT, 'esbuild-node-cjs', 'cli.cjs'),
    { platform: 'node', format: 'cjs' });
  assert.deepEqual(nodeRun(out), EXPECTED);
});

test('webpack bundle for Node, CommonJS (require)', LIMIT, async () => {
  const out = await webpackTo('cli.cjs', path.join(OUT, 'webpack-node-cjs'), 'cli.cjs',
    { target: 'node' });
  assert.deepEqual(nodeRun(out), EXPECTED);
});

test('webpack bundle for Node, ES module output (import)', LIMIT, async () => {
  const out = await webpackTo('cli.mjs', path.join(OUT, 'webpack-node-esm'), 'cli.mjs', {
    target: 'node',
    output: { module: true, chunkFormat: 'module' },
    experiments: { outputModule: true },
  });
  assert.deepEqual(nodeRun(out), EXPECTED);
});

test('esbuild bundle for browsers in Chromium, keyseal_bg.wasm copied beside it', LIMIT, async () => {
  const dir = path.join(OUT, 'esbuild-browser');
  await esbuildTo('page.mjs', path.join(dir, 'app.js'), { platform: 'browser', format: 'esm' });
  // The one step the package README asks of esbuild users.
  fs.copyFileSync(path.join(APP, 'node_modules', 'keyseal', 'keyseal_bg.wasm'),
    path.join(dir, 'keyseal_bg.wasm'));
  writePage(dir, 'app.js', 'type="module"');
  assert.deepEqual(await inChromium(dir, 'index.html'), EXPECTED);
});

test('webpack bundle for browsers in Chromium (webpack emits the .wasm itself)', LIMIT, async () => {
  const dir = path.join(OUT, 'webpack-browser');
  await webpackTo('page.mjs', dir, 'app.js', { target: 'web' });
  assert.ok(fs.readdirSync(dir).some((f) => f.endsWith('.wasm')), 'webpack emitted the .wasm');
  writePage(dir, 'app.js', 'defer');
  assert.deepEqual(await inChromium(dir, 'index.html'), EXPECTED);
});

test('Bun runs the package (import and require)', LIMIT, () => {
  const bun = path.join(BIN, 'bun');
  const env = { ...process.env, BUN_INSTALL_CACHE_DIR: path.join(WORK, 'bun-cache') };
  for (const entry of ['cli.mjs', 'cli.cjs']) {
    assert.deepEqual(runJson(bun, ['--no-install', entry, VECTOR], { cwd: APP, env }), EXPECTED, entry);
  }
});

test('Deno runs the package with no permissions, through the entry the README names', LIMIT, () => {
  const deno = path.join(BIN, 'deno');
  const env = { ...process.env, DENO_DIR: path.join(WORK, 'deno-dir'), DENO_NO_UPDATE_CHECK: '1',
    NO_COLOR: '1' };
  assert.deepEqual(runJson(deno, ['run', '--no-prompt', 'cli.mjs', VECTOR], { cwd: APP, env }), EXPECTED);
  const info = runJson(deno, ['info', '--json', 'cli.mjs'], { cwd: APP, env, whole: true });
  const loaded = info.modules.map((m) => m.specifier ?? '')
    .filter((s) => s.includes('/node_modules/keyseal/')).map((s) => s.split('/node_modules/keyseal/')[1]);
  // package.json "exports": Deno matches the "node" condition, as the README's table says.
  assert.ok(loaded.includes('index.mjs') && !loaded.includes('browser.mjs'), `Deno loads ${loaded}`);
});

test('TypeScript: `using k = new KeysealKey(...)` compiles against the shipped types and frees the key', LIMIT, () => {
  const tsconfig = JSON.parse(fs.readFileSync(path.join(APP, 'tsconfig.json'), 'utf8')
    .replace(/^\s*\/\/.*$/gm, ''));
  tsconfig.files.push('using-require.cts');
  fs.writeFileSync(path.join(APP, 'tsconfig.json'), JSON.stringify(tsconfig));
  const r = spawnSync(path.join(BIN, 'tsc'), ['-p', 'tsconfig.json'], { cwd: APP, encoding: 'utf8' });
  assert.equal(r.status, 0, `tsc:\n${r.stdout}${r.stderr}`);
  for (const js of ['using.js', 'using-require.cjs']) {
    const out = runJson(process.execPath, [path.join(APP, 'ts-out', js)], { cwd: APP });
    assert.deepEqual(out, { text: 'sk-live-123', disposed: true }, js);
  }
});
