/** Where a `warden` command writes: the process's stdout/stderr, or a test's capture. */
export interface CliIO {
  out: (text: string) => void;
  err: (text: string) => void;
  /**
   * The streams behind `out`/`err` when there are real ones (the process's). A tool that streams
   * (`redact --jsonl`) writes to them so that it waits for a slow reader ('drain') instead of
   * queueing its whole output in memory; `out`/`err` cannot say "full".
   */
  streams?: { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream };
  /**
   * Where a command reads stdin (`policy eval -i -`, `render --vars -`, `redact`): called when it
   * reads it, so a command that does not is not handed the process's stream. Unset: the process's
   * stdin (processStdin in stdin.ts); a test gives its own stream.
   */
  stdin?: () => NodeJS.ReadableStream;
}
