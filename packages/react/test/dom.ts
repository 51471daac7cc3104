/** A DOM for React in node:test (happy-dom); imported first, before react-dom reads the globals. */
import { GlobalRegistrator } from '@happy-dom/global-registrator';

// Node's own timers, fetch and events stay: the SDK and the server run in this process too.
const keep = { setTimeout, clearTimeout, setInterval, clearInterval, fetch, queueMicrotask };
GlobalRegistrator.register({ url: 'http://localhost/' });
Object.assign(globalThis, keep);
(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;
