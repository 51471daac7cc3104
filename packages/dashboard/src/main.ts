import './style.css';
import { Unauthorized, call, login, logout, series, type ClientInfo, type Connection, type NodeInfo, type Publication } from './api.js';
import { charts } from './charts.js';
import { duration, fill, h, json, table } from './dom.js';

/** How often the live views ask the server again. */
const POLL_MS = 1000;

const app = document.getElementById('app')!;
let timer: number | undefined;

function showLogin(message = ''): void {
  if (timer !== undefined) clearTimeout(timer);
  timer = undefined;
  const password = h('input', {
    type: 'password',
    name: 'password',
    placeholder: 'admin password',
    autocomplete: 'current-password',
    'data-testid': 'password',
  });
  const error = h('p', { class: 'error', 'data-testid': 'login-error', role: 'alert' }, message);
  const form = h(
    'form',
    {
      class: 'login',
      onsubmit: (e: Event) => {
        e.preventDefault();
        fill(error);
        login(password.value)
          .then(() => showDashboard())
          .catch((err: unknown) => fill(error, err instanceof Error ? err.message : String(err)));
      },
    },
    h('h1', {}, 'Switchboard'),
    password,
    h('button', { type: 'submit', 'data-testid': 'login' }, 'Log in'),
    error,
  );
  fill(app, form);
  password.focus();
}

function showDashboard(): void {
  const nodes = h('div', { 'data-testid': 'nodes' });
  const connections = h('div', { 'data-testid': 'connections' });
  const users = h('div', { 'data-testid': 'users' });
  const channels = h('div', { 'data-testid': 'channels' });
  const status = h('span', { class: 'status', 'data-testid': 'status' });
  const plots = charts();

  // channel inspector: presence and history of one channel
  const inspectChannel = h('input', { placeholder: 'channel', 'data-testid': 'inspect-channel' });
  const presence = h('div', { 'data-testid': 'presence' });
  const history = h('div', { 'data-testid': 'history' });
  const inspect = async (): Promise<void> => {
    const channel = inspectChannel.value.trim();
    if (!channel) return;
    await Promise.all([
      call<{ presence: Record<string, ClientInfo> }>('presence', { channel })
        .then((r) =>
          fill(
            presence,
            table(
              'presence-table',
              ['client', 'user', 'conn info', 'chan info'],
              Object.values(r.presence).map((p) => [p.client, p.user, json(p.conn_info), json(p.chan_info)]),
              'nobody is subscribed',
            ),
          ),
        )
        .catch((e: unknown) => fill(presence, h('p', { class: 'error' }, `presence: ${String((e as Error).message)}`))),
      call<{ publications: Publication[]; offset: number; epoch: string }>('history', { channel, limit: 20, reverse: true })
        .then((r) =>
          fill(
            history,
            h('p', { class: 'muted' }, `stream position: offset ${r.offset}, epoch ${r.epoch || '-'}`),
            table(
              'history-table',
              ['offset', 'time', 'data', 'tags'],
              r.publications.map((p) => [p.offset ?? '', p.time ? new Date(p.time).toLocaleTimeString() : '', json(p.data), json(p.tags)]),
              'no publications kept',
            ),
          ),
        )
        .catch((e: unknown) => fill(history, h('p', { class: 'error' }, `history: ${String((e as Error).message)}`))),
    ]);
  };
  const pickChannel = (ch: string) => {
    inspectChannel.value = ch;
    publishChannel.value = ch;
    void inspect();
  };

  // publish console
  const publishChannel = h('input', { placeholder: 'channel', 'data-testid': 'publish-channel' });
  const publishData = h('textarea', { rows: 4, placeholder: '{"text": "hello"}', 'data-testid': 'publish-data' });
  const publishResult = h('pre', { class: 'result', 'data-testid': 'publish-result' });
  const publish = (e: Event): void => {
    e.preventDefault();
    let data: unknown;
    try {
      data = JSON.parse(publishData.value);
    } catch (err) {
      fill(publishResult, `not JSON: ${(err as Error).message}`);
      return;
    }
    call<{ offset?: number; epoch?: string }>('publish', { channel: publishChannel.value.trim(), data })
      .then((r) => {
        fill(publishResult, `published ${json(r)}`);
        if (inspectChannel.value.trim() === publishChannel.value.trim()) void inspect();
      })
      .catch((err: unknown) => fill(publishResult, `error ${(err as Error).message}`));
  };

  const disconnectUser = (user: string): void => {
    if (!confirm(`Disconnect every connection of user "${user}"?`)) return;
    call('disconnect', { user }).catch((e: unknown) => fill(status, `disconnect failed: ${(e as Error).message}`));
  };

  fill(
    app,
    h(
      'header',
      {},
      h('h1', {}, 'Switchboard'),
      status,
      h(
        'button',
        {
          class: 'link',
          'data-testid': 'logout',
          onclick: () => {
            logout();
            showLogin();
          },
        },
        'Log out',
      ),
    ),
    h(
      'main',
      {},
      h('section', { class: 'charts' }, ...plots.map((c) => c.el)),
      h('section', {}, h('h2', {}, 'Nodes'), nodes),
      h('section', {}, h('h2', {}, 'Users'), users),
      h('section', {}, h('h2', {}, 'Connections'), connections),
      h(
        'section',
        { class: 'split' },
        h('div', {}, h('h2', {}, 'Channels'), channels),
        h(
          'div',
          {},
          h('h2', {}, 'Publish'),
          h(
            'form',
            { class: 'publish', onsubmit: publish },
            publishChannel,
            publishData,
            h('button', { type: 'submit', 'data-testid': 'publish' }, 'Publish'),
            publishResult,
          ),
        ),
      ),
      h(
        'section',
        {},
        h('h2', {}, 'Channel'),
        h(
          'form',
          {
            class: 'inline',
            onsubmit: (e: Event) => {
              e.preventDefault();
              void inspect();
            },
          },
          inspectChannel,
          h('button', { type: 'submit', 'data-testid': 'inspect' }, 'Show presence and history'),
        ),
        h(
          'div',
          { class: 'split' },
          h('div', {}, h('h3', {}, 'Presence'), presence),
          h('div', {}, h('h3', {}, 'History (newest first)'), history),
        ),
      ),
    ),
  );

  let nodeNames = new Map<string, string>();
  const refresh = async (): Promise<void> => {
    const [info, conns, chans, s] = await Promise.all([
      call<{ nodes: NodeInfo[] }>('info'),
      call<{ connections: Record<string, Connection>; missing_nodes?: string[] }>('connections', { limit: 200 }),
      call<{ channels: Record<string, { num_clients: number }> }>('channels'),
      series(),
    ]);
    nodeNames = new Map(info.nodes.map((n) => [n.uid, n.name]));
    fill(
      nodes,
      table(
        'nodes-table',
        ['name', 'uid', 'version', 'clients', 'users', 'subscriptions', 'channels', 'uptime'],
        info.nodes.map((n) => [n.name, n.uid, n.version, n.num_clients, n.num_users, n.num_subs, n.num_channels, duration(n.uptime)]),
        'no nodes',
      ),
    );
    const list = Object.entries(conns.connections).sort((a, b) => a[1].connected_at_ms - b[1].connected_at_ms);
    fill(
      connections,
      table(
        'connections-table',
        ['user', 'client', 'node', 'transport', 'channels', 'conn info', 'connected', ''],
        list.map(([client, c]) => [
          c.user || '(anonymous)',
          client,
          nodeNames.get(c.node) ?? c.node,
          `${c.transport}/${c.protocol}`,
          Object.keys(c.state.channels).join(', '),
          json(c.conn_info),
          new Date(c.connected_at_ms).toLocaleTimeString(),
          c.user
            ? h(
                'button',
                { class: 'danger', 'data-testid': `disconnect-${c.user}`, onclick: () => disconnectUser(c.user) },
                'Disconnect user',
              )
            : '',
        ]),
        'no connections',
      ),
      conns.missing_nodes?.length ? h('p', { class: 'error' }, `no answer from nodes: ${conns.missing_nodes.join(', ')}`) : null,
    );
    const byUser = new Map<string, { conns: number; nodes: Set<string>; channels: Set<string> }>();
    for (const [, c] of list) {
      let u = byUser.get(c.user);
      if (!u) byUser.set(c.user, (u = { conns: 0, nodes: new Set(), channels: new Set() }));
      u.conns++;
      u.nodes.add(nodeNames.get(c.node) ?? c.node);
      for (const ch of Object.keys(c.state.channels)) u.channels.add(ch);
    }
    fill(
      users,
      table(
        'users-table',
        ['user', 'connections', 'nodes', 'channels'],
        [...byUser.entries()]
          .sort((a, b) => a[0].localeCompare(b[0]))
          .map(([user, u]) => [user || '(anonymous)', u.conns, [...u.nodes].join(', '), [...u.channels].sort().join(', ')]),
        'no users connected',
      ),
    );
    fill(
      channels,
      table(
        'channels-table',
        ['channel', 'subscribers here', ''],
        Object.entries(chans.channels)
          .sort((a, b) => a[0].localeCompare(b[0]))
          .map(([name, c]) => [name, c.num_clients, h('button', { class: 'link', onclick: () => pickChannel(name) }, 'inspect')]),
        'no channels with subscribers',
      ),
    );
    for (const p of plots) p.update(s.samples);
    fill(status, `updated ${new Date().toLocaleTimeString()}`);
  };

  const loop = (): void => {
    refresh()
      .then(() => {
        timer = window.setTimeout(loop, POLL_MS);
      })
      .catch((e: unknown) => {
        if (e instanceof Unauthorized) return showLogin();
        fill(status, `error: ${(e as Error).message}`);
        timer = window.setTimeout(loop, POLL_MS);
      });
  };
  loop();
}

// With a stored token (or admin.insecure) the dashboard opens at once; a 401 shows the login.
call('info')
  .then(() => showDashboard())
  .catch(() => showLogin());
