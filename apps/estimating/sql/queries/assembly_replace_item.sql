-- In a batch of assemblies, replace one item by another with the same quantity (added to
-- the new item's quantity where the assembly already holds it). Re-running is a no-op.
WITH old AS (
    DELETE FROM estimating.assembly_items
    WHERE assembly_id = ANY(%(ids)s) AND item_id = %(old_item_id)s
    RETURNING assembly_id, quantity
)
INSERT INTO estimating.assembly_items AS ai (assembly_id, item_id, quantity)
SELECT assembly_id, %(new_item_id)s, quantity FROM old
ON CONFLICT (assembly_id, item_id) DO UPDATE SET quantity = ai.quantity + excluded.quantity
