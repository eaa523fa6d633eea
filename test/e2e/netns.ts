import { run, runAllowingFailure } from './exec.js';

// A private L2 network for the guests: a namespace with a bridge and one tap per VM. No traffic leaves it.
export interface TestNetwork {
  namespace: string;
  bridge: string;
  bridgeAddress: string;
  prefixLength: number;
  taps: string[];
  // argv run inside the namespace
  inside(argv: readonly string[]): string[];
}

export interface TestNetworkSpec {
  namespace: string;
  bridgeAddress: string;
  prefixLength: number;
  tapCount: number;
}

export async function createTestNetwork(spec: TestNetworkSpec): Promise<TestNetwork> {
  const network: TestNetwork = {
    namespace: spec.namespace,
    bridge: 'br0',
    bridgeAddress: spec.bridgeAddress,
    prefixLength: spec.prefixLength,
    taps: Array.from({ length: spec.tapCount }, (_, index) => `tap${index + 1}`),
    inside: (argv) => ['ip', 'netns', 'exec', spec.namespace, ...argv],
  };
  await run(['ip', 'netns', 'add', spec.namespace]);
  const runInside = (argv: string[]) => run(network.inside(argv));
  await runInside(['ip', 'link', 'set', 'lo', 'up']);
  await runInside(['ip', 'link', 'add', network.bridge, 'type', 'bridge']);
  await runInside(['ip', 'addr', 'add', `${spec.bridgeAddress}/${spec.prefixLength}`, 'dev', network.bridge]);
  await runInside(['ip', 'link', 'set', network.bridge, 'up']);
  for (const tap of network.taps) {
    await runInside(['ip', 'tuntap', 'add', 'dev', tap, 'mode', 'tap']);
    await runInside(['ip', 'link', 'set', tap, 'master', network.bridge, 'up']);
  }
  return network;
}

// Only after every qemu holding a tap has exited; deleting the namespace removes the bridge and taps.
export async function destroyTestNetwork(namespace: string): Promise<void> {
  await runAllowingFailure(['ip', 'netns', 'del', namespace]);
}
