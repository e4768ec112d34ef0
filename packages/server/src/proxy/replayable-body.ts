import { PassThrough, type Readable } from 'node:stream';

/**
 * A streamed request body that can be sent a second time. Each attempt gets its own stream, because
 * undici destroys the body of a request that failed. While the body is replayable, every chunk handed to
 * an attempt is also kept, so a second attempt starts with the kept chunks and continues with the rest
 * of the source. Keeping stops for good, and the memory is freed, once `maxKeptBytes` is exceeded or
 * `release` is called; from then on a second attempt is impossible.
 */
export class ReplayableBody {
  readonly #source: Readable;
  readonly #maxKeptBytes: number;
  #kept: Buffer[] | null = [];
  #keptBytes = 0;
  #attempt: PassThrough | null = null;
  #sourceEnded = false;

  constructor(source: Readable, maxKeptBytes: number) {
    this.#source = source;
    this.#maxKeptBytes = maxKeptBytes;
    source.on('data', (chunk: Buffer) => this.#forward(chunk));
    source.once('end', () => {
      this.#sourceEnded = true;
      this.#attempt?.end();
    });
    source.pause();
  }

  /** True while every byte handed to an attempt is still kept. */
  get replayable(): boolean {
    return this.#kept !== null;
  }

  /** Open the stream for the next attempt. Call it again only while `replayable` is true. */
  open(): Readable {
    if (!this.#kept) throw new Error('the request body was not kept, so it cannot be sent again');
    this.#attempt?.destroy();

    const attempt = new PassThrough();
    for (const chunk of this.#kept) attempt.write(chunk);
    if (this.#sourceEnded) attempt.end();
    attempt.on('drain', () => this.#source.resume());
    // undici destroys the stream of a failed request; chunks that arrive meanwhile are kept for the next one.
    attempt.once('close', () => {
      if (this.#attempt === attempt) this.#attempt = null;
    });

    this.#attempt = attempt;
    this.#source.resume();
    return attempt;
  }

  /** Stop keeping chunks and free the kept ones: the request will not be sent again. */
  release(): void {
    this.#kept = null;
    this.#keptBytes = 0;
  }

  #forward(chunk: Buffer): void {
    if (this.#kept) {
      this.#kept.push(chunk);
      this.#keptBytes += chunk.length;
      if (this.#keptBytes > this.#maxKeptBytes) this.release();
    }

    const attempt = this.#attempt;
    if (!attempt) {
      // Between attempts, or after the last one ended: the source waits until an attempt reads again.
      this.#source.pause();
      return;
    }
    if (!attempt.write(chunk)) this.#source.pause();
  }
}
