// A TypeScript consumer of `using` (explicit resource management) with the shipped types:
// `tsc` must accept `using k = new KeysealKey(...)`, and the emitted JS must free the key when
// the block ends. Prints JSON: the round trip's result and whether the key was disposed.
import { KeysealKey, generateKey } from 'keyseal';

declare const console: { log(line: string): void }; // no DOM or Node types needed

let escaped: KeysealKey | undefined;
function roundTrip(text: string): string {
  using k = new KeysealKey(generateKey());
  escaped = k;
  return k.decrypt(k.encrypt(text));
}

const text = roundTrip('sk-live-123');
let disposed = false;
try {
  escaped?.encrypt('after the block');
} catch {
  disposed = true;
}
console.log(JSON.stringify({ text, disposed }));
