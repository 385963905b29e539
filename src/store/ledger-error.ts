/**
 * What the ledgers refuse: a key or team that does not exist (`not_found`), a change that
 * clashes with what is there (`conflict`), a ledger file of another schema version (`schema`),
 * or a ledger that can no longer write spend (`unavailable`: closed, or its writer stopped).
 */
export class LedgerError extends Error {
  readonly kind: 'not_found' | 'conflict' | 'schema' | 'unavailable';
  constructor(message: string, kind: LedgerError['kind'] = 'not_found') {
    super(message);
    this.name = 'LedgerError';
    this.kind = kind;
  }
}
