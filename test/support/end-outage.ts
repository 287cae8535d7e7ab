// An MLflow client behind the fault proxy for tests of a run's end during an outage: no transport
// retries, and once `startOutage()` has cut the proxy off, the outage ends (proxy back to 'pass')
// right after the `endAfterFailedReads`-th failed read of a run (one `runs/get` per end() try).
import { createMlflowClient, type MlflowClient } from '../../src/index.js';
import type { FaultProxy } from './fault-proxy.js';

export interface EndOutage {
  client: MlflowClient;
  /** Refuse every connection (open ones too) from now until the outage ends. */
  startOutage(): Promise<void>;
  /** Failed `runs/get` reads since the outage started. */
  failedEndReads(): number;
}

export function endOutageClient(proxy: FaultProxy, endAfterFailedReads: number): EndOutage {
  let ending = false;
  let failed = 0;
  const client = createMlflowClient({
    trackingUri: proxy.url,
    timeoutMs: 5_000,
    retry: { maxRetries: 0 },
    fetch: async (input, init) => {
      try {
        return await fetch(input, init);
      } catch (err) {
        const url = input instanceof Request ? input.url : String(input);
        if (ending && url.includes('/runs/get') && ++failed === endAfterFailedReads)
          await proxy.setMode('pass');
        throw err;
      }
    },
  });
  return {
    client,
    async startOutage() {
      await proxy.setMode('refuse', { existing: true });
      ending = true;
    },
    failedEndReads: () => failed,
  };
}
