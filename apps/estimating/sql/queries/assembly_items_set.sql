INSERT INTO estimating.assembly_items (assembly_id, item_id, quantity)
SELECT %(assembly_id)s, * FROM unnest(%(item_ids)s::integer[], %(quantities)s::numeric[])
ON CONFLICT (assembly_id, item_id) DO UPDATE SET quantity = excluded.quantity
