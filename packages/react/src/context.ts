/**
 * The connection: one `Centrifuge` client per provider, its state as React
 * state, and why it is not connected when it is not (the disconnect code the
 * server sent, the last error) so an app can show it instead of spinning.
 */
import { createContext, createElement, useContext, useEffect, useMemo, useState, type ReactNode } from 'react';
import { Centrifuge, type Options } from 'centrifuge';

export type ConnectionState = 'disconnected' | 'connecting' | 'connected';

/** Why the client is (or went) down: a server disconnect code or a transport/connect error. */
export interface ConnectionProblem {
  /** Disconnect code (3000–4999 from the server, 0–2999 from the SDK) or the SDK's error code. */
  code: number;
  message: string;
  /** 'disconnect' for a disconnect with a code, 'error' for an error event (bad token, transport). */
  kind: 'disconnect' | 'error';
}

export interface SwitchboardContextValue {
  client: Centrifuge;
  state: ConnectionState;
  /** The client id once connected. */
  clientId: string | null;
  /** The last problem, cleared by the next successful connect. */
  problem: ConnectionProblem | null;
}

const Ctx = createContext<SwitchboardContextValue | null>(null);

export interface SwitchboardProviderProps {
  /** A client made by the app; or `url` (+ `options`) and the provider makes one. */
  client?: Centrifuge;
  url?: string;
  options?: Partial<Options>;
  /** Connect on mount (default true); the provider disconnects a client it made on unmount. */
  connect?: boolean;
  children?: ReactNode;
}

/** Holds one client for the tree below it; `useSwitchboard()` reads it. */
export function SwitchboardProvider(props: SwitchboardProviderProps): ReactNode {
  const { url, options, connect = true } = props;
  const client = useMemo(() => {
    if (props.client) return props.client;
    if (!url) throw new Error('SwitchboardProvider needs a client or a url');
    return new Centrifuge(url, options);
    // The client is made once per url; new options objects on each render must not reconnect.
  }, [props.client, url]);
  const [state, setState] = useState<ConnectionState>(client.state as ConnectionState);
  const [clientId, setClientId] = useState<string | null>(null);
  const [problem, setProblem] = useState<ConnectionProblem | null>(null);

  useEffect(() => {
    const onState = (ctx: { newState: string }): void => setState(ctx.newState as ConnectionState);
    const onConnected = (ctx: { client: string }): void => {
      setClientId(ctx.client);
      setProblem(null);
    };
    const onConnecting = (ctx: { code: number; reason: string }): void => {
      // 0 is the initial connect and 1 (transport closed) / 2 (ping timeout) are ordinary reconnects; anything
      // else is a reason the app may want to show (e.g. 3005 token expired, while the SDK refreshes it).
      if (ctx.code > 2) setProblem({ code: ctx.code, message: ctx.reason, kind: 'disconnect' });
    };
    const onDisconnected = (ctx: { code: number; reason: string }): void => {
      setClientId(null);
      if (ctx.code !== 0) setProblem({ code: ctx.code, message: ctx.reason, kind: 'disconnect' });
    };
    const onError = (ctx: { type: string; error: { code: number; message: string } }): void =>
      setProblem({ code: ctx.error.code, message: `${ctx.type}: ${ctx.error.message}`, kind: 'error' });
    client.on('state', onState);
    client.on('connected', onConnected);
    client.on('connecting', onConnecting);
    client.on('disconnected', onDisconnected);
    client.on('error', onError);
    setState(client.state as ConnectionState);
    if (connect) client.connect();
    return () => {
      client.removeListener('state', onState);
      client.removeListener('connected', onConnected);
      client.removeListener('connecting', onConnecting);
      client.removeListener('disconnected', onDisconnected);
      client.removeListener('error', onError);
      if (!props.client) client.disconnect();
    };
  }, [client, connect]);

  const value = useMemo(() => ({ client, state, clientId, problem }), [client, state, clientId, problem]);
  return createElement(Ctx.Provider, { value }, props.children);
}

/** The provider's client, its state and the last connection problem. */
export function useSwitchboard(): SwitchboardContextValue {
  const v = useContext(Ctx);
  if (!v) throw new Error('useSwitchboard must be used inside <SwitchboardProvider>');
  return v;
}
