// ES module entry for Node: the same module instance as require('keyseal').
import keyseal from './index.cjs';

export const {
  encrypt,
  decrypt,
  encryptBytes,
  decryptBytes,
  hash,
  isEncrypted,
  derivePoolKey,
  generateKey,
  KeysealKey,
  ENCRYPTED_PREFIX,
} = keyseal;
