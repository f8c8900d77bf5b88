-- The five live metrics of a campaign, from what is stored.
SELECT (SELECT count(*) FROM prospecting.businesses WHERE campaign_id = %(id)s)
           AS businesses_found,
       (SELECT count(*) FROM prospecting.businesses WHERE campaign_id = %(id)s AND qualified)
           AS qualified_leads,
       (SELECT count(*) FROM prospecting.businesses
         WHERE campaign_id = %(id)s AND qualified AND finder_done
           AND (email IS NULL OR verifier_done)) AS leads_enriched,
       (SELECT coalesce(sum(cost), 0) FROM prospecting.calls WHERE campaign_id = %(id)s)
           AS total_cost,
       (SELECT avg(confidence) FROM prospecting.businesses
         WHERE campaign_id = %(id)s AND qualified) AS average_confidence
