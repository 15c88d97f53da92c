import { defineConfig, devices } from '@playwright/test';

// The console's browser tests: Debian's Chromium (PATCHBAY_CHROMIUM, /usr/bin/chromium by default)
// driven by @playwright/test pinned to the version that speaks its protocol (no downloaded browser),
// against the whole local stack, which the tests start on its own port (scripts/up; stopped with
// SIGTERM at the end). One worker: the emulator is single-threaded and the machine has two cores.
// No retries: a test that fails once has a cause to find.
const port = Number(process.env.PATCHBAY_CONSOLE_TEST_PORT ?? 3100);
const chromium = {
  executablePath: process.env.PATCHBAY_CHROMIUM ?? '/usr/bin/chromium',
  args: [
    '--use-fake-ui-for-media-stream',
    '--use-fake-device-for-media-stream',
    '--autoplay-policy=no-user-gesture-required',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
  ],
};

export default defineConfig({
  testDir: 'tests/e2e',
  outputDir: '../target/console-test-results',
  workers: 1,
  retries: 0,
  fullyParallel: false,
  forbidOnly: true,
  reporter: [['list']],
  timeout: 60_000,
  expect: { timeout: 15_000 },
  use: {
    baseURL: `http://127.0.0.1:${port}`,
    trace: 'retain-on-failure',
    screenshot: 'only-on-failure',
    permissions: ['microphone'],
    launchOptions: chromium,
  },
  projects: [
    { name: 'desktop', grepInvert: /@phone/, use: { ...devices['Desktop Chrome'], viewport: { width: 1280, height: 860 } } },
    {
      name: 'phone',
      grep: /@phone|@both/,
      use: { ...devices['Desktop Chrome'], viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true },
    },
  ],
  webServer: {
    command: '../scripts/up',
    env: { PATCHBAY_PORT: String(port) },
    url: `http://127.0.0.1:${port}/healthz`,
    reuseExistingServer: !!process.env.PATCHBAY_CONSOLE_REUSE,
    timeout: 900_000,
    stdout: 'ignore',
    stderr: 'pipe',
    gracefulShutdown: { signal: 'SIGTERM', timeout: 20_000 },
  },
});
