import { describe, expect, it } from 'vitest';
import { insertSql } from '../src/postgres-store.js';

const columns = ['id', 'tool', 'model'];

describe('insertSql', () => {
  it('numbers the parameters row by row', () => {
    expect(insertSql('calls', columns, 2)).toBe('INSERT INTO calls (id, tool, model) VALUES ($1, $2, $3), ($4, $5, $6)');
  });

  it('cuts a longer statement built before', () => {
    const long = insertSql('calls', columns, 300);

    expect(long.endsWith('($898, $899, $900)')).toBe(true);
    expect(insertSql('calls', columns, 1)).toBe('INSERT INTO calls (id, tool, model) VALUES ($1, $2, $3)');
    expect(insertSql('calls', columns, 300)).toBe(long);
  });

  it('keeps tables and column lists apart', () => {
    insertSql('calls', columns, 5);

    expect(insertSql('call_prompts', ['call_id', 'text'], 1)).toBe('INSERT INTO call_prompts (call_id, text) VALUES ($1, $2)');
    expect(insertSql('calls', ['id'], 2)).toBe('INSERT INTO calls (id) VALUES ($1), ($2)');
  });
});
