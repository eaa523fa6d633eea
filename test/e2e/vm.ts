import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { run, startLogged, waitFor } from './exec.js';
import type { GuestImage } from './guest-image.js';
import type { TestNetwork } from './netns.js';

export type Accelerator = 'kvm' | 'tcg';

export interface VmSpec {
  name: string;
  image: GuestImage;
  seedIso: string;
  macAddress: string;
  tap: string;
  network: TestNetwork;
  runDir: string;
  accelerator: Accelerator;
  memoryMiB: number;
}

// Drivers for the emulated PC's legacy devices (and KVM, since -cpu max shows SVM) that udev would load
// for nothing: each module load costs seconds under TCG. The seed ISO is a virtio disk, so no ATA either.
const UNNEEDED_MODULES = [
  'floppy', 'pcspkr', 'i2c_piix4', 'ata_piix', 'ata_generic', 'pata_acpi', 'serio_raw', 'joydev',
  'kvm', 'kvm_amd', 'kvm_intel', 'aesni_intel', 'ghash_clmulni_intel',
];

const KERNEL_COMMAND_LINE = `root=/dev/vda rw console=ttyS0 panic=-1 modprobe.blacklist=${UNNEEDED_MODULES.join(',')}`;

function acceleratorArgs(accelerator: Accelerator): string[] {
  return accelerator === 'kvm' ? ['-accel', 'kvm', '-cpu', 'host'] : ['-accel', 'tcg', '-cpu', 'max'];
}

// One guest: a qcow2 overlay on the shared base disk, so a restart keeps this member's data.
export class Vm {
  readonly overlay: string;
  private process: ChildProcess | undefined;
  private boots = 0;
  consoleLog = '';

  constructor(readonly spec: VmSpec) {
    this.overlay = join(spec.runDir, `${spec.name}.qcow2`);
  }

  get pid(): number | undefined {
    return this.process?.pid;
  }

  get running(): boolean {
    return this.process !== undefined && this.process.exitCode === null && this.process.signalCode === null;
  }

  async createDisk(): Promise<void> {
    await run(['qemu-img', 'create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', this.spec.image.disk, this.overlay]);
  }

  start(): void {
    if (this.running) throw new Error(`${this.spec.name} is already running (pid ${this.pid})`);
    this.boots += 1;
    // A new console file per boot: a restart must not overwrite the first boot's evidence.
    this.consoleLog = join(this.spec.runDir, `${this.spec.name}.boot${this.boots}.console.log`);
    const qemu = [
      'qemu-system-x86_64',
      '-name', this.spec.name,
      ...acceleratorArgs(this.spec.accelerator),
      '-smp', '1',
      '-m', String(this.spec.memoryMiB),
      '-nodefaults',
      '-display', 'none',
      '-serial', `file:${this.consoleLog}`,
      '-kernel', this.spec.image.kernel,
      '-initrd', this.spec.image.initrd,
      '-append', KERNEL_COMMAND_LINE,
      '-drive', `file=${this.overlay},if=virtio,format=qcow2`,
      '-drive', `file=${this.spec.seedIso},if=virtio,format=raw,readonly=on`,
      '-netdev', `tap,id=net0,ifname=${this.spec.tap},script=no,downscript=no`,
      '-device', `virtio-net-pci,netdev=net0,mac=${this.spec.macAddress}`,
      '-device', 'virtio-rng-pci',
    ];
    // `ip netns exec` execs qemu, so the child's PID is qemu's own.
    this.process = startLogged(this.spec.network.inside(qemu), join(this.spec.runDir, `${this.spec.name}.qemu.log`));
  }

  // A power cut, not a shutdown: the member must survive losing its VM abruptly.
  async kill(): Promise<void> {
    const child = this.process;
    if (child === undefined || !this.running) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 10_000))]);
  }

  console(): string {
    return existsSync(this.consoleLog) ? readFileSync(this.consoleLog, 'utf8') : '';
  }

  /** Every boot's console, oldest first: evidence from before a restart still counts. */
  consoleHistory(): string {
    return this.consoleLogs().filter((file) => existsSync(file)).map((file) => readFileSync(file, 'utf8')).join('\n');
  }

  consoleLogs(): string[] {
    return Array.from({ length: this.boots }, (_, index) => join(this.spec.runDir, `${this.spec.name}.boot${index + 1}.console.log`));
  }
}

// Nested KVM here exists but guests may not boot: give it a few seconds to print the kernel banner.
export async function probeAccelerator(image: GuestImage, scratchDir: string): Promise<Accelerator> {
  if (!existsSync('/dev/kvm')) return 'tcg';
  const consoleLog = join(scratchDir, 'kvm-probe.console.log');
  const probe = startLogged(
    [
      'qemu-system-x86_64', ...acceleratorArgs('kvm'), '-m', '256', '-nodefaults', '-display', 'none',
      '-serial', `file:${consoleLog}`, '-kernel', image.kernel, '-append', 'console=ttyS0 panic=-1', '-no-reboot',
    ],
    join(scratchDir, 'kvm-probe.qemu.log'),
  );
  try {
    await waitFor(
      'a kernel banner under KVM',
      async () => {
        if (existsSync(consoleLog) && readFileSync(consoleLog, 'utf8').includes('Linux version')) return true;
        if (probe.exitCode !== null) throw new Error('qemu exited');
        return undefined;
      },
      { timeoutMs: 8_000, intervalMs: 250 },
    );
    return 'kvm';
  } catch {
    return 'tcg';
  } finally {
    probe.kill('SIGKILL');
    await rm(consoleLog, { force: true });
  }
}
