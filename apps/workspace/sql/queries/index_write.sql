-- Written only while the content read is still the document's (a late job writes nothing).
UPDATE workspace.documents
SET search = setweight(to_tsvector('english', %(title)s), 'A')
             || setweight(to_tsvector('english', %(content)s), 'B'),
    indexed_hash = %(hash)s, indexed_at = now(), index_writes = index_writes + 1
WHERE id = %(id)s AND content_hash = %(hash)s AND indexed_hash IS DISTINCT FROM %(hash)s
RETURNING id
