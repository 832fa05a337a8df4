-- 0004_delivery_status: a delivery log row is one attempt, which either
-- succeeded or failed. Rows written before labelled a failed attempt with a
-- retry scheduled 'pending' (the state of its message, not of the attempt).
UPDATE webhook_deliveries SET status = 'failed' WHERE status = 'pending';
