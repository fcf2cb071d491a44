// Checks that a .d.ts documents every declaration with a JSDoc comment (every top-level
// `export` and every class member) and names every documented error code.
//   node bindings/types-test/jsdoc-check.mjs pkg/index.d.ts
import fs from 'node:fs';

const file = process.argv[2];
const lines = fs.readFileSync(file, 'utf8').split('\n');
const missing = [];
let inClass = false;
let inComment = false;
lines.forEach((line, i) => {
  const t = line.trim();
  if (t.startsWith('/*')) inComment = true;
  if (inComment) {
    if (t.endsWith('*/')) inComment = false;
    return;
  }
  const isDecl = /^export\s/.test(line) || (inClass && /^\s{2}\S/.test(line) && !t.startsWith('//') && t !== '}');
  if (/^export (declare )?class\s/.test(line)) inClass = true;
  else if (inClass && line.startsWith('}')) inClass = false;
  if (!isDecl) return;
  let j = i - 1;
  while (j >= 0 && lines[j].trim() === '') j--;
  if (j < 0 || !lines[j].trim().endsWith('*/')) missing.push(`${file}:${i + 1}: ${t}`);
});
const codes = ['malformed', 'authentication', 'bad_key', 'not_utf8', 'randomness', 'invalid_argument'];
const undocumented = codes.filter((c) => !lines.some((l) => /^\s*\*/.test(l) && l.includes(`"${c}"`)));
if (missing.length || undocumented.length) {
  for (const m of missing) console.error(`jsdoc-check: no JSDoc comment: ${m}`);
  if (undocumented.length) console.error(`jsdoc-check: error codes not documented: ${undocumented.join(', ')}`);
  process.exit(1);
}
const count = lines.filter((l) => /^export\s/.test(l)).length;
console.log(`jsdoc-check: ${file}: all ${count} exports and their members have JSDoc; the ${codes.length} error codes are documented`);
