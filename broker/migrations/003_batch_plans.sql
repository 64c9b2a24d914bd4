-- Stable plans for the broker's batch statements (issue 9: throughput).
-- A batch of replies travels as one jsonb array. The planner expects a
-- hundred rows from jsonb_array_elements, so it chose to hash the batch
-- and read every video of the stage's input state (a bitmap or sequential
-- scan), instead of one primary-key lookup per reply: about 1 ms per
-- statement at a 1,000-video backlog, growing with it, and most of the
-- database's time in a 5,000-video job. nf_batch is the same function
-- with an estimate of one row (PL/pgSQL, so the planner cannot inline it
-- and lose the estimate); a batch holds at most NF_CLAIM_BATCH rows.
CREATE FUNCTION nf_batch(batch jsonb) RETURNS SETOF jsonb
    LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE ROWS 1
AS $$
BEGIN
    RETURN QUERY SELECT jsonb_array_elements(batch);
END
$$;
