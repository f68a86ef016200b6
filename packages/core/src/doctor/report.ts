import { styleText } from 'node:util';
import type { CheckResult, CheckStatus, DoctorReport } from './types';

/**
 * The doctor's output, for a person or, with `--json`, one JSON object a line: a line per check
 * as it finishes (`"event":"check"`), then `"event":"done"`, as the client's `--json` prints one
 * object a line per event. Lines rather than one document: the slow checks (streams, speed) take
 * seconds, and a program reading along sees each result when it is known; `jq -s` makes one array.
 * Pure: returns text, the CLI writes it.
 */

const STYLE: Record<CheckStatus, Parameters<typeof styleText>[0]> = { pass: 'green', warn: 'yellow', fail: 'red', skip: 'dim' };
const TITLE_WIDTH = 13;

/** `pass  Token         Accepted (…).` and, for a fix, an indented line under it. */
export function formatCheck(result: CheckResult, color: boolean): string {
  const paint = (style: Parameters<typeof styleText>[0], text: string) => (color ? styleText(style, text) : text);
  // No title: a line that names several checks in its text (see createPrinter).
  const title = result.title ? `${paint('bold', result.title.padEnd(TITLE_WIDTH))} ` : '';
  const line = `${paint(STYLE[result.status], result.status.padEnd(4))}  ${title}${result.summary}\n`;
  return result.fix ? `${line}${' '.repeat(6 + TITLE_WIDTH + 1)}${paint('cyan', '→')} ${result.fix}\n` : line;
}

export function counts(report: DoctorReport): Record<CheckStatus, number> {
  const out: Record<CheckStatus, number> = { pass: 0, warn: 0, fail: 0, skip: 0 };
  for (const c of report.checks) out[c.status]++;
  return out;
}

/** 0 when a tunnel would work (warnings allowed), 1 otherwise. */
export const exitCode = (report: DoctorReport): number => (report.ok ? 0 : 1);

export function formatSummary(report: DoctorReport, color: boolean): string {
  const n = counts(report);
  const plural = (k: number, word: string) => `${k} ${word}${k === 1 ? '' : 's'}`;
  if (!report.ok) {
    const text = `A tunnel would not work: ${plural(n.fail, 'check')} failed${n.warn ? `, ${n.warn} warned` : ''}. The fixes are under each.`;
    return `\n${color ? styleText('red', text) : text}\n`;
  }
  const text = n.warn ? `A tunnel would work, with ${plural(n.warn, 'warning')} above.` : 'A tunnel would work.';
  return `\n${color ? styleText('green', text) : text}\n`;
}

export const jsonCheck = (result: CheckResult): string => `${JSON.stringify({ event: 'check', ...result })}\n`;

export const jsonDone = (report: DoctorReport): string => `${JSON.stringify({ event: 'done', ok: report.ok, exitCode: exitCode(report), counts: counts(report) })}\n`;

export interface DoctorPrinter {
  check(result: CheckResult): void;
  done(report: DoctorReport): void;
}

/**
 * Writes each check as it comes. For a person, checks skipped one after another for one reason
 * (everything after a server that cannot be reached) share one line; `--json` keeps one line each.
 */
export function createPrinter(json: boolean, color: boolean, write: (text: string) => void): DoctorPrinter {
  let skipped: CheckResult[] = [];
  const flush = () => {
    while (skipped.length) {
      const reason = skipped[0]!.summary;
      const same = skipped.findIndex((c) => c.summary !== reason);
      const group = same < 0 ? skipped : skipped.slice(0, same);
      skipped = same < 0 ? [] : skipped.slice(same);
      write(formatCheck(group.length === 1 ? group[0]! : { ...group[0]!, title: '', summary: `${group.map((c) => c.title).join(', ')}: ${reason}` }, color));
    }
  };
  return {
    check(result) {
      if (json) return write(jsonCheck(result));
      if (result.status === 'skip') return void skipped.push(result);
      flush();
      write(formatCheck(result, color));
    },
    done(report) {
      if (json) return write(jsonDone(report));
      flush();
      write(formatSummary(report, color));
    },
  };
}
