-- The item categories, for the bulk price update form.
SELECT DISTINCT category FROM estimating.items ORDER BY category
