// Atomic file operations on a folder; what the folder holds is cluster-folder.ts's business.
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
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
