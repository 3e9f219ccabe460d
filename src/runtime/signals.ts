/**
 * Process signals: SIGHUP reloads the config; SIGTERM and SIGINT drain gracefully and
 * exit 0; a second SIGTERM/SIGINT while draining exits at once.
 */
import type { Logger } from 'pino';

export interface SignalTarget {
  reload(): Promise<unknown>;
  shutdown(): Promise<void>;
}

export function handleSignals(target: SignalTarget, logger: Logger, exit: (code: number) => void = process.exit): void {
  let stopping = false;
  process.on('SIGHUP', () => {
    logger.info({ event: 'signal', signal: 'SIGHUP' }, 'reloading configuration');
    void target.reload();
  });
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) {
      logger.warn({ event: 'signal', signal }, 'second signal: exiting now');
      return exit(1);
    }
    stopping = true;
    logger.info({ event: 'signal', signal }, 'shutting down gracefully');
    target.shutdown().then(
      () => exit(0),
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
