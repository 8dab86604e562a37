// A parser for the text/event-stream format (the WHATWG "server-sent events" rules), fed
// arbitrary chunks of text as they arrive. The dashboard reads the event stream with fetch()
// rather than EventSource so it can send the bearer token and Last-Event-ID as headers and can
// tell a 401 from a dropped connection.

export interface SseMessage {
  /** The event type; "message" when the stream did not name one. */
  event: string;
  data: string;
  /** The last event id seen so far in the stream (the one to resume from). */
  lastEventId: string;
}

export class SseParser {
  private buffer = '';
  private data: string[] = [];
  private event = '';
  private lastEventId = '';
  private sawCarriageReturn = false;
  /** The reconnection delay the server asked for (`retry:`), in ms, if any. */
  retryMs: number | null = null;

  constructor(lastEventId = '') {
    this.lastEventId = lastEventId;
  }

  get currentLastEventId(): string {
    return this.lastEventId;
  }

  /** Feeds a chunk of decoded text; returns the messages it completed. */
  push(chunk: string): SseMessage[] {
    const out: SseMessage[] = [];
    let text = chunk;
    // A CRLF split across two chunks: the LF belongs to the CR already handled.
    if (this.sawCarriageReturn && text.startsWith('\n')) text = text.slice(1);
    this.sawCarriageReturn = false;
    this.buffer += text;
    let start = 0;
    for (let i = 0; i < this.buffer.length; i++) {
      const c = this.buffer[i];
      if (c !== '\n' && c !== '\r') continue;
      this.line(this.buffer.slice(start, i), out);
      if (c === '\r') {
        if (i + 1 < this.buffer.length) {
          if (this.buffer[i + 1] === '\n') i++;
        } else {
          this.sawCarriageReturn = true;
        }
      }
      start = i + 1;
    }
    this.buffer = this.buffer.slice(start);
    return out;
  }

  private line(line: string, out: SseMessage[]): void {
    if (line === '') {
      this.dispatch(out);
      return;
    }
    if (line.startsWith(':')) return; // a comment, e.g. ": keepalive"
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'data':
        this.data.push(value);
        break;
      case 'event':
        this.event = value;
        break;
      case 'id':
        if (!value.includes('\0')) this.lastEventId = value;
        break;
      case 'retry':
        if (/^\d+$/.test(value)) this.retryMs = Number(value);
        break;
      default:
        break; // unknown fields are ignored
    }
  }

  private dispatch(out: SseMessage[]): void {
    if (this.data.length > 0) {
      out.push({ event: this.event || 'message', data: this.data.join('\n'), lastEventId: this.lastEventId });
    }
    this.data = [];
    this.event = '';
  }
}

/** Splits a stream of text chunks into lines (for text/plain log streams). */
export class LineSplitter {
  private rest = '';

  push(chunk: string): string[] {
    const text = this.rest + chunk;
    const parts = text.split(/\r?\n/);
    this.rest = parts.pop() ?? '';
    return parts;
  }

  /** The unterminated last line, once the stream has ended. */
  flush(): string[] {
    const rest = this.rest;
    this.rest = '';
    return rest ? [rest] : [];
  }
}

/** Reads a response body as decoded text chunks until it ends or the signal aborts. */
export async function readText(
  body: ReadableStream<Uint8Array>,
  onChunk: (text: string) => void,
): Promise<void> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      const text = decoder.decode(value, { stream: true });
      if (text) onChunk(text);
    }
    const tail = decoder.decode();
    if (tail) onChunk(tail);
  } finally {
    reader.releaseLock();
  }
}
