import { renewInPlaceSuite } from './renew-in-place-suite.js';

// The same full in-place renewal on members by DNS name (--domain) and on droplets create-droplets made against the fake API.
renewInPlaceSuite('dns');
renewInPlaceSuite('do');
