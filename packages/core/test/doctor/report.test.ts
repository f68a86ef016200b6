import { createPrinter, exitCode, formatCheck } from '../../src/doctor/report';
import { median } from '../../src/doctor/speed';
import type { CheckResult, DoctorReport } from '../../src/doctor/types';

const pass: CheckResult = { id: 'url', title: 'Server URL', status: 'pass', summary: 'https://x.example.com: fine.' };
const fail: CheckResult = { id: 'connect', title: 'TCP', status: 'fail', summary: 'Refused.', fix: 'Start it.' };
const skip = (id: CheckResult['id'], title: string, summary = 'The server cannot be reached.'): CheckResult => ({ id, title, status: 'skip', summary });

describe('the doctor\'s output', () => {
  test('a line per check, its fix indented under it', () => {
    expect(formatCheck(pass, false)).toBe('pass  Server URL    https://x.example.com: fine.\n');
    expect(formatCheck(fail, false)).toBe('fail  TCP           Refused.\n                    → Start it.\n');
  });

  test('for a person, checks skipped for one reason share a line; --json keeps a line each and ends with the verdict', () => {
    const report: DoctorReport = { ok: false, checks: [pass, fail, skip('api', 'Control API'), skip('token', 'Token'), skip('local-app', 'Local app', 'Give --port.')] };
    let text = '';
    const printer = createPrinter(false, false, (t) => void (text += t));
    report.checks.forEach(printer.check);
    printer.done(report);
    expect(text.split('\n')).toEqual([
      'pass  Server URL    https://x.example.com: fine.',
      'fail  TCP           Refused.',
      '                    → Start it.',
      'skip  Control API, Token: The server cannot be reached.',
      'skip  Local app     Give --port.',
      '',
      'A tunnel would not work: 1 check failed. The fixes are under each.',
      '',
    ]);
    let json = '';
    const lines = createPrinter(true, false, (t) => void (json += t));
    report.checks.forEach(lines.check);
    lines.done(report);
    const objects = json.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(objects.map((o) => o.id ?? o.event)).toEqual(['url', 'connect', 'api', 'token', 'local-app', 'done']);
    expect(objects.at(-1)).toEqual({ event: 'done', ok: false, exitCode: 1, counts: { pass: 1, warn: 0, fail: 1, skip: 3 } });
  });

  test('exit code 0 when a tunnel would work, warnings allowed', () => {
    expect(exitCode({ ok: true, checks: [pass, { ...pass, status: 'warn' }] })).toBe(0);
    expect(exitCode({ ok: false, checks: [fail] })).toBe(1);
  });

  test('medians', () => {
    expect(median([5, 1, 3])).toBe(3);
    expect(median([4, 1, 3, 2])).toBe(2.5);
  });
});
