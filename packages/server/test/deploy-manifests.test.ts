/**
 * deploy/: the Kubernetes manifests validated against the Kubernetes API
 * schemas (`kubernetes-models`, one model class per kind, ajv inside), the
 * compose file against the Compose Specification's JSON schema (the copy
 * `dclint` ships, with ajv) and by `dclint` itself, and what the schemas cannot know: the
 * probes point at /ready and /health, selectors match, the drain fits in
 * the grace period, and every SWITCHBOARD_* variable the files set is a
 * config key the real `check-config` accepts. The Dockerfile is checked
 * statically (multi-stage, non-root, HEALTHCHECK on /health); building it
 * needs a Docker daemon, which CI does not have.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { createRequire } from 'node:module';
import { Ajv } from 'ajv';
import { Deployment } from 'kubernetes-models/apps/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { Secret, Service } from 'kubernetes-models/v1';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { REPO } from './helpers/docs.js';
import { runCli } from './helpers/server.js';
import { spawnSync } from 'node:child_process';
import { dirname } from 'node:path';

const require = createRequire(import.meta.url);
/** dclint keeps the current Compose Specification schema in its package (not an export: read from its directory). */
const DCLINT = dirname(require.resolve('dclint/package.json'));

const DEPLOY = join(REPO, 'deploy');
const read = (f: string): string => readFileSync(join(DEPLOY, f), 'utf8');

type Doc = Record<string, any>;
const MODELS: Record<string, new (d: Doc) => { validate(): void }> = {
  'apps/v1/Deployment': Deployment as never,
  'v1/Service': Service as never,
  'v1/Secret': Secret as never,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget as never,
};

function k8sDocs(): Array<{ file: string; doc: Doc }> {
  const out: Array<{ file: string; doc: Doc }> = [];
  for (const file of readdirSync(join(DEPLOY, 'k8s')).filter((f) => f.endsWith('.yaml'))) {
    for (const d of parseAllDocuments(read(join('k8s', file)))) {
      assert.deepEqual(d.errors, [], `${file}: YAML errors`);
      out.push({ file, doc: d.toJS() as Doc });
    }
  }
  return out;
}

function validateK8s(doc: Doc): void {
  const Model = MODELS[`${doc.apiVersion}/${doc.kind}`];
  if (!Model) throw new Error(`no schema for ${doc.apiVersion} ${doc.kind}`);
  new Model(doc).validate();
}

test('every Kubernetes manifest is valid against its API schema (and the check can fail)', () => {
  const docs = k8sDocs();
  assert.deepEqual(docs.map((d) => d.doc.kind).sort(), ['Deployment', 'PodDisruptionBudget', 'Secret', 'Service']);
  for (const { file, doc } of docs) assert.doesNotThrow(() => validateK8s(doc), `${file} (${doc.kind})`);
  // Not vacuous: the same Deployment with a wrong type is refused.
  const dep = structuredClone(docs.find((d) => d.doc.kind === 'Deployment')!.doc);
  dep.spec.template.spec.containers[0].ports[0].containerPort = 'eight thousand';
  assert.throws(() => validateK8s(dep), /containerPort must be integer/);
});

test('the Deployment: readiness on /ready, liveness on /health, preStop, drain within the grace period, selectors match', () => {
  const docs = k8sDocs().map((d) => d.doc);
  const dep = docs.find((d) => d.kind === 'Deployment')!;
  const pod = dep.spec.template;
  const c = pod.spec.containers[0];
  assert.equal(c.readinessProbe.httpGet.path, '/ready');
  assert.equal(c.livenessProbe.httpGet.path, '/health');
  assert.equal(c.readinessProbe.httpGet.port, c.ports[0].name);
  assert.ok(c.lifecycle.preStop.exec.command.length > 0, 'preStop lets endpoint removal propagate before SIGTERM');
  const preStop = Number(c.lifecycle.preStop.exec.command.at(-1));
  // shutdown.timeout defaults to 30s: preStop + drain must end before the kubelet's SIGKILL.
  assert.ok(pod.spec.terminationGracePeriodSeconds >= preStop + 30 + 5, 'grace period covers preStop + shutdown.timeout');
  assert.equal(pod.spec.securityContext.runAsNonRoot, true);
  assert.equal(dep.spec.strategy.rollingUpdate.maxUnavailable, 0);
  for (const kind of ['Service', 'PodDisruptionBudget']) {
    const d = docs.find((x) => x.kind === kind)!;
    const selector = kind === 'Service' ? d.spec.selector : d.spec.selector.matchLabels;
    for (const [k, v] of Object.entries(selector)) assert.equal(pod.metadata.labels[k], v, `${kind} selects the pods (${k})`);
  }
  const svc = docs.find((x) => x.kind === 'Service')!;
  assert.equal(svc.spec.ports[0].targetPort, c.ports[0].name);
  const secret = docs.find((x) => x.kind === 'Secret')!;
  for (const e of c.env.filter((x: Doc) => x.valueFrom?.secretKeyRef)) {
    assert.equal(e.valueFrom.secretKeyRef.name, secret.metadata.name);
    assert.ok(e.valueFrom.secretKeyRef.key in secret.stringData, `the example Secret has ${e.valueFrom.secretKeyRef.key}`);
  }
});

/** The env a manifest or compose service sets, secrets and references replaced by placeholders. */
function envOf(entries: Array<{ name: string; value?: string }> | Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  const list = Array.isArray(entries) ? entries : Object.entries(entries).map(([name, value]) => ({ name, value }));
  for (const { name, value } of list) {
    if (!name.startsWith('SWITCHBOARD_')) continue;
    out[name] = value === undefined || value.startsWith('${') ? 'placeholder-value' : value;
  }
  return out;
}

async function assertConfigAccepts(env: Record<string, string>, where: string): Promise<void> {
  assert.ok(Object.keys(env).length >= 4, `${where} sets the node's config through SWITCHBOARD_* variables`);
  const r = await runCli(['check-config'], { env });
  assert.equal(r.code, 0, `${where}: check-config failed\n${r.stdout}\n${r.stderr}`);
  assert.doesNotMatch(r.stderr, /matches no config key/, `${where}: a variable names no config key`);
}

test('the SWITCHBOARD_* variables of the Deployment name real config keys with valid values', async () => {
  const dep = k8sDocs().find((d) => d.doc.kind === 'Deployment')!.doc;
  await assertConfigAccepts(envOf(dep.spec.template.spec.containers[0].env), 'deploy/k8s/deployment.yaml');
});

test('docker-compose.yml is valid against the Compose Specification and wires Redis, two nodes and nginx', async () => {
  // A draft-07 schema that names its draft by an https URL ajv does not register: ajv's default is draft-07.
  const { $schema: _draft, ...schema } = JSON.parse(readFileSync(join(DCLINT, 'schemas/compose.schema.json'), 'utf8')) as Record<
    string,
    unknown
  >;
  const ajv = new Ajv({ strict: false, allErrors: true });
  const validate = ajv.compile(schema);
  const compose = parseYaml(read('docker-compose.yml'), { merge: true }) as Doc;
  assert.equal(validate(compose), true, JSON.stringify(validate.errors));
  // Not vacuous: a service with a wrong-typed key is refused.
  const bad = structuredClone(compose);
  bad.services.redis.ports = 'not-a-list';
  assert.equal(validate(bad), false);

  const nodes = Object.keys(compose.services).filter((s) => s.startsWith('switchboard-'));
  assert.equal(nodes.length, 2);
  for (const n of nodes) {
    const svc = compose.services[n];
    assert.equal(svc.build.dockerfile, 'deploy/Dockerfile');
    assert.equal(svc.depends_on.redis.condition, 'service_healthy');
    assert.equal(svc.environment.SWITCHBOARD_ENGINE_REDIS_ADDRESS, 'redis://redis:6379');
  }
  assert.deepEqual(Object.keys(compose.services.nginx.depends_on).sort(), nodes.sort());
  // nginx balances exactly the compose nodes
  const upstreams = [...read('nginx/nginx.conf').matchAll(/^\s*server\s+([\w-]+):8000/gm)].map((m) => m[1]);
  assert.deepEqual(upstreams.sort(), nodes.sort());
  await assertConfigAccepts(envOf(compose.services[nodes[0]!].environment), 'deploy/docker-compose.yml');
});

test('dclint (schema and best-practice rules) finds no error in docker-compose.yml', () => {
  const r = spawnSync(process.execPath, [join(DCLINT, 'bin/dclint.cjs'), join(DEPLOY, 'docker-compose.yml')], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stdout + r.stderr);
});

test('the Dockerfile: multi-stage, runs as a non-root user, HEALTHCHECK on /health, drains on SIGTERM', () => {
  const lines = read('Dockerfile')
    .split('\n')
    .filter((l) => !l.trim().startsWith('#'));
  const text = lines.join('\n');
  assert.ok((text.match(/^FROM /gm) ?? []).length >= 2, 'a build stage and a runtime stage');
  assert.match(text, /^COPY --from=build /m, 'the runtime copies only the build output');
  const users = [...text.matchAll(/^USER\s+(\S+)/gm)].map((m) => m[1]);
  assert.ok(users.length > 0 && users.at(-1) !== 'root' && users.at(-1) !== '0', 'the final stage runs as a non-root user');
  assert.match(text, /^HEALTHCHECK [\s\S]*\/health/m);
  assert.match(text, /^STOPSIGNAL SIGTERM/m);
  // The root .dockerignore keeps node_modules and dist out of the build context.
  const ignore = readFileSync(join(REPO, '.dockerignore'), 'utf8');
  for (const p of ['**/node_modules', '**/dist']) assert.ok(ignore.split('\n').includes(p), `.dockerignore has ${p}`);
});
