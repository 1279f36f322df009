/**
 * Bounded capture of a process's output. Over the cap it keeps a short head (what ran) and a
 * long tail (test runners print failures and summaries last), with a marker where bytes were cut.
 */
export class CappedOutput {
  private readonly headCap: number;
  private readonly tailCap: number;
  private head: Buffer = Buffer.alloc(0);
  private tail: Buffer = Buffer.alloc(0);
  private total = 0;

  constructor(maxBytes: number) {
    this.headCap = Math.floor(maxBytes / 4);
    this.tailCap = maxBytes - this.headCap;
  }

  write(chunk: Buffer): void {
    this.total += chunk.length;
    let rest = chunk;
    if (this.head.length < this.headCap) {
      const room = this.headCap - this.head.length;
      this.head = Buffer.concat([this.head, rest.subarray(0, room)]);
      rest = rest.subarray(room);
    }
    if (rest.length === 0) return;
    const joined = Buffer.concat([this.tail, rest]);
    this.tail = joined.subarray(Math.max(0, joined.length - this.tailCap));
  }

  get totalBytes(): number {
    return this.total;
  }

  toString(): string {
    const omitted = this.total - this.head.length - this.tail.length;
    if (omitted === 0) return Buffer.concat([this.head, this.tail]).toString("utf8");
    const marker = `\n[... nightshift: ${omitted} bytes of output omitted ...]\n`;
    return this.head.toString("utf8") + marker + this.tail.toString("utf8");
  }
}
