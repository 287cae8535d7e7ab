// Types of the values test/support/global-setup.ts provides to integration tests.
// Read them in a test with `import { inject } from 'vitest'; const url = inject('mlflowUrl');`.

export {};

declare module 'vitest' {
  export interface ProvidedContext {
    /** Base URL of the shared MLflow tracking server, e.g. http://127.0.0.1:41234 */
    mlflowUrl: string;
    /** redis:// URL of the shared throwaway redis-server */
    redisUrl: string;
    /** Directory holding the server's mlflow.db, artifacts/ and mlflow.log */
    mlflowDir: string;
  }
}
