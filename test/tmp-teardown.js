// Jest globalTeardown: removes the run's temporary directory (see tmp-setup.js).
const { rmSync } = require('node:fs');

module.exports = async () => {
  const dir = process.env.DEVTUNNEL_JEST_TMP;
  if (dir) rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
};
