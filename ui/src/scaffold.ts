// A job's run-config scaffold as YAML, from the JSON Schema the webserver gives
// (`runConfigJsonSchema`): every op that takes config, required fields with a placeholder
// of their type (or their default), optional ones commented out.

type Schema = {
  type?: string | string[];
  properties?: Record<string, Schema>;
  required?: string[];
  default?: unknown;
  enum?: unknown[];
  anyOf?: Schema[];
  oneOf?: Schema[];
  items?: Schema;
  $ref?: string;
  $defs?: Record<string, Schema>;
  definitions?: Record<string, Schema>;
  description?: string;
};

function resolve(s: Schema, root: Schema): Schema {
  let cur = s;
  for (let i = 0; i < 20 && cur.$ref; i++) {
    const name = cur.$ref.split("/").pop()!;
    cur = root.$defs?.[name] ?? root.definitions?.[name] ?? {};
  }
  if (!cur.type && (cur.anyOf || cur.oneOf)) {
    const options = (cur.anyOf ?? cur.oneOf)!.map((o) => resolve(o, root)).filter((o) => o.type !== "null");
    if (options.length) return { ...options[0], default: cur.default ?? options[0].default };
  }
  return cur;
}

function scalar(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  return JSON.stringify(value) ?? "null";
}

function placeholder(s: Schema): string {
  if (s.default !== undefined) return scalar(s.default);
  if (s.enum?.length) return scalar(s.enum[0]);
  const t = Array.isArray(s.type) ? s.type.find((x) => x !== "null") : s.type;
  switch (t) {
    case "integer":
    case "number":
      return "0";
    case "boolean":
      return "false";
    case "array":
      return "[]";
    case "object":
      return "{}";
    default:
      return '""';
  }
}

function fields(s: Schema, root: Schema, indent: string, out: string[]): void {
  const required = new Set(s.required ?? []);
  for (const [name, raw] of Object.entries(s.properties ?? {})) {
    const field = resolve(raw, root);
    const optional = !required.has(name);
    const prefix = optional ? `${indent}# ` : indent;
    if (field.properties && Object.keys(field.properties).length && !optional) {
      out.push(`${prefix}${name}:`);
      fields(field, root, indent + "  ", out);
    } else {
      out.push(`${prefix}${name}: ${placeholder(field)}${optional ? "  # optional" : ""}`);
    }
  }
}

export function scaffoldYaml(schema: Schema): string {
  const ops = schema.properties?.ops?.properties ?? {};
  const out: string[] = [];
  for (const [op, entry] of Object.entries(ops)) {
    const config = entry.properties?.config;
    if (!config) continue;
    const root = config;
    const resolved = resolve(config, root);
    if (out.length === 0) out.push("ops:");
    out.push(`  ${op}:`, "    config:");
    const before = out.length;
    fields(resolved, root, "      ", out);
    if (out.length === before) out[out.length - 1] = "    config: {}";
  }
  if (out.length === 0) return "# This job's ops take no config.\n{}\n";
  return out.join("\n") + "\n";
}
