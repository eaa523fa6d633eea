// Atomic file operations on a folder; what the folder holds is cluster-folder.ts's business.
import { closeSync, existsSync, fsyncSync, lstatSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, realpathSync, renameSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { CliError } from './errors.js';

/** One file of the output folder, relative to out/<cluster>/. */
export interface OutputFile {
  readonly path: string;
  readonly content: string;
  /** 0o600 for private keys. */
  readonly mode: number;
}

export const SECRET_MODE = 0o600;
export const PUBLIC_MODE = 0o644;

/** Called just before each step of a folder write, with what it is about to do. */
export type WriteStep = (step: string) => void;

const noStep: WriteStep = () => {};

/**
 * Test seam for the crash tests: with `ETCD_CLOUDINIT_CRASH_AT=<k>` in the command's env, the
 * process kills itself (SIGKILL, no clean-up) just before the k-th step of its folder write.
 */
export function crashAtStep(env: Readonly<Record<string, string | undefined>>, stderr: { write(text: string): unknown }): WriteStep {
  const at = Number(env.ETCD_CLOUDINIT_CRASH_AT);
  if (!Number.isInteger(at) || at < 1) return noStep;
  let count = 0;
  return (step) => {
    count += 1;
    if (count !== at) return;
    stderr.write(`ETCD_CLOUDINIT_CRASH_AT=${at}: killed before ${step}\n`);
    process.kill(process.pid, 'SIGKILL');
  };
}

/*
 * How a folder changes without ever leaving it half-gone. The folder stays at its name, and a file
 * that does not change (the CA) is never touched, so the CA key is always at <folder>/pki/ca.key.
 *
 *   1. stage: every new or changed file is written (fsync) under `.<name>.staging-XXXXXX/files/`;
 *   2. commit: `commit.json` in the staging folder lists the files to place and the files to delete;
 *   3. place: each staged file is renamed over its path in the folder; listed files are deleted;
 *   4. the staging folder is removed.
 *
 * A run cut short before 2 leaves the folder as it was (the next run deletes the staging folder);
 * after 2, the next run finishes 3 and 4 from commit.json. Each rename replaces one file
 * atomically, and placing is idempotent: a staged file that is gone was placed already.
 */
const STAGED_FILES = 'files';
const JOURNAL = 'commit.json';

interface Journal {
  /** Files renamed from the staging folder's files/ into the folder, in this order. */
  readonly place: readonly string[];
  /** Files deleted from the folder once every file is placed. */
  readonly remove: readonly string[];
}

const stagingPrefix = (outDir: string) => `.${basename(outDir)}.staging-`;

/**
 * Writes the whole folder: afterwards each top-level entry this run produces (`pki`, `user-data`,
 * `cluster.json`, ...) holds exactly the given files. Entries it does not produce (day-2 output)
 * stay. A failure part-way leaves the folder as it was (or no folder); a crash part-way is
 * finished by the next run's recoverOutputFolder.
 */
export function writeOutputFolder(outDir: string, files: readonly OutputFile[], step: WriteStep = noStep, alsoOwned: readonly string[] = []): void {
  let created = false;
  try {
    if (!existsSync(outDir)) {
      step(`create ${outDir}`);
      mkdirSync(outDir, { recursive: true, mode: 0o700 });
      created = true;
    }
    // `alsoOwned`: entries this kind of run writes only sometimes; when it does not, they are removed.
    const produced = new Set([...files.map((file) => file.path.split('/')[0]!), ...alsoOwned]);
    const wanted = new Set(files.map((file) => file.path));
    const remove = existingFiles(outDir, [...produced]).filter((path) => !wanted.has(path));
    commitChanges(outDir, files, remove, step);
  } catch (error) {
    // A folder this run created holds nothing yet that anyone used: gone again, as before the run.
    if (created && !isCommitted(outDir)) rmSync(outDir, { recursive: true, force: true });
    throw asWriteError(`cannot write ${outDir}`, error);
  }
}

/** Some files of an existing folder to replace or add, and some to delete (paths relative to it). */
export interface FolderUpdate {
  readonly files: readonly OutputFile[];
  readonly remove?: readonly string[];
}

/** Day-2 changes to an existing folder, as crash-safe as writeOutputFolder; the other files stay untouched. */
export function updateOutputFolder(outDir: string, update: FolderUpdate, step: WriteStep = noStep): void {
  try {
    if (!lstatSync(outDir).isDirectory()) throw new Error('not a directory');
    const written = new Set(update.files.map((file) => file.path));
    commitChanges(outDir, update.files, (update.remove ?? []).filter((path) => !written.has(path)), step);
  } catch (error) {
    throw asWriteError(`cannot update ${outDir}`, error);
  }
}

/** Stage, commit, place; see the comment above. */
function commitChanges(outDir: string, files: readonly OutputFile[], remove: readonly string[], step: WriteStep): void {
  const changed = files.filter((file) => !sameOnDisk(join(outDir, file.path), file));
  for (const file of changed) checkPlaceable(outDir, file.path);
  if (changed.length === 0 && !remove.some((path) => existsSync(join(outDir, path)))) return;
  step('create the staging folder');
  const staging = mkdtempSync(join(dirname(outDir), stagingPrefix(outDir)));
  let committed = false;
  try {
    for (const file of changed) {
      step(`stage ${file.path}`);
      const target = join(staging, STAGED_FILES, file.path);
      mkdirSync(dirname(target), { recursive: true, mode: 0o700 });
      writeDurably(target, file.content, file.mode);
    }
    const journal: Journal = { place: changed.map((file) => file.path), remove };
    step(`write ${JOURNAL}.tmp`);
    writeDurably(join(staging, `${JOURNAL}.tmp`), `${JSON.stringify(journal, null, 2)}\n`, 0o600);
    step(`commit (rename ${JOURNAL}.tmp to ${JOURNAL})`);
    renameSync(join(staging, `${JOURNAL}.tmp`), join(staging, JOURNAL));
    fsyncPath(staging);
    committed = true;
    try {
      applyJournal(outDir, staging, step);
    } catch (error) {
      throw new Error(`${(error as Error).message}; the next command on this folder finishes the write from ${staging}`);
    }
  } finally {
    // Not committed: the folder was not touched. Committed but failed: the next run finishes it.
    if (!committed) rmSync(staging, { recursive: true, force: true });
  }
}

/** Places every staged file that is still staged, deletes the listed files, removes the staging folder. */
function applyJournal(outDir: string, staging: string, step: WriteStep): void {
  const journal = JSON.parse(readFileSync(join(staging, JOURNAL), 'utf8')) as Journal;
  const touched = new Set([outDir]);
  for (const path of journal.place) {
    const staged = join(staging, STAGED_FILES, path);
    if (!existsSync(staged)) continue; // placed before a crash
    const target = join(outDir, path);
    if (!existsSync(dirname(target))) {
      step(`create ${dirname(path)}/`);
      mkdirSync(dirname(target), { recursive: true, mode: 0o700 });
    }
    step(`place ${path}`);
    renameSync(staged, target);
    touched.add(dirname(target));
  }
  for (const path of journal.remove) {
    if (!existsSync(join(outDir, path))) continue;
    step(`delete ${path}`);
    rmSync(join(outDir, path), { recursive: true, force: true });
    touched.add(dirname(join(outDir, path)));
  }
  for (const folder of touched) fsyncPath(folder);
  step('remove the staging folder');
  rmSync(join(staging, JOURNAL));
  rmSync(staging, { recursive: true, force: true });
}

function isCommitted(outDir: string): boolean {
  return stagingFolders(outDir).some((staging) => existsSync(join(staging, JOURNAL)));
}

/**
 * Run (under the folder's lock) before anything reads the folder: finishes a write that was cut
 * short after its commit, and removes staging folders of writes cut short before it. A write of
 * etcd-cloudinit 0.1.0 swapped whole folders by two renames; one cut short between them left the
 * folder only at `.<name>.staging-XXXXXX.previous`, which is moved back. A leftover holding a CA
 * key that the folder lacks is never deleted: the error says where it is.
 */
export function recoverOutputFolder(outDir: string): void {
  try {
    const leftovers = stagingFolders(outDir);
    // 0.1.0's old folder, renamed away just before the new one would have taken its name.
    for (const previous of leftovers.filter((path) => path.endsWith('.previous'))) {
      if (!existsSync(outDir)) renameSync(previous, outDir);
      else removeUnlessOnlyCa(outDir, previous, previous);
    }
    for (const staging of leftovers.filter((path) => !path.endsWith('.previous'))) {
      if (existsSync(join(staging, JOURNAL))) applyJournal(outDir, staging, noStep);
      else if (existsSync(join(staging, STAGED_FILES))) rmSync(staging, { recursive: true, force: true });
      // 0.1.0's staging folder: a whole copy of the folder, CA key included.
      else removeUnlessOnlyCa(outDir, staging, staging);
    }
  } catch (error) {
    throw asWriteError(`cannot finish an earlier write of ${outDir}`, error);
  }
}

function removeUnlessOnlyCa(outDir: string, leftover: string, shown: string): void {
  const caKey = join('pki', 'ca.key');
  const keptKey = readIfExists(join(leftover, caKey));
  const liveKey = readIfExists(join(outDir, caKey));
  if (keptKey && !(liveKey && liveKey.equals(keptKey))) {
    throw new CliError(
      'write',
      `${shown}/${caKey} is a CA key that ${outDir}/${caKey} is not (left by a write that was cut short): it may be this cluster's CA. ` +
        `Move that folder to ${outDir} (if ${outDir} has nothing to keep) or elsewhere, then run again`,
    );
  }
  rmSync(leftover, { recursive: true, force: true });
}

/** Every `.<name>.staging-*` beside the folder, oldest first. */
function stagingFolders(outDir: string): string[] {
  const parent = dirname(outDir);
  let entries: string[];
  try {
    entries = readdirSync(parent);
  } catch {
    return [];
  }
  return entries
    .filter((entry) => entry.startsWith(stagingPrefix(outDir)))
    .map((entry) => join(parent, entry))
    .filter((path) => lstatSync(path).isDirectory())
    .sort((a, b) => lstatSync(a).mtimeMs - lstatSync(b).mtimeMs);
}

/** Files under the given top-level entries of the folder, relative to it. */
function existingFiles(outDir: string, entries: readonly string[]): string[] {
  const found: string[] = [];
  const walk = (path: string) => {
    let stat;
    try {
      stat = lstatSync(join(outDir, path));
    } catch {
      return;
    }
    if (!stat.isDirectory()) found.push(path);
    else for (const entry of readdirSync(join(outDir, path))) walk(`${path}/${entry}`);
  };
  for (const entry of entries) walk(entry);
  return found;
}

/** A rename puts a file in place only over a file or nothing, inside folders. */
function checkPlaceable(outDir: string, path: string): void {
  const parts = path.split('/');
  for (let depth = 1; depth <= parts.length; depth++) {
    const prefix = parts.slice(0, depth).join('/');
    let stat;
    try {
      stat = lstatSync(join(outDir, prefix));
    } catch {
      return;
    }
    const isLast = depth === parts.length;
    if (isLast ? stat.isDirectory() : !stat.isDirectory()) {
      throw new Error(`${join(outDir, prefix)} is ${isLast ? 'a folder' : 'not a folder'}; move it away`);
    }
  }
}

function sameOnDisk(path: string, file: OutputFile): boolean {
  try {
    const stat = lstatSync(path);
    return stat.isFile() && (stat.mode & 0o777) === file.mode && readFileSync(path).equals(Buffer.from(file.content));
  } catch {
    return false;
  }
}

function readIfExists(path: string): Buffer | undefined {
  try {
    return readFileSync(path);
  } catch {
    return undefined;
  }
}

/** Written and flushed to disk, so that a commit never names a file the disk does not have. */
function writeDurably(path: string, content: string, mode: number): void {
  const fd = openSync(path, 'wx', mode);
  try {
    writeSync(fd, content);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function fsyncPath(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function asWriteError(context: string, error: unknown): CliError {
  return error instanceof CliError ? error : new CliError('write', `${context}: ${(error as Error).message}`);
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

/** Kernel interfaces, not folders for files (Node's recursive mkdir even loops forever under /proc). */
const KERNEL_FOLDERS = ['/proc', '/sys'];

/** The kernel interface (/proc, /sys) an absolute path lies under, symlinks followed; undefined if none. */
export function kernelFolderOf(target: string): string | undefined {
  let existing = target;
  while (!existsSync(existing)) existing = dirname(existing);
  let real = existing;
  try {
    real = realpathSync(existing);
  } catch {
    // unreadable: judged by its name alone
  }
  for (const path of [target, real]) {
    const kernel = KERNEL_FOLDERS.find((folder) => path === folder || path.startsWith(`${folder}/`));
    if (kernel !== undefined) return kernel;
  }
  return undefined;
}
