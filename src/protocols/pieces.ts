/** Splits text at word boundaries into at most `maxPieces` pieces that concatenate back to it. */
export function splitIntoPieces(text: string, maxPieces: number): string[] {
  const words = text.match(/\s*\S+\s*|\s+/g) ?? [];
  if (words.length <= maxPieces) return words;
  const perPiece = Math.ceil(words.length / maxPieces);
  const pieces: string[] = [];
  for (let i = 0; i < words.length; i += perPiece)
    pieces.push(words.slice(i, i + perPiece).join(""));
  return pieces;
}

/** Splits tool arguments by code point, not word, because real providers cut JSON mid-token. */
export function splitArguments(args: string, maxPieces: number): string[] {
  const chars = Array.from(args);
  if (chars.length === 0) return [];
  const size = Math.max(1, Math.ceil(chars.length / maxPieces));
  const pieces: string[] = [];
  for (let i = 0; i < chars.length; i += size) pieces.push(chars.slice(i, i + size).join(""));
  return pieces;
}
