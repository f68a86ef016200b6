// One Jest project per package plus the cross-package e2e suite. Sources are compiled by ts-jest
// (CommonJS for Jest); imports of our own packages resolve to their TypeScript sources so a test
// never runs against a stale build. Only the e2e CLI test runs the built `dist/` bins, as a user would.
const moduleNameMapper = {
  '^@devtunnel/core$': '<rootDir>/packages/core/src/index.ts',
  '^@devtunnel/core/protocol$': '<rootDir>/packages/core/src/protocol/index.ts',
  '^@devtunnel/server$': '<rootDir>/packages/server/src/index.ts',
  '^@devtunnel/webpack-plugin$': '<rootDir>/packages/webpack-plugin/src/index.ts',
};

const transform = {
  '^.+\\.ts$': ['ts-jest', { tsconfig: { module: 'commonjs', moduleResolution: 'node10', types: ['node', 'jest'], isolatedModules: true }, diagnostics: false }],
};

// Jest reads `testTimeout` from the global config only (a project's own is silently ignored), so a
// project with slower tests passes its timeout as a global that test/project-timeout.js applies.
const project = (name, roots, testTimeout = 30000) => ({
  displayName: name,
  rootDir: __dirname,
  roots,
  testMatch: ['**/*.test.ts'],
  testEnvironment: 'node',
  moduleNameMapper,
  transform,
  globals: { __DEVTUNNEL_TEST_TIMEOUT__: testTimeout },
  setupFilesAfterEnv: ['<rootDir>/test/project-timeout.js'],
});

/** @type {import('jest').Config} */
module.exports = {
  projects: [
    project('core', ['<rootDir>/packages/core/test']),
    project('server', ['<rootDir>/packages/server/test']),
    project('webpack-plugin', ['<rootDir>/packages/webpack-plugin/test']),
    project('e2e', ['<rootDir>/test/e2e']),
    // Real Chromium (Debian's package): `npm run test:browser`, which .ci/run runs after
    // installing it. Kept out of `npm test` so that a machine with only Node and npm passes it.
    project('browser', ['<rootDir>/test/browser'], 60000),
    // Several server replicas sharing a real Redis (Debian's redis-server): `npm run test:replicas`,
    // which .ci/run runs after installing it. Kept out of `npm test` for the same reason.
    project('replicas', ['<rootDir>/test/replicas'], 60000),
    // The tarballs installed outside the workspace (`npm run test:packages`, after `npm run pack`;
    // .ci/run runs it). Needs the npm registry for Vite, webpack and create-vite: npm installs take
    // minutes, hence the timeout.
    project('packages', ['<rootDir>/test/packages'], 300000),
  ],
  testTimeout: 30000,
  globalSetup: '<rootDir>/test/tmp-setup.js',
  globalTeardown: '<rootDir>/test/tmp-teardown.js',
};
