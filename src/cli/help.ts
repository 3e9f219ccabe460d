/**
 * The --help text: every command form, subcommand, option and signal, in the contract's
 * words. A new subcommand or signal gets its line in the "Commands:" or "Signals:"
 * section below (the test checks that every flag of args.ts is listed).
 */
export const HELP = `tcpproxy - a layer-4 (TCP) proxy

Usage:
  tcpproxy <local-host> <local-port> <forward-host> <forward-port>
  tcpproxy --listen HOST:PORT --upstream HOST:PORT [--upstream HOST:PORT ...] [options]
  tcpproxy --config FILE [--check]
  tcpproxy COMMAND [options]

Commands:
  demo [--port 8080] [--admin-port 9901]
                                 echo servers behind a proxy on 127.0.0.1:8080, dashboard on :9901
  toxiproxy-server [--host H] [--port P] [--config FILE]
                                 serve toxiproxy's HTTP API (default localhost:8474;
                                 also -host, -port, -config, --log-level)
  reload|stop|status|upgrade [--config FILE | --admin HOST:PORT | --pid-file FILE]
                                 act on a running instance: reload its config, drain and stop it,
                                 show its state, or replace its workers with the code on disk
    --admin-token TOKEN          the admin API's bearer token (default: admin.token of --config)
    --json                       print one JSON object instead of text
    --timeout DURATION           stop: how long to wait for the exit (default shutdown_timeout + 10s)
                                 exit 0 done, 1 no running instance found, 2 usage, 3 action failed

Listener options (with --listen; in a config file use the snake_case key):
  --balance round_robin|least_connections|random|source_hash
  --connect-timeout DURATION     connect to an upstream within (default 5s)
  --connect-retries N            other upstreams tried after a failed connect (default 2)
  --idle-timeout DURATION        no byte either way for this long closes both sides (default 10m)
  --client-timeout DURATION      the client silent while it owes data or an ack (default: off)
  --server-timeout DURATION      the upstream silent while it owes data or an ack (default: off)
  --max-lifetime DURATION        close connections this old (default: none)
  --buffer-size SIZE             largest read buffer per direction, e.g. 64KiB (default 256KiB)
  --max-connections N            concurrent connections on the listener
  --max-connections-per-ip N     concurrent connections per client IP
  --on-limit reject|queue        what happens over a limit (default reject)
  --queue-timeout DURATION       how long a queued connection waits (default 10s)
  --allow CIDR                   only these clients (repeatable)
  --deny CIDR                    never these clients (repeatable; wins over --allow)
  --health-check-interval DURATION  active TCP health checks
  --proxy-protocol v1|v2         send a PROXY header to upstreams
  --log-data hex|text            dump every chunk to the log
  --capture FILE.pcap            write the proxied streams as a pcap file

Global options:
  --config FILE, -c FILE         YAML or JSON configuration (all features)
  --check                        validate the configuration, print "ok" and exit
  --admin HOST:PORT              admin endpoint: dashboard, metrics, API
  --admin-token TOKEN            bearer token required by the admin API
  --workers N|auto               worker processes sharing the listeners
  --pid-file FILE                write the pid here once listening (control commands find it)
  --log-level trace|debug|info|warn|error|silent
  --log-format json|pretty
  --help, -h                     this text
  --version, -v                  the version

Signals:
  SIGHUP                         reload the config file (an invalid one is logged, the old one kept)
  SIGTERM, SIGINT                stop accepting, drain connections for up to shutdown_timeout, exit 0;
                                 a second one exits at once
  SIGUSR1                        reopen log.file (after logrotate renamed it)
  SIGUSR2                        with --workers: replace the workers one by one, no connection lost

Durations: 250ms, 5s, 2m, 1h, or a number of milliseconds.
HOST: an IPv4 address, an IPv6 address in brackets ([::1]:8080), or a name.
Exit status: 0 normal shutdown, 1 runtime failure (e.g. port in use), 2 usage or config error.
`;
