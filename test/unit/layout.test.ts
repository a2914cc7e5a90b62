/**
 * The layout rules: imports point down, never up or sideways. Read from the sources in the repository (not dist/),
 * with the TypeScript parser, so a type-only import is told from one that loads the module at run time.
 *
 *   src/       the SIP stack: log → sip → transport → transaction → core → dialog. Imports nothing outside src/, and each
 *              layer only itself and the layers below it (log, the stack's logger, is the foundation, so the stack
 *              never needs platform/).
 *   platform/  config, store, http: imports src/ and the migrations in sql/ only.
 *   services   proxy/, balancer/, registrar/, media/, security/ (and b2bua/ … when they come): import src/ and
 *              platform/; another service only type-only (`import type`) and only through its public index.ts or
 *              types.ts. The one exception is proxy/routing.ts, the routing policy, which composes the services'
 *              APIs like a kamailio.cfg and may import their index.ts/types.ts at run time.
 *   server/    the shell (app, main, cluster, cli): the only place that knows every module; never test/ or bench/.
 *   sql/       the knex migrations: import nothing of the project.
 *   support/   helpers shared by test/ and bench/ (free ports, tools, repoRoot): never test/ or bench/.
 *   bench/     never test/ (what both need lives in support/).
 *   test/      anything.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';
import { repoRoot } from '../../support/paths.js';

/** The stack's layers, lowest first: a layer may import only the layers before it (and itself). */
const STACK_LAYERS: readonly string[] = ['log', 'sip', 'transport', 'transaction', 'core', 'dialog'];
/** Every service folder the layout knows, present or to come (the pre-commit hook's list). */
const SERVICES = [
  'proxy', 'balancer', 'registrar', 'media', 'security', 'b2bua', 'push', 'turn', 'presence', 'messaging', 'history',
  'conference', 'api', 'console', 'metrics',
];
const OTHER_FOLDERS = ['src', 'platform', 'server', 'sql', 'support', 'bench', 'test'];
/** The one service file allowed to compose other services at run time. */
const ROUTING_POLICY = 'proxy/routing.ts';

interface ImportRef {
  /** The importing file, relative to the repository root (forward slashes). */
  readonly file: string;
  readonly line: number;
  readonly spec: string;
  /** The imported file, relative to the repository root: `x.js` becomes `x.ts`, a folder its `index.ts`. */
  readonly target: string;
  /** True when nothing of the target is loaded at run time (`import type`, `export type`, `import('…').T`). */
  readonly typeOnly: boolean;
}

function tsFiles(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'dist' || name === 'fixtures') continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) tsFiles(p, out);
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

function repoPath(abs: string): string {
  return relative(repoRoot, abs).split('\\').join('/');
}

function targetOf(file: string, spec: string): string {
  const abs = resolve(dirname(join(repoRoot, file)), spec);
  if (abs.endsWith('.js')) return repoPath(`${abs.slice(0, -3)}.ts`);
  if (existsSync(abs) && statSync(abs).isDirectory()) return repoPath(join(abs, 'index.ts'));
  return repoPath(abs);
}

function importsOf(absFile: string): ImportRef[] {
  const file = repoPath(absFile);
  const sf = ts.createSourceFile(absFile, readFileSync(absFile, 'utf8'), ts.ScriptTarget.Latest, true);
  const refs: ImportRef[] = [];
  const add = (node: ts.Node, specNode: ts.Expression | undefined, typeOnly: boolean): void => {
    if (specNode === undefined || !ts.isStringLiteral(specNode)) return;
    const spec = specNode.text;
    if (!spec.startsWith('.')) return; // a package (node:, pino, …): not a layout question
    const line = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1;
    refs.push({ file, line, spec, target: targetOf(file, spec), typeOnly });
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node)) {
      const clause = node.importClause;
      const named = clause?.namedBindings;
      const typeOnly = clause !== undefined && (clause.isTypeOnly || (clause.name === undefined && named !== undefined
        && ts.isNamedImports(named) && named.elements.length > 0 && named.elements.every((e) => e.isTypeOnly)));
      add(node, node.moduleSpecifier, typeOnly);
    } else if (ts.isExportDeclaration(node)) {
      const clause = node.exportClause;
      const typeOnly = node.isTypeOnly
        || (clause !== undefined && ts.isNamedExports(clause) && clause.elements.length > 0 && clause.elements.every((e) => e.isTypeOnly));
      add(node, node.moduleSpecifier, typeOnly);
    } else if (ts.isImportTypeNode(node)) {
      const arg = node.argument;
      if (ts.isLiteralTypeNode(arg)) add(node, arg.literal as ts.Expression, true);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      add(node, node.arguments[0], false);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return refs;
}

function importsUnder(folder: string): ImportRef[] {
  const dir = join(repoRoot, folder);
  if (!existsSync(dir)) return [];
  return tsFiles(dir).flatMap(importsOf);
}

const topOf = (path: string): string => path.split('/')[0] ?? '';
const show = (r: ImportRef): string => `${r.file}:${r.line} imports '${r.spec}' (${r.target})`;

describe('layout: imports point down, never up or sideways', () => {
  it('every top-level folder with TypeScript sources has a layout rule', () => {
    const unknown = readdirSync(repoRoot).filter((name) => {
      if (name.startsWith('.') || name === 'node_modules' || name === 'dist') return false;
      const p = join(repoRoot, name);
      return statSync(p).isDirectory() && tsFiles(p).length > 0 && !SERVICES.includes(name) && !OTHER_FOLDERS.includes(name);
    });
    assert.deepEqual(unknown, []);
  });

  it('the stack (src/) imports nothing outside src/: not platform/, a service, server/, sql/, support/, test/ or bench/', () => {
    const bad = importsUnder('src').filter((r) => topOf(r.target) !== 'src').map(show);
    assert.deepEqual(bad, []);
  });

  it('the stack layers import only downward: log → sip → transport → transaction → core → dialog', () => {
    const rank = (path: string): number => STACK_LAYERS.indexOf(path.split('/')[1] ?? '');
    const bad = importsUnder('src').filter((r) => {
      const from = rank(r.file);
      const to = rank(r.target);
      return from < 0 || to < 0 || to > from; // a folder outside the known layers, or an import upward
    }).map(show);
    assert.deepEqual(bad, []);
  });

  it('platform/ imports only the stack (src/), the migrations (sql/) and itself', () => {
    const bad = importsUnder('platform').filter((r) => !['src', 'sql', 'platform'].includes(topOf(r.target))).map(show);
    assert.deepEqual(bad, []);
  });

  it('a service imports src/ and platform/; another service only type-only, through its public index.ts or types.ts', () => {
    const bad: string[] = [];
    for (const service of SERVICES) {
      for (const r of importsUnder(service)) {
        const to = topOf(r.target);
        if (to === service || to === 'src' || to === 'platform') continue;
        const otherService = SERVICES.includes(to);
        const publicFile = r.target === `${to}/index.ts` || r.target === `${to}/types.ts`;
        if (otherService && publicFile && (r.typeOnly || r.file === ROUTING_POLICY)) continue;
        bad.push(show(r));
      }
    }
    assert.deepEqual(bad, []);
  });

  it('proxy/routing.ts (the routing policy) is the one service file that imports another service at run time', () => {
    const composers = new Set<string>();
    for (const service of SERVICES) {
      for (const r of importsUnder(service)) {
        const to = topOf(r.target);
        if (to !== service && SERVICES.includes(to) && !r.typeOnly) composers.add(r.file);
      }
    }
    assert.ok([...composers].every((f) => f === ROUTING_POLICY), [...composers].join(', '));
    const header = readFileSync(join(repoRoot, ROUTING_POLICY), 'utf8').slice(0, 1200);
    assert.match(header, /ONE service file that may import other services/);
  });

  it('the shell (server/) may import every module but never test/ or bench/', () => {
    const bad = importsUnder('server').filter((r) => ['test', 'bench'].includes(topOf(r.target))).map(show);
    assert.deepEqual(bad, []);
  });

  it('the migrations (sql/) import nothing of the project', () => {
    const bad = importsUnder('sql').filter((r) => topOf(r.target) !== 'sql').map(show);
    assert.deepEqual(bad, []);
  });

  it('bench/ and support/ never import test/ (what both need lives in support/)', () => {
    const bad = [...importsUnder('bench'), ...importsUnder('support')]
      .filter((r) => topOf(r.target) === 'test' || (topOf(r.file) === 'support' && topOf(r.target) === 'bench')).map(show);
    assert.deepEqual(bad, []);
  });

  it('every relative import names a file that exists (so the rules above saw the real target)', () => {
    const folders = [...SERVICES, ...OTHER_FOLDERS];
    const missing = folders.flatMap(importsUnder).filter((r) => !existsSync(join(repoRoot, r.target))).map(show);
    assert.deepEqual(missing, []);
  });
});
