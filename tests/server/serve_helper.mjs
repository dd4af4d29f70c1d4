// Starts `dsv3 serve` on a free loopback port for a node test and resolves with its base URL
// once it listens (the port is read from its start-up line); stop it with child.kill().
// With `ranks`, it runs expert-parallel under `mpirun -np ranks` (one thread per rank).
import { spawn } from 'node:child_process';

export async function startServe(dsv3, args, { ranks = 0 } = {}) {
  const serve = ['serve', '--port', '0', ...args];
  const child = ranks > 0
    ? spawn('mpirun', ['-np', String(ranks), '--oversubscribe', dsv3, '--threads', '1', ...serve], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, OMPI_ALLOW_RUN_AS_ROOT: '1', OMPI_ALLOW_RUN_AS_ROOT_CONFIRM: '1', ASAN_OPTIONS: 'detect_leaks=0' },
    })
    : spawn(dsv3, ['--threads', '2', ...serve], { stdio: ['ignore', 'ignore', 'pipe'] });
  const port = await new Promise((resolve, reject) => {
    let err = '';
    child.stderr.on('data', (d) => {
      err += d;
      const m = err.match(/on http:\/\/127\.0\.0\.1:(\d+)/);
      if (m) resolve(Number(m[1]));
    });
    child.on('exit', (code) => reject(new Error(`dsv3 serve exited with ${code}: ${err}`)));
  });
  return { child, base: `http://127.0.0.1:${port}` };
}
