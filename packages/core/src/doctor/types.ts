/**
 * The shapes of `devtunnel doctor`: its options, one check's result, the report. A check passes,
 * warns (the tunnel works, worse than it could), fails (the tunnel would not work), or is skipped
 * (an earlier failure or a missing option leaves nothing to check).
 */
export type CheckStatus = 'pass' | 'warn' | 'fail' | 'skip';

/** The checks, in the order a connection needs them. */
export type CheckId = 'url' | 'proxy' | 'dns' | 'connect' | 'api' | 'token' | 'streams' | 'speed' | 'local-app' | 'host-check';

export interface CheckResult {
  id: CheckId;
  /** What was checked, a few words: `TCP and TLS`. */
  title: string;
  status: CheckStatus;
  /** What was found, in one or two sentences. */
  summary: string;
  /** What to do about it, in words (warn and fail; a pass may carry a note). */
  fix?: string;
  /** What was measured, for `--json` (addresses, times, the certificate). */
  data?: Record<string, unknown>;
}

export interface DoctorReport {
  /** True when no check failed: a tunnel would work (warnings allowed). */
  ok: boolean;
  checks: CheckResult[];
}

/** Options of {@link runDoctor}: the client's own names (`TunnelOptions`) for what both take. */
export interface DoctorOptions {
  /** The tunnel server's URL, as `--server` / `DEVTUNNEL_SERVER`. Missing: the URL check fails. */
  server?: string;
  /** The registration token. Missing: the token check fails and the probes that need it are skipped. */
  token?: string;
  /** Port of the local app: with it, the doctor also checks the app answers and accepts the cluster's host. */
  port?: number;
  /** @default 'localhost' */
  host?: string;
  /** @default false */
  https?: boolean;
  /** As the client's: the app then sees `Host: <host>:<port>`. @default false */
  rewriteHost?: boolean;
  /** As the client's: hosts the app accepts, others rewritten. @default undefined */
  allowedHosts?: string[];
  /** An HTTP proxy for the server connection, or `false` for none. @default from `env` */
  proxy?: string | false;
  /**
   * The environment the client would run in: `HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY` (either
   * case), `NODE_EXTRA_CA_CERTS`, `NODE_TLS_REJECT_UNAUTHORIZED`. The CLI passes `process.env`.
   * @default {}
   */
  env?: Record<string, string | undefined>;
  /** Each result as soon as it is known (the CLI prints it then). */
  onCheck?: (result: CheckResult) => void;
}
