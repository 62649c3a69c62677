import { describe, expect, it } from 'vitest';
import {
  TriggerSyntaxError,
  parseTriggerLine,
  parseTriggerScript,
} from '../../../src/cli/trigger-commands.js';

function syntaxError(text: string, line = 1): TriggerSyntaxError {
  try {
    parseTriggerLine(text, line);
  } catch (err) {
    if (err instanceof TriggerSyntaxError) return err;
    throw err;
  }
  throw new Error(`expected "${text}" to be rejected`);
}

describe('parseTriggerLine', () => {
  it('parses LOAD with and without the ignored loader fields', () => {
    expect(parseTriggerLine('LOAD:1000:100', 1)).toEqual({
      kind: 'load',
      line: 1,
      text: 'LOAD:1000:100',
      keys: 1000,
      valueBytes: 100,
      ignored: null,
    });
    expect(parseTriggerLine('load:10:8:16:2', 4)).toMatchObject({
      kind: 'load',
      line: 4,
      keys: 10,
      ignored: { threads: 16, nodes: 2 },
    });
  });

  it('parses RUN, with is_update_only defaulting to 1', () => {
    expect(parseTriggerLine('RUN:0.95:1000:100:1:10:0.99:64', 2)).toEqual({
      kind: 'run',
      line: 2,
      text: 'RUN:0.95:1000:100:1:10:0.99:64',
      readRatio: 0.95,
      keys: 1000,
      valueBytes: 100,
      reportPeriodSec: 1,
      durationSec: 10,
      zipf: 0.99,
      outstanding: 64,
      updateOnly: true,
    });
    expect(parseTriggerLine('Run:1:10:8:0.5:2:0:4:0', 1)).toMatchObject({
      kind: 'run',
      readRatio: 1,
      reportPeriodSec: 0.5,
      updateOnly: false,
    });
  });

  it('parses WARM and WARM-RUN in every form', () => {
    expect(parseTriggerLine('WARM:1000:100:5000:0.99', 1)).toMatchObject({
      kind: 'warm',
      keys: 1000,
      valueBytes: 100,
      requests: 5000,
      zipf: 0.99,
    });
    expect(parseTriggerLine('warm-run:0.9:100:1:5:32', 1)).toMatchObject({
      kind: 'warm-run',
      readRatio: 0.9,
      valueBytes: 100,
      reportPeriodSec: 1,
      durationSec: 5,
      outstanding: 32,
      loadedKeys: null,
      updateOnly: true,
    });
    expect(parseTriggerLine('WARM-RUN:0.5:100:1:5:32:1000', 1)).toMatchObject({
      loadedKeys: 1000,
      updateOnly: true,
    });
    expect(parseTriggerLine('WARM-RUN:0.5:100:1:5:32:1000:0', 1)).toMatchObject({
      loadedKeys: 1000,
      updateOnly: false,
    });
  });

  it('parses the KN commands and the extensions', () => {
    expect(parseTriggerLine('ADD:2', 1)).toMatchObject({ kind: 'add', count: 2 });
    expect(parseTriggerLine('remove:1', 1)).toMatchObject({ kind: 'remove', count: 1 });
    expect(parseTriggerLine('FAIL:3', 1)).toMatchObject({ kind: 'fail', count: 3 });
    expect(parseTriggerLine('SLEEP:0.25', 1)).toMatchObject({ kind: 'sleep', seconds: 0.25 });
    expect(parseTriggerLine('wait', 1)).toMatchObject({ kind: 'wait' });
    expect(parseTriggerLine('Stats', 1)).toMatchObject({ kind: 'stats' });
    expect(parseTriggerLine('QUIT', 1)).toMatchObject({ kind: 'quit' });
    expect(parseTriggerLine('exit', 1)).toMatchObject({ kind: 'quit' });
  });

  it('ignores blank lines and comments, and trims spaces', () => {
    expect(parseTriggerLine('', 1)).toBeNull();
    expect(parseTriggerLine('   \t', 1)).toBeNull();
    expect(parseTriggerLine('# LOAD:1:1', 1)).toBeNull();
    expect(parseTriggerLine('  ADD : 1   # one more KN', 7)).toMatchObject({
      kind: 'add',
      count: 1,
      line: 7,
      text: 'ADD : 1',
    });
  });

  it.each([
    ['BOGUS:1', /unknown command "BOGUS"/, /one of LOAD, RUN/],
    ['LOAD:100', /LOAD takes 2 or 4 fields after the name, got 1/, /^LOAD:num_keys/],
    ['LOAD:100:8:4', /LOAD takes 2 or 4 fields after the name, got 3/, /^LOAD:/],
    ['LOAD:0:8', /num_keys must be an integer from 1 to 16777216 \(got "0"\)/, /^LOAD:/],
    ['LOAD:ten:8', /num_keys must be a number \(got "ten"\)/, /^LOAD:/],
    ['LOAD:10:2000000', /value_len must be an integer from 0 to 1048576/, /^LOAD:/],
    ['RUN:1.5:10:8:1:2:0:4', /read_ratio must be from 0 to 1 \(got "1.5"\)/, /^RUN:read_ratio/],
    ['RUN:0.9:10:8:1:2:0', /RUN takes 7 or 8 fields after the name, got 6/, /^RUN:/],
    ['RUN:0.9:10:8:1:0:0:4', /duration_s must be from 0.001/, /^RUN:/],
    ['RUN:0.9:10:8:1:2:0:4:2', /is_update_only must be 0 or 1 \(got "2"\)/, /^RUN:/],
    ['RUN:0.9:10:8:1:2:0:0', /num_outstanding must be an integer from 1/, /^RUN:/],
    ['RUN:0.9:10:8:1:2:-1:4', /zipf must be a number \(got "-1"\)/, /^RUN:/],
    ['WARM:10:8:100', /WARM takes 4 fields after the name, got 3/, /^WARM:num_keys/],
    ['WARM-RUN:0.9:8:1:2', /WARM-RUN takes 5, 6 or 7 fields/, /^WARM-RUN:/],
    ['ADD', /ADD takes 1 field after the name, got 0/, /^ADD:n$/],
    ['ADD:0', /n must be an integer from 1 to 64 \(got "0"\)/, /^ADD:n$/],
    ['REMOVE:1.5', /n must be an integer/, /^REMOVE:n$/],
    ['FAIL:x', /n must be a number/, /^FAIL:n$/],
    ['SLEEP:', /seconds must be a number \(got ""\)/, /^SLEEP:seconds$/],
    ['WAIT:3', /WAIT takes 0 fields after the name, got 1/, /^WAIT$/],
  ])('rejects "%s" with the reason and the expected syntax', (text, message, usage) => {
    const error = syntaxError(text, 9);
    expect(error.line).toBe(9);
    expect(error.message).toMatch(/^line 9: /);
    expect(error.message).toMatch(message);
    expect(error.usage).toMatch(usage);
  });
});

describe('parseTriggerScript', () => {
  it('returns the commands with their line numbers', () => {
    const script = parseTriggerScript('# setup\nLOAD:10:8\n\nRUN:1:10:8:1:2:0:1\r\nWAIT\n');
    expect(script.errors).toEqual([]);
    expect(script.commands.map((c) => [c.kind, c.line])).toEqual([
      ['load', 2],
      ['run', 4],
      ['wait', 5],
    ]);
  });

  it('reports every bad line with its number', () => {
    const script = parseTriggerScript('LOAD:10:8\nRUN:2\nADD:1\nJUMP\n');
    expect(script.errors.map((e) => e.line)).toEqual([2, 4]);
    expect(script.errors[0]?.message).toMatch(/^line 2: RUN takes 7 or 8 fields/);
    expect(script.errors[1]?.message).toMatch(/^line 4: unknown command "JUMP"/);
  });
});
