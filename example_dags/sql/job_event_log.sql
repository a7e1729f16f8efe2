-- What the event-driven example DAGs did for each Housecall Pro job event: one row per event handled (an
-- activity log, as a CRM keeps). Portable SQL (SQLite, PostgreSQL, MySQL); created if missing.
CREATE TABLE IF NOT EXISTS hcp_job_event_log (
    event_id      VARCHAR(200) NOT NULL,
    event_type    VARCHAR(32)  NOT NULL,
    is_reschedule INTEGER      NOT NULL,
    hcp_job_id    VARCHAR(64)  NOT NULL,
    dag_id        VARCHAR(250) NOT NULL,
    run_id        VARCHAR(250) NOT NULL,
    handled_at    VARCHAR(32)  NOT NULL
)
