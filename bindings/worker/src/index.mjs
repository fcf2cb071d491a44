// An edge worker (Cloudflare Workers / workerd) using the npm package `keyseal`.
//
// `import ... from 'keyseal'` resolves, under the `workerd` export condition (wrangler and other
// Workers bundlers set it), to the package's workerd.mjs, which imports keyseal_bg.wasm as a
// WebAssembly module: the runtime compiles it; nothing is fetched or compiled at run time.
// Random nonces and keys come from the worker's own crypto.getRandomValues.
//
// A small JSON API (every body is JSON; keys are base64, standard or URL-safe):
//   POST /encrypt   {"plaintext": "...", "key"?: "<base64>"}  -> {"token": "v2:..."}
//   POST /decrypt   {"token": "v2:...", "key"?: "<base64>"}   -> {"plaintext": "..."}
//   POST /hash      {"value": "..."}       -> {"hash": "<hex sha256>", "isEncrypted": bool}
//   POST /pool-key  {"masterKey": "<base64>"}                 -> {"poolKey": "<base64>"}
//   GET  /generate-key                                        -> {"key": "<base64>"}
// Without "key", /encrypt and /decrypt use the pool key derived from the API_KEY_MASTER_KEY
// secret (`wrangler secret put API_KEY_MASTER_KEY`), as the Rust crate and the Python module do.
// Failures answer 400 with {"error": {"code", "message"}}, the code being the package's
// (malformed, authentication, bad_key, not_utf8, randomness) or bad_request for the request itself.
//
// Taking keys in requests is for this demo and its tests; a real service keeps them server-side.
import {
  encrypt, decrypt, hash, isEncrypted, derivePoolKey, generateKey,
} from 'keyseal';

const toBase64 = (bytes) =>
  btoa(String.fromCharCode(...bytes)).replace(/\+/g, '-').replace(/\//g, '_');

function fromBase64(text, field) {
  const s = String(text).trim().replace(/-/g, '+').replace(/_/g, '/');
  try {
    return Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
  } catch {
    throw requestError(`"${field}" is not base64`);
  }
}

function requestError(message) {
  return Object.assign(new Error(message), { code: 'bad_request' });
}

// The pool key is slow to derive (PBKDF2, 100 000 iterations): once per isolate.
let poolKey = null;
let poolKeyFrom = null;
function keyFor(body, env) {
  if (body.key !== undefined) return fromBase64(body.key, 'key');
  const master = env.API_KEY_MASTER_KEY;
  if (!master) throw requestError('no "key" given and no API_KEY_MASTER_KEY configured');
  if (poolKeyFrom !== master) {
    poolKey = derivePoolKey(fromBase64(master, 'API_KEY_MASTER_KEY'));
    poolKeyFrom = master;
  }
  return poolKey;
}

function string(body, field) {
  if (typeof body[field] !== 'string') throw requestError(`"${field}" must be a string`);
  return body[field];
}

const routes = {
  'POST /encrypt': (b, env) => ({ token: encrypt(string(b, 'plaintext'), keyFor(b, env)) }),
  'POST /decrypt': (b, env) => ({ plaintext: decrypt(string(b, 'token'), keyFor(b, env)) }),
  'POST /hash': (b) => ({ hash: hash(string(b, 'value')), isEncrypted: isEncrypted(b.value) }),
  'POST /pool-key': (b) => ({ poolKey: toBase64(derivePoolKey(fromBase64(string(b, 'masterKey'), 'masterKey'))) }),
  'GET /generate-key': () => ({ key: toBase64(generateKey()) }),
};

const json = (status, value) =>
  new Response(JSON.stringify(value), {
    status,
    headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' },
  });

export default {
  async fetch(request, env) {
    const { pathname } = new URL(request.url);
    const route = routes[`${request.method} ${pathname}`];
    if (!route) {
      return json(404, { error: { code: 'not_found', message: `no route ${request.method} ${pathname}` } });
    }
    try {
      let body = {};
      if (request.method === 'POST') {
        try {
          body = await request.json();
        } catch {
          throw requestError('the body is not JSON');
        }
        if (body === null || typeof body !== 'object') throw requestError('the body must be a JSON object');
      }
      return json(200, route(body, env ?? {}));
    } catch (e) {
      if (e && typeof e.code === 'string') {
        return json(400, { error: { code: e.code, message: e.message } });
      }
      return json(500, { error: { code: 'internal', message: String(e && e.message || e) } });
    }
  },
};
