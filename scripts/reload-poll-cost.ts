/**
 * What the periodic reload check (`reload.poll_ms`) costs on a big Kubernetes ConfigMap mount.
 * Builds the kubelet's layout in a temp directory (`..<timestamp>/<files>`, `..data ->
 * ..<timestamp>`, and `<file> -> ..data/<file>` for each file), runs the reloader on it with
 * the periodic check only (no change happens, so nothing reloads), and reports the process's
 * CPU time per check and as a share of one core at the default interval.
 *
 *   npx tsx scripts/reload-poll-cost.ts [files=2000] [seconds=20] [poll_ms=500]
 *
 * Not a test: the figure depends on the machine. README (Hot reload) quotes it.
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startReloader } from '../src/runtime/reload.js';

const files = Number(process.argv[2] ?? 2000);
const seconds = Number(process.argv[3] ?? 20);
const pollMs = Number(process.argv[4] ?? 500);
const DEFAULT_POLL_MS = 2000;

function configMap(root: string, n: number): string {
  const dir = join(root, 'templates');
  const stamp = '..2026_11_26_13_00_00.123';
  mkdirSync(join(dir, stamp), { recursive: true });
  for (let i = 0; i < n; i++) {
    const name = `t${String(i).padStart(4, '0')}.yaml`;
    writeFileSync(join(dir, stamp, name), `id: t/${i}\nversion: 1\n`);
    symlinkSync(`..data/${name}`, join(dir, name));
  }
  symlinkSync(stamp, join(dir, '..data'));
  return dir;
}

const root = mkdtempSync(join(tmpdir(), 'warden-poll-cost-'));
try {
  const dir = configMap(root, files);
  let reloads = 0;
  const reloader = await startReloader({
    paths: [dir],
    debounceMs: 50,
    pollMs,
    reload: async () => (reloads++, true),
    onWatchError: (path, code) => console.error(`cannot watch ${path}: ${code}`),
  });
  // Keep the process alive (the reloader's timers are unref'd) and let the first checks warm up.
  const keepAlive = setInterval(() => {}, 1000);
  await new Promise((r) => setTimeout(r, 3 * pollMs));
  const cpu = process.cpuUsage();
  const started = Date.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const used = process.cpuUsage(cpu);
  const checks = Math.floor((Date.now() - started) / pollMs);
  reloader.close();
  clearInterval(keepAlive);
  const perCheck = (used.user + used.system) / 1000 / checks;
  console.log(
    `${files} files, ~${checks} checks in ${seconds} s: ${perCheck.toFixed(2)} ms CPU per check ` +
      `(user ${(used.user / 1000 / checks).toFixed(2)}, system ${(used.system / 1000 / checks).toFixed(2)}); ` +
      `at poll_ms=${DEFAULT_POLL_MS}: ${((perCheck / DEFAULT_POLL_MS) * 100).toFixed(2)} % of a core` +
      (reloads > 0 ? ` (${reloads} reloads: something changed the tree meanwhile)` : ''),
  );
} finally {
  rmSync(root, { recursive: true, force: true });
}
