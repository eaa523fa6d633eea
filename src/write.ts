import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { CliError } from './errors.js';
import type { KeyPairPem } from './pki/mint.js';

/** One file of the output folder, relative to out/<cluster>/. */
export interface OutputFile {
  readonly path: string;
  readonly content: string;
  /** 0o600 for private keys. */
  readonly mode: number;
}

export const SECRET_MODE = 0o600;
export const PUBLIC_MODE = 0o644;

/** Certificates and keys already in `<outDir>/pki`, by file base, so a re-run can keep them. */
export function readExistingPki(outDir: string): Map<string, Partial<KeyPairPem>> {
  const pkiDir = join(outDir, 'pki');
  const existing = new Map<string, Partial<KeyPairPem>>();
  if (!existsSync(pkiDir)) return existing;
  for (const entry of readdirSync(pkiDir)) {
    const match = /^(.+)\.(crt|key)$/.exec(entry);
    if (!match) continue;
    const [, base, kind] = match as unknown as [string, string, 'crt' | 'key'];
    const pair = existing.get(base) ?? {};
    existing.set(base, { ...pair, [kind === 'crt' ? 'certPem' : 'keyPem']: readFileSync(join(pkiDir, entry), 'utf8') });
  }
  return existing;
}

/** A JSON file of ours that may be absent or damaged: undefined then, so the caller decides what that means. */
export function readJsonIfValid<T>(path: string): T | undefined {
  if (!existsSync(path)) return undefined;
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

/**
 * Writes the whole folder atomically: everything goes to a temporary sibling, which then replaces
 * the old folder by rename. A failure part-way leaves the old folder (or nothing) as it was.
 * Entries of an existing folder that this run does not produce (day-2 output) are carried over.
 */
export function writeOutputFolder(outDir: string, files: readonly OutputFile[]): void {
  const parent = dirname(outDir);
  const name = basename(outDir);
  let staging: string | undefined;
  try {
    mkdirSync(parent, { recursive: true });
    staging = mkdtempSync(join(parent, `.${name}.staging-`));
    for (const file of files) {
      const target = join(staging, file.path);
      mkdirSync(dirname(target), { recursive: true, mode: 0o700 });
      writeFileSync(target, file.content, { mode: file.mode, flag: 'wx' });
    }
    if (existsSync(outDir)) {
      const produced = new Set(files.map((file) => file.path.split('/')[0]));
      for (const entry of readdirSync(outDir)) {
        if (!produced.has(entry)) cpSync(join(outDir, entry), join(staging, entry), { recursive: true, preserveTimestamps: true });
      }
      const previous = `${staging}.previous`;
      renameSync(outDir, previous);
      renameSync(staging, outDir);
      rmSync(previous, { recursive: true, force: true });
    } else {
      renameSync(staging, outDir);
    }
    staging = undefined;
  } catch (error) {
    throw new CliError('write', `cannot write ${outDir}: ${(error as Error).message}`);
  } finally {
    if (staging) rmSync(staging, { recursive: true, force: true });
  }
}

/** Some files of an existing folder to replace or add, and some to delete (paths relative to it). */
export interface FolderUpdate {
  readonly files: readonly OutputFile[];
  readonly remove?: readonly string[];
}

/**
 * Day-2 changes to an existing folder, atomically like writeOutputFolder: a copy of the folder
 * (modes kept) is changed and then replaces it by rename.
 */
export function updateOutputFolder(outDir: string, update: FolderUpdate): void {
  const parent = dirname(outDir);
  let staging: string | undefined;
  try {
    staging = mkdtempSync(join(parent, `.${basename(outDir)}.staging-`));
    cpSync(outDir, staging, { recursive: true, preserveTimestamps: true });
    for (const path of update.remove ?? []) rmSync(join(staging, path), { force: true });
    for (const file of update.files) {
      const target = join(staging, file.path);
      mkdirSync(dirname(target), { recursive: true, mode: 0o700 });
      rmSync(target, { force: true });
      writeFileSync(target, file.content, { mode: file.mode, flag: 'wx' });
    }
    const previous = `${staging}.previous`;
    renameSync(outDir, previous);
    renameSync(staging, outDir);
    staging = undefined;
    rmSync(previous, { recursive: true, force: true });
  } catch (error) {
    throw new CliError('write', `cannot update ${outDir}: ${(error as Error).message}`);
  } finally {
    if (staging) rmSync(staging, { recursive: true, force: true });
  }
}

/** Writes one file of an existing output folder atomically (temp file, then rename). */
export function writeOutputFile(outDir: string, file: OutputFile): void {
  const target = join(outDir, file.path);
  const staging = `${target}.staging-${process.pid}`;
  try {
    mkdirSync(dirname(target), { recursive: true, mode: 0o700 });
    writeFileSync(staging, file.content, { mode: file.mode });
    renameSync(staging, target);
  } catch (error) {
    rmSync(staging, { force: true });
    throw new CliError('write', `cannot write ${target}: ${(error as Error).message}`);
  }
}

/** Who holds a folder's lock: written into the lock file, shown to whoever finds it taken. */
export interface LockHolder {
  readonly command: string;
  readonly pid: number;
  readonly hostname: string;
  readonly startedAt: string;
}

/** `out/.etcd.lock` for `out/etcd`: beside the folder, since the folder itself is replaced by rename. */
export function folderLockPath(outDir: string): string {
  return join(dirname(outDir), `.${basename(outDir)}.lock`);
}

/**
 * Runs `change` while holding the folder's lock, so that two commands never read, change and
 * replace the same folder at once (the second rename would silently undo the first's change).
 * A lock left by a process of this host that no longer runs is taken over; any other held lock is
 * an error naming its holder. Folders this call had to create for the lock are removed again if
 * nothing else was written into them.
 */
export async function withFolderLock<T>(outDir: string, command: string, now: Date, change: () => Promise<T>): Promise<T> {
  const path = folderLockPath(outDir);
  let firstCreated: string | undefined;
  try {
    firstCreated = mkdirSync(dirname(outDir), { recursive: true });
  } catch (error) {
    throw new CliError('write', `cannot write ${outDir}: ${(error as Error).message}`);
  }
  const holder: LockHolder = { command, pid: process.pid, hostname: hostname(), startedAt: now.toISOString() };
  try {
    takeLock(path, outDir, holder);
    try {
      return await change();
    } finally {
      rmSync(path, { force: true });
    }
  } finally {
    if (firstCreated) removeEmptyFolders(dirname(outDir), firstCreated);
  }
}

function takeLock(path: string, outDir: string, holder: LockHolder): void {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(path, `${JSON.stringify(holder)}\n`, { flag: 'wx', mode: PUBLIC_MODE });
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw new CliError('write', `cannot write ${outDir}: ${(error as Error).message}`);
    }
    const other = readLockHolder(path);
    if (other && other.hostname === holder.hostname && !processRuns(other.pid)) {
      rmSync(path, { force: true }); // left by a command that crashed or was killed
      continue;
    }
    const who = other ? `${other.command} (pid ${other.pid} on ${other.hostname}, since ${other.startedAt})` : 'another etcd-cloudinit command';
    throw new CliError('preflight', `${outDir} is being changed by ${who}; wait for it to finish, or if that process is gone, delete ${path}`);
  }
  throw new CliError('preflight', `${outDir}: could not take the lock ${path}; try again`);
}

function readLockHolder(path: string): LockHolder | undefined {
  try {
    const holder = JSON.parse(readFileSync(path, 'utf8')) as Partial<LockHolder>;
    if (typeof holder.command === 'string' && Number.isInteger(holder.pid) && typeof holder.hostname === 'string' && typeof holder.startedAt === 'string') {
      return holder as LockHolder;
    }
  } catch {
    // unreadable or half-written: treated as held by an unknown command
  }
  return undefined;
}

/** Signal 0 only asks whether the process exists; nothing is sent to it. */
function processRuns(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes `from` and its parents up to `upTo` (the first folder mkdir created), while they are empty. */
function removeEmptyFolders(from: string, upTo: string): void {
  for (let folder = from; folder.startsWith(upTo); folder = dirname(folder)) {
    try {
      rmdirSync(folder);
    } catch {
      return; // not empty: something was written
    }
    if (folder === upTo) return;
  }
}
