// The demo page's script. It loads the npm package as plain ESM (`keyseal` is mapped to
// /pkg/browser.mjs by the import map in index.html) and wires the forms to it. Every failure,
// including a failure to load the package, is shown in the page with its code and message.

const $ = (id) => document.getElementById(id);

// ---- base64 (keys are shown URL-safe and padded, like Python's urlsafe_b64encode) ----------

/** Bytes -> URL-safe base64 with padding. */
function toBase64(bytes) {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_');
}

/** Base64 (standard or URL-safe, padding optional) -> bytes; a page-side `bad_key` otherwise. */
function fromBase64(text, what) {
  const s = text.replace(/\s+/g, '').replace(/-/g, '+').replace(/_/g, '/');
  if (s === '') throw pageError('bad_key', `${what} is empty`);
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s) || s.length % 4 === 1) {
    throw pageError('bad_key', `${what} is not base64`);
  }
  const bin = atob(s.padEnd(Math.ceil(s.length / 4) * 4, '='));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

/** An error raised by the page itself (before the package sees the input), shaped like one of its own. */
function pageError(code, message) {
  return Object.assign(new Error(message), { name: 'KeysealError', code });
}

// ---- showing results and errors --------------------------------------------------------------

/** Shows a success note in a status element. */
function ok(el, text) {
  el.className = 'status ok';
  el.removeAttribute('data-code');
  el.textContent = text;
}

/** Shows an error in a status element: its code as a badge, then its message. */
function fail(el, e) {
  const code = (e && typeof e.code === 'string') ? e.code : (e && e.name) || 'error';
  const message = (e && e.message) || String(e);
  el.className = 'status error';
  el.dataset.code = code;
  el.replaceChildren(Object.assign(document.createElement('span'), { className: 'code', textContent: code }),
    document.createTextNode(' ' + message));
}

function clear(el) {
  el.className = 'status';
  el.removeAttribute('data-code');
  el.textContent = '';
}

/** Runs `fn` for a button or input; anything it throws lands in `statusEl`, never uncaught. */
function on(target, event, statusEl, fn) {
  target.addEventListener(event, () => {
    try {
      fn();
    } catch (e) {
      fail(statusEl, e);
    }
  });
}

function showPageError(text) {
  const el = $('page-error');
  el.hidden = false;
  el.textContent = text;
}

// A last resort: nothing should get here, but if it does it is shown, not lost in the console.
window.addEventListener('error', (ev) => showPageError(`Unexpected error: ${ev.message}`));
window.addEventListener('unhandledrejection', (ev) => {
  ev.preventDefault();
  showPageError(`Unexpected error: ${ev.reason && ev.reason.message || ev.reason}`);
});

// ---- the page ---------------------------------------------------------------------------------

function setStatus(state, text) {
  const pill = $('status');
  pill.dataset.state = state;
  pill.textContent = text;
}

async function main() {
  let ks;
  try {
    ks = await import('keyseal');
  } catch (e) {
    setStatus('error', 'not loaded');
    showPageError(`Could not load the keyseal package from /pkg/ (build it with \`make npm\`): ${e.message}`);
    document.querySelectorAll('button').forEach((b) => { b.disabled = true; });
    return;
  }
  let version = '';
  try {
    const res = await fetch('/pkg/package.json');
    if (res.ok) version = ' ' + (await res.json()).version;
  } catch { /* the version is decoration */ }
  setStatus('ready', `ready · keyseal${version} (wasm)`);

  const keyBytes = () => fromBase64($('key').value, 'the key');

  // Key
  on($('generate'), 'click', $('key-status'), () => {
    const key = ks.generateKey();
    $('key').value = toBase64(key);
    ok($('key-status'), `new ${key.length}-byte key from crypto.getRandomValues`);
  });
  on($('key'), 'input', $('key-status'), () => {
    clear($('key-status'));
    const v = $('key').value.trim();
    if (v) {
      const n = fromBase64(v, 'the key').length;
      if (n === 32) ok($('key-status'), '32 bytes');
      else fail($('key-status'), pageError('bad_key', `the key is ${n} bytes; it must be 32`));
    }
  });

  // Encrypt
  on($('encrypt'), 'click', $('encrypt-status'), () => {
    $('token-out').value = '';
    const token = ks.encrypt($('plaintext').value, keyBytes());
    $('token-out').value = token;
    ok($('encrypt-status'), `encrypted: ${token.length} characters, a fresh nonce each time`);
  });
  on($('to-decrypt'), 'click', $('decrypt-status'), () => {
    $('token-in').value = $('token-out').value;
    clear($('decrypt-status'));
    $('token-in').focus();
  });

  // Decrypt
  on($('decrypt'), 'click', $('decrypt-status'), () => {
    $('plaintext-out').value = '';
    const plaintext = ks.decrypt($('token-in').value.trim(), keyBytes());
    $('plaintext-out').value = plaintext;
    ok($('decrypt-status'), `decrypted: ${plaintext.length} characters`);
  });

  // Inspect
  const inspect = () => {
    clear($('inspect-status'));
    const v = $('inspect').value;
    const enc = ks.isEncrypted(v);
    $('is-encrypted').textContent = String(enc);
    $('is-encrypted').dataset.state = enc ? 'ready' : 'off';
    $('hash-out').textContent = ks.hash(v);
  };
  on($('inspect'), 'input', $('inspect-status'), inspect);
  try { inspect(); } catch (e) { fail($('inspect-status'), e); }

  // Pool key
  on($('master-from-key'), 'click', $('pool-status'), () => {
    $('master').value = $('key').value;
    clear($('pool-status'));
  });
  on($('derive'), 'click', $('pool-status'), () => {
    $('pool-out').value = '';
    const master = fromBase64($('master').value, 'the master key');
    const t0 = performance.now();
    const pool = ks.derivePoolKey(master);
    const ms = performance.now() - t0;
    $('pool-out').value = toBase64(pool);
    ok($('pool-status'), `derived in ${ms.toFixed(0)} ms`);
  });
  on($('pool-to-key'), 'click', $('key-status'), () => {
    if (!$('pool-out').value) throw pageError('bad_key', 'derive a pool key first');
    $('key').value = $('pool-out').value;
    ok($('key-status'), 'using the pool key');
  });

  // Copy buttons (the clipboard API may be refused; say so rather than fail silently)
  for (const b of document.querySelectorAll('button[data-copy]')) {
    b.addEventListener('click', async () => {
      const text = $(b.dataset.copy).value;
      try {
        await navigator.clipboard.writeText(text);
        b.textContent = 'Copied';
      } catch {
        $(b.dataset.copy).select();
        b.textContent = 'Press Ctrl-C';
      }
      setTimeout(() => { b.textContent = 'Copy'; }, 1500);
    });
  }
  document.body.dataset.ready = 'true';
}

main();
