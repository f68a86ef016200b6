/**
 * The devtunnel wire protocol, version 1: the only code the client and the server share
 * (`@devtunnel/core/protocol`).
 *
 * It imports nothing (no `node:` modules, no undici) so that both sides, and any future
 * implementation, read the same definitions. docs/protocol.md describes the flows; these files
 * are the source of truth for names, shapes and the frame format. Beside the wire, it holds the
 * two output formats both CLIs share: JSON lines, and the flag table.
 */
export * from './constants';
export * from './messages';
export * from './error-codes';
export * from './headers';
export * from './content-coding';
export * from './frames';
export * from './frame-reader';
export * from './frame-source';
export * from './validate';
export * from './push';
export * from './json-lines';
export * from './flags';
