// Jest globalSetup: every temporary directory of the run (state dirs, scratch apps, Chromium
// profiles, the CLIs the tests start) goes under one directory, which tmp-teardown.js removes, so
// `npm test` leaves nothing behind in the system's temporary directory.
const { mkdtempSync } = require('node:fs');
const { tmpdir } = require('node:os');
const { join } = require('node:path');

module.exports = async () => {
  const dir = mkdtempSync(join(tmpdir(), 'devtunnel-jest-'));
  process.env.DEVTUNNEL_JEST_TMP = dir;
  process.env.TMPDIR = dir;
};
