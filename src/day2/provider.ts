/** The one place that picks a cluster's machine provider (machines.ts); another cloud's is chosen here too. */
import type { CommandContext } from '../context.js';
import type { ParsedOptions } from '../options.js';
import { dropletMachines, dropletWaitOptions } from './droplets.js';
import type { Day2Effects } from './effects.js';
import { operatorMachines, type Machines } from './machines.js';
import type { OpenCluster } from './open-cluster.js';

/** The machines of this cluster: droplets when create-droplets made it, else the operator's. */
export function machinesOf(cluster: OpenCluster, context: CommandContext, effects: Day2Effects, flags: ParsedOptions): Machines {
  return cluster.digitalocean ? dropletMachines(cluster, cluster.digitalocean, context, effects, dropletWaitOptions(flags)) : operatorMachines;
}
