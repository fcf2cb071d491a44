'use strict';
// A CommonJS consumer: `require` of the package; same input and output as cli.mjs.
const keyseal = require('keyseal');
const check = require('./check.cjs');

console.log(JSON.stringify(check(keyseal, JSON.parse(process.argv[2]))));
