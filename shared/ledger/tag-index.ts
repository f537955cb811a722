// The tag index: one document per tag, merged without reading (digest → time), resolved at read time.

export interface TagDoc {
  pushes?: Record<string, string>;
  deletes?: Record<string, string>;
  tagDeletes?: Record<string, string>;
}

export function tagDocId(registry: string, repository: string, tag: string): string {
  return `${registry}/${repository}:${tag}`.replaceAll('/', '~');
}

/** The digest a tag points at now: the latest push, unless the digest or the tag was deleted after it. */
export function resolveTagDoc(doc: TagDoc): string | null {
  let best: [string, string] | null = null;
  for (const [digest, at] of Object.entries(doc.pushes ?? {})) {
    const deletedAt = doc.deletes?.[digest];
    if (deletedAt && deletedAt >= at) continue;
    if (!best || at > best[1] || (at === best[1] && digest > best[0])) best = [digest, at];
  }
  if (!best) return null;
  const lastTagDelete = Object.values(doc.tagDeletes ?? {})
    .sort()
    .at(-1);
  if (lastTagDelete && lastTagDelete >= best[1]) return null;
  return best[0];
}
