/** Where a `warden` command writes: the process's stdout/stderr, or a test's capture. */
export interface CliIO {
  out: (text: string) => void;
  err: (text: string) => void;
}
