// Test double of a Gitea/Forgejo forge for cc-ci's tests. See docs/forge-double.md.
export { ForgeDouble, startForgeDouble, type ContractViolation, type ForgeDoubleOptions, type ForgeEvent, type RecordedRequest } from './double.js';
export { deliverWebhook, webhookBytes, webhookHeaders, type DeliveryOptions, type DeliveryResult } from './deliver.js';
export { goMarshalIndent, goMarshalIndentBytes } from './go-json.js';
export { operations, validateDefinition, type OperationContract, type Profile } from './contract.js';
export { readExampleWebhookBytes, CONTRACT_DIR } from './fixtures.js';
export type { DoubleComment, DoubleIssue, DoubleRepo, DoubleStatus, DoubleUser, JsonObject } from './model.js';
export type { CommentAction, ForgeFlavour } from './payloads.js';
export type { OAuthApp, OAuthRequest } from './oauth.js';
