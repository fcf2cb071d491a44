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
const PREFIX_GETTER = 'encryptedPrefix';

const webGlue = await import(pathToFileURL(path.join(work, 'web', 'keyseal.js')).href);
const webNames = Object.keys(webGlue).filter((n) => !LOADERS.has(n)).sort();
if (!webNames.includes(PREFIX_GETTER)) fail(`the web glue has no ${PREFIX_GETTER}()`);
const API = webNames.filter((n) => n !== PREFIX_GETTER);

// The nodejs glue must export the same names, and load its bytes the way we replace.
let nodeGlue = fs.readFileSync(path.join(work, 'node', 'keyseal.js'), 'utf8');
const nodeNames = [...nodeGlue.matchAll(/^exports\.(\w+) = /gm)].map((m) => m[1]).sort();
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
// A v3 context read part by part through wasm costs several crossings per part (about 1 µs
// each); encoded here into one Uint8Array it costs one. Only plain cases are encoded: an array
// of well-formed strings and Uint8Arrays, read once. Anything else (not an array, a getter or
// Proxy trap that throws, a part of another type, a lone surrogate, too many parts) is passed
// on as given, and wasm reads it as before, so every error and its code stay wasm's. The
// intrinsics are captured at load, as wasm's own reads use captured ones.
const CONTEXT = `// Added by bindings/npm/entries.mjs: v3 contexts cross into wasm in one piece.
const keysealCtx = (() => {
    const apply = Reflect.apply;
    const isArray = Array.isArray;
    const U8 = Uint8Array;
    // The typed-array intrinsics: a Uint8Array of any realm, its real length (an own
    // \`length\` property cannot lie to them).
    const typed = Object.getPrototypeOf(U8.prototype);
    const tagOf = Object.getOwnPropertyDescriptor(typed, Symbol.toStringTag).get;
    const lengthOf = Object.getOwnPropertyDescriptor(typed, 'length').get;
    const set = U8.prototype.set;
    // A bound intrinsic: later changes to String.prototype do not reach it.
    const code = Function.prototype.call.bind(String.prototype.charCodeAt);
    const MAX_PARTS = 65536;
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
    return (context) => {
        try {
            if (!apply(isArray, Array, [context])) return context;
            const n = context.length;
            if (!(n >= 0 && n <= MAX_PARTS)) return context;
            // Each part read once; its UTF-8 (or byte) length kept beside it.
            const parts = [];
            const lengths = [];
            let size = 4;
            for (let i = 0; i < n; i++) {
                const part = context[i];
                let len;
                if (typeof part === 'string') {
                    len = utf8Length(part);
                    if (len < 0) return context;
                } else if (apply(tagOf, part, []) === 'Uint8Array') {
                    len = apply(lengthOf, part, []);
                } else {
                    return context;
                }
                parts[i] = part;
                lengths[i] = len;
                size += 4 + len;
            }
            const out = new U8(size);
            out[0] = 0x6b; out[1] = 0x73; out[2] = 0x63; out[3] = 1; // "ksc", format 1
            let at = 4;
            for (let i = 0; i < n; i++) {
                const part = parts[i];
                const len = lengths[i];
                out[at] = len & 0xff; out[at + 1] = (len >>> 8) & 0xff;
                out[at + 2] = (len >>> 16) & 0xff; out[at + 3] = len >>> 24;
                if (typeof part === 'string') utf8Write(part, out, at + 4);
                else apply(set, out, [part, at + 4]);
                at += 4 + len;
            }
            return out;
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
