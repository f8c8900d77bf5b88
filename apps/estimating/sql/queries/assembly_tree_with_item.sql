-- The assembly and its descendants that hold the item, in a stable order.
WITH RECURSIVE tree AS (
    SELECT id FROM estimating.assemblies WHERE id = %(root_id)s
    UNION ALL
    SELECT a.id FROM estimating.assemblies AS a JOIN tree AS t ON a.parent_id = t.id
)
SELECT t.id
FROM tree AS t
WHERE EXISTS (SELECT 1 FROM estimating.assembly_items AS ai
              WHERE ai.assembly_id = t.id AND ai.item_id = %(old_item_id)s)
ORDER BY t.id
