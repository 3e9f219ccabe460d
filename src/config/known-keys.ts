/**
 * The keys a config object may have at a key path, read from the zod schema itself, so
 * that an unknown key's error can suggest the nearest valid one and the list can never
 * drift from the schema.
 */
import { z } from 'zod';

/**
 * The keys the schema accepts for the object at `path`. `input` is that object as
 * written: where several object shapes fit (a filter entry), its `type` picks the one.
 */
export function knownKeys(schema: z.ZodType, path: readonly PropertyKey[], input: unknown): string[] {
  return [...new Set(objectsAt(schema, path, input).flatMap((object) => Object.keys(object.shape)))];
}

function objectsAt(schema: z.ZodType, path: readonly PropertyKey[], input: unknown): z.ZodObject[] {
  if (schema instanceof z.ZodOptional || schema instanceof z.ZodDefault || schema instanceof z.ZodPrefault || schema instanceof z.ZodNullable) {
    return objectsAt(schema.unwrap() as z.ZodType, path, input);
  }
  // A preprocess or a transform: the object shape may sit on either side of the pipe.
  if (schema instanceof z.ZodPipe) return [...objectsAt(schema.in as z.ZodType, path, input), ...objectsAt(schema.out as z.ZodType, path, input)];
  if (schema instanceof z.ZodUnion) return unionOptions(schema, path, input).flatMap((option) => objectsAt(option, path, input));
  if (path.length === 0) return schema instanceof z.ZodObject ? [schema] : [];
  const [key, ...rest] = path;
  if (schema instanceof z.ZodArray && typeof key === 'number') return objectsAt(schema.element as z.ZodType, rest, input);
  if (schema instanceof z.ZodObject && typeof key === 'string' && key in schema.shape) return objectsAt(schema.shape[key] as z.ZodType, rest, input);
  return [];
}

/** A discriminated union's option for the object's own `type` when it names one; else all options. */
function unionOptions(schema: z.ZodUnion, path: readonly PropertyKey[], input: unknown): z.ZodType[] {
  const options = schema.options as readonly z.ZodType[];
  if (path.length > 0 || !(schema instanceof z.ZodDiscriminatedUnion) || input === null || typeof input !== 'object') return [...options];
  const value = (input as Record<string, unknown>)[schema.def.discriminator];
  const matching = options.filter((option) => option instanceof z.ZodObject && discriminatorAccepts(option, schema.def.discriminator, value));
  return matching.length > 0 ? matching : [...options];
}

function discriminatorAccepts(object: z.ZodObject, discriminator: string, value: unknown): boolean {
  const field: unknown = object.shape[discriminator];
  return field instanceof z.ZodLiteral && field.values.has(value as z.core.util.Literal);
}
