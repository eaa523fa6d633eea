// Builds (or finds cached) everything the VM suites boot, so CI can do it while the unit tests run:
// `tsx test/e2e/prepare.ts`. The suites call the same functions and reuse what this left.
import { fileURLToPath } from 'node:url';
import { bakedImage, defaultDebianMirror, downloadImage, minimalImage, nextMinorRelease, nftablesRepo } from './images.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const started = Date.now();
const log = (line: string): void => console.log(`[e2e-prepare ${Math.round((Date.now() - started) / 1000)}s] ${line}`);
const options = { repoRoot, debianMirror: defaultDebianMirror(), log };

// The baked and minimal images copy the download image's root filesystem, so it comes second.
await downloadImage(options);
await bakedImage(options);
await minimalImage(options);
await nftablesRepo(options);
const release = await nextMinorRelease(options);
log(`etcd ${release.version} from Debian sid ready`);
log(`images and releases ready in ${Math.round((Date.now() - started) / 1000)} s`);
