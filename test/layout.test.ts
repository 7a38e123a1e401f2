// The code's layout is part of its design (CONTRIBUTING.md, "Layout"): these checks keep it true.
// - Folders of src/ import only down the layers below (never back up, never from a sibling above).
// - Nothing outside test/ imports from test/.
// - Every file a comment cites exists.
// - No file in src/, web/ or bench/ is over 500 lines without a reason written at its top.
// - package.json's `main` names a real file.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** src/'s folders, top to bottom: a folder may import from itself and from folders after it. */
export const LAYERS = ['api', 'ops', 'presence', 'http', 'config', 'sinks', 'sources', 'outbox', 'supervisor', 'template', 'bus', 'normalizer', 'events', 'util'];

function files(dir: string, keep: (f: string) => boolean): string[] {
  const abs = path.join(ROOT, dir);
  if (!existsSync(abs)) return [];
  return readdirSync(abs, { withFileTypes: true }).flatMap((e) => {
    const rel = path.join(dir, e.name);
    if (e.isDirectory()) return e.name === 'node_modules' || e.name === 'results' ? [] : files(rel, keep);
    return keep(rel) ? [rel] : [];
  });
}

const code = (f: string) => /\.(ts|js|mjs)$/.test(f) && !f.endsWith('.d.ts');

/** Relative import specifiers of a source file (static, dynamic and type-only). */
function imports(text: string): string[] {
  return [...text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)].map((m) => m[1]!);
}

t.test('given src/, when its imports are read, then no folder imports from a layer above it or from a top-level file', (t) => {
  const wrong: string[] = [];
  for (const file of files('src', code)) {
    const from = path.relative('src', path.dirname(file)).split(path.sep)[0] || '.';
    if (from === '.') continue; // cli.ts and bridge.ts wire everything
    const layer = LAYERS.indexOf(from);
    if (layer < 0) {
      wrong.push(`${file}: folder src/${from} is not in LAYERS (test/layout.test.ts, CONTRIBUTING.md)`);
      continue;
    }
    for (const spec of imports(readFileSync(path.join(ROOT, file), 'utf8'))) {
      const target = path.relative('src', path.join(path.dirname(file), spec));
      const to = target.split(path.sep)[0]!;
      if (to === from) continue;
      const at = LAYERS.indexOf(to);
      if (at < 0) wrong.push(`${file} imports ${spec}: outside the layers (a top-level file of src/)`);
      else if (at < layer) wrong.push(`${file} imports ${spec}: src/${to} is above src/${from}`);
    }
  }
  t.same(wrong, []);
  t.end();
});

t.test('given the product folders, when their imports are read, then none reaches into test/', (t) => {
  const wrong: string[] = [];
  for (const dir of ['src', 'web', 'bench', 'demo', 'scripts', 'lab']) {
    for (const file of files(dir, code)) {
      const text = readFileSync(path.join(ROOT, file), 'utf8');
      for (const spec of imports(text)) {
        const target = path.relative(ROOT, path.join(ROOT, path.dirname(file), spec));
        if (target.split(path.sep)[0] === 'test') wrong.push(`${file} imports ${spec}`);
      }
    }
  }
  t.same(wrong, []);
  t.end();
});

t.test('given the comments of src/, web/, bench/ and the docs, when they cite a file of this repository, then it exists', (t) => {
  const cited = /(?<![\w./-])((?:src|test|bench|web|docs|schema|dialplan|systemd|lab|demo|scripts)\/[A-Za-z0-9_.@/-]*[A-Za-z0-9_])(?![\w/-])/g;
  const missing: string[] = [];
  const sources = [...files('src', code), ...files('web', code), ...files('bench', code), ...files('lab', code), ...files('demo', code), ...files('scripts', code)];
  const docs = ['README.md', 'CONTRIBUTING.md', 'SECURITY.md', 'BENCHMARKS.md', ...files('docs', (f) => f.endsWith('.md'))];
  for (const file of [...sources, ...docs]) {
    const text = readFileSync(path.join(ROOT, file), 'utf8');
    for (const m of text.matchAll(cited)) {
      let p = m[1]!.replace(/\.js$/, '.ts');
      if (p.includes('*') || p.includes('<')) continue;
      // A compiled path (dist/…) or a module path without extension: the .ts source counts.
      const candidates = [p, m[1]!, `${p}.ts`, p.replace(/\.ts$/, '.js')];
      if (!candidates.some((c) => existsSync(path.join(ROOT, c)))) missing.push(`${file}: ${m[1]}`);
    }
  }
  t.same(missing, []);
  t.end();
});

t.test('given src/, web/ and bench/, when files are measured, then none is over 500 lines without a reason at its top', (t) => {
  const long: string[] = [];
  for (const file of [...files('src', code), ...files('web', code), ...files('bench', code)]) {
    const text = readFileSync(path.join(ROOT, file), 'utf8');
    const lines = text.split('\n').length;
    const head = text.split('\n').slice(0, 15).join('\n');
    if (lines > 500 && !/Why this file is long:/.test(head)) long.push(`${file}: ${lines} lines`);
  }
  t.same(long, []);
  t.end();
});

t.test("given package.json, when its entry points are read, then each names a file the build makes", (t) => {
  const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { main: string; bin: Record<string, string> };
  for (const entry of [pkg.main, ...Object.values(pkg.bin)]) t.ok(existsSync(path.join(ROOT, entry)) && statSync(path.join(ROOT, entry)).isFile(), entry);
  t.end();
});
