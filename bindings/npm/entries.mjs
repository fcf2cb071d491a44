// Writes the npm package's entry files into pkg/ (called by scripts/build-npm.sh):
//   node bindings/npm/entries.mjs <wasm-bindgen work dir> <pkg dir>
// The public API is listed once, here, from the wasm-bindgen glue's own exports (so from the
// #[wasm_bindgen] items of src/wasm.rs) minus the loaders; each entry only differs in how it
// loads keyseal_bg.wasm:
//   index.cjs    Node, Bun, Deno `require`: the `nodejs` glue, with the .wasm bytes embedded
//                (keyseal_wasm.cjs) instead of read from `${__dirname}/keyseal_bg.wasm`, so a
//                bundle of it (esbuild, webpack; CommonJS or ES module output) needs no file
//                beside it and Deno needs no read permission.
//   index.mjs    Node, Bun, Deno `import`: re-exports index.cjs (one instance per process).
//   browser.mjs  browsers and bundlers for them: fetches keyseal_bg.wasm next to itself.
//   workerd.mjs  Cloudflare Workers: imports keyseal_bg.wasm as a module.
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const [work, out] = process.argv.slice(2);
if (!work || !out) {
  console.error('usage: node bindings/npm/entries.mjs <work dir> <pkg dir>');
  process.exit(2);
}
const fail = (msg) => {
  console.error(`entries: ERROR: ${msg}`);
  process.exit(1);
};

// Glue exports that are not API: the web loaders, and the prefix getter (the entries turn it
// into the ENCRYPTED_PREFIX constant).
const LOADERS = new Set(['default', 'initSync']);
// The staging call keysealCtx (below) makes before a v3 call: internal, not API.
const INTERNAL = new Set(['keysealStageContext']);
const PREFIX_GETTER = 'encryptedPrefix';

const webGlue = await import(pathToFileURL(path.join(work, 'web', 'keyseal.js')).href);
const webNames = Object.keys(webGlue).filter((n) => !LOADERS.has(n) && !INTERNAL.has(n)).sort();
if (!webNames.includes(PREFIX_GETTER)) fail(`the web glue has no ${PREFIX_GETTER}()`);
const API = webNames.filter((n) => n !== PREFIX_GETTER);

// The nodejs glue must export the same names, and load its bytes the way we replace.
let nodeGlue = fs.readFileSync(path.join(work, 'node', 'keyseal.js'), 'utf8');
const nodeNames = [...nodeGlue.matchAll(/^exports\.(\w+) = /gm)].map((m) => m[1])
  .filter((n) => !INTERNAL.has(n)).sort();
if (nodeNames.join() !== webNames.join()) {
  fail(`nodejs glue exports ${nodeNames} but web glue exports ${webNames}`);
}
const READ = "const wasmPath = `${__dirname}/keyseal_bg.wasm`;\n" +
  "const wasmBytes = require('fs').readFileSync(wasmPath);\n";
if (nodeGlue.split(READ).length !== 2) {
  fail('the nodejs glue no longer reads keyseal_bg.wasm as expected; update entries.mjs');
}
nodeGlue = nodeGlue.replace(READ, "const wasmBytes = require('./keyseal_wasm.cjs');\n");

// wasm-bindgen's KeysealKey methods hand `this.__wbg_ptr` to wasm, which trusts it: a method
// called on another object (`KeysealKey.prototype.encrypt.call({})`, or a forged pointer)
// would throw a plain Error through wasm, leaking a slot each time, or read the wrong memory.
// So only objects this module made get through: a brand set where the glue creates them,
// checked before every call into wasm.
const BRAND = `// Added by bindings/npm/entries.mjs: only KeysealKeys this module made reach wasm.
const KeysealKeyBrand = new WeakSet();
function keysealKeyPtr(obj) {
    if (!KeysealKeyBrand.has(obj)) {
        const e = new Error('bad key: not a KeysealKey made by this module');
        e.name = 'KeysealError';
        e.code = 'bad_key';
        throw e;
    }
    return obj.__wbg_ptr;
}
`;
function brandKeysealKey(glue, which) {
  const edits = [
    // [pattern, replacement, expected count (0: at least one)]
    [/^((?:export )?class KeysealKey \{)$/m, `${BRAND}$1`, 1],
    [/^(\s*)(obj\.__wbg_ptr = ptr;)$/m, '$1$2\n$1KeysealKeyBrand.add(obj);', 1],
    [/^(\s*)(this\.__wbg_ptr = ret\[0\];)$/m, '$1$2\n$1KeysealKeyBrand.add(this);', 1],
    [/wasm\.keysealkey_(\w+)\(this\.__wbg_ptr/g, 'wasm.keysealkey_$1(keysealKeyPtr(this)', 0],
  ];
  for (const [re, to, want] of edits) {
    const n = (glue.match(new RegExp(re.source, re.flags.includes('g') ? re.flags : `${re.flags}g`)) || []).length;
    if (want ? n !== want : n === 0) {
      fail(`the ${which} glue's KeysealKey no longer looks as expected (${re}: ${n}); update entries.mjs`);
    }
    glue = glue.replace(re, to);
  }
  if (/wasm\.\w+\(this\.__wbg_ptr/.test(glue)) {
    fail(`the ${which} glue passes an unchecked KeysealKey pointer; update entries.mjs`);
  }
  return glue;
}
// A v3 context read part by part through wasm costs several crossings per part, and even a
// context in one Uint8Array cost about 1 µs of hardened reading; written here straight into
// wasm memory (keysealStageContext, src/wasm/v3.rs) it costs no crossing into JavaScript. Only
// plain cases are staged: an array of well-formed strings and Uint8Arrays, each read once.
// Anything else (not an array, a getter or Proxy trap that throws, a part of another type, a
// lone surrogate, too many parts, a buffer detached meanwhile) is passed on as given, and
// wasm reads it as before, so every error and its code stay wasm's. The intrinsics are
// captured at load, as wasm's own reads use captured ones.
const CONTEXT = `// Added by bindings/npm/entries.mjs: v3 contexts written straight into wasm memory.
const keysealCtx = (() => {
    const isArray = Array.isArray;
    // The typed-array intrinsics, bound: a Uint8Array of any realm, its real length (an own
    // \`length\` property cannot lie to them); later changes to the prototypes do not reach them.
    const call = Function.prototype.call;
    const typed = Object.getPrototypeOf(Uint8Array.prototype);
    const tagOf = call.bind(Object.getOwnPropertyDescriptor(typed, Symbol.toStringTag).get);
    const lengthOf = call.bind(Object.getOwnPropertyDescriptor(typed, 'length').get);
    const set = call.bind(Uint8Array.prototype.set);
    const code = call.bind(String.prototype.charCodeAt);
    const MAX_PARTS = 65536;
    // Beyond this the staging area is not worth it (wasm reads the array, or refuses it).
    const MAX_STAGED = 1 << 30;
    // UTF-8 length of a string, or -1 with a lone surrogate (wasm then says so).
    const utf8Length = (s) => {
        let n = 0;
        for (let i = 0; i < s.length; i++) {
            const c = code(s, i);
            if (c < 0x80) n += 1;
            else if (c < 0x800) n += 2;
            else if (c < 0xd800 || c > 0xdfff) n += 3;
            else if (c < 0xdc00 && i + 1 < s.length && (code(s, i + 1) & 0xfc00) === 0xdc00) {
                n += 4;
                i++;
            } else return -1;
        }
        return n;
    };
    const utf8Write = (s, out, at) => {
        for (let i = 0; i < s.length; i++) {
            let c = code(s, i);
            if (c < 0x80) {
                out[at++] = c;
            } else if (c < 0x800) {
                out[at++] = 0xc0 | (c >> 6);
                out[at++] = 0x80 | (c & 63);
            } else if (c < 0xd800 || c > 0xdfff) {
                out[at++] = 0xe0 | (c >> 12);
                out[at++] = 0x80 | ((c >> 6) & 63);
                out[at++] = 0x80 | (c & 63);
            } else {
                c = 0x10000 + ((c - 0xd800) << 10) + (code(s, ++i) - 0xdc00);
                out[at++] = 0xf0 | (c >> 18);
                out[at++] = 0x80 | ((c >> 12) & 63);
                out[at++] = 0x80 | ((c >> 6) & 63);
                out[at++] = 0x80 | (c & 63);
            }
        }
    };
    const u32 = (out, at, v) => {
        out[at] = v & 0xff; out[at + 1] = (v >>> 8) & 0xff;
        out[at + 2] = (v >>> 16) & 0xff; out[at + 3] = v >>> 24;
    };
    // The context to pass to wasm: undefined once staged (wasm then takes the staged one
    // first), else the context as given.
    return (context) => {
        if (context === undefined || context === null) return context;
        try {
            if (!isArray(context)) return context;
            const n = context.length;
            if (!(n >= 0 && n <= MAX_PARTS)) return context;
            // Each part read once, before anything is staged (a getter may re-enter wasm and
            // stage its own call's context); its UTF-8 (or byte) length kept beside it.
            const parts = new Array(n);
            const lengths = new Array(n);
            let size = 0;
            for (let i = 0; i < n; i++) {
                const part = context[i];
                let len;
                if (typeof part === 'string') {
                    len = utf8Length(part);
                    if (len < 0) return context;
                } else if (tagOf(part) === 'Uint8Array') {
                    len = lengthOf(part);
                } else {
                    return context;
                }
                parts[i] = part;
                lengths[i] = len;
                size += 4 + len;
            }
            // A later part's getter may have detached an earlier part's buffer: then wasm
            // reads the array and says so.
            for (let i = 0; i < n; i++) {
                if (typeof parts[i] !== 'string' && lengthOf(parts[i]) !== lengths[i]) return context;
            }
            if (size > MAX_STAGED) return context;
            const base = wasm.keysealStageContext(size) >>> 0;
            if (base === 0) return context;
            // After the call: it may have grown the memory, which replaces the buffer.
            const mem = getUint8ArrayMemory0();
            let at = base + 4;
            for (let i = 0; i < n; i++) {
                const part = parts[i];
                const len = lengths[i];
                u32(mem, at, len);
                if (typeof part === 'string') utf8Write(part, mem, at + 4);
                else set(mem, part, at + 4);
                at += 4 + len;
            }
            // Last: only a completely written context is staged.
            u32(mem, base, size + 1);
            return undefined;
        } catch (_) {
            return context;
        }
    };
})();
`;
function fastContext(glue, which) {
  const anchor = /^((?:export )?class KeysealKey \{)$/m;
  const calls = /(wasm\.(?:keysealkey_)?(?:en|de)crypt(?:Bytes)?V3\((?:keysealKeyPtr\(this\), )?[^()]*?)\bcontext\)/g;
  const n = (glue.match(calls) || []).length;
  if (n !== 8 || !anchor.test(glue)) {
    fail(`the ${which} glue's v3 calls no longer look as expected (${n} of 8); update entries.mjs`);
  }
  return glue.replace(anchor, `${CONTEXT}$1`).replace(calls, '$1keysealCtx(context))');
}
nodeGlue = fastContext(brandKeysealKey(nodeGlue, 'nodejs'), 'nodejs');
const webGluePath = path.join(out, 'keyseal_web.js');
fs.writeFileSync(
  webGluePath,
  fastContext(brandKeysealKey(fs.readFileSync(webGluePath, 'utf8'), 'web'), 'web'),
);

const wasm = fs.readFileSync(path.join(out, 'keyseal_bg.wasm'));
const HEADER = '// Generated by bindings/npm/entries.mjs when the package is built.\n';
const list = (indent, fmt, sep) => API.map((n) => indent + fmt(n)).join(sep);
const reexport = `export {\n${list('  ', (n) => n, ',\n')},\n} from './keyseal_web.js';`;

const files = {
  'keyseal_node.cjs': nodeGlue,
  'keyseal_wasm.cjs': `'use strict';
${HEADER}// The bytes of keyseal_bg.wasm (base64), for the Node entry: a bundler carries them along.
const b64 = '${wasm.toString('base64')}';
module.exports = typeof Buffer === 'function'
  ? Buffer.from(b64, 'base64')
  : Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
`,
  'index.cjs': `'use strict';
${HEADER}// CommonJS entry (Node, Bun, Deno): the wasm-bindgen \`nodejs\` glue compiles the embedded
// .wasm synchronously, at require.
const wasm = require('./keyseal_node.cjs');

${list('', (n) => `exports.${n} = wasm.${n};`, '\n')}
exports.ENCRYPTED_PREFIX = wasm.${PREFIX_GETTER}();
`,
  'index.mjs': `${HEADER}// ES module entry for Node, Bun and Deno: the same module instance as require('keyseal').
import keyseal from './index.cjs';

export const {
${list('  ', (n) => n, ',\n')},
  ENCRYPTED_PREFIX,
} = keyseal;
`,
  'browser.mjs': `${HEADER}// ES module entry for browsers and bundlers targeting them: fetches and instantiates
// keyseal_bg.wasm once, at import (top-level await), so every function is synchronous
// afterwards. Bundlers that understand \`new URL(..., import.meta.url)\` (webpack 5) emit the
// .wasm themselves; with others (esbuild), copy keyseal_bg.wasm next to the bundle.
import init, { ${PREFIX_GETTER} } from './keyseal_web.js';

await init({ module_or_path: new URL('./keyseal_bg.wasm', import.meta.url) });

${reexport}
export const ENCRYPTED_PREFIX = ${PREFIX_GETTER}();
`,
  'workerd.mjs': `${HEADER}// Entry for Cloudflare Workers (workerd): the runtime compiles imported .wasm files itself
// and forbids compiling wasm from bytes at run time.
import module from './keyseal_bg.wasm';
import { initSync, ${PREFIX_GETTER} } from './keyseal_web.js';

initSync({ module });

${reexport}
export const ENCRYPTED_PREFIX = ${PREFIX_GETTER}();
`,
};
for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(out, name), text);
console.log(`entries: ${Object.keys(files).join(', ')}; API: ${API.join(', ')}, ENCRYPTED_PREFIX`);
