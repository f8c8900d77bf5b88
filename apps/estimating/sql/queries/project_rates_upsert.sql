INSERT INTO estimating.project_rates (project_id, catalogue_id, effective_from, rate)
SELECT %(project_id)s, * FROM unnest(%(catalogue_ids)s::integer[], %(dates)s::date[],
                                     %(rates)s::numeric[])
ON CONFLICT (project_id, catalogue_id, effective_from) DO UPDATE SET rate = excluded.rate
