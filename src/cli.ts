import { readFileSync } from 'node:fs';
import {
  ADD_MEMBER_OPTIONS,
  COMPLETION_OPTIONS,
  CREATE_BACKUP_OPTIONS,
  BACKUPS_OPTIONS,
  CREATE_DROPLETS_OPTIONS,
  DEFRAG_OPTIONS,
  DESTROY_DROPLETS_OPTIONS,
  FIREWALL_OPTIONS,
  GEN_USERDATA_OPTIONS,
  HEALTH_OPTIONS,
  REMOVE_MEMBER_OPTIONS,
  RENEW_CERTS_OPTIONS,
  REPAIR_OPTIONS,
  RESTORE_OPTIONS,
  ROLL_OPTIONS,
  VERSION_OPTIONS,
  withCommonOptions,
} from './commands/specs.js';
import { SHELLS, type Command, type RunCommand } from './command.js';
import type { CommandContext, Writable } from './context.js';
import { CliError, EXIT_USAGE, usageError } from './errors.js';
import { closestName, parseOptions, renderOptionsHelp, stringFlag, type ParsedOptions } from './options.js';
import { writeResult } from './result.js';
import { DEFAULT_ETCD_VERSION } from './versions.js';

export { SHELLS, type Command, type RunCommand } from './command.js';

const TABLE: Command[] = [
  {
    name: 'gen-userdata',
    summary: 'Mint the cluster PKI offline and write one #cloud-config per member',
    usage: 'etcd-cloudinit gen-userdata --ips <a,b,c> [options]',
    options: GEN_USERDATA_OPTIONS,
    examples: [
      'etcd-cloudinit gen-userdata --ips 10.10.0.11,10.10.0.12,10.10.0.13',
      'etcd-cloudinit gen-userdata --cluster-name prod --ips 10.10.0.11,10.10.0.12,10.10.0.13 --names alpha,beta,gamma',
      'etcd-cloudinit gen-userdata --config cluster.yaml --print etcd1 > etcd1.yaml',
      'etcd-cloudinit gen-userdata --ips 10.0.0.5,10.0.0.6,10.0.0.7 --release-url http://mirror.internal/etcd --etcd-version v3.5.21',
      "etcd-cloudinit gen-userdata --ips 10.10.0.11,10.10.0.12,10.10.0.13 -o json | jq -r '.members[].userData.file'",
    ],
    load: () => import('./commands/gen-userdata.js').then((command) => command.runGenUserdata),
  },
  {
    name: 'health',
    summary: "Ask every member of a cluster for its health, status, database (size, in use, share of the quota, alarms) and certificate expiry (exit 1 on any problem)",
    usage: 'etcd-cloudinit health [--cluster-name <name>] [--out <dir>] [--warn-days <days>] [--json]',
    options: HEALTH_OPTIONS,
    examples: [
      'etcd-cloudinit health',
      'etcd-cloudinit health --cluster-name prod --warn-days 60',
      'etcd-cloudinit health --json | jq -r \'.members[] | select(.healthy | not) | .name\'',
    ],
    load: () => import('./commands/health.js').then((command) => command.runHealth),
  },
  {
    name: 'defrag',
    summary:
      "Give back the space compaction freed, and recover from NOSPACE without SSH: compact the history to the current revision, defragment every member one at a time (the leader last), then disarm the NOSPACE alarm",
    usage: 'etcd-cloudinit defrag [--dry-run] [--cluster-name <name>] [--out <dir>]',
    options: DEFRAG_OPTIONS,
    examples: ['etcd-cloudinit defrag --dry-run', 'etcd-cloudinit defrag --cluster-name prod', "etcd-cloudinit defrag --json | jq -r '.members[] | \"\\(.name) \\(.dbSizeBefore) -> \\(.dbSizeAfter)\"'"],
    load: () => import('./commands/defrag.js').then((command) => command.runDefrag),
  },
  {
    name: 'add-member',
    summary:
      "Mint a new member's certificate with the existing CA, add it to the running cluster as a learner (it promotes itself once in sync) and write its user-data; on a create-droplets cluster also create its droplet and A record",
    usage: 'etcd-cloudinit add-member (--ip <address> | --hostname <name> | on a --domain cluster nothing) [--name <name>] [--voter] [--dry-run] [--cluster-name <name>] [--out <dir>]',
    options: ADD_MEMBER_OPTIONS,
    examples: [
      'etcd-cloudinit add-member --ip 10.10.0.14',
      'etcd-cloudinit add-member --cluster-name prod --ip 10.10.0.14 --name delta',
      'etcd-cloudinit add-member --ip 10.10.0.14 --voter',
      'etcd-cloudinit add-member --cluster-name dns --hostname etcd4.db.example.com    # a --hostnames cluster',
      'DIGITALOCEAN_TOKEN=... etcd-cloudinit add-member --cluster-name prod --dry-run   # a create-droplets cluster: <cluster>-etcd4.<domain>',
    ],
    load: () => import('./commands/add-member.js').then((command) => command.runAddMember),
  },
  {
    name: 'remove-member',
    summary: 'Remove a member from the running cluster and from cluster.json; on a create-droplets cluster also delete its droplet and A record',
    usage: 'etcd-cloudinit remove-member --member <name> [--yes | --dry-run] [--cluster-name <name>] [--out <dir>]',
    options: REMOVE_MEMBER_OPTIONS,
    examples: [
      'etcd-cloudinit remove-member --member etcd4                    # asks for confirmation on a terminal',
      'etcd-cloudinit remove-member --cluster-name prod --member delta --dry-run',
      'DIGITALOCEAN_TOKEN=... etcd-cloudinit remove-member --cluster-name prod --member etcd4 --yes',
      'etcd-cloudinit remove-member --member etcd4 --yes --json | jq -r .removed.id',
    ],
    load: () => import('./commands/remove-member.js').then((command) => command.runRemoveMember),
  },
  {
    name: 'renew-certs',
    summary: 'Renew member certificates in place (each member makes a new key, the workstation signs its CSR through etcd, no SSH) and re-issue admin and client certificates with the same CA',
    usage: 'etcd-cloudinit renew-certs [--member <name>]... [--admin] [--rotate-keys] [--client <name>]... [--cert-days <days>] [--timeout <seconds>] [--via-ssh-script] [--dry-run]',
    options: RENEW_CERTS_OPTIONS,
    examples: [
      'etcd-cloudinit renew-certs',
      'etcd-cloudinit renew-certs --member etcd2 --cert-days 365',
      'etcd-cloudinit renew-certs --dry-run --json | jq -r \'.members[] | "\\(.name) \\(.notAfter)"\'',
      'etcd-cloudinit renew-certs --via-ssh-script --rotate-keys && ssh root@10.10.0.11 sh -s -- --restart < out/etcd/renew/etcd1.sh',
    ],
    load: () => import('./commands/renew-certs.js').then((command) => command.runRenewCerts),
  },
  {
    name: 'roll',
    summary:
      'Replace members one at a time by new machines (new certificates, and optionally a new etcd release, key type or size, install mode, droplet size or image): each joins as a learner, catches up and is promoted before the old one is removed; a roll of every member then re-issues the admin and client certificates with new keys',
    usage: 'etcd-cloudinit roll [--etcd-version <vX.Y.Z>] [--member <name>]... (IP mode: --ips <a,b,c>) [--print] [--dry-run] [--cluster-name <name>]',
    options: ROLL_OPTIONS,
    examples: [
      'etcd-cloudinit roll --ips 10.10.0.21,10.10.0.22,10.10.0.23 --dry-run',
      'etcd-cloudinit roll --etcd-version v3.5.30 --ips 10.10.0.21,10.10.0.22,10.10.0.23',
      'etcd-cloudinit roll --cluster-name dns --member etcd2 --print > etcd2-2.yaml    # a --domain cluster: etcd2 -> etcd2-2',
      'DIGITALOCEAN_TOKEN=... etcd-cloudinit roll --cluster-name prod --etcd-version v3.6.16 --size s-2vcpu-4gb',
    ],
    load: () => import('./commands/roll.js').then((command) => command.runRoll),
  },
  {
    name: 'repair',
    summary: 'Replace a dead member: remove it (the others keep quorum), then add a new machine in its place the way roll does',
    usage: 'etcd-cloudinit repair --member <name> (IP mode: --ip <address>) [--print] [--dry-run] [--cluster-name <name>]',
    options: REPAIR_OPTIONS,
    examples: [
      'etcd-cloudinit repair --member etcd2 --ip 10.10.0.22 --print > etcd2-2.yaml',
      'DIGITALOCEAN_TOKEN=... etcd-cloudinit repair --cluster-name prod --member etcd3',
    ],
    load: () => import('./commands/roll.js').then((command) => command.runRepair),
  },
  {
    name: 'backups',
    summary: "List a cluster's snapshots in its bucket (--backup-url), newest first: time, member, revision, size, SHA-256",
    usage: 'etcd-cloudinit backups [--cluster-name <name>] [--backup-url s3://<bucket>/<prefix> --backup-region <slug>] [--json]',
    options: BACKUPS_OPTIONS,
    examples: [
      'SPACES_ACCESS_KEY_ID=... SPACES_SECRET_ACCESS_KEY=... etcd-cloudinit backups --cluster-name prod',
      'etcd-cloudinit backups --backup-url s3://acme-etcd/prod/ --backup-region fra1 --json | jq -r \'.snapshots[0].key\'',
    ],
    load: () => import('./commands/backups.js').then((command) => command.runBackups),
  },
  {
    name: 'create-backup',
    summary:
      "Take a snapshot now from a healthy member over the client connection (nothing runs on the node), check etcd's SHA-256, and upload it to the cluster's bucket as the nodes do (or keep it in <folder>/backups/)",
    usage: 'etcd-cloudinit create-backup [--cluster-name <name>] [--out <dir>] [--dry-run] [--json]',
    options: CREATE_BACKUP_OPTIONS,
    examples: ['etcd-cloudinit create-backup --cluster-name prod', "etcd-cloudinit create-backup --json | jq -r '.key // .file'"],
    load: () => import('./commands/create-backup.js').then((command) => command.runCreateBackup),
  },
  {
    name: 'restore',
    summary:
      'Make a new cluster (as gen-userdata, or with --region as create-droplets) whose members download a snapshot from the bucket, check its SHA-256 and restore it at first boot (new cluster ID)',
    usage: 'etcd-cloudinit restore --backup-url s3://<bucket>/<prefix> (--ips <a,b,c> | --domain <zone> [--region <slug>]) [--snapshot <object>] [options]',
    options: RESTORE_OPTIONS,
    examples: [
      'etcd-cloudinit restore --backup-url s3://acme-etcd/prod/ --backup-region fra1 --cluster-name prod --ips 10.10.0.21,10.10.0.22,10.10.0.23',
      'etcd-cloudinit restore --backup-url s3://acme-etcd/prod/ --backup-region fra1 --snapshot 20261203T080000Z-etcd2-rev4711.db --ips 10.10.0.21',
      'DIGITALOCEAN_TOKEN=... etcd-cloudinit restore --backup-url s3://acme-etcd/prod/ --cluster-name prod --domain example.com --region fra1',
    ],
    load: () => import('./commands/restore.js').then((command) => command.runRestore),
  },
  {
    name: 'create-droplets',
    summary: 'Create the cluster on DigitalOcean: VPC, one droplet per member, DNS names, firewall',
    usage: 'etcd-cloudinit create-droplets --domain <zone> --region <slug> [options]',
    options: CREATE_DROPLETS_OPTIONS,
    examples: [
      'DIGITALOCEAN_TOKEN=... etcd-cloudinit create-droplets --domain example.com --region nyc3 --ssh-key <fingerprint>',
      'etcd-cloudinit create-droplets --domain example.com --region fra1 --cluster-name prod --count 5 --ssh-from 198.51.100.7/32 --dry-run',
    ],
    load: () => import('./commands/create-droplets.js').then((command) => command.runCreateDroplets),
  },
  {
    name: 'firewall',
    summary: 'Change who may reach a create-droplets cluster from outside its VPC (trusted sources, SSH), in place',
    usage: 'etcd-cloudinit firewall [--cluster-name <name>] [--trusted-source <cidr|tag:NAME|droplet:ID>]... [--ssh-from <cidr>]...',
    options: FIREWALL_OPTIONS,
    examples: [
      'etcd-cloudinit firewall --cluster-name prod --trusted-source 203.0.113.7/32',
      'etcd-cloudinit firewall --cluster-name prod --trusted-source tag:k8s-control-plane --trusted-source 203.0.113.7/32 --dry-run',
      'etcd-cloudinit firewall --cluster-name prod --trusted-source none --ssh-from none',
    ],
    load: () => import('./commands/firewall.js').then((command) => command.runFirewall),
  },
  {
    name: 'destroy-droplets',
    summary: "Delete a cluster's droplets, DNS records, firewall and the VPC create-droplets made",
    usage: 'etcd-cloudinit destroy-droplets [--cluster-name <name>] [--yes]',
    options: DESTROY_DROPLETS_OPTIONS,
    examples: ['etcd-cloudinit destroy-droplets --cluster-name etcd --yes', 'etcd-cloudinit destroy-droplets --cluster-name prod --domain example.com --dry-run'],
    load: () => import('./commands/destroy-droplets.js').then((command) => command.runDestroyDroplets),
  },
  {
    name: 'version',
    summary: 'Print the version of etcd-cloudinit (with --json also the Node.js version and the default etcd release)',
    usage: 'etcd-cloudinit version [--json]',
    options: VERSION_OPTIONS,
    examples: ['etcd-cloudinit version', 'etcd-cloudinit version --json | jq -r .defaultEtcdVersion'],
    load: async () => runVersion,
  },
  {
    name: 'completion',
    summary: 'Print a shell completion script (commands, then each command\'s flags) for bash, zsh or fish',
    usage: 'etcd-cloudinit completion bash|zsh|fish',
    options: COMPLETION_OPTIONS,
    argument: { name: 'shell', choices: SHELLS },
    examples: [
      'source <(etcd-cloudinit completion bash)                                  # bash, this shell; or add it to ~/.bashrc',
      'etcd-cloudinit completion zsh > "${fpath[1]}/_etcd-cloudinit"              # zsh, then restart it',
      'etcd-cloudinit completion fish > ~/.config/fish/completions/etcd-cloudinit.fish',
    ],
    load: () => import('./completion.js').then((completion) => completion.completionRunner(COMMANDS)),
  },
];

/** The command table: every command takes the common options too. */
export const COMMANDS: readonly Command[] = TABLE.map((command) => ({ ...command, options: withCommonOptions(command.options) }));

export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

export function renderMainHelp(): string {
  const width = Math.max(...COMMANDS.map((command) => command.name.length)) + 2;
  return [
    'etcd-cloudinit: a secure (mutual TLS) etcd cluster from cloud-init user-data alone.',
    '',
    'Usage: etcd-cloudinit <command> [options]',
    '',
    'Commands:',
    ...COMMANDS.map((command) => `  ${command.name.padEnd(width)}${command.summary}`),
    '',
    "Run 'etcd-cloudinit <command> --help' for a command's options. Every command also takes --json (or -o json: one JSON",
    'document on stdout, see schema/output/), --version and --help.',
    '',
  ].join('\n');
}

/** The version document `version --json` prints (schema/output/version.schema.json). */
export function versionDocument(): { version: string; node: string; defaultEtcdVersion: string } {
  return { version: packageVersion(), node: process.version, defaultEtcdVersion: DEFAULT_ETCD_VERSION };
}

const runVersion: RunCommand = async (_flags, context) => {
  writeResult(context, versionDocument(), () => `${packageVersion()}\n`);
  return 0;
};

/** --json or -o json: where the result goes; -o table/text is the default text. */
function outputFormat(flags: ParsedOptions): 'json' | 'text' {
  const output = stringFlag(flags, 'output');
  if (output !== undefined && !['json', 'text', 'table'].includes(output)) {
    throw usageError('parse', `output: ${JSON.stringify(output)} is not an output format (json, text or table)`);
  }
  if (flags.json === true && output !== undefined && output !== 'json') throw usageError('parse', `output: --json and -o ${output} disagree; give one`);
  return flags.json === true || output === 'json' ? 'json' : 'text';
}

function unknownCommand(name: string): string {
  const suggestion = closestName(name, COMMANDS.map((command) => command.name));
  return `etcd-cloudinit: unknown command ${JSON.stringify(name)}${suggestion ? `; did you mean ${suggestion}?` : ''}\n\n`;
}

export function renderCommandHelp(command: Command): string {
  return [
    `${command.summary}.`,
    '',
    `Usage: ${command.usage}`,
    '',
    'Options:',
    renderOptionsHelp(command.options),
    '',
    'Examples:',
    ...command.examples.map((example) => `  ${example}`),
    '',
  ].join('\n');
}

export interface MainIo {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly stdout: Writable;
  readonly stderr: Writable;
  readonly cwd?: string;
  readonly now?: () => Date;
}

/** The CLI: returns the exit code. User errors print one line; anything else is a bug and prints its stack. */
export async function main(argv: readonly string[], io: MainIo, overrides: Partial<CommandContext> = {}): Promise<number> {
  const context: CommandContext = {
    env: io.env,
    stdout: io.stdout,
    stderr: io.stderr,
    cwd: io.cwd ?? process.cwd(),
    now: io.now ?? (() => new Date()),
    ...overrides,
  };
  const [first, ...rest] = argv;
  if (first === undefined || first === '--help' || first === '-h' || first === 'help') {
    const command = COMMANDS.find((candidate) => candidate.name === rest[0]);
    context.stdout.write(command ? renderCommandHelp(command) : renderMainHelp());
    return first === undefined ? EXIT_USAGE : 0;
  }
  // `etcd-cloudinit --version [--json]` is the version command.
  const name = first === '--version' || first === '-v' ? 'version' : first;
  const command = COMMANDS.find((candidate) => candidate.name === name);
  if (!command) {
    context.stderr.write(`${unknownCommand(name)}${renderMainHelp()}`);
    return EXIT_USAGE;
  }
  try {
    const flags = parseOptions(rest, command.options, command.argument !== undefined);
    if (flags.help === true) {
      context.stdout.write(renderCommandHelp(command));
      return 0;
    }
    // With JSON output, stdout carries the one document: everything else a command prints goes to stderr.
    const run = flags.version === true ? runVersion : await command.load();
    const json = outputFormat(flags) === 'json';
    return await run(flags, json ? { ...context, stdout: context.stderr, json: context.stdout } : context);
  } catch (error) {
    if (error instanceof CliError) {
      context.stderr.write(`etcd-cloudinit ${command.name}: ${error.message}\n`);
      if (error.exitCode === EXIT_USAGE) context.stderr.write(`Run 'etcd-cloudinit ${command.name} --help' for usage.\n`);
      return error.exitCode;
    }
    context.stderr.write(`etcd-cloudinit ${command.name}: internal error (a bug; please report it):\n${(error as Error).stack ?? String(error)}\n`);
    return 70;
  }
}
