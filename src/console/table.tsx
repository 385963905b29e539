/** The console's tables: a header row of column names, the rows given as children, an optional footer. */
import type { ComponentChildren } from 'preact';

export function Table(props: { class?: string; caption?: ComponentChildren; columns?: ComponentChildren[]; foot?: ComponentChildren; children: ComponentChildren }) {
  return (
    <table class={props.class}>
      {props.caption !== undefined && <caption>{props.caption}</caption>}
      {props.columns && (
        <thead>
          <tr>
            {props.columns.map((c) => (
              <th scope="col">{c}</th>
            ))}
          </tr>
        </thead>
      )}
      <tbody>{props.children}</tbody>
      {props.foot !== undefined && <tfoot>{props.foot}</tfoot>}
    </table>
  );
}
