-- A business found by a search page; a page fetched again (a resumed campaign) adds nothing.
INSERT INTO prospecting.businesses
    (campaign_id, place_id, user_id, position, name, address, website, domain, phone,
     rating, reviews)
VALUES (%(campaign_id)s, %(place_id)s, %(user_id)s, %(position)s, %(name)s, %(address)s,
        %(website)s, %(domain)s, %(phone)s, %(rating)s, %(reviews)s)
ON CONFLICT (campaign_id, place_id) DO NOTHING
