// The package through import, as an ES module user loads it.
import * as keyseal from 'keyseal';
import cases from './cases.cjs';

cases.run(keyseal, 'import');
