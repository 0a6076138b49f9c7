-- Write what aggregates.sql computed (its new_* temp tables) into the lake: the stage's state
-- for the batch (batch_casts, batch_reaction_keys), then the aggregates of touched_windows
-- and touched_casts, each replaced whole. Only writes and the reads they need: this is the
-- short transaction of a refresh. It drops none of the temp tables it reads: a commit that
-- fails on a SQLite catalog undoes the lake's changes but not the temp catalog's, and the
-- retry reads them again (they go with the connection, or the next compute replaces them).

DELETE FROM cast_terms WHERE hash IN (SELECT hash FROM batch_casts);

INSERT INTO cast_terms BY NAME SELECT * FROM new_cast_terms;

DELETE FROM reaction_state s
WHERE EXISTS (
    SELECT 1 FROM batch_reaction_keys k
    WHERE k.fid = s.fid
      AND k.reaction_type IS NOT DISTINCT FROM s.reaction_type
      AND k.target_hash IS NOT DISTINCT FROM s.target_hash);

INSERT INTO reaction_state BY NAME SELECT * FROM new_reaction_state;

DELETE FROM hourly_activity WHERE window_start IN (SELECT window_start FROM touched_windows);

INSERT INTO hourly_activity BY NAME SELECT * FROM new_hourly_activity;

DELETE FROM top_authors WHERE window_start IN (SELECT window_start FROM touched_windows);

INSERT INTO top_authors BY NAME SELECT * FROM new_top_authors;

DELETE FROM most_replied_to WHERE window_start IN (SELECT window_start FROM touched_windows);

INSERT INTO most_replied_to BY NAME SELECT * FROM new_most_replied_to;

DELETE FROM top_terms WHERE window_start IN (SELECT window_start FROM touched_windows);

INSERT INTO top_terms BY NAME SELECT * FROM new_top_terms;

DELETE FROM cast_engagement WHERE hash IN (SELECT hash FROM touched_casts);

INSERT INTO cast_engagement BY NAME SELECT * FROM new_cast_engagement;
