/** How the benchmark tables print a ratio: two decimals and an x, or '-' when there is nothing to divide by. */
export function ratio(a: number | undefined, b: number | undefined): string {
  return a === undefined || b === undefined || b === 0 ? '-' : `${(a / b).toFixed(2)}x`;
}
