/**
 * The shape of packages/server/src (see ../shared/DESIGN.md): data flows one
 * way; protocol/ and config/ import nothing of ours; only engine/redis/
 * imports ioredis; nothing imports the CLI; no cycles. node/ holds the
 * node's jobs that node.ts wires (upgrade gate, engine subscriptions,
 * control messages, revocations, metrics, drain): it sits above the layers
 * it composes and below node.ts.
 */
const SRC = '^packages/server/src/';
module.exports = {
  forbidden: [
    { name: 'no-circular', severity: 'error', from: { path: SRC }, to: { circular: true } },
    {
      name: 'protocol-and-config-are-leaves',
      severity: 'error',
      from: { path: SRC + '(protocol|config)/' },
      to: { path: SRC, pathNot: SRC + '(protocol|config)/' },
    },
    {
      name: 'only-redis-engine-imports-ioredis',
      severity: 'error',
      from: { path: SRC, pathNot: SRC + 'engine/redis/' },
      to: { path: 'node_modules/ioredis' },
    },
    { name: 'nothing-imports-cli', severity: 'error', from: { path: '^packages/' }, to: { path: SRC + 'cli\\.ts$' } },
    {
      name: 'session-and-hub-never-touch-redis',
      severity: 'error',
      from: { path: SRC + '(session|hub|transport)/' },
      to: { path: SRC + 'engine/redis/' },
    },
    {
      name: 'transport-below-session',
      severity: 'error',
      from: { path: SRC + 'transport/' },
      to: { path: SRC + '(session|hub|api|auth|engine)/' },
    },
    {
      name: 'engine-knows-no-sessions',
      severity: 'error',
      from: { path: SRC + 'engine/' },
      to: { path: SRC + '(session|hub|transport|api|auth)/' },
    },
    {
      name: 'node-jobs-sit-below-node-ts',
      severity: 'error',
      from: { path: SRC + 'node/' },
      to: { path: SRC + '(node\\.ts|api/|cli\\.ts|server\\.ts|cluster\\.ts)' },
    },
    {
      name: 'only-node-ts-imports-node-jobs',
      severity: 'error',
      from: { path: SRC, pathNot: SRC + '(node/|node\\.ts$)' },
      to: { path: SRC + 'node/' },
    },
    {
      name: 'nothing-imports-node-but-api-and-entrypoints',
      severity: 'error',
      from: { path: SRC + '(session|hub|transport|engine|auth|protocol|config|observability)/' },
      to: { path: SRC + 'node\\.ts$' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    exclude: { path: 'dist' },
  },
};
