/** A JSON Schema fragment (draft 2020-12, as Ajv reads it): one part of the config's schema. */
export type JsonSchema = Record<string, unknown>;
