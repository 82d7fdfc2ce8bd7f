/**
 * When two answers are "the same" for shadow escalation: free text compared after a normalisation that removes what
 * a reader would not count as a different answer. Unicode NFKC (full-width and compatibility forms to their plain
 * twins), case-folded (toLowerCase after NFKC; the locale-independent fold JavaScript offers), punctuation and
 * symbols at either end trimmed ("Red." = "red"), and every run of white space collapsed to one space. Inner
 * punctuation is kept: "3.5" and "35" are different answers. Exact match after that.
 */
const EDGE_PUNCTUATION = /^[\p{P}\p{S}\s]+|[\p{P}\p{S}\s]+$/gu;

export function normaliseAnswer(answer: string): string {
  return answer.normalize("NFKC").toLowerCase().replace(EDGE_PUNCTUATION, "").replace(/\s+/gu, " ");
}

export function sameAnswer(a: string, b: string): boolean {
  return normaliseAnswer(a) === normaliseAnswer(b);
}
