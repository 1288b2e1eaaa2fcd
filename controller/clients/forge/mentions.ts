/**
 * Text cc-ci echoes back to the forge (a commenter's words, a tier's reason) must never ping
 * anyone. Gitea and Forgejo read `@login` as a mention when a login character follows the `@`
 * directly; a zero-width space after every `@` breaks that and reads the same on the page.
 */
export function noMentions(text: string): string {
  return text.replace(/@(?=[\p{L}\p{N}_.-])/gu, '@\u200B');
}
