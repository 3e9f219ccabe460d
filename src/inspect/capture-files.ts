/**
 * Capture files shared by path: every listener (and every config generation, across
 * reloads) that captures to the same file writes through one PcapWriter, so that a reload
 * neither truncates the file nor interleaves two writers. The file closes when its last
 * user releases it.
 */
import type { Logger } from 'pino';
import { PcapWriter, type PcapWriterOptions } from './pcap-writer.js';

interface OpenFile {
  readonly writer: Promise<PcapWriter>;
  users: number;
}

const openFiles = new Map<string, OpenFile>();
/** Files being closed: re-opening one waits, so that it is not rotated while still written. */
const closingFiles = new Map<string, Promise<void>>();

/** `path` must be absolute (it is the key). The newest options apply to a shared file. */
export async function acquireCaptureFile(path: string, options: PcapWriterOptions, log: Logger): Promise<PcapWriter> {
  let file = openFiles.get(path);
  if (!file) {
    const closing = closingFiles.get(path) ?? Promise.resolve();
    file = { writer: closing.then(() => PcapWriter.open(path, options, log)), users: 0 };
    openFiles.set(path, file);
  }
  file.users++;
  try {
    const writer = await file.writer;
    writer.updateOptions(options);
    return writer;
  } catch (error) {
    if (--file.users === 0 && openFiles.get(path) === file) openFiles.delete(path);
    throw error;
  }
}

export async function releaseCaptureFile(writer: PcapWriter): Promise<void> {
  const file = openFiles.get(writer.path);
  if (!file || --file.users > 0) return;
  openFiles.delete(writer.path);
  const closing = writer.close().finally(() => closingFiles.delete(writer.path));
  closingFiles.set(writer.path, closing);
  await closing;
}
