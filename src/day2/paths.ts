/** `out/etcd` when the folder is under the working directory, else the absolute path: for messages. */
export function relativeTo(path: string, cwd: string): string {
  return path.startsWith(`${cwd}/`) ? path.slice(cwd.length + 1) : path;
}
