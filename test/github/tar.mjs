// Writes and reads gzipped tar archives shaped like the ones GitHub serves for
// `GET /repos/{owner}/{repo}/tarball/{ref}`: a pax global header whose `comment` is the commit
// SHA, then every file under one top-level directory `{owner}-{repo}-{sha7}/`.
//
// Only what the stand-in needs: regular files and directories, pax extended headers for names
// longer than ustar allows. Pure functions; safe anywhere.

import zlib from 'node:zlib';

const kBlock = 512;

function octal(value, width) {
  // width includes the terminating NUL.
  return value.toString(8).padStart(width - 1, '0') + '\0';
}

function header({ name, size, type, mode, mtime }) {
  const block = Buffer.alloc(kBlock);
  block.write(name, 0, 100, 'utf8');
  block.write(octal(mode, 8), 100, 'ascii');
  block.write(octal(0, 8), 108, 'ascii'); // uid
  block.write(octal(0, 8), 116, 'ascii'); // gid
  block.write(octal(size, 12), 124, 'ascii');
  block.write(octal(mtime, 12), 136, 'ascii');
  block.write('        ', 148, 'ascii'); // checksum placeholder: eight spaces
  block.write(type, 156, 'ascii');
  block.write('ustar\0', 257, 'ascii');
  block.write('00', 263, 'ascii');
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(octal(sum, 7) + ' ', 148, 'ascii');
  return block;
}

function padded(data) {
  const rest = data.length % kBlock;
  return rest === 0 ? [data] : [data, Buffer.alloc(kBlock - rest)];
}

// One pax record: "<len> key=value\n" where <len> counts the whole record including itself.
function paxRecord(key, value) {
  const body = ` ${key}=${value}\n`;
  let length = Buffer.byteLength(body) + 1;
  while (String(length).length + Buffer.byteLength(body) !== length) length += 1;
  return `${length}${body}`;
}

function globalPax(records, mtime) {
  const data = Buffer.from(records.join(''), 'utf8');
  return [
    header({ name: 'pax_global_header', size: data.length, type: 'g', mode: 0o666, mtime }),
    ...padded(data),
  ];
}

// files: { "path/in/repo": string | Buffer }. Returns a gzipped tarball Buffer.
export function createTarGz(files, { prefix, comment, mtime = 0 }) {
  const parts = [];
  if (comment) parts.push(...globalPax([paxRecord('comment', comment)], mtime));
  const dirs = new Set();
  const addDir = (dir) => {
    if (dirs.has(dir)) return;
    dirs.add(dir);
    parts.push(...entry(`${dir}/`, Buffer.alloc(0), '5', 0o775));
  };
  const entry = (name, data, type, mode) => {
    const out = [];
    if (Buffer.byteLength(name) > 100) {
      const pax = Buffer.from(paxRecord('path', name), 'utf8');
      out.push(
        header({ name: 'PaxHeader', size: pax.length, type: 'x', mode: 0o644, mtime }),
        ...padded(pax),
      );
      name = Buffer.from(name).subarray(0, 100).toString('latin1');
    }
    out.push(header({ name, size: data.length, type, mode, mtime }), ...padded(data));
    return out;
  };
  addDir(prefix);
  for (const file of Object.keys(files).sort()) {
    const segments = file.split('/');
    for (let i = 1; i < segments.length; i++) addDir(`${prefix}/${segments.slice(0, i).join('/')}`);
    const data = Buffer.isBuffer(files[file]) ? files[file] : Buffer.from(files[file], 'utf8');
    parts.push(...entry(`${prefix}/${file}`, data, '0', 0o664));
  }
  parts.push(Buffer.alloc(kBlock * 2));
  return zlib.gzipSync(Buffer.concat(parts));
}

function parsePax(data) {
  const out = {};
  let offset = 0;
  while (offset < data.length) {
    const space = data.indexOf(0x20, offset);
    if (space < 0) break;
    const length = Number(data.subarray(offset, space).toString('ascii'));
    if (!length) break;
    const record = data.subarray(space + 1, offset + length - 1).toString('utf8');
    const equals = record.indexOf('=');
    out[record.slice(0, equals)] = record.slice(equals + 1);
    offset += length;
  }
  return out;
}

// The inverse, for tests: { comment, entries: [{ name, type }], files: { name: Buffer } }.
export function readTarGz(buffer) {
  const data = zlib.gunzipSync(buffer);
  const result = { comment: undefined, entries: [], files: {} };
  let offset = 0;
  let nextName;
  while (offset + kBlock <= data.length) {
    const block = data.subarray(offset, offset + kBlock);
    if (block.every((b) => b === 0)) break;
    const field = (start, length) =>
      block
        .subarray(start, start + length)
        .toString('utf8')
        .replace(/\0.*$/s, '');
    const size = parseInt(field(124, 12), 8);
    const type = field(156, 1) || '0';
    const body = data.subarray(offset + kBlock, offset + kBlock + size);
    offset += kBlock + Math.ceil(size / kBlock) * kBlock;
    if (type === 'g') {
      result.comment = parsePax(body).comment;
      continue;
    }
    if (type === 'x') {
      nextName = parsePax(body).path;
      continue;
    }
    const name = nextName ?? field(0, 100);
    nextName = undefined;
    result.entries.push({ name, type });
    if (type === '0') result.files[name] = Buffer.from(body);
  }
  return result;
}
