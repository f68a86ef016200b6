// Applies the timeout of the test's Jest project (jest.config.js), which Jest itself reads from the
// global config only.
jest.setTimeout(globalThis.__DEVTUNNEL_TEST_TIMEOUT__);
