#!/usr/bin/env node
// A tiny static server for the demo page, for `make www` and the browser test:
//   /          -> www/          (the page)
//   /pkg/...   -> pkg/          (the npm package built by `make npm`, loaded as plain ESM)
// Listens on 127.0.0.1 only. `node www/serve.mjs [--port N]` (0 picks a free port; default 8000
// or $PORT). Prints the URL. No dependencies: node:http and node:fs.
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MOUNTS = [
  ['/pkg/', path.join(ROOT, 'pkg')],
  ['/', path.join(ROOT, 'www')],
];
const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.cjs': 'text/javascript; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm', // needed by WebAssembly.instantiateStreaming
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.md': 'text/plain; charset=utf-8',
  '.ts': 'text/plain; charset=utf-8',
};

/** Maps a URL path to a file under one of the mounts, or null (never outside them). */
function resolve(urlPath) {
  let p;
  try {
    p = decodeURIComponent(urlPath);
  } catch {
    return null;
  }
  if (p.includes('\0')) return null;
  for (const [prefix, dir] of MOUNTS) {
    if (!p.startsWith(prefix)) continue;
    let file = path.join(dir, p.slice(prefix.length));
    if (file !== dir && !file.startsWith(dir + path.sep)) return null;
    try {
      if (fs.statSync(file).isDirectory()) file = path.join(file, 'index.html');
    } catch {
      return null;
    }
    return file;
  }
  return null;
}

function handler(req, res) {
  const url = new URL(req.url, 'http://localhost');
  const send = (status, type, body) => {
    res.writeHead(status, {
      'content-type': type,
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  };
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    send(405, 'text/plain; charset=utf-8', 'method not allowed\n');
    return;
  }
  const file = resolve(url.pathname);
  if (!file) {
    const hint = url.pathname.startsWith('/pkg/') ? ' (build the package first: make npm)' : '';
    send(404, 'text/plain; charset=utf-8', `not found: ${url.pathname}${hint}\n`);
    return;
  }
  fs.readFile(file, (err, body) => {
    if (err) {
      send(404, 'text/plain; charset=utf-8', `not found: ${url.pathname}\n`);
      return;
    }
    send(200, TYPES[path.extname(file)] || 'application/octet-stream', body);
  });
}

/**
 * Starts the server on 127.0.0.1:`port` (0: a free port).
 * @returns {Promise<{ server: http.Server, url: string }>}
 */
export function start(port = 0) {
  return new Promise((ok, fail) => {
    const server = http.createServer(handler);
    server.once('error', fail);
    server.listen(port, '127.0.0.1', () => {
      const { port: p } = server.address();
      ok({ server, url: `http://127.0.0.1:${p}/` });
    });
  });
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const i = process.argv.indexOf('--port');
  const port = Number(i > 0 ? process.argv[i + 1] : process.env.PORT ?? 8000);
  if (!fs.existsSync(path.join(ROOT, 'pkg', 'browser.mjs'))) {
    console.error('serve: pkg/ is missing; build the package first (make npm)');
  }
  start(port).then(
    ({ url }) => console.log(`keyseal demo: ${url}  (Ctrl-C to stop)`),
    (e) => {
      console.error(`serve: cannot listen on 127.0.0.1:${port}: ${e.code || e.message}` +
        (e.code === 'EADDRINUSE' ? ' (try: make www PORT=8001)' : ''));
      process.exit(1);
    },
  );
}
