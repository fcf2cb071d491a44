// An ES module consumer run by a server-side runtime: `import` of the package; the vector comes
// as JSON in the first argument, the result goes to stdout as JSON.
import * as keyseal from 'keyseal';
import check from './check.cjs';

const args = globalThis.Deno ? globalThis.Deno.args : process.argv.slice(2);
console.log(JSON.stringify(check(keyseal, JSON.parse(args[0]))));
