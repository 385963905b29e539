/** Replies rendered as Markdown (code blocks included); raw HTML in a reply is shown as text, never run. */
import { Marked } from 'marked';

const escape = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

const marked = new Marked({
  gfm: true,
  breaks: true,
  renderer: {
    html: (token) => escape(token.text),
    link: ({ href, text }) => (/^(https?:|mailto:)/i.test(href) ? `<a href="${escape(href)}" rel="noreferrer noopener" target="_blank">${escape(text)}</a>` : escape(text)),
    image: ({ text }) => escape(text),
  },
});

export function renderMarkdown(text: string): string {
  return marked.parse(text, { async: false });
}
