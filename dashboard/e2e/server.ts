// Global setup: starts the real `ingot serve` on free loopback ports with a temp data
// directory, seeds it through the HTTP API, and hands the address and keys to the tests
// in environment variables. The returned function stops the server and removes the data.

import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { seed } from './seed';

/** The `ingot` binary: $INGOT_BIN (the Rust test sets it), or the debug build of this checkout. */
function binary(): string {
  const given = process.env.INGOT_BIN;
  if (given) return given;
  const metadata = JSON.parse(
    execFileSync('cargo', ['metadata', '--format-version', '1', '--no-deps'], {
      cwd: fileURLToPath(new URL('..', import.meta.url)),
      encoding: 'utf8',
    }),
  ) as { target_directory: string };
  const bin = join(metadata.target_directory, 'debug', 'ingot');
  if (!existsSync(bin)) throw new Error(`no ingot binary at ${bin}: run \`cargo build\` first, or set INGOT_BIN`);
  return bin;
}

function waitForBanner(child: ChildProcess, output: () => string): Promise<string> {
  return new Promise((resolveUrl, reject) => {
    const deadline = setTimeout(() => reject(new Error(`ingot did not start within 60 s:\n${output()}`)), 60_000);
    const check = () => {
      const match = /UI and API\s+(http:\/\/127\.0\.0\.1:\d+)\//.exec(output());
      if (match?.[1]) {
        clearTimeout(deadline);
        resolveUrl(match[1]);
      }
    };
    child.stdout?.on('data', check);
    child.on('exit', (code) => {
      clearTimeout(deadline);
      reject(new Error(`ingot exited with ${code}:\n${output()}`));
    });
  });
}

export default async function globalSetup(): Promise<() => Promise<void>> {
  const dataDir = mkdtempSync(join(tmpdir(), 'ingot-ui-'));
  const env: NodeJS.ProcessEnv = { ...process.env, INGOT_LOG_LEVEL: 'warn' };
  delete env.INGOT_CONFIG;
  const child = spawn(
    binary(),
    [
      'serve',
      '--http-addr',
      '127.0.0.1:0',
      '--coap-addr',
      '127.0.0.1:0',
      '--mqtt-addr',
      '127.0.0.1:0',
      '--data-dir',
      dataDir,
    ],
    { env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let log = '';
  child.stdout?.on('data', (chunk: Buffer) => (log += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (log += chunk.toString()));
  const base = await waitForBanner(child, () => log);
  child.removeAllListeners('exit');

  const adminKey = readFileSync(join(dataDir, 'admin.key'), 'utf8').trim();
  const facts = await seed(base, adminKey);
  process.env.INGOT_URL = base;
  process.env.INGOT_ADMIN_KEY = adminKey;
  process.env.INGOT_FACTS = JSON.stringify(facts);

  return async () => {
    await new Promise<void>((done) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        done();
      }, 10_000);
      child.once('exit', () => {
        clearTimeout(timer);
        done();
      });
      child.kill('SIGTERM');
    });
    rmSync(dataDir, { recursive: true, force: true });
  };
}
