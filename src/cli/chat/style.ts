/** Colours for the chat, or none at all (NO_COLOR, a pipe): every function is then the identity. */

export interface Style {
  readonly color: boolean;
  bold(text: string): string;
  dim(text: string): string;
  label(text: string): string;
  error(text: string): string;
  good(text: string): string;
}

const wrap = (open: number, close: number) => (text: string) => `\x1b[${open}m${text}\x1b[${close}m`;

export function createStyle(color: boolean): Style {
  if (!color) {
    const id = (text: string): string => text;
    return { color, bold: id, dim: id, label: id, error: id, good: id };
  }
  return { color, bold: wrap(1, 22), dim: wrap(2, 22), label: (t) => `\x1b[1;36m${t}\x1b[22;39m`, error: wrap(31, 39), good: wrap(32, 39) };
}
