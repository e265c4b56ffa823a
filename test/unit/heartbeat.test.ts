/**
 * core/heartbeat.ts: a heartbeat judges the peer, not its own stalls. A round that fires late
 * (this process was busy) gives no verdict, and a round's verdict comes after what already
 * arrived has been read. The stall is a real busy loop; the "peer" a real child process writing
 * to a pipe while this process is busy.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { MAX_UNJUDGED, startHeartbeat, STALL_FACTOR } from '../../core/heartbeat.js';

function busyUntil(t: number, also: () => boolean): void {
  while (performance.now() < t || !also()) {
    /* this process is stalled: nothing else of it runs */
  }
}

describe('core/heartbeat', () => {
  /** The verdicts of the first `n` rounds, the heartbeat reading the test's clock (real timers). */
  function verdicts(n: number, interval: number, now: () => number): Promise<boolean[]> {
    const judged: boolean[] = [];
    return new Promise((resolve) => {
      const hb = startHeartbeat(
        interval,
        (judge) => {
          judged.push(judge);
          if (judged.length === n) {
            hb.stop();
            resolve(judged);
          }
        },
        now,
      );
    });
  }

  it('rounds on time judge; a round after a stall of this process does not', async () => {
    // round 2 comes 3 intervals after round 1, as after a stall (a real stall under a loaded
    // test run would be flaky); 1.5 intervals apart is still on time
    const at = [0, 20, 80, 100, 130];
    let i = 0;
    expect(await verdicts(4, 20, () => at[i++]!)).toEqual([true, false, true, true]);
    expect(STALL_FACTOR).toBe(1.5);
  });

  it('a process late at every round still judges every third round', async () => {
    let t = 0;
    expect(await verdicts(7, 20, () => (t += 60))).toEqual([false, false, true, false, false, true, false]);
    expect(MAX_UNJUDGED).toBe(2);
  });

  it("a round's verdict comes after the frames that arrived while this process was busy", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsalt-hb-'));
    const marker = path.join(dir, 'written');
    const interval = 400;
    let heard = false;
    const seen = await new Promise<boolean>((resolve) => {
      const t0 = performance.now();
      const hb = startHeartbeat(interval, () => {
        hb.stop();
        resolve(heard);
      });
      // in the loop's check phase: the peer answers while this process is busy (its bytes wait
      // in the pipe, unread), busy past the round's time (not so late that the round is a
      // stall) and until the answer is written; the next loop turn runs its due timers (the
      // round) before it polls for I/O (the answer)
      setTimeout(() => setImmediate(() => {
        const peer = spawn('sh', ['-c', `printf pong; touch ${marker}`], { stdio: ['ignore', 'pipe', 'ignore'] });
        peer.stdout.on('data', () => (heard = true));
        busyUntil(t0 + interval * 1.1, () => fs.existsSync(marker));
      }), 100);
    });
    fs.rmSync(dir, { recursive: true, force: true });
    expect(seen).toBe(true);
  });
});
