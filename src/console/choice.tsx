/** A labelled drop-down: the console's one way to pick one of a few values. */
export function Choice<T extends string>(props: { label: string; value: T; options: readonly (T | readonly [T, string])[]; onChange: (value: T) => void }) {
  return (
    <label>
      {props.label}{' '}
      <select value={props.value} onChange={(e) => props.onChange(e.currentTarget.value as T)}>
        {props.options.map((o) => {
          const [value, shown] = typeof o === 'string' ? [o, o] : o;
          return <option value={value}>{shown}</option>;
        })}
      </select>
    </label>
  );
}
