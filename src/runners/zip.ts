/**
 * The workspace archive: every file zipped with deflate level 9, streamed to a temporary file
 * (never built in memory), then read back and verified (entry count, sizes and CRC-32) before it
 * is stored as the run's `workspace.zip`.
 */
import { createWriteStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { crc32 } from 'node:zlib';
import yauzl from 'yauzl';
import yazl from 'yazl';

async function filesUnder(dir: string, base = ''): Promise<{ abs: string; rel: string }[]> {
  const out: { abs: string; rel: string }[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const abs = path.join(dir, e.name);
    const rel = base ? `${base}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...(await filesUnder(abs, rel)));
    else if (e.isFile()) out.push({ abs, rel });
  }
  return out;
}

export interface ZipResult {
  file: string;
  entries: number;
  bytes: number;
}

export async function zipDirectory(
  dir: string,
  outFile: string,
  opts: { exclude?: (rel: string) => boolean } = {},
): Promise<ZipResult> {
  const files = (await filesUnder(dir)).filter((f) => !opts.exclude?.(f.rel));
  const zip = new yazl.ZipFile();
  for (const f of files) zip.addFile(f.abs, f.rel, { compressionLevel: 9 });
  zip.end();
  await pipeline(zip.outputStream, createWriteStream(outFile));
  await verifyZip(outFile, files.length);
  return { file: outFile, entries: files.length, bytes: (await stat(outFile)).size };
}

/** Read every entry back and check its CRC-32 and size; throws on any mismatch. */
export function verifyZip(file: string, expectedEntries: number): Promise<void> {
  return new Promise((resolve, reject) => {
    yauzl.open(file, { lazyEntries: true, validateEntrySizes: true }, (err, zf) => {
      if (err || !zf) return reject(err ?? new Error('cannot open zip'));
      let seen = 0;
      zf.on('error', reject);
      zf.on('entry', (entry: yauzl.Entry) => {
        zf.openReadStream(entry, (e, stream) => {
          if (e || !stream) return reject(e ?? new Error(`cannot read ${entry.fileName}`));
          let crc = 0;
          stream.on('data', (c: Buffer) => {
            crc = crc32(c, crc);
          });
          stream.on('error', reject);
          stream.on('end', () => {
            if (crc >>> 0 !== entry.crc32 >>> 0)
              return reject(new Error(`zip verification failed: CRC mismatch in ${entry.fileName}`));
            seen++;
            zf.readEntry();
          });
        });
      });
      zf.on('end', () =>
        seen === expectedEntries
          ? resolve()
          : reject(new Error(`zip verification failed: ${seen} of ${expectedEntries} entries`)),
      );
      zf.readEntry();
    });
  });
}
