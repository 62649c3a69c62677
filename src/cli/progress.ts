import cliProgress from 'cli-progress';
import type { DemoProgress } from '../bench/index.js';

const formats = {
  load: 'load [{bar}] {percentage}% | {value}/{total} keys | {rate} puts/s',
  run: 'run  [{bar}] {value}/{total} s | {rate} ops/s',
} as const;

/** A terminal progress bar per demo phase, drawn on `stream` (stderr, so stdout stays clean). */
export function createProgressBar(stream: NodeJS.WritableStream): DemoProgress {
  let bar: cliProgress.SingleBar | null = null;
  let phase: keyof typeof formats = 'load';
  return {
    start(nextPhase, total) {
      bar?.stop();
      phase = nextPhase;
      bar = new cliProgress.SingleBar(
        { stream, format: formats[phase], hideCursor: true, barsize: 30, fps: 5 },
        cliProgress.Presets.shades_classic,
      );
      bar.start(total, 0, { rate: '0' });
    },
    update(value, rate) {
      // The run phase counts seconds; a tenth of a second is precise enough to watch.
      const shown = phase === 'run' ? Math.round(value * 10) / 10 : value;
      bar?.update(shown, { rate: rate.toLocaleString('en-US') });
    },
    stop() {
      bar?.stop();
      bar = null;
    },
  };
}
