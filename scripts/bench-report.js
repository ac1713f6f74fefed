#!/usr/bin/env node
// bench-report.js -- the Markdown tables of docs/benchmarks.md "Latest
// results", from the raw figures of the last `make bench`:
//
//   node scripts/bench-report.js [build/bench.json [build/bench-1k.json]]
//
// Prints to stdout; the prose around the tables is written by hand.
'use strict';
const fs = require('fs');

const files = process.argv.slice(2);
const main = JSON.parse(fs.readFileSync(files[0] || 'build/bench.json'));
const onek = JSON.parse(fs.readFileSync(files[1] || 'build/bench-1k.json'));

const int = (x) => Math.round(x).toLocaleString('en-US');
const ratio = (a, b) => (b > 0 ? (a / b).toFixed(2) + '×' : '');
const f2 = (x) => (x === undefined ? '' : x.toFixed(2));
const secs = (x) => (x >= 10 ? x.toFixed(2) : x.toFixed(3)) + ' s';

function engines(j) {
  const out = [];
  out.push('| workload (ops/s) | Shale | RocksDB | Shale/RocksDB | LevelDB | Shale/LevelDB |');
  out.push('|---|---:|---:|---:|---:|---:|');
  for (const w of j.workloads) {
    out.push(`| ${w.name} | ${int(w.shale)} | ${int(w.rocksdb)} | ${ratio(w.shale, w.rocksdb)} | ` +
             `${int(w.leveldb)} | ${ratio(w.shale, w.leveldb)} |`);
  }
  out.push('');
  out.push('| p50 / p99 (µs) | Shale | RocksDB | LevelDB |');
  out.push('|---|---|---|---|');
  for (const w of j.workloads) {
    if (w.shale_p50_us === undefined) continue;
    const e = (n) => `${f2(w[n + '_p50_us'])} / ${f2(w[n + '_p99_us'])}`;
    out.push(`| ${w.name} | ${e('shale')} | ${e('rocksdb')} | ${e('leveldb')} |`);
  }
  out.push('');
  const g = j.engines;
  out.push('| | Shale | RocksDB | LevelDB |');
  out.push('|---|---:|---:|---:|');
  out.push(`| write amplification | ${f2(g.shale.write_amp)} | ${f2(g.rocksdb.write_amp)} | ` +
           `${f2(g.leveldb.write_amp)} |`);
  out.push(`| peak RSS (MiB) | ${g.shale.peak_rss_mb} | ${g.rocksdb.peak_rss_mb} | ` +
           `${g.leveldb.peak_rss_mb} |`);
  return out.join('\n');
}

function splits(j) {
  const out = [];
  const mib = (mb) => (mb >= 1024 ? mb / 1024 + ' GiB' : mb + ' MiB');
  out.push('| store | parent | ways | Verify | keys | split | ready | no writer beyond flush | ' +
           'naive copy | `cp -r` | naive / split | objects written | copied |');
  out.push('|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  const naive = {};
  for (const s of j.splits) if (s.naive_copy_s) naive[s.backend + s.parent_mb] = s;
  for (const s of j.splits) {
    const n = s.ways === 2 ? naive[s.backend + s.parent_mb] : undefined;
    const first = n && s.verify === 'references';
    const q = s.requests;
    out.push(`| ${s.backend} | ${mib(s.parent_mb)} | ${s.ways} | ${s.verify} | ${int(s.keys)} | ` +
             `${secs(s.split_s)} | ${secs(s.ready_s)} | ${secs(s.no_writer_beyond_flush_s)} | ` +
             `${first ? secs(n.naive_copy_s) : ''} | ${first ? secs(n.cp_s) : ''} | ` +
             `${n ? (n.naive_copy_s / s.split_s).toFixed(1) + '×' : ''} | ` +
             `${q.put + q.put_if_absent} | ${s.objects_copied} |`);
  }
  out.push('');
  out.push('Time per step (seconds), 2-way / 8-way:');
  out.push('');
  out.push('| parent | Verify | Fence | FullFlush | WipeLocalWAL | Clone | Verify step |');
  out.push('|---|---|---|---|---|---|---|');
  const key = (s) => `${s.backend} ${mib(s.parent_mb)}|${s.verify}`;
  const rows = new Map();
  for (const s of j.splits) {
    const k = key(s);
    if (!rows.has(k)) rows.set(k, {});
    rows.get(k)[s.ways] = s.steps_s;
  }
  for (const [k, r] of rows) {
    const [p, v] = k.split('|');
    const c = (step) => `${(r[2] || {})[step]?.toFixed(3)} / ${(r[8] || {})[step]?.toFixed(3)}`;
    out.push(`| ${p} | ${v} | ${c('Fence')} | ${c('FullFlush')} | ${c('WipeLocalWAL')} | ` +
             `${c('Clone')} | ${c('Verify')} |`);
  }
  out.push('');
  out.push('Object-store requests per split on S3 (Ceph RGW 16 on 127.0.0.1):');
  out.push('');
  out.push('| | PUT | PUT if absent | GET | ranged GET | HEAD | LIST | DELETE |');
  out.push('|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const s of j.splits) {
    if (s.backend !== 's3') continue;
    const q = s.requests;
    out.push(`| ${mib(s.parent_mb)}, ${s.ways}-way, ${s.verify} | ${q.put} | ${q.put_if_absent} | ` +
             `${q.get} | ${q.get_range} | ${q.head} | ${q.list} | ${q.delete} |`);
  }
  return out.join('\n');
}

const m = main.machine;
console.log(`Machine: ${m.cpu}, ${m.cores} cores, ${m.memory}, ${m.disk}; ` +
            `RocksDB ${m.rocksdb}, LevelDB ${m.leveldb}, gcc ${m.compiler}.\n`);
console.log(`### ${main.value_size}-byte values, ${int(main.keys)} keys\n`);
console.log(engines(main) + '\n');
console.log(`### ${onek.value_size === 1024 ? '1 KiB' : onek.value_size + '-byte'} values, ` +
            `${int(onek.keys)} keys\n`);
console.log(engines(onek) + '\n');
if (main.splits && main.splits.length) console.log('### Splits\n\n' + splits(main));
