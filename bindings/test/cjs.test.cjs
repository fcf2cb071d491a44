'use strict';
// The package through require(), as a CommonJS user loads it.
const keyseal = require('keyseal');
require('./cases.cjs').run(keyseal, 'require');
require('./v3-cases.cjs').run(keyseal, 'require');
