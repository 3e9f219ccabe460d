/**
 * The one error base class, and the list of stable error codes (README "Error codes").
 *
 * Every error tcpproxy raises itself is a TcpProxyError whose `code` is listed here, so that
 * logs, the admin API and callers branch on the code, never on the message (messages say
 * what failed for people and may be reworded). The domain subclasses (ConfigError,
 * ListenError, ProxyProtocolError, FilterError...) live next to the code that throws them,
 * because they carry that domain's details (key paths, a filter's name); this floor knows
 * no domain, so that every folder can import it.
 *
 * An error that stands for a system failure carries the system's code (ETIMEDOUT for a
 * connect that timed out, ECONNRESET for a peer found gone, EADDRINUSE for a bind), so that
 * it reads the same as the failure the kernel reports. Argument checks that only a bug in
 * tcpproxy itself can trip stay TypeError/RangeError, as in Node.js.
 */

/** code -> what it means: the README's table is checked against this list. */
export const ERROR_CODES = {
  // -- configuration, command line, start -------------------------------------------
  config_invalid: 'The configuration (file, flags, a run-time change or toxiproxy JSON) has problems; the message has one `key.path: detail` per problem.',
  usage: 'The command line is wrong (exit status 2).',
  listen_failed: "A listener or the admin endpoint cannot bind (when the system gave a reason, the code is the system's: EADDRINUSE, EACCES...).",
  pid_file: '`pid_file` cannot be written, or another tcpproxy holds it.',
  log_file: '`log.file` cannot be opened for appending.',
  tls_config: 'A certificate, key or CA of `tls` / `upstream_tls` cannot be read or used.',
  plugin_load: 'A filter plugin cannot be imported, or exports no filter factory.',
  plugin_options: "A plugin's `validateOptions` refused its options.",
  filter_setup: 'A filter or the capture file of a listener cannot be set up.',
  // -- connections -------------------------------------------------------------------
  ETIMEDOUT: 'Connecting to an upstream took longer than `connect_timeout`.',
  ECONNRESET: 'A peer reset the connection while no read was pending (found by the dead-peer sweep).',
  no_upstream: 'No upstream was left to try for a connection.',
  refused: 'A connection was refused after admission without an upstream to blame (reason `limit`, `queue_timeout` or `shutdown` in its access-log line).',
  proxy_protocol: "A client's PROXY protocol header is malformed, too long or late, or the client may not send one.",
  client_hello: 'A TLS ClientHello read for SNI routing is malformed, too large or late.',
  tls_handshake: 'The TLS handshake with a client timed out, or the client left during it.',
  filter_failed: 'A filter threw or rejected: its connection was closed with reason `filter`.',
  // -- admin API, toxiproxy API, control commands, workers ---------------------------
  bad_request: 'An admin API request is malformed (query, JSON body, path).',
  unauthorized: 'An admin API request lacks the bearer token `admin.token` asks for.',
  forbidden: 'A cross-origin admin API request that changes something was refused.',
  not_found: 'No such admin API path, connection, capture or live filter.',
  method_not_allowed: 'The admin API path does not take that method.',
  conflict: 'The admin API request conflicts with the current state (a capture running, a listener from the config file...).',
  unsupported_media_type: 'An admin API request body is not `application/json`.',
  not_implemented: 'Run-time control through the admin API needs `workers: 1`.',
  body_too_large: 'An API request body is larger than the endpoint accepts.',
  toxiproxy_api: "A toxiproxy API request was refused (the HTTP status and message are toxiproxy's).",
  live_filter_exists: 'A live filter of that name is on the listener already.',
  unknown_listener: 'An admin API request names a listener that does not exist.',
  no_workers: 'No worker answered a run-time change (the process is stopping).',
  unknown_upstream: 'A run-time upstream change names an upstream the listener does not have.',
  upstream_exists: 'A run-time upstream change adds an upstream (or endpoint) the listener has already.',
  last_upstream: "A run-time upstream change would remove the listener's last upstream.",
  unresolvable: 'A run-time upstream change names a host that does not resolve.',
  invalid_settings: 'A run-time upstream change has invalid settings (weight, max_connections).',
  pool_replaced: 'The listener was reloaded during a run-time upstream change: try again.',
  reload_failed: 'A reload was refused (an invalid config, a port in use...): the old configuration stays in force.',
  control_failed: 'A control command (`tcpproxy status`, `stop`, `reload`...) could not reach or use the admin endpoint.',
  worker_upgrade: 'A worker upgrade failed: the new worker did not bind its listeners in time, or exited.',
  internal: 'A bug or an impossible state in tcpproxy itself: please report it.',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;
/** The system's code of a failure an error stands for (EADDRINUSE, EACCES...). */
export type SystemErrorCode = `E${string}`;

export class TcpProxyError extends Error {
  constructor(
    readonly code: ErrorCode | SystemErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    // The subclass's name (ConfigError, ListenError...) in stack traces and logs.
    this.name = new.target.name;
  }
}

/** Whether `code` is the system's (ECONNREFUSED) rather than one of tcpproxy's own (config_invalid). */
export function isSystemErrorCode(code: string): code is SystemErrorCode {
  return /^E[A-Z0-9]+$/.test(code);
}
