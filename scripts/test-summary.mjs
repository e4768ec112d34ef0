#!/usr/bin/env node
// Prints the last line CI reads, "N passed, M failed", from vitest's JSON report. A missing or unreadable
// report counts as one failure, so a run that broke before the tests (install, typecheck, lint) fails.
import fs from 'node:fs';

const [reportFile, exitCodeText] = process.argv.slice(2);
let passed = 0;
let failed = 0;
try {
  const report = JSON.parse(fs.readFileSync(reportFile, 'utf8'));
  passed = report.numPassedTests;
  failed = report.numFailedTests + countSuitesFailedWithoutTests(report);
} catch (error) {
  console.error(`cannot read the test report ${reportFile}: ${error.message}`);
  failed = 1;
}
if (failed === 0 && exitCodeText && exitCodeText !== '0') failed = 1;
console.log(`${passed} passed, ${failed} failed`);

// A suite that failed with no failed test of its own (an import error, a failing hook) counts as one
// failure; a suite whose tests failed is already counted through those tests.
function countSuitesFailedWithoutTests(report) {
  return (report.testResults ?? []).filter(
    (suite) => suite.status === 'failed' && !suite.assertionResults?.some((test) => test.status === 'failed'),
  ).length;
}
