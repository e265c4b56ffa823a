/**
 * Salt's execution functions run on this agent for `tsalt call` / `tsalt ping` / `tsalt show`,
 * one handler per function name (the protocol's CALL_FUNCTIONS), with Salt's argument names
 * and return shapes. The read-only ones are the functions templates have (salt-functions);
 * pkg.install/remove and service.* go through the state engine with one generated state, so
 * the same providers, checks and name validation apply as in a state run.
 */
import { spawnSync } from 'node:child_process';
import type { Call, CallFunction } from '../protocol/messages.js';
import { saltFunctions, type Data } from '../engine/render/salt-functions.js';
import { kwOf } from '../engine/render/salt-exec/args.js';
import { normaliseTreePath, TreeError, type TreeSource } from '../engine/tree/source.js';
import type { CompiledState } from '../engine/compile/compile.js';
import { LIGHT_CALLS, type CallArgs, type CallHandler, type CallHost } from './calls-light.js';

export type { CallHost } from './calls-light.js';

export class CallError extends Error {}

type Args = CallArgs;
type AgentCall = Exclude<CallFunction, 'state.apply' | 'state.highstate' | 'state.sls'>;
type Handler = CallHandler;

/** The template function of that name, called with Salt's positional and keyword arguments. */
const template =
  (fun: string): Handler =>
  ({ args, kwargs }, host, call) =>
    saltFunctions(host.grains(), call.pillar ?? {}, host.opts)[fun]!(...args, { __keywords: true, ...kwargs });

/** A state tree of one generated SLS, for the functions that run a state. */
class OneSlsTree implements TreeSource {
  readonly label = 'tsalt call';
  constructor(private readonly text: string) {}
  private get(p: string): Buffer {
    if (normaliseTreePath(p) !== 'call.sls') throw new TreeError(`salt://${p} is not in a call's tree`);
    return Buffer.from(this.text);
  }
  read(p: string): Promise<Buffer> {
    return Promise.resolve(this.get(p));
  }
  readSync(p: string): Buffer {
    return this.get(p);
  }
  exists(p: string): Promise<boolean> {
    return Promise.resolve(normaliseTreePath(p) === 'call.sls');
  }
  existsSync(p: string): boolean {
    return normaliseTreePath(p) === 'call.sls';
  }
  list(): Promise<string[]> {
    return Promise.resolve(['call.sls']);
  }
}

/** Apply generated states (`#!yaml`: no template rendering of the operator's values); the results by id. */
async function runStates(host: CallHost, fun: string, states: Data, test = false, exclusive = true) {
  const busy = host.busy();
  if (busy && !test && exclusive) throw new CallError(`${fun}: a state run is in progress (job ${busy}); try again when it ends`);
  const { apply } = await import('../engine/engine.js');
  const report = await apply({
    tree: new OneSlsTree('#!yaml\n' + JSON.stringify(states, null, 1) + '\n'),
    id: host.id,
    grains: host.grains(),
    pillar: {},
    sls: ['call'],
    test,
    opts: host.opts,
  });
  return new Map(report.results.map((r) => [r.id, r]));
}

/** {a: 1, b: 2} -> [{a: 1}, {b: 2}]: a state's argument list */
const argList = (o: Data) => Object.entries(o).map(([k, v]) => ({ [k]: v }));

function nameOrPkgs(fun: string, { args, kwargs }: Args): Data {
  const name = args[0] ?? kwargs.name;
  const pkgs = kwargs.pkgs;
  if (pkgs !== undefined) return { name: String(name ?? 'pkgs'), pkgs };
  if (typeof name !== 'string' || !name) throw new CallError(`${fun}: give a package name (or pkgs='[...]')`);
  return { name };
}

function serviceName(fun: string, { args, kwargs }: Args): string {
  const name = args[0] ?? kwargs.name;
  if (typeof name !== 'string' || !name) throw new CallError(`${fun}: give a service name`);
  return name;
}

/** Salt's pkg.list_pkgs: {name: version}, several versions joined by commas. */
function listPkgs(host: CallHost): Data {
  const family = String(host.grains().os_family ?? '');
  const r =
    family === 'Debian'
      ? spawnSync('dpkg-query', ['-W', '-f=${Package}\t${db:Status-Status}\t${Version}\n'], { encoding: 'utf8', maxBuffer: 64 << 20 })
      : spawnSync('rpm', ['-qa', '--qf', '%{NAME}\tinstalled\t%|EPOCH?{%{EPOCH}:}|%{VERSION}-%{RELEASE}\n'], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.error) throw new CallError(`pkg.list_pkgs: ${r.error.message}`);
  const out = new Map<string, string[]>();
  for (const line of r.stdout.split('\n')) {
    const [name, status, version] = line.split('\t');
    if (!name || status !== 'installed' || !version) continue;
    out.set(name, [...(out.get(name) ?? []), version]);
  }
  return Object.fromEntries([...out].sort(([a], [b]) => (a < b ? -1 : 1)).map(([n, v]) => [n, v.join(',')]));
}

/** Salt's high data of compiled states (state.show_sls / show_highstate). */
function highData(states: CompiledState[]): Data {
  const out: Data = {};
  for (const s of states) {
    const entry = (out[s.id] ??= { __sls__: s.sls, __env__: 'base' }) as Data;
    const argList: unknown[] = [s.fun];
    if (s.name !== s.id) argList.push({ name: s.name });
    for (const [k, v] of Object.entries((s.args ?? {}) as Data)) if (k !== 'name') argList.push({ [k]: v });
    const reqs = new Map<string, Data[]>();
    for (const d of s.deps) {
      const t = states.find((x) => x.key === d.target);
      reqs.set(d.kind, [...(reqs.get(d.kind) ?? []), t ? { [t.state]: t.id } : { id: d.target }]);
    }
    for (const [kind, refs] of reqs) argList.push({ [kind]: refs });
    if (s.order !== undefined) argList.push({ order: s.order });
    entry[s.state] = argList;
  }
  return out;
}

/** Salt's low chunks (state.show_lowstate), in execution order. */
function lowData(states: CompiledState[]): Data[] {
  return states.map((s, i) => ({
    __id__: s.id,
    __sls__: s.sls,
    __env__: 'base',
    state: s.state,
    fun: s.fun,
    name: s.name,
    ...((s.args ?? {}) as Data),
    order: s.order ?? 10000 + i,
  }));
}

async function compileShow(call: Call, host: CallHost, sls: string[]): Promise<CompiledState[]> {
  if (!call.bundle) throw new CallError(`${call.fun}: the master sent no state tree`);
  const { compile } = await import('../engine/engine.js');
  return compile({ tree: host.tree(call.bundle), id: host.id, grains: host.grains(), pillar: call.pillar ?? {}, sls, test: true, opts: host.opts });
}

function slsArg(fun: string, { args, kwargs }: Args): string[] {
  const v = args[0] ?? kwargs.mods;
  const list = Array.isArray(v) ? v.map(String) : typeof v === 'string' ? v.split(',') : [];
  if (!list.filter(Boolean).length) throw new CallError(`${fun}: name the SLS (e.g. ${fun} web,db)`);
  return list.filter(Boolean);
}

/** The agent's call table: every function a call may name, and what it returns (Salt's shapes). */
export const CALLS: Record<AgentCall, Handler> = {
  ...LIGHT_CALLS,
  'cmd.run': (a, host, call) => cmdRun('cmd.run', a, host, call),
  'cmd.run_all': (a, host, call) => cmdRun('cmd.run_all', a, host, call),
  'pkg.version': template('pkg.version'),
  'pkg.list_pkgs': (_a, host) => listPkgs(host),
  'pkg.install': async (a, host) => {
    // Salt's pkg.install keywords that pkg.installed shares
    const extra = Object.fromEntries(['version', 'refresh', 'sources', 'hold', 'install_recommends'].filter((k) => a.kwargs[k] !== undefined).map((k) => [k, a.kwargs[k]]));
    const args = { ...(a.kwargs.sources !== undefined && a.args[0] === undefined && a.kwargs.name === undefined ? { name: 'sources' } : nameOrPkgs('pkg.install', a)), ...extra };
    const r = (await runStates(host, 'pkg.install', { call: { 'pkg.installed': argList(args) } })).get('call');
    if (!r || r.result === false) throw new CallError(`pkg.install: ${r?.comment ?? 'no result'}`);
    return r.changes;
  },
  'pkg.remove': async (a, host) => {
    const r = (await runStates(host, 'pkg.remove', { call: { 'pkg.removed': argList(nameOrPkgs('pkg.remove', a)) } })).get('call');
    if (!r || r.result === false) throw new CallError(`pkg.remove: ${r?.comment ?? 'no result'}`);
    return r.changes;
  },
  // a test run of service.running: True when nothing would need starting
  'service.status': async (a, host) => (await runStates(host, 'service.status', { call: { 'service.running': [{ name: serviceName('service.status', a) }] } }, true)).get('call')?.result === true,
  'service.restart': (a, host) => restartOrReload('service.restart', a, host, false),
  'service.reload': (a, host) => restartOrReload('service.reload', a, host, true),
  'file.file_exists': template('file.file_exists'),
  'file.read': template('file.read'),
  'network.ip_addrs': template('network.ip_addrs'),
  'grains.get': template('grains.get'),
  'pillar.get': template('pillar.get'),
  'user.info': template('user.info'),
  'state.show_sls': async (a, host, call) => highData(await compileShow(call, host, slsArg('state.show_sls', a))),
  'state.show_highstate': async (_a, host, call) => highData(await compileShow(call, host, [])),
  'state.show_lowstate': async (_a, host, call) => lowData(await compileShow(call, host, [])),
};

/** cmd.run keywords the cmd.run state takes too; with others, the template function is used */
const CMD_STATE_ARGS = new Set(['cmd', 'cwd', 'runas', 'shell', 'env', 'prepend_path', 'umask', 'timeout', 'python_shell']);

/**
 * cmd.run / cmd.run_all through the cmd.run state, which runs the command asynchronously: the
 * agent keeps answering the master (heartbeats, other calls) while it runs. Keywords only the
 * template function knows (stdin, clean_env, rstrip, ...) use that one instead (synchronous).
 */
async function cmdRun(fun: 'cmd.run' | 'cmd.run_all', a: Args, host: CallHost, call: Call): Promise<unknown> {
  const cmd = a.args[0] ?? a.kwargs.cmd;
  if (a.args.length > 1 || typeof cmd !== 'string' || Object.keys(a.kwargs).some((k) => !CMD_STATE_ARGS.has(k))) return template(fun)(a, host, call);
  const { cmd: _c, python_shell: _p, ...kw } = a.kwargs;
  const r = (await runStates(host, fun, { call: { 'cmd.run': argList({ name: cmd, ...kw }) } }, false, false)).get('call');
  const ch = r?.changes as { pid?: number; retcode?: number; stdout?: string; stderr?: string } | undefined;
  if (!r || ch?.retcode === undefined) throw new CallError(`${fun}: ${r?.comment ?? 'no result'}`);
  const stdout = (ch.stdout ?? '').trimEnd();
  const stderr = (ch.stderr ?? '').trimEnd();
  if (fun === 'cmd.run_all') return { pid: ch.pid, retcode: ch.retcode, stdout, stderr };
  return [stdout, stderr].filter(Boolean).join('\n'); // Salt's cmd.run: stderr into stdout
}

/** Salt's service.restart/reload through mod_watch: a changed state the service watches. */
async function restartOrReload(fun: string, a: Args, host: CallHost, reload: boolean): Promise<boolean> {
  const name = serviceName(fun, a);
  const results = await runStates(host, fun, {
    trigger: { 'test.succeed_with_changes': [] },
    call: { 'service.running': [{ name }, { reload }, { watch: [{ test: 'trigger' }] }] },
  });
  const r = results.get('call');
  if (!r || r.result === false) throw new CallError(`${fun}: ${r?.comment ?? 'no result'}`);
  return true;
}

/** Run one call; its return value, or a CallError/Error whose message is the answer. */
export async function runCall(call: Call, host: CallHost): Promise<unknown> {
  const h = (CALLS as Record<string, Handler>)[call.fun];
  if (!h) throw new CallError(`'${call.fun}' is not available on the agent (state runs are jobs)`);
  const [args] = kwOf(call.args);
  return h({ args, kwargs: call.kwargs }, host, call);
}
