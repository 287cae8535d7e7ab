/**
 * Logging: pino, always to stderr, because stdout belongs to MCP stdio and to scripts' line protocol.
 */
import { pino } from 'pino';

export type Logger = pino.Logger;

export function createLogger(level: string = 'info', name = 'runwarden'): Logger {
  return pino({ name, level }, pino.destination({ fd: 2, sync: false }));
}

/** A logger that drops everything: the default for library use when no logger is passed. */
export const silentLogger: Logger = pino({ level: 'silent' });
