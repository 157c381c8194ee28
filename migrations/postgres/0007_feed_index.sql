-- The feed reads open tasks by place: with the place and reach columns in the index, the tasks
-- out of a worker's reach are ruled out from the index alone, and only those within it are
-- read from the table. It replaces the plain (lat, lng) index.
CREATE INDEX tasks_feed_place ON tasks (status, lat, lng, radius_m, deadline_at);
DROP INDEX tasks_place;
