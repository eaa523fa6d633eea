import { renewInPlaceSuite } from './renew-in-place-suite.js';

// IP mode: the full in-place renewal under a continuous writer, members without an agent, and forged answers refused.
renewInPlaceSuite('ip');
