// The real services integration tests run against come from runwarden's own local-stack module,
// the same code `runwarden up` and the benchmarks use.
export * from '../../src/stack/services.js';
