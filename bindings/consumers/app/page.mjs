// A browser consumer, bundled for a page: the vector comes in the URL's fragment, the result
// (or the error) lands in `globalThis.keysealResult` for the test runner to read.
import * as keyseal from 'keyseal';
import check from './check.cjs';

try {
  globalThis.keysealResult = check(keyseal, JSON.parse(decodeURIComponent(location.hash.slice(1))));
} catch (e) {
  globalThis.keysealResult = { error: String(e && e.stack || e) };
}
