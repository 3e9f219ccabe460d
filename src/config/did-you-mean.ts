/**
 * "Did you mean ...?" for a mistyped flag, subcommand or config key: the nearest known
 * name by edit distance, when it is near enough to be the likely intent. One place, used
 * by the command line and by config errors alike.
 */

/**
 * Optimal-string-alignment distance: insertions, deletions, substitutions and swaps of
 * two neighbours each cost 1 (`lsiten` -> `listen` is one edit, the common typo).
 */
export function editDistance(a: string, b: string): number {
  // Three rows suffice: the swap looks two rows back.
  let before = new Array<number>(b.length + 1).fill(0);
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  let current = new Array<number>(b.length + 1).fill(0);
  for (let i = 1; i <= a.length; i++) {
    current[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, before[j - 2]! + 1);
      current[j] = best;
    }
    [before, previous, current] = [previous, current, before];
  }
  return previous[b.length]!;
}

/**
 * The candidate nearest to `word`, or undefined when none is close: at most 1 edit for
 * words of up to 4 characters, 2 up to 8, then 3 (so `ab` never "means" `cd`). Case is
 * ignored; the first candidate wins a tie.
 */
export function closest(word: string, candidates: Iterable<string>): string | undefined {
  const wanted = word.toLowerCase();
  const limit = wanted.length <= 4 ? 1 : wanted.length <= 8 ? 2 : 3;
  let best: string | undefined;
  let bestDistance = limit + 1;
  for (const candidate of candidates) {
    const distance = editDistance(wanted, candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

/** ` (did you mean X?)` to append to an error, or '' when nothing is close. */
export function didYouMean(word: string, candidates: Iterable<string>, format: (name: string) => string = (name) => name): string {
  const match = closest(word, candidates);
  return match === undefined ? '' : ` (did you mean ${format(match)}?)`;
}
