import { describe, expect, it } from 'vitest';
import { renderMarkdown } from '../src/cli/chat/markdown.js';

describe('rendering a finished reply', () => {
  it('styles emphasis inside list items, not only in paragraphs', async () => {
    const out = await renderMarkdown('Intro **bold**.\n\n* **Short**: keep it *simple*.\n1. one **x**\n', 60, true);
    // The test run sets NO_COLOR, so chalk adds no escapes: what shows the inline Markdown
    // was parsed is that its markers are gone (marked-terminal alone left them in list items).
    expect(out).not.toContain('**');
    expect(out).not.toContain('*simple*');
    expect(out).toContain('Short: keep it simple.');
    expect(out).toContain('one x');
  });

  it('without colour, prints the text as written, wrapped', async () => {
    const out = await renderMarkdown('* **Short**: keep it simple.', 60, false);
    expect(out).toBe('* **Short**: keep it simple.');
  });
});
