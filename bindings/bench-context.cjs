'use strict';
// What a v3 context costs in the npm package: KeysealKey.decryptV3 of a 64-byte secret with no
// context and with a row context ("users", "4242", "api_token"), beside v2's decrypt, in one
// process; 15 alternating rounds of 50 000 calls, median and fastest round (ns per call).
//   make npm && node bindings/bench-context.cjs
const path = require('node:path');
const k = require(path.join(__dirname, '..', 'pkg', 'index.cjs'));

const key = new Uint8Array(32).fill(1);
const h = new k.KeysealKey(key);
const ROW = ['users', '4242', 'api_token'];
const secret = 'x'.repeat(64);
const tokens = { row: h.encryptV3(secret, 2, ROW), none: h.encryptV3(secret, 2), v2: h.encrypt(secret) };
const cases = {
  'v2 decrypt': () => h.decrypt(tokens.v2),
  'v3 decrypt, no context': () => h.decryptV3(tokens.none),
  'v3 decrypt, row context': () => h.decryptV3(tokens.row, ROW),
};
const N = 50000;
const time = (f) => {
  const t = process.hrtime.bigint();
  for (let i = 0; i < N; i++) f();
  return Number(process.hrtime.bigint() - t) / N;
};
for (const f of Object.values(cases)) for (let i = 0; i < 20000; i++) f();
const runs = Object.fromEntries(Object.keys(cases).map((n) => [n, []]));
for (let r = 0; r < 15; r++) for (const [n, f] of Object.entries(cases)) runs[n].push(time(f));
const stat = {};
for (const [n, v] of Object.entries(runs)) {
  v.sort((a, b) => a - b);
  stat[n] = { median: v[7], min: v[0] };
  console.log(`${n}: median ${v[7].toFixed(0)} ns, fastest round ${v[0].toFixed(0)} ns`);
}
const ctx = (s) => stat['v3 decrypt, row context'][s] - stat['v3 decrypt, no context'][s];
console.log(`row context over no context: ${ctx('median').toFixed(0)} ns (median), ` +
  `${ctx('min').toFixed(0)} ns (fastest rounds)`);
