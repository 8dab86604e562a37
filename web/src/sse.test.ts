import { describe, expect, it } from 'vitest';
import { LineSplitter, readText, SseParser } from './sse';

describe('SseParser', () => {
  it('parses ephd events: id, event and JSON data', () => {
    const p = new SseParser();
    const msgs = p.push('id: 41\nevent: environment\ndata: {"name":"a"}\n\n');
    expect(msgs).toEqual([{ event: 'environment', data: '{"name":"a"}', lastEventId: '41' }]);
    expect(p.currentLastEventId).toBe('41');
  });

  it('skips keepalive comments', () => {
    const p = new SseParser();
    expect(p.push(': keepalive\n\n: keepalive\n\n')).toEqual([]);
  });

  it('reassembles events split anywhere across chunks', () => {
    const text = 'id: 1\nevent: environment\ndata: {"name":"a"}\n\nid: 2\nevent: environment\ndata: {"name":"b"}\n\n';
    for (let cut = 0; cut <= text.length; cut++) {
      const p = new SseParser();
      const msgs = [...p.push(text.slice(0, cut)), ...p.push(text.slice(cut))];
      expect(msgs.map((m) => JSON.parse(m.data).name)).toEqual(['a', 'b']);
      expect(msgs.map((m) => m.lastEventId)).toEqual(['1', '2']);
    }
  });

  it('handles CRLF and CR line endings, including CRLF split between chunks', () => {
    const p = new SseParser();
    expect(p.push('data: x\r\n\r\ndata: y\r\r').map((m) => m.data)).toEqual(['x', 'y']);
    expect([...p.push('data: z\r'), ...p.push('\n\r\n')].map((m) => m.data)).toEqual(['z']);
  });

  it('joins multi-line data and defaults the type to message', () => {
    const p = new SseParser();
    expect(p.push('data: one\ndata:two\ndata\n\n')).toEqual([{ event: 'message', data: 'one\ntwo\n', lastEventId: '' }]);
  });

  it('keeps the id for later events and the resume id from construction', () => {
    const p = new SseParser('7');
    expect(p.push('data: a\n\n')[0]?.lastEventId).toBe('7');
    p.push('id: 8\n\n'); // an id alone dispatches nothing but still counts for resume
    expect(p.currentLastEventId).toBe('8');
    expect(p.push('event: environment\ndata: b\n\n')[0]).toEqual({ event: 'environment', data: 'b', lastEventId: '8' });
  });

  it('resets the event type after each event and reads retry', () => {
    const p = new SseParser();
    const msgs = p.push('event: environment\ndata: a\n\ndata: b\n\nretry: 2500\n\n');
    expect(msgs.map((m) => m.event)).toEqual(['environment', 'message']);
    expect(p.retryMs).toBe(2500);
  });

  it('does not dispatch an event until its blank line arrives', () => {
    const p = new SseParser();
    expect(p.push('event: environment\ndata: {"name":"a"}\n')).toEqual([]);
    expect(p.push('\n')).toHaveLength(1);
  });
});

describe('LineSplitter', () => {
  it('splits chunks into whole lines and flushes the rest', () => {
    const s = new LineSplitter();
    expect(s.push('first\nsec')).toEqual(['first']);
    expect(s.push('ond\r\nthird')).toEqual(['second']);
    expect(s.flush()).toEqual(['third']);
    expect(s.flush()).toEqual([]);
  });
});

describe('readText', () => {
  it('decodes UTF-8 split across chunks', async () => {
    const bytes = new TextEncoder().encode('héllo ✓\n');
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        for (const b of bytes) c.enqueue(new Uint8Array([b]));
        c.close();
      },
    });
    let text = '';
    await readText(body, (t) => (text += t));
    expect(text).toBe('héllo ✓\n');
  });
});
