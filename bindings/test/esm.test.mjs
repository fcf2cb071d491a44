// The package through import, as an ES module user loads it.
import * as keyseal from 'keyseal';
import cases from './cases.cjs';
import v3Cases from './v3-cases.cjs';

cases.run(keyseal, 'import');
v3Cases.run(keyseal, 'import');
