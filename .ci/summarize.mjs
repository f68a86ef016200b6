// Prints "N passed, N failed" from Jest --json result files (and the soak's result, as one test). A suite that could not run counts as
// one failure, as does a broken CI step (passed in as the first argument) or a missing result file.
import { existsSync, readFileSync } from 'node:fs';

const [stepsFailed = '0', ...files] = process.argv.slice(2);
let passed = 0;
let failed = Number(stepsFailed) || 0;
for (const file of files) {
  if (!existsSync(file)) {
    console.log(`${file}: missing (the run did not finish)`);
    failed++;
    continue;
  }
  const r = JSON.parse(readFileSync(file, 'utf8'));
  if (file.endsWith('soak.json')) {
    // The soak is one test: it passes on all its invariants or fails.
    console.log(`${file}: soak ${r.passed ? 'passed' : `failed: ${r.problems.join('; ')}`}`);
    if (r.passed) passed++;
    else failed++;
    continue;
  }
  const broken = r.testResults.filter((s) => s.status === 'failed' && s.assertionResults.every((a) => a.status !== 'failed')).length;
  console.log(`${file}: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests} skipped, ${broken} suites failed to run`);
  passed += r.numPassedTests;
  failed += r.numFailedTests + broken + r.numPendingTests;
}
console.log(`${passed} passed, ${failed} failed`);
process.exitCode = failed === 0 ? 0 : 1;
