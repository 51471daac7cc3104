/** The client's view: their quotes and live decisions, their notifications, and rooms they may not enter. */
import { useCallback, useEffect, useState } from 'react';
import { useSubscription } from '@switchboard/react';
import { api } from './api';
import type { Quote, User } from '../shared/model';
import type { PublicationOf } from '../shared/realtime-types';
import { Notifications, RoomsPanel } from './App';

export function ClientDesk({ me }: { me: User }) {
  const [quotes, setQuotes] = useState<Quote[]>([]);
  useEffect(() => {
    api<{ quotes: Quote[] }>('/api/quotes').then((r) => setQuotes(r.quotes));
  }, []);
  const noBulk = useCallback(() => 0, []);
  return (
    <main className="client">
      <div>
        <section>
          <h2>Your quotes</h2>
          <ul data-testid="client-quotes">
            {quotes.map((q) => (
              <Decision key={q.id} quote={q} />
            ))}
          </ul>
        </section>
      </div>
      <div>
        <Notifications me={me} bulkSeen={noBulk} />
        <RoomsPanel rooms={['agent:lobby', 'analytics:live', 'admin:ops']} />
      </div>
    </main>
  );
}

function Decision({ quote }: { quote: Quote }) {
  const sub = useSubscription<PublicationOf<'policy:x'>>(`policy:${quote.id}`, { keep: 1 });
  const last = sub.publications.at(-1)?.data;
  return (
    <li data-testid={`client-quote-${quote.id}`}>
      {quote.id} · {quote.customer} · premium {quote.fields.premium}{' '}
      <span className="badge" data-testid={`decision-${quote.id}`} data-state={sub.state}>
        {last ? `${last.decision} by ${last.by}` : quote.status}
      </span>
    </li>
  );
}
