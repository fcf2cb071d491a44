// The CommonJS view of the same types (pkg/index.d.cts), as `require('keyseal')` sees them.
import keyseal = require('keyseal');

const key: Uint8Array = keyseal.generateKey();
const token: string = keyseal.encrypt('secret', key);
const plain: string = keyseal.decrypt(token, key);
const code: keyseal.KeysealErrorCode = 'authentication';
// @ts-expect-error hash takes a string
keyseal.hash(42);

export = { plain, code };
