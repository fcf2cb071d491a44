'use strict';
// What a v3 header and context cost in the npm package: KeysealKey encrypt and decrypt of a
// 64-byte secret as v2, as v3 with no context and as v3 with a row context ("users", "4242",
// "api_token"), in one process (ns of CPU time per call).
//   make npm && node bindings/bench-context.cjs [rounds]
// Rounds of 5 000 calls per case run back to back, the cases in turn, so that a slow moment of
// a loaded machine hits all of them alike; each difference (v3 over v2, context over none) is
// the median of the differences within a round, beside each case's median and fastest round.
// KEYSEAL_PKG=dir measures another build of the package (e.g. a copy of an older pkg/).
const path = require('node:path');
const k = require(path.join(process.env.KEYSEAL_PKG || path.join(__dirname, '..', 'pkg'), 'index.cjs'));

const h = new k.KeysealKey(new Uint8Array(32).fill(1));
const ROW = ['users', '4242', 'api_token'];
const secret = 'x'.repeat(64);
const tokens = { v2: h.encrypt(secret), none: h.encryptV3(secret, 2), row: h.encryptV3(secret, 2, ROW) };
if (h.decryptV3(tokens.row, ROW) !== secret) throw new Error('the row token does not decrypt');
const cases = {
  'decrypt v2': () => h.decrypt(tokens.v2),
  'decrypt v3, no context': () => h.decryptV3(tokens.none),
  'decrypt v3, row context': () => h.decryptV3(tokens.row, ROW),
  'encrypt v2': () => h.encrypt(secret),
  'encrypt v3, no context': () => h.encryptV3(secret, 2),
  'encrypt v3, row context': () => h.encryptV3(secret, 2, ROW),
};
const N = 5000;
const ROUNDS = Number(process.argv[2] || 60);
// CPU time of the process, not wall time: on a machine shared with builds, the time this
// process waits for a core is most of the wall time and none of the cost.
const time = (f) => {
  const t = process.cpuUsage();
  for (let i = 0; i < N; i++) f();
  const d = process.cpuUsage(t);
  return ((d.user + d.system) * 1000) / N;
};
for (const f of Object.values(cases)) for (let i = 0; i < 20000; i++) f();
const runs = Object.fromEntries(Object.keys(cases).map((n) => [n, []]));
for (let r = 0; r < ROUNDS; r++) for (const [n, f] of Object.entries(cases)) runs[n].push(time(f));
const median = (v) => {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const ns = (x) => `${x.toFixed(0)} ns`;
for (const [n, v] of Object.entries(runs)) {
  console.log(`${n.padEnd(24)} median ${ns(median(v)).padStart(8)}, fastest round ${ns(Math.min(...v)).padStart(8)}`);
}
const diff = (a, b) => median(runs[a].map((x, i) => x - runs[b][i]));
for (const op of ['decrypt', 'encrypt']) {
  console.log(`${op}: v3 header (no context) over v2 ${ns(diff(`${op} v3, no context`, `${op} v2`))}, ` +
    `row context over no context ${ns(diff(`${op} v3, row context`, `${op} v3, no context`))} ` +
    '(medians of per-round differences)');
}
