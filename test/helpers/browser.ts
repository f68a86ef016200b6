import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { ROOT } from './child';

/** Debian's chromium package; `.ci/run` installs it (apt-get install chromium). */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Where screenshots and other test artifacts go (git-ignored). */
export const ARTIFACTS = join(ROOT, '.artifacts', 'browser');

/**
 * Headless Chromium with a fresh profile and the flags this machine needs (no sandbox as root,
 * no GPU, and no background networking: there is no internet here). `extraArgs` are added, e.g.
 * `--host-resolver-rules=MAP shop.test 127.0.0.1` for a host name that is not loopback to Chromium.
 */
export async function launchChromium(extraArgs: string[] = []): Promise<BrowserContext> {
  mkdirSync(ARTIFACTS, { recursive: true });
  return chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'devtunnel-chromium-')), {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic', ...extraArgs],
  });
}
