/** The agents' (and admins') desk: quote list, the quote editor with field locks, agents, notifications, analytics, files. */
import { useCallback, useEffect, useRef, useState } from 'react';
import * as tus from 'tus-js-client';
import { useLock, useLockHolders, usePresence, useSubscription, useSwitchboard, useUserStatus, type Holder } from '@switchboard/react';
import { api, isApiError } from './api';
import { FIELDS, type Field, type Quote, type User } from '../shared/model';
import type { PublicationOf } from '../shared/realtime-types';
import { Notifications, RoomsPanel } from './App';

type ListEvent = PublicationOf<'quotes:list'>;
type QuoteEvent = PublicationOf<'quote:x'>;
type Summary = ListEvent['quote'];
type FileEvent = PublicationOf<'attachments:x'>;

export function AgentDesk({ me }: { me: User }) {
  const [selected, setSelected] = useState<string | null>(null);
  const bulk = useRef(0);
  const bulkSeen = useCallback(() => bulk.current, []);
  return (
    <main>
      <div>
        <QuoteList selected={selected} onSelect={setSelected} />
        <AgentsPanel />
      </div>
      <div>{selected ? <QuoteEditor key={selected} id={selected} me={me} /> : <section className="muted">Pick a quote.</section>}</div>
      <div>
        <Notifications me={me} bulkSeen={bulkSeen} />
        <Analytics me={me} counter={bulk} />
        <RoomsPanel rooms={me.role === 'admin' ? ['admin:ops', 'connection:log'] : ['admin:ops']} />
      </div>
    </main>
  );
}

function QuoteList({ selected, onSelect }: { selected: string | null; onSelect: (id: string) => void }) {
  const [quotes, setQuotes] = useState<Record<string, Summary>>({});
  const [customer, setCustomer] = useState('');
  const upsert = (q: Summary) => setQuotes((all) => (all[q.id] && all[q.id]!.version > q.version ? all : { ...all, [q.id]: q }));
  const list = useSubscription<ListEvent>('quotes:list', { keep: 0, onPublication: (e) => upsert(e.quote) });
  useEffect(() => {
    api<{ quotes: Quote[] }>('/api/quotes').then((r) =>
      r.quotes.forEach((q) =>
        upsert({
          id: q.id,
          customer: q.customer,
          client: q.client,
          premium: q.fields.premium,
          status: q.status,
          version: q.version,
          updatedBy: q.updatedBy,
          updatedAt: q.updatedAt,
        }),
      ),
    );
  }, []);
  const create = async () => {
    if (!customer.trim()) return;
    await api('/api/quotes', { customer, client: 'carol' });
    setCustomer('');
  };
  return (
    <section>
      <h2>Quotes</h2>
      <ul data-testid="quote-list">
        {Object.values(quotes)
          .sort((a, b) => a.id.localeCompare(b.id))
          .map((q) => (
            <li
              key={q.id}
              className={`quote-item ${q.id === selected ? 'selected' : ''}`}
              data-testid={`quote-${q.id}`}
              onClick={() => onSelect(q.id)}
            >
              <span>
                {q.id} · {q.customer}
              </span>
              <span className="muted" data-testid={`quote-${q.id}-premium`}>
                {q.premium || '—'} · {q.status}
              </span>
            </li>
          ))}
      </ul>
      <div style={{ display: 'flex', gap: 6, marginTop: 8 }}>
        <input
          placeholder="New quote: customer"
          value={customer}
          data-testid="new-quote-customer"
          onChange={(e) => setCustomer(e.target.value)}
        />
        <button data-testid="new-quote" onClick={() => void create()}>
          Add
        </button>
      </div>
      {list.recoveries > 0 && <p className="muted">list recovered after reconnect ({list.missed} missed)</p>}
    </section>
  );
}

function QuoteEditor({ id, me }: { id: string; me: User }) {
  const [quote, setQuote] = useState<Quote | null>(null);
  const [log, setLog] = useState<string[]>([]);
  const sub = useSubscription<QuoteEvent>(`quote:${id}`, {
    keep: 0,
    onPublication: (e) => {
      if (e.type !== 'quote.field_saved') return;
      setQuote((q) => (q ? { ...q, version: e.version, fields: { ...q.fields, [e.field]: e.value } } : q));
      setLog((l) => [`${e.by} saved ${e.field} = ${e.value}`, ...l].slice(0, 8));
    },
  });
  const holders = useLockHolders(`quote:${id}`);
  useEffect(() => {
    api<{ quote: Quote }>(`/api/quotes/${id}`).then((r) => setQuote(r.quote));
  }, [id]);
  if (!quote) return <section className="muted">Loading {id}…</section>;
  return (
    <>
      <section data-testid="editor">
        <h2>
          Quote {quote.id} · {quote.customer}
        </h2>
        {FIELDS.map((f) => (
          <FieldRow key={f} quoteId={id} field={f} value={quote.fields[f]} holder={holders.entries[f]} me={me} />
        ))}
        {holders.problem && <p className="room-problem">Lock holders unavailable: {holders.problem.message}</p>}
        {sub.recoveries > 0 && (
          <p className="banner info" data-testid="recovered">
            Back online: recovered {sub.missed} missed update{sub.missed === 1 ? '' : 's'} on this quote without reloading.
          </p>
        )}
        <ul className="muted" data-testid="quote-log">
          {log.map((l, i) => (
            <li key={i}>{l}</li>
          ))}
        </ul>
      </section>
      <Attachments quoteId={id} />
    </>
  );
}

function FieldRow({ quoteId, field, value, holder, me }: { quoteId: string; field: Field; value: string; holder?: Holder; me: User }) {
  const { clientId } = useSwitchboard();
  const lock = useLock(`quote:${quoteId}/${field}`, { ttlMs: 15000 });
  const [draft, setDraft] = useState(value);
  const [refused, setRefused] = useState<string | null>(null);
  const [, tick] = useState(0);
  useEffect(() => {
    const t = setInterval(() => tick((n) => n + 1), 1000);
    return () => clearInterval(t);
  }, []);
  const editing = lock.state === 'held' || lock.state === 'lost';
  useEffect(() => {
    if (!editing) setDraft(value);
  }, [value, editing]);
  const theirs = holder && holder.client !== clientId;
  const secs = holder ? Math.max(0, Math.round((holder.expires_at - Date.now()) / 1000)) : 0;
  const save = async () => {
    try {
      await api(`/api/quotes/${quoteId}/fields`, { field, value: draft, token: lock.fence?.token });
      setRefused(null);
      await lock.release();
    } catch (e) {
      setRefused(isApiError(e) ? `Save refused: ${e.message} (code ${e.code})` : String(e));
    }
  };
  return (
    <div className="field" data-testid={`field-${field}`}>
      <label>{field}</label>
      <input
        value={editing ? draft : value}
        disabled={!editing}
        data-testid={`input-${field}`}
        onChange={(e) => setDraft(e.target.value)}
      />
      <span>
        {!editing && (
          <button data-testid={`edit-${field}`} disabled={!!theirs || lock.state === 'acquiring'} onClick={() => void lock.acquire()}>
            Edit
          </button>
        )}
        {editing && (
          <>
            <button data-testid={`save-${field}`} onClick={() => void save()}>
              Save
            </button>{' '}
            <button data-testid={`release-${field}`} onClick={() => (setRefused(null), void lock.release())}>
              Cancel
            </button>
          </>
        )}
      </span>
      <span className={`lock ${theirs ? 'theirs' : holder ? 'mine' : ''}`} data-testid={`lock-${field}`}>
        {theirs && `locked: ${holder.user} is editing · lease ${secs}s · token ${holder.token}`}
        {!theirs && holder && `✎ you are editing · lease ${secs}s · token ${holder.token}`}
        {!holder && lock.state === 'lost' && `your lease ended (${lock.problem?.message}); saving now uses token ${lock.fence?.token}`}
        {!holder && lock.state === 'refused' && `could not take the lock: ${lock.problem?.message} (${lock.problem?.code})`}
        {!holder && lock.state === 'free' && me.role !== 'client' && 'free'}
      </span>
      {refused && (
        <span className="refused" data-testid={`refused-${field}`}>
          {refused}
        </span>
      )}
    </div>
  );
}

function AgentsPanel() {
  const presence = usePresence('agent:lobby');
  const status = useUserStatus(['alice', 'bob'], { refreshMs: 3000 });
  return (
    <section>
      <h2>Agents</h2>
      <ul data-testid="agents">
        {['alice', 'bob'].map((a) => {
          const online = presence.users.includes(a);
          const active = status.statuses[a]?.active;
          return (
            <li key={a} data-testid={`agent-${a}`}>
              {a}{' '}
              <span className={`badge ${online ? 'online' : 'offline'}`} data-testid={`agent-${a}-status`}>
                {online ? 'online' : 'offline'}
              </span>
              {active ? <span className="muted"> · active {new Date(active * 1000).toLocaleTimeString()}</span> : null}
            </li>
          );
        })}
      </ul>
      {presence.problem && <p className="room-problem">{presence.problem.message}</p>}
    </section>
  );
}

function Analytics({ me, counter }: { me: User; counter: { current: number } }) {
  const [count, setCount] = useState(0);
  useSubscription<PublicationOf<'analytics:x'>>('analytics:live', {
    keep: 0,
    onPublication: () => {
      counter.current += 1;
      setCount(counter.current);
    },
  });
  return (
    <section>
      <h2>Analytics (bulk, low priority)</h2>
      <p data-testid="analytics-count">{count} ticks received</p>
      <button data-testid="burst" onClick={() => void api('/api/burst', { to: me.id, count: 200, size: 2000 })}>
        Bulk burst + urgent notification
      </button>
    </section>
  );
}

async function sha256(blob: Blob): Promise<string> {
  const d = await crypto.subtle.digest('SHA-256', await blob.arrayBuffer());
  return btoa(String.fromCharCode(...new Uint8Array(d)));
}

function Attachments({ quoteId }: { quoteId: string }) {
  const [files, setFiles] = useState<FileEvent['file'][]>([]);
  const [progress, setProgress] = useState<string | null>(null);
  const add = (f: FileEvent['file']) => setFiles((l) => (l.some((x) => x.id === f.id) ? l : [...l, f]));
  useSubscription<FileEvent>(`attachments:${quoteId}`, { keep: 0, onPublication: (e) => add(e.file) });
  useEffect(() => {
    api<{ files: FileEvent['file'][] }>(`/api/quotes/${quoteId}/files`).then((r) => r.files.forEach(add));
  }, [quoteId]);
  const upload = async (file: File) => {
    const { token, endpoint } = await api<{ token: string; endpoint: string }>(`/api/quotes/${quoteId}/upload-token`, {});
    const chunkSize = 64 * 1024;
    await new Promise<void>((resolve, reject) => {
      const up = new tus.Upload(file, {
        endpoint,
        chunkSize,
        retryDelays: [0, 500, 1000, 2000],
        headers: { Authorization: `Bearer ${token}` },
        metadata: { channel: `attachments:${quoteId}`, filename: file.name, filetype: file.type || 'application/octet-stream' },
        // tus checksum extension: each chunk's sha256; the server cuts a chunk that does not match (460).
        async onBeforeRequest(req) {
          if (req.getMethod() !== 'PATCH') return;
          const offset = Number(req.getHeader('Upload-Offset'));
          req.setHeader('Upload-Checksum', 'sha256 ' + (await sha256(file.slice(offset, offset + chunkSize))));
        },
        onProgress: (sent, total) => setProgress(`${Math.round((100 * sent) / total)}%`),
        onSuccess: () => resolve(),
        onError: reject,
      });
      up.start();
    });
    setProgress('done');
  };
  const download = async (id: string) => {
    const { url } = await api<{ url: string }>(`/api/quotes/${quoteId}/files/${id}`);
    location.assign(url);
  };
  return (
    <section>
      <h2>Attachments</h2>
      <ul data-testid="attachments">
        {files.length === 0 && <li className="muted">none</li>}
        {files.map((f) => (
          <li key={f.id} data-testid="attachment" data-sha256={f.sha256}>
            {f.name} · {f.size} bytes · by {f.user} · sha256 {f.sha256.slice(0, 12)}…{' '}
            <button onClick={() => void download(f.id)}>Download</button>
          </li>
        ))}
      </ul>
      <input type="file" data-testid="file-input" onChange={(e) => e.target.files?.[0] && void upload(e.target.files[0])} />
      {progress && (
        <span className="muted" data-testid="upload-progress">
          {' '}
          upload {progress}
        </span>
      )}
    </section>
  );
}
