// Test-only wrapper around the example worker (bindings/worker/test.mjs): counts the calls to
// crypto.getRandomValues (answered in the x-random-calls header) and, for a request with
// `x-probe-sequence: 1`, answers them with a known byte sequence (0, 1, 2, ...) so the test can
// see that nonces come from the worker's own crypto.
import worker from 'index.mjs';

const realGetRandomValues = crypto.getRandomValues.bind(crypto);
let calls = 0;
let sequence = false;
let next = 0;
crypto.getRandomValues = (array) => {
  calls++;
  if (!sequence) return realGetRandomValues(array);
  const bytes = new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
  for (let i = 0; i < bytes.length; i++) bytes[i] = next++ & 0xff;
  return array;
};

export default {
  async fetch(request, env, ctx) {
    sequence = request.headers.get('x-probe-sequence') === '1';
    try {
      const res = await worker.fetch(request, env, ctx);
      const headers = new Headers(res.headers);
      headers.set('x-random-calls', String(calls));
      return new Response(res.body, { status: res.status, headers });
    } finally {
      sequence = false;
    }
  },
};
