/** Run names as the spec allows them; checked before a name touches the store or the disk. */
export function isRunName(name: string): boolean {
  return name.length <= 63 && /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/.test(name);
}

/** Recipe names follow the same rule in the spec: checked before one reaches a query or a page. */
export const isRecipeName = isRunName;
